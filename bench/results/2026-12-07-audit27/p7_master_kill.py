#!/usr/bin/env python3
"""Probe: README "A start right after kill -9 waits up to 5 s, logged, for the dying instance's
processes to release the data directory's LOCK and the ports", and acknowledged writes survive,
when only the master is killed (kill -9 of its PID, not the group): 3 clients PUT values of
100 B / 300 B compressible / 1 MiB + 1 B; kill -9 of the master after 1.5 s; a new start at once on
the same port and directory; every acknowledged PUT read back; the old children all gone.
5 rounds. Usage: p7_master_kill.py KINGX_BIN [kingx args]"""
import os, signal, sys, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../tests/blackbox"))
os.environ["KINGX_BIN"] = sys.argv[1]
import kingx_harness as h

srv = h.Server(args=["--workers", "2"] + sys.argv[2:])
srv.start()
acked = {}
maybe = {}
lock = threading.Lock()
def client(cid, stop):
    n = 0
    while not stop.is_set():
        try:
            with h.Conn(srv.port, timeout=10) as c:
                while not stop.is_set():
                    n += 1
                    size = (100, 300, (1 << 20) + 1)[n % 3]
                    v = (b"%d-%d-" % (cid, n)) * (size // 6 + 1)
                    v = v[:size]
                    k = f"c{cid}/{n % 40}"
                    with lock:
                        maybe.setdefault(k, []).append(v)   # in flight: may be applied unanswered
                    r = c.request("PUT", "/v1/kv/" + k, body=v)
                    if r.status in (201, 204):
                        with lock:
                            acked[k] = v
                            maybe[k] = []
        except (h.ConnectionClosed, OSError):
            time.sleep(0.05)
held = bad_rounds = 0
try:
    for rnd in range(5):
        stop = threading.Event()
        ts = [threading.Thread(target=client, args=(i, stop)) for i in range(3)]
        for t in ts: t.start()
        time.sleep(1.5)
        kids = [p for p, _ in srv.children()]
        os.kill(srv.proc.pid, signal.SIGKILL)
        srv.proc.wait()
        t0 = time.monotonic()
        stop.set()
        for t in ts: t.join()
        srv.start()
        took = time.monotonic() - t0
        left = [p for p in kids if os.path.exists(f"/proc/{p}") and h.proc_stat(p) and h.proc_stat(p)[3] != "Z"]
        wrong = 0
        with h.Conn(srv.port) as c:
            for k, v in acked.items():
                r = c.request("GET", "/v1/kv/" + k)
                if r.status != 200 or (r.body != v and r.body not in maybe.get(k, [])):
                    wrong += 1
                    print("  ", k, r.status, r.body[:20], "acked", v[:20], "in flight", [m[:20] for m in maybe.get(k, [])])
                elif r.body != v:
                    acked[k] = r.body   # an unanswered PUT that was applied: now the value to keep
                maybe[k] = []
        ok = wrong == 0 and not left and took < 30
        held += ok; bad_rounds += not ok
        print(f"{'HELD ' if ok else 'FALSE'} round {rnd}: restart ready in {took:.2f}s, old children left {left}, "
              f"{len(acked)} acked keys, {wrong} wrong", flush=True)
    print(srv.logs(3000)[-1500:] if bad_rounds else "")
finally:
    srv.stop(); srv.cleanup()
