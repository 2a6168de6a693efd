"""bench/compare: one command that runs a whole comparison and writes its report.

Flow: start every server instance the selected cells need (all at once, idle between their
turns), warm up, then run the rounds: each round runs every cell once in a freshly shuffled
order (A B A B over the whole matrix, so machine drift hits every server alike), then the idle
connection memory test, then the fairness rounds (closed loop, h2load and bench/loadgen, every
client counted) and the open-loop rounds at 50% and 90% of the capacity the fairness rounds
measured, then stop everything and write the report.
"""

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

from . import fairness, idle, procs, report, runner, scenarios, servers, sysinfo

BENCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_DIR = os.path.dirname(BENCH_DIR)

QUICK_SERVERS = ["kingx-ev1", "kingx-thr16", "nginx-return-w1", "nginx-mc-w1", "webdis-redis"]
QUICK_SCENARIOS = ["get100", "put100-always", "idle", "fair", "open"]
# Phases that are not wrk scenarios: memory per idle connection, closed-loop fairness, open loop.
SPECIAL = ("idle", "fair", "open")
# The quick fairness and open-loop runs cover the two models and the ceiling only.
QUICK_FAIR_SERVERS = ["kingx-ev1", "kingx-thr16", "nginx-return-w1"]


def parse_args(argv):
    p = argparse.ArgumentParser(prog="bench/compare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke test: few servers and cells, 1 s per cell, 1000 keys, 1 round")
    p.add_argument("--servers", help="comma list (default: all; kingx ones only if the binary "
                   "exists). Known: " + ", ".join(s.name for s in servers.ALL))
    p.add_argument("--scenarios", help="comma list (default: all, plus 'idle'). Known: "
                   + ", ".join(s.name for s in scenarios.ALL) + ", " + ", ".join(SPECIAL))
    p.add_argument("--conns", help="comma list of connection counts (default 10,100,1000,10000; quick 100)")
    p.add_argument("--fair-conns", help="connection counts of the fairness runs "
                   "(default 100,1000,10000; quick 50)")
    p.add_argument("--open-conns", help="connection counts of the open-loop runs "
                   "(default 100,1000; quick 50)")
    p.add_argument("--fair-warmup", type=float,
                   help="seconds of unrecorded load before each fairness and open-loop run, "
                   "after loadgen connected every client (default 2; quick 0.5)")
    p.add_argument("--connect-timeout", type=float,
                   help="longest wait for loadgen to connect every client before the warm-up "
                   "(default 10; quick 5)")
    p.add_argument("--open-loads", default="0.5,0.9",
                   help="open-loop rates as fractions of the measured capacity (default 0.5,0.9)")
    p.add_argument("--loadgen", default=os.environ.get("KINGX_LOADGEN",
                                                       os.path.join(REPO_DIR, "build/bench/loadgen")),
                   help="bench/loadgen binary (default $KINGX_LOADGEN or build/bench/loadgen)")
    p.add_argument("--rounds", type=int, help="rounds (default 3; quick 1)")
    p.add_argument("--duration", type=int, help="seconds per run (default 5; quick 1)")
    p.add_argument("--warmup", type=int, help="seconds of one unrecorded pass per cell before "
                   "round 1 (default 1; quick 0)")
    p.add_argument("--wrk-timeout", type=int, default=10,
                   help="seconds after which wrk counts a request as timed out (default 10, as "
                   "perf.md; below --duration it exposes connections a server never answers)")
    p.add_argument("--keys", type=int, help="100-byte keys to preload (default 1000000; quick 1000)")
    p.add_argument("--idle-conns", type=int, help="idle connections in the memory test "
                   "(default 10000; quick 200)")
    p.add_argument("--idle-hold", type=float, help="seconds the idle connections are held before "
                   "memory is read, in each of the memory test's two passes (default 3; quick 1)")
    p.add_argument("--idle-settle", type=float, help="seconds the server's memory must stay "
                   "unchanged before the memory test's starting point is read (default 2; quick 0.5)")
    p.add_argument("--idle-wait", type=float, help="max seconds to wait for an idle machine "
                   "before each run (default 20; quick 1)")
    p.add_argument("--kingx", default=os.environ.get("KINGX_BIN",
                                                     os.path.join(REPO_DIR, "build/src/kingx")),
                   help="kingx binary (default $KINGX_BIN or build/src/kingx)")
    p.add_argument("--kingx-alt", action="append", default=[], metavar="LABEL=PATH",
                   help="another kingx binary, run side by side with --kingx: adds servers "
                   "<kingx server>@LABEL (e.g. kingx-ev1@old) to choose with --servers; the "
                   "database is the one --kingx preloaded. Repeatable")
    p.add_argument("--name", help="results directory suffix (default 'quick' or 'full')")
    p.add_argument("--out", default=os.path.join(BENCH_DIR, "results"),
                   help="where <date>-<name>/ is created (default bench/results)")
    p.add_argument("--seed", type=int, help="shuffle seed (default: time)")
    p.add_argument("--keep-tmp", action="store_true", help="keep the scratch directory")
    a = p.parse_args(argv)
    q = a.quick

    def pick(v, full, quick):
        return v if v is not None else (quick if q else full)

    a.rounds = pick(a.rounds, 3, 1)
    a.duration = pick(a.duration, 5, 1)
    a.warmup = pick(a.warmup, 1, 0)
    a.keys = pick(a.keys, 1000000, 1000)
    a.idle_conns = pick(a.idle_conns, 10000, 200)
    a.idle_hold = pick(a.idle_hold, 3.0, 1.0)
    a.idle_settle = pick(a.idle_settle, 2.0, 0.5)
    a.idle_wait = pick(a.idle_wait, 20.0, 1.0)
    a.name = pick(a.name, "full", "quick")
    a.conns = [int(x) for x in pick(a.conns, "10,100,1000,10000", "100").split(",")]
    a.seed = pick(a.seed, int(time.time()), int(time.time()))
    a.fair_warmup = pick(a.fair_warmup, 2.0, 0.5)
    a.connect_timeout = pick(a.connect_timeout, 10.0, 5.0)
    a.fair_conns = [int(x) for x in pick(a.fair_conns, "100,1000,10000", "50").split(",")]
    a.open_conns = [int(x) for x in pick(a.open_conns, "100,1000", "50").split(",")]
    a.open_loads = [float(x) for x in a.open_loads.split(",")]
    a.loadgen_ok = os.access(a.loadgen, os.X_OK)
    for alt in a.kingx_alt:
        label, sep, path = alt.partition("=")
        if not sep or not label or not os.access(path, os.X_OK):
            p.error(f"--kingx-alt {alt}: want LABEL=PATH to an executable")
        servers.add_kingx_binary(label, os.path.abspath(path))
    return a


def select(args, log):
    """(server specs, scenarios, special phases to run, notes) after applying the options."""
    notes = []
    have_kingx = os.access(args.kingx, os.X_OK)
    if args.servers:
        names = args.servers.split(",")
        unknown = [n for n in names if n not in servers.BY_NAME]
        if unknown:
            sys.exit(f"bench/compare: unknown server(s) {unknown}")
    else:
        names = QUICK_SERVERS if args.quick else [s.name for s in servers.ALL]
    specs = [servers.BY_NAME[n] for n in names]
    if not have_kingx and any(s.family == "kingx" for s in specs):
        notes.append(f"kingx binary {args.kingx} not found: kingx servers skipped")
        log(notes[-1])
        specs = [s for s in specs if s.family != "kingx"]
    snames = args.scenarios.split(",") if args.scenarios else (
        QUICK_SCENARIOS if args.quick else [s.name for s in scenarios.ALL] + list(SPECIAL))
    unknown = [n for n in snames if n not in scenarios.BY_NAME and n not in SPECIAL]
    if unknown:
        sys.exit(f"bench/compare: unknown scenario(s) {unknown}")
    scens = [scenarios.BY_NAME[n] for n in snames if n not in SPECIAL]
    phases = {n for n in snames if n in SPECIAL}
    if phases & {"fair", "open"} and not args.loadgen_ok:
        notes.append(f"loadgen binary {args.loadgen} not found: fairness runs use h2load only, "
                     "no open-loop runs")
        log(notes[-1])
        phases.discard("open")
    if "open" in phases and "fair" not in phases:
        sys.exit("bench/compare: 'open' needs 'fair' (capacity is measured by the fairness runs)")
    return specs, scens, phases, notes


def instance_key(spec, scen):
    return (spec.name, scen.sync if spec.family == "kingx" else "-")


def results_dir(args):
    base = f"{datetime.now(timezone.utc).strftime('%Y-%m-%d')}-{args.name}"
    path = os.path.join(args.out, base)
    n = 2
    while os.path.exists(path):  # bounded by the number of existing directories
        path = os.path.join(args.out, f"{base}-{n}")
        n += 1
    os.makedirs(os.path.join(path, "raw"))
    return path


def environment(args):
    lines = [f"date: {datetime.now(timezone.utc).isoformat()}", f"uname: {' '.join(os.uname())}",
             f"nproc: {os.cpu_count()}", f"fd limit: {sysinfo.raise_fd_limit()}"]
    for cmd in (["uptime"], ["nginx", "-v"], ["redis-server", "--version"], ["memcached", "-V"],
                ["wrk", "-v"], ["h2load", "--version"],
                ["git", "-C", REPO_DIR, "describe", "--always", "--dirty"]):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            lines.append(f"{' '.join(cmd)}: {(r.stdout + r.stderr).strip().splitlines()[0]}")
        except (OSError, IndexError, subprocess.TimeoutExpired):
            lines.append(f"{' '.join(cmd)}: unavailable")
    try:
        with open("/proc/cpuinfo") as f:
            model = next(l for l in f if l.startswith("model name")).split(":", 1)[1].strip()
        lines.append(f"cpu: {model}")
    except (OSError, StopIteration):
        pass
    if os.access(args.kingx, os.X_OK):
        lines.append(f"kingx: {args.kingx}")
    for alt in args.kingx_alt:
        lines.append(f"kingx@{alt}")
    return lines


def _terminate(signum, frame):
    # SIGTERM/SIGHUP end the run like Ctrl-C: the finally block below stops every server.
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    t_start = time.monotonic()

    def log(msg):
        print(f"[{time.monotonic() - t_start:7.1f}s] {msg}", file=sys.stderr, flush=True)

    sysinfo.raise_fd_limit()
    specs, scens, phases, notes = select(args, log)
    do_idle = "idle" in phases
    out = results_dir(args)
    raw = os.path.join(out, "raw")
    env_lines = environment(args)
    with open(os.path.join(out, "env.txt"), "w") as f:
        f.write("\n".join(env_lines) + "\n")
    dataset = scenarios.Dataset(args.keys, 4 if args.quick else 32, 2 if args.quick else 8)
    cells = [(spec, scen, c) for scen in scens for spec in specs
             if scenarios.supports(spec, scen) for c in args.conns]
    needed = {}
    for spec, scen, _ in cells:
        needed.setdefault(instance_key(spec, scen), spec)
    if phases:
        for spec in specs:
            needed.setdefault((spec.name, "always" if spec.family == "kingx" else "-"), spec)
    workdir = tempfile.mkdtemp(prefix="kingx-bench-")
    os.chmod(workdir, 0o755)  # nginx workers run as an unprivileged user when started by root
    ctx = servers.Context(workdir, dataset, args.kingx, raw, log)
    instances = {}
    runs = []
    idle_results = []
    fair_runs, open_runs = [], []
    rng = random.Random(args.seed)
    try:
        for key, spec in needed.items():
            log(f"starting {key[0]} (sync {key[1]})")
            try:
                inst = servers.start(spec, key[1], ctx)
                instances[key] = inst
                status, body = procs.http_request(inst.port, "GET", servers.fixed_path(spec))
                if status != 200 or len(body) != 100:
                    raise RuntimeError(f"GET {servers.fixed_path(spec)} -> {status}, "
                                       f"{len(body)} bytes instead of 200 with 100 bytes")
            except Exception as e:  # a server that cannot start is reported, not fatal
                if key in instances:
                    instances.pop(key).stop()
                notes.append(f"{key[0]} (sync {key[1]}) did not start: {e}")
                log(notes[-1])
        cells = [c for c in cells if instance_key(c[0], c[1]) in instances]
        log(f"{len(cells)} cells x {args.rounds} rounds, {args.duration} s each")
        if args.warmup > 0:
            for spec, scen, conns in cells:
                inst = instances[instance_key(spec, scen)]
                cmd = scenarios.wrk_argv(spec, scen, inst.port, conns, args.warmup, dataset,
                                         args.wrk_timeout)
                subprocess.run(cmd, capture_output=True, timeout=args.warmup + 60)
        for rnd in range(1, args.rounds + 1):
            order = list(cells)
            rng.shuffle(order)
            for i, (spec, scen, conns) in enumerate(order):
                inst = instances[instance_key(spec, scen)]
                cmd = scenarios.wrk_argv(spec, scen, inst.port, conns, args.duration, dataset,
                                         args.wrk_timeout)
                rawp = os.path.join(raw, f"r{rnd}-{scen.name}-{spec.name}-c{conns}.txt")
                rec = runner.run_cell(inst, cmd, args.duration, rawp, args.idle_wait)
                rec.update({"round": rnd, "server": spec.name, "scenario": scen.name,
                            "conns": conns, "raw": os.path.relpath(rawp, out)})
                runs.append(rec)
                log(f"round {rnd} {i + 1}/{len(order)} {scen.name} {spec.name} c{conns}: "
                    f"{rec.get('rps', 'FAILED')} req/s, other {rec['other_cores']} cores")
        if do_idle:
            for spec in specs:
                inst = instances.get((spec.name, "always" if spec.family == "kingx" else "-"))
                if inst is None:
                    continue
                log(f"idle connections: {spec.name} x {args.idle_conns}")
                m = idle.measure(inst, servers.fixed_path(spec), args.idle_conns, idle_s=args.idle_hold,
                                 settle_s=args.idle_settle)
                m["server"] = spec.name
                m["idle_seconds"] = args.idle_hold
                idle_results.append(m)
        fair_specs = [s for s in specs if s.name in QUICK_FAIR_SERVERS] if args.quick else specs
        if "fair" in phases:
            fair_runs = fairness.run_closed(ctx, instances, fair_specs, args, raw, rng, log)
        if "open" in phases:
            open_runs = fairness.run_open(ctx, instances, fair_specs, args, raw, rng, log,
                                          fairness.capacities(fair_runs))
    finally:
        for key, inst in instances.items():
            inst.stop()
        if args.keep_tmp:
            log(f"scratch kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    agg = report.aggregate(runs, args.rounds)
    ratio_list = report.ratios(runs, agg)
    scen_labels = {s.name: s.label for s in scenarios.ALL}
    server_labels = {s.name: s.label for s in servers.ALL}
    meta = {"name": args.name, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": "bench/compare " + " ".join(argv), "mode": "quick" if args.quick else "full",
            "rounds": args.rounds, "duration_s": args.duration, "conns": args.conns,
            "seed": args.seed, "dataset": f"{dataset.nkeys} x 100 B, {dataset.n64k} x 64 KiB, "
            f"{dataset.n1m} x 1 MiB", "servers": [s.name for s in specs],
            "scenarios": [s.name for s in scens] + sorted(phases),
            "fair_conns": args.fair_conns if "fair" in phases else [],
            "open_conns": args.open_conns if "open" in phases else [],
            "open_loads": args.open_loads if "open" in phases else [],
            "environment": env_lines, "notes": notes + [f"{k}: {v}" for k, v in ctx.notes.items()],
            "elapsed_s": round(time.monotonic() - t_start, 1),
            "load_average_end": os.getloadavg()}
    fair_cells = fairness.aggregate(fair_runs, ("server", "conns", "tool"))
    open_cells = fairness.aggregate(open_runs, ("server", "conns", "load"))
    plots = report.write_plots(out, agg, scen_labels)
    plots += fairness.write_plots(out, raw, fair_runs, open_runs)
    report.write_table(os.path.join(out, "table.md"), meta, agg, runs, idle_results,
                       scen_labels, server_labels,
                       extra=fairness.table_lines(fair_cells, open_cells, meta))
    report.write_summary(os.path.join(out, "summary.json"), meta, agg, runs, idle_results,
                         ratio_list, plots,
                         fairness={"cells": fair_cells, "runs": fair_runs},
                         open_loop={"cells": open_cells, "runs": open_runs})
    log(f"report written to {out}")
    print(out)
    return 0
