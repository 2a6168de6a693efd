"""Black-box test harness for the real `kingx` binary (standard library only).

What it gives a test file:
  - Server: starts `kingx` on 127.0.0.1 with a fresh data directory, waits for
    /readyz 200 (bounded), signals/stops/kills it by PID or by its own process
    group (the server is started in a new session, so its group holds only
    processes this harness started), and finds its children by /proc comm.
  - Conn: a raw-socket HTTP/1.1 client that sends exact bytes and parses one
    response at a time (Content-Length, chunked, read-to-EOF, HEAD/204/304/1xx).
  - Values that carry key|client|seq|checksum, so a value nobody wrote (a
    phantom, a torn or mixed-up value) is detected by the client alone.
  - KeyOracle: the acknowledged-write oracle of research/reliability.md §4.2.
  - run_cases(): runs named test functions, prints one line per case and the
    server's logs on failure, and returns the process exit status;
    run_with_server() / run_with_servers() are the whole main() of a test file
    (start, run, clean up, exit).
  - wait_for(): a bounded poll of a condition.
  - FifoReader: a log shipper reading a FIFO, which can stall on purpose.

Environment: KINGX_BIN (path of the binary; meson passes it), KINGX_TOOL_BIN
(optional), KINGX_SOAK=1 (heavier variants), KINGX_KEEP=1 (keep temp dirs).
Every wait in here is bounded; nothing listens anywhere but 127.0.0.1.
"""

import collections
import ctypes
import errno
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

SKIP = 77  # meson's "skipped" exit status
SOAK = os.environ.get("KINGX_SOAK") == "1"
HOST = "127.0.0.1"


def kingx_bin():
    """Path of the kingx binary from KINGX_BIN, or None when it is not built."""
    path = os.environ.get("KINGX_BIN", "")
    return path if path and os.access(path, os.X_OK) else None


def require_bin():
    """Returns the binary's path, or exits with meson's SKIP status."""
    path = kingx_bin()
    if path is None:
        print("SKIP: KINGX_BIN is not set or not executable:", os.environ.get("KINGX_BIN"))
        sys.exit(SKIP)
    return path


class TestFailure(AssertionError):
    pass


class CaseSkipped(Exception):
    """Raised by a case that cannot run in this environment (a facility the
    machine does not grant, not a fault of kingx): run_cases counts it as
    skipped and prints the message, which should say why."""


def check(cond, msg):
    """Fails the current case with `msg` unless `cond`."""
    if not cond:
        raise TestFailure(msg)


def free_port():
    """An ephemeral port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- HTTP client

class ConnectionClosed(Exception):
    """The peer closed (or reset) before a whole response arrived.
    `partial` is the number of response bytes received before that."""

    def __init__(self, msg, partial=0):
        super().__init__(msg)
        self.partial = partial


class Response:
    def __init__(self, version, status, reason, headers, body):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) as received
        self.body = body

    def header(self, name):
        """First value of header `name` (case-insensitive), or None."""
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        body = self.body[:200]
        return f"<{self.status} {self.reason} {self.headers} {body!r}>"


class Conn:
    """One client TCP connection to 127.0.0.1:port. Not thread-safe: one
    thread uses it. Every read waits at most `timeout` seconds."""

    def __init__(self, port, timeout=15.0):
        self.port = port
        self.timeout = timeout
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self._consumed = 0  # bytes of the response being parsed already taken from buf
        self.requests_sent = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def local_port(self):
        return self.sock.getsockname()[1]

    def send(self, data):
        self.sock.sendall(data)

    def request(self, method, path, body=None, headers=None, version="HTTP/1.1", host=True):
        """Sends one request and returns its final response (1xx skipped)."""
        self.send(build_request(method, path, body, headers, version, host))
        self.requests_sent += 1
        while True:
            r = self.read_response(head=(method == "HEAD"))
            if r.status >= 200:
                return r

    def _fill(self, _unused=0):
        got = len(self.buf) + self._consumed
        try:
            data = self.sock.recv(1 << 16)
        except (ConnectionResetError, BrokenPipeError) as e:
            raise ConnectionClosed(f"reset: {e}", got)
        except socket.timeout:
            raise ConnectionClosed(f"timed out after {self.timeout}s waiting for response bytes", got)
        if not data:
            raise ConnectionClosed("peer closed", got)
        self.buf += data

    def read_response(self, head=False):
        """Parses exactly one response from the stream. HEAD responses, 1xx,
        204 and 304 have no body. Raises ConnectionClosed on EOF/reset/timeout."""
        self._consumed = 0
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head_bytes, _, rest = self.buf.partition(b"\r\n\r\n")
        self._consumed = len(head_bytes) + 4
        lines = head_bytes.split(b"\r\n")
        m = re.match(rb"^(HTTP/\d\.\d) (\d{3}) ?(.*)$", lines[0])
        if not m:
            raise TestFailure(f"malformed status line: {lines[0]!r}")
        version, status, reason = m.group(1).decode(), int(m.group(2)), m.group(3).decode("latin-1")
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                raise TestFailure(f"malformed header line: {line!r}")
            headers.append((name.decode("latin-1"), value.strip().decode("latin-1")))
        self.buf = rest
        resp = Response(version, status, reason, headers, b"")
        if head or status < 200 or status in (204, 304):
            return resp
        te = resp.header("Transfer-Encoding")
        cl = resp.header("Content-Length")
        if te is not None and te.lower() == "chunked":
            resp.body = self._read_chunked()
        elif cl is not None:
            n = int(cl)
            while len(self.buf) < n:
                self._fill(len(self.buf))
            resp.body, self.buf = self.buf[:n], self.buf[n:]
        else:  # read to EOF
            while True:
                try:
                    self._fill(0)
                except ConnectionClosed:
                    break
            resp.body, self.buf = self.buf, b""
        return resp

    def _read_chunked(self):
        body = b""
        while True:
            while b"\r\n" not in self.buf:
                self._fill(len(body))
            line, _, self.buf = self.buf.partition(b"\r\n")
            size = int(line.split(b";")[0], 16)
            if size == 0:
                while b"\r\n" not in self.buf:
                    self._fill(len(body))
                # skip trailers up to the empty line
                while not self.buf.startswith(b"\r\n"):
                    _, _, self.buf = self.buf.partition(b"\r\n")
                    while b"\r\n" not in self.buf:
                        self._fill(len(body))
                self.buf = self.buf[2:]
                return body
            while len(self.buf) < size + 2:
                self._fill(len(body))
            body += self.buf[:size]
            self.buf = self.buf[size + 2:]

    def wait_closed(self, timeout=10.0):
        """Waits (bounded) for the peer to close. Returns 'closed', 'open' (nothing
        within timeout) or the unexpected bytes that arrived instead."""
        if self.buf:
            return self.buf
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 16)
        except socket.timeout:
            return "open"
        except (ConnectionResetError, BrokenPipeError):
            return "closed"
        finally:
            self.sock.settimeout(self.timeout)
        return "closed" if not data else data


def build_request(method, path, body=None, headers=None, version="HTTP/1.1", host=True):
    """Exact request bytes. `path` may be str or bytes (sent as is). Adds Host
    (unless host=False) and Content-Length for a body unless headers set a
    framing header themselves."""
    if isinstance(path, str):
        path = path.encode("latin-1")
    hdrs = list(headers or [])
    names = {k.lower() for k, _ in hdrs}
    if host and "host" not in names:
        hdrs.insert(0, ("Host", "127.0.0.1"))
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        hdrs.append(("Content-Length", str(len(body))))
    out = method.encode() + b" " + path + b" " + version.encode() + b"\r\n"
    for k, v in hdrs:
        out += k.encode("latin-1") + b": " + (v if isinstance(v, bytes) else v.encode("latin-1")) + b"\r\n"
    out += b"\r\n"
    if body is not None:
        out += body
    return out


def key_path(key):
    """/v1/kv/<key> in the key's canonical spelling (http/key_spelling.h):
    unreserved bytes and '/' as themselves, every other byte %XX uppercase.
    kingx answers any other spelling with a 308 to this one."""
    if isinstance(key, str):
        key = key.encode()
    safe = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/"
    enc = "".join(chr(b) if b in safe else "%%%02X" % b for b in key)
    return "/v1/kv/" + enc


def parse_etag(value):
    """The sequence number inside a strong ETag `"<seq>"`, or None."""
    m = re.fullmatch(r'"(\d+)"', value or "")
    return int(m.group(1)) if m else None


def adopt(sock, port, timeout):
    """A Conn reading responses from an already connected socket (one whose
    request was sent by hand)."""
    conn = Conn.__new__(Conn)
    conn.sock, conn.port, conn.timeout, conn.buf, conn._consumed, conn.requests_sent = sock, port, timeout, b"", 0, 1
    sock.settimeout(timeout)
    return conn


RECORD_HEADER = 40  # engine/FORMAT.md "Record": stored_len at 24 (u32), key_len at 32 (u16), meta_len at 34
SEGMENT_HEADER = 48


def record_ends(segment):
    """The offsets where the records of a segment's bytes end, in file order
    (the zero room after the last record ends the walk)."""
    ends, at = [], SEGMENT_HEADER
    while at + RECORD_HEADER <= len(segment):
        stored = int.from_bytes(segment[at + 24:at + 28], "little")
        key_len = int.from_bytes(segment[at + 32:at + 34], "little")
        meta_len = segment[at + 34]
        if key_len == 0:
            break  # the zero room after the last record
        at += RECORD_HEADER + key_len + meta_len + stored
        ends.append(at)
    return ends


def staging_files(data_dir):
    """{name: size} of the staging files (*.tmp) of large uploads in progress.
    A file that completes (renamed or removed) between the listing and its
    stat is no longer in progress and is left out."""
    sizes = {}
    for n in os.listdir(data_dir):
        if n.endswith(".tmp"):
            try:
                sizes[n] = os.path.getsize(os.path.join(data_dir, n))
            except FileNotFoundError:
                pass
    return sizes


def http(port, method, path, body=None, headers=None, timeout=15.0):
    """One request on a fresh connection (closed afterwards)."""
    with Conn(port, timeout) as c:
        return c.request(method, path, body, headers)



def check_put_without_length_refused(port, path, what, headers=None):
    """A PUT of `path` with neither Content-Length nor Transfer-Encoding, sent to `port` (kingx,
    or a proxy in front of it): the final answer (after a proxy's own 100 Continue) must be 411
    problem+json naming both framings, and the key must be unchanged (absent, or `path` GETs
    what it did before)."""
    before = http(port, "GET", path)
    with Conn(port) as c:
        c.send(build_request("PUT", path, None, headers))
        r = c.read_response()
        if r.status == 100:
            r = c.read_response()
    check(r.status == 411 and r.header("Content-Type") == "application/problem+json",
          f"{what}: a PUT with no length: {r!r}")
    detail = r.json().get("detail", "")
    check("Content-Length" in detail and "chunked" in detail, f"{what}: the 411 names the framings: {detail!r}")
    after = http(port, "GET", path)
    check((after.status, after.body) == (before.status, before.body),
          f"{what}: the key changed: {before!r} then {after!r}")
    return r

def server_end(server_port, client_port):
    """(TCP state as /proc/net/tcp writes it, "01" for ESTABLISHED; unread
    bytes) of the server's end of the connection from 127.0.0.1:client_port,
    or None when there is none."""
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            if (int(parts[1].split(":")[1], 16) == server_port and
                    int(parts[2].split(":")[1], 16) == client_port):
                return parts[3], int(parts[4].split(":")[1], 16)
    return None


def server_rx_queue(server_port, client_port):
    """Unread bytes of the server's end of the connection from
    127.0.0.1:client_port (/proc/net/tcp), or None."""
    end = server_end(server_port, client_port)
    return None if end is None else end[1]


def metric(port, name):
    """The value of the unlabelled sample `name` of GET /metrics, or None."""
    body = http(port, "GET", "/metrics", timeout=30).body.decode()
    m = re.search(r"^%s (\S+)$" % re.escape(name), body, re.M)
    return float(m.group(1)) if m else None


def metric_values(port, timeout=15.0):
    """{sample line name with labels: value} of one scrape of GET /metrics."""
    body = http(port, "GET", "/metrics", timeout=timeout).body.decode("utf-8")
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^([a-z_]+(?:\{[^}]*\})?) (\S+)$", body, re.M)}


# ---------------------------------------------------------------- server

def dir_bytes(path, depth=0):
    """Allocated bytes under path (what du counts), subdirectories included
    (the key view in keys/ is part of a data directory); files removed
    meanwhile are skipped."""
    total = 0
    try:
        with os.scandir(path) as it:
            for e in it:
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue  # removed meanwhile
                total += st.st_blocks * 512
                if e.is_dir(follow_symlinks=False) and depth < 4:
                    total += dir_bytes(e.path, depth + 1)
    except OSError:
        pass
    return total


def proc_stat(pid):
    """(comm, ppid, pgrp, state) of a live process, or None (gone, or gone while read)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("latin-1")
    except OSError:
        return None
    lp, rp = data.index("("), data.rindex(")")
    fields = data[rp + 2:].split()
    return data[lp + 1:rp], int(fields[1]), int(fields[2]), fields[0]


def shared_memory_kib(pid):
    """{"rss": KiB, "pss": KiB} of pid's shared anonymous mappings: the
    server's one shared mapping (MAP_SHARED|MAP_ANONYMOUS, which smaps names
    "/dev/zero (deleted)"), its pages this process touched. Zeros if pid is
    gone."""
    kib = {"rss": 0, "pss": 0}
    shared = False
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                fields = line.split()
                if re.match(r"[0-9a-f]+-[0-9a-f]+$", fields[0]):
                    shared = " ".join(fields[5:]) == "/dev/zero (deleted)" and fields[1].endswith("s")
                elif shared and fields[0] in ("Rss:", "Pss:"):
                    kib[fields[0][:3].lower()] += int(fields[1])
    except OSError:
        return {"rss": 0, "pss": 0}
    return kib


def _live_threads(pid):
    """Number of threads of `pid` that are not zombies (0 if it is gone)."""
    n = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", "rb") as f:
                data = f.read().decode("latin-1")
        except OSError:
            continue
        if data[data.rindex(")") + 2:].split()[0] not in ("Z", "X"):
            n += 1
    return n


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


# The flags kingx takes more than once (each adds one); any other flag given
# twice is refused.
REPEATABLE_FLAGS = ("--listen", "--trusted-proxy")


def merge_flags(args):
    """`args` with only the last of each non-repeatable flag, where it stood:
    the harness composes its own flags, a model's and a case's, a later one
    winning, and kingx refuses a flag given twice. A flag's value is the next
    argument unless that starts with "--" (then the flag is a switch)."""
    groups = []  # (flag name or None, its arguments)
    i = 0
    while i < len(args):
        a = args[i]
        takes_next = a.startswith("--") and "=" not in a and i + 1 < len(args) and not args[i + 1].startswith("--")
        name = a.split("=", 1)[0] if a.startswith("--") else None
        groups.append((name, args[i:i + 2] if takes_next else [a]))
        i += 2 if takes_next else 1
    last = {name: k for k, (name, _) in enumerate(groups) if name and name not in REPEATABLE_FLAGS}
    return [a for k, (name, group) in enumerate(groups) if last.get(name, k) == k for a in group]


# Every Server this process started and has not yet stopped: the end of a
# test file's main (run_with_server / run_with_servers) stops what a case left
# running, so no test leaves a kingx behind it, and meson's SIGTERM on a
# timeout ends the file through those same finally blocks.
_RUNNING = []


def _stop_left_running():
    """Cleans up every server still registered; says which ones a case had
    left running."""
    for server in list(_RUNNING):
        _RUNNING.remove(server)
        if server.proc is None or (server.proc.poll() is not None and not server.group_pids()):
            continue  # it ended (or was killed) without stop(): nothing runs
        print(f"cleanup: a case left kingx {server.proc.pid if server.proc else '?'} "
              f"(port {server.port}) running: stopped", flush=True)
        server.cleanup()


def _exit_on_sigterm():
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


class Server:
    """A kingx instance started by this harness. Use as a context manager, or
    call start() and stop(). `args` are extra command-line flags; --listen,
    --data, --error-log and --pid are added unless `raw_args` is set (a non-repeatable flag
    in `args` then replaces the harness's: merge_flags). With
    `admin`, --admin-listen on a port the harness picks too (`admin_port`,
    set by start(); not with `raw_args`). Without `error_log_flag`, no
    --error-log flag: a config file names the error log (set `error_log` to
    it, for log_since), or stderr is the error log. `stderr`: a descriptor
    the server's stderr is (a pipe, a terminal); by default stdout and
    stderr go to the file stdout.N of the start."""

    def __init__(self, args=(), data_dir=None, workdir=None, port=None, access_log=None,
                 raw_args=False, ready_timeout=30.0, admin=False, error_log_flag=True, stderr=None):
        self.bin = require_bin()
        self.stderr = stderr
        self.workdir = workdir or tempfile.mkdtemp(prefix="kingx-bb-")
        self.data_dir = data_dir or os.path.join(self.workdir, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.extra = list(args)
        self.port = port
        self.port_given = port is not None
        self.admin = admin
        self.admin_port = None
        self.raw_args = raw_args
        self.error_log = os.path.join(self.workdir, "error.log")
        self.error_log_flag = error_log_flag
        self.access_log = access_log or os.path.join(self.workdir, "access.log")
        self.pid_file = os.path.join(self.workdir, "kingx.pid")
        self.ready_timeout = ready_timeout
        self.proc = None
        self.starts = 0
        self.started_at = None  # time.monotonic() of the latest start

    # -- lifecycle
    def argv(self):
        if self.raw_args:
            return [self.bin] + self.extra
        admin = ["--admin-listen", f"{HOST}:{self.admin_port}"] if self.admin else []
        error_log = ["--error-log", self.error_log] if self.error_log_flag else []
        return [self.bin] + merge_flags(["--listen", f"{HOST}:{self.port}", "--data", self.data_dir] + error_log + [
                "--access-log", self.access_log, "--pid", self.pid_file] + admin + self.extra)

    # A restart keeps its port: a proxy or a client may name it. Until then an
    # address can be held by a TIME_WAIT of another process's loopback
    # connection that happened to get it as its local port while this server
    # was down (it blocks a listener for 60 s); the start is tried again on the
    # same port for this long.
    SAME_PORT_RETRY_S = 120.0

    def start(self, wait=True):
        """Starts the master in a new session (its own process group) and, if
        `wait`, waits for /readyz 200. A first start on ports the harness
        picked retries with others (the main one, and the admin one if any)
        if a chosen one was taken meanwhile; a restart, or a start on a port
        the caller gave, keeps its ports and is tried again on them while an
        address is in use (at most SAME_PORT_RETRY_S). Raises TestFailure
        with the logs on failure."""
        keep = self.port is not None and (self.starts > 0 or self.port_given)
        deadline = time.monotonic() + self.SAME_PORT_RETRY_S
        attempt = 0
        while True:
            if self.port is None or (attempt > 0 and not keep):
                self.port = free_port()
            if self.admin and (self.admin_port is None or (attempt > 0 and not keep)):
                self.admin_port = free_port()
            self.starts += 1
            out = open(os.path.join(self.workdir, f"stdout.{self.starts}"), "wb")
            self.started_at = time.monotonic()
            log_from = os.path.getsize(self.error_log) if os.path.exists(self.error_log) else 0
            self.proc = subprocess.Popen(self.argv(), stdout=out,
                                         stderr=subprocess.STDOUT if self.stderr is None else self.stderr,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
            out.close()
            if self not in _RUNNING:
                _RUNNING.append(self)
            if not wait:
                return self
            try:
                self.wait_ready()
                return self
            except TestFailure:
                attempt += 1
                if self.proc.poll() is not None and "in use" in self._start_output(log_from).lower():
                    if keep and time.monotonic() < deadline:
                        continue
                    if not keep and attempt < 3:
                        continue
                    raise TestFailure(f"could not start kingx: an address stayed in use ({attempt} attempts, "
                                      f"{'the same ports' if keep else 'other ports each time'}):\n" + self.logs())
                raise

    def _start_output(self, log_from):
        """What the latest start wrote: its stdout file and the error log from
        offset `log_from`."""
        text = ""
        for path, offset in ((os.path.join(self.workdir, f"stdout.{self.starts}"), 0), (self.error_log, log_from)):
            try:
                with open(path, "rb") as f:
                    f.seek(offset)
                    text += f.read().decode("utf-8", "replace")
            except OSError:
                pass
        return text

    def wait_ready(self, timeout=None):
        """Polls GET /readyz until 200 (bounded)."""
        deadline = time.monotonic() + (timeout or self.ready_timeout)
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise TestFailure(f"kingx exited with {self.proc.returncode} before ready:\n" + self.logs())
            try:
                r = http(self.port, "GET", "/readyz", timeout=2.0)
                last = r.status
                if r.status == 200:
                    return
            except (OSError, ConnectionClosed) as e:
                last = repr(e)
            time.sleep(0.05)
        raise TestFailure(f"kingx not ready within {timeout or self.ready_timeout}s (last: {last}):\n" + self.logs())

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def wait_exit(self, timeout):
        """Waits for the master to exit; returns its status or None on timeout."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def group_pids(self):
        """Processes of the server's own process group that still run any
        thread. A zombie leader whose other threads are still exiting (the
        writer's compaction thread finishing an fsync, say) counts as alive:
        it still holds the data directory's LOCK."""
        pgid = self.proc.pid
        out = []
        for p in all_pids():
            st = proc_stat(p)
            if not st or st[2] != pgid:
                continue
            if st[3] != "Z" or _live_threads(p):
                out.append(p)
        return out

    def kill_group(self):
        """SIGKILL to every process of the server's group (all started by this
        harness), then waits (bounded) until none is left."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(30)
        deadline = time.monotonic() + 30
        while self.group_pids() and time.monotonic() < deadline:
            time.sleep(0.02)
        left = self.group_pids()
        if not left and self in _RUNNING:
            _RUNNING.remove(self)
        if left:
            raise TestFailure(f"processes of the killed server still run after 30 s: "
                              f"{[(p, proc_stat(p)) for p in left]}")

    def stop(self, timeout=20.0):
        """Fast stop (SIGTERM); SIGKILL to the group if it has not exited in time.
        Returns the master's exit status (None if it had to be killed)."""
        if self.proc is None:
            return None
        status = self.proc.poll()
        if status is None:
            try:
                self.signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            status = self.wait_exit(timeout)
        if self.group_pids():
            self.kill_group()
        if self in _RUNNING:
            _RUNNING.remove(self)
        return status

    def cleanup(self):
        """stop(), then remove the temp dir (unless KINGX_KEEP=1). Never raises:
        it runs in finally blocks, where it must not hide the test's error."""
        try:
            self.stop()
        except (TestFailure, OSError, subprocess.TimeoutExpired) as e:
            print(f"cleanup: {e}", flush=True)
        if os.environ.get("KINGX_KEEP") != "1":
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    # -- processes
    def children(self, comm=None):
        """[(pid, comm)] of the master's live children, optionally one comm."""
        out = []
        for p in all_pids():
            st = proc_stat(p)
            if st and st[1] == self.proc.pid and st[3] != "Z" and (comm is None or st[0] == comm):
                out.append((p, st[0]))
        return sorted(out)

    def workers(self):
        return [p for p, _ in self.children("kingx-worker")]

    def wait_children(self, comm, count, exclude=(), timeout=15.0):
        """Waits until `count` children named `comm` (none of them in `exclude`)
        are alive; returns their PIDs or raises TestFailure."""
        deadline = time.monotonic() + timeout
        pids = []
        while time.monotonic() < deadline:
            pids = [p for p, _ in self.children(comm) if p not in exclude]
            if len(pids) >= count:
                return pids
            time.sleep(0.05)
        raise TestFailure(f"expected {count} {comm} (not {list(exclude)}), have {pids}: {self.children()}")

    def worker_of_client_port(self, client_port):
        """PID of the child process holding the server side of the connection
        whose client end is 127.0.0.1:client_port, or None."""
        side = self.server_side_of_client_port(client_port)
        return None if side is None else side[0]

    def server_side_of_client_port(self, client_port):
        """(PID, descriptor) of the child process's socket for the server side
        of the connection whose client end is 127.0.0.1:client_port, or None."""
        inodes = _tcp_inodes(lambda lport, rport, state: lport == self.port and rport == client_port)
        if not inodes:
            return None
        found = _descriptors_of([p for p, _ in self.children()], inodes[-1:])
        return found[0] if found else None

    def master_listeners(self):
        """[(master PID, descriptor)] of the master's listening sockets on
        127.0.0.1:port (one per worker index with reuseport)."""
        inodes = _tcp_inodes(lambda lport, rport, state: lport == self.port and state == "0A")
        return _descriptors_of([self.proc.pid], inodes)

    def answers(self, timeout=5.0):
        """True if GET /healthz on a new connection is answered 200 in time."""
        try:
            return http(self.port, "GET", "/healthz", timeout=timeout).status == 200
        except (OSError, ConnectionClosed):
            return False

    def answers_ready(self, timeout=5.0):
        """True if GET /readyz on a new connection is answered 200 in time
        (False once a stop has begun: 503, or no listener)."""
        try:
            return http(self.port, "GET", "/readyz", timeout=timeout).status == 200
        except (OSError, ConnectionClosed):
            return False

    def new_logs(self, limit=6000):
        """What the error log and stdout files gained since the last call."""
        marks = self.__dict__.setdefault("_log_marks", {})
        parts = []
        for name in sorted(os.listdir(self.workdir)):
            if not (name.startswith("stdout.") or name == "error.log"):
                continue
            path = os.path.join(self.workdir, name)
            try:
                with open(path, "rb") as f:
                    f.seek(marks.get(name, 0))
                    data = f.read()
            except OSError:
                continue
            marks[name] = marks.get(name, 0) + len(data)
            if data:
                parts.append(f"--- {name} (new, last {limit} bytes) ---\n" + data[-limit:].decode("utf-8", "replace"))
        return "\n".join(parts) if parts else "(no new log lines)"

    def logs(self, limit=6000):
        """Tail of the error log and of stdout/stderr of every start."""
        parts = []
        for name in sorted(os.listdir(self.workdir)):
            if name.startswith("stdout.") or name == "error.log":
                try:
                    with open(os.path.join(self.workdir, name), "rb") as f:
                        data = f.read()
                except OSError:
                    continue
                parts.append(f"--- {name} (last {limit} bytes) ---\n" + data[-limit:].decode("utf-8", "replace"))
        return "\n".join(parts) if parts else "(no logs)"


# ---------------------------------------------------------------- values and oracle

ABSENT = None


class LimitedServer(Server):
    """A kingx started with the open-file limit (soft, hard) (prlimit(1));
    `args` as Server's, `workdir` too."""

    def __init__(self, soft, hard, *args, workdir=None):
        super().__init__(list(args), workdir=workdir)
        self.soft, self.hard = soft, hard

    def argv(self):
        return ["prlimit", f"--nofile={self.soft}:{self.hard}", "--"] + super().argv()


def open_descriptors(pid):
    """{kind: count} of what process pid holds open: 'socket', 'eventfd',
    'segment' (*.kxd), 'spill' (body spill files), 'other'."""
    kinds = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        kind = ("socket" if target.startswith("socket:") else "eventfd" if target == "anon_inode:[eventfd]"
                else "segment" if target.endswith(".kxd") else "spill" if ".body-spill-" in target else "other")
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def make_value(key, client, seq, rng, size=None, total=None):
    """A value that names its key, writer and sequence and carries a checksum:
    `<key hex>|<client>|<seq>|<payload>|<sha256[:16]>`. Payload is random or
    compressible, 0 B to ~48 KiB. With `total`, the value is exactly `total`
    bytes: the payload is sized to fit, and a value too short for the frame is
    a prefix of `<client>|<seq>|...` (still distinct per write, though not
    self-checking; 0 bytes is the empty value)."""
    head = b"%s|%d|%d|" % (key.hex().encode(), client, seq)
    if total is not None:
        frame = len(head) + 17
        if total < frame:
            return (b"%d|%d|" % (client, seq) * (total + 1))[:total]
        size = total - frame
    elif size is None:
        size = rng.choice([0, 1, 17, 100, 300, 1000, 4000, 20000, 48000])
    if rng.random() < 0.5:
        payload = rng.randbytes(size)
    else:
        payload = (b"kingx-compressible-%d-" % seq) * (size // 24 + 1)
        payload = payload[:size]
    prefix = head + payload
    return prefix + b"|" + hashlib.sha256(prefix).hexdigest()[:16].encode()


def compressible_text(n, seed):
    """n bytes of words that zstd compresses well (the same bytes for the same seed)."""
    words = [b"alpha ", b"beta ", b"gamma ", b"delta ", b"kingx ", b"value ", b"frame ", b"zstd "]
    out = bytearray()
    i = seed
    while len(out) < n:
        i = (i * 1103515245 + 12345) & 0x7FFFFFFF
        out += words[i % 8]
    return bytes(out[:n])


def value_ok(key, value):
    """True if `value` is intact and was made for `key` by make_value."""
    prefix, sep, digest = value.rpartition(b"|")
    if not sep or hashlib.sha256(prefix).hexdigest()[:16].encode() != digest:
        return False
    return prefix.split(b"|", 1)[0] == key.hex().encode()


class KeyOracle:
    """Per-key acknowledged state (research/reliability.md §4.2), for keys that
    one client writes sequentially. acked[key] is the last acknowledged value
    (ABSENT after an acked DELETE or before any write); pending[key] holds the
    values (ABSENT for deletes) of operations sent after it whose outcome is
    unknown (no response: connection lost, timeout, 5xx)."""

    def __init__(self):
        self.acked = {}
        self.pending = {}

    def invoke(self, key):
        self.acked.setdefault(key, ABSENT)
        self.pending.setdefault(key, [])

    def ack(self, key, value):
        self.acked[key] = value
        self.pending[key] = []

    def unknown(self, key, value):
        self.pending.setdefault(key, []).append(value)
        self.acked.setdefault(key, ABSENT)

    def allowed(self, key):
        return [self.acked.get(key, ABSENT)] + self.pending.get(key, [])

    def check(self, key, got):
        """None if `got` (bytes or ABSENT) is allowed for key, else a message.
        The caller then calls settle() to make `got` the new acked state."""
        allowed = self.allowed(key)
        if got in allowed:
            return None
        def desc(v):
            return "ABSENT" if v is None else f"{v[:60]!r}...({len(v)} bytes)"
        intact = "intact" if got is None or value_ok(key, got) else "CORRUPT/PHANTOM"
        return (f"key {key!r}: got {desc(got)} ({intact}); allowed: "
                + ", ".join(desc(v) for v in allowed))

    def settle(self, key, got):
        self.acked[key] = got
        self.pending[key] = []


# ---------------------------------------------------------------- runner

def _where(exc):
    """file:line of the innermost frame of a test file in `exc`'s traceback."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if os.path.basename(f.filename).startswith("test_")]
    return f"{os.path.basename(frames[-1].filename)}:{frames[-1].lineno}" if frames else "?"


def run_cases(title, cases, server=None):
    """Runs each (name, fn) in order; fn() raises on failure. Prints one line
    per case, and after a failure the new part of the server's logs. When the
    server is gone or no longer answers /healthz, the remaining cases are
    counted as failed without running (each would only time out). A case
    that raises CaseSkipped is counted as skipped (the exit status ignores
    it). `server` is a Server, or a function returning the one in use (for
    files that start a server per case). Returns the exit status."""
    passed = failed = skipped = 0
    print(f"# {title}", flush=True)
    orig_server = server
    current = server if callable(server) else (lambda: server)
    for name, fn in cases:
        t0 = time.monotonic()
        try:
            fn()
            passed += 1
            print(f"ok   {name} ({time.monotonic() - t0:.1f}s)", flush=True)
            continue
        except CaseSkipped as e:
            skipped += 1
            print(f"skip {name}: {e}", flush=True)
            continue
        except (TestFailure, ConnectionClosed, OSError) as e:
            failed += 1
            print(f"FAIL {name} ({_where(e)}): {e}", flush=True)
        except Exception as e:  # noqa: BLE001 - a bug in the test itself: full traceback
            failed += 1
            print(f"FAIL {name}: {e!r}", flush=True)
            traceback.print_exc(file=sys.stdout)
        server = current()
        if server is None or server.proc is None:
            continue
        print(server.new_logs(), flush=True)
        if callable(orig_server):
            # Each case starts its own server: stop the failed case's one now
            # (its logs are printed), or it runs on beside the next case's.
            server.cleanup()
            continue
        if not server.alive():
            print("the server is no longer running: the remaining cases are not run", flush=True)
            break
        if not server.answers():
            print("the server no longer answers GET /healthz: the remaining cases are not run", flush=True)
            break
    remaining = len(cases) - passed - failed - skipped
    failed += remaining
    print(f"{title}: {passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""), flush=True)
    return 0 if failed == 0 else 1


def run_with_server(title, server, cases, ready=None, check_stop=False):
    """The main() of a test file whose cases share one server: starts
    `server`, calls ready(server) if given (e.g. wait for the workers), runs
    `cases` (run_cases), and with check_stop stops the server with TERM and
    fails unless it exits 0 (a sanitizer report makes it exit non-zero).
    Always cleans the server up; exits the process with the status."""
    _exit_on_sigterm()
    status = 1
    try:
        server.start()
        if ready is not None:
            ready(server)
        status = run_cases(title, cases, server)
        if check_stop:
            code = server.stop()
            if code != 0:
                print(f"FAIL server exit status after TERM: {code}\n" + server.logs()[-4000:], flush=True)
                status = 1
    except Exception as e:  # noqa: BLE001
        print(f"FAIL startup: {e}")
        status = 1
    finally:
        server.cleanup()
        _stop_left_running()
    sys.exit(status)


def run_with_servers(title, cases, current_server):
    """The main() of a test file whose cases start their own servers:
    current_server() returns the one in use (or None). Runs `cases`, cleans up
    the last server, exits the process with the status."""
    require_bin()
    _exit_on_sigterm()
    status = 1
    try:
        status = run_cases(title, cases, current_server)
    finally:
        server = current_server()
        if server is not None:
            server.cleanup()
        _stop_left_running()
    sys.exit(status)


def check_stored_value(r, key, value, etag):
    """A GET of `key` answered 200 with exactly `value` and the ETag its PUT gave."""
    check(r.status == 200 and r.body == value, f"GET {key}: {r.status} {len(r.body)} bytes (want {len(value)})")
    check(r.header("ETag") == etag, f"GET {key}: ETag {r.header('ETag')}, PUT gave {etag}")


def check_failed_read(r, key, value, why, head=False):
    """A read of `key` that could not read its value: 500 problem+json carrying
    none of `value` (a HEAD: the status only). `why` names the fault."""
    check(r.status == 500, f"{'HEAD' if head else 'GET'} {key} {why}: {r!r}")
    if head:
        return
    check((r.header("Content-Type") or "").startswith("application/problem+json"), f"{key}: {r!r}")
    problem = json.loads(r.body)
    check(problem.get("status") == 500, f"{key}: {problem}")
    check(value[:64] not in r.body, f"{key}: the 500 carries value bytes")


def run_with_shared_data(title, cases, servers, workdir):
    """The main() of a test file whose cases share one data directory under
    `workdir` and append each server they start to `servers` (the last is the
    one in use). Runs `cases`, cleans up every server, removes workdir
    (unless KINGX_KEEP=1), exits the process with the status."""
    status = 1
    try:
        status = run_cases(title, cases, lambda: servers[-1] if servers else None)
    finally:
        for s in servers:
            s.cleanup()
        if os.environ.get("KINGX_KEEP") != "1":
            shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(status)


class ServerPerCase:
    """For a file whose cases each start their own server: start() removes
    the previous case's server first; current() is the one in use (pass it
    to run_with_servers, which cleans up the last one)."""

    def __init__(self, base_args=()):
        self.base_args = list(base_args)
        self.server = None

    def start(self, *args, admin=False):
        if self.server is not None:
            self.server.cleanup()
        self.server = Server(self.base_args + list(args), admin=admin)
        self.server.start()
        return self.server

    def current(self):
        return self.server


def _tcp_inodes(match):
    """Socket inodes of /proc/net/tcp's lines for which match(local port,
    remote port, state as its two hex digits) is true, in table order."""
    out = []
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            if match(int(parts[1].split(":")[1], 16), int(parts[2].split(":")[1], 16), parts[3]):
                out.append(parts[9])
    return out


def _descriptors_of(pids, inodes):
    """[(pid, descriptor)] of the sockets with those inodes that processes
    pids hold (a process that ends meanwhile holds none)."""
    targets = {f"socket:[{i}]" for i in inodes}
    out = []
    for p in pids:
        try:
            fds = os.listdir(f"/proc/{p}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{p}/fd/{fd}") in targets:
                    out.append((p, int(fd)))
            except OSError:
                pass
    return out


def wait_for(pred, timeout, what):
    """Polls pred() every 50 ms until it is true and returns that value;
    TestFailure naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise TestFailure(f"timed out after {timeout}s waiting for {what}")


def wait_settled(count, ping, timeout, what, at_least=0, quiet_s=2.0):
    """Waits until count() (a number, say a process's spill files) is at
    least `at_least` and has not changed for quiet_s seconds, calling ping()
    (keeping a connection busy) before each look; returns the last count.
    TestFailure naming `what` after timeout."""
    last = [None, 0.0]

    def settled():
        ping()
        now = count()
        if now != last[0]:
            last[0], last[1] = now, time.monotonic()
        return now >= at_least and time.monotonic() - last[1] >= quiet_s
    wait_for(settled, timeout, what)
    return last[0]


def pop_flag_value(args, flag, default):
    """Removes `flag VALUE` (a test file's own argument, not kingx's) from
    args and returns int(VALUE), or default when absent."""
    if flag not in args:
        return default
    i = args.index(flag)
    value = int(args[i + 1])
    del args[i:i + 2]
    return value


class FifoReader:
    """A log shipper reading a FIFO (made at `path` if missing): the read end
    is opened at once (no writer needed), and a thread collects what arrives
    until close(). pause() stops reading (the pipe fills up, as behind a
    stalled shipper), resume() goes on. ends counts the times the reader saw
    every writer gone (end of input) after having had one."""

    def __init__(self, path):
        import threading
        if not os.path.exists(path):
            os.mkfifo(path)
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.data = bytearray()
        self.ends = 0
        self._lock = threading.Lock()
        self._reading = threading.Event()
        self._reading.set()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        import select
        had_writer = False
        while not self._stop:
            if not self._reading.wait(0.05):
                continue
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                continue
            if chunk:
                had_writer = True
                with self._lock:
                    self.data += chunk
            else:  # no writer: select keeps saying readable until one comes
                if had_writer:
                    self.ends += 1
                    had_writer = False
                time.sleep(0.05)

    def pause(self):
        self._reading.clear()

    def resume(self):
        self._reading.set()

    def text(self):
        with self._lock:
            return self.data.decode("utf-8", "replace")

    def close(self):
        self._stop = True
        self._reading.set()
        self._thread.join(5)
        os.close(self.fd)


def traced_calls(pid, calls, action, fd=None, timeout=30.0):
    """Runs action() while strace follows process pid's system calls named in
    `calls` (all its threads); returns a collections.Counter of the calls made
    meanwhile, by name (only those whose first argument is descriptor fd, or
    one of the descriptors in fd when it is a collection, when given).
    CaseSkipped when strace is missing or cannot attach."""
    fds = None if fd is None else {str(fd)} if isinstance(fd, int) else {str(f) for f in fd}
    if shutil.which("strace") is None:
        raise CaseSkipped("strace is not installed")
    with tempfile.NamedTemporaryFile(mode="r", prefix="kingx-strace-", suffix=".txt") as out:
        p = subprocess.Popen(["strace", "-f", "-p", str(pid), "-e", "trace=" + ",".join(calls), "-e", "signal=none",
                              "-o", out.name], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            # strace says "Process N attached" on stderr once it follows the process.
            line = p.stderr.readline()
            if "attached" not in line:
                raise CaseSkipped(f"strace cannot attach to {pid}: {line.strip()}")
            time.sleep(0.2)  # its other threads too
            action()
        finally:
            p.send_signal(signal.SIGINT)  # detaches
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        counts = collections.Counter()
        for line in out.read().splitlines():
            m = re.match(r"\s*(?:\d+\s+)?(\w+)\((\d+)?", line)
            if m and m.group(1) in calls and (fds is None or m.group(2) in fds):
                counts[m.group(1)] += 1
        return counts


def voluntary_switches(pid):
    """{thread id: voluntary context switches so far} of process pid's
    threads (each is one wake-up from a sleep)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        out[int(tid)] = int(line.split()[1])
        except OSError:
            pass  # the thread ended meanwhile
    return out


def check_quiet_between_ticks(pid, bound, waiting):
    """Between two housekeeping ticks of worker pid's main thread (it wakes
    once a second: the events waited for here), the worker's other threads
    woke at most `bound` times in all; `waiting` says what waited meanwhile,
    with nothing released."""
    def main_ticks():
        return voluntary_switches(pid).get(pid, 0)

    tick0 = main_ticks()
    wait_for(lambda: main_ticks() >= tick0 + 1, 120, "the worker's main thread to tick")
    before = voluntary_switches(pid)
    tick1 = before.get(pid, 0)
    wait_for(lambda: main_ticks() >= tick1 + 2, 120, "two more ticks of the worker's main thread")
    after = voluntary_switches(pid)
    woke = {tid: after[tid] - n for tid, n in before.items() if tid != pid and tid in after and after[tid] > n}
    check(sum(woke.values()) <= bound,
          f"threads of the worker woke {sum(woke.values())} times between two ticks while {waiting} and nothing "
          f"was released: {woke}")


_SYS_PIDFD_GETFD = 438  # the same number on every Linux architecture (since 5.6)


def socket_option(pid, fd, level, name):
    """The integer socket option (level, name) of descriptor fd of process
    pid, read from a copy of that very socket (pidfd_getfd(2): what the
    process set or its socket inherited, not what the kernel then did with
    it); the copy is closed before it returns. CaseSkipped when this kernel
    or its sandbox refuses pidfd_getfd (it needs the right to ptrace pid);
    OSError when pid or fd is gone."""
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        copy = libc.syscall(_SYS_PIDFD_GETFD, pidfd, fd, 0)
        if copy < 0:
            err = ctypes.get_errno()
            if err in (errno.ENOSYS, errno.EPERM):
                raise CaseSkipped(f"pidfd_getfd({pid}, {fd}): {os.strerror(err)}")
            raise OSError(err, f"pidfd_getfd({pid}, {fd}): {os.strerror(err)}")
    finally:
        os.close(pidfd)
    s = socket.socket(fileno=copy)
    try:
        return s.getsockopt(level, name)
    finally:
        s.close()


def cases_of(module_globals, prefix="test_"):
    """(name, fn) of every function named test_* in definition order."""
    return [(n[len(prefix):], f) for n, f in module_globals.items()
            if n.startswith(prefix) and callable(f)]


def log_since(server, offset):
    """The server's error log from byte `offset` on ("" before it exists)."""
    try:
        with open(server.error_log, errors="replace") as f:
            f.seek(offset)
            return f.read()
    except FileNotFoundError:
        return ""


def replace_file(path, text):
    """Writes path whole through a rename: a reader (a reload) sees the old or the new text."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def restore_cut_archive(tool, archive, cut, restore, acked, servers):
    """Extracts archive[:cut] into the new directory `restore` (tar must
    report the cut), runs kingx-tool verify on it and serves it read-only
    (the server is appended to `servers`, which the caller stops): (verify's
    CompletedProcess, the keys of acked {key: (value, etag)} the copy
    answers with another value or with neither 200 nor 500)."""
    os.makedirs(restore)
    t = subprocess.run(["tar", "-xf", "-", "-C", restore], input=archive[:cut], capture_output=True)
    check(t.returncode != 0, "tar reports the truncated archive")
    v = subprocess.run([tool, "--data", restore, "verify"], capture_output=True, text=True, timeout=300)
    copy = Server(["--read-only", "--workers", "1"], data_dir=restore)
    servers.append(copy)
    copy.start()
    wrong = []
    for key, (value, etag) in acked.items():
        g = http(copy.port, "GET", key_path(key))
        if g.status == 200 and (g.body != value or g.header("ETag") != etag):
            wrong.append(f"{key}: {g.header('ETag')} (acked {etag})")
        elif g.status not in (200, 500):
            wrong.append(f"{key}: {g.status}")
    return v, wrong
