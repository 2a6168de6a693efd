"""A failing fdatasync, end to end: the batch it covered is answered 503
"outcome unknown" with Retry-After, never 2xx; the writer turns read-only,
says so in the error log and exits; the master respawns it, recovery reopens
the database and writes succeed again; reads of existing keys are answered
200 with acknowledged bytes throughout; nothing acknowledged is lost.

The fault comes through the engine's file seam: the test build's binary
reads KINGX_FAIL_POINT (engine/kill_point.h), here "sync@seg-:N+": every
fdatasync of a segment file from the Nth on fails with EIO, in each writer
process (a respawned writer counts its own), so the fault is persistent and
every writer incarnation meets it after a few batches, as a failing disk
would make it.

Large values (over 1 MiB) are staged in a file of their own ("large-N.tmp"),
fdatasync'ed, renamed into place as a segment, and the directory fsync'ed
(engine/writer_large.cc). Each of those three steps failing, in every writer
incarnation ("kingx-writer/sync@large-", "kingx-writer/rename@large-",
"kingx-writer/syncdir@DATA$" from the writer's first directory fsync after
its open), beside values of 200 B and exactly 1 MiB (not staged): the large
PUT is never answered 2xx; a failed staged fdatasync or rename is answered
500 and the value is not applied (its staging file is gone); a failed
directory fsync after the rename is answered 503 "outcome unknown" and the
value may be there after the respawn; every acknowledged write reads back.

No timing threshold: each wait is bounded far above what a loaded machine
needs.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_failed_sync.py [--model threads]
"""

import os
import re
import sys
import threading
import time

from kingx_harness import (Conn, ConnectionClosed, Server, cases_of, check, http, key_path, metric, run_with_servers,
                           staging_files, wait_for)

MODEL_ARGS = sys.argv[1:]
FAIL_FROM = 12      # the writer's Nth segment fdatasync fails, and every one after it
FAILURES = 3        # writer incarnations to see fail
KEYS = [f"fs{i}" for i in range(16)]
MIB = 1 << 20
# Directory fsyncs of the data directory a writer makes while it opens (the
# MANIFEST's rewrite, the new or reopened active segment's hint); the next
# one is the first large value's, after its rename. Were it to change, the
# directory-sync case fails saying what the large PUT got instead.
DIR_SYNCS_AT_OPEN = 2
S = None


def serve(fail_point):
    """A server of its own for a case, with KINGX_FAIL_POINT=fail_point."""
    global S
    if S is not None:
        S.cleanup()
    os.environ["KINGX_FAIL_POINT"] = fail_point
    S = Server(["--workers", "2", "--storage-timeout-ms", "60000"] + MODEL_ARGS)
    S.start()
    return S


def test_failed_fdatasync_answers_outcome_unknown_and_the_respawned_writer_goes_on():
    serve(f"sync@seg-:{FAIL_FROM}+")
    written = {k: set() for k in KEYS}   # every value ever sent for a key
    acked = {}                           # key -> last acknowledged value
    lock = threading.Lock()
    stop = threading.Event()
    read_errors, reads = [], [0]

    def reader():
        # GETs of keys already acknowledged: 200 with one of the values sent
        # for the key (a write in flight may be applied), never another status.
        with Conn(S.port, timeout=60) as c:
            for n in range(1_000_000):
                if stop.is_set():
                    return
                with lock:
                    keys = sorted(acked)
                if not keys:
                    time.sleep(0.01)
                    continue
                key = keys[n % len(keys)]
                try:
                    r = c.request("GET", key_path(key))
                except (OSError, ConnectionClosed) as e:
                    read_errors.append(f"GET {key}: {e!r}")
                    return
                with lock:
                    ok = r.status == 200 and r.body in written[key]
                if not ok:
                    read_errors.append(f"GET {key}: {r.status} {r.body[:80]!r}")
                reads[0] += 1

    th = threading.Thread(target=reader, daemon=True)
    unknown = []  # (key, 503 answer) of PUTs whose outcome is unknown
    seq = 0
    deadline = time.monotonic() + 240
    respawns_before = metric(S.port, "kingx_respawns_total")
    try:
        th.start()
        while len(unknown) < FAILURES:
            check(time.monotonic() < deadline, f"only {len(unknown)} failed fdatasyncs seen in 240 s")
            check(not read_errors, "reads failed while the writer failed its syncs:\n  " + "\n  ".join(read_errors[:10]))
            key = KEYS[seq % len(KEYS)]
            seq += 1
            value = b"%s|%d|" % (key.encode(), seq) + os.urandom(200)
            with lock:
                written[key].add(value)
            r = http(S.port, "PUT", key_path(key), body=value, timeout=120)
            if r.status in (201, 204):
                with lock:
                    acked[key] = value
                continue
            check(r.status == 503, f"PUT {key} #{seq}: {r!r}")
            check(r.header("Retry-After") is not None, f"503 without Retry-After: {r!r}")
            body = r.body.decode(errors="replace")
            if "unknown" in body:
                unknown.append((key, r))
            # Otherwise the writer was gone (restarting) when the PUT came:
            # the README's advice either way is to read the key, then retry.
            g = http(S.port, "GET", key_path(key), timeout=60)
            with lock:
                check(g.status == 404 and key not in acked or g.status == 200 and g.body in written[key],
                      f"GET {key} after a 503: {g.status} {g.body[:80]!r}")
    finally:
        stop.set()
        th.join(60)
    print(f"{seq} PUTs, {len(unknown)} answered outcome unknown, {reads[0]} GETs during them", flush=True)
    check(not read_errors, "reads failed while the writer failed its syncs:\n  " + "\n  ".join(read_errors[:10]))
    check(reads[0] > 0, "no GET ran beside the writes")
    for key, r in unknown:
        check("fdatasync" in r.body.decode(errors="replace") or "outcome" in r.body.decode(errors="replace"),
              f"the 503 of {key} does not say why: {r.body[:300]!r}")

    with open(S.error_log, errors="replace") as f:
        log = f.read()
    turned = re.findall(r"read-only after a failed sync", log)
    check(len(turned) >= FAILURES, f"{len(turned)} 'read-only after a failed sync' lines for {FAILURES} failed "
          f"fdatasyncs:\n{S.logs()}")
    check(re.search(r"fdatasync.*seg-", log), "no log line names the segment whose fdatasync failed")
    # The last writer that failed may still wait out its respawn backoff.
    wait_for(lambda: metric(S.port, "kingx_respawns_total") - respawns_before >= FAILURES, 60,
             f"{FAILURES} respawns of the writers that turned read-only")

    # The last writer is alive and has written fewer than FAIL_FROM batches,
    # or is being respawned: either way every acknowledged write reads back.
    S.wait_ready(timeout=60)
    seq_of = lambda v: int(v.split(b"|")[1])  # noqa: E731
    for key, value in sorted(acked.items()):
        g = http(S.port, "GET", key_path(key), timeout=60)
        # A later PUT of the key answered 503 may have been applied: any value
        # sent for it is acceptable, if it is not older than the last acknowledged.
        check(g.status == 200 and g.body in written[key] and seq_of(g.body) >= seq_of(value),
              f"{key} after the run: {g.status} {g.body[:80]!r}, last acknowledged {value[:40]!r}")

def tagged(key, n, size):
    """size bytes that name their key and round."""
    head = b"%s|%d|" % (key.encode(), n)
    return head + os.urandom(size - len(head))


def put_settled(key, value, written, acked):
    """PUT of a value that is not staged: 2xx (acknowledged); 500 "the write
    failed" (not applied: the fault met its batch, e.g. a new segment's
    directory fsync); or 503 while the writer restarts (outcome unknown).
    After a failure the key reads back absent or as a value sent for it, and
    never as this value after a 500."""
    written.setdefault(key, set()).add(value)
    r = http(S.port, "PUT", key_path(key), body=value, timeout=120)
    if r.status in (201, 204):
        acked[key] = value
        return
    failed = r.status == 500 and b"the write failed" in r.body
    check(failed or r.status == 503 and r.header("Retry-After") is not None, f"PUT {key} ({len(value)} B): {r!r}")
    S.wait_ready(timeout=60)
    g = http(S.port, "GET", key_path(key), timeout=60)
    check(g.status == 404 and key not in acked or g.status == 200 and g.body in written[key],
          f"GET {key} after a {r.status}: {g.status} {g.body[:40]!r}")
    check(not (failed and g.status == 200 and g.body == value), f"{key}: answered 500 and applied")
    if g.status == 200:
        acked[key] = g.body


def large_value_fault(fail_point, want_status, want_text, may_apply, writer_exits, large_first=False):
    """FAILURES rounds, each after the writer is ready: a 200 B and a 1 MiB
    PUT, and a PUT of a new key of 1 MiB + 1 that the fault fails (first
    when large_first: right after the writer's open): answered want_status
    naming want_text, never 2xx. Its key reads back absent (or, when
    may_apply, its value: the file was in place). Then every acknowledged
    write reads back, and no staging file is left."""
    serve(fail_point)
    written, acked = {}, {}
    large = []
    respawns_before = metric(S.port, "kingx_respawns_total")
    for n in range(FAILURES):
        S.wait_ready(timeout=60)
        if writer_exits:  # the writer that failed is gone: its successor is the one ready
            wait_for(lambda: metric(S.port, "kingx_respawns_total") - respawns_before >= n, 60,
                     f"the respawn of writer {n}, read-only after its failure")
            S.wait_ready(timeout=60)
        if not large_first:
            put_settled("ls-small", tagged("ls-small", n, 200), written, acked)
            put_settled("ls-1mib", tagged("ls-1mib", n, MIB), written, acked)
        key = f"ls-large{n}"
        value = tagged(key, n, MIB + 1)
        r = http(S.port, "PUT", key_path(key), body=value, timeout=120)
        body = r.body.decode(errors="replace")
        check(r.status == want_status and want_text in body,
              f"PUT {key} (1 MiB + 1) under {fail_point}: want {want_status} naming {want_text!r}, got {r!r}")
        if want_status == 503:
            check(r.header("Retry-After") is not None, f"503 without Retry-After: {r!r}")
        large.append((key, value))
        if large_first:
            S.wait_ready(timeout=60)
            put_settled("ls-small", tagged("ls-small", n, 200), written, acked)
            put_settled("ls-1mib", tagged("ls-1mib", n, MIB), written, acked)
    if writer_exits:
        wait_for(lambda: metric(S.port, "kingx_respawns_total") - respawns_before >= FAILURES, 60,
                 f"{FAILURES} respawns of writers read-only after their failure")
    S.wait_ready(timeout=60)
    applied = 0
    for key, value in large:
        g = http(S.port, "GET", key_path(key), timeout=60)
        if may_apply and g.status == 200:
            check(g.body == value, f"{key} after the respawns: another value, {len(g.body)} B")
            applied += 1
        else:
            check(g.status == 404, f"{key}, answered {want_status}, after the respawns: {g.status} {g.body[:40]!r}")
    for key, value in sorted(acked.items()):
        g = http(S.port, "GET", key_path(key), timeout=60)
        check(g.status == 200 and g.body == value, f"{key} after the run: {g.status} {g.body[:40]!r}, "
              f"last acknowledged {value[:20]!r}")
    wait_for(lambda: not staging_files(S.data_dir), 60, "the staging files to be gone")
    print(f"{FAILURES} large PUTs answered {want_status}, {applied} of them applied after the respawns; "
          f"{len(acked)} acknowledged keys read back", flush=True)


def test_a_large_value_whose_staged_file_fdatasync_fails_is_answered_500_and_not_applied():
    large_value_fault("kingx-writer/sync@large-:1+", 500, "the write failed", may_apply=False, writer_exits=True)


def test_a_large_value_whose_rename_fails_is_answered_500_and_not_applied():
    large_value_fault("kingx-writer/rename@large-:1+", 500, "the write failed", may_apply=False, writer_exits=False)


def test_a_large_value_whose_directory_fsync_fails_after_its_rename_is_answered_outcome_unknown():
    # The large value first after each open: a small write after it may meet
    # the fault too (the active segment's rotation syncs the directory).
    large_value_fault(f"kingx-writer/syncdir@/data$:{DIR_SYNCS_AT_OPEN + 1}+", 503, "outcome", may_apply=True,
                      writer_exits=True, large_first=True)


def main():
    run_with_servers("failed fdatasync" + (" " + " ".join(MODEL_ARGS) if MODEL_ARGS else ""), cases_of(globals()),
                     lambda: S)


if __name__ == "__main__":
    main()
