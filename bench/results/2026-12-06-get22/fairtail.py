#!/usr/bin/env python3
"""Per-client tail of bench/compare's loadgen fairness runs: for each raw/r*-fair-loadgen-*.txt,
client_rps min / mean, latency max, clients below 0.9 of the mean answers, and the slow tail's
shape: clients whose own max latency is over 2x the median client's max, and the longest run of
consecutive client indexes among them and among those below 0.9 of the mean (a batch held too
long shows as runs of its size).

    fairtail.py RAW_DIR...
"""
import glob, json, os, statistics, sys


def runs_of(flags):
    best = cur = 0
    for f in flags:
        cur = cur + 1 if f else 0
        best = max(best, cur)
    return best


def main(dirs):
    print(f"{'run':<48} {'min/mean':>8} {'lat max ms':>10} {'<0.9 mean':>9} {'run':>4} {'slow':>5} {'run':>4}")
    for d in dirs:
        for p in sorted(glob.glob(os.path.join(d, "r*-fair-loadgen-*.txt"))):
            for line in open(p):
                if not line.startswith("LOADGEN "):
                    continue
                j = json.loads(line[8:])
                ok = j["client_ok"]
                mean = statistics.mean(ok)
                mx = j["client_max_us"]
                med = statistics.median(mx)
                slow = [m > 2 * med for m in mx]
                print(f"{os.path.basename(p)[:-4]:<48} {min(ok) / mean:8.3f} {j['latency_us']['max'] / 1000:10.0f} "
                      f"{sum(1 for o in ok if o < 0.9 * mean):9d} {runs_of(o < 0.9 * mean for o in ok):4d} "
                      f"{sum(slow):5d} {runs_of(slow):4d}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["raw"])
