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
    (rng, key) -> exact value size in bytes. sizes_put collects the sizes sent."""

    def __init__(self, port_fn, state, stop, mix=(60, 25, 15), policy="stop", locate=None,
                 max_ops=100000, deadline=None, fresh_connections=False, value_size=None):
        super().__init__(daemon=True)
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

    def _roundtrip(self, method, key, body=None):
        """Returns the response, or None after recording a failure."""
        reused = self.conn.requests_sent > 0
        try:
            self.conn.send(build_request(method, key_path(key), body))
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
                op = st.rng.choices(("PUT", "GET", "DELETE"), weights=self.mix)[0]
                key = st.rng.choice(st.keys)
                ok = getattr(self, "op_" + op.lower())(key)
                self.ops_done += 1
                if self.fresh:
                    self._drop()
                if not ok and self.policy == "stop":
                    return
        except Exception as e:  # noqa: BLE001 - reported as a test error, never swallowed
            self.errors.append(f"client {st.client_id} crashed: {e!r}")
        finally:
            self._drop()

    def op_put(self, key):
        st = self.st
        st.seq += 1
        if callable(self.value_size):
            value = make_value(key, st.client_id, st.seq, st.rng, total=self.value_size(st.rng, key))
        else:
            value = make_value(key, st.client_id, st.seq, st.rng, self.value_size)
        self.sizes_put.add(len(value))
        r = self._roundtrip("PUT", key, value)
        if r is None:
            st.oracle.unknown(key, value)
            return False
        if r.status in (201, 204):
            etag = parse_etag(r.header("ETag"))
            if etag is None or etag <= st.last_etag:
                self.errors.append(f"PUT {key!r}: ETag {r.header('ETag')} not above this client's "
                                   f"previous acknowledged {st.last_etag}")
            else:
                st.last_etag = etag
            expect_new = st.oracle.acked.get(key) is ABSENT
            if r.status == 201 and not expect_new and ABSENT not in st.oracle.pending.get(key, []):
                self.errors.append(f"PUT {key!r}: 201 Created but the key held an acknowledged value")
            if r.status == 204 and expect_new and all(v is ABSENT for v in st.oracle.pending.get(key, [])):
                self.errors.append(f"PUT {key!r}: 204 overwrite but the key was absent")
            st.oracle.ack(key, value)
            st.acked_puts += 1
            self.acked_after.append(time.monotonic())
            return True
        if r.status >= 500:
            st.oracle.unknown(key, value)
            self.failures.append(Failure(time.monotonic(), self.conn_worker, "PUT", key, f"status {r.status}", False))
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
            st.acked_deletes += 1
            self.acked_after.append(time.monotonic())
            return True
        st.oracle.unknown(key, ABSENT)
        if r.status >= 500:
            self.failures.append(Failure(time.monotonic(), self.conn_worker, "DELETE", key, f"status {r.status}", False))
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
            msg = st.oracle.check(key, got)
            if msg:
                self.errors.append("GET during load: " + msg)
            st.reads += 1
            return True
        if r.status >= 500:
            self.failures.append(Failure(time.monotonic(), self.conn_worker, "GET", key, f"status {r.status}", False))
        else:
            self.errors.append(f"GET {key!r}: unexpected {r!r}")
        return False


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
                msg = st.oracle.check(key, got)
                if msg:
                    errors.append(msg)
                if settle:
                    st.oracle.settle(key, got)
    finally:
        if conn:
            conn.close()
    return errors
