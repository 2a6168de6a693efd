#!/usr/bin/env python3
"""audit4 probe 3: promises of README / --help about processes, listeners, settings' effects and metrics that
no earlier audit row probed. One HELD/FALSE line each.

Usage: KINGX_BIN=... python3 p3_server.py [extra kingx flags, e.g. --model threads --threads 8]
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "2026-12-07-audit3-28"))
from probe_common import run, verdict  # noqa: E402
import kingx_harness as h  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from audit4_common import notsent, problem_ok  # noqa: E402,F401

EXTRA = sys.argv[1:]
THREADS = "threads" in EXTRA


def procs_of(srv):
    """{pid: comm} of the server's process group."""
    out = {}
    for pid in h.all_pids():
        try:
            if os.getpgid(pid) == srv.pid:
                out[pid] = open(f"/proc/{pid}/comm").read().strip()
        except OSError:
            pass
    return out




def p_workers_auto():
    """--help: --workers auto = one per online CPU."""
    if THREADS:
        return
    with h.Server(args=EXTRA) as s:
        time.sleep(0.5)
        comms = procs_of(s)
        n = sum(1 for c in comms.values() if "worker" in c)
        verdict("workers auto = online CPUs", n == os.cpu_count(), f"{n} worker processes, {os.cpu_count()} CPUs ({sorted(comms.values())})")


def p_threads_default():
    """--help: --threads default 150; README Descriptors: a worker starts at most --threads, ... or one fewer than
    its connection cap, whichever is least (logged)."""
    with h.Server(args=["--model", "threads", "--workers", "1"]) as s:
        time.sleep(0.5)
        w = [p for p, c in procs_of(s).items() if "worker" in c]
        tasks = len(os.listdir(f"/proc/{w[0]}/task"))
        log = open(s.error_log).read()
        m = re.findall(r".*pool.*thread.*", log)
        verdict("threads default 150", tasks >= 150 and tasks < 160, f"worker tasks {tasks}; log: {m[:1]}")
    with h.Server(args=["--model", "threads", "--workers", "1", "--max-connections", "20"]) as s:
        time.sleep(0.5)
        w = [p for p, c in procs_of(s).items() if "worker" in c]
        tasks = len(os.listdir(f"/proc/{w[0]}/task"))
        log = open(s.error_log).read()
        m = re.findall(r".*(?:pool|thread).*", log)
        verdict("threads capped one below --max-connections, logged", tasks <= 19 + 6 and any("19" in x for x in m),
                f"worker tasks {tasks}; log lines: {m[:2]}")


def p_single_process():
    """--help: --single-process: master, writer and one worker in one process."""
    with h.Server(args=EXTRA + ["--single-process"]) as s:
        r1 = h.http(s.port, "PUT", "/v1/kv/sp", body=b"x" * 3000)
        r2 = h.http(s.port, "GET", "/v1/kv/sp")
        comms = procs_of(s)
        verdict("--single-process is one process", len(comms) == 1 and r1.status == 201 and r2.body == b"x" * 3000,
                f"processes {comms}, PUT {r1.status}, GET {r2.status}")


def p_accept_shared_and_listen():
    """--help: --accept shared; --listen repeatable, numeric IPv4 or [IPv6]."""
    p2 = h.free_port()
    with h.Server(args=EXTRA + ["--accept", "shared", "--workers", "2", "--listen", f"[::1]:{p2}"]) as s:
        r1 = h.http(s.port, "PUT", "/v1/kv/ls", body=b"v")
        c = socket.create_connection(("::1", p2), timeout=5)
        c.sendall(b"GET /v1/kv/ls HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        got = b""
        while True:
            b = c.recv(4096)
            if not b:
                break
            got += b
        verdict("--accept shared + a second --listen on [::1]", r1.status == 201 and got.startswith(b"HTTP/1.1 200") and got.endswith(b"\r\n\r\nv"),
                f"PUT {r1.status}; GET over [::1] {got[:15]!r}..{got[-3:]!r}")


def p_admin_methods():
    """README: the admin listener serves /admin/* (POST /admin/compact, GET /admin/backup); every error problem+json.
    Other methods on those paths: 405 with Allow, problem+json (as for /v1/kv/)."""
    with h.Server(args=EXTRA, admin=True) as s:
        out = []
        bad = []
        for m, p in (("GET", "/admin/compact"), ("PUT", "/admin/compact"), ("POST", "/admin/backup"),
                     ("DELETE", "/admin/backup"), ("GET", "/admin/nope"), ("POST", "/admin/compact?x=1")):
            body = b"" if m in ("PUT", "POST") else None
            r = h.http(s.admin_port, m, p, body=body)
            out.append(f"{m} {p} {r.status} Allow={r.header('Allow')}")
            if r.status >= 400:
                e = problem_ok(r, r.status)
                if e:
                    bad.append(f"{m} {p}: {e}")
            if r.status == 405 and not r.header("Allow"):
                bad.append(f"{m} {p}: 405 without Allow")
        verdict("admin paths' other methods: 405 + Allow, problem+json", not bad, "; ".join(out) + (" | " + "; ".join(bad) if bad else ""))


def p_compression_level():
    """--help: --compression-level N, 0 = off."""
    val = b"abcdefgh" * 25000  # 200 KB, compresses to almost nothing
    sizes = {}
    for lvl in ("0", "1", "19"):
        with h.Server(args=EXTRA + ["--compression-level", lvl]) as s:
            r = h.http(s.port, "PUT", "/v1/kv/c", body=val)
            g = h.http(s.port, "GET", "/v1/kv/c")
            s.stop()
            segs = [f for f in os.listdir(s.data_dir) if f.endswith(".kxd")]
            # records: the bytes written before the preallocated zero room
            sizes[lvl] = (r.status, g.body == val, sum(len(open(os.path.join(s.data_dir, f), "rb").read().rstrip(b"\0")) for f in segs))
    ok = sizes["0"][2] > 200000 and sizes["1"][2] < 20000 and all(v[1] for v in sizes.values())
    verdict("--compression-level 0 stores raw, 1 and 19 compress", ok, f"{sizes}")


def p_disk_metrics():
    """README When the disk fills / --help: --disk-reserve-bytes auto = 1.25 x the segment size + 1M, 0 = none;
    kingx_disk_reserve_bytes, kingx_disk_size_bytes (statvfs)."""
    res = []
    ok = True
    for args, want in ((["--segment-bytes", "4M"], 4 * 2**20 * 5 // 4 + 2**20), (["--disk-reserve-bytes", "0"], 0),
                       (["--disk-reserve-bytes", "5M"], 5 * 2**20)):
        with h.Server(args=EXTRA + args) as s:
            v = h.metric(s.port, "kingx_disk_reserve_bytes")
            size = h.metric(s.port, "kingx_disk_size_bytes")
            st = os.statvfs(s.data_dir)
            ok &= v == want and size == st.f_blocks * st.f_frsize
            res.append(f"{args}: reserve {v:.0f} (want {want}), size {size:.0f} vs statvfs {st.f_blocks * st.f_frsize}")
    verdict("disk reserve auto/0/5M and disk size metrics", ok, "; ".join(res))


def p_histograms():
    """README Metrics: request duration buckets 25 µs … 10 s; writer batch size 1 … 1024."""
    with h.Server(args=EXTRA) as s:
        h.http(s.port, "PUT", "/v1/kv/hb", body=b"v")
        body = h.http(s.port, "GET", "/metrics").body.decode()
    def les(name):
        return [m.group(1) for m in re.finditer(r'^%s_bucket\{le="([^"]+)"\}' % name, body, re.M)]
    d = les("kingx_http_request_duration_seconds")
    b = les("kingx_writer_batch_size")
    ok = d and float(d[0]) == 25e-6 and float(d[-2]) == 10 and b and float(b[0]) == 1 and float(b[-2]) == 1024
    verdict("histogram bucket ranges", ok, f"duration {d[:2]}..{d[-2:]}, batch {b[:2]}..{b[-2:]}")


def p_draining():
    """README Metrics: kingx_draining 1 while the server stops (QUIT with an upload in flight)."""
    with h.Server(args=EXTRA) as s:
        before = h.metric(s.port, "kingx_draining")
        up = socket.create_connection(("127.0.0.1", s.port))
        up.sendall(b"PUT /v1/kv/dr HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        scrape = h.Conn(s.port)
        scrape.request("GET", "/healthz")
        time.sleep(0.3)
        s.signal(signal.SIGQUIT)
        time.sleep(0.5)
        try:
            r = scrape.request("GET", "/metrics")
            m = re.search(r"^kingx_draining (\S+)$", r.body.decode(), re.M)
            during = m.group(1) if m else None
        except Exception as e:  # noqa: BLE001
            during = f"scrape failed: {e!r}"
        up.sendall(b"defghij")
        up.settimeout(5)
        ans = up.recv(100)
        verdict("kingx_draining 0 then 1 while stopping", before == 0 and during == "1", f"before {before}, during QUIT {during}; upload answer {ans[:12]!r}")


def p_large_aborted():
    """README Metrics: kingx_writer_large_aborted_total, large uploads abandoned."""
    with h.Server(args=EXTRA) as s:
        before = h.metric(s.port, "kingx_writer_large_aborted_total")
        c = socket.create_connection(("127.0.0.1", s.port))
        c.sendall(b"PUT /v1/kv/la HTTP/1.1\r\nHost: x\r\nContent-Length: 3145728\r\n\r\n" + os.urandom(2 * 2**20))
        time.sleep(1.0)
        staged = h.metric(s.port, "kingx_writer_staged_bytes")
        c.close()
        time.sleep(1.5)
        after = h.metric(s.port, "kingx_writer_large_aborted_total")
        staged_after = h.metric(s.port, "kingx_writer_staged_bytes")
        g = h.http(s.port, "GET", "/v1/kv/la")
        left = h.staging_files(s.data_dir)
        verdict("an abandoned 3 MiB upload: large_aborted +1, staging back to 0, nothing stored", after == before + 1 and staged_after == 0 and g.status == 404 and not left,
                f"aborted {before}->{after}, staged {staged}->{staged_after}, GET {g.status}, staging files {left}")


def p_411():
    """README table: PUT with neither Content-Length nor Transfer-Encoding: 411 naming both, nothing stored,
    connection kept."""
    with h.Server(args=EXTRA) as s:
        c = h.Conn(s.port)
        c.send(b"PUT /v1/kv/nl HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        r2 = c.request("GET", "/v1/kv/nl")
        doc = r.body.decode()
        e = problem_ok(r, 411)
        verdict("411 problem naming both, connection kept", r.status == 411 and not e and "Content-Length" in doc and "chunked" in doc.lower() and r2.status == 404,
                f"{r.status} {doc[:160]} | {e} | next on same connection {r2.status}")


def p_listing_default_limit():
    """README Listing: limit default 1000."""
    with h.Server(args=EXTRA) as s:
        c = h.Conn(s.port)
        for i in range(1200):
            c.request("PUT", f"/v1/kv/l{i:05d}", body=b"")
        r = c.request("GET", "/v1/kv/")
        doc = r.json()
        verdict("listing default limit 1000", len(doc["keys"]) == 1000 and doc["list_complete"] is False and "cursor" in doc,
                f"{len(doc['keys'])} keys, list_complete {doc['list_complete']}")


def p_error_log_format():
    """README Logs: an error log with levels (nginx's line format): 'YYYY/MM/DD HH:MM:SS [level] PID#TID: text'."""
    rx = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(debug|info|notice|warn|error|crit|alert|emerg)\] \d+#\d+: \S")
    with h.Server(args=EXTRA + ["--log-level", "debug", "--segment-bytes", "1M"], admin=True) as s:
        c = h.Conn(s.port)
        for i in range(40):
            c.request("PUT", f"/v1/kv/e{i % 5}", body=os.urandom(60000))
        h.http(s.admin_port, "POST", "/admin/compact", body=b"")
        raw = socket.create_connection(("127.0.0.1", s.port))
        raw.sendall(b"GARBAGE\r\n\r\n")
        raw.recv(1000)
        s.signal(signal.SIGHUP)
        time.sleep(1.0)
        s.signal(signal.SIGUSR1)
        time.sleep(0.5)
        s.stop()
        lines = open(s.error_log, encoding="utf-8", errors="replace").read().splitlines()
    bad = [l for l in lines if not rx.match(l)]
    verdict("error log lines in nginx's format", lines and not bad, f"{len(lines)} lines, {len(bad)} not matching: {bad[:3]}")


def p_log_level_warn():
    """--help: --log-level lowest level written: at warn, the HTTP core's info refusal lines are not written."""
    with h.Server(args=EXTRA + ["--log-level", "warn"]) as s:
        raw = socket.create_connection(("127.0.0.1", s.port))
        raw.sendall(b"GARBAGE\r\n\r\n")
        raw.recv(1000)
        time.sleep(0.3)
        s.stop()
        lines = open(s.error_log).read().splitlines()
    low = [l for l in lines if "[info]" in l or "[debug]" in l]
    verdict("--log-level warn writes no info/debug line", not low, f"{len(lines)} lines, below warn: {low[:2]}")


def p_nofile_raised():
    """README Descriptors: a start raises the soft open-file limit to the hard one."""
    w = tempfile.mkdtemp(prefix="audit4-nofile-")
    wrapper = os.path.join(w, "kingx-lowered")
    with open(wrapper, "w") as f:
        f.write(f"#!/bin/sh\nexec prlimit --nofile=1024:8192 -- {h.require_bin()} \"$@\"\n")
    os.chmod(wrapper, 0o755)
    s = h.Server(args=EXTRA)
    s.bin = wrapper
    s.start()
    try:
        lim = {}
        for pid, comm in procs_of(s).items():
            for line in open(f"/proc/{pid}/limits"):
                if line.startswith("Max open files"):
                    lim[comm] = line.split()[3:5]
        verdict("soft NOFILE raised to the hard one", lim and all(v == ["8192", "8192"] for v in lim.values()), f"{lim}")
    finally:
        s.stop()
        s.cleanup()
        shutil.rmtree(w, ignore_errors=True)


def p_promtool():
    """README Metrics: promtool check metrics accepts it (a test runs it against a live event server)."""
    tool = "/var/cache/kingx-tests/prometheus/usr/bin/promtool"  # tests/tools/promtool.sh --path
    with h.Server(args=EXTRA) as s:
        h.http(s.port, "PUT", "/v1/kv/pm", body=b"v" * 5000)
        body = h.http(s.port, "GET", "/metrics").body
        p = subprocess.run([tool, "check", "metrics"], input=body, capture_output=True)
        verdict("promtool check metrics", p.returncode == 0, f"rc {p.returncode} {p.stdout[:200]!r} {p.stderr[:300]!r}")


def p_admin_same_port():
    """-t: '--admin-listen: must differ from every --listen address': a wildcard --listen on the same port."""
    port = h.free_port()
    w = tempfile.mkdtemp(prefix="audit4-adm-")
    argv = [h.require_bin(), "--listen", f"0.0.0.0:{port}", "--admin-listen", f"127.0.0.1:{port}", "--data", w + "/d",
            "--error-log", w + "/e.log"] + EXTRA
    t = subprocess.run(argv[:1] + ["-t"] + argv[1:], capture_output=True, text=True)
    err = open(w + "/stderr.txt", "wb")
    p = subprocess.Popen(argv, stdout=err, stderr=subprocess.STDOUT, start_new_session=True)
    err.close()
    time.sleep(2.0)
    alive = p.poll() is None
    detail = f"-t rc {t.returncode} {t.stderr.strip()[:160]!r}; start alive {alive}"
    ok = t.returncode != 0 and not alive
    if alive:
        try:
            r = h.http(port, "PUT", "/v1/kv/z", body=b"v")
            detail += f"; PUT via 127.0.0.1:{port} -> {r.status} {r.body[:80]!r}"
            r = h.http(port, "GET", "/metrics")
            detail += f"; GET /metrics -> {r.status}"
        except Exception as e:  # noqa: BLE001
            detail += f"; request failed {e!r}"
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(20)
    else:
        logs = [f for f in (w + "/e.log", w + "/stderr.txt") if os.path.exists(f)]
        detail += f"; exit {p.returncode}; " + " | ".join(open(f).read().strip()[-200:] for f in logs)
    shutil.rmtree(w, ignore_errors=True)
    verdict("--admin-listen on a --listen's port refused (wildcard listen)", ok, detail)


PROBES = [p_workers_auto, p_threads_default, p_single_process, p_accept_shared_and_listen, p_admin_methods,
     p_compression_level, p_disk_metrics, p_histograms, p_draining, p_large_aborted, p_411,
     p_listing_default_limit, p_error_log_format, p_log_level_warn, p_nofile_raised, p_promtool, p_admin_same_port]
ONLY = os.environ.get("ONLY")
run([p for p in PROBES if not ONLY or p.__name__ in ONLY.split(",")])
