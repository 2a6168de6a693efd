#!/usr/bin/env python3
"""Where a durable PUT's time goes: one kingx per binary, PUT load from wrk, the writer's
counters read from /metrics before and after each run.

For each binary (in interleaved rounds), it starts `kingx --sync always` (or --sync given) on an
empty scratch directory, drives `wrk -t1 -cN` PUTs of 100 B over --keys keys (the first pass
creates them, later passes overwrite), and reports per run:
  req/s, mean latency (wrk), fdatasyncs per second, ops per group commit (batch), ops per
  fdatasync, mean fdatasync time, the share of the run an fdatasync was running, and the
  fdatasyncs a request waited for on average: mean latency x fdatasyncs per second (how many
  fdatasyncs finished while a request was in flight), each kingx process's CPU per request, its
  minor page faults and context switches (all threads) per request, compaction's passes,
  bytes read and written, and write stalls per 100k PUTs; wrk's latency p50 and p99 (lat_p50_us,
  lat_p99_us); with `--args LABEL='--commit-delay-us N'`, the share of group commits the writer
  delayed (delayed_share) and their mean delay (mean_delay_us). With --template DIR, each kingx starts
  on a copy of that preloaded data directory instead of an empty one. Give it a directory kingx has
  opened and closed once (fill_db's output has no keys/ yet): otherwise each server rebuilds the sorted
  key view from every segment, on the writer's keyspace thread, while the first rounds are measured.
Which thread limits the run: for each thread of kingx's processes (/proc/PID/task), its CPU per
request (thr_us_PROCESS/THREAD, the scheduler's exact run time; thr_sys_us_..., its kernel part, in
clock ticks), its sleeps and preemptions per request (vcsw_..., ivcsw_...), the share of
one core it ran (busy_PROCESS/THREAD: 1.0 is a saturated core), of it in the kernel (sys_...),
and the share of the run it was runnable but waited for a core (runq_..., scheduler statistics:
time a commit's chain of wake-ups loses on a busy machine); threads without a name of their own
are keyed by creation order (#0 = the process's main thread); wrk's busy share (busy_wrk) and
the cores the whole machine was busy (busy_machine, every process).
With --perf SECONDS, `perf record -g` samples the writer process during the last run of each
binary (perf's report goes to the output directory); with --perf-serve SECONDS, the serving process
(kingx's worker, nginx's worker: perf-serve-LABEL-cN.data), to set their kernel paths side by side.
With --syscalls, `perf stat` counts, per process (all its threads), during each run: its system calls
by name (sys_PROCESS_NAME per request) and in all (syscalls_all_PROCESS: also those not named), its page
faults (page-faults_PROCESS), the wake-ups it made of other tasks (wakeups_PROCESS:
sched:sched_wakeup fires in the waker), its context switches, the hardware counters of HW_EVENTS that
perf counts on this machine (cycles, instructions, cache and dTLB misses; none on most VMs), what its
writes cost the file system (mark_inode_dirty_PROCESS: writes that changed the file's timestamps, so
that the next fdatasync also writes the inode on ext4 without a journal; rq_issue_PROCESS: block
requests issued; write_inode_PROCESS) and its user and kernel CPU per request
(user_us_... / kern_us_...), and the server's own latency from a request's head to its answer
(server_ms_mean, server_ms_p50: kingx's request histogram, bucket-interpolated).
Per group commit: the workers' wake-ups of the writer (kingx_write_queue_writer_wakes_total).
With --nginx, nginx `return 200` with one worker (PUT: the body read and discarded, as bench/compare's
nginx-return-w1) runs in the same rounds as the ceiling, labelled nginx.

Usage: bench/durable_put_probe.py --bin main=build-release/src/kingx --bin old=/path/kingx
         [--conns 100,1000] [--rounds 3] [--duration 4] [--keys 100000] [--template DIR] [--out DIR]
         [--sync-depth N] [--syscalls] [--nginx]
Python standard library only; every process it starts is stopped by its PID.
"""
import argparse
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import peers, procs  # noqa: E402

LUA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lua", "kv.lua")


def metrics(port):
    status, body = procs.http_request(port, "GET", "/metrics", timeout_s=10)
    if status != 200:
        raise RuntimeError(f"/metrics -> {status}")
    out = {}
    for line in body.decode().splitlines():
        m = re.match(r"^(kingx_(?:writer|compaction|http_request_duration|write_queue|keyspace)_[a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$",
                     line)
        if m and (not m.group(2) or m.group(1).startswith("kingx_http_request_duration")):
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def _family(master_pid, with_master):
    """(pid, /proc/PID/stat fields after the name, comm) of the master's children (and of the master
    itself when with_master); processes that end while read are skipped."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) != master_pid and not (with_master and int(pid) == master_pid):
                continue
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
        except (OSError, ValueError, IndexError):
            continue
        yield pid, fields, comm


def children_cpu(master_pid, field=None):
    """CPU seconds (user + system, all threads) of the master and each of its children, by
    process name (kingx-writer, kingx-worker, ...; workers summed). With field=7: their minor
    page faults instead (/proc/PID/stat's minflt)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for _, fields, comm in _family(master_pid, True):
        try:
            value = int(fields[field]) if field else (int(fields[11]) + int(fields[12])) / tick
        except (ValueError, IndexError):
            continue
        out[comm] = out.get(comm, 0.0) + value
    return out


def children_switches(master_pid):
    """Context switches (voluntary + involuntary, all threads) of the master's children, by process
    name: how often each process slept and was woken, or was preempted."""
    out = {}
    for pid, _, comm in _family(master_pid, False):
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/status") as f:
                    for line in f:
                        if "ctxt_switches" in line:
                            out[comm] = out.get(comm, 0) + int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return out


def threads_cpu(master_pid):
    """CPU seconds (user + system) of each thread of the master's children, keyed
    "process/thread" by their names (threads of one name summed; a thread without a name of its
    own by its rank in creation order, #0 the process's first): with the wall time of a run
    this says which thread was busy all along (a saturated core) and which waited."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid, _, comm in _family(master_pid, False):
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for rank, tid in enumerate(sorted(tids, key=int)):
            try:
                with open(f"/proc/{pid}/task/{tid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    name = f.read().strip()
            except (OSError, ValueError):
                continue
            # Unnamed threads carry the process's name: told apart by creation order (#0 = main).
            key = f"{comm}/{name}" if name != comm else f"{comm}/#{rank}"
            out[key] = out.get(key, 0.0) + (int(fields[11]) + int(fields[12])) / tick
            out["sys:" + key] = out.get("sys:" + key, 0.0) + int(fields[12]) / tick
            try:  # nanoseconds run (exact) and runnable but waiting for a CPU (scheduler statistics)
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    run_ns, wait_ns = f.read().split()[:2]
                out["run:" + key] = out.get("run:" + key, 0.0) + int(run_ns) / 1e9
                out["runq:" + key] = out.get("runq:" + key, 0.0) + int(wait_ns) / 1e9
            except (OSError, ValueError, IndexError):
                pass
            try:  # the thread's context switches: it slept (voluntary) or was preempted
                with open(f"/proc/{pid}/task/{tid}/status") as f:
                    for line in f:
                        if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                            k, v = line.split(":")
                            kind = "vcsw:" if k.startswith("vol") else "ivcsw:"
                            out[kind + key] = out.get(kind + key, 0.0) + int(v)
            except (OSError, ValueError):
                pass
    return out


def machine_busy():
    """CPU seconds all cores spent not idle since boot (/proc/stat: every field but idle and iowait)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def writer_pid(master_pid):
    """The writer process: the master's child named so (PR_SET_NAME), else None."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != master_pid:
                continue
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read()
            if "writer" in comm:
                return int(pid)
        except (OSError, ValueError, IndexError):
            continue
    return None


# The system calls --syscalls counts by name (the ones a PUT's path makes, in any of the processes).
SYSCALLS = ("read", "write", "readv", "writev", "recvfrom", "sendto", "recvmsg", "sendmsg", "epoll_wait",
            "epoll_pwait", "epoll_ctl", "poll", "ppoll", "futex", "pwrite64", "pwritev", "pread64", "fdatasync",
            "fsync", "statfs", "fstatfs", "newfstatat", "newfstat", "statx", "accept4", "close", "madvise", "mmap",
            "munmap", "io_uring_enter")


# Hardware counters --syscalls adds where this machine's perf counts them (a VM often does not).
HW_EVENTS = ("cycles", "instructions", "cache-misses", "dTLB-load-misses")


def supported_hw_events():
    """The HW_EVENTS perf stat can count here (asked once, on `true`)."""
    try:
        r = subprocess.run(["perf", "stat", "-x,", "-e", ",".join(HW_EVENTS), "true"], capture_output=True,
                           text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    counted = [line.split(",")[2] for line in r.stderr.splitlines()
               if len(line.split(",")) > 2 and line.split(",")[0][:1].isdigit()]
    return [e for e in HW_EVENTS if e in counted]


# What a group commit's fdatasync costs the file system, counted in the task that causes it: the
# inode's timestamps dirtied by a write (ext4 without a journal then writes the inode's block at the next
# fdatasync, an I/O of its own), block requests issued, inodes written back.
FS_EVENTS = ("ext4:ext4_mark_inode_dirty", "block:block_rq_issue", "writeback:writeback_write_inode")


def start_perf_stat(pid, path, hw_events=()):
    """perf stat of every thread of process pid (system calls by name, wake-ups it made, context
    switches, page faults, task-clock, file-system events and hw_events) until stopped by SIGINT; None
    when perf cannot start."""
    events = (["task-clock", "context-switches", "page-faults", "sched:sched_wakeup", "raw_syscalls:sys_enter"] +
              list(hw_events) + list(FS_EVENTS) + [f"syscalls:sys_enter_{n}" for n in SYSCALLS])
    try:
        return subprocess.Popen(["perf", "stat", "-x,", "-e", ",".join(events), "-p", str(pid), "-o", path],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        return None


def start_perf_record(pid, path, seconds):
    """perf record -g (call graphs, user and kernel) of every thread of process pid for seconds; None
    when perf cannot start."""
    try:
        return subprocess.Popen(["perf", "record", "-g", "-p", str(pid), "-o", path, "--", "sleep", str(seconds)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        return None


def read_perf_stat(path):
    """{event: count} from perf stat -x, output (events perf could not count are left out)."""
    out = {}
    try:
        with open(path) as f:
            for line in f:
                fields = line.strip().split(",")
                if len(fields) > 2 and fields[0] and fields[0][0].isdigit():
                    name = fields[2].replace("raw_syscalls:sys_enter", "syscalls_all")
                    for prefix, short in (("syscalls:sys_enter_", "sys_"), ("sched:sched_", ""), ("ext4:ext4_", ""),
                                          ("block:block_", ""), ("writeback:writeback_", "")):
                        name = name.replace(prefix, short)
                    out[name] = float(fields[0])
    except OSError:
        pass
    return out


def proc_times(pid):
    """(user, kernel) CPU seconds of process pid, all its threads (/proc/PID/stat)."""
    tick = os.sysconf("SC_CLK_TCK")
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / tick, int(fields[12]) / tick


def server_latency(before, after):
    """(mean, p50) ms of the requests answered between two /metrics snapshots (kingx's request
    duration histogram; p50 interpolated in its bucket)."""
    buckets = sorted((float(k.split("le=")[1].strip("\"}")), after[k] - before.get(k, 0)) for k in after
                     if k.startswith("kingx_http_request_duration_seconds_bucket") and "Inf" not in k)
    n = after.get("kingx_http_request_duration_seconds_count", 0) - before.get(
        "kingx_http_request_duration_seconds_count", 0)
    total = after.get("kingx_http_request_duration_seconds_sum", 0) - before.get(
        "kingx_http_request_duration_seconds_sum", 0)
    if n <= 0:
        return None, None
    lo, prev = 0.0, 0.0
    for le, count in buckets:
        if count >= n / 2:
            share = (n / 2 - prev) / max(count - prev, 1)
            return round(total / n * 1e3, 3), round((lo + (le - lo) * share) * 1e3, 3)
        lo, prev = le, count
    return round(total / n * 1e3, 3), None


def server_procs(proc, kind):
    """{name: pid} of the processes serving: kingx's worker and writer, or nginx's worker."""
    out = {}
    for pid, _, comm in _family(proc.pid, False):
        name = "nginx-worker" if kind == "nginx" else comm
        out.setdefault(name, int(pid))
    return out


def start(binary, workdir, sync, template=None, extra=()):
    port = procs.free_port()
    data = os.path.join(workdir, "data")
    if template:
        shutil.copytree(template, data)  # a private copy of the preloaded database
    os.makedirs(data, exist_ok=True)
    if "--sync" in extra:  # the label's own --sync (e.g. --args 'none=--sync none') replaces --sync's
        sync_args = []
    else:
        sync_args = ["--sync", sync]
    argv = [binary, "--listen", f"127.0.0.1:{port}", "--data", data, "--workers", "1",
            "--access-log", "off", "--max-connections", "19000"] + sync_args + list(extra)
    p = procs.Proc("kingx", argv, os.path.join(workdir, "kingx.log"))
    procs.wait_http_ok(port, "/readyz", 60, p)
    return p, port


def run_wrk(port, conns, duration, keys, raw, keyp="k", put_prefix="/v1/kv/"):
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--timeout", "10s", "--latency",
            "-s", LUA, f"http://127.0.0.1:{port}/", "--", f"keyp={keyp}", f"nkeys={keys}", "size=100",
            f"put_prefix={put_prefix}", "putfrac=1"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    with open(raw, "w") as f:
        f.write("$ " + " ".join(argv) + "\n" + r.stdout + r.stderr)
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", r.stdout).group(1))
    lat = re.search(r"Latency\s+([0-9.]+)(us|ms|s)\s", r.stdout)
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0}[lat.group(2)]
    return rps, float(lat.group(1)) * scale


def wrk_percentiles(raw):
    """{"lat_p50_us": .., "lat_p99_us": ..} from the --latency distribution of a run_wrk output file."""
    scale = {"us": 1, "ms": 1e3, "s": 1e6}
    out = {}
    with open(raw) as f:
        text = f.read()
    for pct in ("50", "99"):
        m = re.search(r"^\s+" + pct + r"(?:\.000)?%\s+([0-9.]+)(us|ms|s)\s*$", text, re.M)
        out[f"lat_p{pct}_us"] = round(float(m.group(1)) * scale[m.group(2)]) if m else None
    return out


def derive(before, after, secs, rps, mean_lat_s):
    d = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    syncs = d.get("kingx_writer_fsync_seconds_count", 0)
    batches = d.get("kingx_writer_batches_total", 0)
    records = d.get("kingx_writer_records_total", 0)
    sync_s = d.get("kingx_writer_fsync_seconds_sum", 0)
    per_100k = max(rps * secs, 1) / 1e5
    return {
        "rps": round(rps),
        "mean_latency_us": round(mean_lat_s * 1e6),
        "fsyncs_per_s": round(syncs / secs),
        "ops_per_batch": round(records / batches, 1) if batches else None,
        "ops_per_fsync": round(records / syncs, 1) if syncs else None,
        # --commit-delay-us: the share of group commits the writer delayed, and the mean delay of those.
        "delayed_share": round(d.get("kingx_writer_commit_delays_total", 0) / batches, 3) if batches else None,
        "mean_delay_us": round(d.get("kingx_writer_commit_delay_seconds_total", 0) * 1e6 /
                               d["kingx_writer_commit_delays_total"])
        if d.get("kingx_writer_commit_delays_total") else None,
        "mean_fsync_us": round(sync_s / syncs * 1e6) if syncs else None,
        "fsync_busy_share": round(sync_s / secs, 2),
        "fsyncs_waited_per_request": round(mean_lat_s * syncs / secs, 2),
        # Compaction's share of the work, per 100k answered PUTs.
        "compaction_passes_per_100k": round(d.get("kingx_compaction_passes_total", 0) / per_100k, 2),
        "compaction_written_mb_per_100k": round(d.get("kingx_compaction_written_bytes_total", 0) / per_100k / 1e6, 2),
        "compaction_read_mb_per_100k": round(d.get("kingx_compaction_read_bytes_total", 0) / per_100k / 1e6, 2),
        "write_stalls_per_100k": round(d.get("kingx_compaction_write_stalls_total", 0) / per_100k, 2),
        "write_stall_ms_per_100k": round(d.get("kingx_compaction_write_stall_seconds_total", 0) / per_100k * 1e3, 1),
        # Batches the writer held back for the sorted key view's flush (up to 50 ms each).
        "keyview_waits_per_100k": round(d.get("kingx_keyspace_writer_waits_total", 0) / per_100k, 2),
        # The hand-off's wake-ups of the writer by the workers per group commit.
        "writer_wakes_per_batch": round(d.get("kingx_write_queue_writer_wakes_total", 0) / batches, 2) if batches else None,
    }


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", action="append", required=True, metavar="LABEL=PATH")
    ap.add_argument("--conns", default="100,1000")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=4)
    ap.add_argument("--keys", type=int, default=100000)
    ap.add_argument("--sync", default="always")
    ap.add_argument("--template", help="a preloaded kingx data directory, copied for each binary "
                    "(as bench/compare does; default: an empty one)")
    ap.add_argument("--perf", type=int, default=0, help="seconds of perf record on the writer")
    ap.add_argument("--perf-serve", type=int, default=0,
                    help="seconds of perf record on the serving process (kingx's worker, nginx's worker)")
    ap.add_argument("--args", action="append", default=[], metavar="LABEL=ARGS",
                    help="more kingx arguments for one --bin label (split on spaces), e.g. d1='--sync-depth 1'")
    ap.add_argument("--keyp", default="k", help="key prefix of the PUTs (key- overwrites fill_db's keys)")
    ap.add_argument("--syscalls", action="store_true", help="perf stat per process (see above)")
    ap.add_argument("--nginx", action="store_true", help="nginx return 200, 1 worker, in the same rounds")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    bins = [b.split("=", 1) for b in a.bin]
    extra = {}
    for spec in a.args:
        label, args = spec.split("=", 1)
        extra.setdefault(label, []).extend(args.split())
    conns = [int(c) for c in a.conns.split(",")]
    out = a.out or tempfile.mkdtemp(prefix="put-probe-")
    os.makedirs(os.path.join(out, "raw"), exist_ok=True)
    work = tempfile.mkdtemp(prefix="put-probe-work-")
    servers = {}
    rows = []
    hw_events = supported_hw_events() if a.syscalls else []
    try:
        for label, path in bins:
            servers[label] = start(os.path.abspath(path), os.path.join(work, label), a.sync, a.template,
                                   extra.get(label, ()))
        prefix = {label: "/v1/kv/" for label in servers}
        if a.nginx:
            os.chmod(work, 0o755)  # nginx's workers run unprivileged: the path to their files must be searchable
            servers["nginx"] = peers.start_nginx(os.path.join(work, "nginx"), 1)
            prefix["nginx"] = "/r/"
            bins.append(["nginx", "nginx"])
        for label, (p, port) in servers.items():  # creates the keys: later runs overwrite
            run_wrk(port, 100, 2, a.keys, os.path.join(out, "raw", f"warm-{label}.txt"), a.keyp, prefix[label])
        for rnd in range(1, a.rounds + 1):
            order = [(label, c) for c in conns for label, _ in bins]
            if rnd % 2 == 0:
                order.reverse()
            for label, c in order:
                p, port = servers[label]
                kind = "nginx" if label == "nginx" else "kingx"
                perfs = []
                if a.perf and rnd == a.rounds:
                    wpid = writer_pid(p.pid)
                    if wpid:
                        perfs.append((start_perf_record(wpid, os.path.join(out, f"perf-{label}-c{c}.data"), a.perf),
                                      a.perf))
                if a.perf_serve and rnd == a.rounds:
                    spid = server_procs(p, kind).get("nginx-worker" if kind == "nginx" else "kingx-worker")
                    if spid:
                        perfs.append((start_perf_record(spid, os.path.join(out, f"perf-serve-{label}-c{c}.data"),
                                                        a.perf_serve), a.perf_serve))
                stats = {}
                if a.syscalls:
                    for name, pid in server_procs(p, kind).items():
                        path = os.path.join(out, "raw", f"r{rnd}-{label}-c{c}-{name}.perf")
                        stats[name] = (pid, path, start_perf_stat(pid, path, hw_events), proc_times(pid))
                    time.sleep(0.3)  # perf attached before the first request
                before = metrics(port) if kind == "kingx" else {}
                cpu0 = children_cpu(p.pid)
                flt0 = children_cpu(p.pid, field=7)
                sw0 = children_switches(p.pid)
                th0 = threads_cpu(p.pid)
                ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                m0 = machine_busy()
                t0 = time.monotonic()
                wrk_raw = os.path.join(out, "raw", f"r{rnd}-{label}-c{c}.txt")
                rps, lat = run_wrk(port, c, a.duration, a.keys, wrk_raw, a.keyp, prefix[label])
                secs = time.monotonic() - t0
                after = metrics(port) if kind == "kingx" else {}
                times1 = {name: proc_times(pid) for name, (pid, _, _, _) in stats.items()}
                for _, _, pp, _ in stats.values():
                    if pp:
                        pp.send_signal(signal.SIGINT)
                        pp.wait(timeout=30)
                cpu1 = children_cpu(p.pid)
                flt1 = children_cpu(p.pid, field=7)
                sw1 = children_switches(p.pid)
                th1 = threads_cpu(p.pid)
                ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                m1 = machine_busy()
                for perf, secs_recorded in perfs:
                    if perf:
                        perf.wait(timeout=secs_recorded + 30)
                row = {"round": rnd, "bin": label, "conns": c}
                row.update(derive(before, after, secs, rps, lat))
                row.update(wrk_percentiles(wrk_raw))
                if kind == "kingx":
                    row["server_ms_mean"], row["server_ms_p50"] = server_latency(before, after)
                reqs = max(rps * secs, 1)
                for name, (pid, path, _, t0s) in sorted(stats.items()):
                    short = name.replace("kingx-", "").replace("nginx-", "nginx_")
                    row[f"user_us_{short}"] = round((times1[name][0] - t0s[0]) / reqs * 1e6, 2)
                    row[f"kern_us_{short}"] = round((times1[name][1] - t0s[1]) / reqs * 1e6, 2)
                    for ev, v in sorted(read_perf_stat(path).items()):
                        if ev == "task-clock":
                            row[f"taskclock_us_{short}"] = round(v * 1e3 / reqs, 2)  # msec -> us per request
                        elif v:
                            row[f"{ev}_{short}"] = round(v / reqs, 3)
                for name in sorted(cpu1):  # CPU per request of each process kind
                    row[f"cpu_us_per_req_{name}"] = round((cpu1[name] - cpu0.get(name, 0)) / (rps * secs) * 1e6, 1)
                for name in sorted(flt1):  # minor page faults per request (first touches of shared pages)
                    row[f"faults_per_req_{name}"] = round((flt1[name] - flt0.get(name, 0)) / (rps * secs), 4)
                for name in sorted(sw1):  # context switches per request (all threads: the writer's sync thread too)
                    row[f"switches_per_req_{name}"] = round((sw1[name] - sw0.get(name, 0)) / (rps * secs), 3)
                for name in sorted(th1):  # share of one core each thread was running during the run
                    if name.startswith("runq:"):  # share of the run it was ready but waited for a core
                        row[f"runq_{name[5:]}"] = round((th1[name] - th0.get(name, 0)) / secs, 2)
                    elif name.startswith("run:"):  # exact CPU per request (scheduler run time), and its kernel part (ticks)
                        key = name[4:]
                        row[f"thr_us_{key}"] = round((th1[name] - th0.get(name, 0)) / reqs * 1e6, 2)
                        row[f"thr_sys_us_{key}"] = round((th1["sys:" + key] - th0.get("sys:" + key, 0)) / reqs * 1e6, 2)
                    elif name.startswith(("vcsw:", "ivcsw:")):  # the thread's sleeps / preemptions per request
                        kind, key = name.split(":", 1)
                        row[f"{kind}_{key}"] = round((th1[name] - th0.get(name, 0)) / reqs, 4)
                    elif name.startswith("sys:"):  # of the busy share, in the kernel
                        row[f"sys_{name[4:]}"] = round((th1[name] - th0.get(name, 0)) / secs, 2)
                    else:
                        row[f"busy_{name}"] = round((th1[name] - th0.get(name, 0)) / secs, 2)
                row["busy_wrk"] = round((ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / secs, 2)
                row["busy_machine"] = round((m1 - m0) / secs, 2)
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        for p, _ in servers.values():
            p.stop(signal.SIGTERM)
        shutil.rmtree(work, ignore_errors=True)
    with open(os.path.join(out, "probe.json"), "w") as f:
        json.dump({"command": "bench/durable_put_probe.py " + " ".join(argv), "rows": rows}, f, indent=1)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
