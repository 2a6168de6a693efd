"""A full disk, seen from outside, with the default settings: the data
directory is a 64 MiB tmpfs mounted by this test (root; the test is skipped
with a message saying so when mounting is impossible).

  - fill_refuse_recover: 1 MiB PUTs until the disk is full. Every PUT answers
    2xx (and its value reads back) or 507 (and the key stays absent): never a
    2xx for data that was not stored; reads answer 200 throughout. While full,
    /readyz is 503 with the reason, /metrics says kingx_disk_full 1, and every
    refused write is counted in rate-limited error lines. A restart on the full
    disk (TERM, then kill -9) serves every value. Deleting half the keys makes
    writes succeed again within 60 s with nothing else done, /readyz 200.
  - small_values: the same with 20 KiB values, so that every segment (the
    active one too) holds live and dead records once half the keys are
    deleted: compaction must copy live records on a disk with no room but
    the reserve.
  - spilled_uploads_leave_the_reserve: 75 uploads of 1 MiB stall one byte
    short, so each worker moves their bodies to spill files in the data
    directory (--body-spill-bytes): those files must stay out of the writer's
    disk reserve, kept for compaction and deletes; the disk keeps its reserve
    free and every DELETE is accepted beside them.
  - another_process_fills_the_disk: a file written by this test (not kingx)
    takes all but 256 KiB above the reserve; 20 ms later (long after the filler's
    last byte, far less than a second) 4 KiB PUTs on one connection until
    refused: each one's free space stays at or above the reserve (one page of
    slack for the file system's rounding), i.e. the writer's estimate of the
    free space did not miss what the other process wrote; then the filler
    goes and PUTs are accepted again with no restart.
  - offline_compact_all: full disk, server stopped, half the keys deleted and
    `kingx-tool compact --all` run with its defaults: the space comes back,
    and the server restarted on it accepts writes at once.

    KINGX_BIN=build/src/kingx KINGX_TOOL_BIN=build/engine/tool/kingx-tool \\
        python3 tests/blackbox/test_disk_full.py
"""

import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from kingx_harness import (SKIP, Conn, ConnectionClosed, Server, TestFailure, build_request, check, http, key_path,
                           run_cases)

DISK = "64m"
RESUME_LIMIT_S = 60.0
rng = random.Random(11)
current = None  # the Server in use, for run_cases' log dumps
WORKDIRS = []


class Tmpfs:
    """A tmpfs of DISK bytes mounted at <workdir>/data; unmounted by close()."""

    def __init__(self):
        self.workdir = tempfile.mkdtemp(prefix="kingx-diskfull-")
        self.path = os.path.join(self.workdir, "data")
        os.makedirs(self.path)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK},mode=0700", "tmpfs", self.path],
                           capture_output=True, text=True)
        self.mounted = r.returncode == 0
        self.error = (r.stderr or r.stdout).strip()

    def free(self):
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def close(self):
        if self.mounted:
            for args in (["umount", self.path], ["umount", "-l", self.path]):
                if subprocess.run(args, capture_output=True).returncode == 0:
                    break
            self.mounted = False
        WORKDIRS.append(self.workdir)  # removed at exit: run_cases still prints the logs of a failure


def can_mount():
    t = Tmpfs()
    ok, err = t.mounted, t.error
    t.close()
    shutil.rmtree(WORKDIRS.pop(), ignore_errors=True)
    return ok, err


def start_server(disk, wait_ready=True):
    global current
    s = Server(workdir=disk.workdir, data_dir=disk.path)
    current = s
    s.start(wait=wait_ready)
    return s


def wait_serving(s, key, value, timeout=30.0):
    """After a restart on a full disk /readyz stays 503: wait until `key` reads back."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        check(s.alive(), "kingx exited after a restart on the full disk:\n" + s.logs())
        try:
            r = http(s.port, "GET", key_path(key), timeout=2.0)
            last = r.status
            if r.status == 200:
                check(r.body == value, f"{key} read back wrong bytes after the restart")
                return
        except (OSError, ConnectionClosed) as e:
            last = repr(e)
        time.sleep(0.1)
    raise TestFailure(f"no GET 200 within {timeout}s of a restart on the full disk (last: {last}):\n" + s.logs())


def metric(port, name):
    body = http(port, "GET", "/metrics").body.decode()
    m = re.search(r"^" + re.escape(name) + r" (\S+)$", body, re.M)
    check(m is not None, f"/metrics has no {name}")
    return float(m.group(1))


def deleted_mappings(s):
    """[(pid, line)] of the server's processes that still map a deleted segment file."""
    out = []
    for pid in s.group_pids():
        try:
            with open(f"/proc/{pid}/maps") as f:
                out += [(pid, l.strip()) for l in f if ".kxd (deleted)" in l]
        except OSError:
            pass
    return out


def refused_lines(s):
    with open(s.error_log, encoding="utf-8", errors="replace") as f:
        lines = [l for l in f if "write(s) refused" in l]
    for l in lines:
        check("[error]" in l, f"refused writes logged below error level: {l!r}")
    return lines


def refused_in_log(s):
    return sum(int(re.search(r"(\d+) write\(s\) refused", l).group(1)) for l in refused_lines(s))


class Store:
    """What the client knows: acknowledged values; keys refused with 507."""

    def __init__(self):
        self.acked = {}
        self.refused = []

    def verify(self, port, what):
        with Conn(port, timeout=30) as c:
            for k, v in self.acked.items():
                r = c.request("GET", key_path(k))
                check(r.status == 200 and r.body == v,
                      f"{what}: {k} answered {r.status} ({len(r.body)} bytes), expected its {len(v)} bytes")
            for k in self.refused:
                if k in self.acked:
                    continue
                r = c.request("GET", key_path(k))
                check(r.status == 404, f"{what}: {k} was answered 507 but now answers {r.status}")


def fill(s, store, prefix, size, limit):
    """PUTs of `size` random bytes until three 507 in a row. Every answer is
    2xx or 507; after each, a random acknowledged key must read back."""
    refusals = 0
    with Conn(s.port, timeout=30) as c, Conn(s.port, timeout=30) as reader:
        for i in range(limit):
            k = f"{prefix}-{i:05d}"
            v = rng.randbytes(size)
            r = c.request("PUT", key_path(k), v)
            if r.status in (201, 204):
                store.acked[k] = v
                refusals = 0
            else:
                check(r.status == 507, f"PUT {k} on a filling disk answered {r.status}: {r.body[:300]!r}")
                check(b"full" in r.body, f"a 507 without the reason: {r.body!r}")
                store.refused.append(k)
                g = reader.request("GET", key_path(k))
                check(g.status == 404, f"{k} was refused with 507 but GET answers {g.status}")
                refusals += 1
                if refusals >= 3:
                    return
            if store.acked:
                rk = rng.choice(list(store.acked))
                g = reader.request("GET", key_path(rk))
                check(g.status == 200 and g.body == store.acked[rk],
                      f"GET {rk} while filling the disk: {g.status}, {len(g.body)} bytes")
    raise TestFailure(f"the {DISK} disk never filled after {limit} PUTs of {size} bytes")


def check_full_reported(s, store):
    r = http(s.port, "GET", "/readyz")
    check(r.status == 503 and b"full" in r.body, f"/readyz on a full disk: {r!r}")
    check(metric(s.port, "kingx_disk_full") == 1, "kingx_disk_full is not 1 on a full disk")
    check(metric(s.port, "kingx_disk_reserve_bytes") > 0, "no disk reserve by default")
    # A burst of refused writes: every one is counted in the error log, in
    # fewer lines than writes (rate-limited).
    with Conn(s.port, timeout=30) as c:
        for i in range(40):
            k = f"burst-{i}"
            r = c.request("PUT", key_path(k), rng.randbytes(1 << 20))
            check(r.status == 507, f"PUT {k} on the full disk answered {r.status}")
            store.refused.append(k)
    total = metric(s.port, "kingx_writes_refused_no_space_total")
    check(total >= 43, f"kingx_writes_refused_no_space_total is {total} after 43+ refused writes")
    deadline = time.monotonic() + 5
    while refused_in_log(s) < total and time.monotonic() < deadline:
        time.sleep(0.2)
    logged = refused_in_log(s)
    check(logged == total, f"the error log counts {logged} refused writes, /metrics {total}")
    check(len(refused_lines(s)) < 20, f"{len(refused_lines(s))} log lines for {total} refusals: not rate-limited")
    # A client that waits for "100 Continue" hears 507 before it sends a body
    # that has no room (the writer's refusal count is not involved).
    with Conn(s.port, timeout=30) as c:
        c.send(build_request("PUT", key_path("expect-full"), None,
                             [("Content-Length", str(1 << 20)), ("Expect", "100-continue")]))
        r = c.read_response()
        check(r.status == 507, f"a PUT with Expect: 100-continue on the full disk first got {r.status}")
        check(c.wait_closed(10) == "closed", "the connection stayed open for a body that was never invited")
    store.refused.append("expect-full")
    # Reads go on.
    k = next(iter(store.acked))
    check(http(s.port, "GET", key_path(k)).body == store.acked[k], "a read failed on the full disk")


def restart_on_full_disk(s, store):
    k, v = next(iter(store.acked.items()))
    check(s.stop() == 0, "kingx did not stop cleanly on the full disk")
    s.start(wait=False)
    wait_serving(s, k, v)
    deadline = time.monotonic() + 10
    r = http(s.port, "GET", "/readyz")
    while b"full" not in r.body and time.monotonic() < deadline:  # while the writer recovers: 503 too
        check(r.status == 503, f"/readyz while a writer opens on the full disk: {r!r}")
        time.sleep(0.05)
        r = http(s.port, "GET", "/readyz")
    check(r.status == 503 and b"full" in r.body, f"/readyz after a restart on the full disk: {r!r}")
    store.verify(s.port, "after a restart on the full disk")
    s.kill_group()
    s.start(wait=False)
    wait_serving(s, k, v)
    store.verify(s.port, "after kill -9 and a restart on the full disk")


def delete_half_and_resume(s, store, disk, size):
    free_before = disk.free()
    keys = sorted(store.acked)
    with Conn(s.port, timeout=30) as c:
        for k in keys[::2]:
            r = c.request("DELETE", key_path(k))
            check(r.status == 204, f"DELETE {k} on the full disk answered {r.status}: {r.body[:200]!r}")
            del store.acked[k]
    t0 = time.monotonic()
    attempts = 0
    while True:
        attempts += 1
        k = f"after-{attempts}"
        v = rng.randbytes(size)
        r = http(s.port, "PUT", key_path(k), v, timeout=30)
        if r.status in (201, 204):
            store.acked[k] = v
            break
        check(r.status == 507, f"PUT {k} after the deletes answered {r.status}")
        store.refused.append(k)
        check(time.monotonic() - t0 < RESUME_LIMIT_S,
              f"writes still refused {RESUME_LIMIT_S}s after half the data was deleted "
              f"(free {disk.free()} bytes, was {free_before}; files: {len(os.listdir(disk.path))})")
        time.sleep(0.5)
    elapsed = time.monotonic() - t0
    print(f"  writes resumed {elapsed:.1f}s after deleting half the keys ({attempts} attempt(s)); "
          f"free {free_before} -> {disk.free()} bytes", flush=True)
    deadline = time.monotonic() + 10
    while http(s.port, "GET", "/readyz").status != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    r = http(s.port, "GET", "/readyz")
    check(r.status == 200, f"/readyz once writes work again: {r!r}")
    check(metric(s.port, "kingx_disk_full") == 0, "kingx_disk_full still 1 once writes work again")
    # No process keeps the space of deleted segments (this client only wrote
    # since the deletes: no GET went through the workers). Compaction may go on
    # deleting segments meanwhile, each mapped until the workers' next sweep:
    # what is checked is that every deleted segment mapped now is let go, not
    # that none is mapped at one instant.
    held = set(deleted_mappings(s))
    deadline = time.monotonic() + 10
    while held and time.monotonic() < deadline:
        time.sleep(0.1)
        held &= set(deleted_mappings(s))
    check(not held, f"deleted segments still mapped after 10 s: {sorted(held)[:4]}")
    # Compaction goes on freeing what the deletes made dead.
    deadline = time.monotonic() + RESUME_LIMIT_S
    while disk.free() < free_before + len(keys) // 2 * size * 0.6 and time.monotonic() < deadline:
        time.sleep(0.5)
    check(disk.free() >= free_before + len(keys) // 2 * size * 0.6,
          f"deleting {len(keys) // 2} x {size} bytes freed only {disk.free() - free_before} bytes")
    store.verify(s.port, "after the deletes")


def full_disk_case(size, limit):
    disk = Tmpfs()
    s = None
    try:
        check(disk.mounted, f"mount tmpfs: {disk.error}")
        s = start_server(disk)
        store = Store()
        fill(s, store, "fill", size, limit)
        stored = sum(len(v) for v in store.acked.values())
        print(f"  {len(store.acked)} values ({stored} bytes) stored before 507; free {disk.free()} bytes",
              flush=True)
        check(stored >= 40 << 20, f"only {stored} bytes stored on a {DISK} disk: the reserve is too large")
        check_full_reported(s, store)
        restart_on_full_disk(s, store)
        delete_half_and_resume(s, store, disk, size)
        store.verify(s.port, "at the end")
    finally:
        if s is not None:
            s.stop()
        disk.close()


def test_fill_refuse_recover():
    full_disk_case(1 << 20, 200)


def test_small_values():
    full_disk_case(20 << 10, 10000)


def test_spilled_uploads_leave_the_reserve():
    disk = Tmpfs()
    s = None
    socks = []
    try:
        check(disk.mounted, f"mount tmpfs: {disk.error}")
        s = start_server(disk)
        with Conn(s.port) as c:
            for i in range(3000):
                check(c.request("PUT", key_path(f"d{i}"), b"v" * 100).status == 201, f"PUT d{i}")
        reserve = metric(s.port, "kingx_disk_reserve_bytes")
        check(reserve > 0, "/metrics reports no disk reserve")
        for i in range(75):
            sock = socket.create_connection(("127.0.0.1", s.port))
            sock.sendall(build_request("PUT", key_path(f"up{i}"), None, [("Content-Length", str(1 << 20))]))
            sock.sendall(rng.randbytes((1 << 20) - 1))
            socks.append(sock)
        time.sleep(3)  # they rest: past the spill's idle second
        free = disk.free()
        check(free >= reserve, f"{free} bytes free beside stalled uploads: the reserve is {reserve:.0f}")
        with Conn(s.port) as c:
            refused = [i for i in range(3000) if c.request("DELETE", key_path(f"d{i}")).status != 204]
        check(not refused, f"{len(refused)} of 3000 DELETEs refused beside stalled uploads "
              f"({disk.free()} bytes free, reserve {reserve:.0f})")
    finally:
        for sock in socks:
            sock.close()
        if s is not None:
            s.stop()
        disk.close()


def test_another_process_fills_the_disk():
    disk = Tmpfs()
    s = None
    try:
        check(disk.mounted, f"mount tmpfs: {disk.error}")
        s = start_server(disk)
        check(http(s.port, "PUT", key_path("first"), b"f").status == 201, "first PUT")
        reserve = metric(s.port, "kingx_disk_reserve_bytes")
        # The tmpfs is the data directory itself, so the other process's file
        # lives in it (a database with other files beside it is served as is).
        filler = os.path.join(disk.path, "other-process.fill")
        leave = int(reserve) + (256 << 10)
        with open(filler, "wb") as f:
            n = disk.free() - leave
            while n > 0:
                n -= f.write(b"\0" * min(n, 1 << 20))
        time.sleep(0.02)
        value = rng.randbytes(4096)
        lowest, refused_at = disk.free(), None
        with Conn(s.port) as c:
            for i in range(200):
                st = c.request("PUT", key_path(f"o{i}"), value).status
                check(st in (201, 507), f"PUT o{i} answered {st}")
                lowest = min(lowest, disk.free())
                if st == 507:
                    refused_at = i
                    break
        check(refused_at is not None, f"200 PUTs of 4 KiB with {leave - reserve:.0f} bytes above the reserve: none "
              f"refused (lowest free {lowest}, reserve {reserve:.0f})")
        check(lowest >= reserve - 4096, f"PUTs ate into the reserve after another process filled the disk: "
              f"{lowest} bytes free, reserve {reserve:.0f} (refused from PUT {refused_at})")
        os.unlink(filler)
        deadline = time.monotonic() + 10
        while http(s.port, "PUT", key_path("after"), value).status != 201:
            check(time.monotonic() < deadline, "PUTs still refused 10 s after the filler was removed")
            time.sleep(0.1)
    finally:
        if s is not None:
            s.stop()
        disk.close()


def test_offline_compact_all():
    tool = os.environ.get("KINGX_TOOL_BIN", "")
    check(tool and os.access(tool, os.X_OK), f"KINGX_TOOL_BIN not set or not executable: {tool!r}")
    disk = Tmpfs()
    s = None
    try:
        check(disk.mounted, f"mount tmpfs: {disk.error}")
        s = start_server(disk)
        store = Store()
        fill(s, store, "off", 20 << 10, 10000)
        check(s.stop() == 0, "kingx did not stop cleanly")
        free_full = disk.free()
        keys = sorted(store.acked)
        r = subprocess.run([tool, "--data", disk.path, "delete", *keys[::2]], capture_output=True, text=True,
                           timeout=300)
        check(r.returncode == 0, f"kingx-tool delete of {len(keys[::2])} keys on the full disk: {r.returncode} "
              f"{r.stderr}")
        check(r.stdout.count("deleted seq") == len(keys[::2]), f"kingx-tool delete reported "
              f"{r.stdout.count('deleted seq')} of {len(keys[::2])} keys deleted")
        for k in keys[::2]:
            del store.acked[k]
        r = subprocess.run([tool, "--data", disk.path, "compact", "--all"], capture_output=True, text=True,
                           timeout=300)
        check(r.returncode == 0, f"kingx-tool compact --all: {r.returncode} {r.stdout} {r.stderr}")
        freed = disk.free() - free_full
        half = len(keys) // 2 * (20 << 10)
        print(f"  kingx-tool compact --all freed {freed} bytes of {half} deleted: {r.stdout.strip()}", flush=True)
        check(freed >= half * 0.6, f"kingx-tool compact --all freed {freed} bytes after {half} were deleted")
        s.start()
        k = "after-offline"
        v = rng.randbytes(1 << 20)
        r = http(s.port, "PUT", key_path(k), v)
        check(r.status == 201, f"PUT after the offline compaction answered {r.status}")
        store.acked[k] = v
        store.verify(s.port, "after the offline compaction")
    finally:
        if s is not None:
            s.stop()
        disk.close()


if __name__ == "__main__":
    ok, err = can_mount()
    if not ok:
        print(f"SKIP: cannot mount a {DISK} tmpfs for the data directory (needs root or CAP_SYS_ADMIN): {err}")
        sys.exit(SKIP)
    cases = [(n[len("test_"):], f) for n, f in list(globals().items()) if n.startswith("test_") and callable(f)]
    if sys.argv[1:]:  # run only the named cases
        cases = [(n, f) for n, f in cases if n in sys.argv[1:]]
    status = run_cases("disk full (64 MiB tmpfs, default settings)", cases, lambda: current)
    for d in WORKDIRS:
        if os.environ.get("KINGX_KEEP") != "1":
            shutil.rmtree(d, ignore_errors=True)
    sys.exit(status)
