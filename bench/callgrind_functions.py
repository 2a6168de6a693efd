#!/usr/bin/env python3
"""Instructions per request by function, from one callgrind dump (callgrind_put.sh's and
callgrind_nginx_put.sh's KEEP=DIR files), where callgrind_annotate prints only the outermost function
(the dumps of a forked, zeroed-then-dumped process name functions by compressed ids it does not resolve).

Usage: bench/callgrind_functions.py DUMP REQUESTS [--top N] [--callers NAME]
  DUMP       a callgrind out file (e.g. KEEP/worker.out)
  REQUESTS   what to divide by: the PUTs (or requests) the dump covers (callgrind_put.sh prints them)
  --top N    the N functions with the most self instructions (default 40): self Ir per request and
             calls per request
  --callers NAME  instead: every caller of the functions whose name contains NAME, with the calls and
             the inclusive Ir of those calls per request (e.g. clock_gettime)
Python standard library only.
"""
import argparse
import collections
import re
import sys


def parse(path):
    """(self Ir by function, {(caller, callee): [calls, inclusive Ir]}) of one callgrind dump."""
    names = {}

    def name(text):
        m = re.match(r"\((\d+)\)(?: (.*))?", text)
        if not m:
            return text
        if m.group(2):
            names[m.group(1)] = m.group(2)
        return names.get(m.group(1), text)

    self_ir = collections.Counter()
    calls = collections.defaultdict(lambda: [0, 0])
    fn = callee = None
    pending = None  # the call count of a calls= line; the next cost line is that call's inclusive cost
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("fn="):
                fn = name(line[3:])
            elif line.startswith("cfn="):
                callee = name(line[4:])
            elif line.startswith("calls="):
                pending = int(line[6:].split()[0])
            elif line and (line[0].isdigit() or line[0] in "+-*"):
                parts = line.split()
                if len(parts) < 2:
                    continue
                if pending is not None:
                    c = calls[(fn, callee)]
                    c[0] += pending
                    c[1] += int(parts[1])
                    pending = None
                else:
                    self_ir[fn] += int(parts[1])
    return self_ir, calls


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dump")
    ap.add_argument("requests", type=float)
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--callers")
    a = ap.parse_args(argv)
    self_ir, calls = parse(a.dump)
    n = a.requests
    if a.callers:
        rows = [(k, v) for k, v in calls.items() if a.callers in k[1]]
        for (caller, callee), (count, ir) in sorted(rows, key=lambda kv: -kv[1][0])[:a.top]:
            print(f"{count / n:6.2f} calls/req {ir / n:8.1f} Ir/req  {caller[:110]} -> {callee[:60]}")
        return 0
    called = collections.Counter()
    for (caller, callee), (count, _) in calls.items():
        if caller != callee:
            called[callee] += count
    print(f"total self Ir per request {sum(self_ir.values()) / n:.0f}")
    for f, v in self_ir.most_common(a.top):
        print(f"{v / n:8.1f}  calls/req {called[f] / n:6.2f}  {f[:150]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
