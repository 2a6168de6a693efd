#!/usr/bin/env python3
"""deploy/kingx.logrotate (the package's /etc/logrotate.d/kingx) run by Debian's logrotate against a
running kingx writing an access log and an error log: `logrotate -f` renames both, the postrotate
USR1 makes kingx write its next lines to new files, and no line is lost across them (every request
id once, in order of rotation); a second rotation compresses the first (delaycompress); with kingx
stopped, or a stale pid file naming another process, logrotate succeeds and signals nothing.

The shipped file is used as it is, except for its paths (/var/log/kingx, /run/kingx/kingx.pid: a
scratch directory) and the owner of the files it creates (the test's user: there is no `kingx`
user here), each by an exact-match rewrite that fails when the shipped line changes.

    KINGX_BIN=build/src/kingx python3 tests/deploy/test_logrotate.py
"""

import getpass
import grp
import gzip
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proxies import exit_on_sigterm, read_shipped, require, rewrite  # noqa: E402
from kingx_harness import (Conn, Server, build_request, cases_of, check, key_path, require_bin,  # noqa: E402
                           run_cases, wait_for)

K = None  # the kingx whose logs are rotated
WORK = tempfile.mkdtemp(prefix="kingx-logrotate-")


def config(workdir, pid_file):
    """The shipped file with its paths in `workdir` and `pid_file`, and files created as this user."""
    text = read_shipped("kingx.logrotate")
    text = rewrite(text, "/var/log/kingx/*.log {", os.path.join(workdir, "*.log") + " {")
    text = rewrite(text, "cat /run/kingx/kingx.pid", f"cat {pid_file}")
    text = rewrite(text, "create 0640 kingx adm",
                   f"create 0640 {getpass.getuser()} {grp.getgrgid(os.getgid()).gr_name}")
    path = os.path.join(WORK, "kingx.logrotate")
    with open(path, "w") as f:
        f.write(text)
    return path


def logrotate(workdir, pid_file):
    p = subprocess.run([require("logrotate"), "-f", "-s", os.path.join(WORK, "state"), config(workdir, pid_file)],
                       capture_output=True, text=True, timeout=60)
    check(p.returncode == 0 and "error" not in p.stderr.lower(), f"logrotate -f: {p.returncode} {p.stderr}")


def requests(tag, n):
    """n GETs of /healthz with request ids TAG-0 .. TAG-(n-1), then n bare PUTs (411: each an info
    line in the error log, at most a burst per second), on one connection."""
    with Conn(K.port) as c:
        for i in range(n):
            c.send(build_request("GET", "/healthz", headers=[("X-Request-Id", f"{tag}-{i}")]))
            check(c.read_response().status == 200, f"GET {tag}-{i}")
        c.send(build_request("PUT", key_path(f"{tag}-bare"), headers=[("X-Request-Id", f"{tag}-bare")]))
        check(c.read_response().status == 411, f"PUT {tag}-bare")


def lines(path):
    if not os.path.exists(path):
        return []
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", errors="replace") as f:
        return f.read().splitlines()


def ids_in(path, tag):
    return [ln.split('"')[-2] for ln in lines(path) if f'"{tag}-' in ln]


def reopened(access):
    """Waits until the worker (one: every connection is its) writes to the new access log: the
    master relays USR1 to it, so its reopen follows the master's by a moment. Probe lines (request
    ids probe-N) land in the old or the new file and are counted in neither."""
    n = [0]

    def probe():
        n[0] += 1
        with Conn(K.port) as c:
            c.send(build_request("GET", "/healthz", headers=[("X-Request-Id", f"probe-{n[0]}")]))
            c.read_response()
        return bool(ids_in(access, "probe"))
    wait_for(probe, 30, "the worker to write to the new access log")


def test_a_forced_rotation_moves_both_logs_and_kingx_writes_on_in_new_files_losing_nothing():
    d = K.workdir
    access, error = K.access_log, K.error_log
    requests("before", 200)
    wait_for(lambda: len(ids_in(access, "before")) == 201, 30, "the access log to hold the first 201 lines")
    check(any("before-bare" in ln for ln in lines(error)), "the refused PUT is in the error log")
    logrotate(d, K.pid_file)
    check(os.path.exists(access + ".1") and os.path.exists(error + ".1"), f"rotated files: {sorted(os.listdir(d))}")
    # The new files exist at once (create), owned as the file says; kingx reopens them on USR1.
    check(os.path.exists(access) and os.stat(access).st_mode & 0o777 == 0o640, "a new access log, mode 0640")
    wait_for(lambda: any("reopening log files" in ln for ln in lines(error + ".1")), 30,
             "the master's 'reopening log files' line (USR1 from postrotate)")
    reopened(access)
    requests("after", 200)
    wait_for(lambda: len(ids_in(access, "after")) == 201, 30, "the new access log to hold the next 201 lines")
    old, new = ids_in(access + ".1", "before") + ids_in(access + ".1", "after"), ids_in(access, "after")
    check(old == [f"before-{i}" for i in range(200)] + ["before-bare"],
          f"the rotated access log holds exactly the first lines: {len(old)}")
    check(new == [f"after-{i}" for i in range(200)] + ["after-bare"] and not ids_in(access, "before"),
          f"the new access log holds exactly the next lines: {len(new)}")
    wait_for(lambda: any("after-bare" in ln for ln in lines(error)), 30, "the refused PUT after the rotation in the new error log")
    check(not any("after-bare" in ln for ln in lines(error + ".1")), "nothing of after the rotation in the old error log")

    # A second rotation: the first rotated file is compressed now (delaycompress), lines intact.
    logrotate(d, K.pid_file)
    wait_for(lambda: any("reopening log files" in ln for ln in lines(error + ".1")), 30, "the second reopen")
    reopened(access)
    requests("third", 5)
    wait_for(lambda: len(ids_in(access, "third")) == 6, 30, "the third access log to hold 6 lines")
    check(os.path.exists(access + ".2.gz") and not os.path.exists(access + ".2"), f"compressed: {sorted(os.listdir(d))}")
    every = []
    for path in (access + ".2.gz", access + ".1", access):
        every += [i for tag in ("before", "after", "third") for i in ids_in(path, tag)]
    check(len(every) == 201 + 201 + 6 and len(set(every)) == len(every),
          f"every request's line once across the three files: {len(every)} lines, {len(set(every))} ids")


def test_with_kingx_stopped_or_a_stale_pid_file_logrotate_succeeds_and_signals_nothing():
    d = tempfile.mkdtemp(dir=WORK)
    with open(os.path.join(d, "access.log"), "w") as f:
        f.write("a line\n")
    logrotate(d, os.path.join(d, "missing.pid"))
    check(os.path.exists(os.path.join(d, "access.log.1")), "rotated with no pid file")
    other = subprocess.Popen(["sleep", "60"])
    try:
        pid_file = os.path.join(d, "stale.pid")
        with open(pid_file, "w") as f:
            f.write(f"{other.pid}\n")
        with open(os.path.join(d, "access.log"), "a") as f:
            f.write("another line\n")
        logrotate(d, pid_file)
        check(other.poll() is None, f"the process a stale pid file names was signalled: {other.poll()}")
    finally:
        other.kill()
        other.wait()


def main():
    global K
    exit_on_sigterm()
    require_bin()
    require("logrotate")
    try:
        K = Server(["--workers", "1", "--log-level", "info"])
        K.start()
        status = run_cases("deploy/kingx.logrotate with Debian's logrotate", cases_of(globals()), lambda: K)
    finally:
        if K is not None:
            K.cleanup()
        subprocess.run(["rm", "-rf", WORK])
    sys.exit(status)


if __name__ == "__main__":
    main()
