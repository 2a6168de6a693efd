"""Calls into functions matching a pattern, by caller, per request (llhttp-normalized)."""
import re, sys, collections
def parse(path, pat):
    names = {}; fn = None; cfn = None; out = collections.Counter(); llhttp = 0; skip = False
    for line in open(path, errors="replace"):
        line = line.rstrip("\n")
        m = re.match(r"(c?)fn=\((\d+)\)(?: (.*))?", line)
        if m:
            if m.group(3): names[m.group(2)] = m.group(3)
            name = names.get(m.group(2), m.group(2))
            if m.group(1): cfn = name
            else: fn = name
            continue
        if line.startswith("calls="):
            n = int(line.split("=")[1].split()[0])
            if re.search(pat, cfn or ""): out[(fn, cfn)] += n
            skip = True; continue
        if line and (line[0].isdigit() or line[0] in "+-*"):
            if skip: skip = False; continue
            if fn and fn.startswith("llhttp__internal__run"): llhttp += int(line.split()[1])
    return out, llhttp / 798.3
pat = sys.argv[1]
for path in sys.argv[2:]:
    out, n = parse(path, pat)
    print(path, "requests %.0f" % n)
    for (f, c), k in sorted(out.items(), key=lambda x: -x[1])[:12]:
        print(f"   {k / n:7.3f}  {f[:70]} -> {c[:60]}")
