#!/usr/bin/env python3
"""What N idle keep-alive connections cost a worker that serves nothing else: callgrind's
instruction count of the whole kingx process tree over a window with no request at all, after
the connections each got one GET answered (bench/abuse_clients.py idle). Repeatable whatever the
machine's load. Usage: idle_cost.py BIN LABEL [conns] [seconds]
Prints the worker's instructions per second of the window (the largest instrumented process)."""
import glob
import os
import re
import subprocess
import sys
import tempfile
import time

BENCH = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, BENCH)
from harness import procs  # noqa: E402

kingx, label = sys.argv[1], sys.argv[2]
conns = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
window_s = int(sys.argv[4]) if len(sys.argv) > 4 else 10
tmp = tempfile.mkdtemp(prefix="idleq-idle-")
os.makedirs(tmp + "/data")
port = procs.free_port()
server = procs.Proc("kingx", ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--trace-children=yes",
                              f"--callgrind-out-file={tmp}/cg.%p", kingx, "--listen", f"127.0.0.1:{port}",
                              "--data", tmp + "/data", "--workers", "1", "--error-log", tmp + "/error.log",
                              "--model", "event"], tmp + "/stdout.log")
procs.wait_http_ok(port, "/readyz", 120, server)
procs.http_request(port, "PUT", "/v1/kv/small", body=b"v" * 100)
clients = subprocess.Popen([sys.executable, os.path.join(BENCH, "abuse_clients.py"), "idle", "--port", str(port),
                            "--conns", str(conns), "--seconds", "600", "--path", "/v1/kv/small"],
                           stdout=subprocess.DEVNULL)
time.sleep(40)  # all connected and answered (under valgrind), then idle
children = [int(p) for p in os.listdir("/proc") if p.isdigit() and os.path.exists(f"/proc/{p}/stat")
            and open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1] == str(server.pid)]
for pid in children:
    subprocess.run(["callgrind_control", "-i", "on", str(pid)], capture_output=True)
time.sleep(window_s)
for pid in children:
    subprocess.run(["callgrind_control", "-i", "off", str(pid)], capture_output=True)
    subprocess.run(["callgrind_control", "-d", str(pid)], capture_output=True)
time.sleep(2)
clients.terminate()
clients.wait()
server.stop(timeout_s=60)
counts = {}
for f in glob.glob(f"{tmp}/cg.*"):
    found = [int(x) for x in re.findall(r"^(?:summary|totals): (\d+)", open(f).read(), re.M)]
    if found:
        counts[f] = max(found)
worst = max(counts, key=counts.get)
ann = subprocess.run(["callgrind_annotate", "--inclusive=no", worst], capture_output=True, text=True).stdout
here = os.path.dirname(os.path.abspath(__file__))
os.makedirs(f"{here}/cg", exist_ok=True)
with open(f"{here}/cg/{label}-idle{conns}-quiet.annotate.txt", "w") as out:
    out.write(ann)
print(f"{label}: {conns} idle connections, no requests, {window_s} s: worker instructions {counts[worst]}, "
      f"{counts[worst] / window_s:.0f} per second")
