"""Per-round ratios of a durable_put_probe.py run (probe.txt): depth 2 / depth 1 and each / nginx."""
import json, statistics as st, sys
rows = [json.loads(l) for l in open(sys.argv[1] if len(sys.argv) > 1 else "probe.txt") if l.startswith("{")]
by = {(r["round"], r["bin"], r["conns"]): r for r in rows}
rounds = sorted({r["round"] for r in rows})
f = lambda x: "%.2f [%.2f-%.2f]" % (st.median(x), min(x), max(x))
for c in (100, 1000):
    rps, cpu, cs, tot, d1n, d2n, sc = [], [], [], [], [], [], []
    calls = lambda r: sum(v for k, v in r.items() if k.startswith("sys_") and k.endswith("_writer"))
    for rd in rounds:
        a, b, n = by[(rd, "d1", c)], by[(rd, "d2", c)], by[(rd, "nginx", c)]
        w = "cpu_us_per_req_kingx-writer"
        s = "switches_per_req_kingx-writer"
        t = lambda r: r[w] + r["cpu_us_per_req_kingx-worker"]
        rps.append(b["rps"] / a["rps"]); cpu.append(b[w] / a[w]); cs.append(b[s] / a[s]); tot.append(t(b) / t(a))
        d1n.append(a["rps"] / n["rps"]); d2n.append(b["rps"] / n["rps"]); sc.append(calls(b) / calls(a))
        print(f"c={c} round {rd}: req/s d1 {a['rps']} d2 {b['rps']} nginx {n['rps']}; writer CPU us/PUT {a[w]} / {b[w]};"
              f" writer cs/PUT {a[s]} / {b[s]}; writer system calls/PUT {calls(a):.3f} / {calls(b):.3f}; fdatasync us {a['mean_fsync_us']} / {b['mean_fsync_us']};"
              f" PUTs per batch {a['ops_per_batch']} / {b['ops_per_batch']};"
              f" per group commit: writer system calls {calls(a) * a['ops_per_batch']:.1f} / {calls(b) * b['ops_per_batch']:.1f},"
              f" context switches {a[s] * a['ops_per_batch']:.1f} / {b[s] * b['ops_per_batch']:.1f}")
    print(f"c={c}: d2/d1 req/s {f(rps)}; writer CPU/PUT {f(cpu)}; writer context switches/PUT {f(cs)};"
          f" writer system calls/PUT {f(sc)}; worker+writer CPU/PUT {f(tot)}; d1/nginx {f(d1n)}; d2/nginx {f(d2n)}")
