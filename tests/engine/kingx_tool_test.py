#!/usr/bin/env python3
"""Black-box test of kingx-tool: put/get/delete/stat/verify, exit codes, the LOCK.

Usage: kingx_tool_test.py PATH_TO_KINGX_TOOL
"""
import fcntl
import json
import os
import subprocess
import sys
import tempfile

TOOL = sys.argv[1]
failures = []


def run(data, *args, stdin=b""):
    p = subprocess.run([TOOL, "--data", data, "--segment-bytes", "4096", *args], input=stdin,
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
    check(rc == 2 and b"corrupt record" in out, "verify finds a flipped byte and exits 2")

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

print("%d failure(s)" % len(failures))
sys.exit(1 if failures else 0)
