#!/usr/bin/env python3
"""Disk space under repeated crashes: does compaction make progress that
survives kill -9, or does the data directory grow without bound?

Each cycle starts kingx on the same data directory, runs an overwrite load
(PUTs and some DELETEs of a fixed key set whose live data is about --live-mb)
for a random 0.5-3 s, then kill -9s the whole server and starts again as soon
as it is gone. Throughout, every 100 ms, the data directory's allocated bytes
(what `du` counts, keys/ included) and the engine's live record bytes (kingx_engine_live_bytes
in /metrics) are sampled; /metrics is read before and after the directory, and a
sample is "steady" when the live, dead and staged bytes did not move in between
(a segment deleted between the directory's measure and the gauges' read shows in
the first and in neither gauge: a sample that is not steady can pass 2x that way). The figures are the largest ratio dir / live seen
(goal: <= 2) and how many samples were above 2x (all, steady, and steady with no
batch written but not yet published at either read: kingx_writer_unpublished_bytes
0, where the binary has that gauge), beside the directory's size
after the last cycle (and the files in keys/ after each cycle); the same without the staging files of large uploads in
progress (kingx_writer_staged_bytes: writes not yet applied, which no
compaction can reclaim), and how many samples staged more than the staging
share admits (an eighth of the live data, or one upload of the largest value).

Value sizes sit on both sides of every size threshold: compression (255/256 B,
random and compressible), a write-queue entry and the large-value path
(1 MiB - 1, 1 MiB, 1 MiB + 1), and, with --segment-bytes, the segment size;
--sizes replaces them (e.g. to make segments holding a large share of the
live data, whose compaction copies stand beside them).

    bench/compaction_crash_soak.py [--cycles 200] [--bin build/src/kingx]
        [--compare-bin OTHER] [--segment-bytes 1M] [--live-mb 7] [--clients 2]
        [--ops-per-sec 0] [--large-piece-gap-ms 0] [--burst-keys 0 [--burst-kb 800]]
        [--sizes 4000,4000,1048575,1048576]
        [--label NAME] [--out DIR]

With --compare-bin, the cycles alternate between the two binaries, each on
its own data directory (same load, same seeds per pair of cycles), so that
both are measured side by side in the same run on the same machine load; the
summary has one line per binary, with the writes each completed per second
of load (what a write stall costs the writers) and the PUTs of values over
1 MiB (staged uploads) answered 2xx per second of load and answered otherwise.

Only processes this script started are signalled (by their process group).
Writes <out>/runs.jsonl (one line per cycle), <out>/samples-bin.jsonl (and
samples-compare-bin.jsonl: one line per sample, with the engine's dead bytes
and compaction's counters) and prints a summary line.
"""

import argparse
import json
import os
import random
import re
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "blackbox"))
from kingx_harness import (Conn, ConnectionClosed, Server, TestFailure, build_request, dir_bytes,  # noqa: E402
                           key_path)

MIB = 1 << 20


def keys_files(data_dir):
    """Files in the sorted key view's directory (keys/: runs and MANIFEST)."""
    try:
        return len(os.listdir(os.path.join(data_dir, "keys")))
    except OSError:
        return 0


def metrics_text(port):
    """The /metrics body, or None."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            return r.read().decode()
    except OSError:
        return None


def dir_listing(path):
    """One line per file under path: allocated bytes, size, name (for the
    snapshot of a sample above 2x)."""
    lines = []
    for root, _dirs, files in os.walk(path):
        for name in sorted(files):
            full = os.path.join(root, name)
            try:
                st = os.lstat(full)
            except OSError:
                continue
            lines.append(f"{st.st_blocks * 512:>12} {st.st_size:>12} {os.path.relpath(full, path)}\n")
    return lines


# Gauges and counters kept in each sample's record (see Run.sample_rows):
# with live and staged, what the directory holds besides (dead records, the
# copies of a pass in flight, hints and key runs) and what compaction did
# since the previous sample.
SAMPLED_METRICS = {
    "dead": "kingx_engine_dead_bytes",
    "segments": "kingx_engine_segments",
    "backlog": "kingx_compaction_backlog_bytes",
    "passes": "kingx_compaction_passes_total",
    "written": "kingx_compaction_written_bytes_total",
    "reclaimed": "kingx_compaction_reclaimed_bytes_total",
    "deleted": "kingx_compaction_segments_deleted_total",
    "stalls": "kingx_compaction_write_stalls_total",
    # Bytes of batches written but not yet published (absent before the gauge existed).
    "unpublished": "kingx_writer_unpublished_bytes",
}


def live_bytes(port):
    """(live record bytes, staged bytes of large uploads in progress, the
    SAMPLED_METRICS that /metrics had) from /metrics, or (None, None, {})."""
    body = metrics_text(port)
    if body is None:
        return None, None, {}
    m = re.search(r"^kingx_engine_live_bytes (\S+)$", body, re.M)
    st = re.search(r"^kingx_writer_staged_bytes (\S+)$", body, re.M)
    more = {}
    for field, name in SAMPLED_METRICS.items():
        g = re.search(r"^" + name + r" (\S+)$", body, re.M)
        if g:
            more[field] = float(g.group(1))
    return (float(m.group(1)) if m else None), (float(st.group(1)) if st else 0.0), more


class Load(threading.Thread):
    """One client: overwrites (90%) and deletes (10%) random keys until stop."""

    def __init__(self, port, keys, sizes, seed, stop, ops_per_sec=0.0, large_piece_gap_ms=0.0):
        super().__init__(daemon=True)
        self.port, self.keys, self.sizes, self.stop = port, keys, sizes, stop
        self.gap = 1.0 / ops_per_sec if ops_per_sec > 0 else 0.0
        self.piece_gap = large_piece_gap_ms / 1000.0
        self.rng = random.Random(seed)
        self.ops = self.errors = 0
        # PUTs of values over 1 MiB (staged uploads): answered 2xx, answered otherwise
        self.large_ok = self.large_failed = 0

    def value(self):
        size = self.rng.choice(self.sizes)
        if self.rng.random() < 0.5:
            return self.rng.randbytes(size)
        return (b"compressible-%d-" % size * (size // 16 + 1))[:size]

    def run(self):
        try:
            with Conn(self.port, timeout=10) as c:
                while not self.stop.is_set():
                    k = self.rng.choice(self.keys)
                    if self.rng.random() < 0.1:
                        c.request("DELETE", key_path(k))
                    else:
                        v = self.value()
                        r = self.put_slowly(c, k, v) if self.piece_gap and len(v) > MIB else \
                            c.request("PUT", key_path(k), v)
                        if len(v) > MIB:
                            if 200 <= r.status < 300:
                                self.large_ok += 1
                            else:
                                self.large_failed += 1
                    self.ops += 1
                    if self.gap:
                        self.stop.wait(self.gap)
        except (OSError, ConnectionClosed, TestFailure):
            self.errors += 1  # the kill

    def put_slowly(self, c, k, v):
        """One PUT whose body goes in pieces of 256 KiB, piece_gap apart (a
        slow client: its upload stays staged that long)."""
        c.send(build_request("PUT", key_path(k), None, [("Content-Length", str(len(v)))]))
        for off in range(0, len(v), 256 * 1024):
            c.send(v[off:off + 256 * 1024])
            self.stop.wait(self.piece_gap)
        c.requests_sent += 1
        while True:
            r = c.read_response()
            if r.status >= 200:
                return r


class Burst(threading.Thread):
    """One of --burst-keys clients that together, over and over, write a
    large value each to keys of their own, wait, and then at once (a
    barrier) replace them all with one byte: a burst that the writer takes
    as one batch (or few) and that kills a large share of the live data at
    once, while little else is dead (what the write stall did not forecast).
    """

    def __init__(self, port, key, value_bytes, barrier, stop):
        super().__init__(daemon=True)
        self.port, self.key, self.stop, self.barrier = port, key, stop, barrier
        self.value = random.Random(key).randbytes(value_bytes)  # incompressible
        self.ops = self.bursts = self.errors = 0

    def run(self):
        try:
            with Conn(self.port, timeout=10) as c:
                while not self.stop.is_set():
                    c.request("PUT", key_path(self.key), self.value)
                    self.ops += 1
                    self.barrier.wait(10)
                    if self.stop.wait(0.3):  # compaction settles; then all at once
                        break
                    self.barrier.wait(10)
                    r = c.request("PUT", key_path(self.key), b"x")
                    self.ops += 1
                    if 200 <= r.status < 300:
                        self.bursts += 1
                    self.barrier.wait(10)
        except (OSError, ConnectionClosed, TestFailure, threading.BrokenBarrierError):
            self.errors += 1  # the kill, or another burst client gone
        self.barrier.abort()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=200)
    ap.add_argument("--bin", default=os.environ.get("KINGX_BIN", "build/src/kingx"))
    ap.add_argument("--compare-bin", default=None,
                    help="a second kingx binary, run in alternate cycles on its own data directory")
    ap.add_argument("--segment-bytes", default=None, help="kingx --segment-bytes (default: kingx's own)")
    ap.add_argument("--live-mb", type=float, default=7.0)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--ops-per-sec", type=float, default=0.0,
                    help="per client (0 = as fast as the server answers)")
    ap.add_argument("--large-piece-gap-ms", type=float, default=0.0,
                    help="send bodies over 1 MiB in 256 KiB pieces this far apart (0 = at once)")
    ap.add_argument("--burst-keys", type=int, default=0,
                    help="this many more clients, each with a key of --burst-kb, replaced by 1 B all at once "
                         "every 0.3 s or so (see Burst)")
    ap.add_argument("--burst-kb", type=int, default=800)
    ap.add_argument("--sizes", default=None,
                    help="comma-separated value sizes in bytes, drawn uniformly (repeat one to weight it), instead "
                         "of the default spread; e.g. 4000,4000,1048575,1048576 makes segments that hold one or two "
                         "records of 1 MiB beside small ones: more than a quarter of a few MB of live data")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--server-arg", action="append", default=[],
                    help="one more kingx argument (repeatable), e.g. --server-arg=--log-level=debug")
    ap.add_argument("--label", default="")
    ap.add_argument("--out", default=None)
    ap.add_argument("--keep-logs", action="store_true",
                    help="with --out: keep each binary's whole error log (out/logs/bin.log and compare-bin.log), "
                         "moved there after each cycle (e.g. the compaction passes' debug lines)")
    args = ap.parse_args()

    sizes = [0, 1, 100, 255, 256, 257, 4000, 65536, MIB - 1, MIB, MIB + 1, 2 * MIB]
    if args.sizes:
        sizes = [int(x) for x in args.sizes.split(",")]
    if args.segment_bytes:
        m = re.fullmatch(r"(\d+)([KMG]?)", args.segment_bytes)
        seg = int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2)]
        if seg <= 4 * MIB:
            sizes += [seg - 200, seg + 1]
    mean = sum(sizes) / len(sizes)
    nkeys = max(4, int(args.live_mb * MIB / mean))
    keys = [f"soak-{i}" for i in range(nkeys)]
    extra = ["--workers", "2"] + args.server_arg
    if args.segment_bytes:
        extra += ["--segment-bytes", args.segment_bytes]

    bins = [os.path.abspath(args.bin)] + ([os.path.abspath(args.compare_bin)] if args.compare_bin else [])
    runs = [Run(b, extra, name) for b, name in zip(bins, ["bin", "compare-bin"])]
    current = {"run": None}
    stop_sampling = threading.Event()

    def sampler():
        while not stop_sampling.is_set():
            run = current["run"]
            if run is not None:
                port = run.port
                # The gauges before and after the directory is measured: a
                # sample whose live, dead or staged bytes moved meanwhile is
                # not steady (a segment deleted between the two reads shows
                # in the directory but in no gauge read after it).
                before = live_bytes(port) if port else (None, None, {})
                d = dir_bytes(run.server.data_dir)
                live, staged, more = live_bytes(port) if port else (None, None, {})
                steady = (before[0] == live and (before[1] or 0.0) == (staged or 0.0)
                           and before[2].get("dead") == more.get("dead"))
                # A batch written but not yet published at either read: its
                # bytes are in the directory and in no live or dead gauge
                # (None: the binary has no such gauge, so it cannot tell).
                in_flight = (None if "unpublished" not in more else
                             bool(more["unpublished"] or before[2].get("unpublished")))
                run.samples.append((time.monotonic(), d, live, staged or 0.0, steady, in_flight))
                if args.out:
                    # Wall time to the millisecond, to find the log's passes around it.
                    run.sample_rows.append({"cycle": run.cycle_no, "wall": round(time.time(), 3), "dir": d,
                                            "live": live, "staged": staged or 0.0, "steady": steady,
                                            "live_before": before[0], "dead_before": before[2].get("dead"),
                                            "unpublished_before": before[2].get("unpublished"), **more})
                if (args.out and live and live >= 0.5 * args.live_mb * MIB and d > 2 * live
                        and run.snapshots < 3):
                    run.snapshot(args.out, d, live, port)
            time.sleep(0.1)

    t_start = time.monotonic()
    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    rng = random.Random(args.seed)
    try:
        for cycle in range(args.cycles):
            # One draw per cycle, shared by the binaries: the same load and duration for each.
            seeds = [rng.randrange(1 << 30) for _ in range(args.clients)]
            duration = rng.uniform(0.5, 3.0)
            for run in runs:
                run.cycle(cycle, args, keys, sizes, seeds, duration, current)
    finally:
        stop_sampling.set()
        th.join(5)
        for run in runs:
            run.server.cleanup()
    status = 0
    for run in runs:
        summary = run.summary(args, nkeys, t_start)
        print("SUMMARY " + json.dumps(summary), flush=True)
        if args.out:
            os.makedirs(args.out, exist_ok=True)
            with open(os.path.join(args.out, "runs.jsonl"), "a") as f:
                for r in run.rows:
                    f.write(json.dumps({"label": args.label, "bin": run.bin, **r}) + "\n")
                f.write(json.dumps({"summary": summary}) + "\n")
        if run.failed_restarts:
            status = 1
    return status


class Run:
    """One binary's server, data directory, samples and per-cycle rows."""

    def __init__(self, binary, extra, name):
        os.environ["KINGX_BIN"] = binary
        self.bin = binary
        self.name = name  # which option named the binary (for kept logs)
        self.server = Server(args=extra)
        self.port = None
        self.samples = []  # (t, dir, live, staged, steady, in_flight)
        # With --out: one record per sample (cycle, wall time, dir, live,
        # staged, SAMPLED_METRICS), appended to out/samples-NAME.jsonl after each cycle.
        self.sample_rows = []
        self.rows = []
        self.failed_restarts = 0
        self.load_seconds = 0.0
        self.cycle_no = 0
        self.snapshots = 0  # of the current cycle

    def snapshot(self, out, d, live, port):
        """What the directory and the compaction metrics hold at a sample
        above 2x, for the diagnosis."""
        self.snapshots += 1
        keep = os.path.join(out, "over-2x-logs")
        os.makedirs(keep, exist_ok=True)
        name = f"{os.path.basename(self.bin)}-cycle{self.cycle_no}-snap{self.snapshots}.txt"
        body = metrics_text(port) or ""
        with open(os.path.join(keep, name), "w") as f:
            f.write(f"dir {d} live {live} ratio {d / live:.3f} t {time.monotonic():.3f}\n")
            f.writelines(dir_listing(self.server.data_dir))
            f.writelines(l + "\n" for l in body.splitlines()
                         if re.match(r"kingx_(compaction|engine|writer)_", l))

    def keep_log(self, out):
        """Moves what the (killed) server logged to out/logs/NAME.log."""
        keep = os.path.join(out, "logs")
        os.makedirs(keep, exist_ok=True)
        try:
            with open(self.server.error_log, "rb") as src, \
                    open(os.path.join(keep, f"{self.name}.log"), "ab") as dst:
                dst.write(src.read())
            os.truncate(self.server.error_log, 0)
        except OSError:
            pass

    def cycle(self, cycle, args, keys, sizes, seeds, duration, current):
        try:
            self.server.start()
        except TestFailure as e:
            self.failed_restarts += 1
            print(f"{self.bin} cycle {cycle}: restart failed: {str(e)[:300]}", flush=True)
            self.server.kill_group()
            return
        self.port = self.server.port
        self.cycle_no = cycle
        self.snapshots = 0
        first = len(self.samples)
        current["run"] = self
        stop = threading.Event()
        loads = [Load(self.port, keys, sizes, seed, stop, args.ops_per_sec, args.large_piece_gap_ms)
                 for seed in seeds]
        if args.burst_keys:
            barrier = threading.Barrier(args.burst_keys)
            bursts = [Burst(self.port, f"burst-{i}", args.burst_kb * 1024, barrier, stop)
                      for i in range(args.burst_keys)]
        else:
            bursts = []
        for l in loads + bursts:
            l.start()
        time.sleep(duration)
        self.server.kill_group()
        self.port = None
        current["run"] = None
        stop.set()
        for l in loads + bursts:
            l.join(15)
        self.load_seconds += duration
        # Ratios only where the live data is meaningful: not while the
        # database is still filling, nor from a sample taken mid-recovery.
        window = [s for s in self.samples[first:] if s[2] and s[2] >= 0.5 * args.live_mb * MIB]
        live = max((s[2] for s in self.samples[first:] if s[2]), default=0)
        peak = max((s[1] for s in self.samples[first:]), default=0)
        ratio = max((s[1] / s[2] for s in window), default=0)
        over = sum(1 for s in window if s[1] > 2 * s[2])
        # Steady: only samples whose gauges did not move while the directory was measured.
        steady_window = [s for s in window if s[4]]
        over_steady = sum(1 for s in steady_window if s[1] > 2 * s[2])
        # Of those, with no batch in flight (only a binary with the gauge can say).
        published_window = [s for s in steady_window if s[5] is False]
        over_published = sum(1 for s in published_window if s[1] > 2 * s[2])
        ratio_steady = max((s[1] / s[2] for s in steady_window), default=0)
        # Without the staging files of uploads in progress (not yet data).
        settled = max(((s[1] - s[3]) / s[2] for s in window), default=0)
        settled_over = sum(1 for s in window if s[1] - s[3] > 2 * s[2])
        # Staged bytes past what the staging share admits (an eighth of the
        # live data, or one upload of the largest value alone).
        one_upload = max(sizes) + 64 * 1024
        staged_past_share = sum(1 for s in window if s[3] > max(s[2] / 8, one_upload))
        row = {"cycle": cycle, "ops": sum(l.ops for l in loads), "seconds": round(duration, 3),
               "burst_ops": sum(b.ops for b in bursts), "bursts": min((b.bursts for b in bursts), default=0),
               "large_ok": sum(l.large_ok for l in loads), "large_failed": sum(l.large_failed for l in loads),
               "live_bytes": live, "dir_peak_bytes": peak,
               "max_ratio": round(ratio, 3), "samples": len(window), "samples_over_2x": over,
               "steady_samples": len(steady_window), "steady_over_2x": over_steady,
               "max_steady_ratio": round(ratio_steady, 3),
               "steady_published_samples": len(published_window), "steady_published_over_2x": over_published,
               "max_ratio_without_staged": round(settled, 3), "samples_over_2x_without_staged": settled_over,
               "max_staged_bytes": max((s[3] for s in window), default=0),
               "samples_staged_past_share": staged_past_share,
               "dir_after_bytes": dir_bytes(self.server.data_dir),
               "keys_files_after": keys_files(self.server.data_dir)}
        self.rows.append(row)
        if args.out:
            os.makedirs(args.out, exist_ok=True)
            with open(os.path.join(args.out, f"samples-{self.name}.jsonl"), "a") as f:
                for r in self.sample_rows:
                    f.write(json.dumps(r) + "\n")
            self.sample_rows = []
        if over and args.out:
            # What the server logged in a cycle that passed 2x (its directory
            # and logs go at the end of the run).
            keep = os.path.join(args.out, "over-2x-logs")
            os.makedirs(keep, exist_ok=True)
            try:
                with open(self.server.error_log, errors="replace") as f:
                    tail = f.readlines()[-300:]
                name = f"{os.path.basename(self.bin)}-cycle{cycle}.log"
                with open(os.path.join(keep, name), "w") as f:
                    f.writelines(tail)
            except OSError:
                pass
        if args.keep_logs and args.out:
            self.keep_log(args.out)
        if cycle % 10 == 0 or cycle == args.cycles - 1:
            print(json.dumps({"bin": self.bin, **row}), flush=True)

    def summary(self, args, nkeys, t_start):
        rows = self.rows
        worst = max((r["max_ratio"] for r in rows), default=0)
        samples = sum(r["samples"] for r in rows)
        over = sum(r["samples_over_2x"] for r in rows)
        ops = sum(r["ops"] for r in rows)
        burst_ops = sum(r["burst_ops"] for r in rows)
        return {"label": args.label, "bin": self.bin, "segment_bytes": args.segment_bytes or "default",
                "cycles": len(rows), "failed_restarts": self.failed_restarts, "keys": nkeys,
                "live_mb_target": args.live_mb, "ops_per_sec_per_client": args.ops_per_sec,
                "large_piece_gap_ms": args.large_piece_gap_ms,
                "burst_keys": args.burst_keys, "burst_kb": args.burst_kb,
                "bursts": sum(r["bursts"] for r in rows),
                "burst_ops_per_load_second": round(burst_ops / self.load_seconds, 1) if self.load_seconds else 0,
                "max_ratio_dir_to_live": worst,
                "samples": samples, "samples_over_2x": over,
                "steady_samples": sum(r["steady_samples"] for r in rows),
                "steady_over_2x": sum(r["steady_over_2x"] for r in rows),
                "max_steady_ratio": max((r["max_steady_ratio"] for r in rows), default=0),
                "steady_published_samples": sum(r.get("steady_published_samples", 0) for r in rows),
                "steady_published_over_2x": sum(r.get("steady_published_over_2x", 0) for r in rows),
                "max_ratio_without_staged": max((r["max_ratio_without_staged"] for r in rows), default=0),
                "samples_over_2x_without_staged": sum(r["samples_over_2x_without_staged"] for r in rows),
                "max_staged_bytes": max((r["max_staged_bytes"] for r in rows), default=0),
                "samples_staged_past_share": sum(r["samples_staged_past_share"] for r in rows),
                "largest_dir_bytes": max((r["dir_peak_bytes"] for r in rows), default=0),
                "dir_after_last_cycle_bytes": rows[-1]["dir_after_bytes"] if rows else 0,
                "keys_files_max": max((r["keys_files_after"] for r in rows), default=0),
                "keys_files_after_last_cycle": rows[-1]["keys_files_after"] if rows else 0,
                "live_after_last_cycle_bytes": rows[-1]["live_bytes"] if rows else 0,
                "ops": ops, "load_seconds": round(self.load_seconds, 1),
                "ops_per_load_second": round(ops / self.load_seconds, 1) if self.load_seconds else 0,
                "large_ok": sum(r["large_ok"] for r in rows), "large_failed": sum(r["large_failed"] for r in rows),
                "large_ok_per_load_second":
                    round(sum(r["large_ok"] for r in rows) / self.load_seconds, 2) if self.load_seconds else 0,
                "seconds": round(time.monotonic() - t_start, 1), "load": os.getloadavg()[0]}


if __name__ == "__main__":
    sys.exit(main())
