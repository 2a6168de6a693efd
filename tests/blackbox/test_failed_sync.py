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

No timing threshold: each wait is bounded far above what a loaded machine
needs.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_failed_sync.py [--model threads]
"""

import os
import re
import sys
import threading
import time

from kingx_harness import (Conn, ConnectionClosed, Server, cases_of, check, http, key_path, metric, run_with_server,
                           wait_for)

MODEL_ARGS = sys.argv[1:]
FAIL_FROM = 12      # the writer's Nth segment fdatasync fails, and every one after it
FAILURES = 3        # writer incarnations to see fail
KEYS = [f"fs{i}" for i in range(16)]
S = None


def test_failed_fdatasync_answers_outcome_unknown_and_the_respawned_writer_goes_on():
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

def main():
    global S
    os.environ["KINGX_FAIL_POINT"] = f"sync@seg-:{FAIL_FROM}+"
    S = Server(["--workers", "2", "--storage-timeout-ms", "60000"] + MODEL_ARGS)
    run_with_server("failed fdatasync" + (" " + " ".join(MODEL_ARGS) if MODEL_ARGS else ""), S, cases_of(globals()))


if __name__ == "__main__":
    main()
