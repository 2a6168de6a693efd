"""The corruption matrix from outside: one damaged byte in a record header, a
value, a hint, a segment header or the MANIFEST, of the active and of a sealed
segment, with the hint intact and damaged; a cut and a missing segment.

For every case (each on a fresh copy of one database, written and stopped
cleanly): the server starts; every key whose newest record is intact answers
its acknowledged value (or 404 when deleted); the damaged key answers 500 or
its acknowledged value, never an older one and never 404; the damage is
counted in /metrics, logged at error level, and `kingx-tool verify` exits 2.
LevelDB's corruption_test (research/reliability.md §1.1) is the model: one
damaged spot, an exact blast radius.

    KINGX_BIN=build/src/kingx KINGX_TOOL_BIN=build/engine/tool/kingx-tool \\
        python3 tests/blackbox/test_corruption.py [-k NAME]
"""

import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import time

from fault_flag import fail_point_while
from kingx_harness import CaseSkipped, Server, TestFailure, check, compressible_text, http, key_path, make_value, run_cases

SEGMENT_BYTES = 64 << 10
HEADER = 48
RECORD_HEADER = 40
SEALED_AT_BIRTH = 1


def segments(data_dir):
    """{name: (flags, seq_floor, [records])}; a record is (offset, end, key, seq, type)."""
    out = {}
    for name in sorted(os.listdir(data_dir)):
        if not re.fullmatch(r"seg-\d{8}\.kxd", name):
            continue
        with open(os.path.join(data_dir, name), "rb") as f:
            b = f.read()
        flags, = struct.unpack_from("<I", b, 12)
        floor, = struct.unpack_from("<Q", b, 32)
        recs = []
        off = HEADER
        while off + RECORD_HEADER <= len(b):
            seq, stored, raw, klen, mlen, fl = struct.unpack_from("<QIIHBB", b, off + 16)
            end = off + RECORD_HEADER + klen + mlen + stored
            if klen == 0 or end > len(b):
                break
            recs.append((off, end, b[off + RECORD_HEADER:off + RECORD_HEADER + klen], seq, fl & 3))
            off = end
        out[name] = (flags, floor, recs)
    return out


def fill_matrix(server, acked):
    """Three rounds over 40 keys of 600 B-1.5 KiB, deletes, then a few
    overwrites (the newest records of some keys in the active segment)."""
    rng = random.Random(42)
    keys = [b"key-%d" % i for i in range(40)]
    for rnd in range(3):
        for i, k in enumerate(keys):
            v = make_value(k, 0, rnd * 100 + i, rng, 600 + (i * 37) % 900)
            r = http(server.port, "PUT", key_path(k), v)
            check(r.status in (201, 204), f"PUT {k!r}: {r.status}")
            acked[k] = v
    for k in keys[::7]:
        check(http(server.port, "DELETE", key_path(k)).status == 204, "DELETE")
        acked[k] = None
    for i, k in enumerate(keys[1::5]):
        v = make_value(k, 0, 900 + i, rng, 500)
        check(http(server.port, "PUT", key_path(k), v).status in (201, 204), "PUT")
        acked[k] = v


# Values on both sides of the size thresholds: compression (255/256 B), 1 KiB,
# and the large-value path (a value over 1 MiB is staged in a segment of its own).
EDGE_SIZES = (100, 255, 256, 1024, 1025, 1 << 20, (1 << 20) + 1)


def fill_edges(server, acked):
    """Two versions of each key, raw and compressible, of every EDGE_SIZES
    size, then keys of one version: with default segments, the second
    versions follow the first ones in the active segment (the 16 MiB value
    first, in a segment of its own, keeps the writer from rotating a segment
    that holds over a quarter of the live data)."""
    filler = os.urandom(16 << 20)
    check(http(server.port, "PUT", key_path(b"filler"), filler).status == 201, "PUT filler")
    acked[b"filler"] = filler
    for version in (1, 2):
        for size in EDGE_SIZES:
            for kind, payload in ((b"r", None), (b"z", compressible_text(size, version))):
                k = b"edge-%d-%s" % (size, kind)
                v = payload if payload is not None else os.urandom(size)
                check(http(server.port, "PUT", key_path(k), v).status in (201, 204), f"PUT {k!r}")
                acked[k] = v
            if version == 2:
                k = b"only-%d" % size
                v = os.urandom(size)
                check(http(server.port, "PUT", key_path(k), v).status in (201, 204), f"PUT {k!r}")
                acked[k] = v


class Database:
    """One database written through the server (fill) and stopped cleanly
    (SIGTERM); `acked` holds each key's acknowledged value (None: deleted)."""

    def __init__(self, args=("--segment-bytes", str(SEGMENT_BYTES)), fill=fill_matrix):
        self.server = Server(["--workers", "2", "--compaction", "off", *args])
        self.acked = {}
        self.server.start()
        fill(self.server, self.acked)
        check(self.server.stop() == 0, "clean stop")
        self.pristine = self.server.data_dir + ".pristine"
        shutil.copytree(self.server.data_dir, self.pristine)
        self.segs = segments(self.pristine)
        newest = {}
        for name, (_, _, recs) in self.segs.items():
            for (off, end, key, seq, typ) in recs:
                if key not in newest or newest[key][3] < seq:
                    newest[key] = (name, off, end, seq, typ)
        self.newest = newest
        appendable = [(floor, name) for name, (flags, floor, _) in self.segs.items() if not flags & SEALED_AT_BIRTH]
        self.active = max(appendable)[1]

    def pick(self, active):
        """(segment name, offset, end, key) of a live key's newest record in the
        active segment or a sealed one, with other records after it."""
        for key, (name, off, end, seq, typ) in sorted(self.newest.items()):
            if typ != 1 or self.acked.get(key) is None or (name == self.active) != active:
                continue
            if any(o >= end for (o, _, _, _, _) in self.segs[name][2]):
                return name, off, end, key
        raise TestFailure("no record to damage")

    def fresh_copy(self):
        shutil.rmtree(self.server.data_dir, ignore_errors=True)
        shutil.copytree(self.pristine, self.server.data_dir)
        return self.server.data_dir

    def cleanup(self):
        self.server.cleanup()
        shutil.rmtree(self.pristine, ignore_errors=True)


DB = None


def flip(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x5A]))


def wait_for_log(srv, mark, pattern, what, timeout=300):
    """Waits (bounded) until the server's error log, from byte `mark` on,
    matches pattern."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(srv.error_log):
            with open(srv.error_log, "rb") as f:
                f.seek(mark)
                if re.search(pattern, f.read().decode("utf-8", "replace")):
                    return
        time.sleep(0.05)
    raise TestFailure(f"no {what} in the error log after {timeout} s")


def run_case(damage, damaged_keys=(), key_may_revert=False, acked=None):
    """damage(data_dir) damages the copy; then the checks of the module doc.
    damaged_keys: keys whose newest record the damage hit (500 allowed);
    key_may_revert: the damage hit their key bytes where no intact hint names
    them, so they may answer their previous value (engine/FORMAT.md);
    acked: what the keys hold when damage() wrote more (default DB.acked)."""
    acked = DB.acked if acked is None else acked
    data = DB.fresh_copy()
    damage(data)
    problems = []
    tool = os.environ.get("KINGX_TOOL_BIN")
    if tool and os.access(tool, os.X_OK):
        # On the damaged copy (an open repairs what it can: hints, the MANIFEST).
        p = subprocess.run([tool, "--data", data, "verify"], capture_output=True, timeout=120)
        if p.returncode != 2:
            problems.append(f"kingx-tool verify exit {p.returncode} (want 2): {p.stdout.decode()[-600:]}")
    srv = DB.server
    log_mark = os.path.getsize(srv.error_log) if os.path.exists(srv.error_log) else 0
    srv.port = None
    srv.start()
    try:
        for key, want in acked.items():
            r = http(srv.port, "GET", key_path(key))
            if key in damaged_keys:
                # 500, or its acknowledged state: its value, or 404 when its newest write was a delete.
                if r.status == 500 or (want is None and r.status == 404) or (
                        want is not None and r.status == 200 and r.body == want):
                    continue
                if key_may_revert:
                    continue
                problems.append(f"damaged key {key!r}: {r.status} {r.body[:40]!r} (want 500 or its acked value)")
            elif want is None:
                if r.status != 404:
                    problems.append(f"deleted key {key!r}: {r.status}")
            elif r.status != 200 or r.body != want:
                problems.append(f"key {key!r}: {r.status} {r.body[:40]!r} (not its acknowledged value)")
        metrics = http(srv.port, "GET", "/metrics").body.decode()
        m = re.search(r"^kingx_engine_corruptions_total (\d+)", metrics, re.M)
        if not m or int(m.group(1)) < 1:
            problems.append(f"damage not counted in /metrics: {m.group(0) if m else 'no sample'}")
        # Writes still work, and the damaged key can be written again.
        for key in damaged_keys:
            r = http(srv.port, "PUT", key_path(key), b"rewritten")
            if r.status not in (201, 204) or http(srv.port, "GET", key_path(key)).body != b"rewritten":
                problems.append(f"rewriting the damaged key {key!r}: {r.status}")
    finally:
        status = srv.stop()
    with open(srv.error_log, "rb") as f:
        f.seek(log_mark)
        new_log = f.read().decode("utf-8", "replace")
    if not re.search(r"\[error\].*engine: ", new_log):
        problems.append("no [error] line from the engine in the error log")
    if status != 0:
        problems.append(f"stop: exit status {status}")
    check(not problems, "; ".join(problems[:8]) + "\n--- error log ---\n" + new_log[-3000:])


def record_case(active, where, hint_damaged=False):
    def case():
        name, off, end, key = DB.pick(active)

        def damage(data):
            flip(os.path.join(data, name), off + where)
            hint = os.path.join(data, name[:-4] + ".hint")
            if hint_damaged and os.path.exists(hint):
                flip(hint, os.path.getsize(hint) // 2)
        in_key = RECORD_HEADER <= where < RECORD_HEADER + len(key)
        run_case(damage, [key], key_may_revert=in_key and (active or hint_damaged))
    return case


def test_segment_header_sealed():
    name = min(n for n in DB.segs if n != DB.active)
    run_case(lambda d: flip(os.path.join(d, name), 20))


def test_segment_header_active():
    run_case(lambda d: flip(os.path.join(d, DB.active), 20))


def test_hint_sealed():
    name = min(n for n in DB.segs if n != DB.active)
    run_case(lambda d: flip(os.path.join(d, name[:-4] + ".hint"), 30))


def test_manifest():
    run_case(lambda d: flip(os.path.join(d, "MANIFEST"), 17))


def test_cut_sealed_segment():
    name, off, end, key = DB.pick(False)

    def damage(d):
        with open(os.path.join(d, name), "r+b") as f:
            f.truncate(off + 60)
    lost = [k for (o, _, k, _, _) in DB.segs[name][2] if o >= off and DB.newest[k][0] == name]
    run_case(damage, lost)


def test_missing_sealed_segment():
    name, off, end, key = DB.pick(False)
    # Every key whose newest record was there answers 500: its hint (kept) names them.
    lost = [k for (_, _, k, _, _) in DB.segs[name][2] if DB.newest[k][0] == name]
    run_case(lambda d: os.unlink(os.path.join(d, name)), lost)


def sealed_cut_inside_header(size):
    """A sealed segment cut to fewer bytes than its header, its hint gone: the
    MANIFEST's seal says it held records, so the cut is damage (kept, counted,
    logged, reported by verify at every open), not a segment whose creation
    was cut short (which an open removes). Nothing names the keys it held (the
    limit of a segment lost with its hint): they may answer an older value or
    404."""
    def case():
        name, off, end, key = DB.pick(False)
        lost = [k for (_, _, k, _, _) in DB.segs[name][2] if DB.newest[k][0] == name]
        kept = []

        def damage(d):
            with open(os.path.join(d, name), "r+b") as f:
                f.truncate(size)
            os.unlink(os.path.join(d, name[:-4] + ".hint"))
            kept.append(os.path.join(d, name))
        run_case(damage, lost, key_may_revert=True)
        check(os.path.exists(kept[0]), f"{name} cut to {size} bytes was removed by the open: the damage is gone")
        tool = os.environ.get("KINGX_TOOL_BIN")
        if tool and os.access(tool, os.X_OK):
            p = subprocess.run([tool, "--data", DB.server.data_dir, "verify"], capture_output=True, timeout=120)
            check(p.returncode == 2, f"verify after the server's open: exit {p.returncode} (want 2): "
                                     f"{p.stdout.decode()[-400:]}")
    return case


def active_cut(db, at):
    """(damage, lost keys): the active segment cut at a record boundary (at=0)
    or inside a record (at=60) in its middle; after a clean close every key
    whose newest record was at or past the cut answers 500, never an older
    value, never 404."""
    recs = db.segs[db.active][2]
    off = recs[len(recs) // 2][0]
    cut = off + at

    def damage(d):
        with open(os.path.join(d, db.active), "r+b") as f:
            f.truncate(cut)
    lost = [k for (o, end, k, _, _) in recs if end > cut and db.newest[k][0] == db.active
            and db.acked.get(k) is not None]
    check(lost, "nothing to lose past the cut")
    return damage, lost


def cut_active(db, at):
    run_case(*active_cut(db, at))


def test_cut_active_segment_at_record_boundary():
    cut_active(DB, 0)


def test_cut_active_segment_inside_record():
    cut_active(DB, 60)


def test_cut_active_segment_edge_sizes():
    # Its own database: default segment size, so that values up to 1 MiB are
    # in the active segment beside older versions of their keys.
    global DB
    main_db, DB = DB, Database(args=(), fill=fill_edges)
    try:
        recs = DB.segs[DB.active][2]
        newest_here = {k: off for k, (name, off, _, _, _) in DB.newest.items() if name == DB.active}
        sizes = {len(DB.acked[k]) for k in newest_here}
        check(sizes >= set(EDGE_SIZES) - {(1 << 20) + 1}, f"sizes in the active segment: {sorted(sizes)}")
        first_v2 = min(off for k, off in newest_here.items() if k.startswith(b"edge-"))
        for at in (0, 60):
            cut = first_v2 + at

            def damage(d, cut=cut):
                with open(os.path.join(d, DB.active), "r+b") as f:
                    f.truncate(cut)
            lost = [k for (_, end, k, _, _) in recs if end > cut and newest_here.get(k) is not None]
            run_case(damage, lost)
    finally:
        DB.cleanup()
        DB = main_db


def damage_last_records(db, count, where):
    """Byte `where` of each of the active segment's last `count` records
    flipped, after a clean stop: damage, not a torn tail (the hint the stop
    finished says where the records end); their keys answer 500, never an
    older value or 404."""
    recs = db.segs[db.active][2][-count:]

    def damage(d):
        for (off, end, _, _, _) in recs:
            flip(os.path.join(d, db.active), off + where)
    hit = [k for (_, _, k, _, _) in recs if db.newest[k][0] == db.active and db.acked.get(k) is not None]
    check(hit, "no live key's newest record at the end of the active segment")
    run_case(damage, hit)


def test_last_record_header_after_clean_stop():
    damage_last_records(DB, 1, 3)


def test_last_records_after_clean_stop():
    damage_last_records(DB, 3, 18)


def test_last_record_key_after_clean_stop():
    # The record then reads as another key's: the hint the stop finished
    # names the real one, which answers 500, never its older value.
    damage_last_records(DB, 1, RECORD_HEADER + 1)


def test_key_bytes_after_crash():
    # After the clean stop the server starts again (its open writes the
    # entries of the records it scanned to the active segment's hint at
    # once) and is killed (kill -9: that hint stays unfinished); then a key
    # byte of three records in the middle of the active segment. Each record
    # then reads as a key nobody wrote; the hint as written names the real
    # one, which the record's checksum proves: it answers 500, never its
    # older value (a delete's key: never a value it had before the delete).
    recs = DB.segs[DB.active][2]
    mid = recs[len(recs) // 2 - 1:len(recs) // 2 + 2]
    hit = [k for (_, _, k, _, _) in mid if DB.newest[k][0] == DB.active]
    check(hit, "no key's newest record in the middle of the active segment")

    def damage(d):
        srv = DB.server
        srv.port = None
        srv.start()
        srv.kill_group()
        for (off, _, _, _, _) in mid:
            flip(os.path.join(d, DB.active), off + RECORD_HEADER + 1)
    run_case(damage, hit)


def test_key_bytes_after_crash_at_rest():
    # The server starts again and overwrites three keys (their hint entries
    # are buffered in the writer), then nothing happens for a while: a writer
    # at rest writes what its hint buffers. kill -9; then a key byte of each
    # new record. Each record reads as a key nobody wrote; the hint as
    # written names the real one: 500 or the new value, never the older one.
    keys = [k for k, v in sorted(DB.acked.items()) if v is not None][:3]
    acked = dict(DB.acked)
    new = {}
    rng = random.Random(7)

    def damage(d):
        srv = DB.server
        srv.port = None
        srv.start()
        hint = os.path.join(d, DB.active[:-4] + ".hint")
        before = os.path.getsize(hint)
        for i, key in enumerate(keys):
            value = make_value(key, 1, i, rng, 100)
            r = http(srv.port, "PUT", key_path(key), value)
            check(r.status in (200, 201, 204), f"PUT {key!r}: {r.status}")
            acked[key] = value
        # At rest: the writer loop's wait ends with nothing to do (within a
        # second), then the hint grows. Bounded; a writer that never writes
        # it fails below, at the damaged keys.
        deadline = time.monotonic() + 10
        while os.path.getsize(hint) == before and time.monotonic() < deadline:
            time.sleep(0.05)
        srv.kill_group()
        for name, (_, _, recs) in segments(d).items():
            for (off, _, key, seq, _) in recs:
                if key in keys and seq > DB.newest[key][3]:
                    new[key] = (name, off)
        check(len(new) == len(keys), f"new records found: {sorted(new)} of {keys}")
        for name, off in new.values():
            flip(os.path.join(d, name), off + RECORD_HEADER + 1)
    run_case(damage, keys, acked=acked)


def test_cut_after_hup_restart():
    # A HUP that changes an engine setting restarts the writer, whose close is
    # clean (it finishes the active hint). Its successor's open fails at the
    # MANIFEST (the file seam, armed while a flag file exists) before it reads
    # or writes a segment; the server is then killed, the active segment cut,
    # and the next open finds the hint the HUP's close finished.
    cut, lost = active_cut(DB, 60)
    srv = DB.server
    conf = os.path.join(srv.workdir, "kingx.json")

    def write_config(sync):
        with open(conf + ".tmp", "w") as f:
            json.dump({"workers": 2, "compaction": "off", "segment_bytes": str(SEGMENT_BYTES), "sync": sync}, f)
        os.replace(conf + ".tmp", conf)

    def damage(d):
        flag = os.path.join(srv.workdir, "writer-open-fails")
        args = srv.extra
        write_config("always")
        srv.extra = ["--config", conf]
        try:
            with fail_point_while("kingx-writer/read@MANIFEST:1+", flag):
                srv.port = None
                srv.start()
            mark = os.path.getsize(srv.error_log) if os.path.exists(srv.error_log) else 0
            open(flag, "w").close()
            write_config("interval:50")
            srv.signal(signal.SIGHUP)
            wait_for_log(srv, mark, r"writer: cannot open the database", "failed open of the restarted writer")
            srv.kill_group()
            cut(d)
        finally:
            srv.kill_group()
            srv.extra = args
            if os.path.exists(flag):
                os.unlink(flag)
    run_case(damage, lost)


def test_cut_after_kingx_tool():
    # kingx-tool's offline commands open and close the writer as the server
    # does: `compact` after the server's stop, then the damage.
    tool = os.environ.get("KINGX_TOOL_BIN")
    if not (tool and os.access(tool, os.X_OK)):
        raise CaseSkipped("KINGX_TOOL_BIN is not set")
    cut, lost = active_cut(DB, 60)

    def damage(d):
        p = subprocess.run([tool, "--data", d, "compact"], capture_output=True, timeout=300)
        check(p.returncode == 0, f"kingx-tool compact: exit {p.returncode}: {p.stderr.decode()[-400:]}")
        cut(d)
    run_case(damage, lost)


CASES = [
    ("record header checksum byte, active segment", record_case(True, 3)),
    ("record seq byte, active segment", record_case(True, 18)),
    ("record length byte, active segment", record_case(True, 25)),
    ("value byte, active segment", record_case(True, 70)),
    ("record header checksum byte, sealed segment, hint intact", record_case(False, 3)),
    ("record seq byte, sealed segment, hint intact", record_case(False, 18)),
    ("value byte, sealed segment, hint intact", record_case(False, 70)),
    ("record header checksum byte, sealed segment, hint damaged", record_case(False, 3, True)),
    ("record length byte, sealed segment, hint damaged", record_case(False, 25, True)),
    ("value byte, sealed segment, hint damaged", record_case(False, 70, True)),
    ("key byte, sealed segment, hint intact", record_case(False, RECORD_HEADER + 1)),
    ("segment header of a sealed segment", test_segment_header_sealed),
    ("segment header of the active segment", test_segment_header_active),
    ("hint of a sealed segment", test_hint_sealed),
    ("MANIFEST", test_manifest),
    ("sealed segment cut inside a record", test_cut_sealed_segment),
    ("sealed segment file missing", test_missing_sealed_segment),
    ("sealed segment cut to 0 bytes, its hint gone", sealed_cut_inside_header(0)),
    ("sealed segment cut inside its header, its hint gone", sealed_cut_inside_header(20)),
    ("active segment cut at a record boundary after a clean stop", test_cut_active_segment_at_record_boundary),
    ("active segment cut inside a record after a clean stop", test_cut_active_segment_inside_record),
    ("active segment cut after a clean stop, values at the size thresholds", test_cut_active_segment_edge_sizes),
    ("last record's header byte of the active segment after a clean stop", test_last_record_header_after_clean_stop),
    ("last three records' seq bytes of the active segment after a clean stop", test_last_records_after_clean_stop),
    ("last record's key byte of the active segment after a clean stop", test_last_record_key_after_clean_stop),
    ("key bytes of the active segment's records after a restart and a kill -9", test_key_bytes_after_crash),
    ("key bytes of records written since a restart, after a kill -9 at rest", test_key_bytes_after_crash_at_rest),
    ("active segment cut inside a record after a HUP's writer restart", test_cut_after_hup_restart),
    ("active segment cut inside a record after kingx-tool compact", test_cut_after_kingx_tool),
]


def main():
    global DB
    only = sys.argv[sys.argv.index("-k") + 1] if "-k" in sys.argv else None
    cases = [(n, f) for n, f in CASES if only is None or only in n]
    DB = Database()
    try:
        status = run_cases("corruption matrix", cases, server=lambda: None)
    finally:
        DB.cleanup()
    sys.exit(status)


if __name__ == "__main__":
    main()
