#!/usr/bin/env python3
"""What the http counters' shared stripes cost in memory, per process, in both serving models.

    bench/counter_stripes.py --kingx new=build-release/src/kingx --kingx ref=/work/ref/s29/kingx \
        [--threads 1,16,150,1000] [--conns 1,150,1000] [--scratch DIR] [--out result.json]

For each binary, an event server and a thread-pool server per --threads count are started one
after the other (--workers 1, 127.0.0.1, ephemeral port, a fresh data directory under --scratch,
stopped by PID), and each process's memory is read at each phase:

  idle        after start (the harness's readiness probes were answered)
  scrape      after one GET /metrics
  conns=C     after C connections held open at once, each answered one GET of a 100 B value (in
              the thread model each is served by its own pool thread, so C threads count), then
              closed, then one more scrape; C from --conns, at most the pool's size

Per process (master, writer, worker): Rss and Pss of the whole process (smaps_rollup) and of the
server's one shared anonymous mapping (smaps' "/dev/zero (deleted)": the index, queue, rings and
the counter stripes). Bytes only: the load average beside them says how busy the machine was,
which moves no byte here. Output: a table on stdout, every figure in --out (JSON). Standard
library only.
"""

import argparse
import json
import os
import selectors
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "blackbox"))
from kingx_harness import Conn, Server, key_path, shared_memory_kib  # noqa: E402

VALUE = b"v" * 100


def rollup_kib(pid):
    """{"rss", "pss"} KiB of pid's whole memory (smaps_rollup); zeros if it is gone."""
    out = {"rss": 0, "pss": 0}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                name = line.split(":")[0]
                if name in ("Rss", "Pss"):
                    out[name.lower()] = int(line.split()[1])
    except OSError:
        pass
    return out


def snapshot(server):
    """Per process role: whole and shared-mapping Rss/Pss in KiB."""
    roles = {"master": server.pid}
    for comm, role in (("kingx-writer", "writer"), ("kingx-worker", "worker")):
        pids = server.children(comm)
        if pids:
            roles[role] = pids[0][0]
    return {role: {"all": rollup_kib(pid), "shm": shared_memory_kib(pid)} for role, pid in roles.items()}


def hold_connections(port, n, path, timeout_s=30.0):
    """Opens n connections, sends one GET on each, waits until each is answered (all still
    open), then closes them. Returns how many were answered."""
    socks = []
    sel = selectors.DefaultSelector()
    req = f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(req)
            s.setblocking(False)
            socks.append(s)
            sel.register(s, selectors.EVENT_READ)
        answered = 0
        deadline = time.monotonic() + timeout_s
        while answered < n and time.monotonic() < deadline:  # bounded by the deadline
            for key, _ in sel.select(timeout=0.5):
                try:
                    data = key.fileobj.recv(65536)
                except BlockingIOError:
                    continue
                sel.unregister(key.fileobj)
                if data.startswith(b"HTTP/1.1 200"):
                    answered += 1
        return answered
    finally:
        sel.close()
        for s in socks:
            s.close()


def scrape(port):
    with Conn(port) as c:
        r = c.request("GET", "/metrics")
        if r.status != 200:
            raise RuntimeError(f"GET /metrics: {r.status}")


def measure(binary, model_args, conns, scratch):
    work = tempfile.mkdtemp(prefix="stripes-", dir=scratch)
    server = Server(["--workers", "1"] + model_args, workdir=work)
    server.bin = binary
    phases = []
    with server:
        path = key_path("stripes")
        with Conn(server.port) as c:
            r = c.request("PUT", path, VALUE)
            if r.status not in (200, 201, 204):
                raise RuntimeError(f"PUT: {r.status}")
        time.sleep(0.5)
        phases.append(("idle", snapshot(server)))
        scrape(server.port)
        phases.append(("scrape", snapshot(server)))
        for n in conns:
            got = hold_connections(server.port, n, path)
            if got != n:
                raise RuntimeError(f"{n} connections: {got} answered")
            time.sleep(0.3)  # the pool threads see the closes
            scrape(server.port)
            phases.append((f"conns={n}", snapshot(server)))
    return phases


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kingx", action="append", required=True, metavar="LABEL=PATH")
    ap.add_argument("--threads", default="1,16,150,1000")
    ap.add_argument("--conns", default="1,150,1000")
    ap.add_argument("--scratch", default=None, help="where the data directories go (default: $TMPDIR)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    bins = [tuple(x.split("=", 1)) for x in a.kingx]
    os.environ.setdefault("KINGX_BIN", bins[0][1])  # the harness wants one; each Server gets its own
    conns = [int(x) for x in a.conns.split(",")]
    configs = [("event", [], [c for c in conns if c <= 150])]
    for t in (int(x) for x in a.threads.split(",")):
        configs.append((f"threads={t}", ["--model", "threads", "--threads", str(t)], [c for c in conns if c <= t]))
    results = []
    print(f"# load {open('/proc/loadavg').read().strip()}  {time.strftime('%H:%M:%S')}", flush=True)
    print("| binary | model | phase | process | Rss KiB | Pss KiB | shared Rss KiB | shared Pss KiB |")
    print("|---|---|---|---|---|---|---|---|")
    for name, model_args, cs in configs:
        for label, binary in bins:
            for phase, snap in measure(binary, model_args, cs, a.scratch):
                for role, m in snap.items():
                    results.append({"binary": label, "model": name, "phase": phase, "process": role, **{
                        "rss_kib": m["all"]["rss"], "pss_kib": m["all"]["pss"],
                        "shm_rss_kib": m["shm"]["rss"], "shm_pss_kib": m["shm"]["pss"]}})
                    print(f"| {label} | {name} | {phase} | {role} | {m['all']['rss']} | {m['all']['pss']} | "
                          f"{m['shm']['rss']} | {m['shm']['pss']} |", flush=True)
    print(f"# load {open('/proc/loadavg').read().strip()}  {time.strftime('%H:%M:%S')}", flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"binaries": dict(bins), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
