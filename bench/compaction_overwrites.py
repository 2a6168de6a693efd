#!/usr/bin/env python3
"""Compaction under a pure-overwrite load: its write amplification, its CPU per PUT, and why it took
each segment it copied.

For each binary (in interleaved rounds), it starts `kingx --sync always --log-level debug` on a
private copy of --template (a database kingx has opened once: fill_db's keys "key-<i>", so that every
PUT overwrites), drives `wrk -t1 -cN` PUTs of 100 B over --keys keys for --duration seconds, and
reads /metrics before and after. Per run:
  puts, value bytes PUT (kingx_writer_bytes_total) and record bytes the writer appended (what the
  live and dead bytes grew by, plus kingx_compaction_reclaimed_bytes_total), compaction's bytes written and read (kingx_compaction_*_bytes_total),
  write amplification (written / value bytes and / record bytes), passes, write stalls,
  the CPU per PUT of the writer's threads (kingx-compact, the loop thread #0, kingx-keyview; user +
  kernel from /proc/PID/task/TID/stat, in microseconds), and from the debug lines of the passes
  (engine/compaction.cc: "inputs ID (REASON: live L dead D)"): per pick reason, the inputs and the
  live bytes they copied, and the dead fraction of each input when picked (min / median / max).
A line of JSON per run on stdout and in OUT/runs.jsonl; wrk's output and each server's error log in
OUT/raw/. Every process it starts is stopped by its PID.

Usage: bench/compaction_overwrites.py --bin main=build-release/src/kingx --bin ref=/work/ref/s29/kingx
         --template DIR [--conns 100] [--duration 60] [--rounds 1] [--keys 1000000] [--out DIR]
Python standard library only.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import procs  # noqa: E402

LUA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lua", "kv.lua")
INPUT = re.compile(r"(\d+) \(([a-z-]+): live (\d+) dead (\d+)")


def thread_cpu(master_pid):
    """{thread name: CPU seconds} of the writer process's threads (the loop thread as "#0")."""
    ticks = os.sysconf("SC_CLK_TCK")
    writers = procs.children(master_pid, ("kingx-writer",))
    out = {}
    for pid in writers:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/stat") as f:
                    st = f.read()
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    comm = f.read().strip()
            except OSError:
                continue
            fields = st[st.rindex(")") + 2:].split()
            name = "#0" if int(tid) == pid else comm
            out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return out


def picks(log_path, since_offset):
    """The inputs of the passes logged after since_offset: [(reason, live, dead)]."""
    out = []
    with open(log_path, errors="replace") as f:
        f.seek(since_offset)
        for line in f:
            if "compaction:" not in line or "inputs" not in line:
                continue
            for m in INPUT.finditer(line.split("inputs", 1)[1]):
                out.append((m.group(2), int(m.group(3)), int(m.group(4))))
    return out


def run_one(label, binary, a, out, rnd):
    work = tempfile.mkdtemp(prefix="wloop-cow-", dir=a.tmp)
    try:
        data = os.path.join(work, "data")
        shutil.copytree(a.template, data)
        port = procs.free_port()
        log = os.path.join(out, "raw", f"r{rnd}-{label}-err.log")
        argv = [binary, "--listen", f"127.0.0.1:{port}", "--data", data, "--workers", "1", "--sync", "always",
                "--access-log", "off", "--log-level", "debug", "--error-log", log] + a.args
        p = procs.Proc("kingx", argv, os.path.join(work, "kingx.log"))
        try:
            procs.wait_http_ok(port, "/readyz", 120, p)
            before = procs.metrics(port)
            cpu0 = thread_cpu(p.pid)
            offset = os.path.getsize(log)
            raw = os.path.join(out, "raw", f"r{rnd}-{label}-wrk.txt")
            wrk = ["wrk", "-t1", f"-c{a.conns}", f"-d{a.duration}s", "--timeout", "10s", "-s", LUA,
                   f"http://127.0.0.1:{port}/", "--", "keyp=key-", f"nkeys={a.keys}", "size=100",
                   "put_prefix=/v1/kv/", "putfrac=1"]
            r = subprocess.run(wrk, capture_output=True, text=True, timeout=a.duration + 60)
            with open(raw, "w") as f:
                f.write("$ " + " ".join(wrk) + "\n" + r.stdout + r.stderr)
            time.sleep(1.5)  # a pass's counts are published within a second of its end
            after = procs.metrics(port)
            cpu1 = thread_cpu(p.pid)
        finally:
            p.stop()
        d = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        puts = d.get("kingx_writer_records_total", 0) or float(re.search(r"(\d+) requests in", r.stdout).group(1))
        value_bytes = d.get("kingx_writer_bytes_total", 0)
        # The records the writer appended: what the segments gained, plus what compaction took away
        # (segment files deleted less written; their headers and trailers are noise here).
        record_bytes = (d.get("kingx_engine_live_bytes", 0) + d.get("kingx_engine_dead_bytes", 0) +
                        d.get("kingx_compaction_reclaimed_bytes_total", 0))
        written = d.get("kingx_compaction_written_bytes_total", 0)
        row = {"round": rnd, "bin": label, "conns": a.conns, "seconds": a.duration, "puts": int(puts),
               "value_mb": round(value_bytes / 1e6, 1), "record_mb": round(record_bytes / 1e6, 1),
               "compaction_written_mb": round(written / 1e6, 1),
               "compaction_read_mb": round(d.get("kingx_compaction_read_bytes_total", 0) / 1e6, 1),
               "wa_per_value_byte": round(written / value_bytes, 3) if value_bytes else None,
               "wa_per_record_byte": round(written / record_bytes, 3) if record_bytes else None,
               "passes": int(d.get("kingx_compaction_passes_total", 0)),
               "segments_written": int(d.get("kingx_compaction_segments_written_total", 0)),
               "segments_deleted": int(d.get("kingx_compaction_segments_deleted_total", 0)),
               "write_stalls": int(d.get("kingx_compaction_write_stalls_total", 0)),
               "stall_s": round(d.get("kingx_compaction_write_stall_seconds_total", 0), 3),
               "live_mb_end": round(after.get("kingx_engine_live_bytes", 0) / 1e6, 1),
               "dead_mb_end": round(after.get("kingx_engine_dead_bytes", 0) / 1e6, 1)}
        for name in sorted(set(cpu0) | set(cpu1)):
            row[f"cpu_us_per_put_{name}"] = round((cpu1.get(name, 0) - cpu0.get(name, 0)) / puts * 1e6, 3)
        by = {}
        for reason, live, dead in picks(log, offset):
            e = by.setdefault(reason, {"inputs": 0, "copied_mb": 0.0, "dead_fractions": []})
            e["inputs"] += 1
            e["copied_mb"] += live / 1e6
            e["dead_fractions"].append(dead / (live + dead) if live + dead else 0.0)
        for reason, e in by.items():
            f = sorted(e["dead_fractions"])
            row[f"pick_{reason}"] = {"inputs": e["inputs"], "copied_mb": round(e["copied_mb"], 1),
                                     "dead_fraction_min": round(f[0], 3),
                                     "dead_fraction_median": round(statistics.median(f), 3),
                                     "dead_fraction_max": round(f[-1], 3)}
        row["uptime"] = open("/proc/loadavg").read().split()[:3]
        return row
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", action="append", required=True, help="LABEL=PATH")
    ap.add_argument("--template", required=True)
    ap.add_argument("--conns", type=int, default=100)
    ap.add_argument("--duration", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--args", default="", help="more kingx arguments, split at spaces")
    ap.add_argument("--tmp", default="/tmp")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    a.args = a.args.split()
    out = a.out or tempfile.mkdtemp(prefix="compaction-overwrites-")
    os.makedirs(os.path.join(out, "raw"), exist_ok=True)
    bins = [b.split("=", 1) for b in a.bin]
    with open(os.path.join(out, "runs.jsonl"), "a") as f:
        for rnd in range(1, a.rounds + 1):
            for label, path in bins:
                row = run_one(label, path, a, out, rnd)
                line = json.dumps(row)
                print(line, flush=True)
                f.write(line + "\n")
    print(f"results in {out}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
