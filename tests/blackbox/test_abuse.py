"""No client can exhaust a worker's memory or the disk: the budgets are
enforced, the worker applies backpressure instead of growing, a stalled
upload is removed, and a large compressed value is sent piece by piece.

Every property is observed from outside, without timing thresholds: the
worker's anonymous memory (/proc/PID/status RssAnon), the bytes the kernel
holds for a socket (/proc/net/tcp rx_queue / tx_queue), the staging files
in the data directory, and the responses.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_abuse.py [--model threads]
"""

import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

from kingx_harness import (Conn, ConnectionClosed, LimitedServer, Server, adopt, build_request, cases_of, check,
                           check_quiet_between_ticks, compressible_text, http, key_path, log_since, metric,
                           replace_file, run_with_servers, server_end, socket_option, staging_files, wait_for)

MODEL_ARGS = []
CURRENT = None  # the server of the running case, for run_cases' logs


def start(*args, nofile=None):
    """Starts the case's server (after removing the previous case's: its logs
    were printed by then if it failed)."""
    global CURRENT
    if CURRENT is not None:
        CURRENT.cleanup()
    # The case's own flags come last, so they win over the model's defaults.
    CURRENT = LimitedServer(nofile, nofile, *MODEL_ARGS, *args) if nofile else Server(MODEL_ARGS + list(args))
    CURRENT.start()
    return CURRENT


def rss_anon_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise AssertionError(f"no RssAnon for {pid}")


def tcp_queues(server_port, client_port):
    """(tx_queue, rx_queue) of the server's end of the connection whose client
    end is 127.0.0.1:client_port, from /proc/net/tcp, or None."""
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            lport = int(parts[1].split(":")[1], 16)
            rport = int(parts[2].split(":")[1], 16)
            if lport == server_port and rport == client_port:
                tx, rx = parts[4].split(":")
                return int(tx, 16), int(rx, 16)
    return None


def raw_socket(port, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(30)
    s.connect(("127.0.0.1", port))
    return s


def read_large_response(sock, timeout):
    """(status, body) of one Content-Length response, read without copying
    the body over and over (the harness's reader is meant for small ones)."""
    sock.settimeout(timeout)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionClosed("closed before the head ended", len(head))
        head += chunk
    head, _, rest = head.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = bytearray(length)
    body[:len(rest)] = rest
    view = memoryview(body)
    got = len(rest)
    while got < length:
        n = sock.recv_into(view[got:], min(1 << 20, length - got))
        if n == 0:
            raise ConnectionClosed(f"closed after {got} of {length} body bytes", got)
        got += n
    return status, bytes(body)


def put(port, key, body, headers=None):
    r = http(port, "PUT", key_path(key), body, headers, timeout=60)
    check(r.status in (201, 204), f"PUT {key}: {r.status} {r.body[:200]!r}")
    return r


def test_slow_reader_holds_few_unsent_bytes():
    # A reader that does not read: without TCP_NOTSENT_LOWAT the kernel queues
    # as much as the autotuned send buffer takes (megabytes on loopback).
    s = start("--workers", "1", "--send-lowat-bytes", "16K")
    value = os.urandom(8 << 20)
    put(s.port, "big", value)
    c = raw_socket(s.port, rcvbuf=4096)
    try:
        c.sendall(build_request("GET", key_path("big")))
        port = c.getsockname()[1]
        largest = 0
        t_end = time.monotonic() + 2.0
        while time.monotonic() < t_end:
            q = tcp_queues(s.port, port)
            if q:
                largest = max(largest, q[0])
            time.sleep(0.02)
        check(largest > 0, "the server never queued anything for the reader")
        check(largest <= 256 << 10, f"the kernel holds {largest} unsent bytes for one slow reader "
                                    f"(--send-lowat-bytes 16K)")
        # Still a correct response once the client reads.
        c.settimeout(60)
        got = b""
        while len(got) < len(value) + 100:
            chunk = c.recv(1 << 20)
            if not chunk:
                break
            got += chunk
        check(got.endswith(value), "the slow reader did not get the value whole")
    finally:
        c.close()


def lowat_of(s, c):
    """TCP_NOTSENT_LOWAT of the server's end of connection c once a worker
    has answered a request on it, read from the worker's own socket: the
    bound kingx gave that connection, whatever the kernel then buffers."""
    r = c.request("GET", "/healthz")
    check(r.status == 200, f"GET /healthz: {r.status}")
    side = s.server_side_of_client_port(c.local_port())
    check(side is not None, "no worker holds the server's end of the connection")
    return socket_option(side[0], side[1], socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT)


def test_a_reload_applies_a_new_send_lowat_to_new_connections():
    # The bound is set on the listening socket, which a reload's new workers
    # share with the old ones, and which passes it on to each connection as
    # the kernel completes it, before any worker accepts: each reload must
    # set its own value there, 0 (the kernel's default: no bound) included,
    # by the time the master says the reload is done (a connection completed
    # then, before the new worker is up, is a new connection too). Checked
    # on the listener and on each new connection's socket itself, not by
    # how much the kernel chose to buffer for a slow reader (autotuning
    # under load may buffer less).
    global CURRENT
    if CURRENT is not None:
        CURRENT.cleanup()
    s = CURRENT = Server(MODEL_ARGS + ["--workers", "1"])
    config = os.path.join(s.workdir, "kingx.json")
    with open(config, "w") as f:
        json.dump({"send_lowat_bytes": 0}, f)
    s.extra += ["--config", config]
    s.start()
    with Conn(s.port) as c:
        got = lowat_of(s, c)
    check(got == 0, f"a new connection under --send-lowat-bytes 0 has TCP_NOTSENT_LOWAT {got}")
    for lowat in (16 << 10, 0) * 3:  # the race with a new worker's start, more than once
        old = set(s.workers())
        offset = os.path.getsize(s.error_log)
        replace_file(config, json.dumps({"send_lowat_bytes": lowat}))
        s.signal(signal.SIGHUP)
        # Looked for without a pause: the new worker is starting meanwhile.
        deadline = time.monotonic() + 120
        while "reload done" not in log_since(s, offset) and time.monotonic() < deadline:
            pass
        with Conn(s.port) as early:  # completed by the kernel now, accepted by whichever worker comes
            got = lowat_of(s, early)
        check(got == lowat, f"a connection made as the reload to --send-lowat-bytes {lowat} was done has "
                            f"TCP_NOTSENT_LOWAT {got}")
        listeners = s.master_listeners()
        check(listeners, "the master holds no listening socket")
        for pid, fd in listeners:
            got = socket_option(pid, fd, socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT)
            check(got == lowat, f"the listening socket has TCP_NOTSENT_LOWAT {got} once the reload to "
                                f"--send-lowat-bytes {lowat} is done")
        wait_for(lambda: s.workers() and not (set(s.workers()) & old), 120, "the new workers to replace the old ones")
        with Conn(s.port) as c:
            got = lowat_of(s, c)
        check(got == lowat, f"a new connection after the reload to --send-lowat-bytes {lowat} has "
                            f"TCP_NOTSENT_LOWAT {got}")


def test_a_slow_reader_costs_no_write_that_finds_the_socket_full():
    # Event model: a write the socket took only part of means the socket is
    # full; the worker leaves the rest to one asynchronous write instead of
    # first trying again at once (a writev that would take nothing).
    if MODEL_ARGS:
        return  # the thread model writes with blocking calls
    s = start("--workers", "1", "--send-lowat-bytes", "16K")
    value = os.urandom(1 << 20)
    put(s.port, "big", value)
    before = metric(s.port, "kingx_http_writes_blocked_total")
    check(before is not None, "no kingx_http_writes_blocked_total in /metrics")
    c = raw_socket(s.port, rcvbuf=4096)
    try:
        c.sendall(build_request("GET", key_path("big")))
        port = c.getsockname()[1]
        wait_for(lambda: (tcp_queues(s.port, port) or (0, 0))[0] > 0, 60, "the server to queue part of the value")
        status, body = read_large_response(c, 60)
        check(status == 200 and body == value, f"the slow reader's GET: {status}, {len(body)} bytes")
    finally:
        c.close()
    after = metric(s.port, "kingx_http_writes_blocked_total")
    check(after == before, f"{after - before:.0f} writes found the slow reader's socket full")


def gets_counted(port):
    body = http(port, "GET", "/metrics", timeout=30).body.decode()
    return float(re.search(r'^kingx_http_requests_total\{method="GET"\} (\S+)$', body, re.M).group(1))


def test_a_slow_reader_pipelining_large_values_costs_one_lookup_at_a_time():
    # slowhttptest -X pipelines three GETs of a large value and reads a few
    # bytes now and then: the next GET is taken up (looked up, its value
    # verified) once the answer before it is nearly sent, not while a
    # megabyte of it still waits for the reader.
    s = start("--workers", "1", "--send-lowat-bytes", "16K")
    value = os.urandom(1 << 20)
    put(s.port, "big", value)
    counted = gets_counted(s.port)
    own = gets_counted(s.port) - counted  # the /metrics GET itself
    counted += own
    c = raw_socket(s.port, rcvbuf=4096)
    try:
        c.sendall(build_request("GET", key_path("big")) * 3)
        port = c.getsockname()[1]
        wait_for(lambda: (tcp_queues(s.port, port) or (0, 0))[0] > 0, 60, "the server to queue part of the value")
        time.sleep(0.5)
        taken = gets_counted(s.port) - counted - own
        check(taken == 1, f"{taken:.0f} of a slow reader's 3 pipelined GETs of a 1 MiB value were taken up while "
                          f"it had read nothing")
        for i in range(3):
            status, body = read_large_response(c, 60)
            check(status == 200 and body == value, f"pipelined GET {i + 1}: {status}, {len(body)} bytes")
    finally:
        c.close()


def server_end_established(server_port, client_port):
    """True while the server's end of that connection is ESTABLISHED (not
    closed by the server: FIN_WAIT, gone), from /proc/net/tcp."""
    end = server_end(server_port, client_port)
    return end is not None and end[0] == "01"


SEND_TIMEOUT_MS = 2000


def paced_read(sock, total_bytes, seconds):
    """Reads one response from sock to its end (the server closes: the
    request said Connection: close), at about total_bytes over `seconds`,
    in reads of at most 16 KiB. Returns (head, body)."""
    rate = total_bytes / seconds
    data, begin = bytearray(), time.monotonic()
    sock.settimeout(60)
    while True:
        chunk = sock.recv(16384)
        if not chunk:
            break
        data += chunk
        ahead = len(data) / rate - (time.monotonic() - begin)
        if ahead > 0:
            time.sleep(ahead)  # the client's pace
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    return head, body


def test_a_slow_reader_longer_than_the_send_timeout_gets_the_value_whole():
    # --send-timeout-ms bounds the time a response makes NO progress, as
    # nginx's send_timeout does: a client that reads a large value steadily,
    # but over three send timeouts, is served whole; one that reads nothing
    # is closed. Both ways of sending a value: as it is stored (random bytes,
    # from its segment; the event model's whole value goes to one
    # asynchronous write, which reports progress only at its end) and
    # streamed (a compressible value, decoded 64 KiB frame by frame as the
    # client takes the previous one). The two readers read at once.
    s = start("--workers", "1", "--send-timeout-ms", str(SEND_TIMEOUT_MS))
    values = {"big": os.urandom(2 << 20), "big-text": compressible_text(2 << 20, 11)}
    for key, value in values.items():
        put(s.port, key, value)
    seconds = 3 * SEND_TIMEOUT_MS / 1000
    readers = {key: raw_socket(s.port, rcvbuf=16384) for key in values}
    idle = {key: raw_socket(s.port, rcvbuf=4096) for key in values}
    got = {}
    try:
        for key in values:
            idle[key].sendall(build_request("GET", key_path(key)))
            readers[key].sendall(build_request("GET", key_path(key), headers=[("Connection", "close")]))
        threads = [threading.Thread(target=lambda k=key: got.__setitem__(k, paced_read(readers[k], len(values[k]),
                                                                                         seconds)))
                   for key in values]
        begin = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        for key, value in values.items():
            head, body = got.get(key, (b"", b""))
            check(head.startswith(b"HTTP/1.1 200") and body == value,
                  f"a client reading {len(value)} B of {key} over {time.monotonic() - begin:.1f} s "
                  f"(--send-timeout-ms {SEND_TIMEOUT_MS}) got {len(body)} body bytes: closed while it was reading")
        for key in values:
            idle_port = idle[key].getsockname()[1]
            wait_for(lambda: not server_end_established(s.port, idle_port), 120,
                     f"the server to close a client that reads nothing of {key} (--send-timeout-ms)")
    finally:
        for c in list(readers.values()) + list(idle.values()):
            c.close()


def test_a_pipelined_request_behind_a_slowly_read_value_is_answered():
    # A client on a slow link pipelines two GETs of a value larger than the
    # output limit (1 MiB) and reads steadily for three header timeouts: the
    # second request's head arrived at once and waits only for the first
    # answer to drain, so it is answered, not refused 408 (slowhttptest -X
    # pipelines its GETs the same way: each slow reader was refused so).
    header_timeout_ms = 1000
    s = start("--workers", "1", "--header-timeout-ms", str(header_timeout_ms))
    value = os.urandom(2 << 20)  # not compressible: sent from its segment as it is
    put(s.port, "big", value)
    seconds = 3 * header_timeout_ms / 1000
    c = raw_socket(s.port, rcvbuf=16384)
    try:
        c.sendall(build_request("GET", key_path("big")) +
                  build_request("GET", key_path("big"), headers=[("Connection", "close")]))
        begin = time.monotonic()
        head, body = paced_read(c, 2 * len(value), seconds)
        took_s = time.monotonic() - begin
        rest = head + b"\r\n\r\n" + body
        answers = []
        while rest:
            head, _, rest = rest.partition(b"\r\n\r\n")
            length = int(re.search(rb"(?im)^content-length:\s*(\d+)", head).group(1))
            answers.append((head.split(b" ", 2)[1], rest[:length]))
            rest = rest[length:]
        check([st for st, _ in answers] == [b"200", b"200"] and all(b == value for _, b in answers),
              f"two pipelined GETs read over {took_s:.1f} s (--header-timeout-ms "
              f"{header_timeout_ms}): statuses {[st for st, _ in answers]}, bodies "
              f"{[len(b) for _, b in answers]} bytes")
    finally:
        c.close()


LINGER_MAX_BYTES = 16 << 10  # src/worker/serve_options.h kLingerMaxBytes


def test_a_bad_request_gets_its_400_and_a_clean_close():
    # A client that sent one malformed request, and a little more after it
    # (the rest of an upload, under the lingering bound), reads its 400,
    # then the server's FIN; the bytes it sent after the 400 are read and
    # dropped, and the connection is not cut short.
    s = start("--workers", "1")
    dropped0 = metric(s.port, "kingx_http_linger_discarded_bytes_total")
    cut0 = metric(s.port, "kingx_http_linger_cut_total")
    check(dropped0 is not None and cut0 is not None, "no lingering counters in /metrics")
    with Conn(s.port, timeout=60) as c:
        c.send(b"GET /v1/kv/a HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
        r = c.read_response()
        check(r.status == 400, f"malformed request: {r.status}")
        c.send(b"x" * 4096)
        wait_for(lambda: metric(s.port, "kingx_http_linger_discarded_bytes_total") - dropped0 >= 4096, 60,
                 "the server to read and drop the 4 KiB sent after the 400")
        c.sock.shutdown(socket.SHUT_WR)
        c.sock.settimeout(60)
        check(c.sock.recv(1 << 16) == b"", "the server's FIN after the 400")
    check(metric(s.port, "kingx_http_linger_discarded_bytes_total") - dropped0 == 4096, "bytes dropped while lingering")
    check(metric(s.port, "kingx_http_linger_cut_total") == cut0, "a lingering close cut short")


def test_a_timeout_408_names_its_setting():
    # A head that does not arrive within --header-timeout-ms, and a body that
    # stalls past --body-timeout-ms, are each answered 408 whose problem names
    # the setting that ran out and its value, as 413/414/431 name theirs.
    s = start("--workers", "1", "--header-timeout-ms", "700", "--body-timeout-ms", "900")
    for name, sent, setting, limit in (
            ("a slow head", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ", "--header-timeout-ms", 700),
            ("a stalled body", build_request("PUT", key_path("stalled-small"), None, [("Content-Length", "10")]) +
             b"abc", "--body-timeout-ms", 900)):
        with Conn(s.port, timeout=30) as c:
            c.send(sent)
            r = c.read_response()
            check(r.status == 408, f"{name}: {r}")
            check(r.header("Content-Type") == "application/problem+json", f"{name}: not a problem: {r}")
            problem = r.json()
            check(setting in problem.get("detail", "") and problem.get("limit") == limit,
                  f"{name}: the 408 does not name {setting} and its value {limit}: {problem}")
            check(c.wait_closed() == "closed", f"{name}: 408 then close")
    check(http(s.port, "GET", key_path("stalled-small")).status == 404, "a stalled body was stored")


def test_lingering_after_a_bad_request_is_bounded_in_bytes():
    # A client that keeps sending after its 400 (a garbage flood) is cut off
    # once it sent more than the bound: the worker reads at most one byte
    # past it, then resets the connection, whatever the time bound.
    s = start("--workers", "1")
    dropped0 = metric(s.port, "kingx_http_linger_discarded_bytes_total")
    cut0 = metric(s.port, "kingx_http_linger_cut_total")
    check(dropped0 is not None and cut0 is not None, "no lingering counters in /metrics")
    c = raw_socket(s.port)
    sent = 0
    ended = False
    try:
        c.sendall(b"NOT HTTP\r\n\r\n")
        r = adopt(c, s.port, 60).read_response()
        check(r.status == 400, f"garbage: {r.status}")
        chunk = b"g" * 4096
        deadline = time.monotonic() + 120
        while sent < (256 << 20) and time.monotonic() < deadline:
            try:
                sent += c.send(chunk)
            except (ConnectionResetError, BrokenPipeError):
                ended = True
                break
    finally:
        c.close()
    check(ended, f"the server still took bytes after {sent} sent")
    wait_for(lambda: metric(s.port, "kingx_http_linger_cut_total") - cut0 == 1, 60, "the lingering close to be cut")
    dropped = metric(s.port, "kingx_http_linger_discarded_bytes_total") - dropped0
    check(LINGER_MAX_BYTES < dropped <= LINGER_MAX_BYTES + 1,
          f"{dropped:.0f} bytes read while lingering (bound {LINGER_MAX_BYTES}); the client sent {sent}")


def test_body_budget_applies_backpressure():
    # Uploads that each hold a 1 MiB body minus one byte: past the budget the
    # worker stops reading them (their bytes wait in the kernel) instead of
    # buffering them, and every one completes once the holders are done.
    # Without spilling (as once the spill budget is used up).
    s = start("--workers", "1", "--body-buffer-bytes", "4M", "--compression-level", "0", "--body-spill-bytes", "0")
    pid = s.workers()[0]
    base = rss_anon_kib(pid)
    n = 24
    size = (1 << 20) - 100
    bodies = [os.urandom(size) for _ in range(n)]
    socks = [raw_socket(s.port) for _ in range(n)]
    go_on = threading.Event()
    errors = []

    def send(i):
        try:
            socks[i].sendall(build_request("PUT", key_path(f"up{i}"), None, [("Content-Length", str(size))]))
            socks[i].sendall(bodies[i][:-1])
            go_on.wait(60)
            socks[i].sendall(bodies[i][-1:])
        except OSError as e:
            errors.append(f"upload {i}: {e!r}")

    senders = [threading.Thread(target=send, args=(i,), daemon=True) for i in range(n)]
    try:
        for t in senders:
            t.start()
        # The worker reads what the budget allows; the other uploads' bytes
        # wait unread in the kernel.
        def backed_up():
            waiting = 0
            for c in socks:
                q = tcp_queues(s.port, c.getsockname()[1])
                if q and q[1] >= 32 << 10:
                    waiting += 1
            return waiting if waiting >= n - 6 else 0
        waiting = wait_for(backed_up, 30, "the uploads past the budget to wait unread in the kernel")
        grown = rss_anon_kib(pid) - base
        check(grown < 4 * 1024 + 16 * 1024,
              f"worker anonymous memory grew by {grown} KiB with a 4 MiB body budget "
              f"({waiting} uploads wait unread)")
        # Everyone finishes: the last byte of every body, then every answer.
        go_on.set()
        for i, c in enumerate(socks):
            r = adopt(c, s.port, 90).read_response()
            check(r.status == 201, f"upload {i}: {r.status} {r.body[:200]!r}")
        check(not errors, f"senders failed: {errors}")
        for i in (0, n // 2, n - 1):
            check(http(s.port, "GET", key_path(f"up{i}")).body == bodies[i], f"value {i} differs")
    finally:
        go_on.set()
        for c in socks:
            c.close()


def test_body_budget_wait_ends_with_503_naming_the_setting():
    # The holder sends more than its first window (64 KiB), so it takes a
    # whole reservation (twice its 900 KiB: more than the 1 MiB budget, granted
    # alone), then trickles a byte every 0.2 s, well within the body timeout:
    # the waiter's body has no room to be read until it gives up. Without
    # spilling (as once the spill budget is used up).
    s = start("--workers", "1", "--body-buffer-bytes", "1M", "--body-spill-bytes", "0", "--body-timeout-ms", "4000",
              "--compression-level", "0")
    holder = raw_socket(s.port)
    waiter = raw_socket(s.port)
    stop = threading.Event()
    errors = []

    def trickle():
        while not stop.wait(0.2):
            try:
                holder.sendall(b"x")
            except OSError as e:
                errors.append(repr(e))
                return

    trickler = threading.Thread(target=trickle, daemon=True)
    try:
        size = 900 << 10
        holder.sendall(build_request("PUT", key_path("holder"), None, [("Content-Length", str(size))]))
        holder.sendall(os.urandom(200 << 10))  # past its window: holds a whole reservation
        trickler.start()
        wait_for(lambda: (tcp_queues(s.port, holder.getsockname()[1]) or (0, 1))[1] == 0, 60,
                 "the holder's bytes to be read")
        waiter.sendall(build_request("PUT", key_path("waiter"), None, [("Content-Length", str(size))]))
        waiter.sendall(os.urandom(size))
        r = adopt(waiter, s.port, 120).read_response()
        check(not errors, f"the holder could not send: {errors}")
        check(r.status == 503, f"waiting upload: {r.status} {r.body[:300]!r}")
        check(r.header("Retry-After") is not None, "503 without Retry-After")
        body = r.body.decode()
        check("--body-buffer-bytes" in body and '"limit":1048576' in body, f"problem does not name the limit: {body}")
    finally:
        stop.set()
        holder.close()
        waiter.close()


def check_small_put(port, key, value, beside):
    """A PUT of `value` under `key` beside `beside` (what else is open) is
    stored: 201 or 204, then its GET answers exactly `value`."""
    r = http(port, "PUT", key_path(key), value, timeout=300)
    check(r.status in (201, 204), f"a small PUT beside {beside}: {r.status} {r.body[:300]!r}")
    got = http(port, "GET", key_path(key), timeout=120)
    check(got.status == 200 and got.body == value, f"GET {key}: {got.status} {got.body[:80]!r}")


def check_uploads_stored(port, socks, keys, bodies, what):
    """The PUT sent on each of socks is answered 201, then each of keys
    holds its body exactly."""
    for i, c in enumerate(socks):
        r = adopt(c, port, 300).read_response()
        check(r.status == 201, f"{what} {i}: {r.status} {r.body[:300]!r}")
    for i, key in enumerate(keys):
        check(http(port, "GET", key_path(key), timeout=120).body == bodies[i], f"value {key} differs")


def test_slow_uploads_leave_room_for_a_small_put():
    # Eight uploads announce 1 MiB each and trickle it, more than a 4 MiB body
    # budget could hold if each took the room its body needs at once (about
    # 2.3 MiB). Each holds only what it sent, so a small PUT meanwhile is read
    # and stored at once; then the slow ones send the rest and every byte of
    # each is stored under its own key.
    s = start("--workers", "1", "--body-buffer-bytes", "4M", "--body-timeout-ms", "30000",
              "--compression-level", "0")
    n = 8
    size = 1 << 20
    bodies = [os.urandom(size) for _ in range(n)]
    socks = [raw_socket(s.port) for _ in range(n)]
    sent = [0] * n
    stop = threading.Event()
    errors = []

    def trickle():
        while not stop.is_set():
            for i, c in enumerate(socks):
                try:
                    c.sendall(bodies[i][sent[i]:sent[i] + 16])
                    sent[i] += 16
                except OSError as e:
                    errors.append(f"slow upload {i}: {e!r}")
                    return
            stop.wait(0.1)

    def finish(i):
        try:
            socks[i].sendall(bodies[i][sent[i]:])
        except OSError as e:
            errors.append(f"slow upload {i}, the rest: {e!r}")

    trickler = threading.Thread(target=trickle, daemon=True)
    try:
        for i, c in enumerate(socks):
            c.sendall(build_request("PUT", key_path(f"slow{i}"), None, [("Content-Length", str(size))]))
            c.sendall(bodies[i][:1000])
            sent[i] = 1000
        trickler.start()
        # Every slow upload has had bytes read, and is still open.
        wait_for(lambda: all((tcp_queues(s.port, c.getsockname()[1]) or (0, 1))[1] == 0 for c in socks) and
                 min(sent) > 1100, 60, "the slow uploads' first bytes to be read")
        check_small_put(s.port, "small", b"0123456789", f"{n} slow uploads")
        check(not errors, f"slow uploads failed while the small PUT was served: {errors}")
        stop.set()
        trickler.join(60)
        finishers = [threading.Thread(target=finish, args=(i,), daemon=True) for i in range(n)]
        for t in finishers:
            t.start()
        check_uploads_stored(s.port, socks, [f"slow{i}" for i in range(n)], bodies, "slow upload")
        for t in finishers:
            t.join(60)
        check(not errors, f"slow uploads failed: {errors}")
    finally:
        stop.set()
        for c in socks:
            c.close()


class StalledUploads:
    """n PUTs of `size` random bytes, each sending all but its last byte and
    then stalling, more than a small body budget holds: each either waits for
    room with its bytes unread (body paused) or had all it sent read. Close
    with close(); finish() sends every last byte and checks each upload is
    stored exactly."""

    def __init__(self, s, n, size):
        self.s = s
        self.n = n
        self.bodies = [os.urandom(size) for _ in range(n)]
        self.socks = [raw_socket(s.port) for _ in range(n)]
        self.go_on = threading.Event()
        self.pushed = [False] * n  # all but its last byte is in the kernel
        self.errors = []
        self.senders = [threading.Thread(target=self._send, args=(i, size), daemon=True) for i in range(n)]
        for t in self.senders:
            t.start()

    def _send(self, i, size):
        try:
            self.socks[i].settimeout(300)
            self.socks[i].sendall(build_request("PUT", key_path(f"stalled{i}"), None,
                                                [("Content-Length", str(size))]))
            self.socks[i].sendall(self.bodies[i][:-1])
            self.pushed[i] = True
            self.go_on.wait(300)
            self.socks[i].sendall(self.bodies[i][-1:])
        except OSError as e:
            self.errors.append(f"stalled upload {i}: {e!r}")

    def wait_stalled(self, min_waiting=None):
        """Waits until every upload stalled or waits for room with its bytes
        unread, at least min_waiting of them (default half) waiting; returns
        how many wait."""
        least = self.n // 2 if min_waiting is None else min_waiting
        def stalled():
            paused = 0
            for i, c in enumerate(self.socks):
                q = tcp_queues(self.s.port, c.getsockname()[1])
                if q is None:
                    return False
                if q[1] >= 32 << 10:
                    paused += 1
                elif not (self.pushed[i] and q[1] == 0):
                    return False
            if paused < least:
                return False
            return paused if least > 0 else True
        return wait_for(stalled, 120, "every upload to stall or wait for room with its bytes unread")

    def unanswered(self):
        """Indexes of the uploads answered (their sockets readable)."""
        readable, _, _ = select.select(self.socks, [], [], 0)
        return [self.socks.index(c) for c in readable]

    def finish(self):
        self.go_on.set()
        check_uploads_stored(self.s.port, self.socks, [f"stalled{i}" for i in range(self.n)], self.bodies,
                             "stalled upload")
        for t in self.senders:
            t.join(120)
        check(not self.errors, f"stalled uploads failed: {self.errors}")

    def close(self):
        self.go_on.set()
        for c in self.socks:
            c.close()


def test_stalled_uploads_never_keep_a_write_waiting():
    # Twelve uploads each send all but the last byte of 256 KiB and stall,
    # more than a 1 MiB body budget holds: in memory, one would hold its
    # whole reservation (twice its body), three their 64 KiB windows waiting
    # for one, and the rest would wait for window room with their bytes
    # unread; the worker moves what resting uploads hold to spill files
    # instead (--body-spill-bytes). Writes are then served on their merits:
    # a short PUT whose body has arrived whole (in one segment with its
    # head, and with its body sent only once its head was read), a 64 KiB
    # PUT, a chunked PUT and a PUT whose client waits for 100 Continue each
    # get 2xx and read back. Then the stalled uploads send their last byte
    # and each is stored exactly.
    s = start("--workers", "1", "--body-buffer-bytes", "1M", "--body-timeout-ms", "120000",
              "--compression-level", "0")
    up = StalledUploads(s, 12, 256 << 10)
    n = up.n
    split = None
    try:
        up.wait_stalled(min_waiting=0)
        check(up.unanswered() == [], f"stalled uploads answered early: {up.unanswered()}")
        check_small_put(s.port, "small", b"0123456789", f"{up.n} stalled uploads")
        # Its body comes after its head was read (the head alone waits).
        value = os.urandom(3000)
        request = build_request("PUT", key_path("split"), value)
        head_len = len(request) - len(value)
        split = raw_socket(s.port)
        split.sendall(request[:head_len])
        wait_for(lambda: (tcp_queues(s.port, split.getsockname()[1]) or (0, 1))[1] == 0, 120,
                 "the split PUT's head to be read")
        split.sendall(request[head_len:])
        r = adopt(split, s.port, 300).read_response()
        check(r.status in (201, 204), f"a PUT whose body followed its head: {r.status} {r.body[:300]!r}")
        got = http(s.port, "GET", key_path("split"), timeout=120)
        check(got.status == 200 and got.body == value, f"GET split: {got.status} {len(got.body)} bytes")
        # Longer than a window of the body budget: more than any eighth kept.
        value = os.urandom(64 << 10)
        r = http(s.port, "PUT", key_path("window"), value, timeout=300)
        check(r.status in (201, 204), f"a 64 KiB PUT beside {n} stalled uploads: {r.status} {r.body[:300]!r}")
        got = http(s.port, "GET", key_path("window"), timeout=120)
        check(got.status == 200 and got.body == value, f"GET window: {got.status} {len(got.body)} bytes")
        # Chunked: no length, so never read from the kept eighth.
        value = os.urandom(100 << 10)
        chunked = raw_socket(s.port)
        try:
            chunked.sendall(build_request("PUT", key_path("chunked"), None, [("Transfer-Encoding", "chunked")]))
            for at in range(0, len(value), 30000):
                piece = value[at:at + 30000]
                chunked.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
            chunked.sendall(b"0\r\n\r\n")
            r = adopt(chunked, s.port, 300).read_response()
        finally:
            chunked.close()
        check(r.status in (201, 204), f"a chunked PUT beside {n} stalled uploads: {r.status} {r.body[:300]!r}")
        got = http(s.port, "GET", key_path("chunked"), timeout=120)
        check(got.status == 200 and got.body == value, f"GET chunked: {got.status} {len(got.body)} bytes")
        # A short body whose client waits for 100 Continue before sending it.
        value = os.urandom(1000)
        expect = raw_socket(s.port)
        try:
            expect.sendall(build_request("PUT", key_path("expect"), None,
                                         [("Content-Length", str(len(value))), ("Expect", "100-continue")]))
            conn = adopt(expect, s.port, 300)
            r = conn.read_response()
            check(r.status == 100, f"a PUT waiting for 100 Continue beside {n} stalled uploads: {r.status} "
                                   f"{r.body[:300]!r}")
            expect.sendall(value)
            r = conn.read_response()
        finally:
            expect.close()
        check(r.status in (201, 204), f"a 100-continue PUT beside {n} stalled uploads: {r.status} {r.body[:300]!r}")
        got = http(s.port, "GET", key_path("expect"), timeout=120)
        check(got.status == 200 and got.body == value, f"GET expect: {got.status} {len(got.body)} bytes")
        check(up.unanswered() == [], f"stalled uploads answered before they finished: {up.unanswered()}")
        check(not up.errors, f"stalled uploads failed while the small PUTs were served: {up.errors}")
        up.finish()
    finally:
        if split is not None:
            split.close()
        up.close()


def start_waiting_uploads_server():
    """The thread model's server for uploads that wait for the body budget: one worker, 32 pool threads, a
    1 MiB budget, no spilling (which would take the waiting uploads' bytes instead). None in the event model
    (said so): its waiting uploads are its loop's, woken by releases."""
    if not MODEL_ARGS:
        print("  (thread model only: the event model's waiting uploads are its loop's, woken by releases)")
        return None
    return start("--workers", "1", "--threads", "32", "--body-buffer-bytes", "1M", "--body-timeout-ms", "120000",
                 "--compression-level", "0", "--body-spill-bytes", "0")


def test_uploads_waiting_for_the_body_budget_sleep_until_room_is_released():
    # Thread model: a pool thread whose upload waits for room in the body
    # budget with its body paused sleeps until a release of the budget; it
    # does not look again on a timer. Twelve uploads of 256 KiB stall one
    # byte short beside a 1 MiB budget, at least half of them waiting for
    # room. Between two housekeeping ticks of the worker's main thread
    # nothing is released, and no other thread of the worker wakes more than
    # once per waiting upload (each waiting one woke every 2 ms before). Then
    # they send their last byte and every one is stored exactly: each waiter
    # was woken by the releases that made its room (a lost wake-up would wait
    # for the 120 s give-up and a 503).
    s = start_waiting_uploads_server()
    if s is None:
        return
    pid = s.workers()[0]
    up = StalledUploads(s, 12, 256 << 10)
    try:
        waiting = up.wait_stalled()
        check_quiet_between_ticks(pid, waiting, f"{waiting} uploads waited for the body budget")
        check(up.unanswered() == [], f"stalled uploads answered early: {up.unanswered()}")
        up.finish()
    finally:
        up.close()


def test_uploads_waiting_for_room_while_their_short_body_arrives_sleep_until_room_is_released():
    # Thread model: an upload of a short body (at most 16 KiB) that finds no
    # room in the body budget reads on while it waits (its whole body may
    # still arrive and take the room kept for such bodies): its pool thread
    # watches its socket and is woken by a release of the budgets, not on a
    # timer (it looked again every 2 ms before). Eight uploads of 64 KiB send
    # 60 KiB and stall, holding the windows' room of a 1 MiB budget (the
    # first few read, the others wait with their bytes unread); four uploads
    # of 10 KiB then send their head and 1 KiB. Between two housekeeping
    # ticks of the worker's main thread nothing is released and the worker's
    # other threads wake at most once per short upload. Then everyone sends
    # the rest and every upload is stored exactly (a lost wake-up would wait
    # for the 120 s give-up and a 503).
    s = start_waiting_uploads_server()
    if s is None:
        return
    pid = s.workers()[0]
    holders = [(raw_socket(s.port), os.urandom(64 << 10)) for _ in range(8)]
    shorts = [(raw_socket(s.port), os.urandom(10 << 10)) for _ in range(4)]
    sent = {}
    try:
        def begin(c, key, body, n):
            c.sendall(build_request("PUT", key_path(key), None, [("Content-Length", str(len(body)))]) + body[:n])
            sent[c] = n
        for i, (c, body) in enumerate(holders):
            begin(c, f"holder{i}", body, 60 << 10)
        # Each holder's bytes are read (it holds its window) or wait unread.
        wait_for(lambda: all((q := tcp_queues(s.port, c.getsockname()[1])) is not None and (q[1] == 0 or
                                                                                         q[1] >= 30 << 10)
                             for c, _ in holders), 60, "the holders' bytes to be read or held")
        for i, (c, body) in enumerate(shorts):
            begin(c, f"short{i}", body, 1 << 10)
        check_quiet_between_ticks(pid, len(shorts), f"{len(shorts)} short uploads waited for the body budget")
        readable, _, _ = select.select([c for c, _ in holders + shorts], [], [], 0)
        check(not readable, f"{len(readable)} uploads answered before their bodies were sent")
        for c, body in holders + shorts:
            c.sendall(body[sent[c]:])
        check_uploads_stored(s.port, [c for c, _ in holders + shorts],
                             [f"holder{i}" for i in range(len(holders))] + [f"short{i}" for i in range(len(shorts))],
                             [body for _, body in holders + shorts], "upload")
    finally:
        for c, _ in holders + shorts:
            c.close()


def test_stalled_upload_is_removed():
    s = start("--workers", "1", "--body-timeout-ms", "1500", "--compression-level", "0")
    c = raw_socket(s.port)
    try:
        c.sendall(build_request("PUT", key_path("stalled"), None, [("Content-Length", str(20 << 20))]))
        c.sendall(os.urandom(5 << 20))
        wait_for(lambda: staging_files(s.data_dir), 20, "a staging file for the large upload")
        conn = adopt(c, s.port, 30)
        r = conn.read_response()
        check(r.status == 408, f"stalled upload: {r.status}")
        wait_for(lambda: not staging_files(s.data_dir), 20, "the stalled upload's staging file to go")
        check(http(s.port, "GET", key_path("stalled")).status == 404, "a stalled upload was stored")
    finally:
        c.close()


def test_staging_budget_refuses_past_the_limit():
    # Two uploads of 2 MiB, the first stalled after 1.5 MiB: together they
    # would stage more than --staging-bytes 3M, though not more than the
    # share of the live data (an eighth of 40 MiB: src/ipc/staging_budget.h),
    # so both are admitted and the writer refuses the second with a 503
    # naming the limit while it is still sending; staged files never pass
    # the budget.
    s = start("--workers", "1", "--max-value-bytes", "2M", "--staging-bytes", "3M", "--compression-level", "0")
    for i in range(40):
        put(s.port, f"live-{i}", os.urandom(1 << 20))
    size = 2 << 20
    holder = raw_socket(s.port)
    other = raw_socket(s.port)
    try:
        holder.sendall(build_request("PUT", key_path("holder"), None, [("Content-Length", str(size))]))
        holder.sendall(os.urandom(3 << 19))
        wait_for(lambda: sum(staging_files(s.data_dir).values()) >= 1 << 20, 20, "the first upload to stage")
        other.sendall(build_request("PUT", key_path("other"), None, [("Content-Length", str(size))]))
        most = 0
        try:
            for _ in range(8):
                other.sendall(os.urandom(1 << 18))
                most = max(most, sum(staging_files(s.data_dir).values()))
        except OSError:
            pass  # closed after the refusal: fine
        r = adopt(other, s.port, 30).read_response()
        check(r.status == 503, f"upload past the staging budget: {r.status} {r.body[:300]!r}")
        body = r.body.decode()
        check("--staging-bytes" in body and f'"limit":{3 << 20}' in body, f"problem does not name the limit: {body}")
        check(r.header("Retry-After") is not None, "503 without Retry-After")
        check(most <= (3 << 20) + 4096, f"{most} bytes staged with --staging-bytes 3M")
        check(http(s.port, "GET", key_path("other")).status == 404, "the refused upload was stored")
        # The budget is free again once the holder is done.
        holder.sendall(os.urandom(1 << 19))
        r = adopt(holder, s.port, 60).read_response()
        check(r.status == 201, f"the first upload: {r.status}")
        put(s.port, "after", os.urandom(size))
        wait_for(lambda: not staging_files(s.data_dir), 10, "no staging file left")
    finally:
        holder.close()
        other.close()


def stalled_readers(port, key, n, into):
    """n GETs of key on sockets with a small receive buffer that read
    nothing (appended to `into`, which the caller closes), once each has
    its response head."""
    for _ in range(n):
        c = raw_socket(port, rcvbuf=4096)
        into.append(c)
        c.sendall(build_request("GET", key_path(key)))
    for c in into[-n:]:
        c.settimeout(60)
        check(c.recv(12, socket.MSG_PEEK) == b"HTTP/1.1 200", "no response head")


def test_large_compressed_get_is_streamed():
    # A 64 MiB value that compresses to almost nothing, fetched by readers
    # that do not read: no worker holds a decoded copy of it per reader, and
    # the worker keeps answering meanwhile.
    s = start("--workers", "1", "--response-buffer-bytes", "4M")
    value = (b"kingx compressible value " * 3000)[:65536] * 1024
    put(s.port, "zeros", value)
    pid = s.workers()[0]
    base = rss_anon_kib(pid)
    readers = []
    try:
        stalled_readers(s.port, "zeros", 8, readers)
        check(http(s.port, "GET", "/healthz", timeout=30).status == 200, "/healthz")
        grown = rss_anon_kib(pid) - base
        check(grown < 4 * 1024 + 16 * 1024,
              f"worker anonymous memory grew by {grown} KiB for 8 readers of a 64 MiB compressed value "
              "(--response-buffer-bytes 4M)")
        # Readers get the value whole (two of them; the others just close).
        for c in readers[:2]:
            status, body = read_large_response(c, 120)
            check(status == 200 and body == value, f"streamed value: {status}, {len(body)} bytes")
    finally:
        for c in readers:
            c.close()


BUDGET_SEND_TIMEOUT_MS = 1000


def test_a_response_waiting_for_the_response_budget_never_gets_a_head_without_its_body():
    # A GET whose compressed value finds --response-buffer-bytes held by
    # other responses waits for room before any byte of its response is
    # sent: the wait is the server's, not the client's lack of progress, so
    # the send deadline does not run. Past --send-timeout-ms of waiting it is
    # answered 503 + Retry-After naming the setting, on a connection that
    # stays usable (the previous main sent its 200 head at once and closed
    # the connection without a body once the wait passed the send timeout).
    # Sixteen clients that read steadily but slowly (over four send
    # timeouts) hold the whole 1 MiB budget, a 64 KiB piece each, and get
    # their values whole; once they are done, a GET is served whole.
    s = start("--workers", "1", "--response-buffer-bytes", "1M", "--send-timeout-ms", str(BUDGET_SEND_TIMEOUT_MS))
    value = compressible_text(1 << 20, 12)
    put(s.port, "held", value)
    holders = [raw_socket(s.port, rcvbuf=16384) for _ in range(16)]
    got = [None] * len(holders)
    threads = []
    try:
        for c in holders:
            c.sendall(build_request("GET", key_path("held"), headers=[("Connection", "close")]))
        for c in holders:
            c.settimeout(60)
            check(c.recv(12, socket.MSG_PEEK) == b"HTTP/1.1 200", "a holder got no response head")
        seconds = 4 * BUDGET_SEND_TIMEOUT_MS / 1000
        for i, c in enumerate(holders):
            threads.append(threading.Thread(target=lambda i=i, c=c: got.__setitem__(i, paced_read(c, len(value),
                                                                                                 seconds))))
            threads[-1].start()
        with Conn(s.port, timeout=60) as victim:
            try:
                r = victim.request("GET", key_path("held"))
            except ConnectionClosed as e:
                raise AssertionError(f"a GET that waited for --response-buffer-bytes past --send-timeout-ms "
                                     f"{BUDGET_SEND_TIMEOUT_MS} was cut off after {e.partial} bytes of its "
                                     f"response (its head sent, its body never): {e}")
            check(r.status == 503, f"a GET that waited for the response budget: {r.status} {r.body[:200]!r}")
            check(r.header("Retry-After") is not None, "its 503 has no Retry-After")
            check(r.json().get("parameter") == "--response-buffer-bytes", f"its 503 names: {r.body[:300]!r}")
            for t in threads:
                t.join(120)
            for i, (head, body) in enumerate(g or (b"", b"") for g in got):
                check(head.startswith(b"HTTP/1.1 200") and body == value,
                      f"holder {i} reading slowly got {len(body)} body bytes")
            r = victim.request("GET", key_path("held"))  # the same connection: it stayed usable
            check(r.status == 200 and r.body == value, f"a GET once room was released: {r.status}, {len(r.body)} B")
    finally:
        for c in holders:
            c.close()
        for t in threads:
            t.join(120)


def waiting_readers(port, key, n, into):
    """n GETs of key on sockets with a small receive buffer, appended to
    `into` (which the caller closes), sent but not read: their responses
    wait for room in the response budget, with nothing sent yet."""
    for _ in range(n):
        c = raw_socket(port, rcvbuf=4096)
        into.append(c)
        c.sendall(build_request("GET", key_path(key)))


def test_responses_waiting_for_the_response_budget_sleep_until_room_is_released():
    # Thread model: a pool thread whose compressed response waits for room in
    # --response-buffer-bytes sleeps until another pool thread releases room
    # for it; it does not look again on a timer. Sixteen readers that read
    # nothing hold the whole budget of 1 MiB (a 64 KiB piece each), four more
    # wait behind them. Between two housekeeping ticks of the worker's main thread
    # (it wakes once a second: the events this case waits for), no other
    # thread of the worker wakes (each waiting one did, every 2 ms, before).
    # Then the holders go, and every waiting response is sent whole.
    if not MODEL_ARGS:
        print("  (thread model only: the event model's waiting responses are its loop's, woken by releases)")
        return
    s = start("--workers", "1", "--threads", "32", "--response-buffer-bytes", "1M")
    value = (b"kingx compressible value " * 3000)[:65536] * 16
    put(s.port, "waits", value)
    pid = s.workers()[0]
    holders, waiters = [], []
    try:
        stalled_readers(s.port, "waits", 16, holders)
        waiting_readers(s.port, "waits", 4, waiters)
        check_quiet_between_ticks(pid, len(waiters), "four responses waited for the response budget")
        for c in holders:
            c.close()
        for c in waiters:
            status, body = read_large_response(c, 120)
            check(status == 200 and body == value, f"a response that waited: {status}, {len(body)} bytes")
    finally:
        for c in holders + waiters:
            c.close()


def socket_descriptors(pid):
    """The sockets among process `pid`'s descriptors (/proc/PID/fd).

    A count of what the process holds at one moment, even while it closes
    and accepts connections: the directory lists descriptors in numeric
    order, and accept takes the lowest free number, so a connection accepted
    after one was closed behind the listing's position lands behind it too.
    (/proc/net/tcp is no such count: the kernel prints it a page at a time,
    and while a worker closes idle connections to accept waiting ones, a
    slow read shows both the closed ones and those accepted after them.)"""
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            pass  # closed meanwhile
    return n


def test_connection_flood_leaves_descriptors_for_the_storage():
    # 400 descriptors: a flood of connections must not take the ones a
    # worker needs to open the segments its GETs read.
    s = start("--workers", "1", "--segment-bytes", "64K", "--compression-level", "0", nofile=400)
    values = {f"seg{i}": os.urandom(60000) for i in range(12)}  # about one segment each
    for k, v in values.items():
        put(s.port, k, v)
    keep = Conn(s.port)  # a client that was there before the flood
    check(keep.request("GET", "/healthz").status == 200, "/healthz")
    (worker,) = s.workers()
    own_sockets = socket_descriptors(worker) - 1  # listeners and the like: all but keep's

    def held():
        return socket_descriptors(worker) - own_sockets

    flood = []
    try:
        for _ in range(700):
            try:
                c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                c.setblocking(False)
                c.connect_ex(("127.0.0.1", s.port))
                flood.append(c)
            except OSError:
                break
        # The connection cap: the descriptor limit less the worker's reserve
        # (its two segment caches and its spill files an eighth of the limit
        # each, 96 for everything else) and, in the thread model, its pool's
        # doorbell eventfds (the threads, or half of what is left if fewer).
        # Connections accepted beyond it, waiting for a thread or a slot,
        # count too.
        room = 400 - (3 * (400 // 8) + 96)
        cap = room - (min(64, room // 2) if "threads" in MODEL_ARGS else 0)
        wait_for(lambda: held() >= cap * 2 // 3, 20, "the worker to accept the flood")
        time.sleep(0.5)
        connections = held()
        check(connections <= cap, f"the worker held {connections} connections with 400 descriptors (cap {cap})")
        # A client reads every value during the flood: each needs a segment
        # mapped now, through a descriptor. The worker may close the client's
        # connection once it has been idle a second while others wait (it
        # makes room for them, as nginx does): the client then connects
        # again, behind the flood, and is served once room is made.
        for k, v in values.items():
            for _ in range(20):
                try:
                    if keep is None:
                        keep = Conn(s.port, timeout=30)
                    r = keep.request("GET", key_path(k))
                    break
                except (ConnectionClosed, OSError):
                    keep.close()
                    keep = None
            else:
                raise AssertionError(f"GET {k} during the flood: the connection was closed 20 times")
            check(r.status == 200 and r.body == v, f"GET {k} during the flood: {r.status} {r.body[:200]!r}")
    finally:
        for c in flood:
            c.close()
        if keep is not None:
            keep.close()
    wait_for(lambda: s.answers(), 20, "a new connection to be served after the flood")


# A child process of FLOOD_CONNS connections that send bytes that are not
# HTTP and reconnect as soon as the server closes them (a closed loop: the
# flood goes as fast as the server takes it). It stops when the parent closes
# its stdin or is gone, or after FLOOD_MAX_CONNECTS connections.
FLOOD_CONNS = 128
# The server's descriptor limit: a connection cap of 2048 - 2048/4 - 64 =
# 1472, of which a worker parks at most an eighth (184), more than the flood.
FLOOD_NOFILE = 2048
FLOOD_ACCEPTS_PER_REQUEST_MAX = 0.5
# The FloodGuard's pace (src/worker/flood_guard.h): one accept per
# FLOOD_ACCEPT_EVERY_MS, one per FLOOD_REQUESTS_PER_ACCEPT requests answered,
# FLOOD_BURST saved.
FLOOD_ACCEPT_EVERY_MS = 10
FLOOD_REQUESTS_PER_ACCEPT = 64
FLOOD_BURST = 8
# Requests served in the counted window (about 2 s on a quiet machine).
FLOOD_WINDOW_REQUESTS = 30_000
# Lingering reads allowed during wrk's run: a flood connection refused before
# the flood was noticed (none are expected; the flood is on before wrk starts).
FLOOD_LINGER_BYTES_MAX = 64 * 1024
# A refused flood connection is parked (src/worker/serve_options.h): held
# unread for FLOOD_PARK_MS, so that its client does not reconnect; one
# worker parks up to 1024 and an eighth of its connection cap, more than
# this flood has connections.
FLOOD_PARK_MS = 10_000
FLOOD_MAX_CONNECTS = 2_000_000
FLOOD_CHILD = r"""
import os, selectors, socket, sys
port, conns, limit = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
junk = bytes(range(1, 256)) * 16
sel = selectors.DefaultSelector()
sel.register(sys.stdin, selectors.EVENT_READ)
parent = os.getppid()
opened = 0
def open_one():
    global opened
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex(("127.0.0.1", port))
    sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    opened += 1
for _ in range(conns):
    open_one()
while opened < limit and os.getppid() == parent:
    for key, ev in sel.select(1.0):
        if key.fileobj is sys.stdin:
            sys.exit(0)
        s = key.fileobj
        dead = False
        try:
            if ev & selectors.EVENT_READ:
                dead = not s.recv(65536)
            if not dead and ev & selectors.EVENT_WRITE:
                s.send(junk)
        except BlockingIOError:
            pass
        except OSError:
            dead = True
        if dead:
            sel.unregister(s)
            s.close()
            open_one()
"""


def start_flood(port):
    return subprocess.Popen([sys.executable, "-c", FLOOD_CHILD, str(port), str(FLOOD_CONNS), str(FLOOD_MAX_CONNECTS)],
                            stdin=subprocess.PIPE)


def stop_flood(p):
    p.stdin.close()  # the child's signal to stop
    p.wait(timeout=120)


def responses(port, cls):
    body = http(port, "GET", "/metrics", timeout=60).body.decode()
    m = re.search(r'^kingx_http_responses_total\{class="%s"\} (\S+)$' % cls, body, re.M)
    check(m, f"no {cls} responses in /metrics")
    return float(m.group(1))


def test_a_garbage_flood_waits_in_the_backlog():
    # Keep-alive connections with requests (wrk) beside a flood of
    # connections that send garbage and reconnect as soon as they are closed.
    # Each flood connection costs the worker an accept, a read, a 400 and a
    # close, several requests' worth. Once most connections that end are
    # such refusals, a refused connection is parked (held open unread for
    # FLOOD_PARK_MS) instead of lingered on or closed, so the flood's clients
    # stop reconnecting: all FLOOD_CONNS of them are parked before wrk
    # starts, none closed for room (kingx_http_flood_parked counts those
    # held, kingx_http_flood_parked_total all parked so far); and while keep-alive clients are busy, either model
    # accepts new clients at a metered pace (one per 10 ms, plus one per 64
    # requests it answered; the thread model's acceptor waits for the token)
    # and any flood beyond that waits in the kernel backlog. Counted from
    # /metrics over a window of wrk's run: connections refused (protocol
    # errors) at most twice the flood's connections per FLOOD_PARK_MS begun
    # in the window, plus the flood once (refused before the window, counted
    # in it); connections accepted per request served under
    # FLOOD_ACCEPTS_PER_REQUEST_MAX and under what the pace allows for the
    # requests served and the time the window took (measured around it, so a
    # slow machine only widens the bounds); bytes read while lingering under
    # FLOOD_LINGER_BYTES_MAX. A new client still gets in (/healthz).
    check(shutil.which("wrk"), "wrk is not installed (deploy/setup-debian.sh installs it)")
    s = start("--workers", "1", nofile=FLOOD_NOFILE)
    put(s.port, "flood-small", b"v" * 100)
    flood = start_flood(s.port)
    wrk = None
    try:
        opened0 = metric(s.port, "kingx_http_connections_opened_total")
        wait_for(lambda: metric(s.port, "kingx_http_connections_opened_total") - opened0 >= 2 * FLOOD_CONNS, 120,
                 "the worker to accept the flood")
        # The whole flood parked, or parked ones closed for room as fast as
        # the flood comes back (a park bound below the flood's size).
        def unparked():
            return (metric(s.port, "kingx_http_flood_parked_total") or 0) - (metric(s.port, "kingx_http_flood_parked")
                                                                            or 0)
        wait_for(lambda: (metric(s.port, "kingx_http_flood_parked") or 0) >= FLOOD_CONNS or
                 unparked() >= 2 * FLOOD_CONNS, 120, "the flood's connections to be parked")
        check((metric(s.port, "kingx_http_flood_parked") or 0) >= FLOOD_CONNS,
              f"{metric(s.port, 'kingx_http_flood_parked')} of the flood's {FLOOD_CONNS} connections parked; "
              f"{unparked():.0f} parked ones closed for room")
        # wrk runs until this test stops it; the count covers a window inside
        # its run, from once its clients are served to FLOOD_WINDOW_REQUESTS
        # later, so that they are busy throughout.
        ok_before = responses(s.port, "2xx")
        wrk = subprocess.Popen(["wrk", "-t1", "-c16", "-d600s", f"http://127.0.0.1:{s.port}{key_path('flood-small')}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: responses(s.port, "2xx") - ok_before >= 1000, 300, "wrk's clients to be served")
        # Requests are read first at the start and after the accepts at the
        # end, so that the requests counted include every one that could
        # have paid for a counted accept.
        t0 = time.monotonic()
        ok0 = responses(s.port, "2xx")
        opened0 = metric(s.port, "kingx_http_connections_opened_total")
        linger0 = metric(s.port, "kingx_http_linger_discarded_bytes_total")
        refused0 = metric(s.port, "kingx_http_protocol_errors_total")
        wait_for(lambda: responses(s.port, "2xx") - ok0 >= FLOOD_WINDOW_REQUESTS, 300,
                 f"{FLOOD_WINDOW_REQUESTS} requests served beside the flood")
        opened = metric(s.port, "kingx_http_connections_opened_total") - opened0
        served = responses(s.port, "2xx") - ok0
        lingered = metric(s.port, "kingx_http_linger_discarded_bytes_total") - linger0
        refused = metric(s.port, "kingx_http_protocol_errors_total") - refused0
        elapsed_ms = (time.monotonic() - t0) * 1000
        check(http(s.port, "GET", "/healthz", timeout=120).status == 200, "/healthz during the flood")
    finally:
        if wrk is not None:
            wrk.terminate()
            wrk.wait(timeout=120)
        stop_flood(flood)
    # Every connection the worker took in the window: the flood's and this
    # test's /metrics requests (wrk's connections came before it). The thread
    # model counts a connection when a pool thread takes it from its queue:
    # those queued before the window (at most one per flood connection) count
    # too.
    ratio = opened / served
    paced = served / FLOOD_REQUESTS_PER_ACCEPT + elapsed_ms / FLOOD_ACCEPT_EVERY_MS + FLOOD_BURST + FLOOD_CONNS
    print(f"  connections accepted in the window: {opened:.0f}; requests served: {served:.0f}; "
          f"per request: {ratio:.3f}; the pace allows {paced:.0f} in {elapsed_ms:.0f} ms; "
          f"bytes read lingering: {lingered:.0f}; connections refused: {refused:.0f}")
    churn = 2 * FLOOD_CONNS * (1 + int(elapsed_ms // FLOOD_PARK_MS)) + FLOOD_CONNS
    check(refused <= churn,
          f"{refused:.0f} flood connections refused in {elapsed_ms:.0f} ms beside {served:.0f} requests: parked "
          f"ones do not reconnect, the bound is {churn}")
    check(ratio <= FLOOD_ACCEPTS_PER_REQUEST_MAX,
          f"{opened:.0f} connections accepted beside {served:.0f} requests on established "
          f"connections ({ratio:.3f} per request, bound {FLOOD_ACCEPTS_PER_REQUEST_MAX})")
    check(opened <= paced,
          f"{opened:.0f} connections accepted beside {served:.0f} requests in {elapsed_ms:.0f} ms: "
          f"the metered pace allows {paced:.0f}")
    check(lingered <= FLOOD_LINGER_BYTES_MAX,
          f"{lingered:.0f} bytes read lingering after refusals during the flood (bound {FLOOD_LINGER_BYTES_MAX})")


def test_idle_connections_make_room_for_new_clients():
    # All the connection slots (event model: --max-connections; thread model:
    # its pool threads) held by idle keep-alive connections: those idle for a
    # while are closed, a few at a time, so that a new client gets in, as
    # nginx drains its reusable connections.
    slots = 40 if not MODEL_ARGS else 8
    s = start("--workers", "1", "--max-connections", str(slots) if not MODEL_ARGS else "10000",
              "--threads", str(slots))
    idle = []
    try:
        for _ in range(slots):
            c = Conn(s.port)
            check(c.request("GET", "/healthz").status == 200, "/healthz")
            idle.append(c)
        time.sleep(1.5)  # idle long enough to be drained
        fresh = Conn(s.port, timeout=20)
        try:
            r = fresh.request("GET", "/healthz")
            check(r.status == 200, f"a new client with every slot idle: {r.status}")
        finally:
            fresh.close()
        closed = sum(1 for c in idle if c.wait_closed(0.2) == "closed")
        check(1 <= closed < slots, f"{closed} of the {slots} idle connections were closed for the new client")
    finally:
        for c in idle:
            c.close()


def test_a_deadline_fires_among_thousands_of_idle_connections():
    # The event model's sweep hands out only the connections whose deadline
    # passed (a timer wheel), not every connection. Among 2,000 idle
    # keep-alive connections whose deadline is far away, a slow client's
    # header deadline still ends in 408 and a close, none of the idle ones is
    # closed before its own deadline, and then every one of them is.
    if MODEL_ARGS:
        print("  (event model only: the thread model serves one connection per thread and sweeps none)")
        return
    idle_n, keepalive_s = 2000, 20
    s = start("--workers", "1", "--header-timeout-ms", "1000", "--keepalive-timeout-ms", str(keepalive_s * 1000))
    idle = []
    try:
        first_at = time.monotonic()
        for _ in range(idle_n):
            c = Conn(s.port, timeout=30)
            c.send(build_request("GET", "/healthz"))
            idle.append(c)
        for c in idle:
            check(c.read_response().status == 200, "an idle connection's first request")
        with Conn(s.port, timeout=30) as slow:
            slow.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            check(slow.read_response().status == 408, "the slow client's header deadline among the idle ones")
            check(slow.wait_closed() == "closed", "408 then close")
        elapsed = time.monotonic() - first_at
        check(elapsed < keepalive_s - 2, f"the idle connections were set up in {elapsed:.1f} s: too slow to tell")
        poller = select.poll()
        by_fd = {}
        for c in idle:
            poller.register(c.sock.fileno(), select.POLLIN)
            by_fd[c.sock.fileno()] = c
        early = poller.poll(0)
        check(not early, f"{len(early)} idle connections closed (or sent bytes) before their keep-alive deadline")
        # Then each is closed at its own deadline (bounded wait, no threshold).
        closed = 0
        deadline = time.monotonic() + keepalive_s + 60
        while by_fd and time.monotonic() < deadline:
            for fd, _ in poller.poll(1000):
                c = by_fd.pop(fd)
                poller.unregister(fd)
                try:
                    data = c.sock.recv(1 << 16)
                except (ConnectionResetError, BrokenPipeError):
                    data = b""
                check(data == b"", f"an idle connection got bytes instead of a close: {data[:80]!r}")
                closed += 1
        check(closed == idle_n, f"{closed} of {idle_n} idle connections closed at the keep-alive deadline")
    finally:
        for c in idle:
            c.close()


if __name__ == "__main__":
    if "--model" in sys.argv:
        MODEL_ARGS = ["--model", sys.argv[sys.argv.index("--model") + 1], "--threads", "64"]
    run_with_servers("abuse " + " ".join(MODEL_ARGS), cases_of(globals()), lambda: CURRENT)
