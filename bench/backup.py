#!/usr/bin/env python3
"""Cost of an online backup (GET /admin/backup) while kingx serves.

    bench/backup.py --kingx build-release/src/kingx [--keys 20000] [--value-bytes 4096]
        [--seconds 5] [--rounds 3] [--clients 4] [--paced-mb-s 20] [--max-minutes 10]
        [--out bench/results/DATE-backup]

One server (2 workers, sync=always, --admin-listen), filled with --keys keys
of --value-bytes random bytes. Each round runs the same closed-loop load
(GET clients and PUT clients, half each, keep-alive, random keys of the
filled set) for --seconds three times, in an order that rotates from round
to round:
  - alone: no backup;
  - back to back: backups taken one after the other, each archive read at
    full speed and thrown away (the worst case: a backup never ends);
  - paced: the same, each archive read at --paced-mb-s MB/s (a copy to
    another machine or a slower disk).
The backup reader is a process of its own (no shared interpreter lock with
the load clients). Reported, per round and as the median of the rounds:
  - GET and PUT requests/s of each backup run as ratios to the run alone of
    the same round;
  - the longest PUT latency of each run;
  - the writer's pause for each cut: every "the writer loop paused N us" line
    of the error log (count, median, max) and kingx_backup_cut_max_seconds;
  - backups and archive bytes done.
Bounded: every loop has a count bound, and no round starts once
--max-minutes would be passed (the report says how many rounds ran). The
expected duration is printed first. Load average and CPU count are recorded
(figures taken on a busy machine are preliminary). Output: a table on stdout
and result.json in --out. Standard library only.
"""

import argparse
import http.client
import json
import multiprocessing
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

MODES = ("alone", "back_to_back", "paced")


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


def backup_reader(admin, stop, results, mb_s):
    """A process of its own: backups back to back until stop, each read whole
    (at mb_s MB/s when > 0) and thrown away. Puts (backups, bytes, incomplete)."""
    n = total = incomplete = 0
    t0 = time.monotonic()
    for _ in range(100000):
        if stop.is_set():
            break
        c = http.client.HTTPConnection("127.0.0.1", admin, timeout=120)
        c.request("GET", "/admin/backup")
        r = c.getresponse()
        length = int(r.getheader("Content-Length") or 0)
        got = 0
        for _ in range(10_000_000):
            d = r.read(1 << 16)
            if not d:
                break
            got += len(d)
            total += len(d)
            if mb_s > 0:  # pace the reader: the server only sends what the socket takes
                ahead = total / (mb_s * 1e6) - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(min(ahead, 0.5))
            if stop.is_set():
                break
        c.close()
        n += 1
        incomplete += got < length
    results.put((n, total, incomplete))


def run_load(port, admin, args, mode):
    stop = threading.Event()
    out = []
    threads = [threading.Thread(target=client, args=(port, "get" if i % 2 == 0 else "put", args.keys,
                                                     args.value_bytes, stop, out)) for i in range(args.clients)]
    reader = None
    if mode != "alone":
        pstop, results = multiprocessing.Event(), multiprocessing.Queue()
        reader = multiprocessing.Process(target=backup_reader,
                                         args=(admin, pstop, results, args.paced_mb_s if mode == "paced" else 0))
        reader.start()
    for t in threads:
        t.start()
    time.sleep(args.seconds)
    stop.set()
    res = {"mode": mode}
    if reader is not None:
        pstop.set()
        try:
            res["backups"], res["backup_bytes"], res["backups_cut_short_by_the_end"] = results.get(timeout=180)
        except Exception:  # noqa: BLE001 - the reader is stopped below either way
            res["backups"] = res["backup_bytes"] = -1
        reader.join(30)
        if reader.is_alive():
            reader.kill()
            reader.join(10)
    for t in threads:
        t.join(120)
    for kind in ("get", "put"):
        res[f"{kind}_per_s"] = sum(d for k, d, _ in out if k == kind) / args.seconds
        res[f"{kind}_worst_ms"] = 1000 * max([w for k, _, w in out if k == kind] or [0])
    res["load_avg"] = os.getloadavg()[0]
    return res


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else 0


def cut_pauses_us(error_log):
    try:
        with open(error_log, errors="replace") as f:
            text = f.read()
    except OSError:
        return []
    return [int(m) for m in re.findall(r"backup cut at seq \d+: .*?the writer loop paused (\d+) us", text)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kingx", required=True)
    ap.add_argument("--keys", type=int, default=20000)
    ap.add_argument("--value-bytes", type=int, default=4096)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--paced-mb-s", type=float, default=20.0, help="the paced backups' read rate, MB/s")
    ap.add_argument("--max-minutes", type=float, default=10.0, help="no round starts past this")
    ap.add_argument("--out", default="")
    args = ap.parse_args()

    per_round_s = 3 * (args.seconds + 1)
    print(f"expected: fill {args.keys} keys, then {args.rounds} rounds of ~{per_round_s:.0f} s "
          f"(~{args.rounds * per_round_s / 60:.1f} min); no round starts after {args.max_minutes} min", flush=True)
    started = time.monotonic()
    work = tempfile.mkdtemp(prefix="kingx-bench-backup-")
    error_log = os.path.join(work, "error.log")
    port, admin = free_port(), free_port()
    proc = subprocess.Popen([args.kingx, "--listen", f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{admin}",
                             "--data", os.path.join(work, "data"), "--workers", "2", "--sync", "always",
                             "--error-log", error_log, "--pid", "none"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    rounds, pauses = [], []
    cut_max_s = 0.0
    try:
        wait_ready(port, proc)
        fill(port, args.keys, args.value_bytes)
        for r in range(args.rounds):
            if time.monotonic() - started + per_round_s > args.max_minutes * 60:
                break
            order = MODES[r % 3:] + MODES[:r % 3]
            runs = {m: run_load(port, admin, args, m) for m in order}
            base = runs["alone"]
            row = {"order": list(order), "runs": runs}
            for m in ("back_to_back", "paced"):
                for kind in ("get", "put"):
                    row[f"{kind}_ratio_{m}"] = runs[m][f"{kind}_per_s"] / base[f"{kind}_per_s"] if base[f"{kind}_per_s"] else 0
            rounds.append(row)
        cut_max_s = metric(admin, "kingx_backup_cut_max_seconds")
        pauses = cut_pauses_us(error_log)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)

    result = {
        "command": " ".join(sys.argv), "cpus": os.cpu_count(), "load_avg_end": os.getloadavg(),
        "keys": args.keys, "value_bytes": args.value_bytes, "clients": args.clients, "seconds": args.seconds,
        "paced_mb_s": args.paced_mb_s, "rounds_asked": args.rounds, "rounds_run": len(rounds),
        "minutes": (time.monotonic() - started) / 60,
        "rounds": rounds,
        "writer_cut_max_ms": cut_max_s * 1000,
        "writer_cut_pauses": {"count": len(pauses), "median_us": median(pauses), "max_us": max(pauses or [0])},
    }
    for m in ("back_to_back", "paced"):
        for kind in ("get", "put"):
            result[f"median_{kind}_ratio_{m}"] = median([r[f"{kind}_ratio_{m}"] for r in rounds])
    print(f"{'round':>5} {'mode':>12} {'GET/s':>8} {'ratio':>6} {'PUT/s':>8} {'ratio':>6} {'PUT worst ms':>12} "
          f"{'backups':>8} {'MB':>7} {'load':>5}")
    for i, r in enumerate(rounds):
        for m in MODES:
            x = r["runs"][m]
            gr = 1.0 if m == "alone" else r[f"get_ratio_{m}"]
            pr = 1.0 if m == "alone" else r[f"put_ratio_{m}"]
            print(f"{i:>5} {m:>12} {x['get_per_s']:>8.0f} {gr:>6.2f} {x['put_per_s']:>8.0f} {pr:>6.2f} "
                  f"{x['put_worst_ms']:>12.1f} {x.get('backups', 0):>8} {x.get('backup_bytes', 0) / 1e6:>7.0f} "
                  f"{x['load_avg']:>5.1f}")
    print(f"median ratios to the run alone: back to back GET {result['median_get_ratio_back_to_back']:.2f} "
          f"PUT {result['median_put_ratio_back_to_back']:.2f}; paced ({args.paced_mb_s:g} MB/s) GET "
          f"{result['median_get_ratio_paced']:.2f} PUT {result['median_put_ratio_paced']:.2f}")
    p = result["writer_cut_pauses"]
    print(f"writer pause per cut: {p['count']} cuts, median {p['median_us']} us, max {p['max_us']} us "
          f"(kingx_backup_cut_max_seconds {result['writer_cut_max_ms']:.3f} ms); {len(rounds)} rounds in "
          f"{result['minutes']:.1f} min; cpus {result['cpus']}, load {result['load_avg_end']}")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "result.json"), "w") as f:
            json.dump(result, f, indent=1)
    return 0 if rounds else 1


if __name__ == "__main__":
    sys.exit(main())
