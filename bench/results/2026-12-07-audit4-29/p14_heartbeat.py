#!/usr/bin/env python3
"""audit4 probe 14: README Metrics `kingx_writer_heartbeat_age_seconds` "(0 while no writer is ready)" and
`kingx_engine_ready`: a database of 1M keys (bench fill_db), the writer kill -9ed; /metrics and /readyz every
10 ms until /readyz is 200 again.

Usage: KINGX_BIN=... python3 p14_heartbeat.py DATA_DIR [extra kingx flags]
"""
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "2026-12-07-audit3-28"))
from probe_common import run, verdict  # noqa: E402
import kingx_harness as h  # noqa: E402

DATA = sys.argv[1]
EXTRA = sys.argv[2:]


def p_heartbeat():
    with h.Server(args=EXTRA + ["--workers", "1"], data_dir=DATA, ready_timeout=120) as s:
        time.sleep(1.0)
        w = [p for p in h.all_pids() if os.getpgid(p) == s.pid and open(f"/proc/{p}/comm").read().strip() == "kingx-writer"][0]
        os.kill(w, signal.SIGKILL)
        samples = []
        t0 = time.monotonic()
        c = h.Conn(s.port)
        while time.monotonic() - t0 < 60:
            rz = c.request("GET", "/readyz")
            body = c.request("GET", "/metrics").body.decode()
            age = float(re.search(r"^kingx_writer_heartbeat_age_seconds (\S+)$", body, re.M).group(1))
            ready = float(re.search(r"^kingx_engine_ready (\S+)$", body, re.M).group(1))
            samples.append((round(time.monotonic() - t0, 3), rz.status, age, ready))
            if rz.status == 200 and len(samples) > 3:
                break
            time.sleep(0.01)
        not_ready = [x for x in samples if x[1] == 503]
        bad = [x for x in not_ready if x[2] != 0]
        verdict("heartbeat age 0 while no writer is ready (writer kill -9 at 1M keys)", not_ready and not bad,
                f"{len(samples)} samples, {len(not_ready)} with /readyz 503, of those heartbeat age != 0: {bad[:4]}; "
                f"first {samples[:3]}, last {samples[-2:]}")


run([p_heartbeat])
