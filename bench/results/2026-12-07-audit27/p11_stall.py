#!/usr/bin/env python3
"""Probe: README "Compaction keeps up": under overwrites faster than compaction, "a held write is
delayed, never refused and never answered outcome unknown", the stall is counted
(kingx_compaction_write_stalls_total), and the directory stays near twice the live data.
3 clients overwrite 40 keys with values of 255 B to 2 MiB (half compressible) as fast as the
server answers for SECONDS s (`--segment-bytes 1M`, defaults otherwise); every answer's status;
the data directory's bytes against kingx_engine_live_bytes every 0.5 s.
Usage: p11_stall.py KINGX_BIN [kingx args]"""
import os, random, sys, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../tests/blackbox"))
os.environ["KINGX_BIN"] = sys.argv[1]
import kingx_harness as h
SECONDS = float(os.environ.get("SECONDS_RUN", "30"))
srv = h.Server(args=["--workers", "2", "--segment-bytes", "1M"] + sys.argv[2:]); srv.start()
statuses, lock, stop = {}, threading.Lock(), threading.Event()
def client(cid):
    rng = random.Random(cid)
    with h.Conn(srv.port, timeout=120) as c:
        while not stop.is_set():
            n = rng.choice((255, 256, 4000, 65536, 300000, (1 << 20) + 1, 2 << 20))
            v = (b"z" * n) if rng.random() < 0.5 else rng.randbytes(n)
            r = c.request("PUT", f"/v1/kv/k{rng.randrange(40)}", body=v)
            with lock:
                statuses[r.status] = statuses.get(r.status, 0) + 1
ts = [threading.Thread(target=client, args=(i,)) for i in range(3)]
ratios = []
try:
    for t in ts: t.start()
    end = time.monotonic() + SECONDS
    while time.monotonic() < end:
        live = h.metric(srv.port, "kingx_engine_live_bytes") or 0
        d = h.dir_bytes(srv.data_dir)
        if live > 4 << 20:
            ratios.append(d / live)
        time.sleep(0.5)
    stop.set()
    for t in ts: t.join(130)
    stalls = h.metric(srv.port, "kingx_compaction_write_stalls_total")
    waited = h.metric(srv.port, "kingx_compaction_write_stall_seconds_total")
    ratios.sort()
    print("statuses:", statuses)
    print(f"stalls {stalls}, stall seconds {waited}")
    print(f"dir/live samples {len(ratios)}: median {ratios[len(ratios) // 2]:.2f}, max {ratios[-1]:.2f}, over 2x {sum(r > 2 for r in ratios)}")
    ok = set(statuses) <= {201, 204}
    print(("HELD " if ok else "FALSE") + " every write answered 201/204 (no 503/507 while stalled)")
finally:
    stop.set()
    srv.stop(); srv.cleanup()
