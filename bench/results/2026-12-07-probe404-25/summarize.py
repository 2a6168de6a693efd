# usage: summarize.py runs-*.txt   one line per preload_repro.py run: script, binary, check, wrk errors, k0's PUTs
import json, sys
for path in sys.argv[1:]:
    start = None
    for line in open(path):
        if line.startswith("run ") and " start " in line:
            start = line.split()[1], line.split("load average:")[1].strip()
        if not line.startswith("RESULT "):
            continue
        r = json.loads(line[7:])
        lua = "fixed" if r.get("lua", "").endswith("probe404/bench/lua") else "main-759bd6d"
        if "lua" not in r:
            lua = "main-759bd6d (errors line)" if "errors_read" in json.dumps(r["wrk_preload"]) else "main-759bd6d"
        k0 = [l.split('"')[2].split()[0] for l in r["k0_lines"] if '"PUT ' in l]
        order = r.get("first_put_answered_at") or {}
        print(f"{start[0]:10s} load {start[1]:18s} {lua:27s} {r['kingx'].split('/')[-3]:6s} "
              f"{r.get('preload_s')!s:>6s}s check_bad={len(r['harness_check_bad'])} "
              f"socket_errors={r['wrk_socket_errors']} status_errors={r['wrk_preload']['errors_status']} "
              f"PUT201={r['access_statuses'].get('PUT 201')} PUT204={r['access_statuses'].get('PUT 204')} "
              f"k0_PUTs={k0} k0_first_answered_as_PUT_no={order.get('/v1/kv/k0', '?')} "
              f"last_key_as_no={order.get('/v1/kv/k999999', '?')} wrk_latency_max={(r.get('wrk_latency_avg_stdev_max') or ['?'] * 3)[2]}")
