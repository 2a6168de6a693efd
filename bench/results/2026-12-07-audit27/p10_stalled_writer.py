#!/usr/bin/env python3
"""Probe: RELIABILITY §3 "a stalled writer never hangs a write: a queued write is answered 503 +
Retry-After outcome unknown after that timeout; once the server knows the writer is stalled, a new
PUT or DELETE is refused at once" — for values on both sides of the large-value path (100 B,
1 MiB, 1 MiB + 1, 3 MiB) and DELETE, with the writer SIGSTOPped (--storage-timeout-ms 2000);
then SIGCONT: writes work, and what was answered "not applied" is not there.
Usage: p10_stalled_writer.py KINGX_BIN [kingx args]"""
import os, signal, sys, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../tests/blackbox"))
os.environ["KINGX_BIN"] = sys.argv[1]
import kingx_harness as h
from probe_verdicts import summary, verdict

srv = h.Server(args=["--workers", "1", "--storage-timeout-ms", "2000"] + sys.argv[2:]); srv.start()
SIZES = (100, 1 << 20, (1 << 20) + 1, 3 << 20)
try:
    with h.Conn(srv.port) as c:
        assert c.request("PUT", "/v1/kv/del", body=b"x").status == 201
    w = srv.children("kingx-writer")[0][0]
    os.kill(w, signal.SIGSTOP)
    res = {}
    def put(name, method, path, body):
        t0 = time.monotonic()
        try:
            with h.Conn(srv.port, timeout=60) as c:
                r = c.request(method, path, body=body)
            res[name] = (r.status, time.monotonic() - t0, r.header("Retry-After"), r.body)
        except (h.ConnectionClosed, OSError) as e:
            res[name] = ("no answer", time.monotonic() - t0, None, str(e))
    ts = [threading.Thread(target=put, args=(f"queued {n}", "PUT", f"/v1/kv/q{n}", os.urandom(n))) for n in SIZES]
    ts.append(threading.Thread(target=put, args=("queued DELETE", "DELETE", "/v1/kv/del", None)))
    for t in ts: t.start()
    for t in ts: t.join(70)
    for name, (st, dt, ra, body) in sorted(res.items()):
        ok = st == 503 and ra is not None and dt < 2 * 2.0 + 3 and (b"may or may not be applied" in body or b"nothing was stored" in body)
        verdict(ok, f"{name}: {st} after {dt:.1f}s Retry-After {ra} {body.decode(errors='replace') if isinstance(body, bytes) else body}")
    time.sleep(1.0)
    res.clear()
    ts = [threading.Thread(target=put, args=(f"new {n}", "PUT", f"/v1/kv/n{n}", os.urandom(n))) for n in SIZES]
    ts.append(threading.Thread(target=put, args=("new DELETE", "DELETE", "/v1/kv/del", None)))
    for t in ts: t.start()
    for t in ts: t.join(70)
    for name, (st, dt, ra, body) in sorted(res.items()):
        ok = st == 503 and ra is not None and dt < 1.0 and b"not applied" in body.lower()
        verdict(ok, f"{name}: {st} after {dt:.2f}s Retry-After {ra} {body.decode(errors='replace') if isinstance(body, bytes) else body}")
    os.kill(w, signal.SIGCONT)
    srv.wait_ready()
    time.sleep(0.5)
    with h.Conn(srv.port) as c:
        for n in SIZES:
            r = c.request("GET", f"/v1/kv/n{n}")
            verdict(r.status == 404, f"'not applied' PUT of {n} B: GET after SIGCONT {r.status}")
        r = c.request("GET", "/v1/kv/del")
        print("   queued DELETE's key after SIGCONT (outcome unknown: either):", r.status)
    for n in SIZES:
        t0 = time.monotonic(); first = None
        while time.monotonic() - t0 < 15:
            try:
                with h.Conn(srv.port) as c:
                    r = c.request("PUT", f"/v1/kv/after{n}", body=b"y" * n)
            except (h.ConnectionClosed, OSError) as e:
                r = None
                first = first or f"no answer: {e}"
            if r is not None and r.status in (201, 204):
                break
            if r is not None:
                first = first or f"{r.status} {r.body.decode(errors='replace')}"
            time.sleep(0.1)
        verdict(first is None, f"PUT of {n} B after SIGCONT (readyz 200): "
                               f"2xx after {time.monotonic() - t0:.1f}s; first answer: {'201' if first is None else first[:200]}")
finally:
    try:
        os.kill(w, signal.SIGCONT)
    except Exception:
        pass
    srv.stop(); srv.cleanup()
summary()
