#!/usr/bin/env python3
"""Listing through the engine, two list_bench binaries side by side.

Runs `list_bench engine PAGES DIR` with --a and --b in turn (the order
alternates each round) on one database, and records per run: the figures
list_bench prints (prefix-page times, full-listing keys/s), the CPU time
(user + sys) of the process, its instruction count (`perf stat -e
instructions:u`, when perf can count) and the 1-minute load before it.
Both binaries open the same directory one after the other (never at once).
The database is made by `list_bench fill` (--fill-keys) when DIR is missing.

    bench/list_pair.py --a /work/ref/s18/list_bench --b build-release/bench/list_bench \\
        --dir /var/tmp/kingx-list-pair/db-1000000 --fill-keys 1000000 --rounds 6 --pages 200 \\
        --out bench/results/<dir>/list_pair.json

Ratios are b / a per round (keys/s: higher is better for b; page time, CPU
and instructions: lower is better for b) and their medians.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def parse_figures(text):
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            try:
                out[parts[0]] = float(parts[1])
            except ValueError:
                pass
    return out


def perf_works():
    try:
        p = subprocess.run(["perf", "stat", "-x,", "-e", "instructions:u", "true"], capture_output=True,
                           text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return p.returncode == 0 and "instructions" in p.stderr and "<not" not in p.stderr


def run_one(binary, pages, data, perf, timeout):
    argv = [binary, "engine", str(pages), data]
    if perf:
        argv = ["perf", "stat", "-x,", "-e", "instructions:u"] + argv
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = loadavg()
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.stderr.write(p.stderr[-4000:])
        raise RuntimeError(f"{binary} exited with {p.returncode}")
    figs = parse_figures(p.stdout)
    figs["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if perf:
        for line in p.stderr.splitlines():
            fields = line.split(",")
            if len(fields) > 2 and fields[2].startswith("instructions"):
                figs["instructions_u"] = float(fields[0])
    figs["loadavg_1m_before"] = load
    return figs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="the reference list_bench")
    ap.add_argument("--b", required=True, help="the list_bench measured against it")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--fill-keys", type=int, default=1000000)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--pages", type=int, default=200)
    ap.add_argument("--timeout", type=float, default=3600.0)
    ap.add_argument("--out")
    a = ap.parse_args()
    if not os.path.isdir(a.dir):
        tmp = a.dir + ".tmp"
        subprocess.run(["rm", "-rf", tmp], check=True)
        os.makedirs(tmp)
        subprocess.run([a.a, "fill", tmp, str(a.fill_keys)], check=True, timeout=a.timeout)
        os.rename(tmp, a.dir)
    perf = perf_works()
    result = {"command": " ".join(sys.argv), "a": a.a, "b": a.b, "dir": a.dir, "pages": a.pages,
              "perf_instructions": perf, "runs": []}
    binaries = [("a", a.a), ("b", a.b)]
    for rnd in range(a.rounds):
        for i in range(2):
            name, binary = binaries[(i + rnd) % 2]
            figs = run_one(binary, a.pages, a.dir, perf, a.timeout)
            result["runs"].append({"round": rnd, "binary": name, **figs})
            brief = {k: v for k, v in figs.items() if "full_listing" in k or "page_" in k and "p50" in k}
            print(f"round {rnd} {name} cpu {figs['cpu_s']:.2f} s instr {figs.get('instructions_u', 0):.4g} "
                  f"load {figs['loadavg_1m_before']:.2f} {json.dumps(brief)}", flush=True)
    keys = sorted({k for r in result["runs"] for k in r if k.startswith("engine_") or k in ("cpu_s", "instructions_u")})
    ratios = {}
    for k in keys:
        per = []
        for rnd in range(a.rounds):
            by = {r["binary"]: r.get(k) for r in result["runs"] if r["round"] == rnd}
            if by.get("a") and by.get("b"):
                per.append(round(by["b"] / by["a"], 4))
        if per:
            ratios[k] = {"per_round": per, "median": sorted(per)[len(per) // 2]}
    result["ratios_b_over_a"] = ratios
    for k in keys:
        if k in ratios and ("full_listing" in k or "p50" in k or "mean" in k or k in ("cpu_s", "instructions_u")):
            print(f"{k:50s} b/a median {ratios[k]['median']:.3f}  per round {ratios[k]['per_round']}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
