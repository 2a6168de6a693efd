import os, sys, time
sys.path.insert(0, "tests/blackbox")
os.environ["KINGX_BIN"] = sys.argv[1]
from kingx_harness import Conn, LimitedServer, key_path, open_descriptors, build_request
L = int(sys.argv[2])
S = LimitedServer(L, L, "--single-process", "--segment-bytes", "64K", *sys.argv[3:])
S.start()
try:
    with Conn(S.port) as c:
        for i in range(100):
            assert c.request("PUT", key_path(f"d{i:03d}"), os.urandom(40000)).status == 201
    print("after fill", open_descriptors(S.pid))
    held = [Conn(S.port, timeout=60) for _ in range(200)]
    time.sleep(2)
    print("after 200 conns", open_descriptors(S.pid))
    busy = Conn(S.port, timeout=60)
    statuses = {}
    try:
        for i in range(100):
            r = busy.request("GET", key_path(f"d{i:03d}"))
            statuses[r.status] = statuses.get(r.status, 0) + 1
        r = busy.request("GET", "/v1/kv/?prefix=d&limit=1000")
        statuses["list"] = r.status
    except Exception as e:
        statuses["err"] = repr(e)[:100]
    print("GETs", statuses, open_descriptors(S.pid))
    print("EMFILE lines:", sum("Too many open files" in l for l in S.logs(limit=400000).splitlines()))
finally:
    S.cleanup()
