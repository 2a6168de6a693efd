#!/usr/bin/env python3
"""CPU time per answered PUT of every thread of kingx's processes, at nanosecond resolution
(/proc/PID/task/TID/schedstat: time on CPU), in interleaved rounds of a wrk PUT load; each
binary its own server (--sync always, 1 worker, 100k keys overwritten). Uses
bench/durable_put_probe.py's start / run_wrk.

Usage: thread_ns.py --bin LABEL=PATH ... [--conns 100,1000] [--rounds 6] [--duration 4] --out FILE
Every process it starts is stopped by its PID."""
import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
from statistics import median

BENCH = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
sys.path.insert(0, BENCH)
import durable_put_probe as probe  # noqa: E402


def thread_ns(master_pid):
    out = {}
    for pid, _, comm in probe._family(master_pid, True):
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    name = f.read().strip()
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    ns = int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                continue
            key = f"{comm}/{name}"
            out[key] = out.get(key, 0) + ns
    return out


def keyspace_metrics(port):
    """kingx_keyspace_* counters from /metrics (the key view's work: runs, bytes, merges)."""
    status, body = probe.procs.http_request(port, "GET", "/metrics", timeout_s=10)
    out = {}
    for line in body.decode().splitlines():
        if line.startswith("kingx_keyspace_") and " " in line and "{" not in line:
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def summarise(rows, labels, conns):
    if len(labels) != 2:
        return
    x, y = labels
    by = {}
    for r in rows:
        by.setdefault((r["conns"], r["round"]), {})[r["bin"]] = r
    for c in conns:
        pairs = [d for (cc, _), d in sorted(by.items()) if cc == c and x in d and y in d]
        keys = sorted(k for k in pairs[0][x] if k.startswith("us_per_put_"))
        print(f"c={c}: {y} ÷ {x}, req/s {median(d[y]['rps'] / d[x]['rps'] for d in pairs):.2f}")
        kv = [d[y]["keyview_us_per_run_kib"] / d[x]["keyview_us_per_run_kib"] for d in pairs
              if d[x].get("keyview_us_per_run_kib") and d[y].get("keyview_us_per_run_kib")]
        if kv:
            print(f"  key view CPU per KiB of key runs written, {y} ÷ {x}: {median(kv):.2f} "
                  f"[{', '.join(f'{r:.2f}' for r in kv)}]")
        for k in keys + ["all"]:
            f = (lambda r: sum(v for kk, v in r.items() if kk.startswith("us_per_put_"))) if k == "all" \
                else (lambda r, k=k: r.get(k, 0))
            va, vb = [f(d[x]) for d in pairs], [f(d[y]) for d in pairs]
            if median(va) < 0.05:
                continue
            rs = [b / a_ for a_, b in zip(va, vb) if a_ > 0]
            print(f"  {k[11:] if k != 'all' else 'all threads':32} {x} {median(va):.2f} {y} {median(vb):.2f} us/PUT; "
                  f"ratio {median(rs):.2f} [{', '.join(f'{r:.2f}' for r in rs)}]")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--summarise", metavar="FILE", help="only print the pairs of a saved output (with two --bin labels)")
    ap.add_argument("--bin", action="append", required=True)
    ap.add_argument("--conns", default="100,1000")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--duration", type=int, default=4)
    ap.add_argument("--keys", type=int, default=100000)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    labels = [s.split("=", 1)[0] for s in a.bin]
    conns = [int(c) for c in a.conns.split(",")]
    if a.summarise:
        summarise(json.load(open(a.summarise))["rows"], labels, conns)
        return
    work = tempfile.mkdtemp(prefix="put-threadns-")
    servers, rows = {}, []
    try:
        for spec in a.bin:
            label, path = spec.split("=", 1)
            servers[label] = probe.start(os.path.abspath(path), os.path.join(work, label), "always")
        for label, (p, port) in servers.items():
            probe.run_wrk(port, 100, 2, a.keys, os.path.join(work, f"warm-{label}.txt"))
        for rnd in range(1, a.rounds + 1):
            order = [(label, c) for c in conns for label in servers]
            if rnd % 2 == 0:
                order.reverse()
            for label, c in order:
                p, port = servers[label]
                k0 = keyspace_metrics(port)
                t0 = thread_ns(p.pid)
                rps, lat = probe.run_wrk(port, c, a.duration, a.keys, os.path.join(work, f"r{rnd}-{label}-{c}.txt"))
                t1 = thread_ns(p.pid)
                k1 = keyspace_metrics(port)
                reqs = rps * a.duration
                row = {"round": rnd, "bin": label, "conns": c, "rps": round(rps), "load": os.getloadavg()[0]}
                for k in sorted(t1):
                    row["us_per_put_" + k] = round((t1[k] - t0.get(k, 0)) / 1e3 / reqs, 3)
                kv_ns = t1.get("kingx-writer/kingx-keyview", 0) - t0.get("kingx-writer/kingx-keyview", 0)
                kv_bytes = k1.get("kingx_keyspace_run_bytes_written_total", 0) - k0.get("kingx_keyspace_run_bytes_written_total", 0)
                row["keyview_merges"] = k1.get("kingx_keyspace_merges_total", 0) - k0.get("kingx_keyspace_merges_total", 0)
                row["keyview_run_kib_written"] = round(kv_bytes / 1024, 1)
                row["keyview_us_per_run_kib"] = round(kv_ns / 1e3 / (kv_bytes / 1024), 2) if kv_bytes else None
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        for p, _ in servers.values():
            p.stop(signal.SIGTERM)
        shutil.rmtree(work, ignore_errors=True)
    with open(a.out, "w") as f:
        json.dump({"command": " ".join(sys.argv), "rows": rows}, f, indent=1)
    summarise(rows, labels, conns)


if __name__ == "__main__":
    main()
