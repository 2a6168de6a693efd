#!/usr/bin/env python3
"""audit3 probe 2: the signal table, the pid file, flags given twice.

README signal table: TERM/INT "fast stop"; QUIT "graceful stop: stop accepting, /readyz 503, finish in-flight
requests, close idle keep-alive connections after a short grace, writer drains and syncs"; --help:
"--pid FILE|none: pid file, written at start and removed at exit"; README Configuration: "a setting given
twice ... on the command line (but the repeatable --listen and --trusted-proxy) [is an error] that names the
setting"; -t "(0 if valid, 1 if not)". Also what the master does with signals nginx users send out of habit
(USR2: nginx's binary upgrade; WINCH: nginx's graceful worker stop), which the README does not list.

Usage: KINGX_BIN=... python3 p2_signals.py [extra kingx flags]
"""
import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from probe_common import run, verdict  # noqa: E402
import kingx_harness as h  # noqa: E402

EXTRA = sys.argv[1:]


def probe_pid_file():
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        srv = h.Server(args=["--workers", "1"] + EXTRA).start()
        written = open(srv.pid_file).read().strip() if os.path.exists(srv.pid_file) else None
        srv.signal(sig)
        rc = srv.wait_exit(30)
        gone = not os.path.exists(srv.pid_file)
        verdict(f"pid file {sig.name}", written == str(srv.pid) and gone and rc is not None,
                f"written {written!r} (master {srv.pid}), exit {rc}, removed {gone}")
        srv.cleanup()
    # kill -9 leaves it (nothing can remove it); the next start must take it over
    srv = h.Server(args=["--workers", "1"] + EXTRA).start()
    srv.kill_group()
    stale = os.path.exists(srv.pid_file)
    srv.start()
    now = open(srv.pid_file).read().strip()
    verdict("pid file after kill -9: next start rewrites it", now == str(srv.pid),
            f"stale left {stale}, after restart {now!r} (master {srv.pid})")
    srv.stop()
    srv.cleanup()


def probe_unlisted_signals():
    for sig in (signal.SIGUSR2, signal.SIGWINCH):
        srv = h.Server(args=["--workers", "1"] + EXTRA).start()
        h.http(srv.port, "PUT", "/v1/kv/a", b"v")
        srv.signal(sig)
        time.sleep(1.0)
        alive = srv.alive()
        try:
            r = h.http(srv.port, "GET", "/v1/kv/a", timeout=3).status
        except Exception as e:  # noqa: BLE001
            r = repr(e)
        logs = srv.logs()
        verdict(f"{sig.name} (not in the table) leaves the server serving", alive and r == 200,
                f"master alive {alive}, GET {r}, exit {srv.proc.returncode}; log tail: "
                f"{logs.strip().splitlines()[-1][:160] if logs.strip() else ''}")
        if srv.alive():
            srv.stop()
        else:
            srv.kill_group()
        srv.cleanup()


def probe_quit_idle_grace():
    srv = h.Server(args=["--workers", "1"] + EXTRA).start()
    idle = h.Conn(srv.port)
    r = idle.request("GET", "/healthz")
    t0 = time.monotonic()
    srv.signal(signal.SIGQUIT)
    closed = idle.wait_closed(timeout=20)
    t_close = time.monotonic() - t0
    rc = srv.wait_exit(30)
    t_exit = time.monotonic() - t0
    verdict("QUIT closes an idle keep-alive connection after a short grace", closed and t_close < 10,
            f"first GET {r.status}; idle conn closed={closed} after {t_close:.2f} s; master exit {rc} after {t_exit:.2f} s")
    srv.cleanup()


def probe_term_fast():
    srv = h.Server(args=["--workers", "1"] + EXTRA).start()
    idle = h.Conn(srv.port)
    idle.request("GET", "/healthz")
    slow = socket.create_connection(("127.0.0.1", srv.port))
    slow.sendall(b"PUT /v1/kv/slow HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
    time.sleep(0.3)
    t0 = time.monotonic()
    srv.signal(signal.SIGTERM)
    rc = srv.wait_exit(30)
    t = time.monotonic() - t0
    verdict("TERM fast stop with an idle and a stalled upload connection", rc is not None and t < 5,
            f"exit {rc} after {t:.2f} s")
    slow.close()
    srv.cleanup()


def probe_flags_twice():
    help_text = subprocess.run([h.require_bin(), "--help"], capture_output=True, text=True).stdout
    flags = re.findall(r"^  (--[a-z-]+)(?: (\S+))?", help_text, re.M)
    samples = {"--listen": "127.0.0.1:1", "--trusted-proxy": "127.0.0.1", "--data": "/tmp/audit3-none/d",
               "--config": None, "--help": None, "--version": None}
    bad = []
    for flag, meta in flags:
        if flag in ("--help", "--version", "--config"):
            continue
        if flag in samples:
            val = [samples[flag]]
        elif not meta:
            val = []
        else:
            val = None
        if val is None:
            # the default value --help prints
            m = re.search(r"^  " + re.escape(flag) + r"\b.*?\n.*?\n\s+\[\w+\] default: (\S+)", help_text, re.M | re.S)
            val = [m.group(1)] if m else ["1"]
            if val == ["none"] and flag == "--pid":
                val = ["none"]
        argv = [h.require_bin(), "-t", "--data", "/tmp/audit3-twice/d"] if flag != "--data" else [h.require_bin(), "-t"]
        second = ["127.0.0.1:2"] if flag == "--listen" else val  # the same address twice is refused
        argv += [flag] + val + [flag] + second
        p = subprocess.run(argv, capture_output=True, text=True)
        out = p.stdout + p.stderr
        repeatable = flag in ("--listen", "--trusted-proxy")
        ok = (p.returncode == 0) if repeatable else (p.returncode != 0 and flag in out)
        if not ok:
            bad.append((flag, p.returncode, out.strip()[:200]))
    verdict(f"each of {len(flags) - 3} flags given twice: an error naming it (but --listen, --trusted-proxy)",
            not bad, f"wrong: {bad}")


def main():
    run((probe_pid_file, probe_unlisted_signals, probe_quit_idle_grace, probe_term_fast, probe_flags_twice))


if __name__ == "__main__":
    main()
