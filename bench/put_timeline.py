#!/usr/bin/env python3
"""Where a durable PUT waits between its last body byte and its answer: the hand-off's steps, from the
system calls of kingx's worker and writer (all threads) as `perf trace` timestamps them.

For each binary it starts `kingx --workers 1 --sync SYNC` on a copy of TEMPLATE (as durable_put_probe.py
does), drives wrk -t1 -cCONNS PUTs of 100 B over the template's keys, and after WARM seconds traces the
worker and writer processes for TRACE seconds. Each group commit's write (the writer's pwrite64 of a
segment) is followed through:
  flush_to_writer   the worker's eventfd write that woke the writer -> the writer's poll returns
                    (only batches that began with such a wake-up; a writer already awake takes the
                    batch without one)
  writer_apply      the writer loop's last wait ends (its poll returns, or its previous write or
                    fdatasync when it took the batch without sleeping) -> its pwrite64 of the batch returns
  to_sync           the pwrite64 returns -> the fdatasync that covers it starts (a sync thread's wake-up,
                    or a wait for a place in the --sync-depth pipeline)
  fdatasync         the fdatasync itself
  sync_to_post      the fdatasync returns -> the writer writes the worker's eventfd (the sync thread's
                    wake-up of the writer loop, publishing, posting) — or, for a worker that was
                    running, to the posting loop turn (no eventfd: counted as skipped)
  post_to_answer    the worker's eventfd written -> the worker's first answer (sendto) after it
  answer_burst      the first -> the last answer sent before the worker next waits (epoll_wait)
and the median, p90 and count of each step go to OUT/timeline.json (raw traces beside it). perf trace
slows every system call it sees (a few µs each), and on a busy machine every wake-up waits for a CPU:
read the steps' proportions, not their absolute times.

Usage: bench/put_timeline.py --bin main=build-release/src/kingx [--bin ref=/work/ref/s26/kingx]
         [--sync always] [--conns 100] [--args LABEL='--sync-depth 1'] [--template DIR] [--out DIR]
Python standard library only; every process it starts is stopped by its PID.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import durable_put_probe as probe  # noqa: E402

LINE = re.compile(r"^\s*([0-9.]+) \(\s*([0-9.]*)(?: ms)?\s*\): (\S+)/(\d+)\s+(?:\.\.\. \[continued\]: )?(\w+)\((.*)$")


def parse(path):
    """[(start_ms, end_ms or None, comm, tid, syscall, args)] of a perf trace output, oldest first;
    a call split over two lines (it blocked) is kept once, with its end."""
    calls, open_calls = [], {}
    with open(path, errors="replace") as f:
        for line in f:
            m = LINE.match(line)
            if not m:
                continue
            start, dur, comm, tid, name, args = m.groups()
            start = float(start)
            if "[continued]" in line:
                if dur and (tid, name) in open_calls:
                    c = open_calls.pop((tid, name))
                    c[1] = c[0] + float(dur)
                continue
            c = [start, start + float(dur) if dur else None, comm, tid, name, args]
            if not dur:
                open_calls[(tid, name)] = c
            calls.append(c)
    return [c for c in calls if c[1] is not None]


def first_after(calls, t, pred):
    for c in calls:
        if c[0] >= t and pred(c):
            return c
    return None


def last_before(calls, t, pred):
    """The call matching pred that ended last at or before t (calls are in start order, and a
    blocking call of another thread may end long after later ones started)."""
    found = None
    for c in calls:
        if c[0] > t:
            break
        if c[1] <= t and pred(c) and (found is None or c[1] >= found[1]):
            found = c
    return found


def steps(calls):
    """{step: [ms, ...]} over the group commits of a trace (see the module's comment)."""
    worker = [c for c in calls if c[2].startswith("kingx-worker")]
    writer = [c for c in calls if not c[2].startswith("kingx-worker")]
    is_eventfd = lambda c: "eventfd" in c[5]  # noqa: E731
    out = {k: [] for k in ("flush_to_writer", "writer_apply", "to_sync", "fdatasync", "sync_to_post",
                           "post_to_answer", "answer_burst")}
    for w in writer:
        if w[4] != "pwrite64" or ".kxd" not in w[5]:
            continue
        # The loop's last wait before the write: a poll that returned, or (a batch taken without
        # sleeping) the end of its previous pwrite64 or fdatasync.
        prev = last_before(writer, w[0], lambda c: c[3] == w[3] and (
            c[4] in ("poll", "ppoll", "fdatasync") or (c[4] == "pwrite64" and ".kxd" in c[5])))
        if prev is not None:
            out["writer_apply"].append(w[1] - prev[1])
        if prev is not None and prev[4] in ("poll", "ppoll"):
            flush = last_before(worker, prev[1], lambda c: c[4] == "write" and is_eventfd(c))
            if flush is not None and flush[1] >= prev[0]:
                out["flush_to_writer"].append(prev[1] - flush[1])
        sync = first_after(writer, w[1], lambda c: c[4] == "fdatasync")
        if sync is None:
            continue
        out["to_sync"].append(sync[0] - w[1])
        out["fdatasync"].append(sync[1] - sync[0])
        post = first_after(writer, sync[1], lambda c: c[4] == "write" and is_eventfd(c) and
                           c[3] == w[3])
        if post is None:
            continue
        out["sync_to_post"].append(post[1] - sync[1])
        ans = first_after(worker, post[1], lambda c: c[4] in ("sendto", "sendmsg", "writev"))
        if ans is None:
            continue
        out["post_to_answer"].append(ans[0] - post[1])
        wait = first_after(worker, ans[1], lambda c: c[4] == "epoll_wait")
        last = last_before(worker, wait[0] if wait else float("inf"),
                           lambda c: c[4] in ("sendto", "sendmsg", "writev"))
        if last is not None:
            out["answer_burst"].append(last[1] - ans[0])
    return out


def summary(values):
    if not values:
        return {"n": 0}
    v = sorted(values)
    return {"n": len(v), "median_ms": round(v[len(v) // 2], 3), "p90_ms": round(v[int(len(v) * 0.9)], 3)}


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", action="append", required=True, metavar="LABEL=PATH")
    ap.add_argument("--args", action="append", default=[], metavar="LABEL=ARGS")
    ap.add_argument("--sync", default="always")
    ap.add_argument("--conns", type=int, default=100)
    ap.add_argument("--warm", type=float, default=2.0)
    ap.add_argument("--trace", type=float, default=0.3)
    ap.add_argument("--template", default="/tmp/writer23/tmpl")
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    out = a.out or tempfile.mkdtemp(prefix="put-timeline-")
    os.makedirs(out, exist_ok=True)
    extra = {}
    for spec in a.args:
        label, args = spec.split("=", 1)
        extra.setdefault(label, []).extend(args.split())
    result = {"command": "bench/put_timeline.py " + " ".join(argv), "uptime": os.getloadavg(), "bins": {}}
    for spec in a.bin:
        label, path = spec.split("=", 1)
        work = tempfile.mkdtemp(prefix="put-timeline-work-")
        p = None
        try:
            p, port = probe.start(os.path.abspath(path), work, a.sync, a.template, extra.get(label, ()))
            pids = probe.server_procs(p, "kingx")
            duration = int(a.warm + a.trace + 3)
            wrk = subprocess.Popen(["wrk", "-t1", f"-c{a.conns}", f"-d{duration}s", "-s", probe.LUA,
                                    f"http://127.0.0.1:{port}/", "--", "keyp=key-", f"nkeys={a.keys}",
                                    "size=100", "put_prefix=/v1/kv/", "putfrac=1"],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            time.sleep(a.warm)
            raw = os.path.join(out, f"trace-{label}.txt")
            subprocess.run(["perf", "trace", "-o", raw, "-p",
                            ",".join(str(pids[n]) for n in ("kingx-worker", "kingx-writer")),
                            "--", "sleep", str(a.trace)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=a.trace + 60)
            wrk_out = wrk.communicate(timeout=duration + 60)[0]
            with open(os.path.join(out, f"wrk-{label}.txt"), "w") as f:
                f.write(wrk_out)
            result["bins"][label] = {k: summary(v) for k, v in steps(parse(raw)).items()}
            print(label, json.dumps(result["bins"][label]), flush=True)
        finally:
            if p is not None:
                p.stop(signal.SIGTERM)
            shutil.rmtree(work, ignore_errors=True)
    with open(os.path.join(out, "timeline.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
