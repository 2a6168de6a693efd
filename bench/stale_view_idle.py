#!/usr/bin/env python3
"""An idle server after a burst of overwrites: does the sorted key view come back to one current
entry per key, how long does it take, and what CPU does its thread spend meanwhile?

    bench/stale_view_idle.py --bin ref=/work/ref/s30/kingx --bin new=build-release/src/kingx \\
        --loadgen /work/ref/s30/loadgen --template DIR --keys 100000 --burst-s 10 --min-overwrites 60000 \\
        --idle-s 40 --work /tmp/stale-idle --out bench/results/<dir>/idle.json

DIR is a database of keys "key-<i>", i in [0, --keys) (bench/fill_db), whose key view was built
once (the script starts the first binary on it until it lists, unless DIR/keys exists). For each
binary in turn (its own copy of DIR; 2 workers, 127.0.0.1, an ephemeral port, default settings
and --server-arg):
  1. waits until it lists and its view is quiet (no run written, no merge, no entry repaired for
     3 s), then times a full listing through the API (pages of 1,000, following the cursor);
  2. bursts of PUTs of random keys of DIR, --burst-s each (loadgen, --conns connections, 100-byte
     values), until --min-overwrites were left unrecorded (at most 10 bursts): nearly every PUT
     overwrites a live key, which the view records no entry for;
  3. idle for --idle-s: every second, the view's counters from /metrics and the CPU time of the
     writer process's key view thread ("kingx-keyview") and of the writer process;
  4. a full listing again.
Reports per binary: the listing's keys/s and page p50 before and after, when the view last
repointed an entry (seconds after the burst), the entries repaired and merges during the idle
time, and the key view thread's CPU seconds then. Timed figures on a busy machine are preliminary:
the 1-minute load is recorded with each. Standard library only.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness.listing import loadavg, start_server, stop_server, wait_listing  # noqa: E402
from harness.procs import children, metrics as all_metrics  # noqa: E402

COUNTERS = ("kingx_keyspace_merges_total", "kingx_keyspace_entries_repaired_total",
            "kingx_keyspace_runs_written_total", "kingx_keyspace_overwrites_unrecorded_total",
            "kingx_keyspace_run_entries")
CURSOR = re.compile(rb'"cursor":"([^"]*)"')


def metrics(port):
    m = all_metrics(port)
    return {k: m[k] for k in COUNTERS}


def full_listing(port):
    """(keys/s, page p50 in ms, keys) of one listing of every key in pages of 1,000."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    cursor, keys, times = None, 0, []
    t0 = time.monotonic()
    while True:
        target = "/v1/kv/?limit=1000" + (f"&cursor={cursor}" if cursor else "")
        t = time.monotonic()
        conn.request("GET", target)
        resp = conn.getresponse()
        body = resp.read()
        times.append(time.monotonic() - t)
        if resp.status != 200:
            raise RuntimeError(f"listing: status {resp.status}: {body[:200]!r}")
        keys += body.count(b'{"key":')
        m = CURSOR.search(body)
        if not m:
            break
        cursor = m.group(1).decode()
    elapsed = time.monotonic() - t0
    conn.close()
    times.sort()
    return keys / elapsed, times[len(times) // 2] * 1000, keys


def cpu_s(path):
    """utime + stime of /proc/<pid>[/task/<tid>]/stat, in seconds."""
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_named(pid, comm):
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            if f.read().strip() == comm:
                return f"/proc/{pid}/task/{tid}/stat"
    return None


def wait_quiet(port, quiet_s, timeout_s):
    last, since, t0 = None, time.monotonic(), time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        m = metrics(port)
        if m != last:
            last, since = m, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return m
        time.sleep(0.5)
    raise RuntimeError("the key view did not settle")


def run_one(name, kingx, args):
    data = os.path.join(args.work, name)
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(args.template, data, symlinks=True)
    proc, port, err = start_server(kingx, data, args.work, name, args.server_arg)
    out = {"bin": kingx, "load_start": loadavg()}
    try:
        wait_listing([(name, proc, port, err)], 3600)
        writer = children(proc.pid, ("kingx-writer",))[0]
        keyview = thread_named(writer, "kingx-keyview")
        wait_quiet(port, 3, 600)
        out["before"] = dict(zip(("keys_per_s", "page_p50_ms", "keys"), full_listing(port)))
        m0 = metrics(port)
        unrecorded = "kingx_keyspace_overwrites_unrecorded_total"
        out["burst"] = {"requests_ok": 0, "bursts": 0}
        while out["burst"]["bursts"] < 10:
            lg = subprocess.run([args.loadgen, "--port", str(port), "--conns", str(args.conns), "--duration",
                                 str(args.burst_s), "--method", "PUT", "--path", "/v1/kv/key-", "--keys",
                                 str(args.keys), "--body-bytes", "100", "--seed", str(out["burst"]["bursts"] + 1)],
                                capture_output=True, text=True, timeout=args.burst_s + 120)
            line = next((x for x in lg.stdout.splitlines() if x.startswith("LOADGEN ")), None)
            out["burst"]["requests_ok"] += json.loads(line[8:]).get("requests_ok", 0) if line else 0
            out["burst"]["bursts"] += 1
            if metrics(port)[unrecorded] - m0[unrecorded] >= args.min_overwrites:
                break
        t_burst = time.monotonic()
        m1 = metrics(port)
        out["burst"]["overwrites_unrecorded"] = m1[unrecorded] - m0[unrecorded]
        kv0, w0 = cpu_s(keyview), cpu_s(f"/proc/{writer}/stat")
        samples, last_change, prev = [], None, m1
        while time.monotonic() - t_burst < args.idle_s:
            time.sleep(1)
            m = metrics(port)
            t = time.monotonic() - t_burst
            if m["kingx_keyspace_entries_repaired_total"] != prev["kingx_keyspace_entries_repaired_total"] or \
                    m["kingx_keyspace_merges_total"] != prev["kingx_keyspace_merges_total"]:
                last_change = t
            prev = m
            samples.append({"t_s": round(t, 1), "keyview_cpu_s": round(cpu_s(keyview) - kv0, 3), **m})
        out["idle"] = {
            "seconds": args.idle_s,
            "last_repoint_after_burst_s": last_change,
            "merges": prev["kingx_keyspace_merges_total"] - m1["kingx_keyspace_merges_total"],
            "entries_repaired": (prev["kingx_keyspace_entries_repaired_total"]
                                 - m1["kingx_keyspace_entries_repaired_total"]),
            "keyview_thread_cpu_s": round(cpu_s(keyview) - kv0, 3),
            "writer_process_cpu_s": round(cpu_s(f"/proc/{writer}/stat") - w0, 3),
            "samples": samples,
        }
        out["after"] = dict(zip(("keys_per_s", "page_p50_ms", "keys"), full_listing(port)))
    finally:
        stop_server(proc)
        out["load_end"] = loadavg()
        shutil.rmtree(data, ignore_errors=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", action="append", required=True, help="NAME=PATH of a kingx binary")
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--template", required=True)
    ap.add_argument("--keys", type=int, required=True)
    ap.add_argument("--burst-s", type=float, default=10)
    ap.add_argument("--min-overwrites", type=int, default=0,
                    help="bursts (at most 10) until the view left this many overwrites unrecorded")
    ap.add_argument("--server-arg", action="append", default=[], help="one more kingx argument (repeatable)")
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--idle-s", type=float, default=40)
    ap.add_argument("--work", default="/tmp/stale-view-idle")
    ap.add_argument("--out")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    bins = [b.split("=", 1) for b in args.bin]
    if not os.path.isdir(os.path.join(args.template, "keys")):
        proc, port, err = start_server(bins[0][1], args.template, args.work, "template")
        try:
            wait_listing([("template", proc, port, err)], 3600)
            wait_quiet(port, 3, 600)
        finally:
            stop_server(proc)
    results = {"cpus": os.cpu_count(), "runs": {}}
    for name, kingx in bins:
        r = run_one(name, kingx, args)
        results["runs"][name] = r
        idle = r["idle"]
        print(f"{name}: listing before {r['before']['keys_per_s']:.0f} keys/s (page p50 "
              f"{r['before']['page_p50_ms']:.2f} ms), after {args.idle_s:.0f} s idle "
              f"{r['after']['keys_per_s']:.0f} keys/s (page p50 {r['after']['page_p50_ms']:.2f} ms); burst "
              f"{r['burst'].get('requests_ok')} PUTs, {r['burst']['overwrites_unrecorded']:.0f} unrecorded; idle: "
              f"{idle['merges']:.0f} merges, {idle['entries_repaired']:.0f} entries repaired, last at "
              f"{idle['last_repoint_after_burst_s']} s, key view thread {idle['keyview_thread_cpu_s']} s CPU, "
              f"writer {idle['writer_process_cpu_s']} s; load {r['load_start']} -> {r['load_end']}", flush=True)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
