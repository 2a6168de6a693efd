"""Large uploads in progress stage at most a share of the live data (an
eighth, src/ipc/staging_budget.h; one upload alone always goes): uploads
past it are held, their bodies unread, not refused, and each completes once
others finish; one held past --storage-timeout-ms is answered 503 with
Retry-After and nothing of it is stored; two chunked uploads past the share
never wait for each other for ever.

Observed from outside, without timing thresholds: the staging files in the
data directory, /metrics (kingx_staging_*), the responses and the values.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_staging_share.py [--model threads]
"""

import os
import re
import signal
import socket
import sys
import threading
import time

from kingx_harness import (Server, adopt, build_request, cases_of, check, http, key_path, run_with_servers,
                           staging_files, wait_for)

MODEL_ARGS = []
CURRENT = None  # the server of the running case, for run_cases' logs
MIB = 1 << 20


def start(*args):
    """Starts the case's server (after removing the previous case's)."""
    global CURRENT
    if CURRENT is not None:
        CURRENT.cleanup()
    CURRENT = Server(MODEL_ARGS + list(args))
    CURRENT.start()
    return CURRENT


def metrics(port):
    """{name: value} of the unlabelled samples of /metrics."""
    body = http(port, "GET", "/metrics", timeout=30).body.decode()
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(kingx_\w+) (\S+)$", body, re.M)}


def fill(port, mib):
    """`mib` live values of 1 MiB (incompressible)."""
    for i in range(mib):
        r = http(port, "PUT", key_path(f"live-{i}"), os.urandom(MIB), timeout=60)
        check(r.status in (201, 204), f"PUT live-{i}: {r.status}")


class Upload:
    """One PUT sent by hand: the head at once, the body piece by piece."""

    def __init__(self, port, key, size, chunked=False):
        self.port, self.key, self.chunked = port, key, chunked
        self.value = os.urandom(size)
        self.status = None
        self.error = None
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        framing = ("Transfer-Encoding", "chunked") if chunked else ("Content-Length", str(size))
        self.sock.sendall(build_request("PUT", key_path(key), None, [framing]))

    def send(self, piece, gap, last_gap=0.0):
        """The body in pieces of `piece` bytes, `gap` seconds apart (the last
        one `last_gap` after the others), then the response (status kept).
        Blocks while the server does not read."""
        try:
            for off in range(0, len(self.value), piece):
                chunk = self.value[off:off + piece]
                if off + piece >= len(self.value):
                    time.sleep(last_gap)
                self.sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk) if self.chunked else chunk)
                time.sleep(gap)
            if self.chunked:
                self.sock.sendall(b"0\r\n\r\n")
            self.status = adopt(self.sock, self.port, 120).read_response().status
        except OSError as e:
            self.error = e
        finally:
            self.sock.close()


def send_all(uploads, piece, gap, sample, last_gap=0.0):
    """Sends every upload's body at once (one thread each), calling sample()
    until all are answered."""
    threads = [threading.Thread(target=u.send, args=(piece, gap, last_gap), daemon=True) for u in uploads]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 300
    while any(t.is_alive() for t in threads):
        check(time.monotonic() < deadline, "uploads still unanswered after 300 s")
        sample()
        time.sleep(0.02)
    for u in uploads:
        check(u.error is None and u.status == 201, f"upload {u.key}: status {u.status}, error {u.error}")
        r = http(u.port, "GET", key_path(u.key), timeout=60)
        check(r.status == 200 and r.body == u.value, f"GET {u.key}: {r.status}, {len(r.body)} bytes")


def test_uploads_past_the_share_are_held_then_complete():
    # 40 MiB live: a share of about 5 MiB. Four slow uploads of 2 MiB + 192
    # KiB (two parts staged before the last piece, which comes half a second
    # later): two fit, the other two are held (their heads arrive before any
    # body byte, so that is certain) and go on as the first ones finish.
    s = start("--workers", "2", "--compression-level", "0")
    fill(s.port, 40)
    m = metrics(s.port)
    size = 2 * MIB + 192 * 1024
    share = m["kingx_engine_live_bytes"] / 8
    check(2 * (size + 4096) <= share < 3 * size, f"share {share} with 40 MiB live")
    holds = m.get("kingx_staging_holds_total", 0)
    uploads = [Upload(s.port, f"up-{i}", size) for i in range(4)]
    seen = {"files": 0, "over_files": -share, "over_reserved": -share}

    def sample():
        files = sum(staging_files(s.data_dir).values())
        mm = metrics(s.port)  # after the listing: the share (live data only grows here) is no smaller
        seen["files"] = max(seen["files"], files)
        seen["over_files"] = max(seen["over_files"], files - mm["kingx_engine_live_bytes"] / 8)
        if "kingx_staging_reserved_bytes" in mm:
            seen["over_reserved"] = max(seen["over_reserved"],
                                        mm["kingx_staging_reserved_bytes"] - mm["kingx_staging_share_bytes"])

    send_all(uploads, 128 * 1024, 0.02, sample, last_gap=0.5)
    m = metrics(s.port)
    check(seen["files"] >= 2 * MIB, f"staging files never held two parts: {seen['files']}")
    check(seen["over_files"] <= 0, f"staging files passed the share by {seen['over_files']} bytes")
    check(seen["over_reserved"] <= 0, f"reservations passed the share by {seen['over_reserved']} bytes")
    check(2 <= m["kingx_staging_holds_total"] - holds <= 4, f"holds: {m['kingx_staging_holds_total'] - holds}")
    check(m["kingx_staging_held_uploads"] == 0 and m["kingx_staging_reserved_bytes"] == 0,
          "reservations or held uploads left after every upload finished")
    check(m["kingx_writer_staging_refusals_total"] == 0, "an upload was refused")
    wait_for(lambda: not staging_files(s.data_dir), 60, "no staging file left")


def test_held_upload_past_the_storage_deadline_is_answered_503():
    # An empty database: one upload at a time. The second waits for the
    # first, which stalls, and is answered 503 + Retry-After after
    # --storage-timeout-ms with nothing stored; the first still completes.
    s = start("--workers", "1", "--storage-timeout-ms", "1500", "--compression-level", "0")
    holder = Upload(s.port, "holder", 3 * MIB)
    holder.sock.sendall(holder.value[:2 * MIB])
    wait_for(lambda: sum(staging_files(s.data_dir).values()) >= MIB, 60, "the first upload to stage")
    waiter = socket.create_connection(("127.0.0.1", s.port), timeout=60)
    try:
        waiter.sendall(build_request("PUT", key_path("waiter"), None, [("Content-Length", str(2 * MIB))]))
        try:
            waiter.sendall(os.urandom(256 * 1024))
        except OSError:
            pass  # answered and closed already: fine
        r = adopt(waiter, s.port, 60).read_response()
        check(r.status == 503, f"held upload: {r.status} {r.body[:300]!r}")
        check(r.header("Retry-After") is not None, "503 without Retry-After")
        check("--storage-timeout-ms" in r.body.decode(), f"problem does not name the deadline: {r.body[:300]!r}")
    finally:
        waiter.close()
    check(len(staging_files(s.data_dir)) == 1, f"staging files: {staging_files(s.data_dir)}")
    check(http(s.port, "GET", key_path("waiter")).status == 404, "the held upload was stored")
    check(metrics(s.port)["kingx_staging_holds_total"] == 1, "the hold was not counted")
    holder.sock.sendall(holder.value[2 * MIB:])
    r = adopt(holder.sock, s.port, 60).read_response()
    holder.sock.close()
    check(r.status == 201, f"the first upload: {r.status}")
    check(http(s.port, "GET", key_path("holder"), timeout=60).body == holder.value, "the first upload's value")


def test_a_dead_workers_reservation_is_returned():
    # An empty database: one upload at a time. A worker killed while its
    # upload holds the staging room must not keep it: the next upload (on
    # the respawned worker) is admitted, not held into a 503.
    s = start("--workers", "1", "--storage-timeout-ms", "1500", "--compression-level", "0")
    stalled = Upload(s.port, "stalled", 3 * MIB)
    stalled.sock.sendall(stalled.value[:2 * MIB])
    wait_for(lambda: metrics(s.port)["kingx_staging_reserved_bytes"] > 0, 60, "the upload to reserve")
    [worker] = s.workers()
    os.kill(worker, signal.SIGKILL)
    stalled.sock.close()
    s.wait_children("kingx-worker", 1, exclude=(worker,))
    wait_for(lambda: metrics(s.port)["kingx_staging_reserved_bytes"] == 0, 60, "the dead worker's reservation back")
    value = os.urandom(2 * MIB)
    r = http(s.port, "PUT", key_path("after"), value, timeout=60)
    check(r.status == 201, f"upload after the worker's death: {r.status} {r.body[:300]!r}")
    check(metrics(s.port)["kingx_staging_holds_total"] == 0, "the upload was held")


def test_chunked_uploads_past_the_share_both_complete():
    # 18 MiB live: a share of about 2.25 MiB. Two chunked uploads of 3 MiB sent
    # side by side: each holds a part when both want more than the share
    # leaves; one goes on past it (the overdraft), the other waits for it,
    # and both complete.
    s = start("--workers", "2", "--compression-level", "0")
    fill(s.port, 18)
    share = metrics(s.port)["kingx_staging_share_bytes"]
    uploads = [Upload(s.port, f"chunked-{i}", 3 * MIB, chunked=True) for i in range(2)]
    seen = {"files": 0}

    def sample():
        seen["files"] = max(seen["files"], sum(staging_files(s.data_dir).values()))

    send_all(uploads, 256 * 1024, 0.02, sample)
    # Within the share plus one upload growing past it (and its header room).
    check(seen["files"] <= share + 3 * MIB + 4096, f"staging files held {seen['files']} bytes, share {share}")
    m = metrics(s.port)
    check(m["kingx_staging_reserved_bytes"] == 0, "reservations left")


if __name__ == "__main__":
    if "--model" in sys.argv:
        MODEL_ARGS = ["--model", sys.argv[sys.argv.index("--model") + 1], "--threads", "16"]
    run_with_servers("staging share " + " ".join(MODEL_ARGS), cases_of(globals()), lambda: CURRENT)
