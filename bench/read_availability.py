#!/usr/bin/env python3
"""Read availability soak: GETs of existing keys while the writer is killed
and respawned, and while millions of new keys make the index grow; each
binary (kingx, and the previous main with --baseline) in the same run, each
on its own copy of the same database.

    bench/read_availability.py --kingx build/src/kingx --baseline /tmp/old/kingx \
        [--scenarios kill,grow] [--keys 1000000] [--kills 100] [--inserts 5000000] \
        [--readers 3] [--inserters 2] [--dir /var/tmp/kingx-avail] [--out DIR]

kill: --keys keys of 100 B (written once by bench/fill_db, kept in --dir),
      --readers client processes GET random keys over keep-alive connections
      and check every body; the writer process is killed (SIGKILL) --kills
      times, each time once the respawned writer is ready and 2 s old (the
      master's respawn backoff grows for a writer that dies younger).
grow: the same readers while --inserters client processes PUT --inserts new
      keys (pipelined 64 deep, 100 B, sync=none: the index is what is
      measured, not fdatasync).
A failure is any GET that is not a 200 with the exact bytes: another status
(503 included), a wrong body, or no response. A GET that got no byte back on
a reused keep-alive connection is retried once (RFC 9112 section 9.3.1).

Output: a table on stdout and result.json in --out. Standard library only.
"""

import argparse
import json
import multiprocessing as mp
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import procs  # noqa: E402

HOST = "127.0.0.1"


def value_for(key, n=100):
    unit = (key + "|").encode()
    return (unit * (n // len(unit) + 1))[:n]


class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection((HOST, port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        self.sock.close()

    def read_response(self):
        """(status, body, close) of one response (Content-Length bodies)."""
        while b"\r\n\r\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise ConnectionError("closed", len(self.buf))
            self.buf += d
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = 0
        close = False
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            k = k.strip().lower()
            if k == b"content-length":
                length = int(v)
            elif k == b"connection" and v.strip().lower() == b"close":
                close = True
        while len(rest) < length:
            d = self.sock.recv(65536)
            if not d:
                raise ConnectionError("closed mid-body", 1)
            rest += d
        self.buf = rest[length:]
        return status, rest[:length], close


def reader_proc(port, keys, seed, stop, out):
    rng = random.Random(seed)
    ok = 0
    fails = {}
    examples = []
    conn, used = None, False
    while not stop.is_set():
        key = f"key-{rng.randrange(keys)}"
        req = f"GET /v1/kv/{key} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        for attempt in (0, 1):
            try:
                if conn is None:
                    conn, used = Conn(port), False
                conn.sock.sendall(req)
                status, body, close = conn.read_response()
                used = True
            except (OSError, ConnectionError) as e:
                partial = e.args[1] if isinstance(e, ConnectionError) and len(e.args) > 1 else 0
                retry = used and partial == 0 and attempt == 0
                if conn is not None:
                    conn.close()
                conn = None
                if retry:
                    continue
                fails["no response"] = fails.get("no response", 0) + 1
                if len(examples) < 10:
                    examples.append(f"{key}: {e!r}")
                break
            if status != 200:
                fails[f"status {status}"] = fails.get(f"status {status}", 0) + 1
                if len(examples) < 10:
                    examples.append(f"{key}: {status} {body[:120]!r}")
            elif body != value_for(key):
                fails["wrong body"] = fails.get("wrong body", 0) + 1
                if len(examples) < 10:
                    examples.append(f"{key}: wrong body {body[:60]!r}")
            else:
                ok += 1
            if close:
                conn.close()
                conn = None
            break
    out.put({"ok": ok, "fails": fails, "examples": examples})


def inserter_proc(port, first, count, out):
    conn = Conn(port)
    body = b"v" * 100
    done = bad = 0
    n = first
    end = first + count
    while n < end:
        depth = min(64, end - n)
        conn.sock.sendall(b"".join(
            b"PUT /v1/kv/new-%d HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n%s" % (n + i, body)
            for i in range(depth)))
        for _ in range(depth):
            status, _, _ = conn.read_response()
            if status == 201:
                done += 1
            else:
                bad += 1
        n += depth
    conn.close()
    out.put({"inserted": done, "failed": bad})


def wait(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = pred()
        if r:
            return r
        time.sleep(0.01)
    raise RuntimeError(f"timed out waiting for {what}")


class Server:
    def __init__(self, binary, data, work, extra):
        self.port = procs.free_port()
        self.proc = procs.Proc(
            "kingx", [binary, "--listen", f"{HOST}:{self.port}", "--data", data, "--workers", "2", "--error-log",
                      os.path.join(work, "error.log"), "--access-log", "off", "--pid", os.path.join(work, "pid")] + extra,
            os.path.join(work, "stdout.log"))
        procs.wait_http_ok(self.port, "/readyz", 600, self.proc)

    def writer(self):
        w = procs.children(self.proc.pid, ("kingx-writer",))
        return w[0] if len(w) == 1 else None

    def stop(self):
        self.proc.stop(timeout_s=120)


def run_scenario(name, binary, data, a, rng):
    work = tempfile.mkdtemp(prefix="kingx-avail-")
    copy = os.path.join(work, "data")
    shutil.copytree(data, copy)
    extra = ["--sync", "none"] if name == "grow" else []
    srv = Server(binary, copy, work, extra)
    stop = mp.Event()
    out = mp.Queue()
    readers = [mp.Process(target=reader_proc, args=(srv.port, a.keys, 100 + i, stop, out)) for i in range(a.readers)]
    for p in readers:
        p.start()
    t0 = time.monotonic()
    detail = {}
    try:
        time.sleep(1.0)
        if name == "kill":
            kills = 0
            for _ in range(a.kills):
                w = wait(srv.writer, 60, "a writer")
                os.kill(w, signal.SIGKILL)
                kills += 1
                wait(lambda: srv.writer() not in (None, w) and srv.writer(), 60, "the respawned writer")
                procs.wait_http_ok(srv.port, "/readyz", 120, srv.proc)
                time.sleep(2.0 + rng.random() * 0.5)
            detail["kills"] = kills
        else:
            iq = mp.Queue()
            per = a.inserts // a.inserters
            ins = [mp.Process(target=inserter_proc, args=(srv.port, i * per, per, iq)) for i in range(a.inserters)]
            for p in ins:
                p.start()
            results = [iq.get(timeout=3600) for _ in ins]
            for p in ins:
                p.join()
            detail["inserted"] = sum(r["inserted"] for r in results)
            detail["insert_failures"] = sum(r["failed"] for r in results)
        time.sleep(1.0)
    finally:
        stop.set()
        got = [out.get(timeout=120) for _ in readers]
        for p in readers:
            p.join(30)
        srv.stop()
        shutil.rmtree(work, ignore_errors=True)
    fails = {}
    for g in got:
        for k, v in g["fails"].items():
            fails[k] = fails.get(k, 0) + v
    return {"scenario": name, "seconds": round(time.monotonic() - t0, 1), "gets_ok": sum(g["ok"] for g in got),
            "gets_failed": sum(fails.values()), "failures_by_kind": fails,
            "examples": [e for g in got for e in g["examples"]][:10], **detail}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kingx", default=os.environ.get("KINGX_BIN", "build/src/kingx"))
    ap.add_argument("--baseline")
    ap.add_argument("--fill-db", default="build/bench/fill_db")
    ap.add_argument("--scenarios", default="kill,grow")
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--kills", type=int, default=100)
    ap.add_argument("--inserts", type=int, default=5_000_000)
    ap.add_argument("--readers", type=int, default=3)
    ap.add_argument("--inserters", type=int, default=2)
    ap.add_argument("--dir", default="/var/tmp/kingx-avail")
    ap.add_argument("--out")
    a = ap.parse_args()

    data = os.path.join(a.dir, f"db-{a.keys}x100")
    if not os.path.isdir(data):
        os.makedirs(a.dir, exist_ok=True)
        subprocess.run([a.fill_db, "--data", data + ".tmp", "--keys", str(a.keys), "--value-bytes", "100"],
                       check=True)
        os.rename(data + ".tmp", data)
    bins = [("kingx", a.kingx)] + ([("baseline", a.baseline)] if a.baseline else [])
    rng = random.Random(1)
    runs = []
    for scenario in a.scenarios.split(","):
        for name, b in bins:
            with open("/proc/loadavg") as f:
                load = float(f.read().split()[0])
            r = run_scenario(scenario, b, data, a, rng)
            r.update({"server": name, "binary": b, "loadavg_1m_before": load})
            runs.append(r)
            print(f"{scenario:5s} {name:9s} GETs ok {r['gets_ok']:9d} failed {r['gets_failed']:7d} "
                  f"{r['failures_by_kind']} {({k: r[k] for k in ('kills', 'inserted') if k in r})} "
                  f"({r['seconds']} s, load {load:.2f})", flush=True)
    result = {"command": " ".join(sys.argv), "keys": a.keys, "cpus": os.cpu_count(), "runs": runs}
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "result.json"), "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
