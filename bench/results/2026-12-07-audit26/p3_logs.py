#!/usr/bin/env python3
"""Audit probe: access and error logs from outside.
 1. combined lines match nginx's combined format (+ request time, request id) exactly, a
    User-Agent with '"' cannot forge fields;
 2. logrotate 'create' (mv, USR1): every request is logged exactly once across the two files;
 3. logrotate 'copytruncate' (cp, truncate, no signal): the live file has no NUL hole;
 4. the logs on a full file system (a 256 KiB tmpfs filled with dd): every request is still
    answered; after space is freed (and USR1) lines are written again.
Usage (root, for the tmpfs): p3_logs.py KINGX_BIN [extra server args]"""
import os, re, signal, socket, subprocess, sys, tempfile, time, shutil

BIN = sys.argv[1]; EXTRA = sys.argv[2:]
def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
def req(port, path, rid, ua="probe/1", method="GET", body=None):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    h = f"{method} {path} HTTP/1.1\r\nHost: x\r\nUser-Agent: {ua}\r\nX-Request-Id: {rid}\r\nConnection: close\r\n"
    if body is not None: h += f"Content-Length: {len(body)}\r\n"
    s.sendall(h.encode("latin1") + b"\r\n" + (body or b""))
    out = b""
    while True:
        b = s.recv(65536)
        if not b: break
        out += b
    s.close(); return int(out.split()[1])
COMBINED = re.compile(r'^(\S+) - (\S+) \[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] "((?:[^"\\]|\\x[0-9A-F]{2})*)" (\d{3}) (\d+) "((?:[^"\\]|\\x[0-9A-F]{2})*)" "((?:[^"\\]|\\x[0-9A-F]{2})*)" (\d+\.\d{3}) "([0-9a-zA-Z_-]*)"$')
res = []
def rec(name, ok, detail): res.append(ok); print(("HELD " if ok else "FALSE") + " | " + name + " | " + detail, flush=True)

def start(d, port, log, elog, extra=()):
    p = subprocess.Popen([BIN, "--listen", f"127.0.0.1:{port}", "--data", d + "/data", "--workers", "2",
                          "--access-log", log, "--error-log", elog] + list(extra) + EXTRA,
                         stdout=open(d + "/out", "a"), stderr=subprocess.STDOUT, start_new_session=True)
    for _ in range(100):
        try:
            if req(port, "/readyz", "ready0") == 200: return p
        except OSError: pass
        time.sleep(0.1)
    raise SystemExit("not ready")

def stop(p):
    p.send_signal(signal.SIGTERM); p.wait(30)

def ids(path):
    out = []
    if not os.path.exists(path): return out
    for line in open(path, "rb").read().split(b"\n"):
        m = re.search(rb'"(rid[0-9a-z]+)"$', line)
        if m: out.append(m.group(1).decode())
    return out

def main():
    d = tempfile.mkdtemp(prefix="audit-p3-", dir="/tmp"); port = free_port()
    log = d + "/access.log"; elog = d + "/error.log"
    p = start(d, port, log, elog)
    try:
        # 1. format
        req(port, "/v1/kv/fmt", "ridfmt0", method="PUT", body=b"hello")
        req(port, "/v1/kv/fmt", "ridfmt1", ua='evil" 200 "x')
        req(port, "/v1/kv/caf\xc3\xa9", "ridfmt2")
        time.sleep(1.6)
        lines = [l for l in open(log, encoding="latin1").read().splitlines()]
        bad = [l for l in lines if not COMBINED.match(l)]
        rec("access log lines match combined + rt + id", not bad and len(lines) >= 4, f"{len(lines)} lines, bad {bad[:3]}")
        ev = [l for l in lines if "ridfmt1" in l]
        rec("'\"' in User-Agent escaped \\x22 (no forged field)", ev and '\\x22' in ev[0], ev[0] if ev else "missing")
        # 2. create
        N = 300
        for i in range(N): req(port, f"/v1/kv/c{i % 7}", f"ridc{i}")
        os.rename(log, log + ".1"); os.rename(elog, elog + ".1")
        os.kill(p.pid, signal.SIGUSR1)
        for i in range(N, 2 * N): req(port, f"/v1/kv/c{i % 7}", f"ridc{i}"); time.sleep(0.002)
        time.sleep(1.6)
        got = ids(log + ".1") + ids(log)
        want = [f"ridc{i}" for i in range(2 * N)]
        missing = sorted(set(want) - set(got)); dup = len([x for x in got if x.startswith("ridc")]) - len(set(x for x in got if x.startswith("ridc")))
        rec("logrotate create (mv + USR1): each request logged once", not missing and dup == 0 and os.path.exists(log),
            f"missing {len(missing)} dup {dup} new file {os.path.exists(log)} ({len(ids(log))} lines in it)")
        rec("error log reopened by USR1 (new file exists)", os.path.exists(elog), str(os.path.exists(elog)))
        # 3. copytruncate
        for i in range(100): req(port, "/v1/kv/t", f"ridt{i}")
        time.sleep(1.6)
        shutil.copy(log, log + ".2"); open(log, "r+").truncate(0)
        for i in range(100, 200): req(port, "/v1/kv/t", f"ridt{i}")
        time.sleep(1.6)
        raw = open(log, "rb").read()
        rec("copytruncate: no NUL hole in the live file (O_APPEND)", b"\0" not in raw and len(ids(log)) == 100,
            f"size {len(raw)} NULs {raw.count(bytes(1))} ids {len(ids(log))}")
        stop(p)
        # 4. full disk
        mnt = d + "/mnt"; os.mkdir(mnt)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", mnt], check=True)
        try:
            flog = mnt + "/access.log"; felog = mnt + "/error.log"
            p = start(d, port, flog, felog)
            subprocess.run(["dd", "if=/dev/zero", f"of={mnt}/fill", "bs=4k", "count=1000"], capture_output=True)
            ok = 0; t0 = time.time()
            for i in range(3000):
                try:
                    if req(port, f"/v1/kv/f{i % 50}", f"ridf{i}", method="PUT" if i % 3 == 0 else "GET",
                           body=b"v" * 100 if i % 3 == 0 else None) in (200, 201, 204, 404): ok += 1
                except OSError: pass
            el = time.time() - t0
            rec("logs on a full disk: every request answered", ok == 3000, f"{ok}/3000 in {el:.1f}s")
            os.unlink(mnt + "/fill")
            os.kill(p.pid, signal.SIGUSR1); time.sleep(0.5)
            for i in range(100): req(port, "/v1/kv/after", f"ridg{i}")
            time.sleep(1.6)
            g = ids(flog)
            rec("after space is freed + USR1: lines are written again", len([x for x in g if x.startswith("ridg")]) == 100,
                f"{len([x for x in g if x.startswith('ridg')])}/100; error log: {open(felog, errors='replace').read()[-300:]!r}")
            stop(p)
        finally:
            subprocess.run(["umount", "-l", mnt])
    finally:
        if p.poll() is None: p.kill()
        print(f"{len(res)} probes, {res.count(False)} FALSE")
        if os.environ.get("KEEP") != "1": shutil.rmtree(d, ignore_errors=True)
main()
