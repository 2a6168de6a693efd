import sys, re, collections
# cgself.py FILE PUTS [N]: self Ir per PUT by function, and calls per PUT of each callee, from a callgrind out file
names = {}
def nm(s):
    m = re.match(r"\((\d+)\)(?: (.*))?", s)
    if not m: return s
    if m.group(2): names[m.group(1)] = m.group(2)
    return names.get(m.group(1), s)
self_ir = collections.Counter(); calls = collections.Counter(); incl = collections.Counter()
fn = None; pending = None; cfn = None
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if line.startswith("fn="): fn = nm(line[3:]); continue
    if line.startswith("cfn="): cfn = nm(line[4:]); continue
    if line.startswith("calls="): pending = int(line[6:].split()[0]); continue
    if line and (line[0].isdigit() or line[0] in "+-*"):
        parts = line.split()
        if len(parts) >= 2:
            v = int(parts[1])
            if pending is not None:
                calls[cfn] += pending; incl[cfn] += v; pending = None
            else:
                self_ir[fn] += v
puts = float(sys.argv[2]); n = int(sys.argv[3]) if len(sys.argv) > 3 else 60
tot = sum(self_ir.values())
print(f"total Ir/put {tot/puts:.0f}")
for f, v in self_ir.most_common(n):
    print(f"{v/puts:8.1f}  calls/put {calls[f]/puts:6.2f}  {f[:150]}")
