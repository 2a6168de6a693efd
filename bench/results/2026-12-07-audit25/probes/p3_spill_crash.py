"""Probe: spilled uploads and crashes. kill -9 of the worker and of the whole group
while uploads are spilled: no spill file left in the data directory, every acked write
intact, the uploads' keys absent. Also --body-spill-bytes 1M budget honoured."""
import os, socket, sys, time, tempfile, signal
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "tests", "blackbox"))
from kingx_harness import Server, http, key_path, metric, build_request, wait_for

N = int(os.environ.get("N", "40")); BODY = 256 << 10
def spill_state(s):
    tot = n = 0
    for w in s.workers():
        for fd in os.listdir(f"/proc/{w}/fd"):
            try:
                if "body-spill" in os.readlink(f"/proc/{w}/fd/{fd}"):
                    n += 1; tot += os.stat(f"/proc/{w}/fd/{fd}").st_size
            except OSError: pass
    return n, tot
def stalled(s, n, body):
    socks = []
    for i in range(n):
        c = socket.create_connection(("127.0.0.1", s.port))
        c.sendall(build_request("PUT", key_path(f"up{i}"), None, [("Content-Length", str(body))]) + os.urandom(body - 1))
        socks.append(c)
    return socks
for extra in ([], ["--body-spill-bytes", "1M"]):
    s = Server(["--workers", "2", "--body-timeout-ms", "120000", "--body-buffer-bytes", "4M"] + extra + sys.argv[1:])
    s.start()
    try:
        for i in range(20):
            http(s.port, "PUT", key_path(f"k{i}"), b"v%d" % i)
        socks = stalled(s, N, BODY)
        most = 0
        for t in range(6):
            time.sleep(0.5); n, tot = spill_state(s); most = max(most, tot)
        print(extra, f"spill files {n} bytes {tot} (largest seen {most})", "data dir:", sorted(os.listdir(s.data_dir)))
        r = http(s.port, "PUT", key_path("probe64k"), os.urandom(65536), timeout=30)
        print("  64 KiB PUT beside them ->", r.status)
        w = s.workers()[0]
        os.kill(w, signal.SIGKILL)
        time.sleep(1)
        print("  after kill -9 of worker", w, "data dir:", sorted(os.listdir(s.data_dir)))
        socks2 = stalled(s, N, BODY); time.sleep(2.5)
        print("  again", spill_state(s))
        s.kill_group()
        print("  after kill -9 of group, data dir:", sorted(os.listdir(s.data_dir)))
        s.start()
        ok = all(http(s.port, "GET", key_path(f"k{i}")).body == b"v%d" % i for i in range(20))
        ups = [http(s.port, "GET", key_path(f"up{i}")).status for i in range(N)]
        print("  after restart: acked intact", ok, "uploads' keys:", {x: ups.count(x) for x in set(ups)})
        for c in socks + socks2: c.close()
    finally:
        s.cleanup()
