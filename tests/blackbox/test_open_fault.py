"""A writer whose open fails, end to end: /readyz names what stops it.

The active segment gets a bad sector after the server started: the test
build's binary reads KINGX_FAIL_POINT (engine/kill_point.h), here
"kingx-writer/read@seg-00000001.kxd#OFFSET:1+" (every read(2) of the
writer that covers byte OFFSET of that segment returns what precedes it and
then EIO, as a failing disk does), with KINGX_FAIL_POINT_WHILE naming a
file: the sector fails only while that file exists, so the test makes the
disk fail and then mends it without restarting the server.

With the sector failing, the writer is killed (-9): recovery reads the
active segment, cannot, and the open fails; the master respawns the writer,
which fails again, and so on. Meanwhile /readyz answers 503 with a
problem+json body that names the segment and the offset (the writer
publishes its open's failure in shared memory), /metrics says
kingx_writer_open_failing 1, and GETs of the stored keys keep answering 200
with their values (the index as it was). Once the sector reads again, the
next writer opens, /readyz answers 200, the gauge is 0, every value reads
back (the failed opens cut nothing) and writes succeed.

Values on both sides of each size threshold of the read and open paths,
before and after the bad sector: 100 B; 255 B raw and 256 B compressible
(zstd's threshold); 1 KiB and 1 KiB + 1 (copied beside the response head, or
sent from the mapping); 64 KiB and 64 KiB + 1 compressible (one zstd frame,
or two); 1 MiB (one write-queue entry, a record of the active segment) and
1 MiB + 1 (a large value: staged, a segment of its own; also four of 8 MiB).
The active segment holds about 6 MiB of records, so it spans two of
recovery's 4 MiB scan windows (engine/segment_window.h). One server per place of the bad sector:
inside the first window, at the first window's edge (inside the 1 MiB record
that crosses it), and inside the second window.

No timing threshold: each wait is bounded far above what a loaded machine
needs (the master's respawn backoff reaches 10 s).

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_open_fault.py [--model threads]
"""

import os
import shutil
import signal
import sys
import tempfile

from kingx_harness import compressible_text as text
from kingx_harness import Server, check, http, key_path, metric, run_cases, wait_for

MODEL_ARGS = sys.argv[1:]
KIB = 1 << 10
MIB = 1 << 20
WINDOW = 4 * MIB  # recovery's scan window (kScanWindowBytes)


def sizes_around_thresholds(prefix, seed):
    return {
        f"{prefix}-100": os.urandom(100),
        f"{prefix}-255": os.urandom(255),
        f"{prefix}-256c": text(256, seed),
        f"{prefix}-1kib": os.urandom(KIB),
        f"{prefix}-1kib1": os.urandom(KIB + 1),
        f"{prefix}-64kib-c": text(64 * KIB, seed + 1),
        f"{prefix}-64kib1-c": text(64 * KIB + 1, seed + 2),
    }


# In write order: 32 MiB of large values (each a segment of its own: the
# writer rotates its active segment once it holds more than a quarter of the
# live data, so the live data must be large for the active one to pass 4 MiB),
# then in the active segment: small values, five 1 MiB records (one crosses
# the first window's edge), small values again, a 1 MiB record in the second
# window; and a large value of 1 MiB + 1.
VALUES = {
    **{f"of-base-{i}": os.urandom(8 * MIB) for i in range(4)},
    **sizes_around_thresholds("of-a", 1),
    **{f"of-1mib-{i}": os.urandom(MIB) for i in range(5)},
    **sizes_around_thresholds("of-b", 11),
    "of-b-1mib": os.urandom(MIB),
    "of-large": os.urandom(MIB + 1),
}
# (case name, bad offset, a random value whose bytes must lie across that offset)
PLACES = [
    ("in_the_first_window", 65536, "of-1mib-0"),
    ("at_the_first_windows_edge", WINDOW, None),  # inside whichever 1 MiB record crosses it
    ("in_the_second_window", WINDOW + 3 * MIB // 2, "of-b-1mib"),
]
WORKDIR = tempfile.mkdtemp(prefix="kingx-bb-open-fault-")
SERVERS = []


def readyz(s):
    return http(s.port, "GET", "/readyz", timeout=10)


def check_every_value(s, when):
    for key, value in VALUES.items():
        if key.startswith("of-base-"):
            # Only the room they make matters: their size, not their 32 MiB of bytes again.
            r = http(s.port, "HEAD", key_path(key), timeout=60)
            check(r.status == 200 and r.header("Content-Length") == str(len(value)), f"HEAD {key} {when}: {r!r}")
            continue
        r = http(s.port, "GET", key_path(key), timeout=60)
        check(r.status == 200 and r.body == value, f"GET {key} {when}: {r.status} {len(r.body)} bytes")


def check_offset_inside(s, offset, key):
    """The bad offset lies inside the records of the active segment, and
    inside `key`'s value bytes (or any 1 MiB filler's when key is None)."""
    with open(os.path.join(s.data_dir, "seg-00000001.kxd"), "rb") as f:
        data = f.read()
    keys = [key] if key else [k for k in VALUES if k.startswith("of-1mib-")]
    spans = []
    for k in keys:
        at = data.find(VALUES[k])
        check(at >= 0, f"{k} is not stored raw in seg-00000001.kxd")
        spans.append((k, at, at + len(VALUES[k])))
    check(any(a <= offset < b for _, a, b in spans), f"offset {offset} is not inside {spans}")


def source():
    """A server without the fault that stores VALUES; each case starts its
    own server on a copy of its data directory, taken while it runs (what a
    crash leaves: the active segment has no hint, so every open reads its
    records)."""
    if not SERVERS:
        os.environ.pop("KINGX_FAIL_POINT", None)
        os.environ.pop("KINGX_FAIL_POINT_WHILE", None)
        s = Server(["--workers", "1"] + MODEL_ARGS, workdir=tempfile.mkdtemp(prefix="source-", dir=WORKDIR))
        SERVERS.append(s)
        s.start()
        for key, value in VALUES.items():
            r = http(s.port, "PUT", key_path(key), body=value, timeout=60)
            check(r.status in (200, 201, 204), f"PUT {key}: {r.status}")
    return SERVERS[0]


def fault_case(place, bad_offset, inside):
    def case():
        src = source()
        check_offset_inside(src, bad_offset, inside)
        workdir = tempfile.mkdtemp(prefix=f"{place}-", dir=WORKDIR)
        data = os.path.join(workdir, "data")
        shutil.copytree(src.data_dir, data)
        sector_fails = os.path.join(workdir, "sector-fails")
        os.environ["KINGX_FAIL_POINT"] = f"kingx-writer/read@seg-00000001.kxd#{bad_offset}:1+"
        os.environ["KINGX_FAIL_POINT_WHILE"] = sector_fails
        s = Server(["--workers", "1"] + MODEL_ARGS, workdir=workdir, data_dir=data)
        SERVERS.append(s)
        s.start()
        check(readyz(s).status == 200, "ready before the fault")
        check(metric(s.port, "kingx_writer_open_failing") == 0, "no failed open yet")

        # The sector fails; the writer is killed and every open after fails.
        open(sector_fails, "w").close()
        writer = s.wait_children("kingx-writer", 1)[0]
        os.kill(writer, signal.SIGKILL)

        def failing():
            r = readyz(s)
            return r if r.status == 503 and b"cannot be read" in r.body else None

        r = wait_for(failing, 60, "/readyz naming the failed open")
        check(r.header("Content-Type").startswith("application/problem+json"),
              f"content type {r.header('Content-Type')}")
        detail = r.json().get("detail", "")
        check("segment 1: its records cannot be read" in detail, f"/readyz detail: {detail}")
        check(f"offset {bad_offset}" in detail, f"/readyz detail does not name offset {bad_offset}: {detail}")
        check(metric(s.port, "kingx_writer_open_failing") == 1, "kingx_writer_open_failing is not 1")
        check(metric(s.port, "kingx_writer_open_failures_total") >= 1, "no failed open counted")
        check_every_value(s, "while the writer cannot open")
        # Still failing after another respawn (the fault is persistent): the
        # reason stays, reads go on.
        wait_for(lambda: metric(s.port, "kingx_writer_open_failures_total") >= 2, 60, "a second failed open")
        r = readyz(s)
        check(r.status == 503 and b"segment 1: its records cannot be read" in r.body, f"/readyz {r.status} {r.body!r}")

        # The sector reads again: the next open finds every record.
        os.remove(sector_fails)
        wait_for(lambda: readyz(s).status == 200, 60, "/readyz 200 after the sector mends")
        check(metric(s.port, "kingx_writer_open_failing") == 0, "kingx_writer_open_failing is not 0")
        check_every_value(s, "after the writer opened")
        r = http(s.port, "PUT", key_path("of-after"), body=b"written after", timeout=60)
        check(r.status in (200, 201, 204), f"PUT after the writer opened: {r.status}")
        with open(s.error_log, errors="replace") as f:
            log = f.read()
        check("segment 1: its records cannot be read" in log, "the failed open is not in the error log")
        code = s.stop()
        check(code == 0, f"server exit status after TERM: {code}\n" + s.logs()[-4000:])

    return (f"readyz_names_a_bad_sector_{place}_and_every_value_reads_back_once_it_mends", case)


def main():
    status = 1
    try:
        status = run_cases("open fault", [fault_case(*p) for p in PLACES],
                           lambda: SERVERS[-1] if SERVERS else None)
    finally:
        for s in SERVERS:
            s.cleanup()
        if os.environ.get("KINGX_KEEP") != "1":
            shutil.rmtree(WORKDIR, ignore_errors=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
