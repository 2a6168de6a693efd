#!/usr/bin/env python3
"""big-bodies: where the kernel's TCP memory sits — the server's receive queues or the uploading
clients' send queues (both on this machine, since the abuser is local). kingx (event, 1 worker,
defaults) and 3,000 uploads of 1 MiB held one byte short (abuse_clients.py bodies); after 20 s,
`ss -tnm` summed per side. Usage: bodies_split.py BIN [conns] [extra kingx args...]"""
import os, subprocess, sys, tempfile, time, re
sys.path.insert(0, "/work/wt/putreg/bench")
from harness import procs
bin_ = sys.argv[1]
conns = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
extra = sys.argv[3:]
tmp = tempfile.mkdtemp(prefix="abusefd-bodies-")
port = procs.free_port()
os.makedirs(tmp + "/data")
p = procs.Proc("kingx", [bin_, "--listen", f"127.0.0.1:{port}", "--data", tmp + "/data", "--workers", "1",
                         "--error-log", tmp + "/error.log"] + extra, tmp + "/stdout.log")
procs.wait_http_ok(port, "/readyz", 30, p)
ab = subprocess.Popen([sys.executable, "/work/wt/putreg/bench/abuse_clients.py", "bodies", "--port", str(port),
                       "--conns", str(conns), "--path", "/v1/kv/body", "--seconds", "60"], stdout=subprocess.PIPE, text=True)
def mem_pages():
    for line in open("/proc/net/sockstat"):
        if line.startswith("TCP:"):
            f = line.split(); return int(f[f.index("mem") + 1])
try:
    for t in (10, 20):
        time.sleep(10)
        out = subprocess.run(["ss", "-tnmH", "state", "established"], capture_output=True, text=True).stdout
        srv_rq = cli_sq = srv_rb = cli_tb = srv_n = cli_n = 0
        lines = out.splitlines()
        for i, line in enumerate(lines):
            f = line.split()
            if len(f) < 4 or not f[0].isdigit(): continue
            rq, sq, local, peer = int(f[0]), int(f[1]), f[2], f[3]
            mem = lines[i + 1] if i + 1 < len(lines) else ""
            m = re.search(r"skmem:\(r(\d+),rb(\d+),t(\d+),tb(\d+)", line + mem)
            if local.endswith(f":{port}"):
                srv_n += 1; srv_rq += rq
                if m: srv_rb += int(m.group(1))
            elif peer.endswith(f":{port}"):
                cli_n += 1; cli_sq += sq
                if m: cli_tb += int(m.group(3))
        print(f"t={t}s server sockets {srv_n}: Recv-Q {srv_rq / 2**20:.0f} MiB (rmem alloc {srv_rb / 2**20:.0f} MiB); "
              f"client sockets {cli_n}: Send-Q {cli_sq / 2**20:.0f} MiB (wmem queued {cli_tb / 2**20:.0f} MiB); "
              f"sockstat TCP mem {mem_pages() * 4 / 1024:.0f} MiB", flush=True)
finally:
    ab.terminate(); ab.wait()
    p.stop()
