"""stderr as the error log (the default: a terminal, a pipe to a log
shipper or journald) never stops a process when it blocks.

- A terminal stopped by XOFF (Ctrl-S; tcflow TCOOFF on a pty) before the
  start: the server starts, serves every request, reloads (HUP), reopens
  (USR1) and stops on TERM; once output resumes (TCOON), new lines arrive,
  with the count of the lines dropped meanwhile.
- A pipe nobody reads (shrunk to one page, so startup lines fill it): the
  same.
- In both, stderr's open file description keeps its flags (no O_NONBLOCK on
  the user's terminal or pipe): kingx writes through a description of its
  own (src/conf/log_sink.h).

Every wait is bounded; a server whose master or worker waits in a write to
stderr fails its bound instead of hanging.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_log_stderr.py [--model threads]
"""

import fcntl
import os
import pty
import select
import signal
import socket
import sys
import tempfile
import termios
import time

from kingx_harness import (HOST, Server, TestFailure, cases_of, check, http, key_path, run_with_servers, wait_for)

MODEL_ARGS = sys.argv[1:]
S = None
BOUND_S = 20  # far above what a loaded machine needs; a server that waits hits it
F_SETPIPE_SZ = 1031
REFUSED_TARGET = b"/v1/kv/" + b"\xff" * 400  # escaped in the error log: a long line


def new_server(stderr):
    global S
    if S is not None:
        S.cleanup()
    S = Server(["--workers", "2"] + MODEL_ARGS, workdir=tempfile.mkdtemp(prefix="kingx-bb-stderr-"),
               error_log_flag=False, stderr=stderr)
    return S


def refused(port):
    """A request the server refuses (400) and logs (info), with a long target."""
    with socket.create_connection((HOST, port), timeout=BOUND_S) as s:
        s.sendall(b"GET " + REFUSED_TARGET + b" HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n")
        got = s.recv(64)
    check(got.startswith(b"HTTP/1.1 400"), f"the malformed request got {got!r}")


def serves(port, rounds, tag):
    """`rounds` refused (logged) requests, each followed by a GET that must be
    answered within the bound."""
    for i in range(rounds):
        refused(port)
        r = http(port, "GET", key_path(f"{tag}-{i}"), timeout=BOUND_S)
        check(r.status == 404, f"GET {tag}-{i}: {r.status}")


def read_available(fd, out):
    while select.select([fd], [], [], 0)[0]:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # a pty's master side once the slave is closed (EIO)
            return
        if not chunk:
            return
        out += chunk


def check_never_waits_on(read_fd, write_fd, resume):
    """The server's stderr is write_fd, which takes no more output until
    resume(); read_fd is what a reader reads it from."""
    flags_before = fcntl.fcntl(write_fd, fcntl.F_GETFL)
    s = new_server(write_fd)
    s.start()  # /readyz answered: nothing of the start waited for stderr
    serves(s.port, 60, "before")
    old = set(s.workers())
    s.signal(signal.SIGHUP)
    wait_for(lambda: len(set(s.workers()) - old) == 2, BOUND_S,
             "two new workers after HUP (a master waiting in a write to stderr starts none)")
    serves(s.port, 30, "reloaded")
    s.signal(signal.SIGUSR1)
    serves(s.port, 30, "reopened")
    check(fcntl.fcntl(write_fd, fcntl.F_GETFL) == flags_before,
          f"stderr's flags changed from {flags_before:#o} to {fcntl.fcntl(write_fd, fcntl.F_GETFL):#o}")
    # Output resumes: the next lines arrive, and tell what was dropped.
    resume()
    got = bytearray()
    read_available(read_fd, got)
    old = set(s.workers())
    s.signal(signal.SIGHUP)  # the master logs again; it had lines dropped
    wait_for(lambda: (read_available(read_fd, got), b"reload done" in got)[1], BOUND_S,
             "the reload's lines on stderr once it takes output again")
    text = got.decode("utf-8", "replace")
    check("error log line(s) dropped" in text, f"no count of the dropped lines on stderr:\n{text[-3000:]}")
    wait_for(lambda: len(set(s.workers()) - old) == 2, BOUND_S, "two new workers after the second HUP")
    serves(s.port, 5, "resumed")
    code = s.stop(timeout=BOUND_S)
    check(code == 0, f"TERM: exit status {code} (None: still running after {BOUND_S}s)")


def stop_then_close(*fds):
    """Stops the case's server (killing it if TERM is not enough) before its
    stderr closes; its directory stays for run_cases to show on failure."""
    if S is not None:
        S.stop(timeout=BOUND_S)
    for fd in fds:
        os.close(fd)


def test_a_terminal_stopped_by_xoff_stops_no_process():
    master, slave = pty.openpty()
    try:
        termios.tcflow(slave, termios.TCOOFF)  # Ctrl-S before the start
        check_never_waits_on(master, slave, lambda: termios.tcflow(slave, termios.TCOON))
    finally:
        stop_then_close(slave, master)


def test_a_pipe_nobody_reads_stops_no_process():
    r, w = os.pipe()
    try:
        fcntl.fcntl(w, F_SETPIPE_SZ, 4096)  # one page: the start's own lines fill most of it
        check_never_waits_on(r, w, lambda: None)  # resumed: the test reads it from now on
    finally:
        stop_then_close(w, r)


if __name__ == "__main__":
    run_with_servers("stderr as the error log " + " ".join(MODEL_ARGS), cases_of(globals()), lambda: S)
