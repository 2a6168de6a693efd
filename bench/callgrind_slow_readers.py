#!/usr/bin/env python3
"""Instructions (callgrind Ir) one kingx worker spends per slow reader: a client that asks for a
1 MiB value (random bytes: sent raw from its segment) with a tiny receive window and then reads a
few bytes now and then, as slowhttptest -X does. A figure a busy machine cannot move.

Under callgrind, one worker (event model unless MODEL_ARGS say otherwise): PUT the value, zero the
counters, then
  open   --readers clients each connect, send their GET (pipelined --pipeline times, as
         slowhttptest -k does) and wait until the server queued part of the answer for them
         (/proc/net/tcp); dump: Ir per reader opened;
  hold   for --hold-s seconds each reader reads --read-bytes every --read-every-s; dump: Ir per
         reader per second held (the timers, wake-ups and writes a slow reader costs while it
         reads).
The worker's write system calls over each window come from /proc/PID/io (syscw).

  bench/callgrind_slow_readers.py --kingx new=build-release/src/kingx --kingx ref=/work/ref/s25/kingx \\
      --readers 100 --hold-s 5 --rounds 2 --out bench/results/DIR/cg-slow-readers.json --keep DIR/raw

Every process started here is stopped by its PID; the scratch directory is removed.
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import procs  # noqa: E402


def callgrind_control(*args):
    subprocess.run(["callgrind_control", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)


def total_ir(path):
    with open(path) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def newest_dump(d, pid, seen):
    files = [os.path.join(d, f) for f in os.listdir(d) if f.startswith(f"cg.{pid}")]
    fresh = [f for f in files if f not in seen]
    return max(fresh, key=os.path.getmtime) if fresh else None


def dump(d, pid, seen, keep=None):
    """Dumps the worker's counters; returns their Ir total (the file copied to keep, if given)."""
    callgrind_control("-d", str(pid))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        f = newest_dump(d, pid, seen)
        if f:
            time.sleep(0.5)  # written whole
            seen.add(f)
            if keep:
                shutil.copy(f, keep)
            return total_ir(f)
        time.sleep(0.2)
    raise RuntimeError("callgrind wrote no dump")


def syscw(pid):
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("syscw:"):
                return int(line.split()[1])
    return 0


def queued(server_port, client_ports):
    """How many of client_ports have bytes queued at the server's end (/proc/net/tcp tx_queue)."""
    want = set(client_ports)
    got = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            p = line.split()
            if (p[3] == "01" and int(p[1].split(":")[1], 16) == server_port and
                    int(p[2].split(":")[1], 16) in want and int(p[4].split(":")[0], 16) > 0):
                got.add(int(p[2].split(":")[1], 16))
    return len(got)


def measure(name, binary, args, model_args):
    d = tempfile.mkdtemp(prefix=f"cg-slow-{name}-")
    port = procs.free_port()
    argv = ["valgrind", "--tool=callgrind", "--trace-children=yes", f"--callgrind-out-file={d}/cg.%p", binary,
            "--listen", f"127.0.0.1:{port}", "--data", os.path.join(d, "data"), "--workers", "1",
            "--error-log", os.path.join(d, "err.log")] + model_args
    p = procs.Proc("kingx", argv, os.path.join(d, "out.log"))
    readers = []
    try:
        procs.wait_http_ok(port, "/readyz", 180, p)
        value = os.urandom(1 << 20)
        status, _ = procs.http_request(port, "PUT", "/v1/kv/big", body=value, timeout_s=120)
        if status not in (201, 204):
            raise RuntimeError(f"PUT: {status}")
        for _ in range(3):  # the value's pages mapped and touched before counting
            procs.http_request(port, "GET", "/v1/kv/big", timeout_s=120)
        workers = procs.children(p.pid, ("kingx-worker",))
        if len(workers) != 1:
            raise RuntimeError(f"expected one kingx-worker under {p.pid}, found {workers}")
        worker = workers[0]
        seen = set()
        callgrind_control("-z", str(worker))
        w0 = syscw(worker)
        req = b"GET /v1/kv/big HTTP/1.1\r\nHost: x\r\n\r\n" * args.pipeline
        for _ in range(args.readers):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf)
            s.connect(("127.0.0.1", port))
            s.sendall(req)
            readers.append(s)
        ports = [s.getsockname()[1] for s in readers]
        deadline = time.monotonic() + 120
        while queued(port, ports) < len(readers) and time.monotonic() < deadline:
            time.sleep(0.2)
        got = queued(port, ports)
        keep = os.path.join(args.keep, f"cg-{name}-r{args.round}") if args.keep else None
        ir_open = dump(d, worker, seen, keep and keep + "-open.out")
        w1 = syscw(worker)
        t0 = time.monotonic()
        for s in readers:
            s.setblocking(False)
        while time.monotonic() - t0 < args.hold_s:
            for s in readers:
                try:
                    s.recv(args.read_bytes)
                except BlockingIOError:
                    pass
            time.sleep(args.read_every_s)
        held_s = time.monotonic() - t0
        ir_hold = dump(d, worker, seen, keep and keep + "-hold.out")
        w2 = syscw(worker)
        return {"server": name, "readers": args.readers, "queued": got, "ir_open": ir_open,
                "ir_per_reader_opened": round(ir_open / args.readers), "writes_open": w1 - w0,
                "ir_hold": ir_hold, "hold_s": round(held_s, 1),
                "ir_per_reader_second_held": round(ir_hold / args.readers / held_s),
                "writes_hold": w2 - w1, "load": os.getloadavg()[0]}
    finally:
        for s in readers:
            s.close()
        p.stop()
        shutil.rmtree(d, ignore_errors=True)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kingx", action="append", required=True, metavar="NAME=BIN")
    ap.add_argument("--readers", type=int, default=200)
    ap.add_argument("--pipeline", type=int, default=3)
    ap.add_argument("--rcvbuf", type=int, default=1024)
    ap.add_argument("--hold-s", type=float, default=10)
    ap.add_argument("--read-bytes", type=int, default=32)
    ap.add_argument("--read-every-s", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--out")
    ap.add_argument("--keep", help="a directory to copy each window's callgrind dump into")
    ap.add_argument("model_args", nargs="*", help="kingx flags after --, e.g. -- --model threads")
    args = ap.parse_args(argv)
    rows = []
    for rnd in range(args.rounds):
        for spec in args.kingx:
            name, _, binary = spec.partition("=")
            args.round = rnd + 1
            r = measure(name, binary, args, args.model_args)
            r["round"] = rnd + 1
            rows.append(r)
            print(json.dumps(r), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"argv": sys.argv, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
