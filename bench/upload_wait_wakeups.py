"""What an event worker does while uploads wait for room (standard library
only): its epoll_wait returns, recv calls and CPU seconds over a window in
which nothing arrives and nothing is released.

Two waits, each on a fresh one-worker server:
  staging  a 300 KB PUT (a large value with --write-queue-bytes 1M) sends
           half its body and stalls, holding the staging room (an empty
           database admits one large upload alone); two more 300 KB PUTs,
           sent whole, are held for staging room before their bodies;
  body     --body-buffer-bytes 1M (the default write queue: no large
           values): a 300 KB PUT holding the whole
           reservation stalls halfway, a 200 KB PUT waits for window room
           after its first 64 KiB (test_readiness.py's setup).
The window is `--seconds` long; strace follows the worker meanwhile (its
counts are of calls made while traced, so the CPU figure is read in a
second, untraced window of the same length).

    python3 bench/upload_wait_wakeups.py BIN [BIN...] [--seconds 2] [--rounds 2]

Each round runs every binary in turn (interleaved). Prints one line per
binary, wait and round.
"""

import argparse
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "blackbox"))
from kingx_harness import Server, build_request, key_path, server_rx_queue, traced_calls, wait_for  # noqa: E402

CALLS = ("epoll_wait", "epoll_pwait", "recvfrom", "recvmsg", "read")


def cpu_ticks(pid):
    """utime + stime of process pid, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def upload(port, name, length, send):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(build_request("PUT", key_path(name), None, [("Content-Length", str(length))]))
    s.sendall(os.urandom(send))
    return s


def setup(kind, port):
    """The sockets of one wait, once every waiter waits (bytes unread)."""
    socks = []
    if kind == "staging":
        holder = upload(port, "holder", 300_000, 150_000)
        socks.append(holder)
        hp = holder.getsockname()[1]
        wait_for(lambda: server_rx_queue(port, hp) == 0, 30, "the holder's bytes to be read")
        for i in range(2):
            w = upload(port, f"waiter{i}", 300_000, 300_000)
            socks.append(w)
            wp = w.getsockname()[1]
            wait_for(lambda: (server_rx_queue(port, wp) or 0) > 100_000, 30, "a waiter to wait")
    else:
        holder = upload(port, "holder", 300_000, 100_000)
        socks.append(holder)
        hp = holder.getsockname()[1]
        wait_for(lambda: server_rx_queue(port, hp) == 0, 30, "the holder's bytes to be read")
        w = upload(port, "waiter", 200_000, 100_000)
        socks.append(w)
        wp = w.getsockname()[1]
        wait_for(lambda: 0 < (server_rx_queue(port, wp) or 0) <= 100_000 - 65536, 30, "the waiter to wait")
    time.sleep(0.5)
    return socks


def measure(binary, kind, seconds):
    args = ["--workers", "1"]
    if kind == "staging":
        args += ["--write-queue-bytes", "1M"]
    else:
        args += ["--body-buffer-bytes", "1048576", "--compression-level", "0", "--body-spill-bytes", "0"]
    os.environ["KINGX_BIN"] = binary
    srv = Server(args)
    srv.start()
    try:
        worker = srv.wait_children("kingx-worker", 1)[0]
        socks = setup(kind, srv.port)
        counts = traced_calls(worker, CALLS, lambda: time.sleep(seconds))
        t0 = cpu_ticks(worker)
        time.sleep(seconds)
        cpu = (cpu_ticks(worker) - t0) / os.sysconf("SC_CLK_TCK")
        for s in socks:
            s.close()
        return counts, cpu
    finally:
        srv.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bins", nargs="+")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    for r in range(a.rounds):
        for kind in ("staging", "body"):
            for b in a.bins:
                counts, cpu = measure(b, kind, a.seconds)
                waits = counts["epoll_wait"] + counts["epoll_pwait"]
                recvs = counts["recvfrom"] + counts["recvmsg"]
                print(f"round {r} {kind:8s} {b}: {waits} epoll_wait returns, {recvs} recv, {counts['read']} read "
                      f"in {a.seconds:.0f} s; worker CPU {cpu:.2f} s in {a.seconds:.0f} s", flush=True)


if __name__ == "__main__":
    main()
