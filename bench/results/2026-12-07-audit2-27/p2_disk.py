#!/usr/bin/env python3
"""audit2 probe: README "When the disk fills", with the disk filled by another
process (dd), not by kingx's own puts: (a) a serving database, the disk taken
to 0 bytes free by a filler file: PUT 507, GET 200, DELETE (never refused),
then the filler removed: PUTs accepted again with no restart; (b) a fresh
empty data directory on a disk already at 0 free: the server starts, PUT 507,
filler removed, PUT 201 with no restart; (c) the reserve edge: the filler
leaves free = reserve + a few KiB; PUTs of 4 KiB until refused; the free space
never goes below the reserve less one record.

    KINGX_BIN=/work/ref/s27/kingx python3 p2_disk.py [extra flags]
"""
import os, re, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../tests/blackbox"))
from kingx_harness import Server, http  # noqa

EXTRA = sys.argv[1:]
results = []


def report(name, ok, detail):
    results.append((name, ok))
    print(("HELD " if ok else "FALSE") + f" {name}: {detail}", flush=True)


def metrics(port):
    body = http(port, "GET", "/metrics", timeout=30).body.decode()
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(\S+) (\S+)$", body, re.M)}


class Disk:
    def __init__(self, size):
        self.workdir = tempfile.mkdtemp(prefix="audit2-disk-", dir="/tmp")
        self.mnt = os.path.join(self.workdir, "mnt")
        os.makedirs(self.mnt)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", self.mnt], check=True)
        self.data = os.path.join(self.mnt, "data")

    def free(self):
        st = os.statvfs(self.mnt)
        return st.f_bavail * st.f_frsize

    def fill(self, leave=0, name="filler"):
        """A filler file (outside the data dir) taking all but `leave` bytes."""
        n = self.free() - leave
        path = os.path.join(self.mnt, name)
        with open(path, "ab") as f:
            chunk = b"\0" * (1 << 20)
            while n > 0:
                try:
                    n -= f.write(chunk[:min(n, len(chunk))])
                    f.flush()
                except OSError:
                    break
        return path

    def close(self):
        subprocess.run(["umount", "-l", self.mnt])
        subprocess.run(["rm", "-rf", self.workdir])


def wait_for(fn, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    return fn()


def case_a():
    d = Disk("48m")
    s = Server(["--workers", "1"] + EXTRA, workdir=d.workdir, data_dir=d.data)
    s.start()
    try:
        val = os.urandom(64 << 10)
        for i in range(100):
            assert http(s.port, "PUT", "/v1/kv/a%d" % i, val).status == 201
        filler = d.fill()
        print("free after filler:", d.free())
        st = [http(s.port, "PUT", "/v1/kv/new%d" % i, val).status for i in range(5)]
        report("(a) PUT on a disk another process filled", all(x == 507 for x in st), f"{st}")
        g = [http(s.port, "GET", "/v1/kv/a%d" % i).status for i in range(0, 100, 10)]
        report("(a) GETs keep working", all(x == 200 for x in g), f"{g}")
        dl = [http(s.port, "DELETE", "/v1/kv/a%d" % i).status for i in range(50)]
        report("(a) DELETEs never refused (50 keys, 0 bytes free)", all(x in (200, 204) for x in dl),
               f"{sorted(set(dl))} ({sum(1 for x in dl if x == 507)} x 507); free {d.free()}")
        rz = http(s.port, "GET", "/readyz")
        report("(a) /readyz 503 naming the disk", rz.status == 503 and b"disk" in rz.body.lower(), f"{rz.status} {rz.body[:160]!r}")
        m = metrics(s.port)
        report("(a) kingx_disk_full 1", m.get("kingx_disk_full") == 1, f'{m.get("kingx_disk_full")}')
        os.unlink(filler)
        t0 = time.monotonic()
        ok = wait_for(lambda: http(s.port, "PUT", "/v1/kv/back", val).status == 201, 30)
        report("(a) filler removed: PUT accepted again, no restart", bool(ok), f"after {time.monotonic() - t0:.1f} s")
        ok2 = wait_for(lambda: http(s.port, "GET", "/readyz").status == 200, 10)
        m = metrics(s.port)
        report("(a) /readyz 200 and kingx_disk_full 0 again", bool(ok2) and m.get("kingx_disk_full") == 0,
               f'readyz {http(s.port, "GET", "/readyz").status}, disk_full {m.get("kingx_disk_full")}')
        warn = [l for l in s.logs().splitlines() if "warn" in l.lower() and ("room" in l.lower() or "accept" in l.lower() or "space" in l.lower())]
        report("(a) a warn line when writes are accepted again", bool(warn), f"{warn[-1:]}")
    finally:
        s.stop(); d.close()


def case_b():
    d = Disk("32m")
    d.fill()
    s = Server(["--workers", "1"] + EXTRA, workdir=d.workdir, data_dir=d.data)
    try:
        try:
            s.start(wait=False)
            ok = wait_for(lambda: s.alive() and _status(s.port, "/healthz") == 200, 20)
        except Exception as e:
            ok = False; print("start:", e)
        report("(b) a fresh data dir on a full disk: the server starts", bool(ok) and s.alive(), s.logs()[-400:] if not ok else "")
        if not ok:
            return
        st = _status(s.port, "/v1/kv/x", "PUT", b"v" * 1000)
        g = _status(s.port, "/v1/kv/x")
        report("(b) PUT 507, GET 404", st == 507 and g == 404, f"PUT {st} GET {g}")
        os.unlink(os.path.join(d.mnt, "filler"))
        t0 = time.monotonic()
        ok = wait_for(lambda: _status(s.port, "/v1/kv/x", "PUT", b"v" * 1000) == 201, 30)
        report("(b) filler removed: PUT 201 with no restart", bool(ok), f"after {time.monotonic() - t0:.1f} s")
    finally:
        s.stop(); d.close()


def _status(port, path, method="GET", body=None):
    try:
        return http(port, method, path, body, timeout=5).status
    except Exception as e:
        return repr(e)


def case_c():
    d = Disk("48m")
    s = Server(["--workers", "1"] + EXTRA, workdir=d.workdir, data_dir=d.data)
    s.start()
    try:
        http(s.port, "PUT", "/v1/kv/first", b"f")
        m = metrics(s.port)
        R = m["kingx_disk_reserve_bytes"]
        d.fill(leave=int(R) + (256 << 10))
        if os.environ.get("SETTLE"):
            time.sleep(float(os.environ["SETTLE"]))  # longer than the writer's measure interval
        t0 = time.monotonic()
        val = os.urandom(4096)
        lows = []
        first507 = None
        for i in range(200):
            st = http(s.port, "PUT", "/v1/kv/c%d" % i, val).status
            lows.append(d.free())
            if st == 507 and first507 is None:
                first507 = i
            if st == 507 and i - first507 > 5:
                break
        low = min(lows)
        print("(c) loop %.2f s; free after each PUT (first 10, last 5):" % (time.monotonic() - t0), lows[:10], lows[-5:])
        report("(c) PUTs stop at the reserve: free space never below the reserve less one record",
               first507 is not None and low >= R - 8192, f"reserve {R:.0f}, lowest free {low}, first 507 at PUT {first507}")
    finally:
        s.stop(); d.close()


for c in [globals()[n] for n in os.environ.get('CASES', 'case_a case_b case_c').split()]:
    try:
        c()
    except Exception as e:
        report(c.__name__, False, f"probe error {e!r}")
bad = [n for n, ok in results if not ok]
print(f"{len(results) - len(bad)} held, {len(bad)} false")
