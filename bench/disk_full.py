#!/usr/bin/env python3
"""A full disk, measured: with the default settings on a small tmpfs (root),
how much of the disk holds data before writes are refused, and how long after
deleting half the keys writes are accepted again (nothing else done: no
restart, no admin call), for one or more binaries side by side.

For each binary and value size: fill with PUTs until three 507 in a row,
delete every other key, then try a PUT every 0.5 s for up to --limit s.
Reported: bytes stored / disk size, seconds from the last DELETE to the first
accepted PUT (or "never"), free bytes 30 s after the deletes.

    bench/disk_full.py [--bin build/src/kingx] [--bin OLD --label new --label old]
                       [--disk 64m] [--sizes 1048576,20480] [--out DIR]
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "blackbox"))
import test_disk_full as t  # noqa: E402  (Tmpfs, fill, Store: the suite's own steps)
from kingx_harness import Conn, Server, http, key_path  # noqa: E402


def run_one(binary, size, disk_size, limit):
    os.environ["KINGX_BIN"] = os.path.abspath(binary)
    t.DISK = disk_size
    disk = t.Tmpfs()
    if not disk.mounted:
        raise SystemExit(f"cannot mount a tmpfs: {disk.error}")
    s = Server(workdir=disk.workdir, data_dir=disk.path)
    row = {"bin": binary, "value_bytes": size, "disk": disk_size}
    try:
        s.start()
        total = os.statvfs(disk.path).f_blocks * os.statvfs(disk.path).f_frsize
        store = t.Store()
        t0 = time.monotonic()
        try:
            t.fill(s, store, "b", size, 100000)
        except t.TestFailure as e:  # an old binary may answer differently: record, go on
            row["fill_error"] = str(e)[:200]
        row["fill_s"] = round(time.monotonic() - t0, 2)
        stored = sum(len(v) for v in store.acked.values())
        row["stored_bytes"] = stored
        row["stored_fraction_of_disk"] = round(stored / total, 3)
        keys = sorted(store.acked)
        with Conn(s.port, timeout=30) as c:
            for k in keys[::2]:
                c.request("DELETE", key_path(k))
        t_del = time.monotonic()
        resumed = None
        i = 0
        while time.monotonic() - t_del < limit:
            i += 1
            r = http(s.port, "PUT", key_path(f"after-{i}"), os.urandom(size), timeout=30)
            if r.status in (201, 204):
                resumed = time.monotonic() - t_del
                break
            time.sleep(0.5)
        row["resume_s"] = round(resumed, 2) if resumed is not None else f"never within {limit} s"
        time.sleep(max(0.0, 30 - (time.monotonic() - t_del)))
        row["free_bytes_30s_after_deletes"] = disk.free()
        row["deleted_bytes"] = len(keys[::2]) * size
    finally:
        s.stop()
        disk.close()
        s.cleanup()
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", action="append", default=[])
    ap.add_argument("--label", action="append", default=[])
    ap.add_argument("--disk", default="64m")
    ap.add_argument("--sizes", default="1048576,20480")
    ap.add_argument("--limit", type=float, default=60.0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    bins = args.bin or [os.environ.get("KINGX_BIN", "build/src/kingx")]
    labels = args.label + [os.path.basename(b) for b in bins[len(args.label):]]
    rows = []
    for size in [int(x) for x in args.sizes.split(",")]:
        for b, label in zip(bins, labels):
            row = run_one(b, size, args.disk, args.limit)
            row["label"] = label
            row["load"] = round(os.getloadavg()[0], 1)
            print(json.dumps(row), flush=True)
            rows.append(row)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "runs.jsonl"), "a") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
