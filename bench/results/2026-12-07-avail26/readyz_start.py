# usage: readyz_start.py WORKDIR KINGX RUNS   starts kingx as probe404's preload_repro.py did (access log on), waits
# for /readyz 200 with the harness's wait_http_ok (0.1 s polls), stops it; prints the access log's 503 lines.
import os, signal, subprocess, sys, time, shutil
sys.path.insert(0, "/work/wt/avail/bench")
from harness import procs
w, kb, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(runs):
    d = os.path.join(w, f"s{i}"); shutil.rmtree(d, ignore_errors=True); os.makedirs(d + "/data")
    port = procs.free_port()
    argv = [kb, "--listen", f"127.0.0.1:{port}", "--data", d + "/data", "--workers", "1", "--model", "event",
            "--sync", "none", "--access-log", d + "/access.log", "--error-log", d + "/error.log",
            "--max-connections", "19000", "--accept", "reuseport"]
    p = procs.Proc("kingx", argv, d + "/kingx.log")
    t0 = time.monotonic()
    procs.wait_http_ok(port, "/readyz", 60, p)
    st, body = procs.http_request(port, "GET", "/v1/kv/k999999")
    p.stop(signal.SIGQUIT, timeout_s=60)
    lines = [l.strip() for l in open(d + "/access.log") if '" 503 ' in l]
    print(f"run {i}: ready after {time.monotonic() - t0:.2f}s; GET absent key -> {st}; 503 lines: {lines}", flush=True)
