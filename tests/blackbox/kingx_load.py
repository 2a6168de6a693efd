"""Load clients for the black-box crash and signal tests (standard library only).

A LoadClient is one thread with one keep-alive connection at a time. It owns
its keys (no other client writes them), so per key its operations are
sequential and the acknowledged-write oracle (KeyOracle) decides exactly what a
later read may return. Its state (ClientState) outlives the thread, so a crash
test can carry it across server restarts.

Failure policy:
  - "stop":      the first connection failure ends the thread (crash tests:
                 the server was killed; the op in flight becomes "unknown").
  - "reconnect": reconnect and go on (worker kill, reload tests).
A failure on a keep-alive connection that had already carried a request and
got no byte of the next response is "retryable" (RFC 9112 §9.3.1: the server
may close an idle connection at any moment); tests decide what they accept.

More kinds of write (a `mix` of up to eight weights): "IFMATCH" sends
`If-Match` with the ETag of the key's acknowledged value (2xx required when no
outcome is unknown), "STALE" an ETag the key's value cannot carry (412
required), "CREATE" `If-None-Match: *` (201 required on an absent key, 412 on a
present one, when no outcome is unknown); "CHUNKED" a plain PUT whose body is
chunked; "ABORT" sends a PUT's head and part of its body, then closes the
connection: that value must never be stored. A 412 or a 507 changed nothing.
Every GET of a value whose ETag is known (its acknowledgement or an earlier
read) must carry it.
"""

import random
import threading
import time

from kingx_harness import (ABSENT, Conn, ConnectionClosed, KeyOracle, build_request, key_path,
                           make_value, parse_etag)


class ClientState:
    """What one client knows; survives server restarts."""

    def __init__(self, client_id, keys, seed):
        self.client_id = client_id
        self.keys = keys
        self.rng = random.Random(seed)
        self.oracle = KeyOracle()
        for k in keys:
            self.oracle.invoke(k)
        self.seq = 0
        self.etags = {}  # key -> (value, ETag seq): the ETag a read of that value must carry
        self.last_etag = 0
        self.acked_puts = 0
        self.acked_deletes = 0
        self.reads = 0


class Failure:
    def __init__(self, when, worker, op, key, error, retryable, opened=None, partial=0):
        self.when = when          # time.monotonic()
        self.opened = opened      # time.monotonic() when the failed connection was opened
        self.partial = partial    # response bytes received before the failure
        self.worker = worker      # PID of the server process that held the connection, if known
        self.op = op
        self.key = key
        self.error = error
        self.retryable = retryable

    def __repr__(self):
        return (f"<{self.op} {self.key!r} on worker {self.worker}: {self.error}"
                f"{' (retryable)' if self.retryable else ''}>")


class LoadClient(threading.Thread):
    """Runs operations until `stop` is set, `max_ops` are done, `deadline`
    (monotonic) passes, or (policy "stop") the connection fails.
    mix: weights (put, get, delete). locate(conn) -> worker PID or None is
    called after the first response on each connection, if given.
    value_size: None (make_value's mix), a payload size, or a function
    (rng, key) -> exact value size in bytes. sizes_put collects the sizes sent.
    mix may carry up to five more weights: (put, get, delete, ifmatch, stale,
    create, chunked, abort), the writes of the module's docstring. etag_floor: the
    highest ETag any client had acknowledged when this one started (every
    ETag acknowledged here must be above it)."""

    OPS = ("PUT", "GET", "DELETE", "IFMATCH", "STALE", "CREATE", "CHUNKED", "ABORT")

    def __init__(self, port_fn, state, stop, mix=(60, 25, 15), policy="stop", locate=None,
                 max_ops=100000, deadline=None, fresh_connections=False, value_size=None, etag_floor=0):
        super().__init__(daemon=True)
        self.etag_floor = etag_floor  # every ETag acknowledged here must be above it
        self.port_fn = port_fn
        self.st = state
        self.stop_event = stop
        self.mix = mix
        self.policy = policy
        self.locate = locate
        self.max_ops = max_ops
        self.deadline = deadline or (time.monotonic() + 120)
        self.fresh = fresh_connections
        self.value_size = value_size
        self.sizes_put = set()
        self.failures = []      # connection-level failures and 5xx
        self.errors = []        # contract violations (always a test failure)
        self.ops_done = 0
        self.ops_by_kind = {}   # op -> count
        self.refused = 0        # 507 answers: not applied
        self.acked_after = []   # monotonic times of acked writes
        self.conn = None
        self.conn_worker = None
        self.conn_opened = None
        self.connect_errors = 0

    # -- connection handling
    def _connect(self):
        deadline = time.monotonic() + 15
        while True:
            try:
                self.conn = Conn(self.port_fn(), timeout=15)
                self.conn_worker = None
                self.conn_opened = time.monotonic()
                return True
            except OSError as e:
                self.connect_errors += 1
                if self.policy == "stop" or self.stop_event.is_set() or time.monotonic() > deadline:
                    self.failures.append(Failure(time.monotonic(), None, "connect", None, repr(e), False))
                    return False
                time.sleep(0.05)

    def _drop(self):
        if self.conn:
            self.conn.close()
        self.conn = None

    def _roundtrip(self, method, key, body=None, headers=None):
        """Returns the response, or None after recording a failure."""
        reused = self.conn.requests_sent > 0
        try:
            self.conn.send(build_request(method, key_path(key), body, headers))
            self.conn.requests_sent += 1
            r = self.conn.read_response(head=(method == "HEAD"))
        except (ConnectionClosed, OSError) as e:
            partial = getattr(e, "partial", 0)
            self.failures.append(Failure(time.monotonic(), self.conn_worker, method, key, repr(e),
                                         reused and partial == 0, self.conn_opened, partial))
            self._drop()
            return None
        if self.conn_worker is None and self.locate:
            self.conn_worker = self.locate(self.conn)
        if (r.header("Connection") or "").lower() == "close":
            self._drop()
        return r

    # -- operations
    def run(self):
        st = self.st
        try:
            while (not self.stop_event.is_set() and self.ops_done < self.max_ops
                   and time.monotonic() < self.deadline):
                if self.conn is None and not self._connect():
                    return
                op = st.rng.choices(self.OPS[:len(self.mix)], weights=self.mix)[0]
                key = st.rng.choice(st.keys)
                if op in ("PUT", "IFMATCH", "STALE", "CREATE", "CHUNKED"):
                    ok = self.op_put(key, None if op == "PUT" else op)
                else:
                    ok = getattr(self, "op_" + op.lower())(key)
                self.ops_done += 1
                self.ops_by_kind[op] = self.ops_by_kind.get(op, 0) + 1
                if self.fresh:
                    self._drop()
                if not ok and self.policy == "stop":
                    return
        except Exception as e:  # noqa: BLE001 - reported as a test error, never swallowed
            self.errors.append(f"client {st.client_id} crashed: {e!r}")
        finally:
            self._drop()

    def _condition(self, key, cond):
        """The header of a conditional PUT and whether its precondition must
        hold (True), must fail (False) or may go either way (None: an outcome
        of this key is unknown, or its value's ETag is)."""
        st = self.st
        settled = not st.oracle.pending.get(key)
        acked = st.oracle.acked.get(key)
        known = st.etags.get(key)
        etag = known[1] if known is not None and known[0] == acked and acked is not ABSENT else None
        if cond == "CREATE":
            return ("If-None-Match", "*"), (acked is ABSENT) if settled else None
        if cond == "IFMATCH":
            if not settled or (acked is not ABSENT and etag is None):
                return ("If-Match", f'"{etag or st.last_etag}"'), None
            return ("If-Match", f'"{etag or st.last_etag}"'), acked is not ABSENT
        # STALE: below every ETag this key's current or pending values can carry.
        return ("If-Match", f'"{max(1, (etag or st.last_etag) - 1)}"'), False if settled else None

    def _new_value(self, key):
        st = self.st
        st.seq += 1
        if callable(self.value_size):
            return make_value(key, st.client_id, st.seq, st.rng, total=self.value_size(st.rng, key))
        return make_value(key, st.client_id, st.seq, st.rng, self.value_size)

    def op_abort(self, key):
        """A PUT cut off inside its body: never stored (the oracle does not
        list it, so a read of it is a violation)."""
        value = self._new_value(key)
        if not value:
            return True
        head = build_request("PUT", key_path(key), headers=[("Content-Length", str(len(value)))])
        try:
            self.conn.send(head + value[:self.st.rng.randrange(len(value))])
        except OSError:
            pass
        self._drop()
        return True

    def op_put(self, key, cond=None):
        st = self.st
        value = self._new_value(key)
        self.sizes_put.add(len(value))
        if cond == "CHUNKED":
            header, must, body, cond = ("Transfer-Encoding", "chunked"), True, chunked(value, st.rng), None
        else:
            header, must = self._condition(key, cond) if cond else (None, True)
            body = value
        r = self._roundtrip("PUT", key, body, [header] if header else None)
        if r is None:
            st.oracle.unknown(key, value)
            return False
        if r.status == 412 and cond:
            if must is True:
                self.errors.append(f"PUT {key!r} ({cond}, {header}): 412 but the precondition held: "
                                   f"acknowledged {st.oracle.acked.get(key) is not ABSENT and 'present' or 'absent'}")
            return True
        if r.status in (201, 204):
            if must is False:
                self.errors.append(f"PUT {key!r} ({cond}, {header}): {r.status} but the precondition failed")
            etag = parse_etag(r.header("ETag"))
            if etag is None or etag <= max(st.last_etag, self.etag_floor):
                self.errors.append(f"PUT {key!r}: ETag {r.header('ETag')} not above this client's "
                                   f"previous acknowledged {st.last_etag} or every one acknowledged "
                                   f"before the client started ({self.etag_floor})")
            else:
                st.last_etag = etag
            expect_new = st.oracle.acked.get(key) is ABSENT
            if r.status == 201 and not expect_new and ABSENT not in st.oracle.pending.get(key, []):
                self.errors.append(f"PUT {key!r}: 201 Created but the key held an acknowledged value")
            if r.status == 204 and expect_new and all(v is ABSENT for v in st.oracle.pending.get(key, [])):
                self.errors.append(f"PUT {key!r}: 204 overwrite but the key was absent")
            st.oracle.ack(key, value)
            if etag is not None:
                st.etags[key] = (value, etag)
            st.acked_puts += 1
            self.acked_after.append(time.monotonic())
            return True
        if r.status == 507:  # the disk is full: refused before anything was written
            self.refused += 1
            self.failures.append(Failure(time.monotonic(), self.conn_worker, "PUT", key, "status 507", False))
            return False
        if r.status >= 500:
            st.oracle.unknown(key, value)
            self.failures.append(Failure(time.monotonic(), self.conn_worker, "PUT", key, f"status {r.status}{detail(r)}", False))
            return False
        self.errors.append(f"PUT {key!r}: unexpected {r!r}")
        st.oracle.unknown(key, value)
        return False

    def op_delete(self, key):
        st = self.st
        r = self._roundtrip("DELETE", key)
        if r is None:
            st.oracle.unknown(key, ABSENT)
            return False
        if r.status in (204, 404):
            allowed = st.oracle.allowed(key)
            if r.status == 404 and ABSENT not in allowed:
                self.errors.append(f"DELETE {key!r}: 404 but the key holds an acknowledged value")
            if r.status == 204 and all(v is ABSENT for v in allowed):
                self.errors.append(f"DELETE {key!r}: 204 but the key was absent")
            st.oracle.ack(key, ABSENT)
            st.etags.pop(key, None)
            st.acked_deletes += 1
            self.acked_after.append(time.monotonic())
            return True
        st.oracle.unknown(key, ABSENT)
        if r.status >= 500:
            self.failures.append(Failure(time.monotonic(), self.conn_worker, "DELETE", key, f"status {r.status}{detail(r)}", False))
        else:
            self.errors.append(f"DELETE {key!r}: unexpected {r!r}")
        return False

    def op_get(self, key):
        st = self.st
        r = self._roundtrip("GET", key)
        if r is None:
            return False
        if r.status == 200 or r.status == 404:
            got = r.body if r.status == 200 else ABSENT
            msg = st.oracle.check(key, got) or etag_mismatch(st, key, got, r)
            if msg:
                self.errors.append("GET during load: " + msg)
            st.reads += 1
            return True
        if r.status >= 500:
            self.failures.append(Failure(time.monotonic(), self.conn_worker, "GET", key, f"status {r.status}{detail(r)}", False))
        else:
            self.errors.append(f"GET {key!r}: unexpected {r!r}")
        return False


def detail(r):
    """': <problem detail>' of an error answer, or ''."""
    try:
        return ": " + str(r.json().get("detail"))
    except (ValueError, AttributeError):
        return ""


def chunked(value, rng):
    """`value` as a chunked body, in chunks of 1 B to 96 KiB."""
    out, i = [], 0
    while i < len(value):
        n = min(len(value) - i, rng.choice([1, 100, 4096, 65536, 98304]))
        out.append(b"%x\r\n%s\r\n" % (n, value[i:i + n]))
        i += n
    return b"".join(out) + b"0\r\n\r\n"


def etag_mismatch(st, key, got, r):
    """None, or a message if a 200 for `got` carries another ETag than the
    one acknowledged (or read) for that value of `key`. A value sent again
    by a write whose outcome is unknown (the short values make_value cannot
    frame are the same bytes each time) may carry that write's newer ETag,
    never an older one."""
    known = st.etags.get(key)
    if got is ABSENT or known is None or known[0] != got:
        return None
    etag = parse_etag(r.header("ETag"))
    resent = got in st.oracle.pending.get(key, [])
    if etag != known[1] and not (resent and etag is not None and etag > known[1]):
        return (f"key {key!r}: its value ({len(got)} bytes) reads back with ETag {r.header('ETag')}, "
                f"acknowledged as \"{known[1]}\"{' (sent again since, outcome unknown)' if resent else ''}")
    return None


def verify_states(port, states, settle=True):
    """Reads every key of every state on one connection (reconnecting if the
    server closes it) and checks it against the oracle. Returns a list of
    violations; with `settle`, what was read becomes the acknowledged state
    (right after a restart nothing else is in flight)."""
    errors = []
    conn = None
    try:
        for st in states:
            for key in st.keys:
                for attempt in range(3):
                    try:
                        if conn is None:
                            conn = Conn(port, timeout=15)
                        r = conn.request("GET", key_path(key))
                        break
                    except (ConnectionClosed, OSError) as e:
                        if conn:
                            conn.close()
                        conn = None
                        if attempt == 2:
                            errors.append(f"verify GET {key!r} failed: {e!r}")
                            r = None
                if r is None:
                    continue
                if r.status not in (200, 404):
                    errors.append(f"verify GET {key!r}: unexpected {r!r}")
                    continue
                got = r.body if r.status == 200 else ABSENT
                msg = st.oracle.check(key, got) or etag_mismatch(st, key, got, r)
                if msg:
                    errors.append(msg)
                if settle:
                    st.oracle.settle(key, got)
                    etag = parse_etag(r.header("ETag")) if got is not ABSENT else None
                    if etag is None:
                        st.etags.pop(key, None)
                    else:
                        st.etags[key] = (got, etag)
    finally:
        if conn:
            conn.close()
    return errors
