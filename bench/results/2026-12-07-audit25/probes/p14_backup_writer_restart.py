"""Probe: a backup being streamed while the writer restarts (kill -9, or a HUP changing a writer setting)
under write load: the archive is whole and restores to exactly the newest PUT below Next-Seq, or it is cut short."""
import hashlib, io, json, os, random, signal, socket, subprocess, sys, tarfile, threading, time, tempfile, shutil
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "tests", "blackbox"))
from kingx_harness import Server, Conn, http, key_path, ConnectionClosed, parse_etag, build_request
how = os.environ.get("HOW", "kill")
work = tempfile.mkdtemp(prefix="audit-bwr-", dir="/tmp")
conf = os.path.join(work, "kingx.json"); json.dump({"workers": 2, "segment_bytes": "1M"}, open(conf, "w"))
s = Server(["--config", conf] + sys.argv[1:], workdir=work, admin=True); s.start()
keys = [f"b/{i:03d}" for i in range(100)]
puts = {}; lock = threading.Lock(); stop = threading.Event()
def writer(seed):
    rng = random.Random(seed)
    while not stop.is_set():
        try:
            with Conn(s.port, timeout=30) as c:
                for _ in range(50):
                    k = rng.choice(keys); v = rng.randbytes(rng.choice([100, 300, 5000, 70000]))
                    r = c.request("PUT", key_path(k), v)
                    if r.status in (201, 204):
                        with lock: puts.setdefault(k, []).append((parse_etag(r.header("ETag")), hashlib.sha256(v).hexdigest()))
        except (OSError, ConnectionClosed):
            time.sleep(0.05)
for k in keys:
    v = os.urandom(30000); r = http(s.port, "PUT", key_path(k), v)
    puts.setdefault(k, []).append((parse_etag(r.header("ETag")), hashlib.sha256(v).hexdigest()))
ths = [threading.Thread(target=writer, args=(i,)) for i in range(3)]
for t in ths: t.start()
time.sleep(1)
sock = socket.create_connection(("127.0.0.1", s.admin_port)); sock.sendall(build_request("GET", "/admin/backup"))
buf = b""
while b"\r\n\r\n" not in buf: buf += sock.recv(65536)
head, _, body = buf.partition(b"\r\n\r\n")
hd = dict(l.split(b": ", 1) for l in head.split(b"\r\n")[1:])
length = int(hd[b"Content-Length"]); nseq = int(hd[b"Kingx-Backup-Next-Seq"])
print("backup length", length, "next seq", nseq)
slow_until = time.time() + 3
restarted = False
while len(body) < length:
    if not restarted and len(body) > length // 3:
        if how == "kill":
            wpid = s.children("kingx-writer")[0][0]; os.kill(wpid, signal.SIGKILL); print("writer", wpid, "killed at", len(body))
        else:
            json.dump({"workers": 2, "segment_bytes": "1M", "log_level": "debug"}, open(conf, "w")); s.signal(signal.SIGHUP); print("HUP (log level) at", len(body))
        restarted = True
        time.sleep(1.5)
    d = sock.recv(16384)
    if not d: break
    body += d
    if time.time() < slow_until: time.sleep(0.01)
stop.set()
for t in ths: t.join()
print("received", len(body), "of", length)
if len(body) == length:
    d = os.path.join(work, "restore"); os.makedirs(d)
    tarfile.open(fileobj=io.BytesIO(body)).extractall(d)
    srv = Server(["--read-only", "--workers", "1"], data_dir=d, workdir=os.path.join(work, "ro")) if False else None
    rw = os.path.join(work, "ro"); os.makedirs(rw)
    srv = Server(["--read-only", "--workers", "1"], data_dir=d, workdir=rw); srv.start()
    bad = 0
    for k in keys:
        below = [p for p in puts[k] if p[0] < nseq]
        exp = max(below)[1]
        r = http(srv.port, "GET", key_path(k))
        if r.status != 200 or hashlib.sha256(r.body).hexdigest() != exp:
            bad += 1
            if bad < 4: print("  key", k, r.status, r.header("ETag"), "expected etag", max(below)[0])
    print("restore: bad keys", bad, "of", len(keys))
    srv.cleanup()
print("writer restarts:", s.children("kingx-writer"))
s.cleanup()
