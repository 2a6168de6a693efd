"""Log files that are FIFOs (a log shipper reading a named pipe): no open or
write of a log ever waits, in the master or a worker.

- A start whose access log or error log is a FIFO with no reader is refused
  at once, with an error naming the setting; `kingx -t` does not open a FIFO
  (it would end its reader's input) and says so.
- A reload (HUP) whose access log is now a FIFO with no reader is refused:
  the old configuration and its access log stay, and the server serves. A
  log reopen (USR1) then keeps the old access log and serves too.
- A FIFO with a reader gets the access log and the error log through a
  reload and a reopen, and its reader never sees end of input.
- A reader that stalls (the pipe full) does not stop serving: every request
  is answered, the lines are held, then dropped and counted (warn lines);
  once the reader reads again, the next lines reach it, whole.
- A reader that resumes gets the held lines at once (the worker waits for
  room in the pipe, without a busy loop), not a pipe-full per second.

Every wait is bounded; on a server that waits on the log, each case fails
on its bound instead of hanging.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_log_fifo.py [--model threads]
"""

import fcntl
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

from kingx_harness import (Conn, ConnectionClosed, FifoReader, Server, TestFailure, cases_of, check, free_port, http, key_path, log_since,
                           run_with_servers, voluntary_switches, wait_for)

MODEL_ARGS = sys.argv[1:]
S = None
READERS = []
BOUND_S = 20  # far above what a loaded machine needs; a server that waits hits it
F_SETPIPE_SZ = 1031
COMBINED = re.compile(r'^\S+ - - \[[^\]]+\] "[A-Z]+ \S+ HTTP/1\.1" \d{3} \d+ "[^"]*" "[^"]*" \d+\.\d{3} "[^"]*"$')


def new_server(*args):
    """A server (not started) in a fresh work directory; the previous case's
    server and FIFO readers are cleaned up."""
    global S
    if S is not None:
        S.cleanup()
    while READERS:
        READERS.pop().close()
    S = Server(["--workers", "1"] + MODEL_ARGS + list(args), workdir=tempfile.mkdtemp(prefix="kingx-bb-fifo-"))
    return S


def reader(path):
    r = FifoReader(path)
    READERS.append(r)
    return r


def start_output(server):
    """Everything the server wrote (stdout/stderr files and the error log)."""
    return server.logs(limit=20000)


def check_start_refused(server, setting):
    server.start(wait=False)
    code = server.wait_exit(BOUND_S)
    check(code is not None, f"a start whose {setting} is a FIFO with no reader is still running after {BOUND_S}s "
          f"(waiting for a reader):\n{start_output(server)}")
    out = start_output(server)
    check(code != 0, f"a start whose {setting} is a FIFO with no reader exited {code}:\n{out}")
    check("FIFO with no reader" in out and setting in out, f"the error names neither the FIFO nor {setting}:\n{out}")


def test_a_start_is_refused_at_once_when_the_access_log_is_a_fifo_without_reader():
    s = new_server()
    os.mkfifo(s.access_log)
    check_start_refused(s, "--access-log")


def test_a_start_is_refused_at_once_when_the_error_log_is_a_fifo_without_reader():
    s = new_server()
    fifo = os.path.join(s.workdir, "error.fifo")  # not error.log: the harness reads that one
    os.mkfifo(fifo)
    s.extra += ["--error-log", fifo]
    check_start_refused(s, "--error-log")


def test_check_does_not_open_a_fifo_and_says_so():
    s = new_server()
    os.mkfifo(s.access_log)
    s.port = free_port()
    try:
        run = subprocess.run(s.argv() + ["-t"], capture_output=True, text=True, timeout=BOUND_S)
    except subprocess.TimeoutExpired:
        raise TestFailure(f"kingx -t with a FIFO access log and no reader did not return in {BOUND_S}s")
    out = run.stdout + run.stderr
    check(run.returncode == 0, f"kingx -t exited {run.returncode}:\n{out}")
    check("FIFO" in out and "--access-log" in out, f"kingx -t does not say the FIFO was not opened:\n{out}")


def get_tagged(port, tag):
    r = http(port, "GET", key_path(tag), timeout=BOUND_S)
    check(r.status == 404, f"GET {tag}: {r.status}")


def serving_with_access_log_moved_for_a_fifo():
    """A started server whose access log was renamed (as logrotate does) and
    replaced by a FIFO nobody reads: (server, the renamed file, error log offset)."""
    s = new_server()
    s.start()
    rotated = s.access_log + ".1"
    os.rename(s.access_log, rotated)
    os.mkfifo(s.access_log)
    return s, rotated, os.path.getsize(s.error_log)


def test_a_reload_to_a_fifo_without_reader_is_refused_and_the_old_access_log_kept():
    s, rotated, offset = serving_with_access_log_moved_for_a_fifo()
    s.signal(signal.SIGHUP)
    wait_for(lambda: "reload failed" in log_since(s, offset), BOUND_S, "the reload's outcome in the error log "
             "(a master waiting for a reader never logs it)")
    text = log_since(s, offset)
    check("keeping the current configuration" in text and "--access-log" in text and "FIFO with no reader" in text,
          f"the refusal does not name the setting and the FIFO:\n{text}")
    check("reload done" not in text, f"a refused reload started new workers:\n{text}")
    tag = f"fifo-reload-{time.time_ns()}"
    get_tagged(s.port, tag)
    # The old workers keep their file (the rotated one) and stop on TERM, flushing it.
    s.stop()
    with open(rotated, errors="replace") as f:
        check(tag in f.read(), "the request after the refused reload is not in the old access log")


def test_a_reopen_to_a_fifo_without_reader_keeps_serving_and_the_old_access_log():
    s, rotated, offset = serving_with_access_log_moved_for_a_fifo()
    s.signal(signal.SIGUSR1)
    wait_for(lambda: log_since(s, offset).count("FIFO with no reader") >= 2, BOUND_S,
             "the master's and the worker's reopen errors (a process waiting for a reader never logs them)")
    tag = f"fifo-reopen-{time.time_ns()}"
    get_tagged(s.port, tag)
    check(s.answers(timeout=BOUND_S), "the server no longer answers after USR1")
    s.stop()
    with open(rotated, errors="replace") as f:
        check(tag in f.read(), "the request after the failed reopen is not in the old access log")


def test_a_fifo_with_a_reader_gets_both_logs_through_a_reload_and_a_reopen():
    s = new_server()
    access = reader(s.access_log)
    errors = reader(os.path.join(s.workdir, "error.fifo"))
    s.extra += ["--error-log", errors.path]
    s.start()
    tags = []
    for step in ("start", "usr1", "hup"):
        if step == "usr1":
            s.signal(signal.SIGUSR1)
            wait_for(lambda: "reopening log files" in errors.text(), BOUND_S, "the reopen in the error log FIFO")
        elif step == "hup":
            s.signal(signal.SIGHUP)
            wait_for(lambda: "reload done" in errors.text(), BOUND_S, "the reload in the error log FIFO")
        tag = f"fifo-{step}-{time.time_ns()}"
        tags.append(tag)
        get_tagged(s.port, tag)
        # Lines are flushed once a second.
        wait_for(lambda: tag in access.text(), BOUND_S, f"the access line of {tag} in the FIFO")
    check(access.ends == 0 and errors.ends == 0,
          f"a reader saw end of input (every writer gone): access {access.ends}, error {errors.ends}")
    lines = [l for l in access.text().splitlines() if l]
    bad = [l for l in lines if not COMBINED.match(l)]
    check(not bad, f"access log lines that are not whole: {bad[:3]}")


def test_a_stalled_reader_does_not_stop_serving():
    s = new_server()
    access = reader(s.access_log)
    access.pause()
    s.start()
    offset = os.path.getsize(s.error_log)
    agent = "a" * 1000
    requests = 600  # ~1.1 KiB of log each: more than the pipe and the 256 KiB the worker holds
    with Conn(s.port, timeout=BOUND_S) as c:
        for i in range(requests):
            try:
                r = c.request("GET", "/healthz", headers=[("User-Agent", agent)])
            except (OSError, ConnectionClosed) as e:
                raise TestFailure(f"GET {i} of {requests} with the log's reader stalled: {e!r} (the worker waits "
                                  f"on the full pipe)")
            check(r.status == 200, f"GET {i}: {r.status}")
    wait_for(lambda: "not keeping up" in log_since(s, offset), BOUND_S, "the warn line of a full pipe")
    access.resume()
    tag = f"fifo-after-stall-{time.time_ns()}"
    wait_for(lambda: (get_tagged(s.port, tag), tag in access.text())[1], BOUND_S,
             "a line after the reader resumed")
    wait_for(lambda: re.search(r"access log .*: \d+ line\(s\) dropped", log_since(s, offset)), BOUND_S,
             "the count of dropped lines in the error log")
    lines = [l for l in access.text().splitlines() if l]
    bad = [l for l in lines if not COMBINED.match(l)]
    check(not bad, f"access log lines that are not whole (torn in the pipe): {[b[:120] for b in bad[:3]]}")


def test_a_reader_that_resumes_gets_the_held_lines_at_once():
    # The FIFO shrunk to one page (the reader's own pipe, F_SETPIPE_SZ): the
    # held lines are some 40 pipe-fulls. Retried once a second they would
    # take about 40 s to arrive; a worker that waits for room writes them
    # as fast as the reader takes them.
    s = new_server()
    access = reader(s.access_log)
    fcntl.fcntl(access.fd, F_SETPIPE_SZ, 4096)
    access.pause()
    s.start()
    offset = os.path.getsize(s.error_log)
    requests = 150  # ~1.1 KiB of log each: under the 256 KiB a worker holds
    tag = f"held-{time.time_ns()}"
    with Conn(s.port, timeout=BOUND_S) as c:
        for i in range(requests):
            r = c.request("GET", key_path(f"{tag}-{i}"), headers=[("User-Agent", "h" * 1000)])
            check(r.status == 404, f"GET {i}: {r.status}")
    # Flushed within a second, found full, held; the worker then waits for room.
    wait_for(lambda: "not keeping up" in log_since(s, offset), BOUND_S, "the warn line of a full pipe")
    # Waiting for room is not a busy loop: over two seconds of the stall the
    # worker wakes up a few times a second at most (its timers, and in the
    # thread model the main thread's 100 ms poll), not on every loop turn.
    worker = s.workers()[0]
    before = sum(voluntary_switches(worker).values())
    time.sleep(2)
    woke = sum(voluntary_switches(worker).values()) - before
    check(woke < 400, f"the worker woke up {woke} times in 2 s of the reader's stall")
    access.resume()
    wait_for(lambda: access.text().count(tag) == requests, BOUND_S,
             f"the {requests} held lines once the reader resumed (a retry once a second takes ~40 s)")
    check("dropped" not in log_since(s, offset), f"lines were dropped:\n{log_since(s, offset)}")
    bad = [l for l in access.text().splitlines() if l and not COMBINED.match(l)]
    check(not bad, f"access log lines that are not whole: {[b[:120] for b in bad[:3]]}")


def current():
    return S


if __name__ == "__main__":
    try:
        run_with_servers("log files that are FIFOs" + (" " + " ".join(MODEL_ARGS) if MODEL_ARGS else ""),
                         cases_of(globals()), current)
    finally:
        while READERS:
            READERS.pop().close()
