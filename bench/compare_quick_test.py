#!/usr/bin/env python3
"""Smoke test of the benchmark harness (meson suite 'bench'): runs `bench/compare --quick` into a
scratch directory and checks that the report exists and parses. It asserts what the harness
produced, never how fast anything was.

Usage: compare_quick_test.py PATH/TO/bench/compare   (KINGX_BIN names the kingx binary, if built)
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def check_fairness(rdir, summary, have_kingx):
    """The closed-loop fairness runs (h2load and loadgen) and the open-loop runs: present for the
    reference server (and kingx-ev1 when kingx is built), with per-client figures that add up."""
    fair = summary["fairness"]["runs"]
    want = ["nginx-return-w1"] + (["kingx-ev1", "kingx-thr16"] if have_kingx else [])
    for server in want:
        for tool in ("h2load", "loadgen"):
            ok = [r for r in fair if r["server"] == server and r["tool"] == tool and r.get("ok")]
            if not ok:
                fail(f"no successful {tool} fairness run of {server}")
    for r in fair:
        with open(os.path.join(rdir, r["raw"])) as f:
            first = f.readline()
        if not first.startswith("$ "):
            fail(f"raw output {r['raw']} does not start with its command")
        if r.get("ok") and r["tool"] == "loadgen":
            for field in ("rps", "client_rps", "zero_share", "client_mean_ms", "latency_ms"):
                if field not in r:
                    fail(f"fairness run {r['raw']} lacks {field}")
            if not 0 <= r["zero_share"] <= 1:
                fail(f"zero_share {r['zero_share']} out of range in {r['raw']}")
    opened = summary["open_loop"]["runs"]
    for server in want:
        loads = {r["load"] for r in opened if r["server"] == server and r.get("ok")}
        if loads != {0.5, 0.9}:
            fail(f"open-loop runs of {server} at 50% and 90% expected, got {sorted(loads)}")
    for r in opened:
        if r.get("ok") and abs(r["target_rate"] - r["load"] * r["capacity"]) > 1:
            fail(f"open-loop target {r['target_rate']} is not {r['load']} x {r['capacity']}")
    if shutil.which("gnuplot"):
        for name in ("plots/fair-c50.svg", "plots/open-c50.svg"):
            if name not in summary["plots"]:
                fail(f"{name} missing from the plots")


def main():
    compare = sys.argv[1]
    out = tempfile.mkdtemp(prefix="kingx-bench-test-")
    try:
        p = subprocess.Popen([sys.executable, compare, "--quick", "--out", out, "--name", "test"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            stdout, stderr = p.communicate(timeout=200)
        except subprocess.TimeoutExpired:
            p.terminate()  # bench/compare stops its servers on SIGTERM
            stdout, stderr = p.communicate(timeout=60)
            sys.stderr.write(stderr[-4000:])
            fail("bench/compare --quick did not finish within 200 s")
        sys.stderr.write(stderr[-4000:])
        if p.returncode != 0:
            fail(f"bench/compare exited with {p.returncode}")
        dirs = os.listdir(out)
        if len(dirs) != 1 or not dirs[0].endswith("-test"):
            fail(f"expected one <date>-test directory, found {dirs}")
        rdir = os.path.join(out, dirs[0])
        if stdout.strip() != rdir:
            fail(f"bench/compare printed {stdout.strip()!r}, wrote {rdir!r}")
        with open(os.path.join(rdir, "summary.json")) as f:
            summary = json.load(f)
        for key in ("meta", "cells", "runs", "idle", "ratios", "plots", "fairness", "open_loop"):
            if key not in summary:
                fail(f"summary.json has no '{key}'")
        runs = summary["runs"]
        if not runs:
            fail("no runs recorded")
        for r in runs:
            raw = os.path.join(rdir, r["raw"])
            if not os.path.isfile(raw):
                fail(f"raw output {r['raw']} missing")
            with open(raw) as f:
                if not f.readline().startswith("$ wrk "):
                    fail(f"raw output {r['raw']} does not start with its command")
        ok = [r for r in runs if r.get("ok")]
        if not any(r["server"] == "nginx-return-w1" for r in ok):
            fail("no successful run of the reference server nginx-return-w1")
        for r in ok:
            for field in ("rps", "p50_ms", "p99_ms", "p999_ms", "cpu_us_per_req", "peak_rss_bytes",
                          "sched_us_per_req", "req_per_sched_s"):
                if field not in r:
                    fail(f"run {r['raw']} lacks {field}")
            # The scheduler's run time of a server that answered requests cannot be zero.
            if not r["sched_us_per_req"] or r["sched_us_per_req"] <= 0:
                fail(f"run {r['raw']} has no scheduler run time: {r['sched_us_per_req']}")
        kingx = os.environ.get("KINGX_BIN")
        if kingx and os.access(kingx, os.X_OK):
            if not any(r["server"] == "kingx-ev1" for r in ok):
                fail(f"kingx is built ({kingx}) but no kingx-ev1 run succeeded; notes: "
                     f"{summary['meta'].get('notes')}")
            if not any(x.get("req_per_sched_s_ratio") for x in summary["ratios"]):
                fail("no paired ratio of requests per scheduler CPU-second in summary.json")
        if not summary["idle"] or any(m["connected"] == 0 for m in summary["idle"]):
            fail(f"idle-connection test missing or connected nothing: {summary['idle']}")
        check_fairness(rdir, summary, kingx and os.access(kingx, os.X_OK))
        with open(os.path.join(rdir, "table.md")) as f:
            table = f.read()
        for heading in ("## get100:", "## put100-always:", "## Memory per idle keep-alive connection",
                        "## Fairness: closed loop", "## Open loop:", "Machine load: "):
            if heading not in table:
                fail(f"table.md lacks '{heading}'")
        if shutil.which("gnuplot"):
            if not summary["plots"]:
                fail("gnuplot is installed but no plot was written")
            for p in summary["plots"]:
                with open(os.path.join(rdir, p)) as f:
                    if "<svg" not in f.read(4096):
                        fail(f"{p} is not an SVG")
        print(f"ok: {len(runs)} runs, {len(summary['cells'])} cells, {len(summary['plots'])} plots")
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
