"""The steady samples over 2x of a soak run whose binary logs the write
stall's decisions with wall-clock milliseconds (diag.patch: "DIAG <ms>
forecast|unforecast|end ..." debug lines), each with the samples around it
and the decisions of the 0.6 s before it.
Usage: diag_over2x.py RUN_DIR   (samples-bin.jsonl, logs/bin.log)"""
import json
import re
import sys

run = sys.argv[1]
rows = [json.loads(l) for l in open(f"{run}/samples-bin.jsonl")]
diag = []
for line in open(f"{run}/logs/bin.log", errors="replace"):
    m = re.search(r"DIAG (\d+) (.*)", line)
    if m:
        diag.append((int(m.group(1)) / 1000, m.group(2)))
for i, r in enumerate(rows):
    if not (r.get("live") and r["live"] >= 3 * 2**20 and r["steady"] and r["dir"] > 2 * r["live"]):
        continue
    print(f"== cycle {r['cycle']} wall {r['wall']:.3f} ratio {r['dir'] / r['live']:.2f} dead/L {r['dead'] / r['live']:.2f}")
    for q in rows[max(0, i - 3):i + 2]:
        if q["cycle"] == r["cycle"] and q.get("live"):
            print("   %s%.3f dir %.2f live %.2f dead %.2f passes %d stalls %d" % (
                "*" if q is r else " ", q["wall"] % 100, q["dir"] / 1e6, q["live"] / 1e6, q["dead"] / 1e6,
                q["passes"], q["stalls"]))
    for t, m in diag:
        if r["wall"] - 0.6 <= t <= r["wall"] + 0.05:
            print("     %.3f %s" % (t % 100, m))
