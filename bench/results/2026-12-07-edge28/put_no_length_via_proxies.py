#!/usr/bin/env python3
"""What a client gets for a PUT with neither Content-Length nor Transfer-Encoding, sent
directly and through each shipped proxy file (Debian's nginx and HAProxy, started as
tests/deploy/proxies.py starts them), and what kingx received (its access log).

    KINGX_BIN=build/src/kingx python3 bench/results/2026-12-07-edge28/put_no_length_via_proxies.py
"""
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(REPO, "tests", "deploy"))
sys.path.insert(0, os.path.join(REPO, "tests", "blackbox"))
from proxies import start_haproxy, start_nginx  # noqa: E402
from kingx_harness import Conn, Server, build_request, http, key_path  # noqa: E402


def bare_put(port, key, extra=()):
    with Conn(port) as c:
        c.send(build_request("PUT", key_path(key), None, list(extra)))
        r = c.read_response()
        if r.status == 100:  # nginx answers Expect itself, then sends the upstream's answer
            r = c.read_response()
        after = http(port, "GET", key_path(key))
        return r, after


def main():
    servers, proxies = [], []
    try:
        for _ in range(3):
            s = Server(["--workers", "1"])
            s.start()
            servers.append(s)
        up = [f"127.0.0.1:{s.port}" for s in servers]
        fronts = [("direct", servers[0].port)]
        for name, ups in (("nginx-reverse-proxy.conf", up[:1]), ("nginx-sharding.conf", up)):
            p = start_nginx(name, ups)
            proxies.append(p)
            fronts.append((name, p.port))
        p = start_haproxy(up)
        proxies.append(p)
        fronts.append(("haproxy-sharding.cfg", p.port))
        for name, port in fronts:
            for extra in ((), (("Expect", "100-continue"),)):
                key = f"bare-{name}-{len(extra)}"
                r, after = bare_put(port, key, extra)
                ct = r.header("Content-Type")
                print(json.dumps({"front": name, "extra": [list(e) for e in extra], "status": r.status,
                                  "content_type": ct, "body": r.body[:160].decode("latin-1"),
                                  "then_get": after.status}))
        for i, s in enumerate(servers):
            s.stop()
            if os.path.exists(s.access_log):
                for line in open(s.access_log, errors="replace"):
                    if '"PUT' in line or "PUT" in line:
                        print(f"kingx{i} access: {line.strip()[:300]}")
    finally:
        for p in proxies:
            p.cleanup()
        for s in servers:
            s.cleanup()


if __name__ == "__main__":
    main()
