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
next writer opens, /readyz answers 200, the gauge is 0 and writes succeed.

No timing threshold: each wait is bounded far above what a loaded machine
needs (the master's respawn backoff reaches 10 s).

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_open_fault.py [--model threads]
"""

import os
import signal
import sys
import tempfile

from kingx_harness import Server, cases_of, check, http, key_path, metric, run_with_server, wait_for

MODEL_ARGS = sys.argv[1:]
BAD_OFFSET = 65536  # inside the records written below (about 200 KB)
WORKDIR = tempfile.mkdtemp(prefix="kingx-bb-open-fault-")
SECTOR_FAILS = os.path.join(WORKDIR, "sector-fails")
VALUES = {f"of-{i:04d}": os.urandom(1000) for i in range(200)}

os.environ["KINGX_FAIL_POINT"] = f"kingx-writer/read@seg-00000001.kxd#{BAD_OFFSET}:1+"
os.environ["KINGX_FAIL_POINT_WHILE"] = SECTOR_FAILS
SERVER = Server(["--workers", "1"] + MODEL_ARGS, workdir=WORKDIR)


def readyz():
    return http(SERVER.port, "GET", "/readyz", timeout=10)


def check_every_value(when):
    for key, value in VALUES.items():
        r = http(SERVER.port, "GET", key_path(key), timeout=10)
        check(r.status == 200 and r.body == value, f"GET {key} {when}: {r.status} {len(r.body)} bytes")


def test_values_are_stored_in_the_first_segment():
    for key, value in VALUES.items():
        r = http(SERVER.port, "PUT", key_path(key), body=value, timeout=10)
        check(r.status in (200, 201, 204), f"PUT {key}: {r.status}")
    size = os.path.getsize(os.path.join(SERVER.data_dir, "seg-00000001.kxd"))
    check(size > BAD_OFFSET, f"seg-00000001.kxd holds {size} bytes, not past {BAD_OFFSET}")
    check(readyz().status == 200, "ready before the fault")
    check(metric(SERVER.port, "kingx_writer_open_failing") == 0, "no failed open yet")


def test_readyz_names_the_unreadable_segment_while_the_writer_cannot_open():
    open(SECTOR_FAILS, "w").close()
    writer = SERVER.wait_children("kingx-writer", 1)[0]
    os.kill(writer, signal.SIGKILL)

    def failing():
        r = readyz()
        return r if r.status == 503 and b"cannot be read" in r.body else None

    r = wait_for(failing, 60, "/readyz naming the failed open")
    check(r.header("Content-Type").startswith("application/problem+json"), f"content type {r.header('Content-Type')}")
    detail = r.json().get("detail", "")
    check("segment 1: its records cannot be read" in detail, f"/readyz detail: {detail}")
    check(f"offset {BAD_OFFSET}" in detail, f"/readyz detail does not name offset {BAD_OFFSET}: {detail}")
    check(metric(SERVER.port, "kingx_writer_open_failing") == 1, "kingx_writer_open_failing is not 1")
    check(metric(SERVER.port, "kingx_writer_open_failures_total") >= 1, "no failed open counted")
    check_every_value("while the writer cannot open")
    # Still failing after another respawn (the fault is persistent): the
    # reason stays, reads go on.
    wait_for(lambda: metric(SERVER.port, "kingx_writer_open_failures_total") >= 2, 60, "a second failed open")
    r = readyz()
    check(r.status == 503 and b"segment 1: its records cannot be read" in r.body, f"/readyz {r.status} {r.body!r}")
    check_every_value("after a second failed open")


def test_readyz_is_200_again_once_the_sector_reads():
    os.remove(SECTOR_FAILS)
    wait_for(lambda: readyz().status == 200, 60, "/readyz 200 after the sector mends")
    check(metric(SERVER.port, "kingx_writer_open_failing") == 0, "kingx_writer_open_failing is not 0")
    check_every_value("after the writer opened")
    r = http(SERVER.port, "PUT", key_path("of-after"), body=b"written after", timeout=10)
    check(r.status in (200, 201, 204), f"PUT after the writer opened: {r.status}")
    with open(SERVER.error_log, errors="replace") as f:
        log = f.read()
    check("segment 1: its records cannot be read" in log, "the failed open is not in the error log")


if __name__ == "__main__":
    run_with_server("open fault", SERVER, cases_of(globals()), check_stop=True)
