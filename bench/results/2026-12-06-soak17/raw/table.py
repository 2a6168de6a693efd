"""One markdown row per soak run of this directory: samples over 2x (new /
old, largest ratio, without staged bytes), writes per load second new / old,
catch-up bytes written new / old, stalls (ended released + without progress)
new / old, catch-up space-bound and stall-target large copies new / old.
Usage: table.py PREFIX... (raw/PREFIX-summary.txt, -tally.txt, -large.txt)"""
import json
import os
import re
import sys

RAW = os.path.dirname(os.path.abspath(__file__))


def summaries(prefix):
    out = {}
    for line in open(os.path.join(RAW, prefix + "-summary.txt")):
        if line.startswith("SUMMARY "):
            d = json.loads(line[8:])
            out["new" if "new" in d["bin"] else "old"] = d
    return out


def tally(prefix):
    out, cur = {}, None
    for line in open(os.path.join(RAW, prefix + "-tally.txt")):
        if line.startswith("== "):
            cur = "old" if "compare-bin" in line else "new"
            out[cur] = {"written": 0, "stalls": 0, "noprog": 0}
        m = re.match(r"catch-up: \d+ passes, wrote (\d+) B", line)
        if m:
            out[cur]["written"] = int(m.group(1))
        m = re.search(r"stalls ended '(.*)': (\d+),", line)
        if m:
            out[cur]["stalls"] += int(m.group(2))
            if "no progress" in m.group(1):
                out[cur]["noprog"] += int(m.group(2))
    return out


def large(prefix):
    out, cur = {}, None
    for line in open(os.path.join(RAW, prefix + "-large.txt")):
        if line.startswith("== "):
            cur = "old" if "compare-bin" in line else "new"
            out[cur] = [0, 0.0]
        m = re.match(r"\s+catch-up\s+(space-bound|stall-target)\s+large copies\s+(\d+).*share of the sealed live ([\d.]+)",
                     line)
        if m:
            out[cur][0] += int(m.group(2))
            out[cur][1] = max(out[cur][1], float(m.group(3)))
    return out


print("| run | samples over 2x new / old (largest; over 2x without staged) | writes/s new ÷ old | catch-up written new / old | "
      "stalls new / old (of them ended without progress) | catch-up large copies for the space bound or a target new / old "
      "(largest share of the sealed live) | load |")
print("|---|---|---|---|---|---|---|")
for prefix in sys.argv[1:]:
    s, t, g = summaries(prefix), tally(prefix), large(prefix)
    n, o = s["new"], s["old"]
    print(f"| {prefix} | {n['samples_over_2x']} of {n['samples']:,} ({n['max_ratio_dir_to_live']}; "
          f"{n['samples_over_2x_without_staged']}) / {o['samples_over_2x']} of {o['samples']:,} "
          f"({o['max_ratio_dir_to_live']}; {o['samples_over_2x_without_staged']}) | "
          f"{n['ops_per_load_second'] / o['ops_per_load_second']:.2f} | "
          f"{t['new']['written'] / 1e6:.1f} / {t['old']['written'] / 1e6:.1f} MB "
          f"({t['new']['written'] / t['old']['written']:.2f}x) | "
          f"{t['new']['stalls']:,} ({t['new']['noprog']:,}) / {t['old']['stalls']:,} ({t['old']['noprog']:,}) | "
          f"{g['new'][0]} ({g['new'][1]:.2f}) / {g['old'][0]} ({g['old'][1]:.2f}) | {n['load']:.1f} |")
