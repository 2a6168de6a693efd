#!/usr/bin/env python3
"""What uploads that hold or wait for the body budget cost everyone else: a small PUT's answer beside
slow uploads, and the worker's wake-ups while uploads wait.

Cases (each server in turn, shuffled per round; one worker, event model, a fresh process per case):

  slow-body  3,000 slowhttptest -B uploads (each announces 1 MiB and trickles 24 bytes every 5 s),
             as in bench/abuse.py; --settle seconds after they start, a 10-byte PUT on a fresh
             connection: its status and time to answer (bounded by --put-timeout), then a GET of it;
             meanwhile the worker's context switches and CPU over --sample seconds. nginx (with
             --nginx) gets the same abuse; its small PUT goes to a location that reads the body before
             it answers (bench/abuse.py's /up/: it proxies to a closed port, so the answer is 502).
  held       --body-buffer-bytes 1M, one upload that sent 200 KiB of a 900 KiB body and then stalls
             (it holds room for its whole body), and --waiters uploads that sent their head and
             100 KiB and wait for room: the worker's wake-ups per second (voluntary context switches,
             /proc/PID/status) and CPU over --sample seconds with nothing else to do.
  stream-held  --response-buffer-bytes 1M (16 pieces of 64 KiB), 16 GETs of bench/abuse.py's 1 MiB
             compressible value that read nothing (each holds its piece's room while its socket is
             full) and --waiters more that wait for room: the worker's wake-ups and CPU over --sample
             seconds with nothing else to do (kingx only; NAME=BIN:threads runs the thread model).
  arriving   --body-buffer-bytes 1M, --body-spill-bytes 0 (nothing is spilled, so the holders keep
             their room), 8 uploads that sent 60 KiB of a 64 KiB body and stall (their windows hold
             all the windows' room), and --waiters uploads of a 10 KiB body that sent their head and
             1 KiB and wait for room while the rest of their short body may still arrive (their
             sockets are read meanwhile): the worker's wake-ups and CPU over --sample seconds with
             nothing else to do (kingx only; the thread model is the case's point: NAME=BIN:threads).

  bench/budget_wait.py --kingx new=build-release/src/kingx --kingx ref=/work/ref/s21/kingx --nginx \\
      --cases slow-body,held --rounds 2 --out bench/results/DIR/budget-wait
  bench/budget_wait.py --kingx new=BIN --kingx new-threads=BIN:threads --cases stream-held --out ...
  bench/budget_wait.py --kingx new=BIN:threads --kingx ref=REF:threads --cases arriving --out ...

Results: OUT/budget_wait.json (one row per round, case and server, with `uptime` before and after)
and OUT/summary.md. Needs slowhttptest and nginx as bench/abuse.py does. Every process started here
is stopped by its PID.
"""
import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import abuse  # noqa: E402
from harness import procs  # noqa: E402


def uptime():
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def ctx_switches(pid):
    """(voluntary, nonvoluntary) context switches of all of process pid's threads so far (a thread model's
    pool threads wake on their own, not with the main thread)."""
    v = n = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        v += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        n += int(line.split()[1])
        except OSError:
            pass  # the thread ended meanwhile
    return v, n


def sample(pid, seconds):
    """The worker's wake-ups and CPU over `seconds`."""
    v0, n0 = ctx_switches(pid)
    c0 = abuse.proc_cpu_s(pid)
    t0 = time.monotonic()
    time.sleep(seconds)
    v1, n1 = ctx_switches(pid)
    c1 = abuse.proc_cpu_s(pid)
    dt = time.monotonic() - t0
    return {"seconds": round(dt, 2), "voluntary_per_s": round((v1 - v0) / dt, 1),
            "nonvoluntary_per_s": round((n1 - n0) / dt, 1), "cpu_ms_per_s": round((c1 - c0) * 1000 / dt, 2)}


def timed_request(port, method, path, body, timeout_s):
    t0 = time.monotonic()
    try:
        status, resp = procs.http_request(port, method, path, body=body, timeout_s=timeout_s)
    except OSError as e:
        return {"status": None, "error": repr(e), "seconds": round(time.monotonic() - t0, 3)}
    return {"status": status, "seconds": round(time.monotonic() - t0, 3), "body": resp[:160].decode(errors="replace")}


def start_server(spec, workdir, extra):
    name, _, binary = spec
    if binary is not None and binary.endswith(":threads"):
        return abuse.kingx_server(binary[:-len(":threads")], workdir, 1, "threads", list(extra), name=name)
    return abuse.one_worker_server(name, binary, workdir, extra)


def case_slow_body(spec, args, workdir):
    server = start_server(spec, workdir, [])
    row = {}
    try:
        put_path = "/up/small" if spec[1] == "nginx" else "/v1/kv/legit"
        row["put_alone"] = timed_request(server.port, "PUT", put_path, b"0123456789", args.put_timeout)
        sht_args = types.SimpleNamespace(settle=args.settle, duration=args.sample, steady=0,
                                         abuse_conns=args.conns)
        abusers = abuse.start_abuse("slow-body", server, sht_args, workdir)
        try:
            time.sleep(args.settle)
            row["established"] = abuse.established(server.port)
            worker = server.worker_pids()[0]
            row["worker_alone_with_abuse"] = sample(worker, args.sample)
            row["put_during"] = timed_request(server.port, "PUT", put_path, b"0123456789", args.put_timeout)
            if spec[1] != "nginx":
                row["get_during"] = timed_request(server.port, "GET", put_path, None, args.put_timeout)
                row["get_during"]["matches"] = row["get_during"].get("body") == "0123456789"
        finally:
            for p in abusers:
                p.stop()
    finally:
        server.stop()
    return row


def raw_upload(port, path, length, first):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(f"PUT {path} HTTP/1.1\r\nHost: b\r\nContent-Length: {length}\r\n\r\n".encode())
    s.sendall(os.urandom(first))
    return s


def case_waiting(spec, workdir, flags, row, open_socks, args):
    """The held cases' one loop: a kingx with `flags`, open_socks(server) opens the holders and waiters
    (a list of sockets, kept open until the sample is taken), then the worker's wake-ups and CPU over
    --sample with nothing else to do. nginx: None (these budgets are kingx's)."""
    if spec[1] == "nginx":
        return None
    server = start_server(spec, workdir, flags)
    socks = []
    try:
        open_socks(server, socks)
        time.sleep(1)
        worker = server.worker_pids()[0]
        row["worker"] = sample(worker, args.sample)
    finally:
        for s in socks:
            s.close()
        server.stop()
    return row


def case_held(spec, args, workdir):
    def open_socks(server, socks):
        socks.append(raw_upload(server.port, "/v1/kv/holder", 900 << 10, 200 << 10))
        time.sleep(1)
        for i in range(args.waiters):
            socks.append(raw_upload(server.port, f"/v1/kv/w{i}", 900 << 10, 100 << 10))
    return case_waiting(spec, workdir, ["--body-buffer-bytes", "1M", "--body-timeout-ms", "600000"],
                        {"waiters": args.waiters}, open_socks, args)


def case_arriving(spec, args, workdir):
    def open_socks(server, socks):
        for i in range(8):
            socks.append(raw_upload(server.port, f"/v1/kv/holder{i}", 64 << 10, 60 << 10))
        time.sleep(1)
        for i in range(args.waiters):
            socks.append(raw_upload(server.port, f"/v1/kv/w{i}", 10 << 10, 1 << 10))
    return case_waiting(spec, workdir, ["--body-buffer-bytes", "1M", "--body-spill-bytes", "0",
                                        "--body-timeout-ms", "600000"], {"holders": 8, "waiters": args.waiters},
                        open_socks, args)


def stalled_get(port, path):
    """A GET on a socket with a small receive buffer that reads nothing."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(30)
    s.connect(("127.0.0.1", port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: b\r\n\r\n".encode())
    return s


def case_stream_held(spec, args, workdir):
    def open_socks(server, socks):
        for _ in range(16 + args.waiters):
            socks.append(stalled_get(server.port, server.big_z))
    return case_waiting(spec, workdir, ["--response-buffer-bytes", "1M"], {"holders": 16, "waiters": args.waiters},
                        open_socks, args)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kingx", action="append", default=[], help="NAME=BIN")
    ap.add_argument("--nginx", action="store_true")
    ap.add_argument("--cases", default="slow-body,held")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--conns", type=int, default=3000)
    ap.add_argument("--settle", type=float, default=8)
    ap.add_argument("--sample", type=float, default=5)
    ap.add_argument("--waiters", type=int, default=20)
    ap.add_argument("--put-timeout", type=float, default=90)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    abuse.BIG = os.urandom(1 << 20)
    specs = [(n, "kingx", b) for n, b in (k.split("=", 1) for k in args.kingx)]
    if args.nginx:
        specs.append(("nginx", "nginx", None))
    os.makedirs(args.out, exist_ok=True)
    rng = random.Random(args.seed)
    rows = []
    for rnd in range(1, args.rounds + 1):
        for case in args.cases.split(","):
            order = specs[:]
            rng.shuffle(order)
            for spec in order:
                with tempfile.TemporaryDirectory(prefix="budget-wait-") as wd:
                    before = uptime()
                    fn = {"slow-body": case_slow_body, "held": case_held, "stream-held": case_stream_held,
                          "arriving": case_arriving}[case]
                    result = fn(spec, args, wd)
                    if result is None:
                        continue
                    row = {"round": rnd, "case": case, "server": spec[0], "uptime_before": before,
                           "uptime_after": uptime(), **result}
                    print(json.dumps(row), flush=True)
                    rows.append(row)
    with open(os.path.join(args.out, "budget_wait.json"), "w") as f:
        json.dump({"argv": sys.argv, "rows": rows}, f, indent=1)
    lines = ["| round | case | server | small PUT alone | small PUT during | GET during | worker wake-ups/s "
             "(voluntary) | worker CPU ms/s | load before |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        pa, pd, gd = r.get("put_alone", {}), r.get("put_during", {}), r.get("get_during", {})
        w = r.get("worker") or r.get("worker_alone_with_abuse") or {}
        load = r["uptime_before"].split("load average:")[-1].strip()
        lines.append(f"| {r['round']} | {r['case']} | {r['server']} | "
                     f"{pa.get('status', '')} {pa.get('seconds', '')} | {pd.get('status', '')} {pd.get('seconds', '')}"
                     f" | {gd.get('status', '')} {gd.get('seconds', '')} | {w.get('voluntary_per_s', '')} | "
                     f"{w.get('cpu_ms_per_s', '')} | {load} |")
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
