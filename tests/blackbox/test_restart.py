"""Starting again right after the previous instance: kingx waits, bounded and
logged, for whoever still holds the data directory's LOCK or the listening
port (the processes of an instance stopped with kill -9 are still exiting for
tens to hundreds of milliseconds) instead of exiting 1.

Cases: the LOCK held by another process for a moment; the port held by
another listener for a moment; kill -9 of the whole process group followed by
a start as soon as the master is reaped (not waiting for its children), 20
times, each start serving the keys written before the kill. A holder that
never lets go still makes startup fail: tests/blackbox/test_config.py.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_restart.py
"""

import fcntl
import os
import signal
import socket
import threading
import time

from kingx_harness import HOST, Server, check, free_port, http, key_path, run_with_servers

CURRENT = None


def current():
    return CURRENT


def start(server):
    global CURRENT
    CURRENT = server
    server.start(wait=False)
    server.wait_ready(timeout=30)
    return server


def release_after(seconds, fn):
    t = threading.Timer(seconds, fn)
    t.start()
    return t


def test_lock_held_for_a_moment():
    server = Server(["--workers", "1"])
    fd = os.open(os.path.join(server.data_dir, "LOCK"), os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    t = release_after(0.7, lambda: os.close(fd))
    try:
        start(server)
    finally:
        t.join()
    logs = server.logs()
    check("waiting up to" in logs and "LOCK" in logs, f"the wait is logged:\n{logs}")
    check(http(server.port, "PUT", key_path("k"), b"v").status in (200, 201, 204), "serves writes")
    server.cleanup()


def test_port_held_for_a_moment():
    port = free_port()
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind((HOST, port))
    holder.listen(1)
    server = Server(["--workers", "1"], port=port)
    t = release_after(0.7, holder.close)
    try:
        start(server)
    finally:
        t.join()
    logs = server.logs()
    check("waiting up to" in logs and "in use" in logs.lower(), f"the wait is logged:\n{logs}")
    check(server.port == port, f"serves on the port it was given ({server.port} != {port})")
    server.cleanup()


def test_start_as_soon_as_the_master_is_reaped_after_kill_9():
    workdir = None
    port = free_port()
    data_dir = None
    prev = None
    for cycle in range(20):
        server = Server(["--workers", "2"], port=port, data_dir=data_dir, workdir=workdir)
        workdir, data_dir = server.workdir, server.data_dir
        t0 = time.monotonic()
        start(server)
        if prev is not None:
            got = http(port, "GET", key_path(f"k{cycle - 1}"))
            check(got.status == 200 and got.body == f"v{cycle - 1}".encode(),
                  f"cycle {cycle}: the key written before the kill: {got.status} {got.body[:40]!r}")
        r = http(port, "PUT", key_path(f"k{cycle}"), f"v{cycle}".encode())
        check(r.status in (200, 201, 204), f"cycle {cycle}: PUT {r.status}")
        # kill -9 of the whole group; wait for the master only, then start again at once.
        os.killpg(server.pid, signal.SIGKILL)
        server.proc.wait(30)
        prev = server
        check(time.monotonic() - t0 < 60, f"cycle {cycle} took too long")
    # The last one's children may still be exiting: let the harness reap them.
    prev.kill_group()


CASES = [
    ("LOCK held by another process for a moment", test_lock_held_for_a_moment),
    ("port held by another listener for a moment", test_port_held_for_a_moment),
    ("start as soon as the master is reaped after kill -9, x20", test_start_as_soon_as_the_master_is_reaped_after_kill_9),
]

if __name__ == "__main__":
    run_with_servers("restart", CASES, current)
