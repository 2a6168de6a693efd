"""Promises of README.md that no other test held the real binary to (the
sixth part; test_promises.py to test_promises5.py have the others), each
checked where a client or an operator sees it, with no timing threshold:

  - a reload (HUP) with a configuration file the JSON parser itself cannot
    take, a number beyond a double's range included, is logged and the old
    configuration keeps serving (the master stays, its workers too).

Every server a case starts is stopped by PID when the case ends, and
SIGTERM (meson's timeout) exits through that cleanup.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_promises6.py
"""

import json
import os
import signal

from kingx_harness import Server, ServerPerCase, cases_of, check, http, key_path, run_with_servers, wait_for

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


def server_with_config(doc, *args):
    """A server started on a configuration file in its own work directory
    (the previous case's server stopped first)."""
    if SERVERS.server is not None:
        SERVERS.server.cleanup()
    s = SERVERS.server = Server(list(args))
    config = os.path.join(s.workdir, "kingx.json")
    write_config(config, json.dumps(doc))
    s.extra += ["--config", config]
    s.start()
    return s


def test_a_reload_with_a_number_beyond_a_double_keeps_the_old_configuration_serving():
    s = server_with_config({"workers": 1, "max_value_bytes": 4096})
    config = s.extra[-1]
    check(http(s.port, "PUT", key_path("k"), b"v" * 5000).status == 413, "max_value_bytes 4096 from the file")
    workers = set(s.workers())
    for setting, literal in (("compaction_dead_ratio", "1e400"), ("workers", "-1e999")):
        before = os.path.getsize(s.error_log) if os.path.exists(s.error_log) else 0
        write_config(config, '{"workers": 1, "max_value_bytes": 4096, "%s": %s}' % (setting, literal))
        s.signal(signal.SIGHUP)
        wait_for(lambda: "reload failed" in log_since(s, before) or not s.alive(), WAIT_S,
                 f"the error log to report the rejected configuration ({setting}: {literal})")
        check(s.alive(), f"the master ended on a HUP with {setting}: {literal} in the file "
                         f"(exit {s.proc.returncode}):\n{log_since(s, before)[-2000:]}")
        tail = log_since(s, before)
        check(setting in tail, f"the error log does not name {setting}: {tail[-1500:]!r}")
        check(set(s.workers()) == workers, f"workers replaced by a rejected reload: {workers} -> {s.workers()}")
        r = http(s.port, "PUT", key_path("k"), b"v" * 5000)
        check(r.status == 413, f"the old max_value_bytes (4096) must stay in force: PUT of 5000 B gave {r.status}")
        check(http(s.port, "PUT", key_path("k"), b"small").status in (201, 204), "a small PUT is served")


if __name__ == "__main__":
    run_with_servers("promises6", cases_of(globals()), SERVERS.current)
