import os, sys, tempfile, shutil
sys.path.insert(0, "/work/wt/abuse/bench")
import abuse
from harness import peers
root = tempfile.mkdtemp(prefix="serial-")
try:
    for rnd in range(3):
        for name, b in (("ref", "/work/ref/s19/kingx"), ("new", "/tmp/abuse19/bin-rel5/kingx")) if rnd % 2 == 0 else (("new", "/tmp/abuse19/bin-rel5/kingx"), ("ref", "/work/ref/s19/kingx")):
            w = tempfile.mkdtemp(dir=root)
            k = abuse.kingx_server(b, os.path.join(w, "k"), 1, "event", [], name=name)
            p, nport = peers.start_nginx(os.path.join(w, "n"), 1, extra_locations=f"location /px/ {{ proxy_pass http://127.0.0.1:{k.port}/; }}")
            try:
                rps, p99, err, req = abuse.run_wrk(f"http://127.0.0.1:{nport}/px/v1/kv/small", 1, 4)
                print(rnd, name, "c1 rps", rps, "p99", p99, "load", open("/proc/loadavg").read().split()[0], flush=True)
            finally:
                p.stop(); k.stop()
finally:
    shutil.rmtree(root, ignore_errors=True)
