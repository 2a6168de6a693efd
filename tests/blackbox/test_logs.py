"""Access log contents: nginx's combined format with the request
line, status and size; JSON lines with --access-log-format json; the client
address taken from X-Forwarded-For only when the peer is a --trusted-proxy;
X-Request-Id logged. (Reopening on USR1 is in test_signals.py.)

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_logs.py
"""

import json
import os
import re
import signal
import time

from kingx_harness import Server, TestFailure, cases_of, check, http, key_path, run_with_servers

S = None


def fresh_server(*flags):
    global S
    if S is not None:
        S.cleanup()
    S = Server(["--workers", "1"] + list(flags))
    S.start()
    return S


def log_lines_with(marker, count, timeout=15.0):
    """The access log lines containing `marker` once there are `count` of them.
    Lines may be buffered per worker: a TERM flushes them, so the server is
    stopped if they do not show up while it runs."""
    def read():
        try:
            with open(S.access_log, errors="replace") as f:
                return [l.rstrip("\n") for l in f if marker in l]
        except OSError:
            return []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = read()
        if len(lines) >= count:
            return lines
        time.sleep(0.1)
    S.signal(signal.SIGTERM)
    S.wait_exit(20)
    lines = read()
    check(len(lines) >= count, f"{count} access log lines with {marker!r} expected, found {lines}")
    return lines


def test_combined_format_and_untrusted_forwarded_for():
    fresh_server()
    tag = f"logs-{time.time_ns()}"
    check(http(S.port, "PUT", key_path(tag), b"12345").status == 201, "PUT")
    http(S.port, "GET", key_path(tag), None, [("X-Forwarded-For", "203.0.113.7"), ("User-Agent", "bb-agent/1"),
                                              ("Referer", "http://example.test/r"), ("X-Request-Id", "bb-rid-1")])
    lines = log_lines_with(tag, 2)
    combined = re.compile(r'^(\S+) \S+ \S+ \[[^\]]+\] "(\S+) (\S+) HTTP/1\.1" (\d{3}) (\d+) "([^"]*)" "([^"]*)"')
    put_line = next(l for l in lines if '"PUT ' in l)
    get_line = next(l for l in lines if '"GET ' in l)
    m = combined.match(put_line)
    check(m and m.group(4) == "201", f"PUT line not combined format with status 201: {put_line!r}")
    m = combined.match(get_line)
    check(m, f"GET line not in combined format: {get_line!r}")
    check(m.group(1) == "127.0.0.1", f"X-Forwarded-For from an untrusted peer must be ignored: {get_line!r}")
    check(m.group(4) == "200" and m.group(5) == "5", f"GET status 200 and 5 body bytes: {get_line!r}")
    check(m.group(6) == "http://example.test/r" and m.group(7) == "bb-agent/1", f"referer/agent: {get_line!r}")
    check("bb-rid-1" in get_line, f"X-Request-Id is logged: {get_line!r}")


def test_trusted_proxy_forwarded_for_and_json_format():
    fresh_server("--trusted-proxy", "127.0.0.1", "--access-log-format", "json")
    tag = f"logs-json-{time.time_ns()}"
    http(S.port, "GET", key_path(tag), None, [("X-Forwarded-For", "198.51.100.9, 127.0.0.1")])
    http(S.port, "GET", key_path(tag) + "-plain")
    lines = log_lines_with(tag, 2)
    docs = []
    for line in lines:
        try:
            docs.append(json.loads(line))
        except ValueError:
            raise TestFailure(f"--access-log-format json wrote a line that is not JSON: {line!r}")
    # Field names are the server's choice; the values are not.
    def values(doc):
        return {str(v) for v in doc.values()} if isinstance(doc, dict) else set()
    fwd = [d for d in docs if any(str(v).endswith(tag) for v in values(d))]
    plain = [d for d in docs if any(str(v).endswith(tag + "-plain") for v in values(d))]
    check(fwd and plain, f"one JSON object per request, with the URI as a value: {docs}")
    check("198.51.100.9" in values(fwd[0]), f"X-Forwarded-For from a trusted proxy is the client address: {fwd[0]}")
    check("404" in values(fwd[0]), f"the status is a value: {fwd[0]}")
    check("198.51.100.9" not in values(plain[0]) and "127.0.0.1" in values(plain[0]),
          f"without X-Forwarded-For the peer address is logged: {plain[0]}")


def main():
    run_with_servers("access log", cases_of(globals()), lambda: S)


if __name__ == "__main__":
    main()
