#!/usr/bin/env python3
"""Listing cost at two database sizes, measured side by side in one run, through
the engine (KeyLister, in-process) and through the API (kingx servers, paging
with the cursor).

    bench/list_bench.py --kingx build-release/src/kingx [--list-bench build-release/bench/list_bench] \
        [--sizes 100000,10000000] [--pages 300] [--dir /var/tmp/kingx-list] [--out bench/results/DATE-listing] \
        [--baseline OLD/kingx --rounds 3] [--skip-engine] [--skip-http]

Each size's database is filled once by `list_bench fill` (keys
"b<bucket>/k<index>", 10,000 keys per bucket, 100-byte values; the sorted
view built from the segments and checkpointed) and kept in --dir for later
runs (delete it to refill). Then:
  1. engine: `list_bench engine PAGES DIR...` opens every size in one process
     and times, interleaved, the first 1,000-key page under a random bucket
     prefix and the page after a random key of it; then one full listing each.
  2. http: one kingx per size (2 workers, 127.0.0.1, ephemeral
     ports, default settings) started together; once each lists (not 503), `list_bench http
     PAGES PORT:KEYS...` times the same pages and a full listing through
     `GET /v1/kv/?limit=1000&cursor=...`. The servers are stopped with TERM.
  3. with --baseline: full listings of the largest size through the API, --kingx
     and the baseline in turn (one server at a time on the same directory, the
     order rotating each round), the ratio per round.
Ratios (largest size over smallest, p50 of the same page kind) come from the
same run and binary. Load average and CPU count are recorded with every run:
figures taken on a busy machine are preliminary.

Output: the figures on stdout, result.json in --out. Standard library only.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness.listing import loadavg, start_server, stop_server, wait_listing  # noqa: E402


def parse_figures(text):
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3:
            try:
                out[parts[0]] = float(parts[1])
            except ValueError:
                pass
    return out


def run(argv, timeout):
    print("$ " + " ".join(argv), flush=True)
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    sys.stdout.write(p.stdout)
    if p.returncode != 0:
        sys.stderr.write(p.stderr[-4000:])
        raise RuntimeError(f"{argv[0]} {argv[1]} exited with {p.returncode}")
    return parse_figures(p.stdout)


def side_by_side(a, keys, data):
    """Full listing of the largest database through the API, --kingx and --baseline in turn
    (the order rotates each round), one server at a time on the same directory."""
    work = tempfile.mkdtemp(prefix="kingx-list-bench-")
    binaries = [("kingx", a.kingx), ("baseline", a.baseline)]
    runs = []
    for rnd in range(a.rounds):
        for i in range(len(binaries)):
            name, binary = binaries[(i + rnd) % len(binaries)]
            proc, port, err = start_server(binary, data, work, name)
            try:
                wait_listing([(name, proc, port, err)], a.timeout)
                load = loadavg()[0]
                figs = run([a.list_bench, "http", "1", f"{port}:{keys}"], a.timeout)
            finally:
                stop_server(proc)
            rate = figs[f"http_full_listing_keys_per_s_{keys}"]
            runs.append({"round": rnd, "binary": name, "keys_per_s": rate, "loadavg_1m_before": load})
            print(f"round {rnd} {name:8s} full listing {rate:12.0f} keys/s, load {load:.2f}", flush=True)
    ratios = []
    for rnd in range(a.rounds):
        by = {r["binary"]: r["keys_per_s"] for r in runs if r["round"] == rnd}
        ratios.append(round(by["kingx"] / by["baseline"], 3))
    out = {"keys": keys, "runs": runs, "ratios_per_round": ratios, "ratio_median": sorted(ratios)[len(ratios) // 2]}
    print(json.dumps({"side_by_side_ratios": ratios}), flush=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--list-bench", default="build/bench/list_bench",
                    help="the list_bench binary (fill, engine and http phases; default build/bench/list_bench)")
    ap.add_argument("--kingx", default=os.environ.get("KINGX_BIN"),
                    help="the kingx binary to measure (required, or KINGX_BIN): say which tree, "
                         "build-release/src/kingx for figures")
    ap.add_argument("--sizes", default="100000,10000000")
    ap.add_argument("--pages", type=int, default=300)
    ap.add_argument("--dir", default="/var/tmp/kingx-list")
    ap.add_argument("--skip-http", action="store_true")
    ap.add_argument("--skip-engine", action="store_true")
    ap.add_argument("--timeout", type=float, default=3600.0)
    ap.add_argument("--baseline", help="another kingx binary: full listings of the largest size side by side")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the --baseline comparison")
    ap.add_argument("--out")
    a = ap.parse_args()
    if not a.kingx:
        ap.error("--kingx is required (or KINGX_BIN): the binary measured, e.g. build-release/src/kingx")
    binaries = {"kingx": os.path.realpath(a.kingx), "list_bench": os.path.realpath(a.list_bench)}
    if a.baseline:
        binaries["baseline"] = os.path.realpath(a.baseline)
    print("binaries: " + ", ".join(f"{k} {v}" for k, v in binaries.items()), flush=True)
    sizes = sorted(int(x) for x in a.sizes.split(","))
    result = {"command": " ".join(sys.argv), "binaries": binaries, "cpus": os.cpu_count(), "sizes": sizes,
              "pages": a.pages,
              "loadavg_start": loadavg(), "fill": {}, "engine": {}, "http": {}}

    dirs = []
    for n in sizes:
        d = os.path.join(a.dir, f"db-{n}")
        if not os.path.isdir(d):
            os.makedirs(a.dir, exist_ok=True)
            if os.path.isdir(d + ".tmp"):
                subprocess.run(["rm", "-rf", d + ".tmp"], check=True)
            os.makedirs(d + ".tmp")
            t = time.monotonic()
            figs = run([a.list_bench, "fill", d + ".tmp", str(n)], a.timeout)
            figs["fill_wall_s"] = round(time.monotonic() - t, 1)
            with open(d + ".tmp/fill.json", "w") as f:
                json.dump(figs, f)
            os.rename(d + ".tmp", d)
        with open(os.path.join(d, "fill.json")) as f:
            result["fill"][str(n)] = json.load(f)
        dirs.append(d)

    if not a.skip_engine:
        result["loadavg_before_engine"] = loadavg()
        result["engine"] = run([a.list_bench, "engine", str(a.pages)] + dirs, a.timeout)

    # What the sorted view costs on disk, per key, as the engine left it (closed, checkpointed).
    result["keys_dir_bytes_per_key"] = {}
    for n, d in zip(sizes, dirs):
        kd = os.path.join(d, "keys")
        total = sum(os.path.getsize(os.path.join(kd, f)) for f in os.listdir(kd))
        result["keys_dir_bytes_per_key"][str(n)] = round(total / n, 2)

    if not a.skip_http:
        work = tempfile.mkdtemp(prefix="kingx-list-bench-")
        servers = []
        try:
            for n, d in zip(sizes, dirs):
                servers.append((n,) + start_server(a.kingx, d, work, f"db-{n}"))
            ready, _ = wait_listing(servers, a.timeout)
            result["http_listing_ready_s"] = {n: round(t, 2) for n, t in ready.items()}
            result["loadavg_before_http"] = loadavg()
            result["http"] = run([a.list_bench, "http", str(a.pages)] +
                                 [f"{port}:{n}" for n, _, port, _ in servers], a.timeout)
        finally:
            for _, proc, _, _ in servers:
                stop_server(proc)
    if a.baseline:
        result["full_listing_side_by_side"] = side_by_side(a, sizes[-1], dirs[-1])
    result["loadavg_end"] = loadavg()

    small, large = str(sizes[0]), str(sizes[-1])
    ratios = {}
    for layer in ("engine", "http"):
        figs = result[layer]
        for kind in ("prefix_page", "prefix_page_after"):
            k_l, k_s = f"{layer}_{kind}_{large}_p50", f"{layer}_{kind}_{small}_p50"
            if k_l in figs and k_s in figs:
                ratios[f"{layer}_{kind}_p50_{large}_over_{small}"] = round(figs[k_l] / figs[k_s], 3)
    result["ratios"] = ratios
    print(json.dumps({"ratios": ratios, "loadavg": [result["loadavg_start"], result["loadavg_end"]]}, indent=2))
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "result.json"), "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
