"""/metrics of a live server: `promtool check metrics` accepts it (promtool is
fetched by tests/tools/promtool.sh, which unpacks Debian's prometheus .deb
into a private directory: nothing is installed, no service appears), the
histograms are real Prometheus histograms with microsecond resolution and
exact `le` labels, the fsync-latency histogram moves with durable writes,
HEAD /metrics answers like GET without the body, and the README's metric
table lists exactly the metric families the server exposes. Rows proved
against an outside count: compaction's counters against the files one pass
deleted and wrote; the write queue's gauges against PUTs held by a stopped
writer; its wake-up counters against PUTs sent one at a time; the key
view's counters against a restart (catch-up), a start without keys/
(rebuild) and the listing; the writes-blocked counter against the sends an
LD_PRELOAD shim (send_eagain_shim.cc, named by KINGX_SEND_EAGAIN_SHIM, which
meson sets) refused; every http counter against the requests a worker
answered just before its kill -9 (both models). The thread model's counter
stripes: the shared pages a scrape and a dead worker's settling touch do
not grow with the pool's size.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_metrics.py
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

from kingx_harness import (CaseSkipped, Conn, Server, TestFailure, build_request, check, http, key_path, metric_values,
                           require_bin, run_cases, shared_memory_kib)

S = None
EXTRA = []  # the command line's flags (e.g. --model threads), for the cases' own servers too
HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))


def scrape():
    r = http(S.port, "GET", "/metrics")
    check(r.status == 200, f"GET /metrics: {r}")
    check(r.header("Content-Type") == "text/plain; version=0.0.4", f"content type: {r.header('Content-Type')}")
    return r.body.decode("utf-8")


def families(text):
    """{name: type} from the # TYPE lines."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"# TYPE (\S+) (\S+)$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def samples(text, name):
    """[(labels dict, value)] of the samples called exactly `name`."""
    out = []
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$", line)
        check(m, f"malformed sample line: {line!r}")
        if m.group(1) != name:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        out.append((labels, float(m.group(3))))
    return out


def histogram(text, name):
    """(buckets [(le text, cumulative)], sum, count) of histogram `name`."""
    buckets = [(l["le"], v) for l, v in samples(text, name + "_bucket")]
    total = samples(text, name + "_sum")
    count = samples(text, name + "_count")
    check(buckets and len(total) == 1 and len(count) == 1, f"{name}: bucket, _sum and _count samples expected")
    return buckets, total[0][1], count[0][1]


def promtool():
    p = subprocess.run(["bash", os.path.join(TOP, "tests", "tools", "promtool.sh"), "--path"],
                       capture_output=True, text=True, timeout=30)
    return p.stdout.strip() if p.returncode == 0 else None


def test_promtool_accepts_the_output():
    put = http(S.port, "PUT", key_path("m-1"), b"value")
    check(put.status in (201, 204), f"PUT: {put}")
    http(S.port, "GET", key_path("m-1"))
    http(S.port, "GET", key_path("m-missing"))
    with Conn(S.port) as c:
        c.send(b"BREW /pot HTTP/1.1\r\nHost: h\r\n\r\n")
        check(c.read_response().status == 501, "an unknown method is counted too")
    text = scrape()
    tool = promtool()
    if tool is None:
        print("SKIP promtool check: promtool is not available (tests/tools/promtool.sh fetches it)")
        return
    p = subprocess.run([tool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    check(p.returncode == 0, f"promtool check metrics failed:\n{p.stdout}{p.stderr}")


def test_histograms_are_histograms_with_exact_microsecond_buckets():
    for _ in range(5):
        http(S.port, "GET", "/healthz")
    text = scrape()
    types = families(text)
    for name, kind in types.items():
        for suffix in ("_bucket", "_sum", "_count"):
            check(not name.endswith(suffix), f"{name} ({kind}): a family may not end in {suffix}")
    hist = [n for n, t in types.items() if t == "histogram"]
    check("kingx_http_request_duration_seconds" in hist, f"request latency histogram: {hist}")
    check("kingx_writer_fsync_seconds" in hist, f"fsync latency histogram: {hist}")
    for name in hist:
        buckets, _, count = histogram(text, name)
        check(buckets[-1][0] == "+Inf", f"{name}: last bucket +Inf: {buckets}")
        check(buckets[-1][1] == count, f"{name}: _count equals the +Inf bucket: {buckets[-1]} vs {count}")
        values = [v for _, v in buckets]
        check(values == sorted(values), f"{name}: cumulative buckets: {buckets}")
        bounds = [float(le) for le, _ in buckets[:-1]]
        check(bounds == sorted(bounds) and len(set(bounds)) == len(bounds), f"{name}: ascending bounds")
        for le, _ in buckets[:-1]:
            check(re.fullmatch(r"\d+(\.\d{1,6})?", le), f"{name}: le label {le!r} is not a short exact decimal")
    latency, _, count = histogram(text, "kingx_http_request_duration_seconds")
    check(float(latency[0][0]) <= 0.0001, f"the first latency bucket is at most 100 us: {latency[0]}")
    check(count >= 5, f"the requests were counted: {count}")


def test_fsync_latency_moves_with_durable_writes():
    _, _, before = histogram(scrape(), "kingx_writer_fsync_seconds")
    for i in range(3):
        r = http(S.port, "PUT", key_path(f"m-sync-{i}"), b"durable")
        check(r.status in (201, 204), f"PUT: {r}")
    _, total, after = histogram(scrape(), "kingx_writer_fsync_seconds")
    check(after >= before + 3, f"three durable PUTs (sync always) mean three fdatasyncs at least: {before} -> {after}")
    check(total > 0, f"fsync time adds up: {total}")


def test_head_metrics_is_get_without_the_body():
    with Conn(S.port) as c:
        g = c.request("GET", "/metrics")
        h = c.request("HEAD", "/metrics")
    check(h.status == 200, f"HEAD /metrics: {h}")
    check(h.body == b"", "HEAD has no body")
    check(h.header("Content-Type") == g.header("Content-Type"), "same Content-Type")
    check(int(h.header("Content-Length")) > 0, "HEAD carries the Content-Length of the GET")


def readme_metrics():
    """Metric names from the README's metric table (rows starting with | `kingx_...)."""
    with open(os.path.join(TOP, "README.md"), encoding="utf-8") as f:
        text = f.read()
    names = re.findall(r"^\| `(kingx_[a-z0-9_]+)", text, flags=re.M)
    check(names, "the README has a metric table")
    return names


def test_readme_lists_every_metric_name_for_name():
    documented = readme_metrics()
    check(len(documented) == len(set(documented)), f"a metric is listed twice in the README: {documented}")
    exposed = set(families(scrape()))
    missing = sorted(exposed - set(documented))
    extra = sorted(set(documented) - exposed)
    check(not missing, f"exposed but not in the README: {missing}")
    check(not extra, f"in the README but not exposed: {extra}")


def segment_files(data_dir):
    """{(inode, name, bytes): (name, bytes)} of the segment and hint files: a
    file that goes and one that comes may share a name (ids are reused) and
    an inode (the file system reuses them), not all three here (compaction's
    outputs are smaller than its inputs)."""
    out = {}
    for name in os.listdir(data_dir):
        if name.endswith((".kxd", ".hint")):
            st = os.stat(os.path.join(data_dir, name))
            out[(st.st_ino, name, st.st_size)] = (name, st.st_size)
    return out


def test_one_compaction_request_is_one_pass_and_its_counters_match_the_files():
    # Four sealed segments of ten 100 KiB values, two of each deleted (a
    # fifth: under --compaction-dead-ratio 0.99 nothing is picked, and the
    # dead bytes stay under the quarter that triggers a pass by itself).
    # Restarted with 0.15, every segment is due at once: one pass, whether
    # the request's or the timer's, does all of it; the counters start at 0.
    base = ["--workers", "1", "--segment-bytes", "1M", "--compression-level", "0"] + EXTRA
    value = bytes(range(256)) * 400
    with Server(base + ["--compaction-dead-ratio", "0.99"]) as first:
        for i in range(41):
            check(http(first.port, "PUT", key_path(f"c{i}"), value).status == 201, "PUT")
        for i in range(0, 40, 5):
            check(http(first.port, "DELETE", key_path(f"c{i}")).status == 204, "DELETE")
        check(metric_values(first.port)["kingx_compaction_passes_total"] == 0, "no pass before the restart")
        check(first.stop() == 0, "clean stop")
        before = segment_files(first.data_dir)
        second = Server(base + ["--compaction-dead-ratio", "0.15"], data_dir=first.data_dir, admin=True)
        try:
            second.start()
            r = http(second.admin_port, "POST", "/admin/compact")
            check(r.status == 202, f"POST /admin/compact: {r}")
            # Done when the counters and the files stay put for 1.5 s (the
            # writer publishes a pass's counters within a second of its end).
            last, still, deadline = None, 0, time.monotonic() + 60
            while time.monotonic() < deadline and still < 3:
                time.sleep(0.5)
                now = ({k: v for k, v in metric_values(second.port).items() if k.startswith("kingx_compaction_")},
                       segment_files(second.data_dir))
                still = still + 1 if now == last and now[0]["kingx_compaction_passes_total"] else 0
                last = now
            check(still >= 3, f"compaction settled within 60 s: {last}")
            m, after = last
        finally:
            second.cleanup()
    # The active segment (the last one) and its hint are the writer's: an
    # open cuts its zero room and extends it again, and replaces its hint.
    active = max(name for name, _ in before.values() if name.endswith(".kxd"))[:-4]
    before = {f: v for f, v in before.items() if v[0][:-4] != active and v[0][:-5] != active}
    after = {f: v for f, v in after.items() if v[0][:-4] != active and v[0][:-5] != active}
    gone = [size for f, (name, size) in before.items() if f not in after and name.endswith(".kxd")]
    new_segs = {name: size for f, (name, size) in after.items() if f not in before and name.endswith(".kxd")}
    new_hints = [size for f, (name, size) in after.items()
                 if f not in before and name.endswith(".hint") and name[:-5] + ".kxd" in new_segs]
    check(len(gone) == 4, f"the four half-dead segments went: {before} -> {after}")
    check(m["kingx_compaction_passes_total"] == 1, f"one pass: {m['kingx_compaction_passes_total']}")
    check(m["kingx_compaction_segments_deleted_total"] == len(gone), f"deleted {m['kingx_compaction_segments_deleted_total']} vs {len(gone)} files gone")
    check(m["kingx_compaction_segments_written_total"] == len(new_segs) == len(new_hints),
          f"written {m['kingx_compaction_segments_written_total']} vs {len(new_segs)} new segments, {len(new_hints)} new hints")
    written = sum(new_segs.values()) + sum(new_hints)
    check(m["kingx_compaction_written_bytes_total"] == written,
          f"written bytes {m['kingx_compaction_written_bytes_total']:.0f} vs {written} bytes of new segment and hint files")
    reclaimed = sum(gone) - sum(new_segs.values())
    check(m["kingx_compaction_reclaimed_bytes_total"] == reclaimed,
          f"reclaimed {m['kingx_compaction_reclaimed_bytes_total']:.0f} vs {reclaimed} (segment bytes gone - new)")
    check(m["kingx_compaction_failures_total"] == 0, "no failed pass")


def test_write_queue_gauges_count_the_writes_a_stopped_writer_left_queued():
    # The writer stopped (SIGSTOP): each PUT stays in the ring. Entries count
    # them one by one; three equal PUTs take three times the ring bytes of
    # one; all of it goes once the writer runs again, each PUT applied once.
    # (Three: under --model threads each waiting PUT holds a pool thread, and
    # the scrapes need one too, so this runs with --threads 4 and more.)
    queue_bytes = 8 << 20
    value = b"q" * 1000
    with Server(["--workers", "1", "--compression-level", "0", "--write-queue-bytes", str(queue_bytes)] + EXTRA) as s:
        writer = s.wait_children("kingx-writer", 1)[0]
        m = metric_values(s.port)
        check(m["kingx_write_queue_capacity_bytes"] == queue_bytes, f"capacity: {m['kingx_write_queue_capacity_bytes']}")
        check(m["kingx_write_queue_entries"] == 0 and m["kingx_write_queue_bytes"] == 0, "an idle queue is empty")
        records = m["kingx_writer_records_total"]
        conns = []
        os.kill(writer, signal.SIGSTOP)
        try:
            def queued(n):
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    q = metric_values(s.port)
                    if q["kingx_write_queue_entries"] >= n:
                        return q
                    time.sleep(0.02)
                raise TestFailure(f"{n} entries queued within 10 s: {q['kingx_write_queue_entries']}")
            for i in range(3):
                c = Conn(s.port)
                conns.append(c)
                c.send(build_request("PUT", key_path(f"q{i}"), value))
                q = queued(i + 1)
                if i == 0:
                    one = q["kingx_write_queue_bytes"]
                    check(one >= len(value) + len("q0"), f"one entry takes at least its key and value: {one}")
                check(q["kingx_write_queue_entries"] == i + 1, f"{i + 1} PUTs queued: {q['kingx_write_queue_entries']}")
                check(q["kingx_write_queue_bytes"] == (i + 1) * one,
                      f"{i + 1} equal PUTs take {i + 1} x {one} ring bytes: {q['kingx_write_queue_bytes']}")
        finally:
            os.kill(writer, signal.SIGCONT)
        for c in conns:
            r = c.read_response()
            check(r.status == 201, f"queued PUT answered once the writer runs: {r}")
            c.close()
        m = metric_values(s.port)
        check(m["kingx_write_queue_entries"] == 0 and m["kingx_write_queue_bytes"] == 0,
              f"drained: {m['kingx_write_queue_entries']}, {m['kingx_write_queue_bytes']}")
        check(m["kingx_writer_records_total"] - records == 3, f"three writes applied: {m['kingx_writer_records_total'] - records}")


def test_writer_wakes_count_the_enqueues_that_woke_it():
    # One PUT at a time, 50 ms apart: the writer is asleep when each arrives
    # (it is awake microseconds a second when idle), so each enqueue wakes
    # it, carrying that one enqueue; then four in one poll phase.
    with Server(["--workers", "1"] + EXTRA) as s:
        before = metric_values(s.port)
        for i in range(6):
            time.sleep(0.05)
            check(http(s.port, "PUT", key_path(f"w{i}"), b"v").status == 201, "PUT")
        m = metric_values(s.port)
        wakes = m["kingx_write_queue_writer_wakes_total"] - before["kingx_write_queue_writer_wakes_total"]
        carried = m["kingx_write_queue_wake_enqueues_total"] - before["kingx_write_queue_wake_enqueues_total"]
        # One PUT may find the writer in its idle turn (awake: no wake-up).
        check(5 <= wakes <= 6, f"six PUTs to a sleeping writer, each a wake-up: {wakes}")
        check(carried == wakes, f"each wake-up carried its one enqueue: {carried} enqueues, {wakes} wakes")
        check(m["kingx_write_queue_wake_enqueues_max"] == 1, f"the most one wake-up carried: {m['kingx_write_queue_wake_enqueues_max']}")
        # Four PUTs that reach the stopped worker's sockets together are read
        # in one poll phase: the event worker wakes the writer once at its
        # end, carrying the four; a thread-model enqueue wakes at once,
        # carrying its own, and the other three find the writer awake.
        worker = s.wait_children("kingx-worker", 1)[0]
        conns = [Conn(s.port) for _ in range(4)]
        try:
            time.sleep(0.05)
            before = metric_values(s.port)
            os.kill(worker, signal.SIGSTOP)
            try:
                for i, c in enumerate(conns):
                    c.send(build_request("PUT", key_path(f"phase{i}"), b"v"))
                time.sleep(0.05)
            finally:
                os.kill(worker, signal.SIGCONT)
            for c in conns:
                check(c.read_response().status == 201, "PUT")
        finally:
            for c in conns:
                c.close()
        m = metric_values(s.port)
        wakes = m["kingx_write_queue_writer_wakes_total"] - before["kingx_write_queue_writer_wakes_total"]
        carried = m["kingx_write_queue_wake_enqueues_total"] - before["kingx_write_queue_wake_enqueues_total"]
        per_wake = 1 if "threads" in EXTRA else 4
        check(wakes == 1 and carried == per_wake, f"one wake-up carrying {per_wake}: {wakes} wakes, {carried} enqueues")
        check(m["kingx_write_queue_wake_enqueues_max"] == per_wake, f"max {m['kingx_write_queue_wake_enqueues_max']}")


def test_writes_blocked_counts_each_send_that_found_the_socket_full():
    # send_eagain_shim (LD_PRELOAD) makes every non-blocking send to a TCP
    # socket take no byte (EAGAIN) and counts it in a file: the event worker
    # then counts one blocked write per response it flushes, and the
    # response still goes out whole (uv_write). A scrape's value is rendered
    # before its own response is flushed: between two scrapes the counter
    # moves by the first scrape's flush plus the N GETs', the file by the N
    # GETs' (it gained the first scrape's before that scrape was answered).
    # The thread model's sends block: neither moves.
    shim = os.environ.get("KINGX_SEND_EAGAIN_SHIM", "")
    if not os.path.exists(shim):
        raise CaseSkipped(f"KINGX_SEND_EAGAIN_SHIM does not name the built shim: {shim!r}")
    threads = "threads" in EXTRA
    s = Server(["--workers", "1"] + EXTRA)
    count_file = os.path.join(s.workdir, "send-eagain.count")
    env = {"LD_PRELOAD": shim, "KINGX_SEND_EAGAIN_COUNT": count_file,
           "ASAN_OPTIONS": (os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0").lstrip(":")}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        s.start()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    try:
        value = os.urandom(50000)
        check(http(s.port, "PUT", key_path("wb"), value).status == 201, "PUT")

        def refused():
            return os.path.getsize(count_file) if os.path.exists(count_file) else 0
        first = metric_values(s.port)["kingx_http_writes_blocked_total"]
        files_first = refused()
        n = 7
        with Conn(s.port) as c:
            for _ in range(n):
                r = c.request("GET", key_path("wb"))
                check(r.status == 200 and r.body == value, f"GET answered whole through uv_write: {r!r}")
        files_second = refused()
        second = metric_values(s.port)["kingx_http_writes_blocked_total"]
        if threads:
            check(second == first == 0 and files_second == 0, f"thread model: {first} -> {second}, {files_second} refused")
            return
        check(files_second - files_first == n, f"the shim refused one send per GET: {files_second - files_first}")
        check(second - first == n + 1, f"writes blocked: {second - first}, expected {n} GETs + the first scrape's flush")
    finally:
        s.cleanup()


ROUNDS = 20       # keys of the SIGKILL case; each gets a PUT, a GET, a HEAD and a DELETE
VALUE_BYTES = 2000


def requests_total(m, method):
    return m.get('kingx_http_requests_total{method="%s"}' % method, 0)


def test_a_send_timeout_counts_as_a_timeout_in_both_models():
    # README Metrics: kingx_http_timeouts_total counts "header, body, idle and send timeouts".
    # A client that reads nothing of an 8 MiB value is closed after --send-timeout-ms (the
    # thread model's blocking send ends with SO_SNDTIMEO): one timeout, in either model.
    models = [EXTRA] if EXTRA else [[], ["--model", "threads", "--threads", "4"]]
    for flags in models:
        with Server(["--workers", "1", "--send-timeout-ms", "1000"] + flags) as s:
            check(http(s.port, "PUT", key_path("st"), os.urandom(8 << 20)).status == 201, "PUT of 8 MiB")
            before = metric_values(s.port)["kingx_http_timeouts_total"]
            c = socket.socket()
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            c.connect(("127.0.0.1", s.port))
            c.sendall(build_request("GET", key_path("st")))
            c.settimeout(15)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:  # closed by the server: EOF after what the buffers held
                time.sleep(0.5)
                if metric_values(s.port)["kingx_http_timeouts_total"] > before:
                    break
            c.close()
            after = metric_values(s.port)["kingx_http_timeouts_total"]
            check(after == before + 1, f"{flags or 'event'}: a reader that reads nothing, closed by the send timeout: "
                                       f"kingx_http_timeouts_total {before} -> {after}")


def test_counts_survive_a_worker_killed_with_sigkill():
    # Every count is in shared memory when it is made, in both models (the
    # thread model's pool threads each in their own stripe of the slot, no
    # private tally folded in later): requests answered, the worker killed
    # at once, and every http counter counts each of them; the master drops
    # the dead worker's connections from the open gauge.
    models = [EXTRA] if EXTRA else [[], ["--model", "threads", "--threads", "4"]]
    for flags in models:
        with Server(["--workers", "1"] + flags) as s:
            counts_survive_a_worker_kill(s)


def counts_survive_a_worker_kill(s):
    victim = s.wait_children("kingx-worker", 1)[0]
    before = metric_values(s.port)
    scrape_bytes = len(build_request("GET", "/metrics"))  # what the next scrape feeds the server
    sent = 0
    classes = {}
    value = b"v" * VALUE_BYTES
    plan = ([("PUT", i, value) for i in range(ROUNDS)] + [("GET", i, None) for i in range(ROUNDS)] +
            [("HEAD", i, None) for i in range(ROUNDS)] + [("DELETE", i, None) for i in range(ROUNDS)] +
            [("PUT", ROUNDS, b"last")])  # the last answer proves the GETs' bytes were sent and counted
    conn = Conn(s.port)
    try:
        for method, i, body in plan:
            sent += len(build_request(method, key_path("ck-%d" % i), body))
            r = conn.request(method, key_path("ck-%d" % i), body)
            classes[r.status // 100] = classes.get(r.status // 100, 0) + 1
        os.kill(victim, signal.SIGKILL)  # at once: within the second the thread model used to fold in
    finally:
        conn.close()
    s.wait_children("kingx-worker", 1, exclude=[victim], timeout=30)
    after = metric_values(s.port, timeout=30)
    print(f"{' '.join(s.extra) or 'event'}: statuses by class {classes}; killed {victim}", flush=True)

    check(classes.get(2) == len(plan), f"every request answered 2xx: {classes}")
    per_method = {"PUT": ROUNDS + 1, "GET": ROUNDS + 1, "HEAD": ROUNDS, "DELETE": ROUNDS}  # GET: the scrape after
    for method, n in per_method.items():
        got = requests_total(after, method) - requests_total(before, method)
        check(got == n, f"kingx_http_requests_total{{method=\"{method}\"}} grew by {got}, not {n}")
    # Responses and the latency histogram count at the response: the load's
    # and the scrape before (its own counted after it rendered).
    n = len(plan) + 1
    got = after['kingx_http_responses_total{class="2xx"}'] - before['kingx_http_responses_total{class="2xx"}']
    check(got == n, f"kingx_http_responses_total{{class=\"2xx\"}} grew by {got}, not {n}")
    got = after["kingx_http_request_duration_seconds_count"] - before["kingx_http_request_duration_seconds_count"]
    check(got == n, f"kingx_http_request_duration_seconds_count grew by {got}, not {n}")
    got = after["kingx_http_received_bytes_total"] - before["kingx_http_received_bytes_total"]
    check(got == sent + scrape_bytes, f"kingx_http_received_bytes_total grew by {got}, not {sent + scrape_bytes}")
    got = after["kingx_http_sent_bytes_total"] - before["kingx_http_sent_bytes_total"]
    check(got >= ROUNDS * VALUE_BYTES, f"kingx_http_sent_bytes_total grew by {got}: less than the GETs' values")
    # The killed worker's connections died with it: the gauge holds the
    # scrape's own only.
    got = after["kingx_http_open_connections"]
    check(got == 1, f"kingx_http_open_connections is {got} after the kill, not 1 (the scrape's)")
    got = after["kingx_http_connections_opened_total"] - before["kingx_http_connections_opened_total"]
    check(got == 2, f"kingx_http_connections_opened_total grew by {got}, not 2 (the load's, the scrape's)")
    check(after["kingx_respawns_total"] - before["kingx_respawns_total"] == 1, "one respawn")


def test_counter_stripes_cost_the_threads_that_counted_not_the_pool():
    # A thread-pool worker has a counter stripe for each pool thread, marked
    # when the thread first counts: a scrape sums the marked stripes only,
    # and the master settles only those when it reaps a killed worker. So
    # the shared pages a scrape maps into the worker, and those the master's
    # settling maps into the master, are the same for a pool of 1,000
    # threads, a few of which served, as for a pool of 4 (reading every
    # stripe of the pool touched a page per 4 threads: ~1 MB more at 1,000).
    touched = {}
    for threads in (4, 1000):
        with Server(["--workers", "1", "--model", "threads", "--threads", str(threads)]) as s:
            worker = s.wait_children("kingx-worker", 1)[0]
            metric_values(s.port)
            metric_values(s.port)
            in_worker = shared_memory_kib(worker)["rss"]
            master_before = shared_memory_kib(s.pid)["rss"]
            os.kill(worker, signal.SIGKILL)
            s.wait_children("kingx-worker", 1, exclude=[worker], timeout=30)
            touched[threads] = (in_worker, shared_memory_kib(s.pid)["rss"] - master_before)
    print(f"shared KiB mapped (worker after two scrapes, master settling the killed worker): {touched}", flush=True)
    (worker4, master4), (worker1000, master1000) = touched[4], touched[1000]
    check(worker1000 - worker4 <= STRIPE_SLACK_KIB,
          f"a scrape of a 1,000-thread pool mapped {worker1000 - worker4} KiB more shared memory than of a 4-thread pool")
    check(master1000 - master4 <= STRIPE_SLACK_KIB,
          f"settling a killed 1,000-thread worker mapped {master1000 - master4} KiB more into the master than a "
          "4-thread one")


STRIPE_SLACK_KIB = 32  # a few stripe pages: which pool threads served the scrapes and the readiness probes


def keyspace(port):
    """The kingx_keyspace_ samples once the view is ready (it is built or caught up after /readyz)."""
    deadline = time.monotonic() + 15
    while True:
        m = metric_values(port)
        k = {k[len("kingx_keyspace_"):]: v for k, v in m.items() if k.startswith("kingx_keyspace_")}
        if k["ready"] == 1 or time.monotonic() > deadline:
            return k
        time.sleep(0.02)


def listed(port):
    r = http(port, "GET", "/v1/kv/?encoding=url&limit=1000")
    check(r.status == 200, f"listing: {r}")
    return len(r.json()["keys"])


def test_keyspace_counters_follow_catch_up_and_rebuild():
    # A fresh directory: an empty view built at the start. 40 keys, then a
    # restart catches the view up from its runs (written at the stop); with
    # keys/ removed while stopped, the start rebuilds it from the segments
    # and writes one run holding every key.
    with Server(["--workers", "1"] + EXTRA) as s:
        k = keyspace(s.port)
        check(k["ready"] == 1 and k["rebuilds_total"] == 1 and k["run_entries"] == 0, f"fresh: {k}")
        for i in range(40):
            check(http(s.port, "PUT", key_path(f"ks{i:02d}"), b"v").status == 201, "PUT")
        check(s.stop() == 0, "clean stop")
        s.start()
        k = keyspace(s.port)
        check(k["catch_ups_total"] == 1 and k["rebuilds_total"] == 0, f"caught up, not rebuilt: {k}")
        check(k["run_entries"] == 40 == listed(s.port), f"run entries = keys listed = 40: {k}")
        check(s.stop() == 0, "clean stop")
        keys_dir = os.path.join(s.data_dir, "keys")
        shutil.rmtree(keys_dir)
        s.start()
        k = keyspace(s.port)
        runs = [n for n in os.listdir(keys_dir) if n.endswith(".kxr")]
        run_bytes = sum(os.path.getsize(os.path.join(keys_dir, n)) for n in runs)
        check(k["rebuilds_total"] == 1 and k["catch_ups_total"] == 0, f"rebuilt, not caught up: {k}")
        check(k["runs_written_total"] == len(runs) == 1, f"one run written: {k}, files {runs}")
        check(k["run_bytes_written_total"] == run_bytes, f"run bytes {k['run_bytes_written_total']:.0f} vs {run_bytes} on disk")
        check(k["run_entries"] == 40 == listed(s.port), f"run entries = keys listed = 40: {k}")
        check(k["ready"] == 1 and k["lost_total"] == 0, f"ready, never behind: {k}")


def main():
    global S
    require_bin()
    EXTRA.extend(sys.argv[1:])
    S = Server(["--workers", "2"] + EXTRA)
    try:
        S.start()
        status = run_cases("metrics", [(n[5:], f) for n, f in globals().items() if n.startswith("test_")], S)
    finally:
        S.cleanup()
    sys.exit(status)


if __name__ == "__main__":
    main()
