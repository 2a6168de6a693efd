#!/usr/bin/env python3
"""audit2 probe: the Metrics table's disk and writer rows and a few others, one
at a time, on a 48 MiB tmpfs filled by a file of this probe's:
kingx_writes_refused_no_space_total (+N for N refused PUTs, +0 for a PUT
answered 507 before its body under Expect: 100-continue),
kingx_writer_failed_records_total, kingx_disk_free_bytes against statvfs,
kingx_engine_segments against the files, kingx_http_linger_cut_total,
kingx_draining during QUIT.

    KINGX_BIN=/work/ref/s27/kingx python3 p6_metrics_disk.py [extra flags]
"""
import os, re, signal, socket, subprocess, sys, tempfile, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../tests/blackbox"))
from kingx_harness import Conn, Server, build_request, http  # noqa

EXTRA = sys.argv[1:]
results = []


def report(name, ok, detail):
    results.append((name, ok))
    print(("HELD " if ok else "FALSE") + f" {name}: {detail}", flush=True)


def metrics(port):
    body = http(port, "GET", "/metrics", timeout=30).body.decode()
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(\S+) (\S+)$", body, re.M)}


def main():
    work = tempfile.mkdtemp(prefix="audit2-md-", dir="/tmp")
    mnt = os.path.join(work, "mnt"); os.makedirs(mnt)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", mnt], check=True)
    data = os.path.join(mnt, "data")
    s = Server(["--workers", "1", "--admin-listen", "off"] + EXTRA, workdir=work, data_dir=data)
    s.start()
    try:
        for i in range(20):
            http(s.port, "PUT", "/v1/kv/a%d" % i, os.urandom(64 << 10))
        time.sleep(1.2)
        m = metrics(s.port)
        st = os.statvfs(mnt); free = st.f_bavail * st.f_frsize
        report("kingx_disk_free_bytes = statvfs free (idle)", abs(m["kingx_disk_free_bytes"] - free) <= 8192, f'{m["kingx_disk_free_bytes"]:.0f} vs {free}')
        segs = [f for f in os.listdir(data) if f.endswith(".kxd")]
        report("kingx_engine_segments = segment files", m["kingx_engine_segments"] == len(segs), f'{m["kingx_engine_segments"]:.0f} vs {len(segs)} {sorted(segs)}')
        with open(os.path.join(data, "zz-filler"), "wb") as f:
            try:
                while True:
                    f.write(b"\0" * (1 << 20)); f.flush()
            except OSError:
                pass
        time.sleep(0.2)
        # past any preallocated room: fill it with PUTs until refused
        for i in range(200):
            if http(s.port, "PUT", "/v1/kv/pre%d" % i, os.urandom(16 << 10)).status == 507:
                break
        time.sleep(1.2)
        a = metrics(s.port)
        N = 5
        sts = [http(s.port, "PUT", "/v1/kv/n%d" % i, os.urandom(4096)).status for i in range(N)]
        time.sleep(1.2)  # the writer publishes refusals on its report tick
        b = metrics(s.port)
        d = b["kingx_writes_refused_no_space_total"] - a["kingx_writes_refused_no_space_total"]
        report("kingx_writes_refused_no_space_total +N for N refused PUTs", sts == [507] * N and d == N, f"{sts}, delta {d:g}")
        d = b["kingx_writer_failed_records_total"] - a["kingx_writer_failed_records_total"]
        report("kingx_writer_failed_records_total +N for N refused PUTs", d == N, f"delta {d:g}")
        # Expect: 100-continue answered 507 before its body: not counted in writes_refused
        with Conn(s.port) as c:
            c.send(build_request("PUT", "/v1/kv/e", None, [("Content-Length", str(4 << 20)), ("Expect", "100-continue")]))
            r = c.read_response()
        time.sleep(1.2)
        e = metrics(s.port)
        d = e["kingx_writes_refused_no_space_total"] - b["kingx_writes_refused_no_space_total"]
        report("a PUT answered 507 before its body (Expect) is not in kingx_writes_refused_no_space_total", r.status == 507 and d == 0, f"{r.status}, delta {d:g}")
        report("kingx_disk_full 1 while full", e["kingx_disk_full"] == 1, f'{e["kingx_disk_full"]}')
        os.unlink(os.path.join(data, "zz-filler"))
        time.sleep(1.5)
        f = metrics(s.port)
        report("kingx_disk_full 0 with room back, no write", f["kingx_disk_full"] == 0, f'{f["kingx_disk_full"]}')
        # linger cut: a client that keeps sending past 16 KiB after its 400
        a = metrics(s.port)
        c = socket.create_connection(("127.0.0.1", s.port))
        c.sendall(b"GARBAGE\r\n\r\n")
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < 3:
                c.sendall(b"x" * 4096); time.sleep(0.005)
        except OSError:
            pass
        c.close()
        time.sleep(0.3)
        b = metrics(s.port)
        d = b["kingx_http_linger_cut_total"] - a["kingx_http_linger_cut_total"]
        dd = b["kingx_http_linger_discarded_bytes_total"] - a["kingx_http_linger_discarded_bytes_total"]
        report("kingx_http_linger_cut_total +1 for a client sending on past the bound; discarded <= 16 KiB", d == 1 and dd <= 16384, f"cut delta {d:g}, discarded {dd:g}")
        # draining: QUIT with a slow upload in flight
        up = Conn(s.port)
        up.send(build_request("PUT", "/v1/kv/slow", None, [("Content-Length", "10")]) + b"12345")
        time.sleep(0.2)
        a = metrics(s.port)
        os.kill(s.pid, signal.SIGQUIT)
        time.sleep(0.3)
        try:
            # the listener may be closed: read the gauge on the connection in flight is impossible; try a new one
            dm = metrics(s.port).get("kingx_draining")
        except Exception as ex:
            dm = repr(ex)
        up.send(b"67890")
        r = up.read_response()
        report("kingx_draining 0 before QUIT, 1 while stopping (if still reachable)", a["kingx_draining"] == 0 and (dm == 1 or isinstance(dm, str)), f"before {a['kingx_draining']}, during {dm}; upload {r.status}")
    finally:
        try: s.stop()
        except Exception: pass
        subprocess.run(["umount", "-l", mnt])
        subprocess.run(["rm", "-rf", work])


main()
bad = [n for n, ok in results if not ok]
print(f"{len(results) - len(bad)} held, {len(bad)} false")
