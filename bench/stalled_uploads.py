#!/usr/bin/env python3
"""A small PUT beside uploads that sent all but their last byte and stalled (the outside audit's probe of the
body budget, bench form): how long the small PUT waits, and the worker's memory.

For each round, each N of --uploads and each server (order shuffled per round; one event worker, defaults
otherwise, a fresh process and data directory per run): N connections each send the head of a PUT of
--size bytes and then all of its body but the last byte as fast as the worker takes it (non-blocking
sends), until every body is sent or none moved for --quiet seconds (the rest wait for room, unread);
then each PUT of --victims on a fresh connection, one after another (its status and seconds to answer, at
most --put-timeout each; `small`: --small-bytes with a Content-Length, `window`: 64 KiB, `chunked`: 100 KiB in
chunks, `expect`: 1,000 bytes whose client waits for 100 Continue before its body), a GET of each, and the
worker's VmRSS / VmHWM, its body spill files (open unlinked files) and the server tree's CPU seconds. The
stalled uploads stay open and unanswered throughout. With --finish, they then send their last byte: how
many are stored byte for byte, the seconds until the last answer, and the CPU seconds of that phase.

  bench/stalled_uploads.py --kingx new=build-release/src/kingx --kingx ref=/work/ref/s23/kingx \\
      --uploads 200,3000 --rounds 2 --out bench/results/DIR/stalled
  bench/stalled_uploads.py ... --victims small,window,chunked,expect --finish [--model threads]

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


def tree_cpu_s(pid):
    """user+sys seconds of pid and its children (the server's process tree)."""
    total = 0
    for p in [pid] + [int(x) for x in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                                       text=True).stdout.split()]:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


def spill_files(pid):
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if ".body-spill-" in os.readlink(f"/proc/{pid}/fd/{fd}"):
                n += 1
        except OSError:
            pass
    return n


def victim(port, kind, args, timeout):
    """(status, seconds, GET exact) of one PUT of `kind` on a fresh connection."""
    rnd = os.urandom
    if kind == "small":
        value = rnd(args.small_bytes)
    elif kind == "window":
        value = rnd(64 << 10)
    elif kind == "chunked":
        value = rnd(100 << 10)
    else:
        value = rnd(1000)
    path = f"/v1/kv/victim-{kind}"
    t = time.monotonic()
    try:
        if kind in ("small", "window"):
            status, _ = request(port, "PUT", path, value, timeout=timeout)
        else:
            with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
                if kind == "chunked":
                    s.sendall(f"PUT {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                              f"Transfer-Encoding: chunked\r\n\r\n".encode())
                    for at in range(0, len(value), 30000):
                        piece = value[at:at + 30000]
                        s.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
                    s.sendall(b"0\r\n\r\n")
                else:
                    s.sendall(f"PUT {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: "
                              f"{len(value)}\r\nExpect: 100-continue\r\n\r\n".encode())
                    head = b""
                    while b"\r\n\r\n" not in head:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        head += chunk
                    if not head.startswith(b"HTTP/1.1 100"):
                        return int(head.split(b" ", 2)[1]) if head else "closed", round(time.monotonic() - t, 4), False
                    s.sendall(value)
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                status = int(data.split(b" ", 2)[1])
    except OSError as e:
        return f"no answer: {e!r}", round(time.monotonic() - t, 4), False
    took = round(time.monotonic() - t, 4)
    try:
        get_status, got = request(port, "GET", path, timeout=60)
        exact = get_status == 200 and got == value
    except OSError:
        exact = False
    return status, took, exact


class Server:
    def __init__(self, binary, workdir, extra=()):
        self.port = free_port()
        self.data = os.path.join(workdir, "data")
        log = open(os.path.join(workdir, "out.log"), "wb")
        self.p = subprocess.Popen([binary, "--listen", f"127.0.0.1:{self.port}", "--data", self.data, "--workers", "1",
                                   "--error-log", os.path.join(workdir, "error.log"), "--pid", "none",
                                   "--access-log", "off"] + list(extra), stdout=log, stderr=subprocess.STDOUT,
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
    server = Server(binary, workdir, args.server_arg)
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
        send_cpu = tree_cpu_s(server.p.pid)
        during = status_kib(worker)
        spilled_files = spill_files(worker)
        victims = {}
        for kind in args.victims.split(","):
            victims[kind] = victim(server.port, kind, args, args.put_timeout)
        after = status_kib(worker)
        # Still open and unanswered: nothing readable on any stalled upload.
        sel2 = selectors.DefaultSelector()
        for s in socks:
            sel2.register(s, selectors.EVENT_READ)
        answered = len(sel2.select(timeout=0))
        row = {"uploads": n, "size": size, "sent_mib": round(sent / 2**20, 1), "bodies_sent": done,
               "send_s": round(send_s, 2), "send_cpu_s": round(send_cpu, 2), "spill_files": spilled_files,
               "victims": victims, "stalled_answered": answered,
               "worker_base_kib": base, "worker_during_kib": during, "worker_after_kib": after}
        if args.finish:
            # The stalled uploads send their last byte; each must be stored exactly.
            cpu0 = tree_cpu_s(server.p.pid)
            t2 = time.monotonic()
            for i, s in enumerate(socks):
                s.setblocking(True)
                s.settimeout(args.put_timeout)
                try:
                    s.sendall(body[size - 1:])
                except OSError:
                    pass
            ok = 0
            for i, s in enumerate(socks):
                try:
                    data = s.recv(4096)
                    if data.startswith(b"HTTP/1.1 201") or data.startswith(b"HTTP/1.1 204"):
                        ok += 1
                except OSError:
                    pass
            row["finish_s"] = round(time.monotonic() - t2, 2)
            row["finish_cpu_s"] = round(tree_cpu_s(server.p.pid) - cpu0, 2)
            row["finished_2xx"] = ok
            exact = 0
            for i in range(0, n, max(1, n // 20)):  # a sample of the values, read back
                st, got = request(server.port, "GET", f"/v1/kv/big{i}", timeout=60)
                exact += st == 200 and got == bytes(body)
            row["finished_exact_sampled"] = f"{exact}/{len(range(0, n, max(1, n // 20)))}"
            row["worker_end_kib"] = status_kib(worker)
        return row
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
    ap.add_argument("--victims", default="small", help="comma-separated: small, window, chunked, expect")
    ap.add_argument("--finish", action="store_true", help="then finish the stalled uploads and check them")
    ap.add_argument("--server-arg", action="append", default=[], help="extra kingx argument (repeatable)")
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
        f.write("| round | uploads | server | bodies sent | victims: status, wait (s), GET exact | stalled answered "
                "| spill files | worker VmHWM (KiB) | send CPU s | finish: 2xx, s, CPU s, exact sampled | load (before) "
                "|\n|---|---|---|---|---|---|---|---|---|---|---|\n")
        for r in rows:
            load = r["uptime_before"].split("load average:")[-1].strip()
            vic = "; ".join(f"{k} {v[0]} {v[1]} {v[2]}" for k, v in r["victims"].items())
            fin = (f"{r['finished_2xx']}, {r['finish_s']}, {r['finish_cpu_s']}, {r['finished_exact_sampled']}"
                   if "finish_s" in r else "-")
            f.write(f"| {r['round']} | {r['uploads']} | {r['server']} | {r['bodies_sent']} | {vic} | "
                    f"{r['stalled_answered']} | {r['spill_files']} | {r['worker_after_kib'].get('VmHWM')} | "
                    f"{r['send_cpu_s']} | {fin} | {load} |\n")


if __name__ == "__main__":
    main()
