import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../tests/blackbox"))
os.environ["KINGX_BIN"] = sys.argv[1]
import kingx_harness as h
srv = h.Server(args=["--segment-bytes", "1M", "--workers", "1"]); srv.start()
try:
    with h.Conn(srv.port) as c:
        for i in range(300):
            assert c.request("PUT", f"/v1/kv/k{i:04d}", body=os.urandom(10000)).status == 201
    print("rw:", h.metric(srv.port, "kingx_engine_dead_bytes"), h.metric(srv.port, "kingx_engine_live_bytes"))
    srv.stop()
    ro = h.Server(args=["--read-only", "--workers", "1"], data_dir=srv.data_dir); ro.start()
    print("ro:", h.metric(ro.port, "kingx_engine_dead_bytes"), h.metric(ro.port, "kingx_engine_live_bytes"))
    ro.stop(); ro.cleanup()
finally:
    if srv.alive(): srv.stop()
    srv.cleanup()
