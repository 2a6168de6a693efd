"""Promises of README.md that no other test held the real binary to (the
seventh part; test_promises.py to test_promises6.py have the others), each
checked where a client or an operator sees it, with no timing threshold:

  - a reload (HUP) keeps the settings only a restart can change at their
    running value and says so in the error log, naming the setting: a new
    `pid` path too (the pid file written at start stays, with the master's
    pid, and is the one a stop removes; nothing is written at the new path).

Every server a case starts is stopped by PID when the case ends, and
SIGTERM (meson's timeout) exits through that cleanup.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_promises7.py
"""

import json
import os
import signal

from kingx_harness import Server, ServerPerCase, cases_of, check, free_port, run_with_servers, wait_for

SERVERS = ServerPerCase()
WAIT_S = 120  # generous: CI runs sanitizer trees beside this one


def log_since(server, offset):
    try:
        with open(server.error_log, errors="replace") as f:
            f.seek(offset)
            return f.read()
    except FileNotFoundError:
        return ""


def write_config(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def read_pid(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def test_a_reload_that_changes_the_pid_file_keeps_the_old_one_and_says_so():
    if SERVERS.server is not None:
        SERVERS.server.cleanup()
    s = SERVERS.server = Server(raw_args=True, port=free_port())
    config = os.path.join(s.workdir, "kingx.json")
    first, second = os.path.join(s.workdir, "first.pid"), os.path.join(s.workdir, "second.pid")
    doc = {"listen": [f"127.0.0.1:{s.port}"], "data": s.data_dir, "error_log": s.error_log, "pid": first,
           "workers": 1, "access_log": "off"}
    write_config(config, json.dumps(doc))
    s.extra = ["--config", config]
    s.start()
    master = str(s.proc.pid)
    check(read_pid(first) == master, f"the pid file {first} holds the master's pid {master}: {read_pid(first)!r}")
    before = os.path.getsize(s.error_log)
    write_config(config, json.dumps(dict(doc, pid=second)))
    s.signal(signal.SIGHUP)
    wait_for(lambda: "reload done" in log_since(s, before) or "reload failed" in log_since(s, before), WAIT_S,
             "the master to take the reload")
    tail = log_since(s, before)
    check("--pid" in tail and "restart" in tail,
          f"a reload changing pid ({first} -> {second}) says nothing about it in the error log:\n{tail[-1500:]}")
    check(read_pid(first) == master and read_pid(second) is None,
          f"after the reload the pid file stays {first} with {master}, nothing at {second}: "
          f"{read_pid(first)!r}, {read_pid(second)!r}")
    s.stop()
    check(read_pid(first) is None, f"the stop removes the pid file written at start ({first})")
    s.cleanup()
    SERVERS.server = None


if __name__ == "__main__":
    run_with_servers("promises7", cases_of(globals()), SERVERS.current)
