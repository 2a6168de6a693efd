"""A failing read, end to end: a GET whose value's segment cannot be read is
answered 500 with a problem+json body (HEAD: 500), never 404, never another
value, never a 2xx with a cut body; the worker goes on serving every other
key and the connection stays usable; the failure is counted
(kingx_engine_read_failures_total) and logged at error level, at most one
line per 10 s per worker; once the fault passes, the same key answers its
value again.

Workers read segments through mappings (engine/segment_cache.h), so the
fault is the file seam's "map" fail point (engine/kill_point.h): the test
build's binary reads KINGX_FAIL_POINT, here "kingx-worker/map@FILE:N[+]",
which fails with EIO the workers' Nth mapping of a file whose path contains
FILE (with "+", every one from the Nth on). The writer is left alone.

Values on both sides of each size threshold of the read path: 100 B; 255 B
raw and 256 B compressible (zstd's threshold); 1 KiB (copied beside the
response head) and 1 KiB + 1 (sent from the mapping); 64 KiB and 64 KiB + 1
compressible (one zstd frame, or two decoded frame by frame); 1 MiB (one
write-queue entry, a record in the active segment) and 1 MiB + 1, raw and
compressible (a large value, staged in parts: a segment of its own). A
persistent fault hides one segment: the large value's, or the one holding
the small values; a fault that passes meets the first GET of each value in
turn (a server per value).

No timing threshold: each wait is bounded far above what a loaded machine
needs.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_read_fault.py [--model threads]
"""

import os
import re
import sys
import tempfile
import time

from kingx_harness import compressible_text as text
from kingx_harness import check_failed_read as harness_check_failed_read
from kingx_harness import (check_stored_value, Conn, Server, cases_of, check, http, key_path, metric,
                           run_with_shared_data)

MODEL_ARGS = sys.argv[1:]
KIB = 1 << 10
MIB = 1 << 20


# In write order: the large values first (each a segment of its own), then
# the others, which share the active segment.
VALUES = {
    "rf-large": os.urandom(MIB + 1),
    "rf-large-compressible": text(MIB + 1, 7),
    "rf-small": os.urandom(100),
    "rf-255": os.urandom(255),
    "rf-256-compressible": text(256, 1),
    "rf-copy-max": os.urandom(KIB),
    "rf-copy-edge": os.urandom(KIB + 1),
    "rf-compressible": text(64 * KIB, 2),
    "rf-compressible-2-frames": text(64 * KIB + 1, 3),
    "rf-1mib": os.urandom(MIB),
}
LARGE = "rf-large"
WORKDIR = tempfile.mkdtemp(prefix="kingx-bb-read-fault-")
DATA = os.path.join(WORKDIR, "data")
ETAGS = {}
SERVERS = []


def start(fail_point, workers):
    if SERVERS:
        SERVERS[-1].stop()  # the next server serves the same data directory
    if fail_point is None:
        os.environ.pop("KINGX_FAIL_POINT", None)
    else:
        os.environ["KINGX_FAIL_POINT"] = fail_point
    s = Server(["--workers", str(workers)] + MODEL_ARGS, data_dir=DATA,
               workdir=tempfile.mkdtemp(prefix="run-", dir=WORKDIR))
    SERVERS.append(s)
    s.start()
    return s


def check_failed_read(r, key, head=False):
    """A 500 problem+json, nothing of the value."""
    harness_check_failed_read(r, key, VALUES[key], "under a read fault", head)


def check_value(r, key):
    check_stored_value(r, key, VALUES[key], ETAGS[key])


def storage_failure_lines(server):
    with open(server.error_log, errors="replace") as f:
        return [line for line in f if "storage failure" in line and "mmap" in line]


def test_values_are_written_without_a_fault():
    s = start(None, 1)
    for key, value in VALUES.items():
        r = http(s.port, "PUT", key_path(key), body=value, timeout=60)
        check(r.status == 201, f"PUT {key}: {r!r}")
        ETAGS[key] = r.header("ETag")
    for key in VALUES:
        check_value(http(s.port, "GET", key_path(key), timeout=60), key)


def large_segment():
    """The name of the segment file that holds the large value (a segment of
    its own)."""
    return segment_holding(LARGE)


def segment_holding(key):
    """The name of the one segment file that holds `key`'s value (stored raw)."""
    holding = []
    for name in sorted(os.listdir(DATA)):
        if re.fullmatch(r"seg-\d+\.kxd", name):
            try:
                with open(os.path.join(DATA, name), "rb") as f:
                    if VALUES[key][:4096] in f.read():
                        holding.append(name)
            except FileNotFoundError:
                continue  # removed since the listing (the server runs): it holds nothing now
    check(len(holding) == 1, f"one segment holding {key} expected, found {holding}")
    return holding[0]


def check_persistent_fault(seg, hidden):
    """Every mapping of `seg` by the workers fails: the keys of `hidden`
    (stored in it) answer 500, every other key its value."""
    s = start(f"kingx-worker/map@{seg}:1+", 2)
    started = time.monotonic()
    workers = s.workers()
    failures_before = metric(s.port, "kingx_engine_read_failures_total")
    failed = 0
    with Conn(s.port, timeout=60) as c:
        for round_ in range(3):
            # One keep-alive connection: each 500 is a whole response, the
            # next request on it is served.
            for key in VALUES:
                if key in hidden:
                    check_failed_read(c.request("GET", key_path(key)), key)
                    check_failed_read(c.request("HEAD", key_path(key)), key, head=True)
                    failed += 2
                else:
                    check_value(c.request("GET", key_path(key)), key)
    for _ in range(6):  # fresh connections: whichever worker takes them
        for key in hidden:
            check_failed_read(http(s.port, "GET", key_path(key), timeout=60), key)
            failed += 1
    check(http(s.port, "GET", key_path("rf-absent")).status == 404, "an absent key is still 404")
    counted = metric(s.port, "kingx_engine_read_failures_total") - failures_before
    check(counted == failed, f"kingx_engine_read_failures_total counted {counted} for {failed} failed reads")
    check(metric(s.port, "kingx_respawns_total") == 0, "a worker died under the read fault:\n" + s.logs())
    check(s.workers() == workers, f"workers {workers} became {s.workers()}")
    lines = storage_failure_lines(s)
    check(lines and all(seg in line and "[error]" in line for line in lines),
          f"no error-level line names the mapping of {seg}:\n{s.logs()}")
    # At most a line per 10 s per worker (and the line that reports those
    # left out): the bound grows with the time the case took, however slow
    # the machine.
    periods = 1 + int((time.monotonic() - started) // 10)
    check(len(lines) <= 2 * 2 * periods, f"{len(lines)} storage failure lines in {periods} period(s) of 10 s "
          "from 2 workers (at most one per 10 s each, and the line that reports those left out)")
    return s


def test_a_persistent_read_fault_of_the_small_values_segment_fails_every_value_in_it_and_is_counted():
    seg = segment_holding("rf-small")
    # Every value that is not large shares it (those of them stored raw are checked to be there).
    hidden = {k for k in VALUES if not k.startswith("rf-large")}
    for key in ("rf-255", "rf-copy-max", "rf-copy-edge", "rf-1mib"):
        check(segment_holding(key) == seg, f"{key} is not in {seg} with rf-small")
    check_persistent_fault(seg, hidden)


def test_a_persistent_read_fault_fails_only_the_keys_it_hides_and_is_counted():
    seg = large_segment()
    s = check_persistent_fault(seg, {LARGE})

    # Writes are the writer's: a new large value of the key goes to a new
    # segment, which the fault does not cover.
    VALUES[LARGE] = os.urandom(MIB + 1)
    r = http(s.port, "PUT", key_path(LARGE), body=VALUES[LARGE], timeout=60)
    check(r.status == 204, f"PUT {LARGE} over the unreadable value: {r!r}")
    ETAGS[LARGE] = r.header("ETag")
    check_value(http(s.port, "GET", key_path(LARGE), timeout=60), LARGE)


def fault_that_passes(first):
    def case():
        # Each worker's first segment mapping fails, once (one worker: the
        # first GET, of `first`, meets it).
        s = start("kingx-worker/map@seg-:1", 1)
        failures_before = metric(s.port, "kingx_engine_read_failures_total")
        with Conn(s.port, timeout=60) as c:
            check_failed_read(c.request("GET", key_path(first)), first)
            check_value(c.request("GET", key_path(first)), first)
            for key in VALUES:
                check_value(c.request("GET", key_path(key)), key)
        counted = metric(s.port, "kingx_engine_read_failures_total") - failures_before
        check(counted == 1, f"kingx_engine_read_failures_total counted {counted} for one failed read")
        check(metric(s.port, "kingx_respawns_total") == 0, "a worker died under the read fault:\n" + s.logs())

    return (f"a_read_fault_that_passes_leaves_{first}_readable_again", case)


def main():
    title = "read fault" + (" " + " ".join(MODEL_ARGS) if MODEL_ARGS else "")
    cases = cases_of(globals()) + [fault_that_passes(k) for k in VALUES]
    run_with_shared_data(title, cases, SERVERS, WORKDIR)


if __name__ == "__main__":
    main()
