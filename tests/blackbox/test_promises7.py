"""Promises of README.md that no other test held the real binary to (the
seventh part; test_promises.py to test_promises6.py have the others), each
checked where a client or an operator sees it, with no timing threshold:

  - a reload (HUP) keeps the settings only a restart can change at their
    running value and says so in the error log, naming the setting: a new
    `pid` path too (the pid file written at start stays, with the master's
    pid, and is the one a stop removes; nothing is written at the new path).
  - Backup: "an archive cut short restores into a copy whose damage is
    reported ... the keys whose newest records were lost answer 500, never an
    older value", not promised only for a cut inside the active segment's
    hint or before it. A segment compaction wrote while the active one was
    being appended to comes after the active segment in the archive: a cut
    inside it is past that hint, so every key acknowledged before the backup
    answers its value or 500 in the restored copy, never 404 or older. The
    same for the backup of a read-only server (a restored copy served as
    README's Read-only serving says), cut inside its last segment.

Every server a case starts is stopped by PID when the case ends, and
SIGTERM (meson's timeout) exits through that cleanup.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_promises7.py
"""

import io
import json
import os
import signal
import tarfile

from kingx_harness import (Server, ServerPerCase, cases_of, check, free_port, http, key_path, log_since, metric,
                           replace_file, restore_cut_archive, run_with_servers, wait_for)

SERVERS = ServerPerCase()
COPIES = []  # servers on restored copies, stopped by PID when the case ends
WAIT_S = 120  # generous: CI runs sanitizer trees beside this one


def read_pid(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def test_a_reload_that_changes_the_pid_file_keeps_the_old_one_and_says_so():
    if SERVERS.server is not None:
        SERVERS.server.cleanup()
    s = SERVERS.server = Server(raw_args=True, port=free_port())
    config = os.path.join(s.workdir, "kingx.json")
    first, second = os.path.join(s.workdir, "first.pid"), os.path.join(s.workdir, "second.pid")
    doc = {"listen": [f"127.0.0.1:{s.port}"], "data": s.data_dir, "error_log": s.error_log, "pid": first,
           "workers": 1, "access_log": "off"}
    replace_file(config, json.dumps(doc))
    s.extra = ["--config", config]
    s.start()
    master = str(s.proc.pid)
    check(read_pid(first) == master, f"the pid file {first} holds the master's pid {master}: {read_pid(first)!r}")
    before = os.path.getsize(s.error_log)
    replace_file(config, json.dumps(dict(doc, pid=second)))
    s.signal(signal.SIGHUP)
    wait_for(lambda: "reload done" in log_since(s, before) or "reload failed" in log_since(s, before), WAIT_S,
             "the master to take the reload")
    tail = log_since(s, before)
    check("--pid" in tail and "restart" in tail,
          f"a reload changing pid ({first} -> {second}) says nothing about it in the error log:\n{tail[-1500:]}")
    check(read_pid(first) == master and read_pid(second) is None,
          f"after the reload the pid file stays {first} with {master}, nothing at {second}: "
          f"{read_pid(first)!r}, {read_pid(second)!r}")
    s.stop()
    check(read_pid(first) is None, f"the stop removes the pid file written at start ({first})")
    s.cleanup()
    SERVERS.server = None


def test_a_backup_archive_cut_inside_a_segment_after_the_active_one_never_serves_older():
    tool = os.environ.get("KINGX_TOOL_BIN", "")
    check(tool and os.access(tool, os.X_OK), "KINGX_TOOL_BIN names kingx-tool")
    s = SERVERS.start("--segment-bytes", "1M", "--compaction-dead-ratio", "0.3", "--workers", "1", admin=True)
    acked = {}

    def put(key, value):
        r = http(s.port, "PUT", key_path(key), value)
        check(r.status in (201, 204), f"PUT {key}: {r.status}")
        acked[key] = (value, r.header("ETag"))
    for i in range(600):  # about two and a half segments of 4 KiB values
        put(f"k{i:03d}", os.urandom(2048).hex().encode())
    for i in range(0, 200):  # the first segment mostly dead; the overwrites go to the active one
        put(f"k{i:03d}", f"k{i:03d} again ".encode() * 10)
    for attempt in range(5):
        # Compaction (asked, or on its own) writes its output while the active segment is being
        # appended to; written after it, the output is born after it.
        written = metric(s.port, "kingx_compaction_segments_written_total")
        r = http(s.admin_port, "POST", "/admin/compact")
        check(r.status in (200, 202), f"POST /admin/compact: {r.status}")
        wait_for(lambda: metric(s.port, "kingx_compaction_segments_written_total") > 0, WAIT_S,
                 "compaction to write a segment")
        r = http(s.admin_port, "GET", "/admin/backup", timeout=WAIT_S)
        check(r.status == 200, f"GET /admin/backup: {r.status}")
        archive = r.body
        members = tarfile.open(fileobj=io.BytesIO(archive)).getmembers()
        names = [m.name for m in members]
        # The active segment: of those not sealed at birth (segment header flags bit 0), the one with
        # the highest seq_floor (engine/FORMAT.md "Segment header"). Segment data members come in id order.
        def header(m):
            head = archive[m.offset_data:m.offset_data + 48]
            return int.from_bytes(head[12:16], "little"), int.from_bytes(head[32:40], "little")
        kxd = [m for m in members if m.name.endswith(".kxd") and m.size >= 48]
        appendable = [m for m in kxd if header(m)[0] & 1 == 0]
        check(appendable, f"an appendable (active) segment in the archive: {names}")
        active = max(appendable, key=lambda m: (header(m)[1], m.name))
        after = [m for m in kxd if m.name > active.name and m.size > 4096]
        if after:
            break
        for i in range(200 + 100 * attempt, 300 + 100 * attempt):  # more dead records for another pass
            put(f"k{i:03d}", f"k{i:03d} again {attempt} ".encode() * 10)
        wait_for(lambda: metric(s.port, "kingx_compaction_segments_written_total") >= written, WAIT_S, "metrics")
    check(after, f"compaction's output comes after the active segment in the archive: {names}")
    seg = after[-1]
    cut = seg.offset_data + seg.size // 2
    v, wrong = restore_cut_archive(tool, archive, cut, os.path.join(s.workdir, "restored"), acked, COPIES)
    for c in COPIES:
        c.cleanup()
    COPIES.clear()
    check(v.returncode == 2 and not wrong,
          f"an archive cut in the middle of {seg.name} (after the active segment, members {names}): "
          f"kingx-tool verify exit {v.returncode} (want 2) {v.stdout.strip()[-200:]!r}; keys acknowledged "
          f"before the backup answered older or absent (want 500 or the acked value): {len(wrong)} {wrong[:8]}")


def test_a_read_only_servers_backup_cut_inside_its_last_segment_never_serves_older():
    tool = os.environ.get("KINGX_TOOL_BIN", "")
    check(tool and os.access(tool, os.X_OK), "KINGX_TOOL_BIN names kingx-tool")
    s = SERVERS.start("--workers", "1")
    acked = {}
    for round_ in range(3):  # the newest value of every key is in the last segment's last records
        for i in range(60):
            key = f"r{i:02d}"
            value = f"{key} round {round_} ".encode() * 20
            r = http(s.port, "PUT", key_path(key), value)
            check(r.status in (201, 204), f"PUT {key}: {r.status}")
            acked[key] = (value, r.header("ETag"))
    s.stop()
    ro = Server(["--read-only", "--workers", "1"], data_dir=s.data_dir, admin=True)
    COPIES.append(ro)
    ro.start()
    r = http(ro.admin_port, "GET", "/admin/backup", timeout=WAIT_S)
    check(r.status == 200, f"GET /admin/backup of the read-only server: {r.status}")
    archive = r.body
    members = tarfile.open(fileobj=io.BytesIO(archive)).getmembers()
    names = [m.name for m in members]
    seg = [m for m in members if m.name.endswith(".kxd")][-1]
    # Inside the last record (r59's last value; below 256 bytes, so stored as it is): the segment
    # file also carries the zero room past its records.
    cut = archive.rfind(b"r59 round 2 ", seg.offset_data, seg.offset_data + seg.size) + 100
    check(cut > seg.offset_data + 100, f"r59's last value in {seg.name}")
    v, wrong = restore_cut_archive(tool, archive, cut, os.path.join(s.workdir, "restored"), acked, COPIES)
    for c in COPIES:
        c.cleanup()
    COPIES.clear()
    check(v.returncode == 2 and not wrong,
          f"a read-only server's archive cut inside the last record of {seg.name} (members {names}): "
          f"kingx-tool verify exit {v.returncode} (want 2) {v.stdout.strip()[-200:]!r}; keys served older than "
          f"acknowledged or absent (want 500 or the acked value): {len(wrong)} {wrong[:8]}")


if __name__ == "__main__":
    try:
        run_with_servers("promises7", cases_of(globals()), SERVERS.current)
    finally:
        for c in COPIES:
            c.cleanup()
