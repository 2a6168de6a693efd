"""Access log contents: nginx's combined format with the request
line, status and size; JSON lines with --access-log-format json; the client
address taken from X-Forwarded-For only when the peer is a --trusted-proxy;
X-Request-Id logged; requests the HTTP core refuses itself (framing errors,
unknown methods and paths) logged too, with the request id the client saw,
and an info line in the error log; a steady PUT load, compaction running,
adds no error log line; clean starts and restarts (QUIT, TERM) log no warn
or error line, and a record cut after a crash is the one warn line, naming
the segment and the offset. (Reopening on USR1 is in test_signals.py.)

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_logs.py
"""

import json
import os
import re
import signal
import time

from kingx_harness import (Conn, Server, TestFailure, cases_of, check, http, key_path, log_since, metric_values,
                           record_ends, run_with_servers)

S = None
PUT_LOAD = 600  # durable PUTs of 3000 bytes over 16 keys: about 28 segments of 64 KiB


def fresh_server(*flags, settle=False):
    """A server on a new data directory; with `settle`, started as
    start_and_settle() does."""
    global S
    if S is not None:
        S.cleanup()
    S = Server(["--workers", "1"] + list(flags))
    if settle:
        start_and_settle()
    else:
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


def test_refused_requests_are_logged_with_their_request_id():
    refused_requests_are_logged("--log-level", "info")


def test_refused_requests_are_logged_in_the_threads_model():
    refused_requests_are_logged("--log-level", "info", "--model", "threads", "--threads", "4")


def refused_requests_are_logged(*flags):
    fresh_server(*flags)
    tag = f"refused-{time.time_ns()}"
    sent = [
        # (raw request, status, client id or None)
        (f"BREW /{tag}/brew HTTP/1.1\r\nHost: t\r\nX-Request-Id: bb-{tag}\r\n\r\n".encode(), 501, f"bb-{tag}"),
        (f"GET /{tag}/nowhere HTTP/1.1\r\nHost: t\r\n\r\n".encode(), 404, None),
        # A bare CR in the header section: refused before the head is complete.
        (f"GET /v1/kv/{tag}-cr HTTP/1.1\r\nHost: t\r\n\rX\r\n\r\n".encode(), 400, None),
    ]
    ids = []
    for raw, status, client_id in sent:
        with Conn(S.port) as c:
            c.send(raw)
            r = c.read_response()
        check(r.status == status, f"{raw!r}: {status} expected, got {r.status}")
        rid = r.header("X-Request-Id")
        check(rid, f"{raw!r}: the core's {status} carries an X-Request-Id")
        if client_id:
            check(rid == client_id, f"the client's X-Request-Id is echoed: {rid!r}")
        ids.append(rid)
    lines = log_lines_with(tag, len(sent))
    for (raw, status, _), rid in zip(sent, ids):
        line = next((l for l in lines if rid in l), None)
        check(line is not None, f"no access log line with request id {rid!r} ({raw!r}): {lines}")
        check(f'" {status} ' in line, f"status {status} in the access log line: {line!r}")
    def refused_line():
        with open(S.error_log, errors="replace") as f:
            return next((l for l in f if "client refused with 501" in l and f"bb-{tag}" in l), None)
    deadline = time.monotonic() + 10
    while refused_line() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    line = refused_line()
    check(line is not None and "[info]" in line, f"an info line in the error log for the refused BREW: {line!r}")


def test_a_steady_put_load_leaves_the_error_log_quiet():
    """Durable PUTs overwriting a few keys, with segments small enough that
    compaction passes run meanwhile: at the default level the error log gets
    no line per request, per group commit or per compaction pass (the passes'
    counts are metrics; only their failures are logged). The one line such a
    load may add is documented: writes held for compaction, summed up at
    most every 10 s."""
    fresh_server("--segment-bytes", "64K")
    # The start's last line (the sorted key view built for the new
    # directory) comes after /readyz: the load begins once it is written.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(S.error_log, "rb") as f:
            start = f.read()
        if metric_values(S.port)["kingx_keyspace_ready"] == 1 and b"sorted view" in start:
            break
        time.sleep(0.05)
    mark = len(start)
    passes = metric_values(S.port)["kingx_compaction_passes_total"]
    value = b"q" * 3000
    with Conn(S.port) as c:
        for i in range(PUT_LOAD):
            r = c.request("PUT", key_path("quiet-%d" % (i % 16)), value)
            check(r.status in (200, 201, 204), f"PUT {i}: {r.status}")
    deadline = time.monotonic() + 30
    # One pass or several: on a fast machine the load can end before the
    # first pass, which then takes every sealed segment at once.
    while metric_values(S.port)["kingx_compaction_passes_total"] < passes + 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    ran = metric_values(S.port)["kingx_compaction_passes_total"] - passes
    check(ran >= 1, f"no compaction pass ran after the load: it does not test what passes log")
    with open(S.error_log, "rb") as f:
        f.seek(mark)
        new = f.read().decode("utf-8", "replace").splitlines()
    allowed = ("writes waited for compaction", "writes wait for compaction")
    extra = [l for l in new if not any(a in l for a in allowed)]
    print(f"{PUT_LOAD} PUTs, {ran:.0f} compaction passes, {len(new)} new error log line(s)", flush=True)
    check(not extra, f"{len(extra)} error log line(s) under a steady PUT load:\n  " + "\n  ".join(extra[:10]))


def start_and_settle():
    """Starts S again (or first) and waits until the sorted key view's open
    has ended (its line written): the start has logged all it logs. Returns
    the error log's offset where this start's lines begin."""
    mark = os.path.getsize(S.error_log) if os.path.exists(S.error_log) else 0
    S.start()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if any("the sorted view:" in l for l in log_since(S, mark).splitlines()):
            return mark
        time.sleep(0.05)
    raise TestFailure("the sorted key view's open logged nothing in 15 s:\n" + S.logs())


def stop_with(sig):
    S.signal(sig)
    check(S.wait_exit(30) == 0, f"a stop with {signal.Signals(sig).name} exits 0:\n" + S.logs())


def warnings(lines):
    return [l for l in lines if "[warn]" in l or "[error]" in l or "[crit]" in l or "[alert]" in l]


def test_clean_starts_and_restarts_log_no_warning():
    """A new database's first start (its sorted view built from nothing), a
    restart after a graceful stop (QUIT), one after a fast stop (TERM) and a
    read-only start over the same files:
    the active segment's preallocated zero room cut at each open is not a
    torn tail, and a view caught up after a clean close is routine."""
    fresh_server(settle=True)
    values = {f"clean-{i}": (b"c%d" % i) * (10 + 50 * i) for i in range(5)}
    for k, v in values.items():
        check(http(S.port, "PUT", key_path(k), v).status == 201, f"PUT {k}")
    stop_with(signal.SIGQUIT)
    start_and_settle()
    stop_with(signal.SIGTERM)
    start_and_settle()
    for k, v in values.items():
        r = http(S.port, "GET", key_path(k))
        check(r.status == 200 and r.body == v, f"GET {k} after the restarts: {r.status}")
    stop_with(signal.SIGTERM)
    # A read-only server over the same files starts its view from the
    # database's own (a seed it reads where it is): routine too.
    S.extra.append("--read-only")
    start_and_settle()
    r = http(S.port, "GET", key_path("clean-1"))
    check(r.status == 200 and r.body == values["clean-1"], f"GET clean-1 read-only: {r.status}")
    stop_with(signal.SIGTERM)
    S.extra.remove("--read-only")
    noisy = warnings(log_since(S, 0).splitlines())
    check(not noisy, f"{len(noisy)} warn/error line(s) at clean starts:\n  " + "\n  ".join(noisy))
    # The view missing from a database with keys is no routine start: warned.
    os.remove(os.path.join(S.data_dir, "keys", "MANIFEST"))
    mark = start_and_settle()
    rebuilt = [l for l in log_since(S, mark).splitlines() if "rebuilt the sorted view" in l]
    check(len(rebuilt) == 1 and "[warn]" in rebuilt[0] and f"{len(values)} entries" in rebuilt[0],
          f"a rebuild of a database's view from its keys is a warn line: {rebuilt}")


def test_a_record_cut_after_a_crash_is_the_one_warning():
    """kill -9 of the whole server after acknowledged writes, then the active
    segment's last record cut mid-way from outside (what a lost write-back
    leaves): the next start logs that torn tail, naming the segment and the
    offset where the cut record began, and nothing else above info."""
    fresh_server(settle=True)
    for i in range(4):
        check(http(S.port, "PUT", key_path(f"torn-{i}"), b"t" * (100 + i)).status == 201, f"PUT torn-{i}")
    S.kill_group()
    segments = sorted(n for n in os.listdir(S.data_dir) if n.endswith(".kxd"))
    check(segments, f"no segment in {os.listdir(S.data_dir)}")
    active = os.path.join(S.data_dir, segments[-1])
    with open(active, "rb") as f:
        ends = record_ends(f.read())
    check(len(ends) >= 4, f"{segments[-1]}: {len(ends)} record(s), 4 PUTs made")
    last_begins = ends[-2]
    os.truncate(active, ends[-1] - 7)  # inside the last record's value
    mark = start_and_settle()
    noisy = warnings(log_since(S, mark).splitlines())
    segment_id = int(segments[-1][4:-4])
    check(len(noisy) == 1, f"one warn line expected after the cut, got {len(noisy)}:\n  " + "\n  ".join(noisy))
    check("[warn]" in noisy[0] and f"segment {segment_id}: torn tail" in noisy[0] and
          f"at offset {last_begins} " in noisy[0], f"the torn tail's line names segment and offset: {noisy[0]!r}")
    for i in range(3):
        check(http(S.port, "GET", key_path(f"torn-{i}")).status == 200, f"torn-{i}, before the cut, is kept")
    check(http(S.port, "GET", key_path("torn-3")).status == 404, "torn-3, the cut record, is gone")


def main():
    run_with_servers("access log", cases_of(globals()), lambda: S)


if __name__ == "__main__":
    main()
