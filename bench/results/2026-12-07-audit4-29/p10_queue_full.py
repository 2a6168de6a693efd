#!/usr/bin/env python3
"""audit4 probe 10: README workers: "A full queue pauses reading from the sockets that want to write; 503 +
Retry-After only after 5 s" (and a queued write is answered 503 outcome unknown after --storage-timeout-ms).
A 1 MiB write queue, the writer SIGSTOPped, 100 PUTs of 30 KB at once (3 MB); each answer's status, time and
Retry-After; then SIGCONT and every 201 read back.

Usage: KINGX_BIN=... python3 p10_queue_full.py [extra kingx flags]
"""
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "2026-12-07-audit3-28"))
from probe_common import run, verdict  # noqa: E402
import kingx_harness as h  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from audit4_common import problem_ok  # noqa: E402

EXTRA = sys.argv[1:]


def p_queue_full():
    with h.Server(args=EXTRA + ["--workers", "1", "--write-queue-bytes", "1M", "--storage-timeout-ms", "20000"]) as s:
        w = [p for p in h.all_pids() if os.getpgid(p) == s.pid and open(f"/proc/{p}/comm").read().strip() == "kingx-writer"][0]
        os.kill(w, signal.SIGSTOP)
        results = {}
        vals = {i: os.urandom(30000) for i in range(100)}
        t0 = time.monotonic()

        def put(i):
            try:
                r = h.http(s.port, "PUT", f"/v1/kv/q{i}", body=vals[i], timeout=60)
                results[i] = (r.status, round(time.monotonic() - t0, 1), r.header("Retry-After"), problem_ok(r, r.status) if r.status >= 400 else None,
                              (r.json().get("detail", "")[:60] if r.status >= 400 else ""))
            except Exception as e:  # noqa: BLE001
                results[i] = ("error", round(time.monotonic() - t0, 1), repr(e))
        ts = [threading.Thread(target=put, args=(i,)) for i in vals]
        for t in ts:
            t.start()
        for t in ts:
            t.join(45)
        os.kill(w, signal.SIGCONT)
        time.sleep(1)
        byst = {}
        for i, r in sorted(results.items()):
            byst.setdefault((r[0], r[1] // 1), []).append(i)
        early = [r for r in results.values() if r[0] == 503 and r[1] < 4.5]
        full = [r for r in results.values() if r[0] == 503 and 4.5 <= r[1] < 8]
        bad = [r for r in results.values() if r[0] == 503 and (r[2] is None or r[3])]
        wrong = [i for i, r in results.items() if r[0] in (201, 204) and h.http(s.port, "GET", f"/v1/kv/q{i}").body != vals[i]]
        verdict("a full write queue: 503 + Retry-After only after 5 s, problem+json; queued ones after the storage timeout",
                not early and bool(full) and not bad and not wrong,
                f"{ {k: len(v) for k, v in byst.items()} }; samples {[results[i] for i in sorted(results)][:3]} .. "
                f"{[results[i] for i in sorted(results)][-2:]}; early {len(early)}, bad {bad[:2]}, wrong {wrong}")


run([p_queue_full])
