"""The test's count (/proc/net/tcp) beside the worker's socket descriptors, at the test's moment."""
import os, socket, sys, time
sys.path.insert(0, "/work/wt/abuse/tests/blackbox")
import test_abuse as T
from kingx_harness import Conn, wait_for

model = sys.argv[1]
if model == "threads":
    T.MODEL_ARGS = ["--model", "threads", "--threads", "64"]
def accepted_connections(port):
    """The old test's count: ESTABLISHED server-side sockets in /proc/net/tcp, by distinct inode."""
    inodes = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            if int(parts[1].split(":")[1], 16) == port and parts[3] == "01" and parts[9] != "0":
                inodes.add(parts[9])
    return len(inodes)
T.accepted_connections = accepted_connections
def sockfds(pid):
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return n
s = T.start("--workers", "1", "--segment-bytes", "64K", "--compression-level", "0", nofile=400)
try:
    for i in range(12):
        T.put(s.port, f"seg{i}", os.urandom(60000))
    keep = Conn(s.port)
    keep.request("GET", "/healthz")
    wpid = s.workers()[0]
    base = sockfds(wpid) - 1
    flood = []
    for _ in range(700):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.setblocking(False)
        c.connect_ex(("127.0.0.1", s.port))
        flood.append(c)
    t0 = time.monotonic()
    wait_for(lambda: T.accepted_connections(s.port) >= 150, 20, "flood")
    t1 = time.monotonic()
    time.sleep(0.5)
    t2 = time.monotonic()
    held = T.accepted_connections(s.port)
    t3 = time.monotonic()
    fds = sockfds(wpid) - base
    t4 = time.monotonic()
    mt, mf, n = held, fds, 0
    end = time.monotonic() + 8
    while time.monotonic() < end:
        a = T.accepted_connections(s.port); b = sockfds(wpid) - base
        mt, mf, n = max(mt, a), max(mf, b), n + 1
    print(f"{model} sampled {n}: max tcp_count {mt} max fd_count {mf}")
    print(f"{model} tcp_count {held} read_s {t3-t2:.2f} fd_count {fds} (base {base}) fd_read_s {t4-t3:.2f} wait_s {t1-t0:.2f}", flush=True)
    for c in flood: c.close()
    keep.close()
finally:
    s.cleanup()
