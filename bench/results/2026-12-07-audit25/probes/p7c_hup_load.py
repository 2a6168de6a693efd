"""Probe: HUP reloads changing every reloadable setting, under a PUT/GET load with an
acknowledged-write oracle: no request fails, every acked write reads back."""
import json, os, random, signal, sys, threading, time, tempfile
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "tests", "blackbox"))
from kingx_harness import Server, Conn, http, key_path, wait_for, ConnectionClosed, parse_etag

work = tempfile.mkdtemp(prefix="audit-hup3-", dir="/tmp")
conf = os.path.join(work, "kingx.json")
def write(cfg):
    with open(conf + ".new", "w") as f: json.dump(cfg, f)
    os.rename(conf + ".new", conf)
variants = [
    {"workers": 2, "sync": "always", "segment_bytes": "1M", "compression_level": 1},
    {"workers": 1, "sync": "none", "body_spill_bytes": "0", "send_timeout_ms": 5000, "body_buffer_bytes": "8M"},
    {"workers": 3, "sync": "interval:50", "segment_bytes": "2M", "compaction": "off", "response_buffer_bytes": "4M"},
    {"workers": 2, "compression_level": 0, "max_value_bytes": "4M", "staging_bytes": "8M", "disk_reserve_bytes": "2M"},
    {"workers": 1, "compaction_dead_ratio": 0.2, "storage_timeout_ms": 5000, "keepalive_timeout_ms": 2000, "body_timeout_ms": 5000},
    {"workers": 2, "send_lowat_bytes": "4K", "header_timeout_ms": 3000, "max_connections": 500, "log_level": "debug"},
    {"workers": 2},
]
write(variants[0])
s = Server(["--config", conf] + sys.argv[1:], workdir=work)
s.start()
stop = threading.Event(); lock = threading.Lock(); phase = [0]
acked = {}; maybe = {}; failures = []; counts = {"put": 0, "get": 0}
def client(cid):
    rng = random.Random(cid); seq = 0
    while not stop.is_set():
        try:
            with Conn(s.port, timeout=30) as c:
                for _ in range(rng.randrange(1, 40)):
                    if stop.is_set(): break
                    k = f"c{cid}-{rng.randrange(50)}"
                    if rng.random() < 0.6:
                        seq += 1
                        v = (b"%d|%d|" % (cid, seq)) * rng.choice([1, 20, 200, 5000, 70000])
                        maybe.setdefault(k, []).append(v)
                        r = c.request("PUT", key_path(k), v); c.requests_sent += 0
                        if r.status in (201, 204):
                            with lock: acked[k] = v; counts["put"] += 1
                        else:
                            failures.append(("PUT", k, r.status, r.body[:150]))
                    else:
                        r = c.request("GET", key_path(k))
                        with lock: counts["get"] += 1
                        exp = acked.get(k)
                        if r.status == 404 and exp is None: continue
                        if r.status != 200 or (exp is not None and r.body != exp and r.body not in maybe.get(k, [])[-3:]):
                            failures.append(("GET", k, r.status, r.body[:100]))
                    if (r.header("Connection") or "").lower() == "close": break
        except (OSError, ConnectionClosed) as e:
            failures.append(("conn", phase[0], cid, "reused" if c.requests_sent > 1 else "fresh", getattr(e, "partial", None), repr(e)[:60]))
ths = [threading.Thread(target=client, args=(i,)) for i in range(4)]
for t in ths: t.start()
try:
    for i, v in enumerate(variants[1:] + variants[:1] + variants[1:]):
        time.sleep(2.5)
        write(v)
        phase[0] = i
        old = set(s.workers())
        s.signal(signal.SIGHUP)
        try:
            wait_for(lambda: len(set(s.workers()) - old) >= v.get("workers", 2), 30, "new workers")
        except Exception as e:
            print("reload", i, "no new workers:", e)
        print(f"reload {i}: {v} -> failures so far {len(failures)} puts {counts['put']} gets {counts['get']}", flush=True)
    time.sleep(2)
finally:
    stop.set()
    for t in ths: t.join()
bad_reads = []
for k, v in acked.items():
    r = http(s.port, "GET", key_path(k))
    if r.status != 200 or r.body != v: bad_reads.append((k, r.status))
print("failures:", len(failures), failures[:15])
print("acked keys", len(acked), "bad final reads", bad_reads[:10])
log = open(s.error_log).read()
print("warn/error lines:", [l for l in log.splitlines() if "[warn]" in l or "[error]" in l or "[crit]" in l or "[alert]" in l][:20])
s.cleanup()
print("BAD" if failures or bad_reads else "HELD")
