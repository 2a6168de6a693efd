"""Probe: listing with cursors under concurrent writes, compaction and kill -9.
Stable keys must each appear exactly once, pages strictly ascending."""
import json, os, random, sys, threading, time, tempfile, urllib.parse
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "tests", "blackbox"))
from kingx_harness import Server, Conn, http, key_path, ConnectionClosed, metric

ROUNDS = int(os.environ.get("ROUNDS", "6"))
KILLS = os.environ.get("KILLS", "1") == "1"
rng = random.Random(5)
s = Server(["--workers", "2", "--segment-bytes", "1M", "--compaction-dead-ratio", "0.2", "--sync", "none"] + sys.argv[1:], admin=True)
s.start()
stable = [f"s/{i:05d}" for i in range(3000)]
etags = {}
for k in stable:
    r = http(s.port, "PUT", key_path(k), os.urandom(rng.choice([10, 200, 300, 2000])))
    etags[k] = r.header("ETag")
stop = threading.Event()
errs = []
def churn(seed):
    r2 = random.Random(seed)
    while not stop.is_set():
        k = f"s/{r2.randrange(3000):05d}{r2.choice('abc')}"
        try:
            with Conn(s.port, timeout=10) as c:
                for _ in range(50):
                    if r2.random() < 0.5:
                        c.request("PUT", key_path(k), os.urandom(r2.choice([100, 3000, 20000, 60000])))
                        c.request("PUT", key_path(stable[r2.randrange(3000)] + "z"), os.urandom(30000))
                    else:
                        c.request("DELETE", key_path(k))
                    k = f"s/{r2.randrange(3000):05d}{r2.choice('abc')}"
        except Exception as e:
            errs.append(repr(e))
            time.sleep(0.2)
def compactor():
    while not stop.is_set():
        try:
            http(s.admin_port, "POST", "/admin/compact", timeout=10)
        except Exception:
            pass
        time.sleep(0.3)
ths = [threading.Thread(target=churn, args=(i,)) for i in range(3)] + [threading.Thread(target=compactor)]
for t in ths: t.start()
bad = 0
try:
    for rnd in range(ROUNDS):
        seen = []
        cursor = None
        pages = 0
        while True:
            q = "prefix=s/&limit=37" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
            for attempt in range(200):
                try:
                    r = http(s.port, "GET", "/v1/kv/?" + q, timeout=20)
                except (OSError, ConnectionClosed):
                    time.sleep(0.1); continue
                if r.status == 503:
                    time.sleep(0.1); continue
                break
            if r.status != 200:
                print("round", rnd, "page", pages, "status", r.status, r.body[:300]); bad += 1; break
            j = r.json()
            seen += [e["key"] for e in j["keys"]]
            pages += 1
            time.sleep(0.08)
            if KILLS and rnd % 2 == 0 and pages == 20 + rnd * 7:
                print("   passes before kill", metric(s.port, "kingx_compaction_passes_total"), flush=True)
                s.kill_group(); s.start()
            if j["list_complete"]:
                break
            cursor = j["cursor"]
        order_ok = all(a < b for a, b in zip(seen, seen[1:]))
        st = [k for k in seen if len(k) == 7]
        missing = set(stable) - set(st)
        dup = len(st) - len(set(st))
        print("   passes", metric(s.port, "kingx_compaction_passes_total"), "segments", metric(s.port, "kingx_engine_segments"))
        print(f"round {rnd}: {pages} pages, {len(seen)} keys, ascending={order_ok}, stable seen {len(set(st))}/3000, missing {len(missing)} dup {dup}")
        if not order_ok or missing or dup:
            bad += 1
            print("  missing sample", sorted(missing)[:10])
finally:
    stop.set()
    for t in ths: t.join()
    print("compaction passes", http(s.port, "GET", "/metrics").body.decode().count("x"))
    m = http(s.port, "GET", "/metrics").body.decode()
    for line in m.splitlines():
        if line.startswith(("kingx_compaction_passes_total", "kingx_keyspace_", "kingx_engine_segments")):
            print(line)
    s.cleanup()
print("churn errors", len(errs), errs[:5])
print("BAD" if bad else "HELD")
