"""Aggregation of runs into cells, paired ratios, and the report files: summary.json, table.md,
plots/*.svg (gnuplot).

Medians use the quiet runs of a cell when it has at least min(3, rounds) of them, otherwise all
runs (the cell is then marked with '*'). A paired ratio A/B is the median over rounds of
A's req/s divided by B's req/s in the same round, so slow drift of the machine cancels out.
CPU per request is reported twice: from utime+stime (clock ticks) and from the scheduler's exact
run time (schedstat, the "sched" columns); the second is the one that resolves a few percent.
"""

import json
import os
import shutil
import statistics
import subprocess

from . import servers


def _median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def _used_runs(runs, rounds):
    ok = [r for r in runs if r.get("ok")]
    quiet = [r for r in ok if r["quiet"]]
    if len(quiet) >= min(3, rounds) and quiet:
        return quiet, False
    return ok, True


def aggregate(runs, rounds):
    """Cells: one dict per (scenario, server, conns) with medians over its used runs."""
    groups = {}
    for r in runs:
        groups.setdefault((r["scenario"], r["server"], r["conns"]), []).append(r)
    cells = []
    for (scen, server, conns), rs in sorted(groups.items()):
        used, all_runs = _used_runs(rs, rounds)
        cell = {"scenario": scen, "server": server, "conns": conns, "runs": len(rs),
                "ok_runs": len([r for r in rs if r.get("ok")]), "used_runs": len(used),
                "quiet_runs": len([r for r in rs if r.get("ok") and r["quiet"]]),
                "all_runs_used": all_runs}
        if used:
            rps = [r["rps"] for r in used]
            cell.update({
                "rps": _median(rps), "rps_min": min(rps), "rps_max": max(rps),
                "p50_ms": _median([r["p50_ms"] for r in used]),
                "p99_ms": _median([r["p99_ms"] for r in used]),
                "p999_ms": _median([r["p999_ms"] for r in used]),
                "errors": sum(r["errors_total"] for r in used),
                "timeouts": sum(r["timeouts"] for r in used),
                "requests": sum(r["requests"] for r in used),
                "cpu_us_per_req": _median([r["cpu_us_per_req"] for r in used]),
                "req_per_cpu_s": _median([r["req_per_cpu_s"] for r in used]),
                "sched_us_per_req": _median([r.get("sched_us_per_req") for r in used]),
                "req_per_sched_s": _median([r.get("req_per_sched_s") for r in used]),
                "server_cores": _median([r["server_cores"] for r in used]),
                "backend_cores": _median([r["backend_cores"] for r in used]),
                "wrk_cores": _median([r["wrk_cores"] for r in used]),
                "peak_rss_bytes": max(r["peak_rss_bytes"] + r["backend_peak_rss_bytes"] for r in used),
                "server_died": any(not r["server_alive"] for r in rs),
            })
        cells.append(cell)
    return cells


def paired_ratio(runs, scen, conns, a, b, field="rps"):
    """Median, min, max over rounds of a[field]/b[field] in the same round (None if no pair)."""
    by = {}
    for r in runs:
        if r["scenario"] == scen and r["conns"] == conns and r.get("ok") and r.get(field):
            by[(r["server"], r["round"])] = r[field]
    vals = [by[(a, rd)] / by[(b, rd)] for (s, rd) in list(by) if s == a and (b, rd) in by]
    if not vals:
        return None
    return {"median": round(statistics.median(vals), 3), "min": round(min(vals), 3),
            "max": round(max(vals), 3), "pairs": len(vals)}


def reference_for(cells, scen, conns):
    names = {c["server"] for c in cells if c["scenario"] == scen and c["conns"] == conns
             and c.get("rps")}
    return next((r for r in servers.REFERENCES if r in names), None)


def ratios(runs, cells):
    """Every kingx server against every peer, per scenario and connection count."""
    out = []
    keys = sorted({(c["scenario"], c["conns"]) for c in cells})
    for scen, conns in keys:
        names = sorted({c["server"] for c in cells if c["scenario"] == scen and c["conns"] == conns})
        for a in [n for n in names if n.startswith("kingx")]:
            for b in [n for n in names if not n.startswith("kingx")]:
                rps = paired_ratio(runs, scen, conns, a, b)
                eff = paired_ratio(runs, scen, conns, a, b, "req_per_cpu_s")
                sched = paired_ratio(runs, scen, conns, a, b, "req_per_sched_s")
                if rps:
                    out.append({"scenario": scen, "conns": conns, "server": a, "peer": b,
                                "rps_ratio": rps, "req_per_cpu_s_ratio": eff,
                                "req_per_sched_s_ratio": sched})
    return out


def _fmt(x, nd=0):
    if x is None:
        return "–"
    if nd == 0:
        return f"{x:,.0f}"
    return f"{x:.{nd}f}"


def _fmt_ms(x):
    if x is None:
        return "–"
    return f"{x:.2f}" if x < 10 else f"{x:.0f}"


def write_table(path, meta, cells, runs, idle, scen_labels, server_labels, extra=()):
    lines = [f"# Benchmark {meta['name']} ({meta['date']})", "",
             f"Command: `{meta['command']}`", "",
             f"Mode: {meta['mode']}; {meta['rounds']} round(s) of {meta['duration_s']} s per cell, "
             f"cells shuffled per round; wrk -t1; keys: {meta['dataset']}.", "",
             "Machine load: " + next((l.split(": ", 1)[1] for l in meta.get("environment", [])
                                      if l.startswith("uptime: ")), "?")
             + f" at the start; load average {', '.join(f'{x:.2f}' for x in meta.get('load_average_end', ()))}"
             " at the end (figures taken on a loaded machine are preliminary).",
             "Ratios are paired (same round) medians against the scenario's reference "
             "(nginx return 200, 1 worker, or nginx static where `return` has no such cell). "
             "CPU is all the server's processes plus its backend (memcached/redis), from /proc: "
             "utime+stime (clock ticks) and, exact, the threads' scheduler run time (schedstat, "
             "'sched' columns). "
             "Peak RSS is the sum of each process's VmHWM (shared memory counted once per process). "
             "`*` = fewer than 3 quiet runs, all runs used.", ""]
    for note in meta.get("notes", []):
        lines.append(f"- {note}")
    lines.append("")
    for scen in [s for s in scen_labels if any(c["scenario"] == s for c in cells)]:
        lines += [f"## {scen}: {scen_labels[scen]}", "",
                  "| conns | server | req/s median [min–max] | × ref (paired) | p50 / p99 / p99.9 ms "
                  "| errors / timeouts | server CPU µs/req | req per CPU-s | × ref req/CPU-s "
                  "| sched CPU µs/req | × ref req/sched-s | peak RSS MB | wrk cores | runs used |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for c in sorted([c for c in cells if c["scenario"] == scen],
                        key=lambda c: (c["conns"], c["server"])):
            ref = reference_for(cells, scen, c["conns"])
            if not c.get("rps") and c.get("rps") != 0:
                lines.append(f"| {c['conns']} | {c['server']} | failed ({c['runs']} runs) "
                             "| | | | | | | | | | | |")
                continue
            r = paired_ratio(runs, scen, c["conns"], c["server"], ref) if ref else None
            e = paired_ratio(runs, scen, c["conns"], c["server"], ref, "req_per_cpu_s") if ref else None
            x = paired_ratio(runs, scen, c["conns"], c["server"], ref, "req_per_sched_s") if ref else None
            star = "*" if c["all_runs_used"] else ""
            died = " (server died)" if c.get("server_died") else ""
            lines.append(
                f"| {c['conns']} | {c['server']}{died} | {_fmt(c['rps'])} [{_fmt(c['rps_min'])}–"
                f"{_fmt(c['rps_max'])}]{star} | {_fmt(r and r['median'], 2)} | "
                f"{_fmt_ms(c['p50_ms'])} / {_fmt_ms(c['p99_ms'])} / {_fmt_ms(c['p999_ms'])} | "
                f"{c['errors']} / {c['timeouts']} | {_fmt(c['cpu_us_per_req'], 1)} | "
                f"{_fmt(c['req_per_cpu_s'])} | {_fmt(e and e['median'], 2)} | "
                f"{_fmt(c.get('sched_us_per_req'), 2)} | {_fmt(x and x['median'], 3)} | "
                f"{_fmt(c['peak_rss_bytes'] / 1e6, 1)} | {_fmt(c['wrk_cores'], 2)} | "
                f"{c['used_runs']}/{c['runs']} |")
        lines.append("")
    if idle:
        lines += ["## Memory per idle keep-alive connection", "",
                  "| server | connections | answered | open after idle | RSS before MB | "
                  "RSS after MB | bytes RSS / conn | bytes PSS / conn | warm: bytes RSS / conn | "
                  "RSS growth by process KB |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for m in idle:
            growth = ", ".join(f"{n} {v // 1024}" for n, v in m.get("rss_growth_by_process", {}).items())
            lines.append(f"| {m['server']} | {m['connections']} | {m['answered']} | "
                         f"{m['open_after_idle']} | {_fmt(m['rss_before'] / 1e6, 1)} | "
                         f"{_fmt(m['rss_after'] / 1e6, 1)} | {_fmt(m['bytes_per_conn'])} | "
                         f"{_fmt(m['pss_bytes_per_conn'])} | {_fmt(m.get('warm_bytes_per_conn'))} | "
                         f"{growth} |")
        lines += ["", "First pass: RSS growth over the server's memory before it, per connection "
                  "answered and still open after the idle time (with `--scenarios idle` alone the "
                  "server has served nothing else: the fresh figure). Warm: the same again after "
                  "those connections closed, RSS above the same starting point per connection. "
                  "nginx preallocates its connection slots at start (`worker_connections`), so its "
                  "growth leaves them out.", ""]
    lines += list(extra)
    lines += ["## Servers", ""] + [f"- `{n}`: {server_labels[n]}" for n in
                                   sorted({c['server'] for c in cells} |
                                          {m['server'] for m in idle})] + [""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def write_plots(out_dir, cells, scen_labels):
    """Per scenario: req/s and p99 against connections, one line per server (SVG). Returns the
    list of files written; empty when gnuplot is missing."""
    gnuplot = shutil.which("gnuplot")
    if gnuplot is None:
        return []
    pdir = os.path.join(out_dir, "plots")
    os.makedirs(pdir, exist_ok=True)
    written = []
    for scen in sorted({c["scenario"] for c in cells}):
        rows = [c for c in cells if c["scenario"] == scen and c.get("rps") is not None]
        names = sorted({c["server"] for c in rows})
        if not names:
            continue
        dat = os.path.join(pdir, f"{scen}.dat")
        with open(dat, "w") as f:
            for n in names:
                f.write(f"# {n}\n")
                for c in sorted([c for c in rows if c["server"] == n], key=lambda c: c["conns"]):
                    f.write(f"{c['conns']} {c['rps']} {c['p99_ms']}\n")
                f.write("\n\n")
        for what, col, ylabel in (("rps", 2, "requests/s (median)"), ("p99", 3, "p99 latency, ms")):
            svg = os.path.join(pdir, f"{scen}-{what}.svg")
            plots = ", ".join(f"'{dat}' index {i} using 1:{col} with linespoints title '{n}'"
                              for i, n in enumerate(names))
            script = "\n".join([
                "set terminal svg size 900,560 dynamic background rgb 'white'",
                f"set output '{svg}'",
                f"set title '{scen}: {scen_labels.get(scen, '')}' noenhanced",
                "set logscale x", "set xlabel 'connections'", f"set ylabel '{ylabel}'",
                "set key outside right noenhanced", "set grid",
                "set logscale y" if what == "p99" else "set yrange [0:*]",
                f"plot {plots}", ""])
            res = subprocess.run([gnuplot], input=script, text=True, capture_output=True)
            if res.returncode == 0 and os.path.exists(svg):
                written.append(os.path.relpath(svg, out_dir))
    return written


def write_summary(path, meta, cells, runs, idle, ratio_list, plots, fairness=None,
                  open_loop=None):
    with open(path, "w") as f:
        json.dump({"meta": meta, "cells": cells, "ratios": ratio_list, "idle": idle,
                   "plots": plots, "runs": runs, "fairness": fairness or {"cells": [], "runs": []},
                   "open_loop": open_loop or {"cells": [], "runs": []}}, f, indent=1)
