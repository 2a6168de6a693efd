#!/usr/bin/env python3
"""Time from exec to a complete listing for `kingx --read-only` on a database
of N keys, side by side in one run:
  - reuse:   the directory as a read-write server left it (a valid keys/):
             its sorted view is read where it is;
  - rebuild: the same database without keys/ (a backup, a copy): the view is
             built from the segments in the scratch directory — which is what
             a read-only server did on every directory before it reused keys/;
  - with --baseline BIN: that binary on the directory with keys/ too (the
             previous main, to show the old behaviour itself).

    bench/read_only_listing.py --kingx build-release/src/kingx [--baseline OLD/kingx] [--keys 1000000] \
        [--rounds 3] [--dir /var/tmp/kingx-ro-listing] [--fill build/bench/list_bench] [--out DIR]

The database is made once by `list_bench fill DIR N` (the view built and
checkpointed in DIR/keys) and copied without keys/; both are kept in --dir.
Each round starts every case once, in rotating order: 2 workers, 127.0.0.1,
ephemeral port; the clock runs from the exec to the first 200 of
`GET /v1/kv/?limit=1000` (503 while the view is built; polled every 10 ms),
then every page of the listing is read once (cursor) and counted: a case whose
listing misses keys fails the run. Servers are stopped with TERM. Load average
and CPU count are recorded: figures from a busy machine are preliminary.

Output: the figures on stdout, result.json in --out. Standard library only.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness.listing import get, loadavg, start_server, stop_server, wait_listing  # noqa: E402


def one_start(binary, data, work, timeout_s):
    proc, port, err = start_server(binary, data, work, "kingx", extra_args=["--read-only"])
    try:
        ready, bodies = wait_listing([("kingx", proc, port, err)], timeout_s, poll_s=0.01)
        ready_s, body = ready["kingx"], bodies["kingx"]
        listed = 0
        while True:
            page = json.loads(body)
            listed += len(page["keys"])
            if page["list_complete"]:
                break
            status, body = get(port, "/v1/kv/?limit=1000&cursor=" + page["cursor"])
            if status != 200:
                raise RuntimeError(f"{binary}: listing page answered {status}")
    finally:
        stop_server(proc)
    return ready_s, listed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kingx", default=os.environ.get("KINGX_BIN"),
                    help="the kingx binary to measure (required, or KINGX_BIN): say which tree, "
                         "build-release/src/kingx for figures")
    ap.add_argument("--baseline")
    ap.add_argument("--fill", default="build/bench/list_bench")
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", default="/var/tmp/kingx-ro-listing")
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--out")
    a = ap.parse_args()
    if not a.kingx:
        ap.error("--kingx is required (or KINGX_BIN): the binary measured, e.g. build-release/src/kingx")
    print(f"binaries: kingx {os.path.realpath(a.kingx)}, fill {os.path.realpath(a.fill)}"
          + (f", baseline {os.path.realpath(a.baseline)}" if a.baseline else ""), flush=True)

    with_keys = os.path.join(a.dir, f"db-{a.keys}")
    without = with_keys + "-nokeys"
    if not os.path.isdir(with_keys):
        os.makedirs(with_keys + ".tmp", exist_ok=True)
        subprocess.run([a.fill, "fill", with_keys + ".tmp", str(a.keys)], check=True, stdout=subprocess.DEVNULL)
        os.rename(with_keys + ".tmp", with_keys)
    if not os.path.isdir(without):
        shutil.copytree(with_keys, without + ".tmp", ignore=shutil.ignore_patterns("keys"))
        os.rename(without + ".tmp", without)

    cases = [("reuse", a.kingx, with_keys), ("rebuild", a.kingx, without)]
    if a.baseline:
        cases.append(("baseline", a.baseline, with_keys))
    work = tempfile.mkdtemp(prefix="kingx-ro-listing-")
    runs = []
    for rnd in range(a.rounds):
        for i in range(len(cases)):
            name, binary, data = cases[(i + rnd) % len(cases)]
            load = loadavg()
            ready_s, listed = one_start(binary, data, work, a.timeout)
            if listed != a.keys:
                raise RuntimeError(f"{name}: listed {listed} keys of {a.keys}")
            runs.append({"round": rnd, "case": name, "binary": binary, "data": data,
                         "listing_ready_s": round(ready_s, 3), "loadavg_1m_before": load[0]})
            print(f"round {rnd} {name:8s} complete listing after {ready_s:8.3f} s, load {load[0]:.2f}", flush=True)
    shutil.rmtree(work, ignore_errors=True)

    def median(xs):
        xs = sorted(xs)
        return xs[len(xs) // 2] if xs else None

    summary = {c[0]: median([r["listing_ready_s"] for r in runs if r["case"] == c[0]]) for c in cases}
    ratios = []
    for rnd in range(a.rounds):
        by = {r["case"]: r["listing_ready_s"] for r in runs if r["round"] == rnd}
        ratios.append(by["reuse"] / by["rebuild"])
    summary["reuse_over_rebuild_median"] = round(median(ratios), 4)
    result = {"keys": a.keys, "cpus": os.cpu_count(), "command": " ".join(sys.argv), "runs": runs,
              "summary": summary, "loadavg_end": loadavg()}
    print(json.dumps(summary, indent=2))
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "read_only_listing.json"), "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
