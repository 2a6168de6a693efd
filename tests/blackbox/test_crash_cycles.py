"""kill -9 of the whole kingx process group at random moments under a mixed
PUT/GET/DELETE load, then restart, for 100 cycles (1,000 with KINGX_SOAK=1).

Oracle (research/reliability.md §4.2, RocksDB's PendingExpectedValue): each
client owns its keys; after every restart each key must hold its last
acknowledged value or the value of an operation that was in flight at the
kill; an acknowledged DELETE stays deleted; every value carries
key|client|seq|checksum so a value nobody wrote is detected. ETags (sequence
numbers) keep growing across restarts, so an acknowledged sequence number is
never handed out twice.

Values straddle every size threshold of the write path (see value_sizes):
the compression threshold, one write-queue entry, the large-value (part)
size, the segment size; up to 2 MiB. Small segments and a small write queue
put those thresholds inside the range, so segments rotate, records larger
than a segment get their own, large values are staged in parts (and, for the
long key, values that do not fit one queue entry take the large path), and
compaction runs.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_crash_cycles.py [--cycles N] [--seed S]
        [--sync always|none|interval:MS] [--model event|threads] [--workers N] [--sync-depth N]
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
LONG_KEY_BYTES = 3000

SEGMENT_BYTES = 64 << 10          # --segment-bytes (its minimum)
WRITE_QUEUE_BYTES = 1 << 20       # --write-queue-bytes (its minimum)
CONTENT_TYPE_BYTES = len("application/octet-stream")  # stored with every value (no Content-Type sent)
COMPRESS_MIN_BYTES = 256          # engine Options::compress_min_bytes
BODY_PART_BYTES = 1 << 20         # http Limits::body_part_bytes


def value_sizes(key_len):
    """Exact value sizes on both sides of each threshold, for a key of
    key_len bytes, as the server derives them (src: write_queue.cc
    max_entry_bytes, kv_service.cc part_bytes_ and the one-entry check;
    engine: segment and record headers)."""
    entry = WRITE_QUEUE_BYTES // 8
    part = max(1024, min(BODY_PART_BYTES, entry - entry // 64 - 1024))
    fits_segment = SEGMENT_BYTES - 48 - 40 - key_len - CONTENT_TYPE_BYTES
    fits_entry = entry - 64 - key_len - CONTENT_TYPE_BYTES
    sizes = {0, 1, 100, COMPRESS_MIN_BYTES - 1, COMPRESS_MIN_BYTES, 4000,
             fits_segment, fits_segment + 1,
             part, part + 1, 2 * part, 2 * part + 1,
             1 << 20, 2 << 20}
    if fits_entry < part:
        sizes |= {fits_entry, fits_entry + 1}
    return sorted(sizes)


def make_chooser(keys):
    """rng, key -> value size: half the PUTs small (below the compression
    threshold or a few KiB), half from the threshold sizes."""
    table = {k: value_sizes(len(k)) for k in keys}
    small = [0, 1, 100, COMPRESS_MIN_BYTES - 1, COMPRESS_MIN_BYTES, 4000]

    def choose(rng, key):
        return rng.choice(small) if rng.random() < 0.5 else rng.choice(table[key])
    return choose


def client_keys(c):
    keys = [b"crash-%d-%d" % (c, i) for i in range(KEYS_PER_CLIENT - 1)]
    keys.append((b"crash-%d-long-" % c).ljust(LONG_KEY_BYTES, b"k"))
    return keys


def run(cycles, workers, seed, sync="always", model="event", sync_depth=None):
    rng = random.Random(seed)
    states = [ClientState(c, client_keys(c), seed * 100 + c) for c in range(CLIENTS)]
    choose = make_chooser([k for st in states for k in st.keys])
    # kill -9 is a process crash: whatever reached write() survives in the page
    # cache, so every sync mode must keep every acknowledged write here.
    server = Server(["--workers", str(workers), "--segment-bytes", str(SEGMENT_BYTES),
                     "--write-queue-bytes", str(WRITE_QUEUE_BYTES), "--max-key-bytes", "4096",
                     "--sync", sync, "--compaction-dead-ratio", "0.3", "--model", model] +
                    (["--sync-depth", str(sync_depth)] if sync_depth else []))
    print(f"seed {seed}, {cycles} cycles, sync {sync}, depth {sync_depth or 'default'}, model {model}, "
          f"data in {server.data_dir}", flush=True)
    violations = []
    sizes_put = set()
    t0 = time.monotonic()
    try:
        for cycle in range(cycles):
            server.port = None
            server.start()
            errs = verify_states(server.port, states)
            if errs:
                violations += [f"cycle {cycle} after restart: {e}" for e in errs]
                break
            stop = threading.Event()
            clients = [LoadClient(lambda: server.port, st, stop, mix=(60, 25, 15), policy="stop",
                                  value_size=choose)
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
                sizes_put |= c.sizes_put
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
        print(f"acknowledged: {puts} PUTs, {dels} DELETEs; data dir holds {len(files)} files; "
              f"{len(sizes_put)} distinct value sizes sent; {time.monotonic() - t0:.0f} s", flush=True)
        if not violations:
            check(puts >= 5 * cycles // 2, f"only {puts} acknowledged PUTs in {cycles} cycles: the load did not run")
            check(dels >= 1, "no acknowledged DELETE: the oracle never checked deletes")
            wanted = {s for k in (states[0].keys[0], states[0].keys[-1]) for s in value_sizes(len(k))}
            if cycles >= 25:
                missing = sorted(wanted - sizes_put)
                check(not missing, f"value sizes never sent (the thresholds were not crossed): {missing}")
        if violations:
            print(server.logs())
            raise TestFailure(f"{len(violations)} violations:\n  " + "\n  ".join(violations[:30]))
    finally:
        server.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=1000 if SOAK else 100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sync", default="always")
    ap.add_argument("--model", default="event")
    ap.add_argument("--sync-depth", type=int, default=None, help="fdatasyncs in flight (default: the server's)")
    ap.add_argument("--seed", type=int, default=int(os.environ.get("KINGX_SEED", "0")) or random.randrange(1, 1 << 30))
    o = ap.parse_args()
    sys.exit(run_cases("crash cycles", [(f"kill -9 process group x{o.cycles} (seed {o.seed})",
                                         lambda: run(o.cycles, o.workers, o.seed, o.sync, o.model, o.sync_depth))]))


if __name__ == "__main__":
    main()
