import subprocess, sys, re, json
# symdiff.py A.data A_us_per_req B.data B_us_per_req: per symbol us/request side by side
def load(path):
    out = subprocess.run(["perf","report","-i",path,"--no-children","--sort","dso,sym","--stdio","-g","none"],capture_output=True,text=True).stdout
    d = {}
    for line in out.splitlines():
        m = re.match(r"\s*([0-9.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)$", line)
        if m:
            d[(m.group(3), m.group(4).strip())] = float(m.group(1))
    return d
a = load(sys.argv[1]); ua = float(sys.argv[2]); b = load(sys.argv[3]); ub = float(sys.argv[4])
keys = set(a)|set(b)
rows = sorted(keys, key=lambda k: -abs(a.get(k,0)*ua - b.get(k,0)*ub))
ka = sum(v for k,v in a.items() if k[0]=='k')*ua/100; kb = sum(v for k,v in b.items() if k[0]=='k')*ub/100
print(f"kernel us/req: {ka:.2f} vs {kb:.2f}; user {ua-ka:.2f} vs {ub-kb:.2f}")
for k in rows[:int(sys.argv[5]) if len(sys.argv)>5 else 40]:
    print(f"{a.get(k,0)*ua/100:7.3f} {b.get(k,0)*ub/100:7.3f} {a.get(k,0)*ua/100-b.get(k,0)*ub/100:+7.3f}  [{k[0]}] {k[1]}")
