#!/usr/bin/env python3
"""A small PUT beside uploads that sent all but their last byte and stalled (the outside audit's probe of the
body budget, bench form): how long the small PUT waits, and the worker's memory.

For each round, each N of --uploads and each server (order shuffled per round; one event worker, defaults
otherwise, a fresh process and data directory per run): N connections each send the head of a PUT of
--size bytes and then all of its body but the last byte as fast as the worker takes it (non-blocking
sends), until every body is sent or none moved for --quiet seconds (the rest wait for room, unread);
then a --small-bytes PUT on a fresh connection (its status and seconds to answer, at most --put-timeout),
a GET of it, and the worker's VmRSS / VmHWM. The stalled uploads stay open and unanswered throughout.

  bench/stalled_uploads.py --kingx new=build-release/src/kingx --kingx ref=/work/ref/s23/kingx \\
      --uploads 200,3000 --rounds 2 --out bench/results/DIR/stalled

Results: OUT/stalled_uploads.json (one row per run, with `uptime` before and after) and OUT/summary.md.
Every process started here is stopped by its PID.
"""
import argparse
import json
import os
import random
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import tempfile
import time


def uptime():
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def request(port, method, path, body=b"", timeout=10.0):
    """(status, body) of one request on a fresh connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n"
        s.sendall(head.encode() + body)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), rest


def status_kib(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name = line.split(":")[0]
            if name in ("VmRSS", "VmHWM", "RssAnon"):
                out[name] = int(line.split()[1])
    return out


class Server:
    def __init__(self, binary, workdir):
        self.port = free_port()
        self.data = os.path.join(workdir, "data")
        log = open(os.path.join(workdir, "out.log"), "wb")
        self.p = subprocess.Popen([binary, "--listen", f"127.0.0.1:{self.port}", "--data", self.data, "--workers", "1",
                                   "--error-log", os.path.join(workdir, "error.log"), "--pid", "none",
                                   "--access-log", "off"], stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if request(self.port, "GET", "/readyz", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if self.p.poll() is not None:
                raise RuntimeError(f"kingx exited {self.p.returncode}")
            time.sleep(0.05)
        else:
            raise RuntimeError("kingx not ready in 120 s")

    def worker(self):
        out = subprocess.run(["pgrep", "-P", str(self.p.pid)], capture_output=True, text=True).stdout.split()
        for pid in out:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == "kingx-worker":
                    return int(pid)
        raise RuntimeError("no worker")

    def stop(self):
        try:
            os.kill(self.p.pid, signal.SIGTERM)
            self.p.wait(60)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.p.wait()


def run(binary, n, args, workdir):
    server = Server(binary, workdir)
    socks = []
    try:
        worker = server.worker()
        base = status_kib(worker)
        size = args.size
        body = memoryview(os.urandom(size))
        sel = selectors.DefaultSelector()
        state = {}
        for i in range(n):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", server.port))
            except BlockingIOError:
                pass
            socks.append(s)
            state[s] = [f"PUT /v1/kv/big{i} HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n".encode(), 0]
            sel.register(s, selectors.EVENT_WRITE)
        t0 = time.monotonic()
        last_move = t0
        sent = 0
        done = 0
        while done < n and time.monotonic() - last_move < args.quiet and time.monotonic() - t0 < args.max_send:
            for key, _ in sel.select(timeout=0.2):
                s = key.fileobj
                st = state[s]
                try:
                    if st[0]:
                        k = s.send(st[0])
                        st[0] = st[0][k:]
                    else:
                        k = s.send(body[st[1]:size - 1])
                        st[1] += k
                        sent += k
                        if st[1] >= size - 1:
                            sel.unregister(s)
                            done += 1
                    if k > 0:
                        last_move = time.monotonic()
                except (BlockingIOError, InterruptedError):
                    pass
        send_s = time.monotonic() - t0
        during = status_kib(worker)
        small = os.urandom(args.small_bytes)
        t1 = time.monotonic()
        try:
            put_status, _ = request(server.port, "PUT", "/v1/kv/small", small, timeout=args.put_timeout)
        except OSError as e:
            put_status = f"no answer: {e!r}"
        put_s = time.monotonic() - t1
        try:
            get_status, got = request(server.port, "GET", "/v1/kv/small", timeout=60)
            get_ok = get_status == 200 and got == small
        except OSError as e:
            get_status, get_ok = f"no answer: {e!r}", False
        after = status_kib(worker)
        # Still open and unanswered: nothing readable on any stalled upload.
        sel2 = selectors.DefaultSelector()
        for s in socks:
            sel2.register(s, selectors.EVENT_READ)
        answered = len(sel2.select(timeout=0))
        return {"uploads": n, "size": size, "sent_mib": round(sent / 2**20, 1), "bodies_sent": done,
                "send_s": round(send_s, 2), "put_status": put_status, "put_s": round(put_s, 4),
                "get_status": get_status, "get_exact": get_ok, "stalled_answered": answered,
                "worker_base_kib": base, "worker_during_kib": during, "worker_after_kib": after}
    finally:
        for s in socks:
            s.close()
        server.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kingx", action="append", required=True, help="NAME=BIN (repeatable)")
    ap.add_argument("--uploads", default="200,3000")
    ap.add_argument("--size", type=int, default=1 << 20)
    ap.add_argument("--small-bytes", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--quiet", type=float, default=3.0, help="stop sending once nothing moved this long (s)")
    ap.add_argument("--max-send", type=float, default=60.0)
    ap.add_argument("--put-timeout", type=float, default=90.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    servers = [tuple(x.split("=", 1)) for x in args.kingx]
    counts = [int(x) for x in args.uploads.split(",")]
    os.makedirs(args.out, exist_ok=True)
    rng = random.Random(args.seed)
    rows = []
    for rnd in range(1, args.rounds + 1):
        for n in counts:
            order = servers[:]
            rng.shuffle(order)
            for name, binary in order:
                workdir = tempfile.mkdtemp(prefix="stalled-", dir=os.environ.get("TMPDIR", "/tmp"))
                try:
                    before = uptime()
                    row = run(binary, n, args, workdir)
                    row.update(round=rnd, server=name, binary=binary, uptime_before=before, uptime_after=uptime())
                finally:
                    shutil.rmtree(workdir, ignore_errors=True)
                rows.append(row)
                print(json.dumps(row), flush=True)
    with open(os.path.join(args.out, "stalled_uploads.json"), "w") as f:
        json.dump(rows, f, indent=1)
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write("| round | uploads | server | bodies sent | small PUT | its wait (s) | GET exact | stalled answered "
                "| worker VmHWM (KiB) | load (before) |\n|---|---|---|---|---|---|---|---|---|---|\n")
        for r in rows:
            load = r["uptime_before"].split("load average:")[-1].strip()
            f.write(f"| {r['round']} | {r['uploads']} | {r['server']} | {r['bodies_sent']} | {r['put_status']} | "
                    f"{r['put_s']} | {r['get_exact']} | {r['stalled_answered']} | "
                    f"{r['worker_after_kib'].get('VmHWM')} | {load} |\n")


if __name__ == "__main__":
    main()
