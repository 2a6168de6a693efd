import json,sys,statistics as st
rows=json.load(open(sys.argv[1]))["rows"]
by={}
for r in rows: by.setdefault((str(r["load"]),r["bin"]),[]).append(r)
print("load bin n rps p50_us p99_us p999_us ops_per_batch delayed_share (medians; per round p50/p99)")
for (l,b),rs in sorted(by.items()):
    m=lambda k: st.median([r[k] for r in rs if r[k] is not None]) if any(r[k] is not None for r in rs) else None
    print(l,b,len(rs),m("rps"),m("p50_us"),m("p99_us"),m("p999_us"),m("ops_per_batch"),m("delayed_share"),[(r["p50_us"],r["p99_us"]) for r in sorted(rs,key=lambda r:r["round"])])
