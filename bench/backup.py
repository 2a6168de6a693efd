#!/usr/bin/env python3
"""Cost of an online backup (GET /admin/backup) while kingx serves.

    bench/backup.py --kingx build/src/kingx [--keys 20000] [--value-bytes 4096]
        [--seconds 5] [--rounds 3] [--clients 4] [--backup-mb-s 0] [--out bench/results/DATE-backup]

One server (2 workers, sync=always, --admin-listen), filled with --keys keys
of --value-bytes random bytes. Each round runs the same closed-loop load
twice, in alternating order: GET clients and PUT clients (half each,
keep-alive, Python's http.client, random keys of the filled set) for
--seconds, once alone and once while backups are taken back to back (each
archive read at full speed, or at --backup-mb-s MB/s like a copy to another
machine, and thrown away). Reported, per round and as
the median of the rounds:
  - GET and PUT requests/s during backups as ratios to the run without;
  - the longest PUT latency in each run;
  - the writer's longest pause for a cut (kingx_backup_cut_max_seconds)
    and the backups and archive bytes done.
Load average and CPU count are recorded with every run (figures taken on a
busy machine are marked so). Output: a table on stdout and result.json in
--out. Standard library only.
"""

import argparse
import http.client
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric(port, name):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    body = c.getresponse().read().decode()
    c.close()
    m = re.search(r"^%s(?:\{[^}]*\})? (\S+)$" % re.escape(name), body, re.M)
    return float(m.group(1)) if m else 0.0


def wait_ready(port, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"kingx exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit("kingx not ready")


def fill(port, keys, value_bytes):
    rng = random.Random(1)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for i in range(keys):
        c.request("PUT", f"/v1/kv/bk{i}", body=rng.randbytes(value_bytes))
        r = c.getresponse()
        r.read()
        if r.status not in (201, 204):
            raise SystemExit(f"fill: PUT answered {r.status}")
    c.close()


def client(port, kind, keys, value_bytes, stop, out):
    rng = random.Random()
    done, worst = 0, 0.0
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    value = rng.randbytes(value_bytes)
    for _ in range(10_000_000):  # bounded; stop ends it first
        if stop.is_set():
            break
        k = f"/v1/kv/bk{rng.randrange(keys)}"
        t0 = time.monotonic()
        if kind == "get":
            c.request("GET", k)
        else:
            c.request("PUT", k, body=value)
        r = c.getresponse()
        r.read()
        worst = max(worst, time.monotonic() - t0)
        if 200 <= r.status < 300:
            done += 1
    c.close()
    out.append((kind, done, worst))


def backups(admin, stop, out, mb_s):
    n = total = 0
    t0 = time.monotonic()
    for _ in range(100000):
        if stop.is_set():
            break
        c = http.client.HTTPConnection("127.0.0.1", admin, timeout=300)
        c.request("GET", "/admin/backup")
        r = c.getresponse()
        for _ in range(10_000_000):
            d = r.read(1 << 20)
            if not d:
                break
            total += len(d)
            if mb_s > 0:  # pace the reader: the server only sends what the socket takes
                ahead = total / (mb_s * 1e6) - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
            if stop.is_set():
                break
        c.close()
        n += 1
    out.append((n, total))


def run_load(port, admin, args, with_backup):
    stop = threading.Event()
    out, bout = [], []
    threads = [threading.Thread(target=client, args=(port, "get" if i % 2 == 0 else "put", args.keys,
                                                     args.value_bytes, stop, out)) for i in range(args.clients)]
    if with_backup:
        threads.append(threading.Thread(target=backups, args=(admin, stop, bout, args.backup_mb_s)))
    for t in threads:
        t.start()
    time.sleep(args.seconds)
    stop.set()
    for t in threads:
        t.join(600)
    res = {"with_backup": with_backup}
    for kind in ("get", "put"):
        res[f"{kind}_per_s"] = sum(d for k, d, _ in out if k == kind) / args.seconds
        res[f"{kind}_worst_ms"] = 1000 * max([w for k, _, w in out if k == kind] or [0])
    if bout:
        res["backups"], res["backup_bytes"] = bout[0]
    return res


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kingx", required=True)
    ap.add_argument("--keys", type=int, default=20000)
    ap.add_argument("--value-bytes", type=int, default=4096)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--backup-mb-s", type=float, default=0.0, help="read backups at this rate (0: full speed)")
    ap.add_argument("--out", default="")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="kingx-bench-backup-")
    port, admin = free_port(), free_port()
    proc = subprocess.Popen([args.kingx, "--listen", f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{admin}",
                             "--data", os.path.join(work, "data"), "--workers", "2", "--sync", "always",
                             "--error-log", os.path.join(work, "error.log"), "--pid", "none"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    rounds = []
    try:
        wait_ready(port, proc)
        fill(port, args.keys, args.value_bytes)
        for r in range(args.rounds):
            order = [False, True] if r % 2 == 0 else [True, False]
            runs = {w: run_load(port, admin, args, w) for w in order}
            base, during = runs[False], runs[True]
            rounds.append({
                "without": base, "with": during,
                "get_ratio": during["get_per_s"] / base["get_per_s"] if base["get_per_s"] else 0,
                "put_ratio": during["put_per_s"] / base["put_per_s"] if base["put_per_s"] else 0,
                "load_avg": os.getloadavg()[0],
            })
        cut_max_s = metric(admin, "kingx_backup_cut_max_seconds")
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)

    result = {
        "command": " ".join(sys.argv), "cpus": os.cpu_count(), "load_avg_end": os.getloadavg(),
        "keys": args.keys, "value_bytes": args.value_bytes, "backup_mb_s": args.backup_mb_s, "clients": args.clients, "seconds": args.seconds,
        "rounds": rounds,
        "median_get_ratio": median([r["get_ratio"] for r in rounds]),
        "median_put_ratio": median([r["put_ratio"] for r in rounds]),
        "writer_cut_max_ms": cut_max_s * 1000,
    }
    print(f"{'round':>5} {'GET/s alone':>12} {'GET/s backup':>13} {'ratio':>6} {'PUT/s alone':>12} "
          f"{'PUT/s backup':>13} {'ratio':>6} {'PUT worst ms':>13} {'backups':>8} {'load':>5}")
    for i, r in enumerate(rounds):
        print(f"{i:>5} {r['without']['get_per_s']:>12.0f} {r['with']['get_per_s']:>13.0f} {r['get_ratio']:>6.2f} "
              f"{r['without']['put_per_s']:>12.0f} {r['with']['put_per_s']:>13.0f} {r['put_ratio']:>6.2f} "
              f"{r['with']['put_worst_ms']:>6.1f}/{r['without']['put_worst_ms']:<6.1f} "
              f"{r['with'].get('backups', 0):>8} {r['load_avg']:>5.1f}")
    print(f"median GET ratio {result['median_get_ratio']:.2f}, PUT ratio {result['median_put_ratio']:.2f}; "
          f"writer's longest pause for a cut {result['writer_cut_max_ms']:.3f} ms; load {result['load_avg_end']}")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "result.json"), "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
