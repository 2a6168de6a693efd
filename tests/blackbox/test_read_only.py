"""Serving a copy without changing it: `kingx --read-only --data DIR`.

A read-write server makes a database (binary keys, deletes, several
segments, one value large enough for its own segment); copies of its
directory are then served read-only:
  - a clean copy (with its sorted key view keys/),
  - a copy of a directory left by kill -9, with a torn tail appended to the
    newest segment, a staging file and an orphan hint (what a read-write open
    cleans up or cuts), and without keys/.
Each is served with reads, HEAD, listing (all pages, both encodings; the
clean copy's valid keys/ is used where it is, without a rebuild from the
segments; the other has to be rebuilt),
refused writes (405, Allow: GET, HEAD, a problem body naming --read-only),
a refused /admin/compact, SIGHUP and a stop; afterwards every entry of the
directory (files and directories, recursively) has the same bytes, mode,
mtime and ctime, and no entry was added or removed. Also: `-t --read-only`
changes nothing; kingx-tool's list/get/stat on the kill -9 copy change
nothing; a read-only server refuses a directory a read-write server
holds and the reverse; two read-only servers share one directory; the
scratch directory a killed read-only server left is removed by the next
read-only start (unless its owner lives or its lock is held).

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_read_only.py [--model threads]
"""

import argparse
import fcntl
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

from kingx_harness import Conn, ConnectionClosed, Server, TestFailure, check, http, key_path, run_cases

ARGS = None
WORK = tempfile.mkdtemp(prefix="kingx-ro-test-")
CLEAN = None    # a cleanly stopped server's directory
CRASHED = None  # a directory left by kill -9, made untidy
model = {}      # key bytes -> value bytes (both directories hold it)
rng = random.Random(21)


def snapshot(d):
    """{relative path: (kind, mode, mtime_ns, ctime_ns, bytes or None)} of d and everything under it."""
    def entry(p):
        st = os.lstat(p)
        data = None
        if os.path.isfile(p) and not os.path.islink(p):
            with open(p, "rb") as f:
                data = f.read()
        return (st.st_mode, st.st_mtime_ns, st.st_ctime_ns, data)
    out = {".": entry(d)}
    for root, dirs, files in os.walk(d):
        for name in dirs + files:
            p = os.path.join(root, name)
            out[os.path.relpath(p, d)] = entry(p)
    return out


def check_unchanged(before, after, what):
    added, removed = sorted(set(after) - set(before)), sorted(set(before) - set(after))
    check(not added and not removed, f"{what}: entries added {added}, removed {removed}")
    for rel, b in before.items():
        a = after[rel]
        check(a[0] == b[0], f"{what}: {rel}: mode changed")
        check(a[3] == b[3], f"{what}: {rel}: bytes changed")
        check(a[1] == b[1], f"{what}: {rel}: mtime changed ({b[1]} -> {a[1]})")
        check(a[2] == b[2], f"{what}: {rel}: ctime changed")


def list_all(port, encoding_url):
    """Every key of the listing, pages of 97, waiting out the 503s of the view's build (bounded)."""
    keys, cursor = [], None
    deadline = time.monotonic() + 120
    while True:
        q = "limit=97" + ("&encoding=url" if encoding_url else "") + (f"&cursor={cursor}" if cursor else "")
        r = http(port, "GET", "/v1/kv/?" + q)
        if r.status == 503 and cursor is None and time.monotonic() < deadline:
            time.sleep(0.1)
            continue
        check(r.status == 200, f"listing: {r!r}")
        b = r.json()
        keys += [e["key"] for e in b["keys"]]
        if b["list_complete"]:
            return keys
        cursor = b["cursor"]


def fill(port):
    with Conn(port) as c:
        for i in range(300):
            k = bytes(rng.choice(b"ab/\x00\xff%+~") for _ in range(rng.randint(1, 6))) + b"%d" % i
            v = rng.randbytes(rng.randint(0, 3000))
            r = c.request("PUT", key_path(k), v)
            check(r.status in (201, 204), f"{r!r}")
            model[k] = v
        big = b"big/value"
        model[big] = rng.randbytes(1_500_000)  # a value with a segment of its own
        check(c.request("PUT", key_path(big), model[big]).status in (201, 204), "large PUT")
        for k in list(model)[:40]:
            check(c.request("DELETE", key_path(k)).status == 204, "delete")
            del model[k]


def setup():
    global CLEAN, CRASHED
    src = Server(["--segment-bytes", "65536", "--model", ARGS.model], workdir=os.path.join(WORK, "src"))
    try:
        src.start()
        fill(src.port)
        # Make sure the sorted view has runs on disk before the clean stop.
        list_all(src.port, True)
        check(src.stop() == 0, "clean stop")
        CLEAN = os.path.join(WORK, "clean")
        shutil.copytree(src.data_dir, CLEAN, symlinks=True)
        check(os.path.isdir(os.path.join(CLEAN, "keys")), "the clean copy has keys/")
        src.start()
        with Conn(src.port) as c:  # a few more writes, then kill -9
            for i in range(20):
                k = b"late/%d" % i
                model[k] = b"late value %d" % i
                check(c.request("PUT", key_path(k), model[k]).status in (201, 204), "late PUT")
        src.kill_group()
        CRASHED = os.path.join(WORK, "crashed")
        shutil.copytree(src.data_dir, CRASHED, symlinks=True)
    finally:
        src.cleanup()
    shutil.rmtree(os.path.join(CRASHED, "keys"), ignore_errors=True)
    # What a read-write open would clean up or cut.
    segs = sorted(n for n in os.listdir(CRASHED) if n.endswith(".kxd"))
    newest = max(segs, key=lambda n: os.path.getmtime(os.path.join(CRASHED, n)))
    with open(os.path.join(CRASHED, newest), "ab") as f:
        f.write(b"\x01torn tail: half a record")
    with open(os.path.join(CRASHED, "large-7.tmp"), "wb") as f:
        f.write(b"staging")
    with open(os.path.join(CRASHED, "seg-09999999.hint"), "wb") as f:
        f.write(b"orphan")
    # Let time stamps set above settle into the past, so that any later change shows.
    time.sleep(0.05)


def clean_model():
    return {k: v for k, v in model.items() if not k.startswith(b"late/")}


def metric(port, name):
    r = http(port, "GET", "/metrics")
    check(r.status == 200, f"metrics: {r!r}")
    for line in r.body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise TestFailure(f"{name} not in /metrics")


def serve_and_check(data_dir, want, rebuilds):
    """`rebuilds`: how many times the sorted key view must have been built from the
    segments (0 when the directory's own keys/ is valid and reused)."""
    before = snapshot(data_dir)
    s = Server(["--read-only", "--model", ARGS.model, "--workers", "2"],
               data_dir=data_dir, workdir=tempfile.mkdtemp(prefix="srv-", dir=WORK), admin=True)
    try:
        s.start()
        admin = s.admin_port
        with Conn(s.port) as c:
            for k, v in want.items():
                r = c.request("GET", key_path(k))
                check(r.status == 200 and r.body == v, f"GET {k!r}: {r!r}")
            k = next(iter(want))
            r = c.request("HEAD", key_path(k))
            check(r.status == 200 and r.header("Content-Length") == str(len(want[k])), f"HEAD: {r!r}")
            check(c.request("GET", key_path(b"never-written")).status == 404, "404")
            for method, body in (("PUT", b"v"), ("DELETE", None), ("PUT", b"x" * 200_000)):
                r = c.request(method, key_path(b"a"), body)
                check(r.status == 405 and r.header("Allow") == "GET, HEAD", f"{method}: {r!r}")
                check(r.header("Content-Type") == "application/problem+json", f"{r!r}")
                check("--read-only" in r.json().get("detail", ""), f"{r!r}")
        got = [urllib.parse.unquote_to_bytes(k) for k in list_all(s.port, True)]
        check(got == sorted(want), f"listing (encoding=url): {len(got)} keys, want {len(want)}")
        check(len(list_all(s.port, False)) == len(want), "listing (default encoding)")
        got_rebuilds = metric(s.port, "kingx_keyspace_rebuilds_total")
        check(got_rebuilds == rebuilds, f"key view rebuilt from the segments {got_rebuilds:g} times, want {rebuilds}")
        r = http(admin, "POST", "/admin/compact", b"")
        check(r.status == 409 and "--read-only" in r.json().get("detail", ""), f"compact: {r!r}")
        r = http(s.port, "GET", "/metrics")
        check(r.status == 200, "metrics")
        # A reload starts new workers; the directory still does not change.
        s.signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while "reload done" not in s.logs() and time.monotonic() < deadline:
            time.sleep(0.05)
        check("reload done" in s.logs(), "reload")
        s.wait_ready()
        # An old worker may still take a connection while it drains: it answers
        # with "Connection: close", or closes an idle one before reading a
        # request that raced with the close. A client then connects again (and
        # sends an idempotent request again when the close came before any
        # byte of its response, RFC 9112 section 9.3.1) — once per GET here.
        c = Conn(s.port)
        try:
            for k, v in list(want.items())[:50]:
                try:
                    r = c.request("GET", key_path(k))
                except ConnectionClosed as e:
                    if e.partial != 0:
                        raise
                    c.close()
                    c = Conn(s.port)
                    r = c.request("GET", key_path(k))
                check(r.status == 200 and r.body == v, f"GET after HUP {k!r}: {r!r}")
                if (r.header("Connection") or "").lower() == "close":
                    c.close()
                    c = Conn(s.port)
        finally:
            c.close()
        scratch = [l for l in s.logs().splitlines() if "read-only: serving" in l]
        check(scratch, "the start says where the key view is kept")
        check(s.stop() == 0, "clean stop")
        leftover = [n for n in os.listdir(tempfile.gettempdir()) if n.startswith(f"kingx-ro-keys-{s.pid}-")]
        check(not leftover, f"scratch directories left: {leftover}")
    finally:
        s.cleanup()
    check_unchanged(before, snapshot(data_dir), data_dir)


def test_a_clean_copy_is_served_without_a_change():
    serve_and_check(CLEAN, clean_model(), rebuilds=0)  # its keys/ is read where it is


def test_a_directory_left_by_kill_9_with_a_torn_tail_and_no_keys_view_is_served_without_a_change():
    serve_and_check(CRASHED, model, rebuilds=1)


def test_config_check_changes_nothing():
    before = snapshot(CRASHED)
    bin_ = Server().bin
    r = subprocess.run([bin_, "-t", "--read-only", "--data", CRASHED], capture_output=True, timeout=60)
    check(r.returncode == 0, f"-t --read-only: {r!r}")
    check_unchanged(before, snapshot(CRASHED), "-t")
    missing = os.path.join(WORK, "absent")
    r = subprocess.run([bin_, "-t", "--read-only", "--data", missing], capture_output=True, timeout=60)
    check(r.returncode != 0 and b"--read-only" in r.stdout + r.stderr, f"-t on a missing dir: {r!r}")
    check(not os.path.exists(missing), "-t --read-only created the directory")


def test_read_only_and_read_write_servers_exclude_each_other():
    d = os.path.join(WORK, "held")
    shutil.copytree(CLEAN, d, symlinks=True)
    rw = Server(["--model", ARGS.model], data_dir=d, workdir=tempfile.mkdtemp(prefix="rw-", dir=WORK))
    try:
        rw.start()
        ro = Server(["--read-only", "--model", ARGS.model], data_dir=d, workdir=tempfile.mkdtemp(prefix="ro-", dir=WORK))
        try:
            ro.start(wait=False)
            status = ro.wait_exit(30)
            check(status not in (None, 0), f"read-only on a held directory: exit {status}")
            check("read-write" in ro.logs() and "--read-only" in ro.logs(), f"{ro.logs()[-600:]}")
        finally:
            ro.cleanup()
    finally:
        rw.cleanup()
    before = snapshot(d)
    ro1 = Server(["--read-only", "--model", ARGS.model], data_dir=d, workdir=tempfile.mkdtemp(prefix="ro1-", dir=WORK))
    ro2 = Server(["--read-only", "--model", ARGS.model], data_dir=d, workdir=tempfile.mkdtemp(prefix="ro2-", dir=WORK))
    try:
        ro1.start()
        ro2.start()  # read-only servers share a directory
        k = next(iter(clean_model()))
        for s in (ro1, ro2):
            r = http(s.port, "GET", key_path(k))
            check(r.status == 200 and r.body == model[k], f"{r!r}")
        rw = Server(["--model", ARGS.model], data_dir=d, workdir=tempfile.mkdtemp(prefix="rw2-", dir=WORK))
        try:
            rw.start(wait=False)
            status = rw.wait_exit(30)
            check(status not in (None, 0), f"read-write on a directory served read-only: exit {status}")
            check("read-only" in rw.logs(), f"{rw.logs()[-600:]}")
        finally:
            rw.cleanup()
    finally:
        ro1.cleanup()
        ro2.cleanup()
    check_unchanged(before, snapshot(d), "shared read-only")


def test_kingx_tool_reading_commands_change_nothing():
    tool = os.environ.get("KINGX_TOOL_BIN")
    check(tool, "KINGX_TOOL_BIN is set by meson")
    before = snapshot(CRASHED)
    run = lambda *a: subprocess.run([tool, "--data", CRASHED, *a], capture_output=True, timeout=120)
    r = run("list", "--encoding", "url")
    got = [urllib.parse.unquote_to_bytes(json.loads(l)["key"]) for l in r.stdout.decode().splitlines()]
    check(r.returncode == 0 and got == sorted(model), f"tool list: {r.returncode} {r.stderr[-300:]!r}")
    k = next(k for k in model if b"\xff" in k or b"\x00" in k)
    r = run("get", urllib.parse.quote(k, safe="/-._~"))
    check(r.returncode == 0 and r.stdout == model[k], f"tool get {k!r}: {r.stderr[-300:]!r}")
    check(run("stat").returncode == 0, "tool stat")
    check_unchanged(before, snapshot(CRASHED), "kingx-tool list/get/stat")


def test_the_active_segments_preallocated_room_is_counted_as_no_bytes_live_or_dead():
    """engine/FORMAT.md: the segment byte counts the server reports describe the records only,
    never the room. A database where nothing was overwritten or deleted, stopped cleanly with
    zeros after its last record, has no dead bytes for a read-only server nor for
    `kingx-tool stat`, whose segment bytes are its records (live bytes + the 48-byte header)."""
    tool = os.environ.get("KINGX_TOOL_BIN")
    check(tool, "KINGX_TOOL_BIN is set by meson")
    src = Server(["--segment-bytes", "1M", "--model", ARGS.model], workdir=tempfile.mkdtemp(prefix="room-", dir=WORK))
    try:
        src.start()
        with Conn(src.port) as c:
            for i in range(40):
                check(c.request("PUT", f"/v1/kv/room/{i}", rng.randbytes(10_000)).status == 201, "PUT")
        live = metric(src.port, "kingx_engine_live_bytes")
        check(metric(src.port, "kingx_engine_dead_bytes") == 0, "dead bytes before the stop")
        check(src.stop() == 0, "clean stop")
        segs = sorted(n for n in os.listdir(src.data_dir) if n.endswith(".kxd"))
        check(len(segs) == 1, f"one segment: {segs}")
        size = os.path.getsize(os.path.join(src.data_dir, segs[0]))
        check(size > live + 48, f"no room after the records to count ({size} B file, {live:.0f} live bytes)")
        r = subprocess.run([tool, "--data", src.data_dir, "stat", "--json"], capture_output=True, timeout=60)
        check(r.returncode == 0, f"tool stat: {r.returncode} {r.stderr[-300:]!r}")
        st = json.loads(r.stdout)
        seg = st["per_segment"][0]
        check(st["dead_bytes"] == 0 and seg["dead_bytes"] == 0 and seg["bytes"] == live + 48,
              f"kingx-tool stat counts the {size - live - 48:.0f} B of room: {st}")
        ro = Server(["--read-only", "--model", ARGS.model], data_dir=src.data_dir,
                    workdir=tempfile.mkdtemp(prefix="srv-", dir=WORK))
        try:
            ro.start()
            got = (metric(ro.port, "kingx_engine_live_bytes"), metric(ro.port, "kingx_engine_dead_bytes"))
            check(got == (live, 0), f"read-only server (live, dead) bytes {got}, want ({live:.0f}, 0)")
            check(ro.stop() == 0, "clean stop")
        finally:
            ro.cleanup()
    finally:
        src.cleanup()


def test_a_scratch_directory_left_by_a_killed_read_only_server_is_removed_by_the_next_start():
    """kill -9 leaves the key view's scratch directory; the next read-only start removes it,
    but never one whose master still runs or whose lock is held."""
    tmp = tempfile.mkdtemp(prefix="tmpdir-", dir=WORK)
    old_tmpdir = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = tmp
    held_fd = None
    try:
        live = os.path.join(tmp, f"kingx-ro-keys-{os.getpid()}-live00")  # this process runs
        os.mkdir(live)
        done = subprocess.Popen(["true"])
        done.wait()
        held = os.path.join(tmp, f"kingx-ro-keys-{done.pid}-held00")  # dead owner, lock still held
        os.mkdir(held)
        held_fd = os.open(held, os.O_RDONLY)
        fcntl.flock(held_fd, fcntl.LOCK_EX)
        first = Server(["--read-only", "--model", ARGS.model], data_dir=CLEAN,
                       workdir=tempfile.mkdtemp(prefix="srv-", dir=WORK))
        try:
            first.start()
            left = [n for n in os.listdir(tmp) if n.startswith(f"kingx-ro-keys-{first.proc.pid}-")]
            check(len(left) == 1, f"the first server's scratch directory: {os.listdir(tmp)}")
            first.kill_group()
        finally:
            first.cleanup()
        check(os.path.isdir(os.path.join(tmp, left[0])), "kill -9 leaves the scratch directory")
        second = Server(["--read-only", "--model", ARGS.model], data_dir=CLEAN,
                        workdir=tempfile.mkdtemp(prefix="srv-", dir=WORK))
        try:
            second.start()
            names = sorted(os.listdir(tmp))
            check(left[0] not in names, f"the killed server's scratch directory is still there: {names}")
            check(os.path.isdir(live) and os.path.isdir(held), f"a live or locked directory was removed: {names}")
            mine = [n for n in names if n.startswith(f"kingx-ro-keys-{second.proc.pid}-")]
            check(len(mine) == 1, f"the second server's scratch directory: {names}")
            check(second.stop() == 0, "clean stop")
        finally:
            second.cleanup()
        names = sorted(os.listdir(tmp))
        check(names == sorted([os.path.basename(live), os.path.basename(held)]), f"left in TMPDIR: {names}")
    finally:
        if held_fd is not None:
            os.close(held_fd)
        if old_tmpdir is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = old_tmpdir


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="event")
    ARGS = ap.parse_args()
    try:
        setup()
        cases = [(n[5:], f) for n, f in globals().items() if n.startswith("test_") and callable(f)]
        return run_cases(f"read-only serving ({ARGS.model})", cases, None)
    except TestFailure as e:
        print(f"FAIL setup: {e}", flush=True)
        print("read-only serving: 0 passed, 1 failed", flush=True)
        return 1
    finally:
        if os.environ.get("KINGX_KEEP") != "1":
            shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
