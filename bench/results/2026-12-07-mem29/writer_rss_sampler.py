# usage: python3 writer_rss_sampler.py SECONDS, beside a bench/compare run: prints each kingx-writer of a
# bench/compare server (its master's command line names the kingx-bench- scratch) whenever its VmRSS changes.
import os, time, sys
t0 = time.monotonic(); seen = {}
end = t0 + float(sys.argv[1])
while time.monotonic() < end:
    for p in os.listdir("/proc"):
        if not p.isdigit(): continue
        try:
            comm = open(f"/proc/{p}/comm").read().strip()
            if comm != "kingx-writer": continue
            ppid = int(open(f"/proc/{p}/stat").read().rsplit(")",1)[1].split()[1])
            cmd = open(f"/proc/{ppid}/cmdline").read()
            if "kingx-bench-" not in cmd: continue
            rss = [int(l.split()[1]) for l in open(f"/proc/{p}/status") if l.startswith("VmRSS")][0]
        except Exception: continue
        if seen.get(p) != rss:
            print(f"{time.monotonic()-t0:6.1f}s writer {p} rss {rss} KB", flush=True); seen[p] = rss
    time.sleep(0.25)
