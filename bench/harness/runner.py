"""One measured run of one cell: wait for an idle machine, snapshot CPU, run wrk, snapshot again.

CPU accounting per run (perf.md's method): the server's processes, its backend's processes,
wrk (from wait4's rusage), and "other" = machine busy CPU minus those three. A run is quiet when
other < QUIET_CORES; medians prefer quiet runs.

The server's and backend's CPU is taken twice: utime+stime (clock ticks, comparable with every
earlier result) and the scheduler's run time of every thread (schedstat, exact: the "sched"
figures), which resolves differences of a few percent that tick sampling hides on a 2-core VM.
"""

import json
import os
import subprocess
import time
from datetime import datetime, timezone

from . import sysinfo

QUIET_CORES = 0.15


def parse_wrk_json(text):
    """The dict printed by the Lua done() hook (line 'WRKJSON {...}'), or None."""
    for line in text.splitlines():
        if line.startswith("WRKJSON "):
            try:
                return json.loads(line[len("WRKJSON "):])
            except ValueError:
                return None
    return None


def measure_command(inst, argv, duration_s, raw_path, idle_wait_s, extra_timeout_s=60):
    """Run a load command (argv, lasting duration_s) against the running instance with the CPU
    accounting above; write its raw output (command first) to raw_path. Returns (record, output
    text); the record holds the accounting and 'exit', the caller adds the parsed figures."""
    waited, idle_busy = sysinfo.wait_idle(idle_wait_s) if idle_wait_s > 0 else (0.0, None)
    srv0 = sysinfo.tree_cpu(inst.server_pids())
    bk0 = sysinfo.tree_cpu(inst.backend_pids())
    srv_run0 = sysinfo.tree_run_ns(inst.server_pids())
    bk_run0 = sysinfo.tree_run_ns(inst.backend_pids())
    busy0, steal0 = sysinfo.machine_busy_seconds()
    t0 = time.monotonic()
    started = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    with open(raw_path, "w") as out:
        out.write("$ " + " ".join(argv) + "\n")
        out.flush()
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + duration_s + extra_timeout_s
        status = rusage = None
        while time.monotonic() < deadline:  # bounded wait for wrk
            pid, status, rusage = os.wait4(p.pid, os.WNOHANG)
            if pid == p.pid:
                break
            time.sleep(0.05)
        else:
            p.kill()
            _, status, rusage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t0
    busy1, steal1 = sysinfo.machine_busy_seconds()
    srv_run = sysinfo.run_delta_s(srv_run0, sysinfo.tree_run_ns(inst.server_pids()))
    bk_run = sysinfo.run_delta_s(bk_run0, sysinfo.tree_run_ns(inst.backend_pids()))
    srv = sysinfo.cpu_delta(srv0, sysinfo.tree_cpu(inst.server_pids()))
    bk = sysinfo.cpu_delta(bk0, sysinfo.tree_cpu(inst.backend_pids()))
    wrk_cpu = rusage.ru_utime + rusage.ru_stime
    other = max(0.0, (busy1 - busy0) - srv - bk - wrk_cpu) / wall
    with open(raw_path) as f:
        text = f.read()
    rec = {
        "started": started, "cmd": " ".join(argv), "exit": p.returncode, "wall_s": round(wall, 3),
        "idle_wait_s": round(waited, 1),
        "idle_busy_cores": None if idle_busy is None else round(idle_busy, 3),
        "server_cores": round(srv / wall, 3), "backend_cores": round(bk / wall, 3),
        "wrk_cores": round(wrk_cpu / wall, 3), "other_cores": round(other, 3),
        "steal_cores": round((steal1 - steal0) / wall, 3),
        "server_alive": inst.alive(),
    }
    rec["quiet"] = rec["other_cores"] < QUIET_CORES
    mem = sysinfo.tree_memory(inst.server_pids())
    bmem = sysinfo.tree_memory(inst.backend_pids())
    rec.update({"rss_bytes": mem["rss"], "peak_rss_bytes": mem["hwm"], "pss_bytes": mem["pss"],
                "backend_rss_bytes": bmem["rss"], "backend_peak_rss_bytes": bmem["hwm"],
                "server_cpu_s": srv, "backend_cpu_s": bk,
                "server_sched_s": round(srv_run, 6), "backend_sched_s": round(bk_run, 6)})
    return rec, text


def run_cell(inst, argv, duration_s, raw_path, idle_wait_s, extra_timeout_s=60):
    """Run wrk (argv, lasting duration_s) against the running instance; write its raw output (command first) to
    raw_path. Returns a record dict; record['ok'] is False when wrk failed or printed no summary,
    in which case the figures are absent."""
    rec, text = measure_command(inst, argv, duration_s, raw_path, idle_wait_s, extra_timeout_s)
    srv = rec.pop("server_cpu_s")
    bk = rec.pop("backend_cpu_s")
    sched = rec["server_sched_s"] + rec["backend_sched_s"]
    w = parse_wrk_json(text)
    rec["wrk_exit"] = rec.pop("exit")
    rec["ok"] = rec["wrk_exit"] == 0 and w is not None
    if w is None:
        return rec
    secs = w["duration_us"] / 1e6
    reqs = w["requests"]
    errors = w["err_connect"] + w["err_read"] + w["err_write"] + w["err_status"]
    cpu = srv + bk
    rec.update({
        "requests": reqs, "rps": round(reqs / secs, 1) if secs > 0 else 0.0,
        "bytes": w["bytes"],
        "p50_ms": w["p50_us"] / 1000, "p90_ms": w["p90_us"] / 1000,
        "p99_ms": w["p99_us"] / 1000, "p999_ms": w["p999_us"] / 1000,
        "max_ms": w["lat_max_us"] / 1000, "mean_ms": round(w["lat_mean_us"] / 1000, 3),
        "errors": {"connect": w["err_connect"], "read": w["err_read"], "write": w["err_write"],
                   "status": w["err_status"], "timeout": w["err_timeout"]},
        "errors_total": errors, "timeouts": w["err_timeout"],
        "cpu_us_per_req": round(cpu * 1e6 / reqs, 2) if reqs else None,
        "req_per_cpu_s": round(reqs / cpu, 1) if cpu > 0 else None,
        "sched_us_per_req": round(sched * 1e6 / reqs, 3) if reqs else None,
        "req_per_sched_s": round(reqs / sched, 1) if sched > 0 else None,
    })
    return rec
