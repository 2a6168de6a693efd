#!/usr/bin/env python3
"""audit2: statvfs calls of the writer under a PUT load, reference vs branch,
interleaved. strace -c -f on the writer process during N PUTs (4 keep-alive
clients) of 100 B; prints the writer's statfs count, PUTs and seconds.

    python3 p4_statvfs_count.py ref=/work/ref/s27/kingx new=build/src/kingx [N] [ROUNDS]
"""
import os, re, subprocess, sys, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../tests/blackbox"))
from kingx_harness import Conn, Server  # noqa

def _cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])  # utime + stime, ticks


bins = [a.split("=", 1) for a in sys.argv[1:] if "=" in a]
nums = [int(a) for a in sys.argv[1:] if a.isdigit()]
N = nums[0] if nums else 4000
ROUNDS = nums[1] if len(nums) > 1 else 2
for rnd in range(ROUNDS):
    for name, b in bins:
        os.environ["KINGX_BIN"] = b
        with Server(["--workers", "1"]) as s:
            w = [p for p in s.group_pids() if open(f"/proc/{p}/comm").read().strip() == "kingx-writer"][0]
            cpu0 = _cpu(w)
            st = None if os.environ.get("NOSTRACE") else subprocess.Popen(["strace", "-c", "-f", "-p", str(w), "-e", "trace=statfs,fstatfs,fdatasync,pwrite64,write"],
                                  stderr=subprocess.PIPE, text=True)
            time.sleep(0.5)
            t0 = time.monotonic()
            def run(c0):
                with Conn(s.port) as c:
                    for i in range(N // 4):
                        c.request("PUT", "/v1/kv/k%d-%d" % (c0, i), b"v" * 100)
            th = [threading.Thread(target=run, args=(i,)) for i in range(4)]
            [t.start() for t in th]; [t.join() for t in th]
            el = time.monotonic() - t0
            cpu = _cpu(w) - cpu0
            time.sleep(2.0)  # idle: the idle refresh only
            err = ""
            if st:
                st.send_signal(2); err = st.communicate()[1]
            counts = {m.group(2): int(m.group(1)) for m in re.finditer(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", err, re.M)}
            print(f"round {rnd} {name}: {N} PUTs in {el:.2f} s (+2 s idle): writer CPU {cpu * 10} ms ({cpu * 10000 / N:.1f} us/PUT); writer syscalls {counts}", flush=True)
