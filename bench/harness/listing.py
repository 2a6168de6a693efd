"""What the listing benchmarks (bench/list_bench.py, bench/read_only_listing.py) share: starting a
kingx on a database directory, one GET on a fresh connection, waiting until a server lists, the
load average. Standard library only.

Servers run on 127.0.0.1 with an ephemeral port and 2 workers, in their own session, and are
stopped by their pid: TERM, then after 120 s KILL to their process group.
"""

import os
import signal
import socket
import subprocess
import time

from .procs import free_port


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def start_server(kingx, data, work, name, extra_args=()):
    """kingx on `data` (its logs and pid file in `work`, named after `name`). Returns
    (popen, port, error log path)."""
    port = free_port()
    err = os.path.join(work, f"{name}.error.log")
    if os.path.exists(err):
        os.unlink(err)
    argv = [kingx, *extra_args, "--listen", f"127.0.0.1:{port}", "--data", data, "--workers", "2",
            "--error-log", err, "--access-log", "off", "--pid", os.path.join(work, f"{name}.pid")]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    return proc, port, err


def stop_server(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def get(port, target, timeout_s=30.0):
    """(status, body) of one GET on a fresh connection; (None, b'') when it fails."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
            s.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while True:
                chunk = s.recv(1 << 16)
                if not chunk:
                    break
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head[9:12]), body
    except (OSError, ValueError):
        return None, b""


def wait_listing(servers, timeout_s, poll_s=0.05):
    """Waits until every (name, popen, port, error log) server answers a first listing page with 200
    (503 while its key view is built). Returns ({name: seconds}, {name: first page body}).
    Raises RuntimeError when one exits or timeout_s passes."""
    t0 = time.monotonic()
    ready, bodies = {}, {}
    while len(ready) < len(servers):
        for name, proc, port, err in servers:
            if name in ready:
                continue
            if proc.poll() is not None:
                raise RuntimeError(f"kingx for {name} exited with {proc.returncode}: " + open(err).read()[-2000:])
            status, body = get(port, "/v1/kv/?limit=1000")
            if status == 200:
                ready[name] = time.monotonic() - t0
                bodies[name] = body
        if len(ready) < len(servers):
            if time.monotonic() - t0 > timeout_s:
                raise RuntimeError(f"no listing after {timeout_s} s")
            time.sleep(poll_s)
    return ready, bodies
