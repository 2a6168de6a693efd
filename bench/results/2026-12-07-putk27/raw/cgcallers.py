import sys, re, collections
# cgcallers.py FILE PUTS FUNC_SUBSTR: callers of matching functions, calls per PUT
names = {}
def nm(s):
    m = re.match(r"\((\d+)\)(?: (.*))?", s)
    if not m: return s
    if m.group(2): names[m.group(1)] = m.group(2)
    return names.get(m.group(1), s)
c = collections.Counter(); ir = collections.Counter()
fn = None; cfn = None; pending = None
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if line.startswith("fn="): fn = nm(line[3:]); continue
    if line.startswith("cfn="): cfn = nm(line[4:]); continue
    if line.startswith("calls="): pending = int(line[6:].split()[0]); continue
    if pending is not None and line and (line[0].isdigit() or line[0] in "+-*"):
        if sys.argv[3] in cfn:
            c[(fn, cfn)] += pending; ir[(fn, cfn)] += int(line.split()[1])
        pending = None
puts = float(sys.argv[2])
for k, v in c.most_common(40):
    print(f"{v/puts:6.2f} calls/put {ir[k]/puts:8.1f} Ir/put  {k[0][:110]} -> {k[1][:60]}")
