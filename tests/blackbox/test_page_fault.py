"""A page of a mapped segment that cannot be read, end to end: a sealed
segment (and a large value's segment) truncated under the running server,
after the worker mapped and read it, as damage or an operator would. The
worker's next read of those pages meets a real SIGBUS from the kernel.

Workers read segments through mappings (engine/segment_cache.h) and read
their bytes under a guard (engine/mapping_guard.h): a GET whose record lies
on such a page answers 500 problem+json (HEAD: 500), never a crash, never
another value; the same keep-alive connection then serves every other key
with its bytes and ETag; an absent key stays 404; each failure is counted
(kingx_engine_read_failures_total) and logged at error level; no worker
dies. A compressed value whose pages go while it is being sent (frame by
frame) ends its response early: the connection is closed, the client has a
prefix of the value and never wrong bytes, and the worker goes on serving
its other connections; a raw value sent from the mapping ends the same way
(the kernel's copy fails: no signal). Before the guard each of these
SIGBUSes killed the worker with every connection it held.

Values on both sides of each size threshold of the read path: 100 B and
1 KiB (copied beside the response head), 1 KiB + 1 (sent from the mapping),
64 KiB compressible (one frame), 1 MiB (a record of the sealed segment),
1 MiB + 1 (a large value: a segment of its own), and two large values sent
while their pages go: 24 MiB compressible (decoded frame by frame) and
16 MiB raw.

No timing threshold: each wait is bounded far above what a loaded machine
needs.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_page_fault.py [--model threads]
"""

import os
import re
import socket
import sys
import tempfile

from kingx_harness import compressible_text as text
from kingx_harness import check_failed_read as harness_check_failed_read
from kingx_harness import (check_stored_value, Conn, ConnectionClosed, Server, cases_of, check, http, key_path, metric,
                           run_with_shared_data)

MODEL_ARGS = sys.argv[1:]
KIB = 1 << 10
MIB = 1 << 20
SEGMENT_BYTES = 4 * MIB


# Records of one segment, sealed before the fault.
SEALED = {
    "pf-small": os.urandom(100),
    "pf-copy-max": os.urandom(KIB),
    "pf-copy-edge": os.urandom(KIB + 1),
    "pf-compressible": text(64 * KIB, 1),
    "pf-1mib": os.urandom(MIB),
}
LARGE = {"pf-large": os.urandom(MIB + 1)}  # a segment of its own
STREAMED = {"pf-stream-zstd": text(24 * MIB, 2), "pf-stream-raw": os.urandom(16 * MIB)}
# Written after the sealed segment: never faulted.
OTHERS = {
    "pf-other-small": os.urandom(100),
    "pf-other-copy-edge": os.urandom(KIB + 1),
    "pf-other-compressible": text(64 * KIB, 3),
    "pf-other-1mib": os.urandom(MIB),
}
FAULTED = {**SEALED, **LARGE}
VALUES = {**SEALED, **LARGE, **STREAMED, **OTHERS}
WORKDIR = tempfile.mkdtemp(prefix="kingx-bb-page-fault-")
DATA = os.path.join(WORKDIR, "data")
ETAGS = {}
SEGMENT_OF = {}  # a large value's own segment file
SERVERS = []


def server():
    if not SERVERS:
        s = Server(["--workers", "1", "--segment-bytes", str(SEGMENT_BYTES)] + MODEL_ARGS, data_dir=DATA,
                   workdir=tempfile.mkdtemp(prefix="run-", dir=WORKDIR))
        SERVERS.append(s)
        s.start()
    return SERVERS[0]


def put(s, key, value):
    r = http(s.port, "PUT", key_path(key), body=value, timeout=120)
    check(r.status in (201, 204), f"PUT {key}: {r!r}")
    ETAGS[key] = r.header("ETag")


def put_large(s, key, value):
    before = set(segments())
    put(s, key, value)
    new = set(segments()) - before
    check(len(new) == 1, f"PUT {key}: one new segment expected, found {sorted(new)}")
    SEGMENT_OF[key] = new.pop()


def check_value(r, key):
    check_stored_value(r, key, VALUES[key], ETAGS[key])


def check_failed_read(r, key, head=False):
    """A 500 problem+json, nothing of the value."""
    harness_check_failed_read(r, key, VALUES[key], "on a page that cannot be read", head)


def segments():
    return sorted((n for n in os.listdir(DATA) if re.fullmatch(r"seg-\d+\.kxd", n)),
                  key=lambda n: int(re.findall(r"\d+", n)[0]))


def sealed_segment():
    """The one segment file that holds every raw value of SEALED (the
    compressible one was written between them)."""
    found = []
    for name in segments():
        try:
            with open(os.path.join(DATA, name), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            continue  # removed since the listing (the server runs): it holds nothing now
        if all(v[:4096] in data for k, v in SEALED.items() if k != "pf-compressible"):
            found.append(name)
    check(len(found) == 1, f"one segment holding the sealed values expected, found {found}")
    return found[0]


def truncate(name):
    os.truncate(os.path.join(DATA, name), 0)


def worker_died(s):
    return metric(s.port, "kingx_respawns_total") != 0


def fault_lines(s):
    with open(s.error_log, errors="replace") as f:
        return [line for line in f if "SIGBUS" in line and "[error]" in line]


def test_values_are_written_and_the_first_segment_sealed():
    s = server()
    for key, value in {**LARGE, **STREAMED}.items():
        put_large(s, key, value)
    for key, value in SEALED.items():
        put(s, key, value)
    # Enough after them that the segment holding them is sealed (the writer
    # starts a new one when a record does not fit).
    for i in range(5):
        put(s, f"pf-filler-{i}", os.urandom(MIB))
    for key, value in OTHERS.items():
        put(s, key, value)
    sealed = sealed_segment()
    check(sealed != segments()[-1], f"{sealed} holds the sealed values and is still the newest segment")
    for key in VALUES:
        check_value(http(s.port, "GET", key_path(key), timeout=120), key)


def test_a_truncated_segment_fails_its_keys_and_the_worker_serves_every_other():
    s = server()
    workers = s.workers()
    sealed, large = sealed_segment(), SEGMENT_OF["pf-large"]
    failures_before = metric(s.port, "kingx_engine_read_failures_total")
    failed = 0
    with Conn(s.port, timeout=60) as c:
        # This worker maps both segments, whole, and reads their records.
        for key in FAULTED:
            check_value(c.request("GET", key_path(key)), key)
        truncate(sealed)
        truncate(large)
        for round_ in range(2):
            for key in FAULTED:
                try:
                    check_failed_read(c.request("GET", key_path(key)), key)
                    check_failed_read(c.request("HEAD", key_path(key)), key, head=True)
                except ConnectionClosed as e:
                    check(False, f"round {round_}: GET {key} after its pages went: {e} "
                          f"(worker died: {worker_died(s)})\n{s.logs()}")
                failed += 2
            for key in OTHERS:
                check_value(c.request("GET", key_path(key)), key)
        check(c.request("GET", key_path("pf-absent")).status == 404, "an absent key is still 404")
    counted = metric(s.port, "kingx_engine_read_failures_total") - failures_before
    check(counted == failed, f"kingx_engine_read_failures_total counted {counted} for {failed} failed reads")
    check(not worker_died(s), "a worker died of the fault:\n" + s.logs())
    check(s.workers() == workers, f"workers {workers} became {s.workers()}")
    lines = fault_lines(s)
    check(lines, f"no error-level line reports the fault:\n{s.logs()}")
    check(any(f"segment {int(re.findall(r'[0-9]+', sealed)[0])}" in line for line in lines),
          f"no line names the segment of {sealed}:\n" + "".join(lines))


def read_head(sock):
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(4096)
        check(data, f"closed before the head: {buf!r}")
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head.decode("latin-1"), rest


def read_to_eof(sock, got, limit):
    while len(got) <= limit:
        try:
            data = sock.recv(1 << 16)
        except ConnectionResetError:
            break
        if not data:
            break
        got += data
    return got


def test_a_value_whose_pages_go_while_it_is_sent_ends_short_and_the_worker_lives_on():
    s = server()
    for key, value in STREAMED.items():
        seg = SEGMENT_OF[key]
        failures_before = metric(s.port, "kingx_engine_read_failures_total")
        with Conn(s.port, timeout=60) as other:
            check_value(other.request("GET", key_path("pf-other-small")), "pf-other-small")
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            # A small receive buffer: the server can send only a few MiB
            # before the client reads again.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * KIB)
            sock.settimeout(60)
            sock.connect(("127.0.0.1", s.port))
            with sock:
                sock.sendall(f"GET {key_path(key)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                head, body = read_head(sock)
                check(head.startswith("HTTP/1.1 200"), f"GET {key}: {head}")
                check(f"content-length: {len(value)}" in head.lower(), f"GET {key}: {head}")
                truncate(seg)
                body = read_to_eof(sock, body, len(value))
            check(len(body) < len(value), f"GET {key}: the whole value arrived although its pages went "
                  f"({len(body)} bytes)")
            check(body == value[:len(body)], f"GET {key}: the {len(body)} bytes received are not the value's")
            # The worker that sent it serves its other connection on.
            try:
                check_value(other.request("GET", key_path("pf-other-small")), "pf-other-small")
            except ConnectionClosed as e:
                check(False, f"the worker's other connection after {key}'s fault: {e} "
                      f"(worker died: {worker_died(s)})\n{s.logs()}")
        check(not worker_died(s), f"{key}: a worker died of the fault:\n" + s.logs())
        if key == "pf-stream-zstd":
            # A decoded stream's fault is the worker's read: counted. A raw
            # value's is the kernel's copy to the socket (no signal).
            counted = metric(s.port, "kingx_engine_read_failures_total") - failures_before
            check(counted == 1, f"{key}: kingx_engine_read_failures_total counted {counted}")
        check_failed_read(http(s.port, "GET", key_path(key), timeout=60), key)


def main():
    title = "page fault" + (" " + " ".join(MODEL_ARGS) if MODEL_ARGS else "")
    run_with_shared_data(title, cases_of(globals()), SERVERS, WORKDIR)


if __name__ == "__main__":
    main()
