"""Probe: a pool thread serving an idle keep-alive connection takes the completion of a write that
connection left in flight as it comes (strace of the worker's poll, read, write and recvfrom around SIGCONT).
Usage: KINGX_BIN=build/src/kingx python3 bench/results/2026-12-07-thr28/moved_on_probe.py"""
import os, signal, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../tests/blackbox"))
from kingx_harness import Server, Conn, key_path, metric
s = Server(["--workers", "1", "--model", "threads", "--threads", "1", "--storage-timeout-ms", "1000"])
s.start()
try:
    writer = s.wait_children("kingx-writer", 1)[0]
    worker = s.workers()[0]
    os.kill(writer, signal.SIGSTOP)
    c = Conn(s.port, timeout=60)
    r = c.request("PUT", key_path("big"), os.urandom((1 << 20) + 1))
    print("PUT:", r.status, r.body[:60])
    time.sleep(0.5)
    out = "/tmp/moved_on_probe.strace.txt"
    p = subprocess.Popen(["strace", "-f", "-tt", "-p", str(worker), "-e", "trace=poll,read,write,recvfrom", "-o", out],
                         stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    t0 = time.time()
    os.kill(writer, signal.SIGCONT)
    print("SIGCONT at", time.strftime("%H:%M:%S", time.localtime(t0)) + f".{int(t0 % 1 * 1e6):06d}")
    time.sleep(1.0)
    p.send_signal(signal.SIGINT); p.wait()
    print(open(out).read()[-3000:])
    c.close()
finally:
    s.cleanup()
