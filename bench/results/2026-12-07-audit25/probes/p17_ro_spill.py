import os, socket, sys, time, shutil, tempfile
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "tests", "blackbox"))
from kingx_harness import Server, http, key_path, build_request
s = Server(["--workers", "1"]); s.start()
for i in range(10): http(s.port, "PUT", key_path(f"k{i}"), os.urandom(1000))
s.stop()
ro = Server(["--read-only", "--workers", "1", "--body-buffer-bytes", "1M"] + sys.argv[1:], data_dir=s.data_dir); ro.start()
def snap(d):
    out = {}
    for root, dirs, files in os.walk(d):
        for n in files + dirs:
            p = os.path.join(root, n); st = os.lstat(p); out[p] = (st.st_size, st.st_mtime_ns)
    return out
before = snap(s.data_dir)
socks = []
for i in range(20):
    c = socket.create_connection(("127.0.0.1", ro.port))
    c.sendall(build_request("PUT", key_path(f"u{i}"), None, [("Content-Length", str(1 << 20))]))
    try: c.sendall(os.urandom(300000))
    except OSError: pass
    socks.append(c)
time.sleep(2.5)
w = ro.workers()[0]
spills = [os.readlink(f"/proc/{w}/fd/{fd}") for fd in os.listdir(f"/proc/{w}/fd") if "spill" in os.readlink(f"/proc/{w}/fd/{fd}")]
st = []
for c in socks:
    c.settimeout(3)
    try: st.append(c.recv(40)[:12])
    except Exception as e: st.append(type(e).__name__)
print("answers:", set(st), "spill files:", spills, "dir unchanged:", snap(s.data_dir) == before)
for c in socks: c.close()
ro.cleanup(); s.cleanup()
