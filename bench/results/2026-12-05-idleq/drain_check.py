import os, sys, time, signal
sys.path.insert(0, os.getcwd())
from kingx_harness import Server, Conn, build_request
s = Server(["--workers", "1"]); s.start()
try:
    idle = Conn(s.port, timeout=40); assert idle.request("GET", "/healthz").status == 200
    busy = Conn(s.port, timeout=40)
    busy.send(build_request("PUT", "/v1/kv/x", None, [("Content-Length", "10")]) + b"abc")
    time.sleep(0.3)
    t0 = time.monotonic(); s.signal(signal.SIGQUIT)
    r1 = idle.wait_closed(20); t1 = time.monotonic() - t0
    r2 = busy.wait_closed(40); t2 = time.monotonic() - t0
    print("idle:", r1, f"{t1:.2f}s", "busy:", r2 if isinstance(r2, str) else r2[:40], f"{t2:.2f}s")
    print("exit", s.wait_exit(20))
finally:
    s.cleanup()
