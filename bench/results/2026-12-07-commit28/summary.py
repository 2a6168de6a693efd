import json,sys,statistics as st
rows=[json.loads(l) for l in open(sys.argv[1]) if l.startswith('{')]
keys=["rps","ops_per_batch","delayed_share","mean_delay_us","mean_fsync_us","lat_p50_us","lat_p99_us","cpu_us_per_req_kingx-worker","cpu_us_per_req_kingx-writer","cpu_us_per_req_nginx","busy_machine"]
by={}
for r in rows: by.setdefault((r["conns"],r["bin"]),[]).append(r)
def med(xs):
    xs=[x for x in xs if x is not None]
    return round(st.median(xs),2) if xs else None
print("conns bin n "+" ".join(keys)+" srv_cpu")
for (c,b),rs in sorted(by.items()):
    cpu=[(r.get("cpu_us_per_req_kingx-worker") or 0)+(r.get("cpu_us_per_req_kingx-writer") or 0) or r.get("cpu_us_per_req_nginx") for r in rs]
    print(c,b,len(rs)," ".join(str(med([r.get(k) for r in rs])) for k in keys), med(cpu))
# paired ratios per round vs nginx and vs first bin
bins=sorted({r["bin"] for r in rows})
rounds=sorted({r["round"] for r in rows})
for c in sorted({r["conns"] for r in rows}):
    for b in bins:
        if b=="nginx": continue
        rat=[];
        for rd in rounds:
            x=[r for r in rows if r["conns"]==c and r["bin"]==b and r["round"]==rd]
            n=[r for r in rows if r["conns"]==c and r["bin"]=="nginx" and r["round"]==rd]
            if x and n: rat.append(round(x[0]["rps"]/n[0]["rps"],2))
        print(f"c={c} {b}/nginx per round {rat} med {med(rat)}")
