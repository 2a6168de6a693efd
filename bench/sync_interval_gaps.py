#!/usr/bin/env python3
"""--sync interval:MS: how late the writer's fdatasyncs come under sparse writes.

One client PUTs a 100-byte value every PERIOD ms (default 150, below the
interval, so a write often lands just before a sync is due) for SECONDS; strace
records the writer process's fdatasyncs of segment files. Per binary: the gaps
from the end of one sync to the start of the next (what the writer let pass)
and, per PUT, the time from its answer to the start of the sync that covers it
(how long acknowledged data waited). Binaries alternate, ROUNDS times each, in
one run (side by side on the same machine).

Usage: python3 bench/sync_interval_gaps.py [--ms 200] [--period 150] [--seconds 3] [--rounds 3] BIN [BIN...]
Prints one line per round and a summary per binary. Timed: a busy machine moves the figures.
"""
import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "blackbox"))
import kingx_harness as h  # noqa: E402


def writer_pid(s):
    for pid in h.all_pids():
        try:
            if os.getpgid(pid) == s.pid and open(f"/proc/{pid}/comm").read().strip() == "kingx-writer":
                return pid
        except OSError:
            pass
    return None


def one_round(binary, ms, period, seconds):
    os.environ["KINGX_BIN"] = binary
    with h.Server(args=["--sync", f"interval:{ms}", "--workers", "1"]) as s:
        w = writer_pid(s)
        log = os.path.join(s.workdir, "strace.txt")
        st = subprocess.Popen(["strace", "-y", "-e", "trace=fdatasync", "-ttt", "-T", "-o", log, "-p", str(w)],
                              stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        c = h.Conn(s.port)
        acks = []
        t0 = time.time()
        n = 0
        while time.time() - t0 < seconds and n < 1000:
            c.request("PUT", f"/v1/kv/g{n % 20}", body=b"x" * 100)
            acks.append(time.time())
            n += 1
            time.sleep(period / 1000.0)
        time.sleep(2.5 * ms / 1000.0)
        st.send_signal(signal.SIGINT)
        st.wait(10)
        syncs = []  # (start, duration)
        for line in open(log):
            m = re.search(r"^(\d+\.\d+) fdatasync\(\d+<[^>]*\.kxd>.*<([\d.]+)>", line)
            if m:
                syncs.append((float(m.group(1)), float(m.group(2))))
    gaps = [b[0] - (a[0] + a[1]) for a, b in zip(syncs, syncs[1:])]
    waits = []
    for a in acks:
        later = [t for t, _ in syncs if t >= a]
        if later:
            waits.append(later[0] - a)
    return gaps, waits, len(syncs), n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ms", type=int, default=200)
    ap.add_argument("--period", type=int, default=150)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("bins", nargs="+")
    a = ap.parse_args()
    all_gaps = {b: [] for b in a.bins}
    all_waits = {b: [] for b in a.bins}
    for r in range(a.rounds):
        for b in a.bins:
            gaps, waits, nsync, nput = one_round(b, a.ms, a.period, a.seconds)
            all_gaps[b] += gaps
            all_waits[b] += waits
            print(f"round {r} {b}: {nput} PUTs, {nsync} syncs, gap max {max(gaps) * 1000 if gaps else -1:.0f} ms, "
                  f"ack-to-sync max {max(waits) * 1000 if waits else -1:.0f} ms", flush=True)
    for b in a.bins:
        g, w = sorted(all_gaps[b]), sorted(all_waits[b])
        if not g or not w:
            print(f"{b}: no syncs seen")
            continue
        print(f"{b}: interval:{a.ms}, PUT every {a.period} ms: {len(g)} gaps median {statistics.median(g) * 1000:.0f} "
              f"max {g[-1] * 1000:.0f} ms; {len(w)} PUTs, answer-to-covering-sync median "
              f"{statistics.median(w) * 1000:.0f} p90 {w[int(len(w) * 0.9)] * 1000:.0f} max {w[-1] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
