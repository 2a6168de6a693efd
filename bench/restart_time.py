#!/usr/bin/env python3
"""Restart time: how long kingx takes from exec to /readyz 200 on an existing
database of N keys (default 10M keys of 100 B), side by side with another
binary (the previous main) in the same run.

    bench/restart_time.py --kingx build/src/kingx --baseline /tmp/old/kingx \
        [--keys 10000000] [--value-bytes 100] [--rounds 3] [--dir /var/tmp/kingx-restart] \
        [--fill-db build/bench/fill_db] [--cold] [--out bench/results/DATE-restart]
    bench/restart_time.py --kingx ... --baseline ... --data /var/tmp/some-db [--rounds 5] [--out ...]

The database is written once with fill_db (engine defaults, so the server
opens it as its own) and kept in --dir for later runs (delete it to refill);
--data names an existing database instead (used as it is, never filled).
Each round starts each binary once, in alternating order, on the same
directory: a fresh master (shared memory and index created from nothing,
hint files replayed, the active segment scanned), 2 workers, sync=always.
Time is measured from the exec to the first /readyz 200 (polled every 5 ms),
and the writer's own "database ... open in N ms" log line is reported too,
with the writer's peak resident memory at that moment (VmHWM: what its open
took at most, the index pages it touched included) and its CPU time.
The server is then stopped with TERM. With --cold the page cache is dropped
before each start (root only; it slows every other process on the machine).
Load average and CPU count are recorded with every run: figures taken on a
busy machine are marked so.

Output: a table on stdout and result.json in --out. Standard library only.
"""

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import procs  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def readyz(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
            s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = s.recv(64)
            return data.startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def drop_caches():
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def writer_stat(master_pid):
    """(pid, stat fields after the command name) of the master's kingx-writer child, or None."""
    for pid, data in procs.proc_stats():
        comm = data[data.index("(") + 1:data.rindex(")")]
        fields = data[data.rindex(")") + 2:].split()
        if comm == "kingx-writer" and int(fields[1]) == master_pid:
            return pid, fields
    return None


def writer_pid(master_pid):
    """The pid of the master's kingx-writer child, or None."""
    found = writer_stat(master_pid)
    return found[0] if found else None


def writer_hwm_kib(master_pid):
    """The writer's peak resident set (VmHWM, KiB), or None."""
    pid = writer_pid(master_pid)
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def writer_cpu_s(master_pid):
    """CPU seconds (user + system) the master's kingx-writer child has used, or None.
    Less sensitive than wall time to other processes sharing the CPUs."""
    found = writer_stat(master_pid)
    if found is None:
        return None
    fields = found[1]
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_and_time(binary, data_dir, work, timeout_s):
    """Starts binary on data_dir; returns (seconds to /readyz 200, writer's open ms or None,
    writer CPU seconds at that moment or None, writer VmHWM KiB at that moment or None)."""
    port = free_port()
    err = os.path.join(work, "error.log")
    if os.path.exists(err):
        os.unlink(err)
    argv = [binary, "--listen", f"127.0.0.1:{port}", "--data", data_dir, "--workers", "2",
            "--error-log", err, "--access-log", "off", "--pid", os.path.join(work, "kingx.pid")]
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        while True:
            if readyz(port):
                ready_s = time.monotonic() - t0
                cpu_s = writer_cpu_s(proc.pid)
                hwm_kib = writer_hwm_kib(proc.pid)
                break
            if proc.poll() is not None:
                raise RuntimeError(f"{binary} exited with {proc.returncode}: " + open(err).read()[-2000:])
            if time.monotonic() - t0 > timeout_s:
                raise RuntimeError(f"{binary} not ready after {timeout_s} s")
            time.sleep(0.005)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()
    open_ms = None
    try:
        m = re.search(r"open in (\d+) ms", open(err).read())
        open_ms = int(m.group(1)) if m else None
    except OSError:
        pass
    return ready_s, open_ms, cpu_s, hwm_kib


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kingx", default=os.environ.get("KINGX_BIN", "build/src/kingx"))
    ap.add_argument("--baseline", help="another kingx binary measured side by side (the previous main)")
    ap.add_argument("--fill-db", default="build/bench/fill_db")
    ap.add_argument("--keys", type=int, default=10_000_000)
    ap.add_argument("--value-bytes", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", default="/var/tmp/kingx-restart")
    ap.add_argument("--data", help="an existing database to open (instead of one filled in --dir)")
    ap.add_argument("--cold", action="store_true", help="drop the page cache before each start (root)")
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--out")
    a = ap.parse_args()

    data = a.data or os.path.join(a.dir, f"db-{a.keys}x{a.value_bytes}")
    if a.data and not os.path.isdir(data):
        sys.exit(f"--data {data}: no such directory")
    if not os.path.isdir(data):
        os.makedirs(a.dir, exist_ok=True)
        print(f"filling {data} with {a.keys} keys of {a.value_bytes} B ...", flush=True)
        t = time.monotonic()
        subprocess.run([a.fill_db, "--data", data + ".tmp", "--keys", str(a.keys),
                        "--value-bytes", str(a.value_bytes)], check=True)
        os.rename(data + ".tmp", data)
        print(f"filled in {time.monotonic() - t:.1f} s", flush=True)

    bins = [("kingx", a.kingx)] + ([("baseline", a.baseline)] if a.baseline else [])
    # One start of each first, unmeasured: it makes the writer seal and hint
    # the segment the fill left active, so every measured start sees the same files.
    work = tempfile.mkdtemp(prefix="kingx-restart-")
    for _, b in bins:
        start_and_time(b, data, work, a.timeout)
    runs = []
    for rnd in range(a.rounds):
        order = bins if rnd % 2 == 0 else list(reversed(bins))
        for name, b in order:
            if a.cold:
                drop_caches()
            load = loadavg()
            ready_s, open_ms, cpu_s, hwm_kib = start_and_time(b, data, work, a.timeout)
            runs.append({"round": rnd, "server": name, "binary": b, "ready_s": round(ready_s, 3),
                         "writer_open_ms": open_ms, "writer_cpu_s": cpu_s, "writer_vmhwm_kib": hwm_kib,
                         "loadavg_1m_before": load})
            print(f"round {rnd} {name:9s} ready in {ready_s:7.3f} s (writer open {open_ms} ms, "
                  f"writer CPU {cpu_s} s, writer VmHWM {hwm_kib} KiB), load {load:.2f}", flush=True)

    def median(xs):
        xs = sorted(xs)
        return xs[len(xs) // 2] if xs else None

    summary = {}
    for name, _ in bins:
        summary[name] = {"ready_s_median": median([r["ready_s"] for r in runs if r["server"] == name]),
                         "writer_open_ms_median": median([r["writer_open_ms"] for r in runs
                                                          if r["server"] == name and r["writer_open_ms"]]),
                         "writer_cpu_s_median": median([r["writer_cpu_s"] for r in runs
                                                        if r["server"] == name and r["writer_cpu_s"] is not None]),
                         "writer_vmhwm_kib_median": median([r["writer_vmhwm_kib"] for r in runs
                                                            if r["server"] == name and r["writer_vmhwm_kib"]])}
    if a.baseline:
        ratios = []
        for rnd in range(a.rounds):
            k = [r["ready_s"] for r in runs if r["round"] == rnd and r["server"] == "kingx"]
            bl = [r["ready_s"] for r in runs if r["round"] == rnd and r["server"] == "baseline"]
            ratios.append(k[0] / bl[0])
        summary["ready_ratio_kingx_over_baseline_median"] = round(median(ratios), 3)
        # Per round, kingx / baseline: the writer's open time, CPU and peak memory.
        for field in ("writer_open_ms", "writer_cpu_s", "writer_vmhwm_kib"):
            per_round = []
            for rnd in range(a.rounds):
                k = [r[field] for r in runs if r["round"] == rnd and r["server"] == "kingx"]
                bl = [r[field] for r in runs if r["round"] == rnd and r["server"] == "baseline"]
                if k and bl and k[0] and bl[0]:
                    per_round.append(round(k[0] / bl[0], 3))
            summary[f"{field}_ratio_kingx_over_baseline_rounds"] = per_round
    segments = sorted((f, os.path.getsize(os.path.join(data, f))) for f in os.listdir(data) if f.endswith(".kxd"))
    result = {"data": data, "keys": None if a.data else a.keys, "value_bytes": None if a.data else a.value_bytes,
              "segments_at_end": segments, "cold": a.cold, "cpus": os.cpu_count(),
              "command": " ".join(sys.argv), "runs": runs, "summary": summary}
    print(json.dumps(summary, indent=2))
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "result.json"), "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
