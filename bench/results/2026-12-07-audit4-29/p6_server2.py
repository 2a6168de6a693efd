#!/usr/bin/env python3
"""audit4 probe 6: --sync interval:MS's fdatasync cadence, --send-lowat-bytes 0, the listing's size of a compressed
value, kingx-tool list against the API's listing, problem+json of read-only and disk-full refusals, Expect on a
read-only server, a lowered --max-key-bytes, --segment-bytes auto / --disk-reserve-bytes auto on small disks.

Usage: KINGX_BIN=... KINGX_TOOL_BIN=... python3 p6_server2.py [extra kingx flags]
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
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "2026-12-07-audit3-28"))
from probe_common import read_answer, run, verdict  # noqa: E402
import kingx_harness as h  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from audit4_common import notsent, problem_ok  # noqa: E402,F401

EXTRA = sys.argv[1:]
TOOL = os.environ.get("KINGX_TOOL_BIN", "/work/ref/s29/kingx-tool")




def writer_pid(s):
    for pid in h.all_pids():
        try:
            if os.getpgid(pid) == s.pid and open(f"/proc/{pid}/comm").read().strip() == "kingx-writer":
                return pid
        except OSError:
            pass
    return None


def p_sync_interval():
    """README --sync table: interval:MS acknowledged after write(); fdatasync at least every MS (under writes)."""
    with h.Server(args=EXTRA + ["--sync", "interval:200"]) as s:
        w = writer_pid(s)
        log = os.path.join(s.workdir, "strace.txt")
        st = subprocess.Popen(["strace", "-f", "-y", "-tt", "-T", "-e", "trace=fdatasync,fsync", "-o", log, "-p", str(w)],
                              stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        c = h.Conn(s.port)
        t0 = time.monotonic()
        n = 0
        lat = []
        while time.monotonic() - t0 < 3.0:
            a = time.monotonic()
            r = c.request("PUT", f"/v1/kv/i{n % 50}", body=b"x" * 100)
            lat.append(time.monotonic() - a)
            n += 1
        time.sleep(0.3)
        st.send_signal(signal.SIGINT)
        st.wait(10)
        stamps = []  # (start, duration) of each completed sync
        for line in open(log):
            # the writer loop's own syncs of segment files (other threads sync key runs and compaction output)
            m = re.search(r"^(\d+) +(\d\d):(\d\d):(\d\d\.\d+) f(?:data)?sync\(\d+<[^>]*\.kxd>.*<([\d.]+)>", line)
            if m and int(m.group(1)) == w and "resumed" not in line and "unfinished" not in line:
                stamps.append((int(m.group(2)) * 3600 + int(m.group(3)) * 60 + float(m.group(4)), float(m.group(5))))
        # from the end of one sync to the start of the next: the time the writer let pass
        gaps = [b[0] - (a[0] + a[1]) for a, b in zip(stamps, stamps[1:])]
        durs = sorted(d for _, d in stamps)
        lat.sort()
        ok = len(stamps) >= 10 and gaps and max(gaps) < 0.2 * 1.5 + 0.1 and lat[len(lat) // 2] < 0.05
        verdict("--sync interval:200: fdatasync at least every 200 ms under writes, PUTs not waiting for it", ok,
                f"{n} PUTs, p50 {lat[len(lat)//2]*1000:.1f} ms; {len(stamps)} syncs, gaps max {max(gaps)*1000 if gaps else -1:.0f} ms, "
                f"median {sorted(gaps)[len(gaps)//2]*1000 if gaps else -1:.0f} ms; sync durations max {durs[-1]*1000 if durs else -1:.0f} ms")




def p_send_lowat_zero():
    """--help: --send-lowat-bytes 0 = the kernel's default (unbounded)."""
    res = {}
    for v in ("0", "16K"):
        with h.Server(args=EXTRA + ["--send-lowat-bytes", v]) as s:
            h.http(s.port, "PUT", "/v1/kv/big", body=os.urandom(8 * 2**20))
            c = socket.create_connection(("127.0.0.1", s.port))
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            c.sendall(b"GET /v1/kv/big HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(1.5)
            res[v] = notsent(s.port)
            c.close()
    ok = res["16K"] and max(res["16K"]) <= 16384 + 4096 and res["0"] and max(res["0"]) > 65536
    verdict("--send-lowat-bytes 0 leaves the kernel's unbounded default, 16K bounds it", ok, f"notsent {res}")


def p_listing_size_compressed():
    """README Listing: 'size' of the key's value (the value, as GET returns it) also for a value stored compressed."""
    with h.Server(args=EXTRA) as s:
        val = b"abcdefgh" * 5000
        h.http(s.port, "PUT", "/v1/kv/cz", body=val, headers=[("Content-Type", "text/plain")])
        g = h.http(s.port, "GET", "/v1/kv/cz")
        doc = h.http(s.port, "GET", "/v1/kv/?prefix=cz").json()
        e = doc["keys"][0]
        s.stop()
        t = subprocess.run([TOOL, "--data", s.data_dir, "list"], capture_output=True, text=True)
        tl = json.loads(t.stdout.splitlines()[0])
        verdict("listing size = the value's length for a compressed value (API and kingx-tool list)",
                e["size"] == len(val) == int(g.header("Content-Length")) and tl["size"] == len(val) and tl == e,
                f"API {e}, GET Content-Length {g.header('Content-Length')}, tool {tl}")


def p_tool_list_equals_api():
    """README kingx-tool: list prints ... one JSON object per line, each exactly an entry of the API's keys array
    (also with --encoding url); reading commands share a directory with read-only servers."""
    keys = [b"plain", b"caf\xc3\xa9", b"bin\x00\xff", b"ctl\x01\x1f", b'q"uote\\', b"sp ace+", b"\xe2\x82\xac/euro", b"z" * 300]
    with h.Server(args=EXTRA) as s:
        for i, k in enumerate(keys):
            h.http(s.port, "PUT", "/v1/kv/" + urllib.parse.quote(k, safe="/"), body=b"v" * (i * 100),
                   headers=[("Content-Type", [b"text/plain", b"application/x-\xe9"][i % 3 % 2] if i % 3 else b"image/png")])
        s.stop()
        ro = h.Server(args=EXTRA + ["--read-only"], data_dir=s.data_dir)
        ro.start()
        try:
            deadline = time.monotonic() + 20
            while True:
                r = h.http(ro.port, "GET", "/v1/kv/")
                if r.status == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            api = r.json()["keys"]
            api_url = h.http(ro.port, "GET", "/v1/kv/?encoding=url").json()["keys"]
            t = subprocess.run([TOOL, "--data", s.data_dir, "list"], capture_output=True, text=True)
            tu = subprocess.run([TOOL, "--data", s.data_dir, "list", "--encoding", "url"], capture_output=True, text=True)
            tool = [json.loads(l) for l in t.stdout.splitlines()]
            tool_url = [json.loads(l) for l in tu.stdout.splitlines()]
            verdict("kingx-tool list = the API's keys entries (and --encoding url), beside a read-only server",
                    t.returncode == 0 and tool == api and tool_url == api_url and len(api) == len(keys),
                    f"rc {t.returncode}/{tu.returncode}, {len(api)} API entries, equal {tool == api}, url equal {tool_url == api_url}; "
                    f"diff {[ (a, b) for a, b in zip(api, tool) if a != b][:2]}")
        finally:
            ro.stop()
            ro.cleanup()


def p_read_only_refusals():
    """README Read-only serving: PUT/DELETE 405 with Allow: GET, HEAD, problem+json naming --read-only; POST
    /admin/compact 409; Expect: 100-continue gets the final 405 instead, then the connection closes."""
    with h.Server(args=EXTRA) as s:
        h.http(s.port, "PUT", "/v1/kv/ro", body=b"v")
        s.stop()
        ro = h.Server(args=EXTRA + ["--read-only"], data_dir=s.data_dir, admin=True)
        ro.start()
        try:
            out = []
            bad = []
            for m, body in (("PUT", b"x"), ("DELETE", None)):
                r = h.http(ro.port, m, "/v1/kv/ro", body=body)
                e = problem_ok(r, 405)
                out.append(f"{m} {r.status} Allow={r.header('Allow')}")
                if e or r.header("Allow") != "GET, HEAD" or b"--read-only" not in r.body:
                    bad.append(f"{m}: {e} {r.body[:120]!r}")
            r = h.http(ro.admin_port, "POST", "/admin/compact", body=b"")
            e = problem_ok(r, 409)
            out.append(f"compact {r.status}")
            if e:
                bad.append(f"compact: {e}")
            c = socket.create_connection(("127.0.0.1", ro.port), timeout=5)
            c.sendall(b"PUT /v1/kv/ro HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
            ans = read_answer(c, whole_answer=False)
            out.append(f"Expect: {ans[:12]!r} ({len(ans)} bytes until EOF)")
            if not ans.startswith(b"HTTP/1.1 405") or b"100 Continue" in ans:
                bad.append(f"Expect: {ans[:60]!r}")
            verdict("read-only refusals: 405 + Allow + problem naming --read-only, 409 compact, Expect -> 405", not bad,
                    "; ".join(out) + (" | " + "; ".join(bad) if bad else ""))
        finally:
            ro.stop()
            ro.cleanup()


def p_max_key_bytes():
    """--help --max-key-bytes: longest key accepted (414 above), naming the limit."""
    with h.Server(args=EXTRA + ["--max-key-bytes", "10"]) as s:
        a = h.http(s.port, "PUT", "/v1/kv/" + "k" * 10, body=b"v")
        b = h.http(s.port, "PUT", "/v1/kv/" + "k" * 11, body=b"v")
        c = h.http(s.port, "GET", "/v1/kv/" + "k" * 11)
        e = problem_ok(b, 414)
        lim = json.loads(b.body).get("limit") if not e else None
        verdict("--max-key-bytes 10: 10 B 201, 11 B 414 naming limit 10 (PUT and GET)", a.status == 201 and not e and lim == 10 and c.status == 414,
                f"{a.status}, {b.status} {b.body[:140]!r}, GET {c.status}")


def tmpfs(size):
    d = tempfile.mkdtemp(prefix="audit4-tmpfs-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", d], check=True)
    return d


def p_auto_sizes_small_disks():
    """README: --segment-bytes auto = a 32nd of the file system, a power of two within 1-256 MiB; --disk-reserve-bytes
    auto = one segment x 1.25 + 1 MiB (kingx_disk_reserve_bytes)."""
    out = []
    ok = True
    for size, seg in (("16M", 2**20), ("64M", 2 * 2**20), ("128M", 4 * 2**20)):
        d = tmpfs(size)
        try:
            with h.Server(args=EXTRA, data_dir=os.path.join(d, "data")) as s:
                v = h.metric(s.port, "kingx_disk_reserve_bytes")
                line = [l for l in open(s.error_log) if "segments of" in l]
                m = re.search(r"segments of (\d+) bytes", line[0]) if line else None
                got = int(m.group(1)) if m else None
                want = seg * 5 // 4 + 2**20
                ok &= got == seg and v == want
                out.append(f"{size}: segment {got} (want {seg}), reserve {v:.0f} (want {want})")
        finally:
            subprocess.run(["umount", d])
            os.rmdir(d)
    verdict("auto segment and reserve sizes on 16M/64M/128M file systems", ok, "; ".join(out))


def p_disk_full_problem():
    """README When the disk fills: a put that would eat into the reserve is 507 (problem+json); /readyz 503 naming it."""
    d = tmpfs("16M")
    try:
        with h.Server(args=EXTRA, data_dir=os.path.join(d, "data")) as s:
            st = []
            for i in range(40):
                r = h.http(s.port, "PUT", f"/v1/kv/f{i}", body=os.urandom(600000))
                st.append(r.status)
                if r.status == 507:
                    break
            e = problem_ok(r, 507)
            time.sleep(0.2)
            rz = h.http(s.port, "GET", "/readyz")
            verdict("disk full: 507 problem+json, /readyz 503 naming the disk", r.status == 507 and not e and rz.status == 503 and b"disk" in rz.body.lower(),
                    f"statuses {st[-3:]}, {r.body[:150]!r} {e}; readyz {rz.status} {rz.header('Content-Type')} {rz.body[:150]!r}")
    finally:
        subprocess.run(["umount", d])
        os.rmdir(d)


PROBES = [p_sync_interval, p_send_lowat_zero, p_listing_size_compressed, p_tool_list_equals_api, p_read_only_refusals,
          p_max_key_bytes, p_auto_sizes_small_disks, p_disk_full_problem]
ONLY = os.environ.get("ONLY")
run([p for p in PROBES if not ONLY or p.__name__ in ONLY.split(",")])
