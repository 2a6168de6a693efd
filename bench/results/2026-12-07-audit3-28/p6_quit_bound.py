#!/usr/bin/env python3
"""audit3 probe 6: README deploy "A stop is graceful (SIGQUIT to the master, which exits only after its writer and
workers, within 70 s; TimeoutStopSec=90)". An upload that never finishes (its body timeout set longer than the
stop's bound) and an idle keep-alive client hold a QUIT; the master's exit time and that no process of the group
outlives it.

Usage: KINGX_BIN=... python3 p6_quit_bound.py [extra kingx flags]
"""
import os, signal, socket, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "tests", "blackbox"))
import kingx_harness as h  # noqa: E402

srv = h.Server(args=["--workers", "1", "--body-timeout-ms", "200000"] + sys.argv[1:]).start()
s = socket.create_connection(("127.0.0.1", srv.port))
s.sendall(b"PUT /v1/kv/never HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100)
stop = time.monotonic() + 100
t0 = time.monotonic()
srv.signal(signal.SIGQUIT)
trickle = 0
while srv.proc.poll() is None and time.monotonic() < stop:
    try:
        s.sendall(b"x")  # a byte a second keeps the body timer from ending it
        trickle += 1
    except OSError:
        break
    time.sleep(1)
t = time.monotonic() - t0
rc = srv.wait_exit(30)
left = srv.group_pids()
ok = rc is not None and t <= 70.5 and not left
print(("HELD " if ok else "FALSE"), f"QUIT with an upload trickling a byte a second: master exit {rc} after {t:.1f} s "
      f"({trickle} bytes trickled), processes left {left}")
if left:
    srv.kill_group()
srv.cleanup()
