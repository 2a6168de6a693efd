"""What runs beside the load clients of bench/chaos_soak.py (standard
library only): the tmpfs it fills, the reader of write-once keys, the lister,
and the agent that sends reloads, USR1 and compaction requests. Each thread
runs until its stop event is set (or 300 s pass) and keeps what it saw for
the soak to judge; none raises."""

import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "blackbox"))
from kingx_harness import Conn, ConnectionClosed, http, key_path  # noqa: E402
from test_listing import decode_key, list_page  # noqa: E402

T0 = time.monotonic()


def log(msg):
    """One step of the soak, with its time since the start."""
    print(f"[{time.monotonic() - T0:8.2f}] {msg}", flush=True)


# ------------------------------------------------------------------ the disk

class Disk:
    """A file system of `size` at <workdir>/mnt (data in mnt/data, the filler
    beside it): a tmpfs, or (fs "ext4") ext4 on a loop device over a sparse
    file in `workdir` (real fdatasyncs and a real ENOSPC); a plain directory
    when mounting is refused (no disk_full fault)."""

    def __init__(self, workdir, size, fs="tmpfs"):
        self.mnt = os.path.join(workdir, "mnt")
        os.makedirs(self.mnt)
        if fs == "ext4":
            image = os.path.join(workdir, "ext4.img")
            r = subprocess.run(["truncate", "-s", size, image], capture_output=True, text=True)
            if r.returncode == 0:  # -m 0: no blocks reserved for root (kingx runs as root here)
                r = subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", image], capture_output=True, text=True)
            if r.returncode == 0:
                r = subprocess.run(["mount", "-o", "loop", image, self.mnt], capture_output=True, text=True)
        else:
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", self.mnt],
                               capture_output=True, text=True)
        self.mounted = r.returncode == 0
        self.why = (r.stderr or r.stdout).strip()
        self.data = os.path.join(self.mnt, "data")
        os.makedirs(self.data)
        self.filler = os.path.join(self.mnt, "filler")

    def free(self):
        st = os.statvfs(self.mnt)
        return st.f_bavail * st.f_frsize

    def fill(self, leave):
        """Writes a filler so that `leave` bytes stay free (at least 0)."""
        n = max(0, self.free() - leave)
        with open(self.filler, "ab") as f:
            try:
                os.posix_fallocate(f.fileno(), 0, n)
            except OSError:
                pass
        return n

    def unfill(self):
        try:
            os.unlink(self.filler)
        except FileNotFoundError:
            pass

    def close(self):
        self.unfill()
        if self.mounted:
            for args in (["umount", self.mnt], ["umount", "-l", self.mnt]):
                if subprocess.run(args, capture_output=True).returncode == 0:
                    break


# ------------------------------------------------------------------ threads beside the clients

class StableReader(threading.Thread):
    """GETs of the stable keys on one keep-alive connection until stopped.
    outcomes: (monotonic time, what) for every answer that was not a 200 with
    the exact bytes: 'status N', 'wrong bytes', 'cut' (a connection failure
    that may not be retried), 'retryable' (a reused connection closed before
    any byte of the answer: RFC 9112 §9.3.1)."""

    def __init__(self, port, stable, stop):
        super().__init__(daemon=True)
        self.port, self.stable, self.stop_event = port, stable, stop
        self.ok = 0
        self.outcomes = []

    def run(self):
        conn = None
        keys = sorted(self.stable)
        i = 0
        deadline = time.monotonic() + 300
        while not self.stop_event.is_set() and time.monotonic() < deadline:
            key = keys[i % len(keys)]
            i += 1
            try:
                if conn is None:
                    conn = Conn(self.port, timeout=15)
                reused = conn.requests_sent > 0
                r = conn.request("GET", key_path(key))
            except (ConnectionClosed, OSError) as e:
                partial = getattr(e, "partial", 0)
                self.outcomes.append((time.monotonic(), "retryable" if reused and partial == 0 else f"cut: {e!r}"))
                if conn:
                    conn.close()
                conn = None
                time.sleep(0.02)
                continue
            if r.status != 200:
                self.outcomes.append((time.monotonic(), f"status {r.status} {r.body[:120]!r}"))
            elif r.body != self.stable[key]:
                self.outcomes.append((time.monotonic(), f"wrong bytes for {key!r}"))
            else:
                self.ok += 1
            if (r.header("Connection") or "").lower() == "close":
                conn.close()
                conn = None
        if conn:
            conn.close()


class Lister(threading.Thread):
    """Pages through `prefix` with small limits until stopped, on a fresh
    connection per page. Within one pass: keys strictly increasing, each one
    of the universe. The cursor survives the thread (state['cursor']), so the
    next round resumes the pass across a restart. errors: contract
    violations; notes: 503s and connection failures (allowed)."""

    def __init__(self, port, prefix, universe, state, stop, rng):
        super().__init__(daemon=True)
        self.port, self.prefix, self.universe, self.state = port, prefix, universe, state
        self.stop_event, self.rng = stop, rng
        self.pages = 0
        self.passes = 0
        self.errors = []
        self.failed_at = []  # (monotonic time, status) of the pages errors name
        self.unavailable = 0

    def run(self):
        deadline = time.monotonic() + 300
        st = self.state
        while not self.stop_event.is_set() and time.monotonic() < deadline:
            limit = self.rng.randint(1, 40)
            try:
                r = list_page(self.port, prefix=self.prefix, limit=limit, cursor=st.get("cursor"))
            except (ConnectionClosed, OSError):
                self.unavailable += 1
                time.sleep(0.05)
                continue
            if r.status == 503:
                self.unavailable += 1
                if r.header("Retry-After") is None:
                    self.errors.append(f"listing 503 without Retry-After: {r!r}")
                time.sleep(0.05)
                continue
            if r.status != 200:
                self.errors.append(f"listing page (cursor {st.get('cursor')!r}, limit {limit}): {r!r}")
                self.failed_at.append((time.monotonic(), r.status))
                st.clear()
                continue
            body = r.json()
            self.pages += 1
            if len(body["keys"]) > limit:
                self.errors.append(f"{len(body['keys'])} keys on a page of limit {limit}")
            for e in body["keys"]:
                k = decode_key(e, False)
                if k not in self.universe:
                    self.errors.append(f"listing names {k!r}, which no client ever wrote")
                if st.get("last") is not None and k <= st["last"]:
                    self.errors.append(f"listing out of order or repeated: {k!r} after {st['last']!r} "
                                       f"(pages resumed across restarts: {st.get('resumed', 0)})")
                st["last"] = k
            time.sleep(0.01)  # a page now and then: the clients' writes are the load
            if body["list_complete"]:
                self.passes += 1
                st.clear()
            else:
                if not body["keys"]:
                    self.errors.append(f"an incomplete listing page is empty: {body}")
                st["cursor"] = body["cursor"]


class Agent(threading.Thread):
    """Runs the round's plan of (delay s, action) beside the load: 'hup'
    (rewrites the config file first), 'usr1', 'compact'."""

    def __init__(self, soak, plan, stop):
        super().__init__(daemon=True)
        self.soak, self.plan, self.stop_event = soak, plan, stop
        self.done = []
        self.errors = []

    def run(self):
        start = time.monotonic()
        for delay, action, arg in self.plan:
            if self.stop_event.wait(max(0.0, start + delay - time.monotonic())):
                return
            try:
                if action == "hup":
                    self.soak.write_config(arg)
                    self.soak.server.signal(signal.SIGHUP)
                elif action == "usr1":
                    self.soak.server.signal(signal.SIGUSR1)
                elif action == "compact":
                    r = http(self.soak.server.admin_port, "POST", "/admin/compact", timeout=15)
                    if r.status == 503 and r.header("Retry-After"):
                        arg = "503: " + r.json().get("detail", "")  # the writer restarting (a reload)
                    elif r.status != 202:
                        self.errors.append(f"POST /admin/compact: {r!r}")
            except (ProcessLookupError, ConnectionClosed, OSError) as e:
                self.errors.append(f"{action}: {e!r}")
                return
            self.done.append((round(time.monotonic() - start, 2), action, arg))
            log(f"  agent: {action} {arg if arg else ''} at +{time.monotonic() - start:.2f} s")
