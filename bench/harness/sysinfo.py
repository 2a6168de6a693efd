"""Readers of /proc: machine-wide busy CPU, per-process-tree CPU and memory.

Everything here is Linux-only and read-only. CPU figures are in seconds (or cores when divided
by wall time); memory figures are in bytes. A process that exits between two snapshots simply
drops out of the later one: its CPU since the first snapshot is lost, which the caller sees as
a lower server CPU, never as a crash.
"""

import os
import resource
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def raise_fd_limit():
    """Raise the soft RLIMIT_NOFILE to the hard limit (children inherit it). Returns the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def machine_busy_seconds():
    """Seconds of busy CPU (all cores, excluding idle and iowait) since boot, and steal."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    v = [int(x) for x in fields]
    idle = v[3] + v[4]
    steal = v[7] if len(v) > 7 else 0
    busy = sum(v[:8]) - idle - steal
    return busy / CLK_TCK, steal / CLK_TCK


def _read_stat(pid):
    """(ppid, utime+stime seconds) of one process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(")") + 2:].split()
    # rest[0] is the state (field 3); ppid is field 4, utime 14, stime 15.
    return int(rest[1]), (int(rest[11]) + int(rest[12])) / CLK_TCK


def process_tree(root_pids):
    """All live pids that are one of root_pids or descend from one, as a sorted list."""
    parent = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _read_stat(int(name))
            if st is not None:
                parent[int(name)] = st[0]
    roots = set(p for p in root_pids if p in parent)
    tree = set(roots)
    changed = True
    while changed:  # bounded: each pass adds at least one pid or stops
        changed = False
        for pid, ppid in parent.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                changed = True
    return sorted(tree)


def tree_cpu(root_pids):
    """{pid: cpu seconds} for the process trees under root_pids."""
    out = {}
    for pid in process_tree(root_pids):
        st = _read_stat(pid)
        if st is not None:
            out[pid] = st[1]
    return out


def cpu_delta(before, after):
    """CPU seconds used between two tree_cpu snapshots (new processes count from zero)."""
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


def tree_run_ns(root_pids):
    """{(pid, tid): nanoseconds on a CPU} for every thread of the process trees under root_pids,
    from /proc/PID/task/TID/schedstat (the scheduler's sum of run time, user and kernel, exact to
    the nanosecond; utime/stime are sampled at clock ticks and do not resolve a few percent over a
    few seconds). A thread gone before it is read is left out, as in tree_cpu."""
    out = {}
    for pid in process_tree(root_pids):
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    out[(pid, int(tid))] = int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                continue
    return out


def run_delta_s(before, after):
    """Seconds on a CPU between two tree_run_ns snapshots (new threads count from zero)."""
    return sum(ns - before.get(k, 0) for k, ns in after.items()) / 1e9


def status_kb(pid, field):
    """A /proc/PID/status field in KiB (0 when the process or field is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_memory(root_pids):
    """Memory of the process trees: rss (sum of VmRSS), hwm (sum of VmHWM, each process's peak),
    pss (sum of proportional set sizes, which counts shared mappings once), all in bytes."""
    pids = process_tree(root_pids)
    return {
        "rss": 1024 * sum(status_kb(p, "VmRSS") for p in pids),
        "hwm": 1024 * sum(status_kb(p, "VmHWM") for p in pids),
        "pss": 1024 * sum(_pss_kb(p) for p in pids),
        "processes": len(pids),
    }


def tree_rss_by_name(root_pids):
    """RSS of the process trees by process name (/proc/PID/comm, e.g. kingx-worker), summed over
    the processes of each name, in bytes."""
    out = {}
    for p in process_tree(root_pids):
        try:
            with open(f"/proc/{p}/comm") as f:
                name = f.read().strip()
        except OSError:
            continue
        out[name] = out.get(name, 0) + 1024 * status_kb(p, "VmRSS")
    return out


def wait_idle(max_wait_s, threshold_cores=0.15, sample_s=0.5):
    """Wait until the machine's busy CPU over one sample is below threshold_cores, or until
    max_wait_s passed. Returns (seconds waited, busy cores of the last sample)."""
    start = time.monotonic()
    busy = 0.0
    while True:
        b0, _ = machine_busy_seconds()
        t0 = time.monotonic()
        time.sleep(sample_s)
        b1, _ = machine_busy_seconds()
        busy = (b1 - b0) / (time.monotonic() - t0)
        waited = time.monotonic() - start
        if busy < threshold_cores or waited >= max_wait_s:
            return waited, busy
