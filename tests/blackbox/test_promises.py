"""Promises of README.md that no other test held the real binary to, each
checked where a client sees it (the audit that listed every promise and its
test is kept with the project's notes):

  - a value's Content-Type is stored with it: each key keeps its own (short,
    compressed, staged large value, none given) through a compaction pass that
    rewrites its record, a clean restart and a kill -9, in GET, HEAD and the
    listing;
  - a stored Content-Type is at most 255 bytes: 255 are stored and served
    back exactly; 256 are 431 before the body (no 100 Continue), the problem
    naming the limit, nothing stored; a PUT with a Content-Encoding other
    than identity is 415 before the body, nothing stored;
  - a request under another spelling of a key that exists is redirected
    before anything is read or written: a DELETE or a PUT there leaves the
    key's value and ETag as they were;
  - a listing cursor is bound to its database: another server's cursor for
    the same prefix is 400 naming `cursor`, never a page; a cursor keeps
    working across a kill -9 of the server right after it was handed out
    (a new view answers listings only once keys/MANIFEST holds the secret);
  - `--sync interval:MS` fdatasyncs an acknowledged write by itself, with
    no other write after it (a segment fdatasync that fails once the write
    was answered shows it: the writer turns read-only and is respawned, and
    the write reads back);
  - QUIT: an idle keep-alive connection is closed after a short grace while
    a request in flight goes on; a request completed meanwhile is answered
    (/readyz 503 "the server is stopping", `kingx_draining` 1) and its
    connection closed; the PUT in flight is answered 201 and is durable, and
    the master exits 0;
  - /healthz answers 200 while /readyz is 503 (a writer that makes no
    progress);
  - INT stops the server like TERM: the master exits 0, no process of it is
    left, and the next start on the same directory serves what was written;
  - USR1 reopens the error log: a worker's line goes to the new file once
    the old one was renamed;
  - a start raises the soft open-file limit to the hard one (the workers
    run with it);
  - generated X-Request-Ids are 32 hex digits and none repeats, across two
    workers and a restart;
  - metrics no other test looked at beyond their names count what the
    README's table says (bytes received and sent, protocol errors, writes
    and stored bytes applied, keys, segments, ready, queue capacity, group
    commits, the file system's size and free bytes);
  - every results directory and file the README and RELIABILITY.md cite for
    a figure or a command exists in the tree.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_promises.py
"""

import os
import re
import resource
import signal
import socket
import tempfile
import time
import urllib.parse

from kingx_harness import (Conn, LimitedServer, Server, ServerPerCase, adopt, build_request, cases_of, check, http,
                           key_path, metric, run_with_servers, wait_for)
from fault_flag import fail_point_while

SERVERS = ServerPerCase()


def put(port, key, value, content_type=None):
    headers = [("Content-Type", content_type)] if content_type is not None else None
    r = http(port, "PUT", key_path(key), value, headers, timeout=60)
    check(r.status in (201, 204), f"PUT {key}: {r!r}")
    return r.header("ETag")


def listing(port, prefix):
    """Every entry of the listing under `prefix`, following cursors; waits
    out the 503 of a sorted key view still being built (bounded)."""
    entries, cursor = [], None
    for _ in range(100):
        query = {"prefix": prefix}
        if cursor:
            query["cursor"] = cursor
        path = "/v1/kv/?" + urllib.parse.urlencode(query)
        r = wait_for(lambda: (lambda r: r if r.status != 503 else None)(http(port, "GET", path)), 120,
                     f"listing {path} (503 while the key view is built)")
        check(r.status == 200, f"GET {path}: {r!r}")
        page = r.json()
        entries += page["keys"]
        if page["list_complete"]:
            return entries
        cursor = page["cursor"]
    raise AssertionError("a listing of a few keys did not end in 100 pages")


def files_holding(data_dir, marker):
    """{name: inode} of the data directory's segment files whose bytes hold
    `marker` (a stored Content-Type is kept as it is)."""
    out = {}
    for name in os.listdir(data_dir):
        path = os.path.join(data_dir, name)
        if not name.endswith(".kxd"):
            continue
        try:
            with open(path, "rb") as f:
                if marker in f.read():
                    out[name] = os.fstat(f.fileno()).st_ino
        except FileNotFoundError:
            continue  # removed by compaction meanwhile
    return out


def test_each_key_keeps_its_content_type_through_compaction_restart_and_kill_9():
    s = SERVERS.start("--workers", "1", "--segment-bytes", "65536", admin=True)
    admin = s.admin_port
    marker = b"text/x-kingx-promise-short"
    values = {  # key -> (value, Content-Type sent, Content-Type served)
        "ct/short": (os.urandom(100), marker.decode(), marker.decode()),
        "ct/compressed": (b"a compressible value " * 200, "application/json; charset=utf-8",
                          "application/json; charset=utf-8"),
        "ct/large": (os.urandom((1 << 20) + 1), "image/x-kingx-large", "image/x-kingx-large"),
        "ct/none": (os.urandom(300), None, "application/octet-stream"),
    }
    etags = {k: put(s.port, k, v, sent) for k, (v, sent, _) in values.items()}
    # Overwrites of one other key fill the segments after the short value's
    # and leave them dead, so that compaction rewrites the short value's record.
    for i in range(80):
        put(s.port, "ct/filler", os.urandom(2000))
    check(http(s.port, "DELETE", key_path("ct/filler")).status == 204, "DELETE ct/filler")
    before = files_holding(s.data_dir, marker)
    check(len(before) == 1, f"the short value's record is in one segment file: {before}")

    def rewritten():
        r = http(admin, "POST", "/admin/compact", b"")
        check(r.status == 202, f"POST /admin/compact: {r!r}")
        now = files_holding(s.data_dir, marker)
        return now and all(before.get(name) != ino for name, ino in now.items())
    wait_for(rewritten, 120, f"compaction to rewrite the short value's segment {before}")

    def check_all(when):
        for key, (value, _, served) in values.items():
            r = http(s.port, "GET", key_path(key), timeout=60)
            check(r.status == 200 and r.body == value, f"{when}: GET {key}: {r.status}, {len(r.body)} bytes")
            check(r.header("ETag") == etags[key], f"{when}: ETag of {key} {r.header('ETag')}, PUT gave {etags[key]}")
            check(r.header("Content-Type") == served, f"{when}: GET {key}: Content-Type {r.header('Content-Type')!r}, "
                                                      f"stored {served!r}")
            h = http(s.port, "HEAD", key_path(key))
            check(h.status == 200 and h.header("Content-Type") == served,
                  f"{when}: HEAD {key}: {h.status} {h.header('Content-Type')!r}")
        listed = {e["key"]: e for e in listing(s.port, "ct/")}
        check(sorted(listed) == sorted(values), f"{when}: listing ct/ gave {sorted(listed)}")
        for key, (value, _, served) in values.items():
            e = listed[key]
            check(e["content_type"] == served and e["size"] == len(value) and e["etag"] == etags[key],
                  f"{when}: listing entry of {key}: {e}")

    check_all("after compaction")
    check(s.stop() == 0, "TERM: exit 0")
    s.start()
    check_all("after a restart")
    s.kill_group()
    s.start()
    check_all("after kill -9 and a restart")


def test_a_content_type_is_stored_up_to_255_bytes_and_refused_before_the_body_past_it():
    s = SERVERS.start("--workers", "1")
    longest = "a/" + "b" * 253
    put(s.port, "ct/255", b"v", longest)
    r = http(s.port, "GET", key_path("ct/255"))
    check(r.status == 200 and r.header("Content-Type") == longest,
          f"a 255-byte Content-Type served back: {r.status} {len(r.header('Content-Type') or '')} bytes")
    refusals = [  # (key, extra headers, status, what the problem must say)
        ("ct/256", [("Content-Type", "a/" + "b" * 254)], 431, None),
        ("ct/gzip", [("Content-Encoding", "gzip")], 415, "Content-Encoding"),
    ]
    for key, headers, status, words in refusals:
        with Conn(s.port, 30) as c:
            # Expect: 100-continue and a body never sent: the answer must come
            # from the head alone, with no 100 before it.
            c.send(build_request("PUT", key_path(key), None,
                                 headers + [("Content-Length", "1000"), ("Expect", "100-continue")]))
            r = c.read_response()
        check(r.status == status, f"PUT {key} with its body held back: {r!r} (want {status} before the body)")
        check((r.header("Content-Type") or "").startswith("application/problem+json"), f"PUT {key}: {r!r}")
        problem = r.json()
        if status == 431:
            check(problem.get("limit") == 255, f"the 431 names the 255-byte limit: {problem}")
        else:
            check(words in problem.get("detail", ""), f"the {status} names {words}: {problem}")
            check(r.header("Accept-Encoding") == "identity", f"415 without Accept-Encoding: identity: {r!r}")
        check(http(s.port, "GET", key_path(key)).status == 404, f"{key} was stored after its {status}")


def test_a_write_under_another_spelling_of_an_existing_key_changes_nothing():
    s = SERVERS.start("--workers", "1")
    key = "dir/caf\u00e9"
    value = os.urandom(500)
    etag = put(s.port, key, value, "text/x-kept")
    canonical = key_path(key)
    check(canonical == "/v1/kv/dir/caf%C3%A9", canonical)
    for spelling in ("/v1/kv/dir%2Fcaf%c3%a9", "/v1/kv/dir%2fcaf%C3%A9", "/v1/kv/di%72/caf%C3%A9"):
        for method, body in (("DELETE", None), ("PUT", b"written under another spelling")):
            r = http(s.port, method, spelling, body, [("Content-Type", "text/x-other")] if body else None)
            check(r.status == 308 and r.header("Location") == canonical, f"{method} {spelling}: {r!r}")
            g = http(s.port, "GET", canonical)
            check(g.status == 200 and g.body == value and g.header("ETag") == etag
                  and g.header("Content-Type") == "text/x-kept",
                  f"after {method} {spelling}: GET {canonical}: {g.status} ETag {g.header('ETag')} (was {etag})")


def test_a_cursor_of_another_database_is_400_naming_cursor():
    s = SERVERS.start("--workers", "1")
    other = Server(["--workers", "1"])
    try:
        other.start()
        for srv in (s, other):
            for i in range(6):
                put(srv.port, f"cur/{i}", b"v%d" % i)
        pages = {}
        for srv in (s, other):
            path = "/v1/kv/?prefix=cur/&limit=2"
            r = wait_for(lambda: (lambda r: r if r.status != 503 else None)(http(srv.port, "GET", path)), 120,
                         "the sorted key view")
            check(r.status == 200 and not r.json()["list_complete"], f"first page: {r!r}")
            pages[srv.port] = r.json()["cursor"]
        own = http(s.port, "GET", "/v1/kv/?prefix=cur/&limit=2&cursor=" + pages[s.port])
        check(own.status == 200 and [e["key"] for e in own.json()["keys"]] == ["cur/2", "cur/3"],
              f"a server's own cursor: {own!r}")
        for srv, foreign in ((s, pages[other.port]), (other, pages[s.port])):
            r = http(srv.port, "GET", "/v1/kv/?prefix=cur/&limit=2&cursor=" + foreign)
            check(r.status == 400 and r.json().get("parameter") == "cursor",
                  f"a cursor of another database: {r!r}")
    finally:
        other.cleanup()


def test_a_cursor_keeps_working_across_kill_9():
    s = SERVERS.start("--workers", "1")
    for i in range(6):
        put(s.port, f"kc/{i}", b"v%d" % i)
    path = "/v1/kv/?prefix=kc/&limit=2"
    r = wait_for(lambda: (lambda r: r if r.status != 503 else None)(http(s.port, "GET", path)), 120,
                 "the sorted key view")
    check(r.status == 200 and [e["key"] for e in r.json()["keys"]] == ["kc/0", "kc/1"], f"first page: {r!r}")
    cursor = r.json()["cursor"]
    # Cursors are signed with a secret the view keeps in keys/MANIFEST; a new
    # view answers its first listing only once that MANIFEST is written, so
    # the kill comes at once, before any later checkpoint.
    manifest = os.path.join(s.data_dir, "keys", "MANIFEST")
    check(os.path.exists(manifest), "a cursor was handed out before keys/MANIFEST held its secret")
    s.kill_group()
    s.start()
    r = wait_for(lambda: (lambda r: r if r.status != 503 else None)(http(s.port, "GET", f"{path}&cursor={cursor}")),
                 120, "the sorted key view after kill -9")
    check(r.status == 200 and [e["key"] for e in r.json()["keys"]] == ["kc/2", "kc/3"],
          f"the page after a cursor from before the kill -9: {r!r}")


def test_sync_interval_fdatasyncs_an_acknowledged_write_with_no_other_write_after_it():
    # Segment fdatasyncs of the writer fail while `flag` exists; hits before it
    # count but do not fail (engine/kill_point.h), so the write is answered
    # first, then the flag appears and no other request comes.
    flag = os.path.join(tempfile.mkdtemp(prefix="kingx-bb-flag-"), "sync-fails")
    with fail_point_while("kingx-writer/sync@seg-:1+", flag):
        s = SERVERS.start("--workers", "1", "--sync", "interval:100")
    value = os.urandom(1000)
    etag = put(s.port, "interval/acked", value)
    open(flag, "w").close()
    try:
        wait_for(lambda: "read-only after a failed sync" in s.logs(limit=200000), 120,
                 "the interval fdatasync of the acknowledged write (none came: --sync interval behaved as none)")
    finally:
        os.remove(flag)
        os.rmdir(os.path.dirname(flag))
    s.wait_ready(120)
    r = http(s.port, "GET", key_path("interval/acked"))
    check(r.status == 200 and r.body == value and r.header("ETag") == etag, f"the acknowledged write: {r!r}")


def test_quit_closes_idle_connections_after_a_grace_and_answers_what_is_in_flight():
    # Header and body deadlines far away: the requests held open below end
    # when the test sends their last bytes, not on a timeout.
    s = SERVERS.start("--workers", "1", "--header-timeout-ms", "600000", "--body-timeout-ms", "600000")
    body = os.urandom(20)
    in_flight = socket.create_connection(("127.0.0.1", s.port), timeout=120)
    in_flight.sendall(build_request("PUT", key_path("quit/in-flight"), None, [("Content-Length", str(len(body)))])
                      + body[:10])
    idle = Conn(s.port, 120)
    check(idle.request("GET", "/healthz").status == 200, "a request before QUIT on the idle connection")
    heads = {}  # requests whose head ends after QUIT: in flight, not idle
    for path in ("/readyz", "/metrics"):
        heads[path] = socket.create_connection(("127.0.0.1", s.port), timeout=120)
        heads[path].sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n".encode())
    # All four accepted (this scrape's own connection is the fifth).
    wait_for(lambda: (metric(s.port, "kingx_http_open_connections") or 0) >= 5, 60, "the connections accepted")
    s.signal(signal.SIGQUIT)
    idle.sock.settimeout(120)
    check(idle.sock.recv(1) == b"", "the idle keep-alive connection was not closed (FIN) after QUIT")
    heads["/readyz"].sendall(b"\r\n")
    r = adopt(heads["/readyz"], s.port, 60).read_response()
    check(r.status == 503 and "stopping" in r.json().get("detail", "") and r.header("Connection") == "close",
          f"/readyz completed while the server stops: {r!r}")
    heads["/metrics"].sendall(b"\r\n")
    r = adopt(heads["/metrics"], s.port, 60).read_response()
    check(r.status == 200 and re.search(rb"^kingx_draining 1$", r.body, re.M), f"kingx_draining while stopping: "
          f"{[line for line in r.body.splitlines() if b'draining' in line]}")
    in_flight.sendall(body[10:])
    r = adopt(in_flight, s.port, 60).read_response()
    check(r.status == 201, f"the PUT in flight when QUIT came, completed after the idle connection closed: {r!r}")
    for sock in [in_flight, idle.sock] + list(heads.values()):
        sock.close()
    code = s.wait_exit(120)
    check(code == 0, f"the master's exit status after QUIT: {code}")
    s.start()
    r = http(s.port, "GET", key_path("quit/in-flight"))
    check(r.status == 200 and r.body == body, f"the PUT answered 201 during the stop, after a restart: {r!r}")


def test_healthz_answers_200_while_readyz_is_503():
    # /healthz is liveness (the process answers), /readyz readiness: a writer
    # that makes no progress turns only the second.
    s = SERVERS.start("--workers", "1", "--storage-timeout-ms", "1000")
    writer = s.wait_children("kingx-writer", 1)[0]
    os.kill(writer, signal.SIGSTOP)
    try:
        wait_for(lambda: http(s.port, "GET", "/readyz").status == 503, 120, "/readyz 503 with the writer stopped")
        r = http(s.port, "GET", "/healthz")
        check(r.status == 200, f"/healthz while /readyz is 503: {r!r}")
    finally:
        os.kill(writer, signal.SIGCONT)
    s.wait_ready(120)


def test_int_stops_the_server_and_every_process_of_it():
    s = SERVERS.start("--workers", "2")
    etag = put(s.port, "int/kept", b"written before INT")
    s.wait_children("kingx-worker", 2)
    s.signal(signal.SIGINT)
    code = s.wait_exit(120)
    check(code == 0, f"the master's exit status after INT: {code}")
    wait_for(lambda: not s.group_pids(), 60, "every process of the server to exit after INT")
    s.start()
    r = http(s.port, "GET", key_path("int/kept"))
    check(r.status == 200 and r.body == b"written before INT" and r.header("ETag") == etag,
          f"after INT and a restart: {r!r}")


def test_usr1_reopens_the_error_log():
    s = SERVERS.start("--workers", "1", "--log-level", "info")
    rotated = s.error_log + ".1"
    os.rename(s.error_log, rotated)
    s.signal(signal.SIGUSR1)
    wait_for(lambda: os.path.exists(s.error_log), 60, "the master to open a new error log after USR1")

    def refused_in_new_log():
        # A refused request's info line comes from the worker: once the worker
        # has reopened too, one lands in the new file (the signal reaches the
        # worker after the master reopened, so the first may still go to the old).
        tag = f"usr1-{time.time_ns()}"
        with Conn(s.port) as c:
            c.send(f"BREW /{tag} HTTP/1.1\r\nHost: t\r\nX-Request-Id: {tag}\r\n\r\n".encode())
            check(c.read_response().status == 501, "BREW: 501")
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            with open(s.error_log, errors="replace") as f:
                if any("client refused with 501" in line and tag in line for line in f):
                    return True
            time.sleep(0.1)
        return False
    wait_for(refused_in_new_log, 120, "a worker's error log line in the reopened file")


def open_files_limit(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return tuple(int(x) for x in line.split()[3:5])
    return None


def test_a_start_raises_the_soft_open_file_limit_to_the_hard_one():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    hard = 4096 if hard == resource.RLIM_INFINITY else min(hard, 4096)
    check(hard > 512, f"this test needs a hard open-file limit above 512, have {hard}")
    if SERVERS.server is not None:
        SERVERS.server.cleanup()  # the previous case's server, as SERVERS.start() does
    s = LimitedServer(256, hard, "--workers", "1")
    SERVERS.server = s  # cleaned up with the next case's server, or at the end
    s.start()
    for pid in [s.pid] + s.wait_children("kingx-worker", 1) + s.wait_children("kingx-writer", 1):
        check(open_files_limit(pid) == (hard, hard),
              f"process {pid}: open files (soft, hard) {open_files_limit(pid)}, started with (256, {hard})")


def test_generated_request_ids_are_32_hex_digits_and_never_repeat():
    s = SERVERS.start("--workers", "2")
    ids, workers, conns = [], set(), []
    try:
        # Fresh connections (kept open) until both workers answered some; a
        # connection's worker is looked up only until two are known (each
        # lookup reads the whole /proc/net/tcp). Bounded: 60 connections.
        while len(conns) < 60 and (len(conns) < 10 or len(workers - {None}) < 2):
            c = Conn(s.port)
            conns.append(c)
            for _ in range(10):
                ids.append(c.request("GET", "/healthz").header("X-Request-Id"))
            if len(workers - {None}) < 2:
                workers.add(s.worker_of_client_port(c.local_port()))  # answered: accepted by then
    finally:
        for c in conns:
            c.close()
    check(len(workers - {None}) == 2, f"connections reached one worker only: {workers}")
    check(s.stop() == 0, "TERM: exit 0")
    s.start()
    for _ in range(10):
        with Conn(s.port) as c:
            for _ in range(10):
                ids.append(c.request("GET", "/healthz").header("X-Request-Id"))
    bad = [i for i in ids if not re.fullmatch(r"[0-9a-f]{32}", i or "")]
    check(not bad, f"generated X-Request-Ids that are not 32 hex digits: {bad[:5]}")
    check(len(set(ids)) == len(ids), f"{len(ids) - len(set(ids))} generated X-Request-Ids repeated")


def samples(port):
    """Every unlabelled sample of GET /metrics: {name: value}."""
    text = http(port, "GET", "/metrics", timeout=30).body.decode()
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(kingx_[a-z0-9_]+) (\S+)$", text, re.M)}


def test_metrics_checked_by_name_only_count_what_the_readme_says():
    s = SERVERS.start("--workers", "2", "--write-queue-bytes", "1M")
    before = samples(s.port)
    values = {f"m/{i}": os.urandom(1000 + i) for i in range(5)}  # random: stored raw, as sent
    request_bytes = 0
    with Conn(s.port) as c:
        for key, value in values.items():
            raw = build_request("PUT", key_path(key), value)
            request_bytes += len(raw)
            c.send(raw)
            check(c.read_response().status == 201, f"PUT {key}")
        for key, value in values.items():
            check(c.request("GET", key_path(key)).body == value, f"GET {key}")
    with Conn(s.port) as c:
        c.send(b"GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n")
        check(c.read_response().status == 400, "a bad Host: 400")

    def moved():
        now = samples(s.port)
        d = {k: now.get(k, 0) - before.get(k, 0) for k in now}
        return (now, d) if d["kingx_writer_records_total"] >= 5 and d["kingx_http_protocol_errors_total"] >= 1 else None
    now, d = wait_for(moved, 60, "the writes and the refusal counted")
    stored = sum(len(v) for v in values.values())
    expect = [
        ("kingx_http_received_bytes_total", d["kingx_http_received_bytes_total"] >= request_bytes, request_bytes),
        ("kingx_http_sent_bytes_total", d["kingx_http_sent_bytes_total"] >= stored, stored),
        ("kingx_http_protocol_errors_total", d["kingx_http_protocol_errors_total"] == 1, 1),
        ("kingx_writer_records_total", d["kingx_writer_records_total"] == 5, 5),
        ("kingx_writer_bytes_total", d["kingx_writer_bytes_total"] == stored, stored),
        ("kingx_engine_keys", now["kingx_engine_keys"] == 5, 5),
        ("kingx_engine_segments", now["kingx_engine_segments"] == len([n for n in os.listdir(s.data_dir)
                                                                      if n.endswith(".kxd")]), "*.kxd files"),
        ("kingx_engine_ready", now["kingx_engine_ready"] == 1, 1),
        ("kingx_write_queue_capacity_bytes", now["kingx_write_queue_capacity_bytes"] == 1 << 20, 1 << 20),
        ("kingx_writer_batch_size_count", 1 <= d["kingx_writer_batch_size_count"] <= 5, "1..5 group commits"),
        ("kingx_writer_apply_seconds_count", d["kingx_writer_apply_seconds_count"] == d["kingx_writer_batch_size_count"],
         "one per group commit"),
    ]
    st = os.statvfs(s.data_dir)
    expect += [
        ("kingx_disk_size_bytes", now["kingx_disk_size_bytes"] == st.f_blocks * st.f_frsize, st.f_blocks * st.f_frsize),
        ("kingx_disk_free_bytes", 0 < now["kingx_disk_free_bytes"] <= now["kingx_disk_size_bytes"], "within the size"),
    ]
    wrong = [f"{name} {now.get(name)} (moved {d.get(name)}), want {want}" for name, ok, want in expect if not ok]
    check(not wrong, f"metrics that do not count what they name: {wrong}")


def test_every_results_directory_the_readme_cites_exists():
    top = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    missing = []
    for doc in ("README.md", "RELIABILITY.md"):
        with open(os.path.join(top, doc), encoding="utf-8") as f:
            text = f.read()
        cited = set(re.findall(r"bench/results/[A-Za-z0-9_./-]+", text))
        check(cited or doc != "README.md", "README.md cites no results directory")
        for path in sorted(cited):
            path = path.rstrip(".")
            if "DATE" in path or "<" in path:
                continue  # a command's output placeholder, not a result
            if not os.path.exists(os.path.join(top, path)):
                missing.append(f"{doc}: {path}")
    check(not missing, f"results cited but not in the tree: {missing}")

if __name__ == "__main__":
    run_with_servers("README promises", cases_of(globals()), SERVERS.current)
