# Slow-body abuse alone (3,000 slowhttptest -B), 10 s in: strace -c -f of the worker for 5 s; kingx then nginx.
import sys, os, time, types, subprocess, tempfile, shutil
sys.path.insert(0, "/work/wt/abuse/bench")
import abuse
abuse.BIG = os.urandom(1 << 20)
out = sys.argv[1]
for name in ("kingx", "nginx"):
    wd = tempfile.mkdtemp(dir="/tmp/abuse22")
    srv = None; ps = []
    try:
        srv = abuse.one_worker_server(name, "/work/wt/abuse/build-release/src/kingx" if name == "kingx" else None, wd)
        args = types.SimpleNamespace(settle=10, duration=10, steady=0, abuse_conns=3000, workers=1)
        ps = abuse.start_abuse("slow-body", srv, args, wd)
        time.sleep(10)
        w = srv.worker_pids()[0]
        subprocess.run(["timeout", "-s", "INT", "5", "strace", "-c", "-f", "-p", str(w), "-o", f"{out}/sb-strace-{name}.txt"])
        print(name, "established", abuse.established(srv.port), "load", os.getloadavg()[0])
    finally:
        for p in ps: p.stop()
        if srv: srv.stop()
        shutil.rmtree(wd, ignore_errors=True)
