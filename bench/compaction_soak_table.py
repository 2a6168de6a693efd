"""One markdown row per soak run (new = bin, old = compare-bin): samples over
2x (largest ratio; over 2x without staged bytes), samples over 1.9x, writes
per load second new / old, catch-up bytes written, stalls and the time writes
waited in them (the debug log's "write stall ended after N us" lines), and
the samples taken while a copy larger than a quarter of the live data stood
(the directory's bytes beyond live + dead + staged above live/4) with the
largest (dead + staged + that rest) / live among them; and, where the soak
recorded it, the samples over 2x among the steady ones (the gauges did not
move while the directory was measured), and among those with no batch in
flight (kingx_writer_unpublished_bytes 0 at both reads: only a binary with
that gauge records it; "-" for one without), each split into dead bytes on
top (dead > the rest) and the rest on top.
Usage: bench/compaction_soak_table.py RUN_DIR... (each with runs.jsonl, samples-{bin,compare-bin}.jsonl,
logs/{bin,compare-bin}.log); live floor of the samples: the run's --live-mb / 2,
read from its summary."""
import json
import os
import re
import sys

PASS = re.compile(r"compaction: catch-up pass \([^)]*\): .*; wrote (\d+), deleted (\d+),")
STALL = re.compile(r"write stall ended after (\d+) us: (.*)$")


def one(run, name):
    # The soak writes --bin's summary first, then --compare-bin's.
    summaries = [json.loads(line)["summary"] for line in open(os.path.join(run, "runs.jsonl")) if '"summary"' in line]
    summary = summaries[0 if name == "bin" else 1]
    floor = summary["live_mb_target"] * (1 << 20) / 2
    n = over = over19 = copy_n = steady_n = steady_over = 0
    pub_n = pub_over = pub_dead = 0
    steady_dead = 0
    has_gauge = False
    copy_max = steady_max = 0.0
    for line in open(os.path.join(run, f"samples-{name}.jsonl")):
        r = json.loads(line)
        live = r.get("live")
        if not live or live < floor:
            continue
        n += 1
        ratio = r["dir"] / live
        over += ratio > 2
        over19 += ratio > 1.9
        dead, staged = r.get("dead", 0), r.get("staged", 0)
        rest = r["dir"] - live - dead - staged
        if r.get("steady"):
            steady_n += 1
            steady_over += ratio > 2
            steady_dead += ratio > 2 and dead >= rest
            steady_max = max(steady_max, ratio)
            if "unpublished" in r:
                has_gauge = True
                if not r["unpublished"] and not r.get("unpublished_before"):
                    pub_n += 1
                    pub_over += ratio > 2
                    pub_dead += ratio > 2 and dead >= rest
        if rest > live / 4 + (64 << 10):
            copy_n += 1
            copy_max = max(copy_max, (dead + staged + rest) / live)
    written = stalls = noprog = us = 0
    for line in open(os.path.join(run, "logs", f"{name}.log"), errors="replace"):
        m = PASS.search(line)
        if m:
            written += int(m.group(1))
            continue
        m = STALL.search(line)
        if m:
            stalls += 1
            us += int(m.group(1))
            noprog += "no progress" in m.group(2)
    return dict(s=summary, n=n, over=over, over19=over19, copy_n=copy_n, copy_max=copy_max, written=written,
                stalls=stalls, noprog=noprog, us=us, steady_n=steady_n, steady_over=steady_over, steady_max=steady_max,
                steady_dead=steady_dead, has_gauge=has_gauge, pub_n=pub_n, pub_over=pub_over, pub_dead=pub_dead)


def pub(x):
    if not x["has_gauge"]:
        return "-"
    return f"{x['pub_over']} of {x['pub_n']:,} (dead on top {x['pub_dead']})"


print("| run | samples over 2x new / old (largest; over 2x without staged) | over 1.9x new / old | writes/s new ÷ old "
      "| catch-up written new / old | stalls new / old (no progress) | writes waited new / old | samples beside a "
      "copy > L/4: n, largest (dead+staged+rest)/L new / old | steady samples over 2x new / old (largest; dead on top) "
      "| steady, no batch in flight, over 2x new / old | load |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for run in sys.argv[1:]:
    a, b = one(run, "bin"), one(run, "compare-bin")
    sa, sb = a["s"], b["s"]
    print(f"| {os.path.basename(run.rstrip('/'))} "
          f"| {a['over']} of {a['n']:,} ({sa['max_ratio_dir_to_live']}; {sa['samples_over_2x_without_staged']}) / "
          f"{b['over']} of {b['n']:,} ({sb['max_ratio_dir_to_live']}; {sb['samples_over_2x_without_staged']}) "
          f"| {a['over19']} / {b['over19']} "
          f"| {sa['ops_per_load_second'] / sb['ops_per_load_second']:.2f} ({sa['ops_per_load_second']} / {sb['ops_per_load_second']}) "
          f"| {a['written'] / 1e6:.1f} / {b['written'] / 1e6:.1f} MB ({a['written'] / max(b['written'], 1):.2f}x) "
          f"| {a['stalls']:,} ({a['noprog']:,}) / {b['stalls']:,} ({b['noprog']:,}) "
          f"| {a['us'] / 1e6:.1f} / {b['us'] / 1e6:.1f} s "
          f"| {a['copy_n']}, {a['copy_max']:.3f} / {b['copy_n']}, {b['copy_max']:.3f} "
          + (f"| {a['steady_over']} of {a['steady_n']:,} ({a['steady_max']:.3f}; {a['steady_dead']}) / {b['steady_over']} of "
             f"{b['steady_n']:,} ({b['steady_max']:.3f}; {b['steady_dead']}) " if a['steady_n'] else "| (not recorded) ") +
          f"| {pub(a)} / {pub(b)} " +
          f"| {sa['load']:.1f} |")
