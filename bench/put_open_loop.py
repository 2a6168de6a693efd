#!/usr/bin/env python3
"""Durable PUT latency at a fixed request rate (open loop), kingx settings side by side.

bench/compare's open-loop rounds send GETs; this sends PUTs of 100 B, as durable_put_probe.py's
closed loop does, so that a change to how the writer forms group commits (--commit-delay-us) is
judged where a closed loop hides latency (coordinated omission: a slow answer there only slows
the client's next request). For each label (LABEL=ARGS: kingx arguments, e.g.
`off=` and `d500='--commit-delay-us 500'`) one kingx (--sync always, 1 worker) runs on a copy
of --template. Each round first measures every label's closed-loop capacity with bench/loadgen
(--conns clients, no rate), then runs `loadgen --rate R` at each --loads fraction of the FIRST
label's capacity that round, in a shuffled order, so that every label gets the same offered load.
Latency counts from each request's due time. Per run: req/s, latency p50 / p90 / p99 / p99.9,
the writes per group commit and the share of group commits delayed (/metrics before and after).

Usage: bench/put_open_loop.py --bin build-release/src/kingx --label off= --label d500='--commit-delay-us 500'
         --loadgen build-release/bench/loadgen --template DIR [--conns 100] [--loads 0.5,0.9]
         [--rounds 3] [--duration 4] [--keys 1000000] [--out DIR]
Python standard library only; every process it starts is stopped by its PID.
"""
import argparse
import json
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from durable_put_probe import metrics, start  # noqa: E402


def loadgen(binary, port, conns, duration, keys, seed, rate=None):
    argv = [binary, "--port", str(port), "--conns", str(conns), "--duration", str(duration),
            "--path", "/v1/kv/key-", "--keys", str(keys), "--method", "PUT", "--body-bytes", "100",
            "--seed", str(seed), "--warmup", "1"]
    if rate:
        argv += ["--rate", f"{rate:.0f}"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    for line in r.stdout.splitlines():
        if line.startswith("LOADGEN "):
            return json.loads(line[len("LOADGEN "):])
    raise RuntimeError(f"loadgen gave no summary: {r.stdout[-400:]} {r.stderr[-400:]}")


def run(label, port, args, seed, rate=None):
    before = metrics(port)
    g = loadgen(args.loadgen, port, args.conns, args.duration, args.keys, seed, rate)
    after = metrics(port)
    d = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    batches = d.get("kingx_writer_batches_total", 0)
    lat = g["latency_us"]
    return {"bin": label, "conns": args.conns, "rate": round(rate) if rate else None, "rps": g["rps"],
            "p50_us": lat.get("p50"), "p90_us": lat.get("p90"), "p99_us": lat.get("p99"),
            "p999_us": lat.get("p999"), "errors": g["errors"] + g["responses_other"],
            "ops_per_batch": round(d.get("kingx_writer_records_total", 0) / batches, 1) if batches else None,
            "delayed_share": round(d.get("kingx_writer_commit_delays_total", 0) / batches, 3) if batches else None}


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--label", action="append", required=True, metavar="LABEL=ARGS")
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--template", required=True)
    ap.add_argument("--conns", type=int, default=100)
    ap.add_argument("--loads", default="0.5,0.9")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=4)
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    labels = [(lbl.partition("=")[0], shlex.split(lbl.partition("=")[2])) for lbl in a.label]
    loads = [float(x) for x in a.loads.split(",")]
    out = a.out or tempfile.mkdtemp(prefix="put-open-")
    os.makedirs(out, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="put-open-data-", dir="/tmp")
    procs_ = {}
    try:
        for name, extra in labels:
            wd = os.path.join(scratch, name)
            os.makedirs(wd)
            procs_[name] = start(os.path.abspath(a.bin), wd, "always", a.template, extra)
        rng = random.Random(1)
        rows = []
        for rnd in range(1, a.rounds + 1):
            caps = {}
            for name, _ in labels:
                row = run(name, procs_[name][1], a, rnd)
                row.update({"round": rnd, "load": "closed"})
                caps[name] = row["rps"]
                rows.append(row)
                print(json.dumps(row), flush=True)
            cells = [(name, load) for name, _ in labels for load in loads]
            rng.shuffle(cells)
            for name, load in cells:
                row = run(name, procs_[name][1], a, rnd, rate=load * caps[labels[0][0]])
                row.update({"round": rnd, "load": load})
                rows.append(row)
                print(json.dumps(row), flush=True)
        with open(os.path.join(out, "put_open_loop.json"), "w") as f:
            json.dump({"command": "bench/put_open_loop.py " + " ".join(shlex.quote(x) for x in argv),
                       "rows": rows}, f, indent=1)
    finally:
        for p, _ in procs_.values():
            p.stop(signal.SIGTERM)
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
