#!/usr/bin/env python3
"""Probe: README "Across machines": "Both hash the key exactly as spelled in the
request line, and kingx serves each key under its one canonical spelling, so
every spelling of a key ends on the same shard." A request line may carry the
target in absolute form (RFC 9112 §3.2.2: a server MUST accept it). 200 keys are
PUT through the shipped proxy as `PUT http://kv.example/v1/kv/KEY`, then each
shard is listed: is every key on the shard kingx-reshard names, and only there?
Usage: KINGX_BIN=... p4_absform.py --proxy nginx|haproxy"""
import os, sys
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../../../tests/deploy"))
sys.path.insert(0, os.path.join(HERE, "../../../tests/blackbox"))
import argparse
import test_sharding as ts
from proxies import Client

def main():
    p = argparse.ArgumentParser(); p.add_argument("--proxy", required=True)
    p.add_argument("--h2c", action="store_true", help="PUT over HTTP/2 prior knowledge with curl instead")
    ts.ARGS = p.parse_args()
    try:
        ts.start()
        ring = ts.proxy_ring(ts.proxy_lines(ts.SHARDS))
        names = [f"{ts.HOST}:{s.port}" for s in ts.SHARDS]
        keys = [b"abs/%d" % i for i in range(200)]
        statuses = {}
        if ts.ARGS.h2c:
            import subprocess
            urls = [f"http://{ts.HOST}:{ts.PROXY.port}" + ts.canonical(k) for k in keys]
            for u in urls:   # one connection per PUT (curl 7.88 reusing an h2c connection to HAProxy failed)
                out = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "-X", "PUT", "--data-binary", "v",
                                      "-o", "/dev/null", "-w", "HTTP/%{http_version} %{http_code}", u],
                                     capture_output=True, text=True, timeout=20)
                statuses[out.stdout] = statuses.get(out.stdout, 0) + 1
        else:
          with Client(ts.PROXY.port) as c:
            for k in keys:
                r = c.request("PUT", b"http://kv.example" + ts.canonical(k).encode(), body=b"v", headers=[("Host", "kv.example")])
                statuses[r.status] = statuses.get(r.status, 0) + 1
                if r.status >= 300 and statuses[r.status] == 1:
                    print("  first", r.status, "answer:", r.headers, r.body[:300])
        print("PUT statuses:", statuses)
        held = ts.holders(ts.SHARDS)
        wrong = 0
        for k in keys:
            sp = ts.spelled(k)
            owner = names[ring.owner_index(sp)]
            where = [names[i] for i in held.get(sp, [])]
            if where != [owner]:
                wrong += 1
                if wrong <= 5:
                    print(f"  {sp}: held by {where}, owner {owner}")
        print(f"{'FALSE' if wrong else 'HELD '} {ts.ARGS.proxy}: {wrong} of {len(keys)} keys written in absolute form are not on their owner alone")
        with Client(ts.PROXY.port) as c:
            miss = sum(c.request("GET", ts.canonical(k).encode()).status != 200 for k in keys)
        print(f"  origin-form GET through the proxy: {miss} of {len(keys)} not 200")
    finally:
        if ts.PROXY is not None:
            ts.PROXY.cleanup()
        for s in ts.SHARDS:
            s.cleanup()

main()
