"""Probe: online backups of a server under write load; every restore holds exactly
the newest PUT below Kingx-Backup-Next-Seq of every key; archives cut at random
offsets inside the segments' data answer that value or 500, never older or 404."""
import hashlib, io, os, random, shutil, subprocess, sys, tarfile, threading, time, tempfile
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "tests", "blackbox"))
from kingx_harness import Server, Conn, http, key_path, ConnectionClosed, parse_etag

BACKUPS = int(os.environ.get("BACKUPS", "4"))
CUTS = int(os.environ.get("CUTS", "4"))
MODEL = sys.argv[1:]
sizes = [0, 100, 255, 256, 1024, 1025, 65536, 65537, 300000, (1 << 20), (1 << 20) + 1]
keys = [f"b/{i:03d}" for i in range(120)]
s = Server(["--workers", "2", "--segment-bytes", "1M", "--compaction-dead-ratio", "0.3"] + MODEL, admin=True)
s.start()
puts = {}  # key -> list of (etag, sha, t_ack)
lock = threading.Lock()
stop = threading.Event()
def writer(seed):
    rng = random.Random(seed)
    while not stop.is_set():
        try:
            with Conn(s.port, timeout=30) as c:
                for _ in range(100):
                    if stop.is_set(): break
                    k = rng.choice(keys)
                    n = rng.choice(sizes)
                    v = rng.randbytes(n) if rng.random() < 0.5 else (b"compressible-%d-" % rng.randrange(1 << 30)) * (n // 20 + 1)
                    v = v[:n]
                    r = c.request("PUT", key_path(k), v)
                    if r.status in (201, 204):
                        with lock:
                            puts.setdefault(k, []).append((parse_etag(r.header("ETag")), hashlib.sha256(v).hexdigest(), time.monotonic()))
        except (OSError, ConnectionClosed):
            time.sleep(0.1)
for k in keys:  # every key exists before any backup
    v = os.urandom(50)
    r = http(s.port, "PUT", key_path(k), v)
    puts.setdefault(k, []).append((parse_etag(r.header("ETag")), hashlib.sha256(v).hexdigest(), time.monotonic()))
ths = [threading.Thread(target=writer, args=(i,)) for i in range(3)]
for t in ths: t.start()
archives = []
for b in range(BACKUPS):
    time.sleep(1.5)
    t_send = time.monotonic()
    with Conn(s.admin_port, timeout=120) as c:
        r = c.request("GET", "/admin/backup")
    assert r.status == 200, r
    archives.append((t_send, int(r.header("Kingx-Backup-Next-Seq")), r.body))
    print(f"backup {b}: {len(r.body)} bytes next_seq {r.header('Kingx-Backup-Next-Seq')}", flush=True)
stop.set()
for t in ths: t.join()
s.cleanup()

def expected(next_seq):
    exp = {}
    for k, lst in puts.items():
        below = [p for p in lst if p[0] < next_seq]
        exp[k] = max(below)[1] if below else None
    return exp

bad = 0
tool = os.environ.get("KINGX_TOOL_BIN")
for i, (t_send, nseq, body) in enumerate(archives):
    late = [(k, p) for k, lst in puts.items() for p in lst if p[2] < t_send and p[0] >= nseq]
    if late:
        print(f"backup {i}: FALSE {len(late)} PUTs acked before the request have ETag >= next_seq"); bad += 1
    exp = expected(nseq)
    tf = tarfile.open(fileobj=io.BytesIO(body))
    members = tf.getmembers()
    data_start = min(m.offset for m in members if m.name.endswith(".kxd"))
    crng = random.Random(i * 7 + 1); cuts = [None] + sorted(crng.randrange(data_start, len(body)) for _ in range(CUTS))
    for cut in cuts:
        d = tempfile.mkdtemp(prefix="audit-restore-", dir="/tmp")
        arch = os.path.join(d, "a.tar")
        with open(arch, "wb") as f: f.write(body if cut is None else body[:cut])
        rd = os.path.join(d, "data"); os.makedirs(rd)
        rc = subprocess.run(["tar", "-xf", arch, "-C", rd], capture_output=True).returncode
        v = subprocess.run([tool, "--data", rd, "verify"], capture_output=True, text=True) if tool else None
        srv = Server(["--read-only", "--workers", "1"] + MODEL, data_dir=rd, workdir=d)
        srv.start()
        counts = {"ok": 0, "500": 0}
        for k in keys:
            r = http(srv.port, "GET", key_path(k), timeout=30)
            if r.status == 200 and hashlib.sha256(r.body).hexdigest() == exp[k]:
                counts["ok"] += 1
            elif r.status == 500 and cut is not None:
                counts["500"] += 1
            else:
                got = hashlib.sha256(r.body).hexdigest() if r.status == 200 else None
                older = [p[0] for p in puts[k] if p[1] == got]
                counts.setdefault(f"BAD {r.status}", 0); counts[f"BAD {r.status}"] += 1
                if counts[f"BAD {r.status}"] <= 3:
                    print(f"   key {k}: status {r.status} etag {r.header('ETag')} older-match {older} expected newest<{nseq}")
        srv.cleanup()
        shutil.rmtree(d, ignore_errors=True)
        bads = sum(n for kk, n in counts.items() if kk.startswith("BAD"))
        bad += bads > 0
        print(f"backup {i} cut {cut} of {len(body)} (data from {data_start}): tar rc {rc} verify {v.returncode if v else '-'} {counts}", flush=True)
print("BAD" if bad else "HELD")
