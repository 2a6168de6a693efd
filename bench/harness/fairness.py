"""Fairness to every connection (closed loop) and latency at a fixed request rate (open loop).

Closed loop, per server and connection count, two tools on the same GET 100 B load:
- `h2load --h1` (Debian's nghttp2-client), the outside reference. It reports the spread of the
  per-client request rates (min / max / mean / sd), nothing per client beyond that, and its
  per-request latencies leave out the requests that never completed.
- `bench/loadgen` (ours, bench/loadgen.cc), for what h2load does not report: the median per-client
  rate, the share of clients that got no answer, and the latency each client saw, where a client
  still waiting at the end counts at its age then (a client that got nothing waited for the whole
  run).

Open loop: `bench/loadgen --rate R` at 50% and 90% of the server's capacity, where capacity is the
median closed-loop req/s of bench/loadgen for that server and connection count in this same run.
Latency counts from the time each request was due, so a backlog shows (no coordinated omission).
h2load's --rps is not open loop: a request due while its connection is busy waits, unrecorded,
and its latency is timed from when it was sent (rps_cb in nghttp2's src/h2load.cc).

Every load is GET of uniform random keys k0..k(n-1) (the same key space as bench/compare's get100;
nginx `return` and static ignore the key).
"""

import json
import os
import random
import re
import shutil
import statistics
import subprocess

from . import runner, servers

DEFAULT_FAIR_CONNS = [100, 1000, 10000]
DEFAULT_OPEN_CONNS = [100, 1000]
DEFAULT_OPEN_LOADS = [0.5, 0.9]
H2LOAD_URIS = 10000  # distinct random keys in h2load's input file (each client walks them in order)


def get_path(spec):
    """(prefix, suffix) of a 100-byte GET for the server (the key goes between)."""
    return servers.get_path(spec, "small") or (servers.fixed_path(spec), "")


def loadgen_argv(loadgen, spec, port, conns, duration_s, nkeys, rate=None, seed=1, warmup_s=0,
                 connect_timeout_s=10):
    """loadgen connects every client first (up to connect_timeout_s), runs warmup_s of load,
    then starts the clock: connection setup is never inside the measured window."""
    prefix, suffix = get_path(spec)
    argv = [loadgen, "--port", str(port), "--conns", str(conns), "--duration", str(duration_s),
            "--path", prefix + "k", "--keys", str(nkeys), "--seed", str(seed),
            "--connect-timeout", str(connect_timeout_s), "--warmup", str(warmup_s)]
    if suffix:
        argv += ["--suffix", suffix]
    if rate:
        argv += ["--rate", f"{rate:.0f}"]
    return argv


def write_h2load_uris(path, spec, port, nkeys, seed):
    prefix, suffix = get_path(spec)
    rng = random.Random(seed)
    with open(path, "w") as f:
        for _ in range(min(H2LOAD_URIS, max(1, nkeys))):
            f.write(f"http://127.0.0.1:{port}{prefix}k{rng.randrange(nkeys)}{suffix}\n")


def h2load_argv(conns, duration_s, uri_file, warmup_s=0):
    # -t1: one load thread, as wrk -t1 (on 2 cores the load generator takes one).
    # --warm-up-time: h2load connects its clients and loads the server that long before it
    # starts counting (the connect storm of 10,000 clients stays out of the figures).
    argv = ["h2load", "--h1", "-t1", f"-c{conns}", "-m1", f"-D{duration_s}", "-i", uri_file]
    if warmup_s > 0:
        argv.insert(-2, f"--warm-up-time={int(warmup_s * 1000)}ms")
    return argv


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _to_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)$", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else None


def parse_h2load(text):
    """The figures of an h2load run, or None if it printed no summary."""
    out = {}
    m = re.search(r"finished in ([\d.]+)s, ([\d.]+) req/s", text)
    if not m:
        return None
    out["secs"] = float(m.group(1))
    out["rps"] = float(m.group(2))
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", text)
    if m:
        (out["total"], out["started"], out["done"], out["succeeded"], out["failed"],
         out["errored"], out["timeout"]) = map(int, m.groups())
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    if m:
        out["status_2xx"] = int(m.group(1))
        out["status_other"] = sum(int(x) for x in m.groups()[1:])
    m = re.search(r"req/s\s+:\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", text)
    if m:
        out["client_rps"] = dict(zip(("min", "max", "mean", "sd"), map(float, m.groups())))
    m = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", text)
    if m:
        out["request_ms"] = dict(zip(("min", "max", "mean", "sd"), map(_to_ms, m.groups())))
    return out


def parse_loadgen(text):
    for line in text.splitlines():
        if line.startswith("LOADGEN "):
            try:
                return json.loads(line[len("LOADGEN "):])
            except ValueError:
                return None
    return None


def _percentile(sorted_xs, q):
    if not sorted_xs:
        return None
    return sorted_xs[min(len(sorted_xs) - 1, int(round(q * (len(sorted_xs) - 1))))]


def loadgen_record(rec, g):
    """Adds the summary of a loadgen output g to the run record rec (in place)."""
    srv, bk = rec.pop("server_cpu_s"), rec.pop("backend_cpu_s")
    rec["ok"] = rec["exit"] == 0 and g is not None
    if g is None:
        return rec
    means = sorted(g["client_mean_us"])
    rec.update({
        "rps": g["rps"], "requests": g["requests_ok"], "target_rate": g["target_rate"],
        "client_rps": g["client_rps"], "clients": g["conns"],
        "clients_zero": g["clients_zero"], "zero_share": g["clients_zero"] / g["conns"],
        "min_over_mean": (g["client_rps"]["min"] / g["client_rps"]["mean"]
                          if g["client_rps"]["mean"] else 0.0),
        "client_mean_ms": {"p50": _percentile(means, 0.5) / 1000,
                           "p90": _percentile(means, 0.9) / 1000,
                           "p99": _percentile(means, 0.99) / 1000,
                           "max": means[-1] / 1000},
        "latency_ms": {k: v / 1000 for k, v in g["latency_us"].items()
                       if k not in ("samples", "censored")},
        "censored": g["latency_us"]["censored"], "samples": g["latency_us"]["samples"],
        "send_lag_ms": {k: v / 1000 for k, v in g["send_lag_us"].items()},
        "errors_total": g["errors"] + g["responses_other"], "connect_errors": g["connect_errors"],
        "cpu_us_per_req": round((srv + bk) * 1e6 / g["requests_ok"], 2) if g["requests_ok"] else None,
    })
    return rec


def h2load_record(rec, h):
    srv, bk = rec.pop("server_cpu_s"), rec.pop("backend_cpu_s")
    rec["ok"] = rec["exit"] == 0 and h is not None
    if h is None:
        return rec
    cr = h.get("client_rps", {})
    rec.update({
        "rps": h["rps"], "requests": h.get("succeeded", 0), "client_rps": cr,
        "min_over_mean": cr["min"] / cr["mean"] if cr.get("mean") else 0.0,
        "errors_total": h.get("failed", 0) + h.get("errored", 0) + h.get("status_other", 0),
        "timeouts": h.get("timeout", 0), "request_ms": h.get("request_ms"),
        "cpu_us_per_req": (round((srv + bk) * 1e6 / h["succeeded"], 2)
                           if h.get("succeeded") else None),
    })
    return rec


def _window_cpu(rec, args):
    """The server CPU of a run counts the warm-up as well as the measured window: keep the
    window's share, pro rata of time under load (the connect phase costs little)."""
    share = args.duration / (args.duration + args.fair_warmup)
    for k in ("server_cpu_s", "backend_cpu_s", "server_sched_s", "backend_sched_s"):
        rec[k] *= share


def run_closed(ctx, instances, specs, args, raw, rng, log):
    """The closed-loop fairness rounds. Returns the run records (tool 'h2load' or 'loadgen')."""
    tools = []
    if shutil.which("h2load"):
        tools.append("h2load")
    if args.loadgen_ok:
        tools.append("loadgen")
    cells = [(spec, conns, tool) for spec in specs for conns in args.fair_conns for tool in tools
             if (spec.name, "always" if spec.family == "kingx" else "-") in instances]
    runs = []
    for rnd in range(1, args.rounds + 1):
        order = list(cells)
        rng.shuffle(order)
        for i, (spec, conns, tool) in enumerate(order):
            inst = instances[(spec.name, "always" if spec.family == "kingx" else "-")]
            rawp = os.path.join(raw, f"r{rnd}-fair-{tool}-{spec.name}-c{conns}.txt")
            if tool == "h2load":
                uris = os.path.join(raw, f"h2load-uris-{spec.name}.txt")
                if not os.path.exists(uris):
                    write_h2load_uris(uris, spec, inst.port, ctx.dataset.nkeys, args.seed)
                argv = h2load_argv(conns, args.duration, uris, args.fair_warmup)
            else:
                argv = loadgen_argv(args.loadgen, spec, inst.port, conns, args.duration,
                                    ctx.dataset.nkeys, seed=args.seed + rnd,
                                    warmup_s=args.fair_warmup,
                                    connect_timeout_s=args.connect_timeout)
            rec, text = runner.measure_command(inst, argv, args.duration + args.fair_warmup
                                               + args.connect_timeout, rawp, args.idle_wait)
            _window_cpu(rec, args)
            if tool == "h2load":
                h2load_record(rec, parse_h2load(text))
            else:
                loadgen_record(rec, parse_loadgen(text))
            rec.update({"round": rnd, "server": spec.name, "conns": conns, "tool": tool,
                        "raw": os.path.relpath(rawp, os.path.dirname(raw))})
            runs.append(rec)
            log(f"fair round {rnd} {i + 1}/{len(order)} {tool} {spec.name} c{conns}: "
                f"{rec.get('rps', 'FAILED')} req/s, min/mean "
                f"{rec.get('min_over_mean', float('nan')):.2f}, other {rec['other_cores']} cores")
    return runs


def capacities(fair_runs):
    """{(server, conns): median closed-loop req/s of loadgen} over the successful runs."""
    by = {}
    for r in fair_runs:
        if r["tool"] == "loadgen" and r.get("ok") and r.get("rps"):
            by.setdefault((r["server"], r["conns"]), []).append(r["rps"])
    return {k: statistics.median(v) for k, v in by.items()}


def run_open(ctx, instances, specs, args, raw, rng, log, caps):
    """The open-loop rounds at args.open_loads x capacity. Returns the run records."""
    cells = [(spec, conns, load) for spec in specs for conns in args.open_conns
             for load in args.open_loads if (spec.name, conns) in caps]
    runs = []
    for rnd in range(1, args.rounds + 1):
        order = list(cells)
        rng.shuffle(order)
        for i, (spec, conns, load) in enumerate(order):
            inst = instances[(spec.name, "always" if spec.family == "kingx" else "-")]
            rate = max(1.0, caps[(spec.name, conns)] * load)
            rawp = os.path.join(raw, f"r{rnd}-open-{spec.name}-c{conns}-{int(load * 100)}.txt")
            argv = loadgen_argv(args.loadgen, spec, inst.port, conns, args.duration,
                                ctx.dataset.nkeys, rate=rate, seed=args.seed + rnd,
                                warmup_s=args.fair_warmup, connect_timeout_s=args.connect_timeout)
            rec, text = runner.measure_command(inst, argv, args.duration + args.fair_warmup
                                               + args.connect_timeout, rawp, args.idle_wait)
            _window_cpu(rec, args)
            loadgen_record(rec, parse_loadgen(text))
            rec.update({"round": rnd, "server": spec.name, "conns": conns, "load": load,
                        "capacity": caps[(spec.name, conns)], "tool": "loadgen",
                        "raw": os.path.relpath(rawp, os.path.dirname(raw))})
            runs.append(rec)
            lat = rec.get("latency_ms", {})
            log(f"open round {rnd} {i + 1}/{len(order)} {spec.name} c{conns} {load:.0%}: "
                f"{rec.get('rps', 'FAILED')} of {rate:.0f} req/s, p99 {lat.get('p99')} ms, "
                f"other {rec['other_cores']} cores")
    return runs


def _med(rs, f):
    xs = [f(r) for r in rs]
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def aggregate(runs, key_fields):
    """Median cells over the quiet runs (all runs if fewer than min(3, runs) are quiet)."""
    groups = {}
    for r in runs:
        groups.setdefault(tuple(r.get(k) for k in key_fields), []).append(r)
    cells = []
    for key, rs in sorted(groups.items(), key=lambda kv: tuple(str(x) for x in kv[0])):
        ok = [r for r in rs if r.get("ok")]
        quiet = [r for r in ok if r["quiet"]]
        used = quiet if quiet and len(quiet) >= min(3, len(rs)) else ok
        cell = dict(zip(key_fields, key))
        cell.update({"runs": len(rs), "used_runs": len(used), "all_runs_used": used is ok})
        if used:
            cell.update({
                "rps": _med(used, lambda r: r["rps"]),
                "client_rps": {k: _med(used, lambda r, k=k: r["client_rps"].get(k))
                               for k in ("min", "median", "max", "mean", "sd")},
                "min_over_mean": _med(used, lambda r: r.get("min_over_mean")),
                "zero_share": _med(used, lambda r: r.get("zero_share")),
                "client_mean_ms": {k: _med(used, lambda r, k=k: (r.get("client_mean_ms") or {}).get(k))
                                   for k in ("p50", "p90", "p99", "max")},
                "latency_ms": {k: _med(used, lambda r, k=k: (r.get("latency_ms") or {}).get(k))
                               for k in ("p50", "p90", "p99", "p999", "max")},
                "request_ms": {k: _med(used, lambda r, k=k: (r.get("request_ms") or {}).get(k))
                               for k in ("mean", "max")},
                "censored": _med(used, lambda r: r.get("censored")),
                "send_lag_p99_ms": _med(used, lambda r: (r.get("send_lag_ms") or {}).get("p99")),
                "target_rate": _med(used, lambda r: r.get("target_rate")),
                "errors": sum(r.get("errors_total", 0) for r in used),
                "cpu_us_per_req": _med(used, lambda r: r.get("cpu_us_per_req")),
                "gen_cores": _med(used, lambda r: r.get("wrk_cores")),
                "server_died": any(not r["server_alive"] for r in rs),
            })
        cells.append(cell)
    return cells


def _f(x, nd=0):
    if x is None:
        return "–"
    return f"{x:,.{nd}f}"


def _ms(x):
    if x is None:
        return "–"
    return f"{x:.2f}" if x < 10 else f"{x:,.0f}"


def table_lines(fair_cells, open_cells, meta):
    lines = []
    if fair_cells:
        lines += [
            "## Fairness: closed loop, GET 100 B, every client counted", "",
            "Each client is one keep-alive connection sending its next request as soon as the "
            "previous answer is in. `h2load` (nghttp2-client) gives the spread of per-client "
            "rates; `loadgen` (bench/loadgen.cc) also gives the median, the share of clients "
            "that got no answer, and the mean latency each client saw, where a request still "
            "unanswered at the end counts at its age (a client that got nothing waited the whole "
            f"run: {meta['duration_s']} s). Request latency: every answer plus the unanswered "
            "requests at their age.", "",
            "| conns | server | tool | req/s | client req/s min / median / max | min ÷ mean "
            "| clients with no answer | client mean latency p50 / p99 / max ms "
            "| request latency p50 / p99 / max ms | errors | server CPU µs/req | runs used |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for c in sorted(fair_cells, key=lambda c: (c["conns"], c["server"], c["tool"])):
            if c.get("rps") is None:
                lines.append(f"| {c['conns']} | {c['server']} | {c['tool']} | failed | | | | | | | | |")
                continue
            cr = c["client_rps"]
            star = "*" if c["all_runs_used"] else ""
            died = " (server died)" if c.get("server_died") else ""
            if c["tool"] == "h2load":
                spread = f"{_f(cr['min'], 1)} / (mean {_f(cr['mean'], 1)}, sd {_f(cr['sd'], 1)}) / {_f(cr['max'], 1)}"
                zero = "–"
                cm = "–"
                rq = c["request_ms"]
                lat = f"mean {_ms(rq['mean'])} / – / {_ms(rq['max'])} (answered only)"
            else:
                spread = f"{_f(cr['min'], 1)} / {_f(cr['median'], 1)} / {_f(cr['max'], 1)}"
                zero = f"{c['zero_share']:.1%}"
                m = c["client_mean_ms"]
                cm = f"{_ms(m['p50'])} / {_ms(m['p99'])} / {_ms(m['max'])}"
                la = c["latency_ms"]
                lat = f"{_ms(la['p50'])} / {_ms(la['p99'])} / {_ms(la['max'])}"
            lines.append(
                f"| {c['conns']} | {c['server']}{died} | {c['tool']} | {_f(c['rps'])}{star} | "
                f"{spread} | {_f(c['min_over_mean'], 2)} | {zero} | {cm} | {lat} | {c['errors']} | "
                f"{_f(c['cpu_us_per_req'], 1)} | {c['used_runs']}/{c['runs']} |")
        lines.append("")
    if open_cells:
        lines += [
            "## Open loop: GET 100 B at a fixed rate (50% and 90% of each server's capacity)", "",
            "Capacity = the median closed-loop req/s of `loadgen` for that server and connection "
            "count in this run. Requests fall due on a fixed schedule spread over the "
            "connections; latency counts from the time a request was due, so waiting behind a "
            "busy connection counts. Censored = requests still unanswered (or not yet sent) at "
            "the end, counted at their age. Generator lag = how late loadgen itself sent a "
            "request on an idle connection (if large, the figures measure the generator).", "",
            "| conns | server | load | capacity req/s | target → achieved req/s "
            "| latency p50 / p90 / p99 / p99.9 / max ms | censored | generator lag p99 ms "
            "| errors | runs used |",
            "|---|---|---|---|---|---|---|---|---|---|"]
        for c in sorted(open_cells, key=lambda c: (c["conns"], c["server"], c["load"])):
            if c.get("rps") is None:
                lines.append(f"| {c['conns']} | {c['server']} | {c['load']:.0%} | failed | | | | | | |")
                continue
            la = c["latency_ms"]
            star = "*" if c["all_runs_used"] else ""
            lines.append(
                f"| {c['conns']} | {c['server']} | {c['load']:.0%} | {_f(c['target_rate'] / c['load'])} | "
                f"{_f(c['target_rate'])} → {_f(c['rps'])}{star} | {_ms(la['p50'])} / {_ms(la['p90'])} / "
                f"{_ms(la['p99'])} / {_ms(la['p999'])} / {_ms(la['max'])} | {_f(c['censored'])} | "
                f"{_ms(c['send_lag_p99_ms'])} | {c['errors']} | {c['used_runs']}/{c['runs']} |")
        lines.append("")
    return lines


def _gnuplot(script):
    res = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    return res.returncode == 0


def write_plots(out_dir, raw_dir, fair_runs, open_runs):
    """plots/fair-c<N>.svg (left: sorted per-client req/s; right: CDF of each client's mean
    latency, the starved at the run's length) and plots/open-c<N>.svg (request latency CDF per
    server and load). Data come from every successful loadgen run. Returns the files written."""
    if shutil.which("gnuplot") is None:
        return []
    pdir = os.path.join(out_dir, "plots")
    os.makedirs(pdir, exist_ok=True)
    written = []

    def load_json(r):
        with open(os.path.join(out_dir, r["raw"])) as f:
            return parse_loadgen(f.read())

    for conns in sorted({r["conns"] for r in fair_runs}):
        rs = [r for r in fair_runs if r["conns"] == conns and r["tool"] == "loadgen" and r.get("ok")]
        names = sorted({r["server"] for r in rs})
        if not names:
            continue
        dat = os.path.join(pdir, f"fair-c{conns}.dat")
        with open(dat, "w") as f:
            for n in names:
                rates, means = [], []
                for r in rs:
                    if r["server"] != n:
                        continue
                    g = load_json(r)
                    if g is None:
                        continue
                    secs = g["duration_s"]
                    rates += [x / secs for x in g["client_ok"]]
                    means += [x / 1000 for x in g["client_mean_us"]]
                rates.sort()
                means.sort()
                f.write(f"# {n}\n")
                for i, (x, m) in enumerate(zip(rates, means)):
                    frac = (i + 1) / len(rates)
                    f.write(f"{frac:.5f} {x:.3f} {max(m, 0.001):.4f}\n")
                f.write("\n\n")
        svg = os.path.join(pdir, f"fair-c{conns}.svg")
        left = ", ".join(f"'{dat}' index {i} using 1:2 with lines lw 2 title '{n}'"
                         for i, n in enumerate(names))
        right = ", ".join(f"'{dat}' index {i} using 3:1 with lines lw 2 title '{n}'"
                          for i, n in enumerate(names))
        script = "\n".join([
            "set terminal svg size 1300,560 dynamic background rgb 'white'",
            f"set output '{svg}'", "set multiplot layout 1,2", "set grid", "set key top left noenhanced",
            f"set title 'closed loop, {conns} connections: requests/s each client got (sorted)' noenhanced",
            "set xlabel 'fraction of clients'", "set ylabel 'req/s of one client'", "set yrange [0:*]",
            f"plot {left}",
            f"set title 'closed loop, {conns} connections: mean latency each client saw (CDF)' noenhanced",
            "set logscale x", "set xlabel 'ms (a client with no answer counts at the run length)'",
            "set ylabel 'fraction of clients'", "set yrange [0:1]", "set key bottom right",
            f"plot {right}", "unset multiplot", ""])
        if _gnuplot(script):
            written.append(os.path.relpath(svg, out_dir))

    for conns in sorted({r["conns"] for r in open_runs}):
        rs = [r for r in open_runs if r["conns"] == conns and r.get("ok")]
        series = sorted({(r["server"], r["load"]) for r in rs})
        if not series:
            continue
        dat = os.path.join(pdir, f"open-c{conns}.dat")
        with open(dat, "w") as f:
            for name, load in series:
                hist = {}
                for r in rs:
                    if (r["server"], r["load"]) != (name, load):
                        continue
                    g = load_json(r)
                    for upper, count in (g or {}).get("latency_hist", []):
                        hist[upper] = hist.get(upper, 0) + count
                total = sum(hist.values()) or 1
                seen = 0
                f.write(f"# {name} {load}\n")
                for upper in sorted(hist):
                    seen += hist[upper]
                    f.write(f"{max(upper, 1) / 1000:.4f} {seen / total:.6f}\n")
                f.write("\n\n")
        svg = os.path.join(pdir, f"open-c{conns}.svg")
        plots = ", ".join(f"'{dat}' index {i} using 1:2 with lines lw 2 dt {1 if load < 0.75 else 2} "
                          f"title '{n} {load:.0%}'" for i, (n, load) in enumerate(series))
        script = "\n".join([
            "set terminal svg size 900,560 dynamic background rgb 'white'", f"set output '{svg}'",
            f"set title 'open loop, {conns} connections: request latency from due time (CDF)' noenhanced",
            "set logscale x", "set xlabel 'ms (unanswered requests at their age at the end)'",
            "set ylabel 'fraction of requests'", "set yrange [0:1]", "set grid",
            "set key outside right noenhanced", f"plot {plots}", ""])
        if _gnuplot(script):
            written.append(os.path.relpath(svg, out_dir))
    return written
