import os, sys, json, urllib.parse, random
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "tests", "blackbox"))
from kingx_harness import Server, http, key_path, Conn
s = Server(["--workers", "1"]); s.start()
with Conn(s.port) as c:
    for i in range(300): c.request("PUT", key_path(f"p/{i:04d}"), b"v"); c.request("PUT", key_path(f"q/{i:04d}"), b"v")
def page(q):
    return http(s.port, "GET", "/v1/kv/?" + q)
r = page("prefix=p/&limit=50").json(); cur = r["cursor"]
good = page("prefix=p/&limit=50&cursor=" + urllib.parse.quote(cur))
print("cursor", cur, "next page first key", good.json()["keys"][0]["key"])
alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
stats = {}; wrong = []
rng = random.Random(1)
for pos in range(len(cur)):
    for ch in rng.sample(alpha, 6):
        if ch == cur[pos]: continue
        m = cur[:pos] + ch + cur[pos + 1:]
        r = page("prefix=p/&limit=50&cursor=" + urllib.parse.quote(m))
        stats[r.status] = stats.get(r.status, 0) + 1
        if r.status == 200 and r.body != good.body: wrong.append((pos, ch, r.json()["keys"][:1]))
        if r.status == 400 and b"cursor" not in r.body: wrong.append((pos, ch, "400 without naming cursor"))
r = page("prefix=q/&limit=50&cursor=" + urllib.parse.quote(cur)); print("other prefix:", r.status, r.body[:120])
print("mutations:", stats, "wrong pages:", len(wrong), wrong[:5])
s.cleanup()
