#!/usr/bin/env python3
"""Kernel and user symbols of the kingx worker against nginx, in cpu-clock samples per GET.

Input: the *.syms.txt that `perf report -i T.perf.data --no-children --sort sym -F sample,sym --stdio -g none`
wrote for each T of bench/get_conns_profile.sh's PROFILE=1 runs, and its summary.txt (GETs per run).
usage: python3 sym_diff.py   (in this directory)
"""
import re


def load(t):
    d = {}
    for line in open(t + ".syms.txt"):
        m = re.match(r"\s*(\d+)\s+\[(.)\]\s+(.*\S)", line)
        if m:
            d[m.group(3)] = (int(m.group(1)), m.group(2))
    return d


gets = {}
for line in open("summary.txt"):
    p = line.split()
    gets[p[0]] = int(p[2])
for c in ("c100", "c1000"):
    k, n = load("kingx-" + c), load("nginx-" + c)
    gk, gn = gets["kingx-" + c], gets["nginx-" + c]
    print(c, "samples/GET kingx %.4f nginx %.4f" % (sum(v[0] for v in k.values()) / gk,
                                                   sum(v[0] for v in n.values()) / gn))
    print("  kernel samples/GET kingx %.4f nginx %.4f" % (
        sum(v[0] for v in k.values() if v[1] == "k") / gk, sum(v[0] for v in n.values() if v[1] == "k") / gn))
    diffs = sorted(((k.get(s, (0,))[0] / gk - n.get(s, (0,))[0] / gn, s) for s in set(k) | set(n)), reverse=True)
    print("  kingx more:")
    for d, s in diffs[:14]:
        print("    %+.5f %s" % (d, s))
    print("  nginx more:")
    for d, s in diffs[-10:]:
        print("    %+.5f %s" % (d, s))
