#!/usr/bin/env python3
"""Where a durable PUT's microseconds go between two group commits: one kingx (1 worker, --sync
always) under wrk PUT load, with
  - `perf record -e cpu-clock -g` on the worker and the writer (all threads) for --cpu-s seconds
    (report: perf-<label>.txt), and
  - `perf record -a -e sched:sched_switch,sched:sched_wakeup` for --sched-s seconds, from which the
    cycle of one group commit is rebuilt per batch (turn-<label>.json):
      sync done     the sync thread wakes the writer loop (its fdatasync returned)
      loop runs     the loop is scheduled (wake-up latency)
      next request  the loop wakes the sync thread (next batch decided and written)
      worker woken  the loop wakes the worker (completions posted)
      sync runs     the sync thread is scheduled (its fdatasync starts)
    plus the worker's wake-ups per batch by waker (loop, load generator, other), and the share of
    each CPU that was idle.
Usage: turn_profile.py --bin LABEL=PATH [--bin ...] [--conns 100] [--duration 12] [--out DIR]
Python standard library + perf; every process it starts is stopped by its PID.
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "bench"))
from harness import procs  # noqa: E402
import durable_put_probe as probe  # noqa: E402


def tasks(pid):
    try:
        return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return []


def children(master):
    out = {}
    for pid, _, comm in probe._family(master, False):
        out.setdefault(comm, []).append(int(pid))
    return out


EV = re.compile(r"^\s*(.+?)\s+(\d+)\s+\[(\d+)\]\s+([0-9.]+):\s+sched:(sched_\w+):\s+(.*)$")


def parse_sched(text):
    evs = []
    for line in text.splitlines():
        m = EV.match(line)
        if not m:
            continue
        comm, tid, cpu, t, ev, rest = m.groups()
        kv = dict(re.findall(r"(\w+)=(\S+)", rest.replace(" ==> ", " ")))
        evs.append((float(t), ev, int(tid), int(cpu), kv))
    return evs


def analyse(evs, loop, sync, worker, wrk_pids, secs):
    q = lambda xs, p: sorted(xs)[min(len(xs) - 1, int(p * len(xs)))] if xs else None
    cycles = []
    state = None
    worker_wakers = {"loop": 0, "load generator": 0, "sync thread": 0, "other": 0}
    idle_us = {}
    last_switch = {}
    running = {}
    for t, ev, tid, cpu, kv in evs:
        if ev == "sched_switch":
            prev, nxt = int(kv.get("prev_pid", -1)), int(kv.get("next_pid", -1))
            if cpu in last_switch and running.get(cpu) == 0:
                idle_us[cpu] = idle_us.get(cpu, 0) + (t - last_switch[cpu]) * 1e6
            last_switch[cpu] = t
            running[cpu] = nxt
            if state is not None:
                if nxt == loop and "loop_runs" not in state and "sync_done" in state:
                    state["loop_runs"] = t
                if nxt == worker and "worker_woken" in state and "worker_runs" not in state:
                    state["worker_runs"] = t
                if nxt == sync and "next_request" in state and "sync_runs" not in state:
                    state["sync_runs"] = t
        elif ev in ("sched_wakeup", "sched_waking"):
            if ev == "sched_waking":
                continue
            target = int(kv.get("pid", -1))
            if target == worker:
                who = ("loop" if tid == loop else "sync thread" if tid == sync else
                       "load generator" if tid in wrk_pids else "other")
                worker_wakers[who] += 1
                if tid == loop and state is not None and "worker_woken" not in state:
                    state["worker_woken"] = t
            if target == loop and tid == sync:
                if state is not None and "sync_runs" in state:
                    state["next_sync_done"] = t
                    cycles.append(state)
                state = {"sync_done": t}
            if target == sync and tid == loop and state is not None and "next_request" not in state:
                state["next_request"] = t
    def span(a, b):
        xs = [(c[b] - c[a]) * 1e6 for c in cycles if a in c and b in c and c[b] >= c[a]]
        return {"n": len(xs), "median_us": round(statistics.median(xs), 1) if xs else None,
                "p90_us": round(q(xs, 0.9), 1) if xs else None}
    out = {
        "cycles": len(cycles),
        "cycle (sync done -> next sync done)": span("sync_done", "next_sync_done"),
        "loop wake-up latency (sync done -> loop runs)": span("sync_done", "loop_runs"),
        "decide + write (loop runs -> sync thread woken)": span("loop_runs", "next_request"),
        "sync thread wake-up latency (woken -> runs)": span("next_request", "sync_runs"),
        "disk idle (sync done -> next sync runs)": span("sync_done", "sync_runs"),
        "fdatasync (+ lock) (sync runs -> next sync done)": span("sync_runs", "next_sync_done"),
        "answers posted (sync done -> worker woken)": span("sync_done", "worker_woken"),
        "worker wake-up latency (woken -> runs)": span("worker_woken", "worker_runs"),
        "worker wake-ups per batch by waker": {k: round(v / max(len(cycles), 1), 2) for k, v in worker_wakers.items()},
        "cpu idle share": {str(c): round(v / (secs * 1e6), 2) for c, v in sorted(idle_us.items())},
    }
    return out


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", action="append", required=True)
    ap.add_argument("--conns", type=int, default=100)
    ap.add_argument("--duration", type=int, default=12)
    ap.add_argument("--cpu-s", type=int, default=4)
    ap.add_argument("--sched-s", type=float, default=1.0)
    ap.add_argument("--keys", type=int, default=100000)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="turn-profile-")
    results = {}
    try:
        for spec in a.bin:
            label, path = spec.split("=", 1)
            p, port = probe.start(os.path.abspath(path), os.path.join(work, label), "always")
            try:
                probe.run_wrk(port, 100, 2, a.keys, os.path.join(a.out, f"warm-{label}.txt"))
                kids = children(p.pid)
                writer = kids["kingx-writer"][0]
                worker = kids["kingx-worker"][0]
                wargv = ["wrk", "-t1", f"-c{a.conns}", f"-d{a.duration}s", "--timeout", "10s", "-s", probe.LUA,
                         f"http://127.0.0.1:{port}/", "--", "keyp=k", f"nkeys={a.keys}", "size=100",
                         "put_prefix=/v1/kv/", "putfrac=1"]
                before = probe.metrics(port)
                wrk = subprocess.Popen(wargv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                time.sleep(2)
                wrk_tids = set(tasks(wrk.pid)) | {wrk.pid}
                cpu_data = os.path.join(a.out, f"perf-{label}.data")
                subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-F", "2999", "-g", "-o", cpu_data,
                                "-p", f"{writer},{worker}", "--", "sleep", str(a.cpu_s)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=a.cpu_s + 60)
                sched_data = os.path.join(work, f"sched-{label}.data")
                subprocess.run(["perf", "record", "-q", "-a", "-e", "sched:sched_switch,sched:sched_wakeup",
                                "-o", sched_data, "--", "sleep", str(a.sched_s)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=a.sched_s + 60)
                wrk_out, _ = wrk.communicate(timeout=a.duration + 60)
                after = probe.metrics(port)
                with open(os.path.join(a.out, f"wrk-{label}.txt"), "w") as f:
                    f.write(wrk_out)
                wtasks = tasks(writer)
                text = subprocess.run(["perf", "script", "-i", sched_data, "-F", "comm,tid,cpu,time,event,trace"],
                                      capture_output=True, text=True, timeout=300).stdout
                evs = parse_sched(text)
                # The sync thread: the writer's thread that wakes the loop most often.
                counts = {}
                for t, ev, tid, cpu, kv in evs:
                    if ev == "sched_wakeup" and int(kv.get("pid", -1)) == writer and tid in wtasks and tid != writer:
                        counts[tid] = counts.get(tid, 0) + 1
                sync = max(counts, key=counts.get) if counts else -1
                res = analyse(evs, writer, sync, worker, wrk_tids, a.sched_s)
                rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", wrk_out).group(1))
                res["req/s"] = rps
                d = {k: after.get(k, 0) - before.get(k, 0) for k in after}
                res["ops per batch (whole run)"] = round(d["kingx_writer_records_total"] / d["kingx_writer_batches_total"], 1)
                res["mean fdatasync us (whole run)"] = round(d["kingx_writer_fsync_seconds_sum"] /
                                                             d["kingx_writer_fsync_seconds_count"] * 1e6)
                rep = subprocess.run(["perf", "report", "-i", cpu_data, "--no-children", "--stdio", "--sort",
                                      "pid,sym", "-g", "none", "--percent-limit", "0.7"],
                                     capture_output=True, text=True, timeout=300).stdout
                # The writer loop's callers (where its CPU goes), by thread.
                loop_rep = subprocess.run(["perf", "report", "-i", cpu_data, "--children", "--stdio", "--tid",
                                           str(writer), "--sort", "sym", "-g", "none", "--percent-limit", "0.3"],
                                          capture_output=True, text=True, timeout=300).stdout
                loop_rep = "\n".join(l for l in loop_rep.splitlines()
                                     if "kingx::" in l or "sys_" in l or l.startswith("#"))
                by_thread = subprocess.run(["perf", "report", "-i", cpu_data, "--no-children", "--stdio", "--sort",
                                            "pid,tid", "-g", "none"], capture_output=True, text=True, timeout=300).stdout
                loop_rep = by_thread + "\n" + loop_rep
                with open(os.path.join(a.out, f"perf-{label}.txt"), "w") as f:
                    f.write(rep + "\n\n# writer loop thread only, with children\n" + loop_rep)
                os.remove(cpu_data)
                results[label] = res
                print(label, json.dumps(res, indent=1), flush=True)
            finally:
                p.stop(signal.SIGTERM)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with open(os.path.join(a.out, f"turn-c{a.conns}.json"), "w") as f:
        json.dump({"command": "turn_profile.py " + " ".join(argv), "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
