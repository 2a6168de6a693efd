#!/usr/bin/env python3
"""Black-box test of kingx-tool: put/get/delete/list/stat/verify, exit codes, the lock, binary and
percent-encoded keys, read-only commands that change nothing.

Usage: kingx_tool_test.py PATH_TO_KINGX_TOOL
"""
import fcntl
import json
import os
import subprocess
import sys
import tempfile
import urllib.parse

TOOL = sys.argv[1]
failures = []


def run(data, *args, stdin=b"", segment_bytes="4096"):
    p = subprocess.run([TOOL, "--data", data, "--segment-bytes", segment_bytes, *args], input=stdin,
                       capture_output=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


with tempfile.TemporaryDirectory() as data:
    rc, out, _ = run(data, "put", "greeting", stdin=b"hello\x00world")
    check(rc == 0 and out.startswith(b"created"), "put of a new key reports created")
    rc, out, _ = run(data, "put", "greeting", stdin=b"hello again")
    check(rc == 0 and out.startswith(b"updated"), "put of an existing key reports updated")
    rc, out, _ = run(data, "get", "greeting")
    check(rc == 0 and out == b"hello again", "get returns the exact bytes")
    big = os.urandom(3000)
    path = os.path.join(data, "..", os.path.basename(data) + ".value")
    with open(path, "wb") as f:
        f.write(big)
    for i in range(10):  # several segments of 4 KiB
        rc, _, _ = run(data, "put", "k%d" % i, path)
        check(rc == 0, "put from a file")
    os.unlink(path)
    rc, out, _ = run(data, "get", "k7")
    check(rc == 0 and out == big, "a value put from a file reads back")
    rc, _, _ = run(data, "delete", "k7")
    check(rc == 0, "delete of an existing key")
    rc, _, _ = run(data, "delete", "k7")
    check(rc == 1, "delete of a missing key exits 1")
    rc, _, _ = run(data, "get", "k7")
    check(rc == 1, "get of a missing key exits 1")
    rc, out, _ = run(data, "stat", "--json")
    stat = json.loads(out)
    check(rc == 0 and stat["keys"] == 10 and stat["segments"] >= 5 and stat["corruptions"] == 0,
          "stat --json counts keys and segments: %r" % stat)
    check(stat["dead_bytes"] > 0 and stat["live_bytes"] > 9 * 3000, "stat reports live and dead bytes")
    rc, out, _ = run(data, "verify")
    check(rc == 0 and b"corrupt 0" in out, "verify of a clean database")

    # The LOCK keeps a second process out.
    with open(os.path.join(data, "LOCK"), "r+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        rc, _, err = run(data, "get", "k1")
        check(rc == 70 and b"locked" in err, "a locked database is refused")
        fcntl.flock(lock, fcntl.LOCK_UN)

    # Flip a byte inside a record of the first (sealed) segment.
    seg = sorted(n for n in os.listdir(data) if n.endswith(".kxd"))[0]
    with open(os.path.join(data, seg), "r+b") as f:
        f.seek(48 + 200)
        b = f.read(1)
        f.seek(48 + 200)
        f.write(bytes([b[0] ^ 0xFF]))
    rc, out, _ = run(data, "verify")
    check(rc == 2 and (b"corrupt record" in out or b"damaged record" in out), "verify finds a flipped byte and exits 2")

# Keys longer than 1 KiB: the server stores whatever its --max-key-bytes allows
# (up to 65535), so the tool must read them as records, not as corruption (it
# took them for damage, and opening the database truncated the active segment
# at the first one).
with tempfile.TemporaryDirectory() as data:
    long_key = "L" * 3000
    rc, _, _ = run(data, "put", long_key, stdin=b"long-key value")
    check(rc == 0, "put of a 3000-byte key")
    rc, _, _ = run(data, "put", "after", stdin=b"written after the long key")
    check(rc == 0, "put after the long key")
    rc, out, _ = run(data, "verify")
    check(rc == 0 and b"corrupt 0" in out, "verify accepts a 3000-byte key: %r" % out)
    rc, out, _ = run(data, "get", long_key)
    check(rc == 0 and out == b"long-key value", "the long key reads back after a reopen")
    rc, out, _ = run(data, "get", "after")
    check(rc == 0 and out == b"written after the long key", "the record after it survives the reopen")

# Binary and percent-encoded keys; list in the API's order and encoding; the
# reading commands open read-only and change nothing in the directory.
def quote(key):
    """The canonical spelling (http/key_spelling.h): unreserved bytes and '/' as themselves."""
    return "".join(chr(c) if (chr(c).isascii() and (chr(c).isalnum() or chr(c) in "-._~/")) else "%%%02X" % c
                   for c in key)


def snapshot(d):
    out = {}
    for root, dirs, files in os.walk(d):
        for name in [""] + dirs + files:
            p = os.path.join(root, name)
            st = os.lstat(p)
            data = open(p, "rb").read() if os.path.isfile(p) else None
            out[os.path.relpath(p, d)] = (st.st_mode, st.st_mtime_ns, st.st_ctime_ns, data)
    return out


with tempfile.TemporaryDirectory() as work:
    data = os.path.join(work, "db")
    keys = {b"plain": b"v-plain", b"\x00\xff binary/key": b"v-binary", b"100%+sure": b"v-percent",
            "caf\u00e9 \u2603".encode(): b"v-utf8", b"a/b/c": b"v-slash", b"line\nbreak": b"v-newline"}
    keyfile = os.path.join(work, "key")
    for i, (k, v) in enumerate(keys.items()):
        if i % 2 == 0:
            rc, out, err = run(data, "put", quote(k), stdin=v)
        else:
            with open(keyfile, "wb") as f:
                f.write(k)
            rc, out, err = run(data, "--key-file", keyfile, "put", stdin=v)
        check(rc == 0 and out.startswith(b"created"), "put of key %r: %r %r" % (k, out, err))
    for k, v in keys.items():
        rc, out, _ = run(data, "get", quote(k))
        check(rc == 0 and out == v, "get of %r by its canonical spelling" % k)
        rc, out, _ = run(data, "get", quote(k).lower() if "%" in quote(k) else quote(k))
        check(rc == 0 and out == v, "get of %r with lowercase escapes" % k)
    rc, out, _ = run(data, "get", "100%25%2Bsure")
    check(rc == 0 and out == b"v-percent", "escapes decode anywhere in the key")
    rc, out, err = run(data, "get", "bad%zz")
    check(rc == 64 and b"KEY" in err and b"%25" in err, "an invalid escape is a usage error naming KEY: %r" % err)

    before = snapshot(data)
    rc, out, err = run(data, "list", "--encoding", "url")
    lines = [json.loads(l) for l in out.decode().splitlines()]
    check(rc == 0 and [l["key"] for l in lines] == [quote(k) for k in sorted(keys)],
          "list --encoding url: byte order, canonical spelling: %r %r" % (out, err))
    check(all(l["size"] == len(keys[k]) and l["etag"].startswith('"') for l, k in zip(lines, sorted(keys))),
          "list entries carry size and etag as the API does")
    rc, out, _ = run(data, "list")
    lines = [json.loads(l) for l in out.decode().splitlines()]
    got = []
    for l in lines:
        if l.get("key_encoding") == "url":
            got.append(urllib.parse.unquote_to_bytes(l["key"]))
        else:
            got.append(l["key"].encode())
    check(got == sorted(keys), "list: UTF-8 keys as text, the others percent-encoded with key_encoding: %r" % lines)
    check([l.get("key_encoding") for l in lines] ==
          [None if k.decode("utf-8", "replace").encode() == k else "url" for k in sorted(keys)],
          "key_encoding marks exactly the keys that are not UTF-8")
    rc, out, _ = run(data, "list", "--prefix", "a", "--encoding", "url")
    check([json.loads(l)["key"] for l in out.decode().splitlines()] == ["a/b/c"], "list --prefix")
    rc, out, _ = run(data, "list", "--start-after", "a%2Fb%2Fc", "--limit", "2", "--encoding", "url")
    want = [quote(k) for k in sorted(keys) if k > b"a/b/c"][:2]
    check([json.loads(l)["key"] for l in out.decode().splitlines()] == want, "list --start-after --limit: %r" % out)
    rc, out, _ = run(data, "list", "--prefix", "%00", "--encoding", "url")
    check([json.loads(l)["key"] for l in out.decode().splitlines()] == ["%00%FF%20binary/key"], "binary prefix")
    rc, out, _ = run(data, "stat")
    check(rc == 0, "stat")
    rc, out, _ = run(data, "verify")
    check(rc == 0, "verify")
    check(snapshot(data) == before, "list/get/stat/verify changed nothing in the directory")

    # A read-only command on a directory without LOCK (a backup) creates none.
    os.unlink(os.path.join(data, "LOCK"))
    before = snapshot(data)
    rc, out, _ = run(data, "get", "plain")
    check(rc == 0 and out == b"v-plain", "get on a directory without LOCK")
    check(snapshot(data) == before and not os.path.exists(os.path.join(data, "LOCK")), "no LOCK created by get")
    # A directory held by a writer: every command refuses, saying so.
    with open(os.path.join(data, "LOCK"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        for args in (["get", "plain"], ["list"], ["stat"], ["verify"], ["put", "x"], ["delete", "plain"]):
            rc, _, err = run(data, *args)
            check(rc == 70 and b"locked" in err, "%s on a locked directory: %r %r" % (args, rc, err))
    rc, _, _ = run(data, "delete", quote(b"\x00\xff binary/key"))
    check(rc == 0, "delete of a binary key by its spelling")
    rc, _, _ = run(data, "get", quote(b"\x00\xff binary/key"))
    check(rc == 1, "the deleted binary key is gone")

# Kill points armed through the environment (a build with -Dkill_points=false exits 0 instead).
with tempfile.TemporaryDirectory() as data:
    rc, _, _ = run(data, "put", "kept", stdin=b"1")
    check(rc == 0, "put before the crash")
    env = dict(os.environ, KINGX_KILL_POINT="append.before_write")
    p = subprocess.run([TOOL, "--data", data, "put", "lost", "-"], input=b"2", env=env, capture_output=True,
                       timeout=60)
    if p.returncode == 0:
        print("kill points compiled out: skipping the crash checks")
    else:
        check(p.returncode == 137, "the armed kill point ends the process with 137 (got %d)" % p.returncode)
        rc, out, _ = run(data, "get", "kept")
        check(rc == 0 and out == b"1", "an acknowledged write survives the crash")
        rc, _, _ = run(data, "get", "lost")
        check(rc == 1, "a write killed before its write() is absent")
        env = dict(os.environ, KINGX_KILL_POINT="append.after_sync")
        p = subprocess.run([TOOL, "--data", data, "put", "synced", "-"], input=b"3", env=env,
                           capture_output=True, timeout=60)
        check(p.returncode == 137, "a kill after the fdatasync ends the process with 137")
        rc, out, _ = run(data, "get", "synced")
        check(rc == 0 and out == b"3", "a write killed after its fdatasync is there")
        rc, _, _ = run(data, "verify")
        check(rc == 0, "the crashed database verifies clean")

# Several keys in one delete: one open, every present key deleted, an absent one reported
# without stopping the rest (exit 1), percent-decoded like a single KEY; more keys than one batch.
with tempfile.TemporaryDirectory() as data:
    for k in ("a", "b", "c d", "e"):
        rc, _, _ = run(data, "put", urllib.parse.quote(k), stdin=k.encode())
        check(rc == 0, "put %r for the several-key delete" % k)
    rc, out, err = run(data, "delete", "a", "missing", "c%20d")
    check(rc == 1, "delete of several keys, one absent, exits 1 (got %d)" % rc)
    check(out.count(b"deleted seq") == 2 and b"not found" in err.lower(),
          "each deleted key reported, the absent one on stderr: %r %r" % (out, err))
    for k, want in (("a", 1), ("c%20d", 1), ("b", 0), ("e", 0)):
        rc, _, _ = run(data, "get", k)
        check(rc == want, "after the several-key delete, get %s exits %d (got %d)" % (k, want, rc))
    keys = ["many-%d" % i for i in range(2500)]
    for k in keys[:3]:
        run(data, "put", k, stdin=b"v")
    rc, out, err = run(data, "delete", "b", "e", *keys)
    check(rc == 1 and out.count(b"deleted seq") == 5, "a delete of 2,502 keys (5 present) deletes the 5 "
          "across batches and exits 1: rc %d, %d deleted" % (rc, out.count(b"deleted seq")))
    rc, out, _ = run(data, "stat", "--json")
    check(rc == 0 and json.loads(out)["keys"] == 0, "no key left after the several-key deletes: %r" % out)

# Usage errors are found before anything is opened: an unknown command, or a
# known one with operands it does not take, must not open the database
# read-write (recovery would run, rewrite the MANIFEST and the active hint, cut
# the zero room) only to print the usage; a number option out of its range is
# refused naming the option. Exit 64, the directory untouched, no LOCK created.
with tempfile.TemporaryDirectory() as data:
    for i in range(3):
        rc, _, _ = run(data, "put", "k%d" % i, stdin=b"v" * 300)
        check(rc == 0, "put before the usage errors")
    os.unlink(os.path.join(data, "LOCK"))  # as in a backup
    before = snapshot(data)
    for args in (["frobnicate"], ["verify", "extra"], ["put", "k", "a", "b"], ["stat", "x"], ["compact", "x"],
                 ["list", "x"], ["get", "k0", "x"], ["get"]):
        rc, out, err = run(data, *args)
        check(rc == 64 and b"usage" in err, "%s is a usage error (exit 64): %r %r" % (args, rc, err[-200:]))
        check(snapshot(data) == before, "%s changed nothing in the directory" % args)
    for value in ("-1", "99999999999999999999", "0", "1x", "", " 5", "+5"):
        rc, out, err = run(data, "list", "--limit", value)
        check(rc == 64 and b"--limit" in err and out == b"",
              "list --limit %r is refused naming the option: %r %r %r" % (value, rc, out, err[-200:]))
    rc, out, err = run(data, "list", "--limit")
    check(rc == 64 and b"--limit" in err, "list --limit without a value is refused naming it: %r %r" % (rc, err))
    # A known option with a wrong or missing value is named with what is wrong, not called unknown.
    for args, said in ((["list", "--encoding", "json"], b"--encoding: the only encoding is 'url', got 'json'"),
                       (["list", "--prefix"], b"--prefix: a value is missing"),
                       (["get", "--key-file"], b"--key-file: a value is missing")):
        rc, out, err = run(data, *args)
        check(rc == 64 and said in err and b"unknown option" not in err and out == b"",
              "%s is refused saying %r: %r %r" % (args, said, rc, err[-200:]))
    rc, out, err = run(data, "--compression-level", "-1", "stat")
    check(rc == 64 and b"--compression-level" in err, "a negative --compression-level is refused: %r %r" % (rc, err))
    check(snapshot(data) == before, "the refused options changed nothing in the directory")
    rc, out, _ = run(data, "list", "--limit", "2")
    check(rc == 0 and len(out.splitlines()) == 2, "list --limit 2 lists two keys: %r" % out)
    # An option given twice would have its last value win unseen (a second --data: another database).
    for twice in (["--data", data + "-other"], ["--segment-bytes", "8192"]):
        rc, out, err = run(data, *twice, "stat")
        check(rc == 64 and (twice[0] + ": given more than once").encode() in err and out == b"",
              "%s given twice is refused naming it: %r %r %r" % (twice[0], rc, out, err[-200:]))
    check(not os.path.exists(data + "-other"), "the refused second --data created nothing")
    check(snapshot(data) == before, "the refused options changed nothing in the directory")

# Sizes are written as kingx's settings take them (bytes, or with a K/M/G
# suffix): a value copied from kingx's configuration works here too, and a bad
# one is refused in kingx's words, naming the option.
with tempfile.TemporaryDirectory() as data:
    def sized(*args, stdin=b""):
        p = subprocess.run([TOOL, "--data", data, *args], input=stdin, capture_output=True, timeout=60)
        return p.returncode, p.stdout, p.stderr
    opts = ["--segment-bytes", "64K", "--disk-reserve-bytes", "1m", "--max-key-bytes", "1KiB", "--max-value-bytes", "48KB"]
    for i in range(4):
        rc, out, err = sized(*opts, "put", "s%d" % i, stdin=os.urandom(40000))
        check(rc == 0, "put with sizes given as 64K, 1m, 1KiB, 48KB: %r %r" % (rc, err[-200:]))
    segments = [os.path.getsize(os.path.join(data, n)) for n in os.listdir(data) if n.endswith(".kxd")]
    check(len(segments) >= 2 and max(segments) <= 64 << 10,
          "--segment-bytes 64K makes segments of at most 64 KiB: %r" % segments)
    rc, out, err = sized(*opts, "put", "big", stdin=b"x" * ((48 << 10) + 1))
    check(rc != 0 and rc != 64, "--max-value-bytes 48KB refuses a value one byte over: %r %r" % (rc, err[-200:]))
    rc, out, err = sized(*opts, "put", "k" * 1025, stdin=b"v")
    check(rc != 0 and rc != 64, "--max-key-bytes 1KiB refuses a 1025-byte key: %r %r" % (rc, err[-200:]))
    before = snapshot(data)
    for args, said in ((["--segment-bytes", "1X"], b"--segment-bytes: expected a size (bytes, or with a K/M/G suffix), got '1X'"),
                       (["--disk-reserve-bytes", "1.5M"], b"--disk-reserve-bytes: expected a size (bytes, or with a K/M/G suffix), got '1.5M'"),
                       (["--max-value-bytes", "-1"], b"--max-value-bytes: expected a size (bytes, or with a K/M/G suffix), got '-1'"),
                       (["--max-key-bytes", "4G"], b"--max-key-bytes: expected a size in [0, 4294967295] bytes, got '4G'"),
                       (["--max-value-bytes", "17179869184G"], b"--max-value-bytes: size overflows 64 bits: '17179869184G'")):
        rc, out, err = sized(*args, "stat")
        check(rc == 64 and said in err and out == b"", "%s is refused saying %r: %r %r" % (args, said, rc, err[-200:]))
    check(snapshot(data) == before, "the refused sizes changed nothing in the directory")

# verify of a directory that holds no database (an archive that extracted
# nothing, a wrong path) is not a clean database: exit 1 naming what is
# missing, and nothing is created there.
with tempfile.TemporaryDirectory() as data:
    with open(os.path.join(data, "notes.txt"), "w") as f:
        f.write("not a database")
    for label, d in (("empty", tempfile.mkdtemp(dir=data)), ("foreign", data)):
        before = snapshot(d)
        rc, out, err = run(d, "verify")
        check(rc == 1 and b"no database" in err and b"MANIFEST" in err,
              "verify of an %s directory exits 1 naming it: %r %r %r" % (label, rc, out, err[-200:]))
        check(snapshot(d) == before, "verify of an %s directory created nothing" % label)

# No command turns a directory that holds no database (a typo in --data, an
# archive that extracted nothing, a foreign directory) into one: every command
# but put exits 1 naming it, put refuses a directory that holds other files,
# and nothing is created or changed in any of them. put creates a database in
# a missing or an empty directory, after which every command finds it.
with tempfile.TemporaryDirectory() as work:
    foreign = os.path.join(work, "foreign")
    os.mkdir(foreign)
    with open(os.path.join(foreign, "notes.txt"), "w") as f:
        f.write("not a database")
    empty = os.path.join(work, "empty")
    os.mkdir(empty)
    missing = os.path.join(work, "missing")
    commands = [("get", "k"), ("delete", "k"), ("list",), ("stat",), ("compact",), ("compact", "--all"), ("verify",)]
    for label, d in (("foreign", foreign), ("empty", empty), ("missing", missing)):
        for cmd in commands + ([("put", "k")] if label == "foreign" else []):
            before = snapshot(work)
            rc, out, err = run(d, *cmd, stdin=b"v")
            check(rc == 1 and b"no database in " + d.encode() in err,
                  "%s on the %s directory exits 1 naming it: %r %r %r" % (" ".join(cmd), label, rc, out, err[-300:]))
            check(snapshot(work) == before, "%s on the %s directory changed nothing" % (" ".join(cmd), label))
    for label, d in (("empty", empty), ("missing", missing)):
        rc, out, err = run(d, "put", "k", stdin=b"v")
        check(rc == 0 and out.startswith(b"created"), "put creates a database in the %s directory: %r %r" % (label, rc, err))
        for cmd in commands:
            rc, out, err = run(d, *cmd)
            check(rc == 0,
                  "%s finds the database put created in the %s directory: %r %r" % (" ".join(cmd), label, rc, err[-300:]))
    os.mkdir(os.path.join(work, "lock-only"))
    open(os.path.join(work, "lock-only", "LOCK"), "w").close()  # an open that stopped before its first file
    rc, out, err = run(os.path.join(work, "lock-only"), "put", "k", stdin=b"v")
    check(rc == 0, "put creates a database where only a LOCK was left: %r %r" % (rc, err[-300:]))

# Offline compaction: the tool holds the LOCK, so nothing appends to the
# newest segment after it; it is compacted like any other (the next open
# appends to a fresh one), and stat --json's "active" names the segment the
# next open appends to.
def stat_json(data, segment_bytes):
    rc, out, err = run(data, "stat", "--json", segment_bytes=segment_bytes)
    check(rc == 0, "stat --json: %r" % err[-300:])
    return json.loads(out) if rc == 0 else {"per_segment": [], "dead_bytes": -1, "live_bytes": -1}


def active_ids(stat):
    return [g["id"] for g in stat["per_segment"] if g["active"]]


for all_flag in ([], ["--all"]):
    with tempfile.TemporaryDirectory() as data:
        big = "64M"  # one segment holds everything
        values = {}
        # With --all, one dead record in twenty-one (below the ratio); else three in five.
        rounds = [range(20), range(1)] if all_flag else [range(8), range(8), range(4)]
        for keys in rounds:
            for i in keys:
                values[i] = os.urandom(2000)
                rc, _, err = run(data, "put", "k%d" % i, stdin=values[i], segment_bytes=big)
                check(rc == 0, "put k%d: %r" % (i, err[-300:]))
        before = stat_json(data, big)
        what = "compact %s" % " ".join(all_flag)
        check(len(before["per_segment"]) == 1 and active_ids(before) == [before["per_segment"][0]["id"]],
              "%s: stat --json names the one segment as the active one (the next open appends to it): %r"
              % (what, before["per_segment"]))
        check(before["dead_bytes"] > 0, "%s: the newest segment holds dead records" % what)
        rc, out, err = run(data, "compact", *all_flag, segment_bytes=big)
        check(rc == 0 and out.startswith(b"compacted 1 segment(s) into "),
              "%s rewrites the newest segment: %r %r" % (what, out, err[-300:]))
        after = stat_json(data, big)
        check(after["dead_bytes"] == 0 and after["live_bytes"] == before["live_bytes"],
              "%s reclaims every dead byte of the newest segment: %r -> %r" % (what, before, after))
        old_ids = {g["id"] for g in before["per_segment"]}
        fresh = [g["id"] for g in after["per_segment"]
                 if g["id"] not in old_ids and g["live_bytes"] == 0 and g["dead_bytes"] == 0]
        check(len(fresh) == 1 and active_ids(after) == fresh,
              "%s: the next open appends to a fresh segment: %r" % (what, after["per_segment"]))
        for i, v in values.items():
            rc, out, _ = run(data, "get", "k%d" % i, segment_bytes=big)
            check(rc == 0 and out == v, "%s: k%d reads back" % (what, i))
        # Again: nothing dead, so nothing is copied (--all neither: a segment
        # without a dead byte has nothing to give back) and the empty active
        # segment stays; the segment files are the same files.
        def segment_files():
            return {n: os.stat(os.path.join(data, n)).st_ino for n in os.listdir(data) if n.endswith(".kxd")}
        files = segment_files()
        rc, out, _ = run(data, "compact", *all_flag, segment_bytes=big)
        again = stat_json(data, big)
        check(rc == 0 and out.startswith(b"compacted 0 segment(s)") and active_ids(again) == fresh and
              len(again["per_segment"]) == len(after["per_segment"]) and segment_files() == files,
              "%s again copies, seals and adds no segment: %r %r" % (what, out, again["per_segment"]))
        rc, out, err = run(data, "put", "later", stdin=b"after the compaction", segment_bytes=big)
        appended = stat_json(data, big)
        check(rc == 0 and active_ids(appended) == fresh and
              [g["live_bytes"] > 0 for g in appended["per_segment"] if g["id"] in fresh] == [True],
              "%s: the next put goes to the segment stat named active: %r" % (what, appended["per_segment"]))

# An absent key is said one way by every command that takes a KEY: the key as
# given (or --key-file's FILE), exit 1.
with tempfile.TemporaryDirectory() as work:
    data = os.path.join(work, "db")
    rc, _, _ = run(data, "put", "present", stdin=b"v")
    keyfile = os.path.join(work, "absent-key")
    with open(keyfile, "wb") as f:
        f.write(b"absent \x00 key")
    for cmd in (["get", "no%21such"], ["delete", "no%21such"]):
        rc, out, err = run(data, *cmd)
        check(rc == 1 and out == b"" and err == b"kingx-tool: no%21such: not found\n",
              "%s of an absent key: %r %r %r" % (cmd[0], rc, out, err))
        rc, out, err = run(data, "--key-file", keyfile, cmd[0])
        check(rc == 1 and out == b"" and err == b"kingx-tool: " + keyfile.encode() + b": not found\n",
              "%s --key-file of an absent key names the file: %r %r %r" % (cmd[0], rc, out, err))
    rc, out, err = run(data, "delete", "gone", "present")
    check(rc == 1 and out.startswith(b"deleted seq") and err == b"kingx-tool: gone: not found\n",
          "delete of an absent and a present key: %r %r %r" % (rc, out, err))

print("%d failure(s)" % len(failures))
sys.exit(1 if failures else 0)
