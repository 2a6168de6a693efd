#!/usr/bin/env python3
"""Probe: engine/FORMAT.md "Hint files" and the preallocated room.
  - "A sealed segment read whole without damage gets a fresh hint (... a damaged one repaired)":
    a sealed segment's hint removed, or a byte of it flipped; two opens: the first counts the
    damaged one (not the missing one), the second counts nothing, and the hint is back, byte-equal;
  - "Hint files, backups and the segment byte counts the server reports describe the records
    only, never the room": kingx_engine_dead_bytes / live_bytes of a server and `kingx-tool stat`
    on a database where nothing was overwritten or deleted.
Usage: p5_hint_room.py KINGX_BIN KINGX_TOOL_BIN"""
import glob, json, os, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../tests/blackbox"))
os.environ["KINGX_BIN"] = sys.argv[1]
TOOL = sys.argv[2]
import kingx_harness as h
from probe_verdicts import summary, verdict


def stat(d):
    return json.loads(subprocess.run([TOOL, "--data", d, "stat", "--json"], capture_output=True, text=True).stdout)

srv = h.Server(args=["--segment-bytes", "1M", "--compaction", "off", "--workers", "1"])
srv.start()
try:
    with h.Conn(srv.port) as c:
        for i in range(300):
            assert c.request("PUT", f"/v1/kv/k{i:04d}", body=os.urandom(10000)).status == 201
    m = {n: h.metric(srv.port, n) for n in ("kingx_engine_live_bytes", "kingx_engine_dead_bytes")}
    verdict(m["kingx_engine_dead_bytes"] == 0, f"running server, nothing overwritten: {m}")
    srv.stop()
    st = stat(srv.data_dir)
    files = {os.path.basename(p): os.path.getsize(p) for p in sorted(glob.glob(srv.data_dir + "/seg-*.kxd"))}
    print("files:", files)
    print("stat:", json.dumps(st))
    verdict(st["dead_bytes"] == 0, f"kingx-tool stat after a clean stop, nothing overwritten: dead_bytes {st['dead_bytes']}")
    srv.start()
    m = {n: h.metric(srv.port, n) for n in ("kingx_engine_live_bytes", "kingx_engine_dead_bytes")}
    verdict(m["kingx_engine_dead_bytes"] == 0, f"server restarted on it, nothing overwritten: {m}")
    srv.stop()
    hints = sorted(glob.glob(srv.data_dir + "/seg-*.hint"))
    sealed = [p for p in hints if not p.endswith(os.path.basename(max(glob.glob(srv.data_dir + "/seg-*.kxd")))[:-4] + ".hint")]
    a, b = sealed[0], sealed[1]
    orig_a, orig_b = open(a, "rb").read(), open(b, "rb").read()
    os.unlink(a)
    with open(b, "r+b") as f:
        f.seek(40); x = f.read(1); f.seek(40); f.write(bytes([x[0] ^ 0xFF]))
    for n in (1, 2):
        srv.start()
        corr = h.metric(srv.port, "kingx_engine_corruptions_total")
        with h.Conn(srv.port) as c:
            bad_reads = sum(c.request("GET", f"/v1/kv/k{i:04d}").status != 200 for i in range(300))
        srv.stop()
        print(f"open {n}: corruptions {corr}, GETs not 200: {bad_reads}, {os.path.basename(a)} back: {os.path.exists(a)}")
        if n == 2:
            verdict(corr == 0, f"second open after a hint removed and one flipped: corruptions {corr}")
    verdict(os.path.exists(a) and open(a, "rb").read() == orig_a, f"removed hint {os.path.basename(a)} rewritten byte-equal")
    verdict(open(b, "rb").read() == orig_b, f"damaged hint {os.path.basename(b)} repaired byte-equal")
finally:
    if srv.alive():
        srv.stop()
    srv.cleanup()
summary()
