"""kill -9 of the whole kingx process group at random moments under a mixed
PUT/GET/DELETE load, then restart, for >= 25 cycles (200 with KINGX_SOAK=1).

Oracle (research/reliability.md §4.2): each client owns its keys; after every
restart each key must hold its last acknowledged value or the value of an
operation that was in flight at the kill; an acknowledged DELETE stays
deleted; every value carries key|client|seq|checksum so a value nobody wrote
is detected. Also: ETags (sequence numbers) keep growing across restarts, so
an acknowledged sequence number is never handed out twice. Small segments
(--segment-bytes 128K) make the load rotate segments and trigger compaction.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_crash_cycles.py [--cycles N] [--seed S]
        [--sync always|none|interval:MS] [--model event|threads] [--workers N]
"""

import argparse
import os
import random
import subprocess
import sys
import threading
import time

from kingx_harness import SOAK, Server, TestFailure, check, run_cases
from kingx_load import ClientState, LoadClient, verify_states

CLIENTS = 4
KEYS_PER_CLIENT = 12


def run(cycles, workers, seed, sync="always", model="event"):
    rng = random.Random(seed)
    states = [ClientState(c, [b"crash-%d-%d" % (c, i) for i in range(KEYS_PER_CLIENT)], seed * 100 + c)
              for c in range(CLIENTS)]
    # kill -9 is a process crash: whatever reached write() survives in the page
    # cache, so every sync mode must keep every acknowledged write here.
    server = Server(["--workers", str(workers), "--segment-bytes", "131072", "--sync", sync,
                     "--compaction-dead-ratio", "0.3", "--model", model])
    print(f"seed {seed}, {cycles} cycles, sync {sync}, model {model}, data in {server.data_dir}", flush=True)
    violations = []
    try:
        for cycle in range(cycles):
            server.port = None
            server.start()
            errs = verify_states(server.port, states)
            if errs:
                violations += [f"cycle {cycle} after restart: {e}" for e in errs]
                break
            stop = threading.Event()
            clients = [LoadClient(lambda: server.port, st, stop, mix=(60, 25, 15), policy="stop")
                       for st in states]
            for c in clients:
                c.start()
            time.sleep(rng.uniform(0.05, 1.2))
            # Anything that failed before the kill is a server failure, not a crash effect.
            early = [f for c in clients for f in c.failures]
            stop.set()
            server.kill_group()
            for c in clients:
                c.join(30)
                if c.is_alive():
                    violations.append(f"cycle {cycle}: client {c.st.client_id} did not stop within 30 s")
                violations += [f"cycle {cycle}: {e}" for e in c.errors]
            violations += [f"cycle {cycle}: request failed before the kill: {f}" for f in early]
            if violations:
                break
            acked = sum(st.acked_puts + st.acked_deletes for st in states)
            print(f"cycle {cycle}: killed after {sum(c.ops_done for c in clients)} ops; "
                  f"{acked} acknowledged writes so far", flush=True)
        if not violations:
            server.port = None
            server.start()
            violations += [f"final restart: {e}" for e in verify_states(server.port, states)]
            status = server.stop()
            if status != 0:
                violations.append(f"SIGTERM after the last cycle: exit status {status}")
            tool = os.environ.get("KINGX_TOOL_BIN")
            if tool and os.access(tool, os.X_OK) and not violations:
                p = subprocess.run([tool, "--data", server.data_dir, "verify"], capture_output=True, timeout=120)
                if p.returncode != 0:
                    violations.append(f"kingx-tool verify {server.data_dir}: exit {p.returncode}: "
                                      f"{p.stdout.decode(errors='replace')[-2000:]}"
                                      f"{p.stderr.decode(errors='replace')[-2000:]}")
        puts = sum(st.acked_puts for st in states)
        dels = sum(st.acked_deletes for st in states)
        files = os.listdir(server.data_dir)
        print(f"acknowledged: {puts} PUTs, {dels} DELETEs; data dir holds {len(files)} files", flush=True)
        if not violations:
            check(puts >= 5 * cycles // 2, f"only {puts} acknowledged PUTs in {cycles} cycles: the load did not run")
            check(dels >= 1, "no acknowledged DELETE: the oracle never checked deletes")
        if violations:
            print(server.logs())
            raise TestFailure(f"{len(violations)} violations:\n  " + "\n  ".join(violations[:30]))
    finally:
        server.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=200 if SOAK else 25)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sync", default="always")
    ap.add_argument("--model", default="event")
    ap.add_argument("--seed", type=int, default=int(os.environ.get("KINGX_SEED", "0")) or random.randrange(1, 1 << 30))
    o = ap.parse_args()
    sys.exit(run_cases("crash cycles", [(f"kill -9 process group x{o.cycles} (seed {o.seed})",
                                         lambda: run(o.cycles, o.workers, o.seed, o.sync, o.model))]))


if __name__ == "__main__":
    main()
