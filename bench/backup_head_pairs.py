#!/usr/bin/env python3
"""Time to an online backup's response head, two binaries side by side, many
alternated pairs: the wait the active segment's hint build adds.

    bench/backup_head_pairs.py --kingx A=PATH --data A=DIR --kingx B=PATH --data B=DIR \
        [--model event|threads] [--pairs 20] [--out bench/results/DATE-backup/head-pairs.json]

Both servers run at once (event model: 2 workers; threads: 64), each on its
own copy of the same database (bench/backup_bench.py's --work holds them).
Each pair asks each server for one GET /admin/backup (order alternating from
pair to pair), reads the response head and closes the connection (the cut is
given back at once), then the next. Reported per pair: seconds to the head
of each and their ratio B/A, with the load average; the median ratio at the
end. Every wait is bounded (600 s per backup). Standard library only.
"""

import argparse
import json
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from backup_bench import Server, loadavg  # noqa: E402


def head_s(admin_port):
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", admin_port), timeout=600) as s:
        s.sendall(b"GET /admin/backup HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            d = s.recv(65536)
            if not d:
                raise RuntimeError("closed before the response head")
            head += d
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"backup answered {head[:60]!r}")
        return time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kingx", action="append", required=True, help="LABEL=PATH, twice")
    ap.add_argument("--data", action="append", required=True, help="LABEL=DIR, twice")
    ap.add_argument("--model", default="event")
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--work", default="/tmp/kingx-backup-head-pairs")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bins = [tuple(k.split("=", 1)) for k in args.kingx]
    dirs = dict(tuple(d.split("=", 1)) for d in args.data)
    os.makedirs(args.work, exist_ok=True)
    servers = []
    try:
        for label, binary in bins:
            servers.append((label, Server(binary, dirs[label], args.model, args.work, f"{label}-{args.model}")))
        rows = []
        for p in range(args.pairs):
            order = servers if p % 2 == 0 else servers[::-1]
            t = {label: head_s(srv.admin) for label, srv in order}
            a, b = bins[0][0], bins[1][0]
            row = {"pair": p, a: t[a], b: t[b], "ratio": t[b] / t[a], "load": loadavg()}
            rows.append(row)
            print(f"pair {p:2d}: {a} {t[a] * 1000:7.1f} ms  {b} {t[b] * 1000:7.1f} ms  {b}/{a} {row['ratio']:.2f}  "
                  f"load {row['load'][0]:.1f}", flush=True)
        ratios = sorted(r["ratio"] for r in rows)
        med = ratios[len(ratios) // 2]
        print(f"median {bins[1][0]}/{bins[0][0]} {med:.3f} (min {ratios[0]:.2f}, max {ratios[-1]:.2f}) over "
              f"{len(rows)} pairs, model {args.model}")
        if args.out:
            with open(args.out, "w") as f:
                json.dump({"command": " ".join(sys.argv), "cpus": os.cpu_count(), "model": args.model,
                           "binaries": dict(bins), "data": dirs, "median_ratio": med, "pairs": rows}, f, indent=1)
    finally:
        for _, srv in servers:
            srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
