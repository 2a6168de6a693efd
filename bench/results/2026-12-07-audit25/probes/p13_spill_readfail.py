import os, socket, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "tests", "blackbox"))
from kingx_harness import Server, http, key_path, build_request, adopt, metric
os.environ["KINGX_FAIL_POINT"] = os.environ.get("FP", "kingx-worker/read@.body-spill:1")
s = Server(["--workers", "1", "--body-buffer-bytes", "1M", "--body-timeout-ms", "60000"] + sys.argv[1:]); s.start()
del os.environ["KINGX_FAIL_POINT"]
N = 6; B = 256 << 10
vals = [os.urandom(B) for _ in range(N)]
socks = []
for i in range(N):
    c = socket.create_connection(("127.0.0.1", s.port))
    c.sendall(build_request("PUT", key_path(f"u{i}"), None, [("Content-Length", str(B))]) + vals[i][:-1]); socks.append(c)
time.sleep(2.5)
for i, c in enumerate(socks):
    c.sendall(vals[i][-1:])
res = []
for i, c in enumerate(socks):
    try:
        r = adopt(c, s.port, 30).read_response(); res.append(r.status)
    except Exception as e:
        res.append(repr(e)[:40])
print("answers:", res)
for i in range(N):
    r = http(s.port, "GET", key_path(f"u{i}"))
    ok = r.status == 200 and r.body == vals[i]
    print(i, res[i], "GET", r.status, "exact" if ok else ("WRONG" if r.status == 200 else ""))
print("alive:", s.answers(), "respawns", metric(s.port, "kingx_respawns_total"))
print([l for l in open(s.error_log).read().splitlines() if "spill" in l][:3])
s.cleanup()
