"""Probe: stalled uploads spill into a small tmpfs data dir. Does the disk reserve
survive (deletes still accepted, compaction room) ? Does the budget hold?"""
import os, sys, time, socket, subprocess, tempfile, re
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "tests", "blackbox"))
from kingx_harness import Server, Conn, http, key_path, metric, build_request

N = int(os.environ.get("N", "60"))
BODY = int(os.environ.get("BODY", str(1 << 20)))
SEND = BODY - 1
work = tempfile.mkdtemp(prefix="audit-spill-", dir="/tmp")
data = os.path.join(work, "data"); os.makedirs(data)
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", data], check=True)
def free():
    st = os.statvfs(data); return st.f_bavail * st.f_frsize
socks = []
s = Server(["--workers", "1", "--body-timeout-ms", "120000"] + sys.argv[1:], data_dir=data, workdir=work)
try:
    s.start()
    NK = int(os.environ.get("NK", "10"))
    from kingx_harness import Conn as _C
    with _C(s.port) as cc:
        for i in range(NK):
            r = cc.request("PUT", key_path(f"k{i}"), os.urandom(100000 if NK == 10 else 100))
            assert r.status in (201, 204), r
    print("free after fill", free(), "reserve", metric(s.port, "kingx_disk_reserve_bytes"),
          "disk_full", metric(s.port, "kingx_disk_full"))
    for i in range(N):
        c = socket.create_connection(("127.0.0.1", s.port))
        c.sendall(build_request("PUT", key_path(f"up{i}"), None, [("Content-Length", str(BODY))]))
        c.setblocking(False)
        socks.append(c)
    chunk = os.urandom(SEND)
    last = os.urandom(1)
    sent = [0] * N
    t0 = time.time()
    while time.time() - t0 < 20 and min(sent) < SEND:
        for i, c in enumerate(socks):
            if sent[i] < SEND:
                try:
                    sent[i] += c.send(chunk[sent[i]:SEND])
                except BlockingIOError:
                    pass
        time.sleep(0.01)
    print("sent", sum(sent), "of", N * SEND, "in", round(time.time() - t0, 1), "s")
    for t in range(8):
        time.sleep(1)
        w = s.workers()[0]
        spill = 0; nspill = 0
        for fd in os.listdir(f"/proc/{w}/fd"):
            try:
                l = os.readlink(f"/proc/{w}/fd/{fd}")
                if "body-spill" in l:
                    nspill += 1; spill += os.stat(f"/proc/{w}/fd/{fd}").st_size
            except OSError:
                pass
        print(f"t+{t+1}s free {free()} spill files {nspill} bytes {spill} disk_full {metric(s.port, 'kingx_disk_full')}")
    # What a full-disk-reserve user expects: a DELETE is accepted; a small PUT 201 or 507, never 500
    st = {}
    with _C(s.port) as cc:
        for i in range(NK):
            r = cc.request("DELETE", key_path(f"k{i}"))
            st[r.status] = st.get(r.status, 0) + 1
            if r.status not in (204,) and st[r.status] < 3: print("  DELETE", i, r.status, r.body[:250])
    print("DELETEs of", NK, "keys:", st)
    r = http(s.port, "PUT", key_path("small"), b"x" * 100)
    print("PUT small ->", r.status, r.body[:200])
    r = http(s.port, "GET", "/readyz"); print("readyz", r.status, r.body[:200])
    print("ls -a data:", os.listdir(data))
    if os.environ.get("FINISH") == "1":
        from kingx_harness import adopt
        for c in socks:
            c.setblocking(True); c.sendall(last)
        st = {}
        for i, c in enumerate(socks):
            try:
                r = adopt(c, s.port, 60).read_response(); code = r.status
            except Exception as e:
                code = repr(e)[:40]
            st.setdefault(code, []).append(i)
        print("finished uploads:", {k: len(v) for k, v in st.items()})
        bad = 0
        for i in st.get(201, []):
            g = http(s.port, "GET", key_path(f"up{i}"), timeout=30)
            if g.status != 200 or g.body != chunk + last: bad += 1
        for code, idx in st.items():
            if code != 201:
                for i in idx:
                    g = http(s.port, "GET", key_path(f"up{i}"), timeout=30)
                    if g.status != 404: bad += 1
        print("uploads read back wrong:", bad)
finally:
    for c in socks:
        c.close()
    time.sleep(1)
    try:
        print("after close: free", free(), "ls", os.listdir(data))
        r = http(s.port, "PUT", key_path("small2"), b"x" * 100); print("PUT small2 after close ->", r.status)
    except Exception as e:
        print("after close err", e)
    s.stop()
    print(open(s.error_log).read()[-3000:])
    subprocess.run(["umount", data])
