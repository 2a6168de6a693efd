#!/usr/bin/env python3
"""Probe: README storage engine "every process holds a bounded number of descriptors and mappings
(a quarter of its descriptor limit, at most 1,024)". `ulimit -n 256` (a quarter: 64), 200
segments of 64 KiB (--segment-bytes is at least 1M: 150 values of 1 MiB + 1 B each get a segment
of their own, plus small ones), GETs of every key in a shuffled order twice, from 2 workers; each
process's segment descriptors (/proc/PID/fd -> seg-*.kxd) and mappings (/proc/PID/maps) counted
after every 25 GETs. Usage: p6_fd_bound.py KINGX_BIN [kingx args]"""
import os, random, resource, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../tests/blackbox"))
os.environ["KINGX_BIN"] = sys.argv[1]
import kingx_harness as h

resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))   # inherited by the server
def seg_counts(pid):
    fds = maps = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").endswith(".kxd"):
                    fds += 1
            except OSError:
                pass
        with open(f"/proc/{pid}/maps") as f:
            maps = len({l.split()[-1] for l in f if l.rstrip().endswith(".kxd")})
    except OSError:
        pass
    return fds, maps

srv = h.Server(args=["--workers", "2", "--compaction", "off", "--max-connections", "64"] + sys.argv[2:])
srv.start()
worst = {}
try:
    keys = []
    with h.Conn(srv.port) as c:
        for i in range(150):
            k = f"big/{i}"
            assert c.request("PUT", "/v1/kv/" + k, body=os.urandom((1 << 20) + 1)).status == 201
            keys.append(k)
    segs = len([n for n in os.listdir(srv.data_dir) if n.endswith(".kxd")])
    print("segments:", segs)
    rng = random.Random(1)
    pids = {}
    for comm in ("kingx-worker", "kingx-writer"):
        for p in srv.children(comm):
            pids[p[0] if isinstance(p, tuple) else p] = comm
    pids[srv.proc.pid] = "kingx-master"
    bad = 0
    for rnd in range(2):
        order = keys[:]
        rng.shuffle(order)
        conns = [h.Conn(srv.port) for _ in range(4)]
        for i, k in enumerate(order):
            r = conns[i % 4].request("GET", "/v1/kv/" + k)
            if r.status != 200 or len(r.body) != (1 << 20) + 1:
                bad += 1
            if i % 25 == 0:
                for p, comm in pids.items():
                    f, m = seg_counts(p)
                    w = worst.setdefault(f"{comm} {p}", [0, 0])
                    w[0], w[1] = max(w[0], f), max(w[1], m)
        for c in conns:
            c.close()
    print("GETs not 200 whole:", bad)
    for name, (f, m) in sorted(worst.items()):
        ok = f <= 64 and m <= 64
        print(f"{'HELD ' if ok else 'FALSE'} {name}: at most {f} segment descriptors, {m} mapped segments (bound 64 = 256/4)")
finally:
    srv.stop(); srv.cleanup()
