#!/usr/bin/env python3
"""fdatasync latency of three ways to lay out a log file, on the filesystem of --dir.

Each mode writes --writes writes of one size (4-32 KiB, what a group commit of small PUTs adds to
the active segment), each followed by fdatasync, into a fresh file, and records how long every
fdatasync took:
  append      the file grows with every write (the writer today): the size changes, so the
              filesystem must journal the inode with each fdatasync;
  fallocate   the same writes into a region reserved with fallocate() (mode 0) beforehand: the
              blocks exist but are unwritten extents, and writing them converts them (metadata);
  zeroed      the same writes into a region written with zeros and synced beforehand: nothing but
              data changes, so an fdatasync has only the data to flush.
Modes run interleaved (a file per mode per round; the modes take turns of --block writes, the
order rotated at every turn), so a disk that slows down for a while slows all three. With
--block 1 they alternate at every write, so the append file's journal commits sit right next to
the others' syncs; a larger block lets each file's syncs run as the only writer for a while. Reports per mode and size: median, p90, p99 and mean
fdatasync latency over all rounds, the median of the per-round medians, and zeroed ÷ append and
fallocate ÷ append ratios of the medians (pooled and paired per round).

Usage: bench/fdatasync_probe.py [--dir DIR] [--sizes 4,8,16,32] [--writes 400] [--rounds 5]
         [--block 1] [--out FILE.json]
Python standard library only. The files go into a temporary directory under --dir (default: this
repository's directory, the disk the server's data would be on) and are removed.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

MODES = ("append", "fallocate", "zeroed")


def prepare(path, mode, total_bytes):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    if mode == "fallocate":
        os.posix_fallocate(fd, 0, total_bytes)
        os.fsync(fd)
    elif mode == "zeroed":
        chunk = bytes(1 << 20)
        off = 0
        while off < total_bytes:
            n = min(len(chunk), total_bytes - off)
            os.pwrite(fd, chunk[:n], off)
            off += n
        os.fsync(fd)
    else:
        os.fsync(fd)
    return fd


def run_round(directory, size, writes, shift, block):
    """One round at one size: a fresh file per mode, the modes taking turns of `block` writes
    (mode order rotated by `shift` and at every turn), so that the three see the same moments
    of the disk. Returns mode -> [fdatasync latency in µs]."""
    fds = {m: prepare(os.path.join(directory, f"probe-{m}"), m, size * writes) for m in MODES}
    payload = os.urandom(size)
    lat_us = {m: [] for m in MODES}
    try:
        for turn, first in enumerate(range(0, writes, block)):
            k = (shift + turn) % len(MODES)
            for m in MODES[k:] + MODES[:k]:
                for i in range(first, min(writes, first + block)):
                    if os.pwrite(fds[m], payload, i * size) != size:
                        raise RuntimeError("short write")
                    t0 = time.perf_counter_ns()
                    os.fdatasync(fds[m])
                    lat_us[m].append((time.perf_counter_ns() - t0) / 1000.0)
    finally:
        for m in MODES:
            os.close(fds[m])
            os.unlink(os.path.join(directory, f"probe-{m}"))
    return lat_us


def pct(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * (len(sorted_values) - 1)))))
    return sorted_values[k]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--sizes", default="4,8,16,32", help="KiB per write, comma-separated")
    ap.add_argument("--writes", type=int, default=400, help="writes (each + fdatasync) per file")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--block", type=int, default=1,
                    help="writes a mode makes in a row before the next mode's turn (1: alternate every write)")
    ap.add_argument("--out", default=None, help="raw latencies and summary as JSON")
    args = ap.parse_args()
    sizes = [int(s) * 1024 for s in args.sizes.split(",")]

    fs = subprocess.run(["findmnt", "-n", "-o", "SOURCE,FSTYPE,OPTIONS", "-T", args.dir],
                        capture_output=True, text=True).stdout.strip()
    print(f"# filesystem of {args.dir}: {fs}")
    raw = {m: {s: [] for s in sizes} for m in MODES}  # mode -> size -> [per-round latency list]
    with tempfile.TemporaryDirectory(prefix="fdatasync-probe-", dir=args.dir) as tmp:
        for r in range(args.rounds):
            for s in sizes:
                lat = run_round(tmp, s, args.writes, r, args.block)
                for m in MODES:
                    raw[m][s].append(lat[m])
            print(f"# round {r + 1}/{args.rounds} done", file=sys.stderr)

    summary = []
    print(f"{'KiB':>4} {'mode':<10} {'p50 us':>8} {'p90 us':>8} {'p99 us':>8} {'mean us':>8} "
          f"{'rnd-med':>8} {'÷append':>8} {'paired ÷append [per round]'}")
    for s in sizes:
        base = sorted(x for rnd in raw["append"][s] for x in rnd)
        for m in MODES:
            allv = sorted(x for rnd in raw[m][s] for x in rnd)
            rmeds = [statistics.median(rnd) for rnd in raw[m][s]]
            paired = [statistics.median(a) / statistics.median(b)
                      for a, b in zip(raw[m][s], raw["append"][s])]
            row = {"kib": s // 1024, "mode": m, "p50_us": pct(allv, 50), "p90_us": pct(allv, 90),
                   "p99_us": pct(allv, 99), "mean_us": statistics.fmean(allv),
                   "round_medians_us": rmeds, "ratio_p50_to_append": pct(allv, 50) / pct(base, 50),
                   "paired_ratio_median": statistics.median(paired), "paired_ratios": paired}
            summary.append(row)
            print(f"{s // 1024:>4} {m:<10} {row['p50_us']:>8.0f} {row['p90_us']:>8.0f} "
                  f"{row['p99_us']:>8.0f} {row['mean_us']:>8.0f} {statistics.median(rmeds):>8.0f} "
                  f"{row['ratio_p50_to_append']:>8.2f} {row['paired_ratio_median']:.2f} "
                  f"[{', '.join(f'{x:.2f}' for x in paired)}]")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"filesystem": fs, "writes": args.writes, "rounds": args.rounds, "block": args.block,
                       "summary": summary,
                       "raw_us": {m: {str(s // 1024): raw[m][s] for s in sizes} for m in MODES}}, f)


if __name__ == "__main__":
    main()
