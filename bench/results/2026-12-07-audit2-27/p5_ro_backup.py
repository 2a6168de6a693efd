#!/usr/bin/env python3
"""audit2 probe: README "Read-only serving" and "Backup and restore" details
sessions 25-26 did not probe.

    KINGX_BIN=/work/ref/s27/kingx KINGX_TOOL=/work/ref/s27/kingx-tool python3 p5_ro_backup.py [extra flags]
"""
import glob, io, os, re, shutil, signal, socket, subprocess, sys, tarfile, tempfile, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../tests/blackbox"))
from kingx_harness import Conn, Server, http  # noqa

EXTRA = sys.argv[1:]
TOOL = os.environ["KINGX_TOOL"]
results = []


def report(name, ok, detail):
    results.append((name, ok))
    print(("HELD " if ok else "FALSE") + f" {name}: {detail}", flush=True)


def metrics(port):
    body = http(port, "GET", "/metrics", timeout=30).body.decode()
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(\S+) (\S+)$", body, re.M)}


def wd(work, name):
    p = os.path.join(work, name)
    os.makedirs(p, exist_ok=True)
    return p


def main():
    work = tempfile.mkdtemp(prefix="audit2-ro-", dir="/tmp")
    data = os.path.join(work, "data")
    vals = {}
    rw = Server(["--workers", "1", "--segment-bytes", "1M"] + EXTRA, data_dir=data, workdir=wd(work, "rw"))
    rw.start()
    for i in range(300):
        v = os.urandom(100 + (i * 977) % 40000)
        vals["k%03d" % i] = v
        assert http(rw.port, "PUT", "/v1/kv/k%03d" % i, v).status == 201
    rw.kill_group()  # kill -9: torn tail possible, keys/ view as it was
    rw.proc.wait()
    # read-only server, scratch dir under a private TMPDIR
    tmpd = os.path.join(work, "tmp"); os.makedirs(tmpd)
    os.environ["TMPDIR"] = tmpd
    ro = Server(["--workers", "1", "--read-only"] + EXTRA, data_dir=data, workdir=wd(work, "ro"), admin=True)
    ro.start()
    try:
        scratch = glob.glob(os.path.join(tmpd, "kingx-ro-keys-*"))
        report("RO scratch directory under $TMPDIR, named kingx-ro-keys-<pid>-*", len(scratch) == 1 and str(ro.pid) in scratch[0] if scratch else False, f"{scratch}")
        r = http(ro.port, "DELETE", "/v1/kv/k001")
        ok = r.status == 405 and r.header("Allow") == "GET, HEAD" and "--read-only" in r.body.decode() and r.header("Content-Type") == "application/problem+json"
        report("RO DELETE 405, Allow: GET, HEAD, problem+json naming --read-only", ok, f"{r.status} Allow={r.header('Allow')} {r.body[:160]!r}")
        r = http(ro.admin_port, "POST", "/admin/compact")
        report("RO POST /admin/compact 409", r.status == 409, f"{r.status} {r.body[:160]!r}")
        # listing: 503 + Retry-After until the view is complete, then every key
        t0 = time.monotonic(); first = None
        while True:
            r = http(ro.port, "GET", "/v1/kv/?limit=1000")
            if first is None:
                first = (r.status, r.header("Retry-After"))
            if r.status != 503 or time.monotonic() - t0 > 20:
                break
            time.sleep(0.05)
        keys = re.findall(rb'k\d{3}', r.body)
        report("RO listing: every key once the view is complete (503 + Retry-After before)", r.status == 200 and len(set(keys)) == 300 and (first[0] == 200 or first[1]), f"first {first}, then {r.status} with {len(set(keys))} keys")
        m = metrics(ro.port)
        report("RO kingx_keyspace_rebuilds_total counted (or a valid keys/ view used)", "kingx_keyspace_rebuilds_total" in m, f'{m.get("kingx_keyspace_rebuilds_total")}')
        bad = [k for k, v in vals.items() if http(ro.port, "GET", "/v1/kv/" + k).body != v]
        report("RO GET every acked key after kill -9", not bad, f"{len(bad)} wrong")
        # a backup of the read-only server, restored, verified, served
        r = http(ro.admin_port, "GET", "/admin/backup", timeout=60)
        nxt = r.header("Kingx-Backup-Next-Seq")
        rest = os.path.join(work, "restored"); os.makedirs(rest)
        tarfile.open(fileobj=io.BytesIO(r.body)).extractall(rest)
        v = subprocess.run([TOOL, "--data", rest, "verify"], capture_output=True, text=True)
        report("RO server's backup after kill -9: verify exit 0", v.returncode == 0, f"rc {v.returncode} {v.stdout.strip()[-200:]} {v.stderr.strip()[-200:]}")
        names = tarfile.open(fileobj=io.BytesIO(r.body)).getnames()
        report("backup holds no LOCK, staging files or keys/", not any(n == "LOCK" or n.startswith("keys") or n.endswith(".tmp") for n in names), f"{names[:8]}... ({len(names)})")
        # a second RO server on the same dir at once
        ro2 = Server(["--workers", "1", "--read-only"] + EXTRA, data_dir=data, workdir=wd(work, "ro2"))
        ro2.start()
        report("two RO servers share the directory", http(ro2.port, "GET", "/v1/kv/k007").body == vals["k007"], "")
        ro2.stop()
        # a RW start while RO runs: exits naming the holder
        rw2 = Server(["--workers", "1"] + EXTRA, data_dir=data, workdir=wd(work, "rw2"))
        rw2.start(wait=False)
        try:
            rc = rw2.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            rc = None
        out = rw2.logs()[-400:]
        report("a RW start beside a RO server exits saying which holder", rc not in (None, 0) and "read-only" in out.lower(), f"rc {rc}: {out.strip()[-200:]!r}")
        if rc is None:
            rw2.kill_group()
        # the restored copy served read-write goes on from the cut
        cp = Server(["--workers", "1"] + EXTRA, data_dir=rest, workdir=wd(work, "cp"))
        cp.start()
        bad = [k for k, v in vals.items() if http(cp.port, "GET", "/v1/kv/" + k).body != v]
        r = http(cp.port, "PUT", "/v1/kv/new", b"n")
        et = int(r.header("ETag").strip('"'))
        report("restored copy: every key; next ETag >= Kingx-Backup-Next-Seq", not bad and et >= int(nxt), f"{len(bad)} wrong, ETag {et}, Next-Seq {nxt}")
        cp.stop()
        # RO stop removes the scratch dir; a SIGKILLed one's is removed by the next RO start
        ro.kill_group(); ro.proc.wait()
        left = glob.glob(os.path.join(tmpd, "kingx-ro-keys-*"))
        ro3 = Server(["--workers", "1", "--read-only"] + EXTRA, data_dir=data, workdir=wd(work, "ro3"))
        ro3.start(); time.sleep(0.5)
        after = glob.glob(os.path.join(tmpd, "kingx-ro-keys-*"))
        ro3.stop()
        final = glob.glob(os.path.join(tmpd, "kingx-ro-keys-*"))
        report("RO scratch: a SIGKILLed one's removed by the next RO start, its own at stop", len(left) == 1 and left[0] not in after and not final, f"left {left}, during {after}, after stop {final}")
    finally:
        for s in (ro,):
            try: s.stop()
            except Exception: pass
        shutil.rmtree(work, ignore_errors=True)


def backup_no_room():
    # a backup that finds no room in --response-buffer-bytes: 503 + Retry-After naming the setting
    import random
    rnd = random.Random(5)
    words = [bytes(rnd.choice(b"abcdefghij") for _ in range(rnd.randint(3, 9))) for _ in range(500)]
    val = b" ".join(rnd.choice(words) for _ in range(1 << 20))[:8 << 20]
    with Server(["--workers", "1", "--response-buffer-bytes", "1M", "--send-timeout-ms", "4000"] + EXTRA, admin=True) as s:
        assert http(s.port, "PUT", "/v1/kv/z", val).status == 201
        silent = []
        for i in range(40):
            c = socket.create_connection(("127.0.0.1", s.port))
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            c.sendall(b"GET /v1/kv/z HTTP/1.1\r\nHost: x\r\n\r\n")
            silent.append(c)
        time.sleep(0.5)
        t0 = time.monotonic()
        r = http(s.admin_port, "GET", "/admin/backup", timeout=20)
        el = time.monotonic() - t0
        ok = r.status == 503 and "response-buffer-bytes" in r.body.decode("latin-1") and r.header("Retry-After")
        report("a backup with no room in --response-buffer-bytes: 503 + Retry-After naming it", bool(ok) or r.status == 200,
               f"{r.status} after {el:.2f}s {r.body[:200]!r} RA={r.header('Retry-After')}")
        for c in silent:
            c.close()


for c in [globals()[n] for n in os.environ.get('CASES', 'main backup_no_room').split()]:
    try:
        c()
    except Exception as e:
        import traceback; traceback.print_exc()
        report(c.__name__, False, f"probe error {e!r}")
bad = [n for n, ok in results if not ok]
print(f"{len(results) - len(bad)} held, {len(bad)} false")
