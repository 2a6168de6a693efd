"""Starting, probing and stopping the processes the harness owns.

Every process is started in its own session (so its process group id is its pid) and stopped by
that pid only: a polite signal first, then SIGKILL to that one process group after a deadline.
"""

import http.client
import os
import signal
import socket
import subprocess
import time


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """One child process with its output in log_path. Not thread-safe."""

    def __init__(self, name, argv, log_path, cwd=None, env=None):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        log = open(log_path, "ab")
        try:
            self.popen = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, cwd=cwd, env=env,
                                          start_new_session=True)
        finally:
            log.close()
        self.pid = self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout_s=15.0):
        """Send sig to the process, wait up to timeout_s, then SIGKILL its process group.
        Returns the exit code (negative for a signal)."""
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                pass
        # Children (workers, writer) may outlive a master that died or ignored the signal.
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        return self.popen.returncode

    def log_tail(self, nbytes=2000):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - nbytes))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


def proc_stats():
    """(pid, text of /proc/PID/stat) for every process readable now (one that exits meanwhile is skipped)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                st = f.read()
        except OSError:
            continue
        yield int(pid), st


def stat_ppid(st):
    """The parent pid in a /proc/PID/stat text (the field after the state, past the command's parentheses)."""
    return int(st[st.rindex(")") + 2:].split()[1])


def children(parent_pid, comms):
    """The pids of parent_pid's children whose command name is one of comms (a kingx master's
    "kingx-writer", "kingx-worker"; nginx's "nginx")."""
    return [pid for pid, st in proc_stats()
            if stat_ppid(st) == parent_pid and st[st.index("(") + 1:st.rindex(")")] in comms]


def wait_tcp(port, timeout_s, proc=None):
    """Wait until 127.0.0.1:port accepts a connection. Raises RuntimeError on timeout or if
    proc exited."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.name} exited: {proc.log_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} not accepting after {timeout_s}s")


def http_request(port, method, path, body=None, timeout_s=10.0, headers=None):
    """One HTTP/1.1 request on a fresh connection. Returns (status, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def metrics(port, timeout_s=10.0):
    """{name: value} of the samples without labels on kingx's GET /metrics (raises on another status)."""
    status, body = http_request(port, "GET", "/metrics", timeout_s=timeout_s)
    if status != 200:
        raise RuntimeError(f"/metrics -> {status}")
    out = {}
    for line in body.decode().splitlines():
        name, _, value = line.partition(" ")
        if name.startswith("kingx_") and "{" not in name and value:
            out[name] = float(value)
    return out


def wait_http_ok(port, path, timeout_s, proc=None):
    """Wait until GET path answers 200. Raises RuntimeError on timeout or if proc exited."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.name} exited: {proc.log_tail()}")
        try:
            status, _ = http_request(port, "GET", path, timeout_s=2)
            if status == 200:
                return
            last = f"status {status}"
        except OSError as e:
            last = str(e)
        time.sleep(0.1)
    raise RuntimeError(f"GET {path} on port {port} not 200 after {timeout_s}s ({last})")
