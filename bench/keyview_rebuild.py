#!/usr/bin/env python3
"""The writer's memory and CPU during a key view rebuild, two kingx binaries side by side.

    bench/keyview_rebuild.py --kingx build-release/src/kingx --baseline /work/ref/s19/kingx \
        --data /var/tmp/some-db [--rounds 3] [--scratch /var/tmp/kingx-kvrebuild] [--out DIR]

Each round starts each binary once, in alternating order, on a fresh copy of --data
(`cp -a` into --scratch, never the original) whose keys/ directory is removed, so the server
rebuilds its sorted key view from the segments. The server (2 workers) is started on
127.0.0.1 with an ephemeral port; the script waits for /readyz 200 and then for
`kingx_keyspace_ready 1` in /metrics (both bounded: --timeout seconds), and reads the writer's
/proc status (VmHWM, VmRSS, RssAnon, RssFile, RssShmem) and CPU time (user + system) at both
moments, and the CPU time of the writer's key view thread (kingx-keyview: the rebuild's reads
and sorting) at the end. With --smaps, the writer's five largest file mappings by Rss after the rebuild are
recorded too. The server is stopped with TERM (by its PID) and the copy removed.

Figures are ratios kingx / baseline per round, and their medians. The load average before each
start is recorded: figures taken on a busy machine are preliminary.

Output: a table on stdout and result.json in --out. Standard library only.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import restart_time as rt  # noqa: E402  (free_port, readyz, writer_pid, loadavg)

STATUS_KEYS = ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem")


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key = line.split(":")[0]
            if key in STATUS_KEYS:
                out[key] = int(line.split()[1])  # KiB
    return out


def cpu_s(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_s(pid, name):
    """CPU seconds (user, system) of pid's threads called name (the key view's: kingx-keyview)."""
    user = system = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                head, fields = f.read().rsplit(")", 1)
        except OSError:
            continue
        if head.split("(", 1)[1] != name:
            continue
        fields = fields.split()
        user += int(fields[11])
        system += int(fields[12])
    tick = os.sysconf("SC_CLK_TCK")
    return user / tick, system / tick


def top_file_mappings(pid, n=5):
    """The n file mappings of pid with the most Rss: [(KiB, path)]."""
    found = {}
    current = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and len(parts) >= 5 and not line.startswith(("Rss", "Size")):
                current = parts[5] if len(parts) >= 6 and parts[5].startswith("/") else None
            elif parts[0] == "Rss:" and current:
                found[current] = found.get(current, 0) + int(parts[1])
    return sorted(((kib, path) for path, kib in found.items()), reverse=True)[:n]


def metric(port, name):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            buf = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                buf += d
    except OSError:
        return None
    for line in buf.decode(errors="replace").splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def one_run(binary, data, scratch, timeout_s, smaps):
    copy = os.path.join(scratch, "db")
    shutil.rmtree(copy, ignore_errors=True)
    subprocess.run(["cp", "-a", data, copy], check=True)
    shutil.rmtree(os.path.join(copy, "keys"), ignore_errors=True)
    load = rt.loadavg()
    port = rt.free_port()
    t0 = time.time()
    proc = subprocess.Popen([binary, "--listen", f"127.0.0.1:{port}", "--data", copy, "--workers", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run = {"binary": binary, "load_before": load}
    try:
        while not rt.readyz(port):
            if time.time() - t0 > timeout_s or proc.poll() is not None:
                raise RuntimeError(f"{binary}: no /readyz 200 within {timeout_s} s")
            time.sleep(0.01)
        writer = rt.writer_pid(proc.pid)
        run["ready_s"] = round(time.time() - t0, 3)
        run["ready_cpu_s"] = cpu_s(writer)
        run["ready"] = proc_status(writer)
        while metric(port, "kingx_keyspace_ready") != 1.0:
            if time.time() - t0 > timeout_s or proc.poll() is not None:
                raise RuntimeError(f"{binary}: key view not ready within {timeout_s} s")
            time.sleep(0.1)
        run["keyspace_ready_s"] = round(time.time() - t0, 3)
        run["keyspace_cpu_s"] = cpu_s(writer)
        run["keyview_thread_user_s"], run["keyview_thread_sys_s"] = thread_cpu_s(writer, "kingx-keyview")
        run["after"] = proc_status(writer)
        run["rebuilds"] = metric(port, "kingx_keyspace_rebuilds_total")
        if smaps:
            run["top_file_mappings_kib"] = top_file_mappings(writer)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(copy, ignore_errors=True)
    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kingx", required=True)
    ap.add_argument("--baseline", required=True)
    ap.add_argument("--data", required=True, help="an existing database (copied each run, never changed)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scratch", default="/var/tmp/kingx-kvrebuild")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--smaps", action="store_true")
    ap.add_argument("--out")
    a = ap.parse_args()
    os.makedirs(a.scratch, exist_ok=True)
    rounds = []
    for r in range(a.rounds):
        order = [("new", a.kingx), ("old", a.baseline)]
        if r % 2:
            order.reverse()
        got = {}
        for label, binary in order:
            got[label] = one_run(binary, a.data, a.scratch, a.timeout, a.smaps)
            g = got[label]
            print(f"round {r} {label} load {g['load_before']:.2f} ready {g['ready_s']} s, view {g['keyspace_ready_s']} s; "
                  f"writer cpu {g['keyspace_cpu_s']:.2f} s (key view thread {g['keyview_thread_user_s']:.2f} user "
                  f"{g['keyview_thread_sys_s']:.2f} sys); after: VmHWM {g['after']['VmHWM'] / 1024:.1f} "
                  f"VmRSS {g['after']['VmRSS'] / 1024:.1f} RssFile {g['after']['RssFile'] / 1024:.1f} MiB",
                  flush=True)
        rounds.append(got)

    def ratios(f):
        return [f(x["new"]) / f(x["old"]) for x in rounds if f(x["old"])]

    figures = {
        "VmHWM after the rebuild": ratios(lambda x: x["after"]["VmHWM"]),
        "VmRSS after the rebuild": ratios(lambda x: x["after"]["VmRSS"]),
        "RssFile after the rebuild": ratios(lambda x: x["after"]["RssFile"]),
        "writer CPU, exec to view ready": ratios(lambda x: x["keyspace_cpu_s"]),
        "writer CPU of the rebuild (view ready - /readyz)": ratios(lambda x: x["keyspace_cpu_s"] - x["ready_cpu_s"]),
        "key view thread CPU (user + sys) at view ready": ratios(lambda x: x["keyview_thread_user_s"] + x["keyview_thread_sys_s"]),
        "key view thread system CPU at view ready": ratios(lambda x: x["keyview_thread_sys_s"]),
        "exec to view ready (wall)": ratios(lambda x: x["keyspace_ready_s"]),
    }
    print("\nkingx / baseline, per round and median:")
    for name, values in figures.items():
        print(f"  {name}: median {statistics.median(values):.3f} ({' '.join(f'{v:.3f}' for v in values)})")
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "result.json"), "w") as f:
            json.dump({"argv": sys.argv, "cpus": os.cpu_count(), "rounds": rounds,
                       "ratios": {k: v for k, v in figures.items()}}, f, indent=1)


if __name__ == "__main__":
    main()
