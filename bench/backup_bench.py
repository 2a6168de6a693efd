#!/usr/bin/env python3
"""What an online backup costs before and while it streams: time to the
response head, total time, the server's CPU, the scratch bytes of the active
segment's hint, and a GET load beside it. Binaries side by side, interleaved.

    bench/backup_bench.py --kingx s23=/work/ref/s23/kingx --kingx s24=/work/ref/s24/kingx \
        [--fill-db build-release/bench/fill_db] [--loadgen build-release/bench/loadgen] \
        [--sizes small=10000000,full=15100000] [--value-bytes 100] [--models event,threads] \
        [--rounds 3] [--load-seconds 6] [--conns 32] [--work /tmp/kingx-backup-bench] \
        [--max-minutes 30] [--out bench/results/DATE-backup]

Databases: for each --sizes entry NAME=KEYS, fill_db writes KEYS keys of
--value-bytes once into --work/base-NAME (kept for later runs: delete it to
refill); each binary gets a copy of its own (--work/NAME-LABEL), opened once
before the rounds so that its sorted key view is built and a server start
later only replays hints. With 100 B values and the engine's defaults,
10,000,000 keys leave an active segment of ~4.7 MB and 13,600,000 one of
~244 MB (of a 256 MiB --segment-bytes): the size the active segment's hint
build reads. Each backup's line names the active segment's size in its
archive (the segment whose hint comes before its data; for a binary that
ships no such hint, the last segment with no hint after it).

Each round visits every (size, model) group in a shuffled order and, in it,
each binary in turn (the order rotates from round to round: pairs A B, B A).
For each binary the server is started (event model: 2 workers; threads: 64, more than
the load's connections, so that no connection waits for a pool thread),
waited for (/readyz and a listing page 200) and then runs three cells:
  - backup: one GET /admin/backup alone, read whole at full speed and
    thrown away: seconds to the response head and to its end, the server's
    CPU (user+sys of all its processes) over the backup, and the peak bytes
    of scratch files of the server's processes in their TMPDIR (set to a
    directory of this run; a scratch file that is open but unlinked is found
    through /proc/PID/fd), polled every 5 ms;
  - load: loadgen GET of random filled keys, --conns connections, for
    --load-seconds (0.5 s warm-up): requests/s and p99;
  - load+backup: the same load with one backup begun as the load's window
    begins, read whole at full speed (its head and end times reported too).
The last two alternate in order from round to round. Then the server is
stopped by its pid (TERM). The backup reader is this process; loadgen is
a process of its own.

Bounded: every wait has a deadline, loadgen runs for a fixed time, and no
group starts once --max-minutes would be passed. Load average and CPU count
are recorded with every cell (figures from a busy machine are preliminary).
Output: a table of per-round pairs and medians on stdout, result.json (every
cell, the command) in --out. Standard library only.
"""

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import procs  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def tree_pids(master):
    """The master and its children (workers, writer)."""
    return [master] + [pid for pid, st in procs.proc_stats() if procs.stat_ppid(st) == master]


def cpu_s(pids):
    """user+sys seconds of the processes (all their threads)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


def scratch_bytes(scratch, pids):
    """Bytes of the files in scratch plus files under scratch the pids hold open
    (an unlinked scratch hint is only there)."""
    seen, total = set(), 0
    try:
        for e in os.scandir(scratch):
            try:
                st = e.stat()
            except OSError:
                continue
            seen.add(st.st_ino)
            total += st.st_size
    except OSError:
        pass
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if not target.startswith(scratch + "/"):
                    continue
                st = os.stat(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if st.st_ino not in seen:
                seen.add(st.st_ino)
                total += st.st_size
    return total


class ScratchPoller:
    def __init__(self, scratch, pids):
        self.scratch, self.pids = scratch, pids
        self.peak = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        for _ in range(10_000_000):  # bounded; stop ends it first
            self.peak = max(self.peak, scratch_bytes(self.scratch, self.pids))
            if self.stop.wait(0.005):
                break
        self.peak = max(self.peak, scratch_bytes(self.scratch, self.pids))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(30)


class TarWalk:
    """Follows the ustar members of a stream fed in pieces: (name, size, offset
    of the data) of each member, without keeping the data."""

    def __init__(self):
        self.pos = 0          # bytes fed so far
        self.next_at = 0      # where the next header begins
        self.pending = b""    # part of a header split across pieces
        self.members = []

    def feed(self, piece):
        end = self.pos + len(piece)
        for _ in range(1_000_000):  # bounded: one header per turn
            if self.next_at >= end or self.next_at < 0:
                break
            start = max(self.next_at, self.pos) - self.pos
            take = piece[start:start + 512 - len(self.pending)]
            self.pending += bytes(take)
            if len(self.pending) < 512:
                break
            h, self.pending = self.pending, b""
            name = h[:100].split(b"\0")[0].decode("latin-1")
            if not name:
                self.next_at = -1  # the end blocks
                break
            size = int(h[124:136].split(b"\0")[0].strip() or b"0", 8)
            self.members.append((name, size, self.next_at + 512))
            self.next_at += 512 + (size + 511) // 512 * 512
        self.pos = end

    def active(self):
        """(active segment bytes, its hint's bytes or 0): the segment whose hint
        comes before its data, else the last segment member with no hint after it."""
        names = [m[0] for m in self.members]
        for i, (name, size, _) in enumerate(self.members):
            if name.endswith(".kxd") and i > 0 and names[i - 1] == name[:-4] + ".hint":
                return size, self.members[i - 1][1]
        for i in range(len(self.members) - 1, -1, -1):
            name, size, _ = self.members[i]
            if name.endswith(".kxd") and name[:-4] + ".hint" not in names[i + 1:]:
                return size, 0
        return 0, 0


def backup(admin_port, timeout_s=600):
    """One GET /admin/backup read whole at full speed. Returns (status, head_s,
    total_s, body bytes, Content-Length, (active segment bytes, its hint bytes))."""
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    s = socket.create_connection(("127.0.0.1", admin_port), timeout=timeout_s)
    try:
        s.sendall(b"GET /admin/backup HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            d = s.recv(65536)
            if not d:
                raise RuntimeError("the connection closed before the response head")
            head += d
        head_s = time.monotonic() - t0
        head, _, rest = head.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = -1
        for line in lines[1:]:
            k, _, v = line.partition(":")
            if k.strip().lower() == "content-length":
                length = int(v.strip())
        got = len(rest)
        walk = TarWalk()
        walk.feed(rest)
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        for _ in range(100_000_000):  # bounded by the deadline too
            n = s.recv_into(buf)
            if n == 0 or time.monotonic() > deadline:
                break
            got += n
            if walk.next_at >= 0:
                walk.feed(view[:n])
        return status, head_s, time.monotonic() - t0, got, length, walk.active()
    finally:
        s.close()


def run_loadgen(loadgen, port, keys, conns, seconds):
    p = subprocess.run([loadgen, "--port", str(port), "--conns", str(conns), "--duration", str(seconds),
                        "--warmup", "0.5", "--path", "/v1/kv/key-", "--keys", str(keys), "--seed",
                        str(random.randrange(1 << 30))],
                       capture_output=True, text=True, timeout=seconds + 120)
    for line in p.stdout.splitlines():
        if line.startswith("LOADGEN "):
            j = json.loads(line[len("LOADGEN "):])
            return {"rps": j["rps"], "p99_us": j["latency_us"]["p99"], "p50_us": j["latency_us"]["p50"],
                    "errors": j["errors"], "other": j["responses_other"], "window_s": j.get("duration_s")}
    raise RuntimeError(f"loadgen printed no result (rc {p.returncode}): {p.stderr[-500:]}")


class Server:
    def __init__(self, binary, data, model, work, name):
        self.port, self.admin = procs.free_port(), procs.free_port()
        self.scratch = os.path.join(work, f"scratch-{name}")
        shutil.rmtree(self.scratch, ignore_errors=True)
        os.makedirs(self.scratch)
        argv = [binary, "--listen", f"127.0.0.1:{self.port}", "--admin-listen", f"127.0.0.1:{self.admin}",
                "--data", data, "--error-log", os.path.join(work, f"error-{name}.log"), "--pid", "none"]
        argv += ["--model", "threads", "--threads", "64"] if model == "threads" else ["--workers", "2"]
        env = dict(os.environ, TMPDIR=self.scratch)
        self.proc = procs.Proc(name, argv, os.path.join(work, f"out-{name}.log"), env=env)
        procs.wait_http_ok(self.port, "/readyz", 300, self.proc)
        procs.wait_http_ok(self.port, "/v1/kv/?limit=1", 600, self.proc)
        self.pids = tree_pids(self.proc.pid)

    def stop(self):
        self.proc.stop()
        shutil.rmtree(self.scratch, ignore_errors=True)


def cell_backup(srv):
    c0 = cpu_s(srv.pids)
    with ScratchPoller(srv.scratch, srv.pids) as sp:
        status, head_s, total_s, got, length, (active, hint) = backup(srv.admin)
    cpu = cpu_s(srv.pids) - c0
    return {"status": status, "head_s": head_s, "total_s": total_s, "bytes": got, "content_length": length,
            "active_segment_bytes": active, "active_hint_bytes": hint,
            "complete": got == length, "server_cpu_s": cpu, "scratch_peak_bytes": sp.peak, "load": loadavg()}


def cell_load(srv, args, with_backup):
    out = {}
    th = None
    if with_backup:
        def bk():
            time.sleep(0.5)  # loadgen's warm-up: the backup begins with the measured window
            c0 = cpu_s(srv.pids)
            try:
                status, head_s, total_s, got, length, _ = backup(srv.admin)
                out.update(status=status, head_s=head_s, total_s=total_s, complete=got == length)
            except Exception as e:  # noqa: BLE001 - reported in the cell
                out.update(error=str(e))
            out["server_cpu_s_during_backup"] = cpu_s(srv.pids) - c0
        th = threading.Thread(target=bk)
        th.start()
    res = run_loadgen(args.loadgen, srv.port, args.keys_of[srv.size], args.conns, args.load_seconds)
    if th is not None:
        th.join(900)
        res["backup"] = out
    res["load"] = loadavg()
    return res


def prepare(args):
    os.makedirs(args.work, exist_ok=True)
    for size, keys in args.keys_of.items():
        base = os.path.join(args.work, f"base-{size}")
        if not os.path.isdir(base):
            print(f"fill {base}: {keys} keys of {args.value_bytes} B", flush=True)
            subprocess.run([args.fill_db, "--data", base, "--keys", str(keys), "--value-bytes",
                            str(args.value_bytes)], check=True, timeout=1800)
        for label, binary in args.binaries:
            data = os.path.join(args.work, f"{size}-{label}")
            if not os.path.isdir(data):
                subprocess.run(["cp", "-a", base, data], check=True, timeout=1800)
                srv = Server(binary, data, "event", args.work, f"warm-{size}-{label}")  # builds keys/
                srv.stop()


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    return xs[len(xs) // 2] if xs else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kingx", action="append", required=True, help="LABEL=PATH, repeatable (2 or more)")
    ap.add_argument("--fill-db", default="build-release/bench/fill_db")
    ap.add_argument("--loadgen", default="build-release/bench/loadgen")
    ap.add_argument("--sizes", default="small=10000000,full=15100000")
    ap.add_argument("--value-bytes", type=int, default=100)
    ap.add_argument("--models", default="event,threads")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--load-seconds", type=float, default=6.0)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--work", default="/tmp/kingx-backup-bench")
    ap.add_argument("--max-minutes", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    # TERM ends the run through the finally clauses: the server of the cell is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.binaries = [tuple(k.split("=", 1)) for k in args.kingx]
    args.keys_of = {s.split("=")[0]: int(s.split("=")[1]) for s in args.sizes.split(",")}
    models = args.models.split(",")
    rng = random.Random(args.seed)
    random.seed(args.seed)
    started = time.monotonic()
    prepare(args)
    groups = [(s, m) for s in args.keys_of for m in models]
    per_group_s = len(args.binaries) * (2 * args.load_seconds + 25)
    print(f"expected: {args.rounds} rounds of ~{len(groups) * per_group_s / 60:.1f} min; "
          f"no group starts after {args.max_minutes} min; cpus {os.cpu_count()}, load {loadavg()}", flush=True)
    cells = []
    stopped_early = False
    for r in range(args.rounds):
        order = groups[:]
        rng.shuffle(order)
        for size, model in order:
            if time.monotonic() - started + per_group_s > args.max_minutes * 60:
                stopped_early = True
                break
            labels = args.binaries[r % len(args.binaries):] + args.binaries[:r % len(args.binaries)]
            for label, binary in labels:
                srv = Server(binary, os.path.join(args.work, f"{size}-{label}"), model, args.work,
                             f"{size}-{label}-{model}")
                srv.size = size
                try:
                    row = {"round": r, "size": size, "model": model, "label": label}
                    row["backup"] = cell_backup(srv)
                    if r % 2 == 0:
                        row["load"] = cell_load(srv, args, False)
                        row["load_backup"] = cell_load(srv, args, True)
                    else:
                        row["load_backup"] = cell_load(srv, args, True)
                        row["load"] = cell_load(srv, args, False)
                finally:
                    srv.stop()
                cells.append(row)
                b, lb = row["backup"], row["load_backup"]
                print(f"r{r} {size:>5} {model:>7} {label:>6}: head {b['head_s']:.3f} s total {b['total_s']:.2f} s "
                      f"cpu {b['server_cpu_s']:.2f} s active {b['active_segment_bytes'] / 1e6:.1f} MB "
                      f"(hint {b['active_hint_bytes'] / 1e6:.1f}) scratch {b['scratch_peak_bytes'] / 1e6:.1f} MB "
                      f"({'whole' if b['complete'] else 'SHORT'}); GET {row['load']['rps']:.0f} -> {lb['rps']:.0f} "
                      f"req/s, p99 {row['load']['p99_us'] / 1e3:.2f} -> {lb['p99_us'] / 1e3:.2f} ms, under load head "
                      f"{lb['backup'].get('head_s', -1):.3f} s total {lb['backup'].get('total_s', -1):.2f} s; "
                      f"load {b['load'][0]:.1f}", flush=True)
        if stopped_early:
            break

    summary = {}
    print("\nmedians over rounds (ratio: each label to the first, per round, then the median)")
    base_label = args.binaries[0][0]
    for size, model in groups:
        for label, _ in args.binaries:
            mine = [c for c in cells if c["size"] == size and c["model"] == model and c["label"] == label]
            if not mine:
                continue
            s = {
                "head_s": median([c["backup"]["head_s"] for c in mine]),
                "total_s": median([c["backup"]["total_s"] for c in mine]),
                "server_cpu_s": median([c["backup"]["server_cpu_s"] for c in mine]),
                "scratch_peak_bytes": median([c["backup"]["scratch_peak_bytes"] for c in mine]),
                "active_segment_bytes": median([c["backup"]["active_segment_bytes"] for c in mine]),
                "active_hint_bytes": median([c["backup"]["active_hint_bytes"] for c in mine]),
                "get_rps_ratio_backup_to_alone": median([c["load_backup"]["rps"] / c["load"]["rps"] for c in mine]),
                "get_p99_ms_alone": median([c["load"]["p99_us"] / 1e3 for c in mine]),
                "get_p99_ms_beside_backup": median([c["load_backup"]["p99_us"] / 1e3 for c in mine]),
                "head_s_under_load": median([c["load_backup"]["backup"].get("head_s") for c in mine]),
                "rounds": len(mine),
            }
            if label != base_label:
                pairs = [(c, b) for c in mine for b in cells if b["round"] == c["round"] and b["size"] == size
                         and b["model"] == model and b["label"] == base_label]
                s[f"cpu_ratio_to_{base_label}"] = median([c["backup"]["server_cpu_s"] / b["backup"]["server_cpu_s"]
                                                          for c, b in pairs if b["backup"]["server_cpu_s"] > 0])
                s[f"total_ratio_to_{base_label}"] = median([c["backup"]["total_s"] / b["backup"]["total_s"]
                                                            for c, b in pairs])
            summary[f"{size}/{model}/{label}"] = s
            print(f"{size:>5} {model:>7} {label:>6}: " + ", ".join(
                f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in s.items()))
    result = {"command": " ".join(sys.argv), "cpus": os.cpu_count(), "load_end": loadavg(),
              "minutes": (time.monotonic() - started) / 60, "stopped_early": stopped_early,
              "binaries": dict(args.binaries), "keys": args.keys_of, "value_bytes": args.value_bytes,
              "conns": args.conns, "load_seconds": args.load_seconds, "summary": summary, "cells": cells}
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "result.json"), "w") as f:
            json.dump(result, f, indent=1)
    return 0 if cells else 1


if __name__ == "__main__":
    sys.exit(main())
