#!/usr/bin/env python3
"""Probe: README Metrics `kingx_engine_keys` / `kingx_engine_live_bytes` against what a client
can count: the listing (every page) and `kingx-tool stat` of the stopped directory, after churn
(PUT, overwrite, DELETE, DELETE of an absent key, values 0 B to 1 MiB + 1, compressible and not),
`POST /admin/compact`, a HUP, a kill -9 of the writer and a restart.
Usage: p8_gauges.py KINGX_BIN KINGX_TOOL_BIN [kingx args]"""
import json, os, random, signal, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../tests/blackbox"))
os.environ["KINGX_BIN"] = sys.argv[1]
TOOL = sys.argv[2]
import kingx_harness as h
from probe_verdicts import summary, verdict

srv = h.Server(args=["--workers", "2", "--segment-bytes", "1M", "--compaction-dead-ratio", "0.2"] + sys.argv[3:], admin=True)
srv.start()
rng = random.Random(5)
model = {}

def listing_count(port):
    n, cursor = 0, None
    with h.Conn(port) as c:
        while True:
            r = c.request("GET", "/v1/kv/?limit=1000" + (f"&cursor={cursor}" if cursor else ""))
            if r.status == 503:
                time.sleep(0.2); continue
            j = json.loads(r.body)
            n += len(j["keys"])
            if j["list_complete"]:
                return n
            cursor = j["cursor"]

def check(what):
    time.sleep(0.3)
    g = h.metric(srv.port, "kingx_engine_keys")
    n = listing_count(srv.port)
    verdict(g == len(model) == n, f"{what}: kingx_engine_keys {g:.0f}, listing {n}, model {len(model)}")

try:
    with h.Conn(srv.port) as c:
        for i in range(3000):
            k = f"k{rng.randrange(400)}"
            op = rng.random()
            if op < 0.65:
                size = rng.choice((0, 1, 255, 256, 1000, 70000, (1 << 20) + 1))
                v = (b"x" * size) if rng.random() < 0.5 else os.urandom(size)
                r = c.request("PUT", "/v1/kv/" + k, body=v)
                assert r.status in (201, 204), r
                model[k] = v
            else:
                r = c.request("DELETE", "/v1/kv/" + k)
                assert r.status == (204 if k in model else 404), (r, k in model)
                model.pop(k, None)
    check("after churn")
    with h.Conn(srv.admin_port) as c:
        print("compact:", c.request("POST", "/admin/compact").status)
    time.sleep(3)
    check("after POST /admin/compact")
    srv.signal(signal.SIGHUP); time.sleep(2); srv.wait_ready()
    check("after HUP")
    w = srv.children("kingx-writer")[0][0]
    os.kill(w, signal.SIGKILL); time.sleep(1); srv.wait_ready()
    check("after kill -9 of the writer")
    live = h.metric(srv.port, "kingx_engine_live_bytes")
    srv.stop()
    st = json.loads(subprocess.run([TOOL, "--data", srv.data_dir, "stat", "--json"], capture_output=True, text=True).stdout)
    verdict(st["keys"] == len(model) and st["live_bytes"] == live, f"kingx-tool stat keys {st['keys']}, live {st['live_bytes']} vs server live {live:.0f}")
    srv.start()
    check("after a restart")
finally:
    srv.stop(); srv.cleanup()
summary()
