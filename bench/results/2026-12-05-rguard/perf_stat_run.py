# perf stat of one kingx start on the 10M-key copy (/var/tmp/kingx-rguard, a copy of
# /var/tmp/kingx-restart14), from exec to /readyz 200, then TERM. Run from the repo root:
#   python3 bench/results/2026-12-05-rguard/perf_stat_run.py BINARY OUT.txt
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, "bench")
import restart_time as rt

binary, out = sys.argv[1], sys.argv[2]
port = rt.free_port()
work = "/tmp/rguard-perfwork"
os.makedirs(work, exist_ok=True)
argv = ["perf", "stat", "-e", "task-clock,page-faults", "-o", out, "--", binary,
        "--listen", f"127.0.0.1:{port}", "--data", "/var/tmp/kingx-rguard/db-10000000x100", "--workers", "2",
        "--error-log", work + "/error.log", "--access-log", "off", "--pid", work + "/kingx.pid"]
t0 = time.monotonic()
p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
while not rt.readyz(port) and time.monotonic() - t0 < 120:
    time.sleep(0.01)
print("ready", time.monotonic() - t0)
os.kill(int(open(work + "/kingx.pid").read().strip()), signal.SIGTERM)
p.wait(120)
