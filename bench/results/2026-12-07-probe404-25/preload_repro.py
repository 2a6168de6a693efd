# usage: preload_repro.py WORKDIR KINGX [NKEYS [LUA_DIR]]   (LUA_DIR: another preload.lua, e.g. main's before the fix)
# The template build's preload (bench/harness/kingx._preload_small: wrk -t1 -c64 with
# bench/lua/preload.lua, wrap-around, SIGINT 1 s after the last key reads 200) against a kingx
# started as build_template starts it, but with the access and error logs kept. Then the
# harness's check (k0, last, middle) and GETs of k1..k1999, wrk's full
# output (its "Socket errors" line) and every access-log line of k0's PUTs.
# Prints one summary line: RESULT {...}. Keeps the logs only when something is wrong.
import json, os, re, shutil, signal, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
from harness import kingx, scenarios, procs

w, kb = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 1000000
if len(sys.argv) > 4:
    kingx.LUA_DIR = sys.argv[4]
os.makedirs(w, exist_ok=True)
ds = scenarios.Dataset(n, 0, 0)
data = os.path.join(w, "data"); os.makedirs(data, exist_ok=True)
port = procs.free_port()
argv = [kb, "--listen", f"127.0.0.1:{port}", "--data", data, "--workers", "1", "--model", "event",
        "--sync", "none", "--access-log", os.path.join(w, "access.log"),
        "--error-log", os.path.join(w, "error.log"), "--max-connections", "19000",
        "--accept", "reuseport"]
p = procs.Proc("kingx", argv, os.path.join(w, "kingx.log"))
procs.wait_http_ok(port, "/readyz", kingx.ready_timeout(ds), p)
res = {"kingx": kb, "nkeys": n, "lua": kingx.LUA_DIR}
try:
    t0 = time.time()
    try:
        res["preload_s"] = round(kingx._preload_small(port, ds, w), 1)
    except RuntimeError as e:
        res["preload_error"] = str(e)[-300:]
    res["preload_end"] = time.strftime("%H:%M:%S")
    bad = []
    for key in ["k0", f"k{n - 1}", f"k{n // 2}"] + [f"k{i}" for i in range(1, 2000)]:
        st, body = procs.http_request(port, "GET", f"/v1/kv/{key}", timeout_s=30)
        if st != 200 or len(body) != 100:
            bad.append([key, st, len(body), time.strftime("%H:%M:%S")])
    res["harness_check_bad"] = bad
finally:
    code = p.stop(signal.SIGQUIT, timeout_s=120)
    res["exit"] = code
wrk = open(os.path.join(w, "preload-kingx.txt")).read()
m = re.search(r"Socket errors:.*", wrk)
res["wrk_socket_errors"] = m.group(0) if m else "none"
m = re.search(r"PRELOAD (\{.*\})", wrk)
res["wrk_preload"] = json.loads(m.group(1)) if m else None
m = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk)
res["wrk_non2xx"] = int(m.group(1)) if m else 0
# Access log: statuses of every PUT, and k0's lines.
statuses, k0, order = {}, [], {}
puts = 0
pat = re.compile(r'"(\w+) (\S+) HTTP/1\.1" (\d+) ')
with open(os.path.join(w, "access.log"), errors="replace") as f:
    for line in f:
        mm = pat.search(line)
        if not mm:
            statuses["unparsed"] = statuses.get("unparsed", 0) + 1
            continue
        meth, tgt, st = mm.groups()
        statuses[meth + " " + st] = statuses.get(meth + " " + st, 0) + 1
        if meth == "PUT":
            puts += 1
            if tgt in ("/v1/kv/k0", "/v1/kv/k1", f"/v1/kv/k{n - 1}") and tgt not in order:
                order[tgt] = puts  # the how-manieth PUT answered first wrote it
        if tgt == "/v1/kv/k0":
            k0.append(line.rstrip())
res["access_statuses"] = statuses
res["k0_lines"] = k0
res["first_put_answered_at"] = order
m = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", wrk)
res["wrk_latency_avg_stdev_max"] = m.groups() if m else None
print("RESULT " + json.dumps(res), flush=True)
wrong = bad or res.get("preload_error") or res["wrk_socket_errors"] != "none" or any(
    not k.startswith("GET") and not k.split()[1].startswith("2") for k in statuses if k != "unparsed")
if not wrong:
    shutil.rmtree(data, ignore_errors=True)
    os.remove(os.path.join(w, "access.log"))
