#!/usr/bin/env python3
"""The table of bench/abuse_six.sh: per abuse case and server, the req/s ratio and the CPU ratio
(medians of the paired phases, bench/abuse_phases.py's medians) and each worker's largest RSS
against its budget. With several run directories, their pairs are pooled (the medians of all).

  bench/abuse_six_table.py OUT [OUT2 ...] > OUT/table.md
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import abuse_phases  # noqa: E402

CASES = ["slowloris", "slow-body", "slow-read", "idle-10k", "garbage-64", "garbage-256", "garbage-1024",
         "fd-exhaustion"]
SERVERS = ["event", "threads", "event-proxied", "threads-proxied", "nginx"]


def main(dirs):
    lines = ["| case | " + " | ".join(SERVERS) + " |", "|---" * (len(SERVERS) + 1) + "|"]
    rss = ["| case | " + " | ".join(SERVERS) + " |", "|---" * (len(SERVERS) + 1) + "|"]
    loads = []
    for case in CASES:
        rows = []
        for d in dirs:
            path = os.path.join(d, case, "phases.json")
            if os.path.exists(path):
                with open(path) as f:
                    rows += json.load(f)["rows"]
        if not rows:
            continue
        m = abuse_phases.medians(rows)
        loads += [r["load"] for r in rows]

        def cell(name):
            if name not in m:
                return "–"
            x = m[name]
            if x["rps_ratio"] == 0:
                return f"**0 req/s** ({x['pairs']})"
            mark = "**" if x["cpu_ratio"] is not None and x["cpu_ratio"] < 0.9 else ""
            return (f"{abuse_phases.ratio_text(x['rps_ratio'], '–')} / {mark}"
                    f"{abuse_phases.ratio_text(x['cpu_ratio'], 'no answer')}{mark} ({x['pairs']})")
        lines.append(f"| {case} | " + " | ".join(cell(s) for s in SERVERS) + " |")
        rss.append(f"| {case} | " + " | ".join(
            "–" if s not in m else m[s]["rss"] + ("" if m[s]["within_budget"] else " **over**") for s in SERVERS) + " |")
    print("req/s ratio (abused ÷ alone) / CPU ratio (alone ÷ abused server CPU µs per wrk request), medians of "
          "the pairs (their count in brackets); **bold** CPU ratio: below 0.9.\n")
    print("\n".join(lines))
    print("\nEach worker's largest RSS / its budget, MiB (kingx: body + response buffers + 16 MiB; nginx in "
          "front of kingx: its buffers per connection held + 16 MiB; nginx serving files: no budget):\n")
    print("\n".join(rss))
    if loads:
        print(f"\n1-minute load average at the phases' starts: {min(loads):.1f}–{max(loads):.1f}.")
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
