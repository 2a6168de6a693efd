#!/usr/bin/env python3
"""(get17: getcpu's split.py with two server options for the huge-page rows: `shmem_advise`
starts that server while /sys/kernel/mm/transparent_hugepage/shmem_enabled is `advise`, so its
shared index is faulted on 2 MiB pages, and sets it back to `never` once the server is ready
(and in every exit path); each server's ShmemPmdMapped and FilePmdMapped are recorded.)

Per-GET CPU split of each server's processes: user vs kernel time, minor faults, context
switches, under the same wrk load as bench/compare's get100 cell, servers measured in
interleaved rounds (order shuffled per round).

    split.py --out DIR [--rounds 3] [--duration 5] [--conns 100,1000]
             [--server NAME=KIND:BIN:KEYS ...]   KIND kingx|nginx

Per run and per process (and thread): /proc/PID/task/TID/stat utime/stime (clock ticks),
minflt/majflt, /proc/PID/task/TID/schedstat run time (ns), /proc/PID/task/TID/status
voluntary/nonvoluntary context switches; deltas over the run divided by wrk's requests.
"""
import argparse, json, os, random, re, subprocess, sys, tempfile, time, shutil

BENCH = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
sys.path.insert(0, BENCH)
from harness import kingx, peers, procs, scenarios, servers, sysinfo  # noqa: E402

TCK = os.sysconf("SC_CLK_TCK")
SHMEM = "/sys/kernel/mm/transparent_hugepage/shmem_enabled"


def set_shmem(mode):
    with open(SHMEM, "w") as f:
        f.write(mode)
    print(f"shmem_enabled: {open(SHMEM).read().strip()}", flush=True)


def pmd_kb(pid, field):
    kb = 0
    try:
        for line in open(f"/proc/{pid}/smaps"):
            if line.startswith(field + ":"):
                kb += int(line.split()[1])
    except OSError:
        pass
    return kb


def task_snap(pids):
    out = {}
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            base = f"/proc/{pid}/task/{tid}"
            try:
                st = open(base + "/stat").read()
                comm = st[st.index("(") + 1:st.rindex(")")]
                r = st[st.rindex(")") + 2:].split()
                sched = open(base + "/schedstat").read().split()
                status = open(base + "/status").read()
            except OSError:
                continue
            vol = int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)", status, re.M).group(1))
            nvol = int(re.search(r"^nonvoluntary_ctxt_switches:\s+(\d+)", status, re.M).group(1))
            out[(pid, int(tid))] = {"comm": comm, "minflt": int(r[7]), "majflt": int(r[9]),
                                    "utime": int(r[11]), "stime": int(r[12]),
                                    "run_ns": int(sched[0]), "vcsw": vol, "ivcsw": nvol}
    return out


def delta(a, b):
    tot = {}
    per = {}
    for k, v in b.items():
        o = a.get(k, {})
        d = {f: v[f] - o.get(f, 0) for f in v if f != "comm"}
        per[f"{k[0]}/{k[1]}:{v['comm']}"] = d
        for f, x in d.items():
            tot[f] = tot.get(f, 0) + x
    return tot, per


def wrk_requests(text):
    m = re.search(r"(\d+) requests in", text)
    return int(m.group(1)) if m else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--warm", type=int, default=2, help="seconds of unmeasured load per server first")
    ap.add_argument("--conns", default="100,1000")
    ap.add_argument("--server", action="append", required=True)
    ap.add_argument("--template", action="append", default=[], help="KEYS=DIR existing data dir")
    ap.add_argument("--template-root", default="/tmp/getcpu-templates",
                    help="kingx datasets built once here and reused")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    sysinfo.raise_fd_limit()
    work = tempfile.mkdtemp(prefix="getcpu-split-")
    templates = {int(t.split("=")[0]): t.split("=", 1)[1] for t in a.template}
    insts = []
    log = open(os.path.join(a.out, "runs.jsonl"), "a")
    try:
        for s in a.server:
            name, rest = s.split("=", 1)
            kind, binp, keys, *opts = rest.split(":")
            keys = int(keys)
            d = os.path.join(work, name)
            os.makedirs(d)
            if kind == "kingx":
                if keys not in templates:
                    ds = scenarios.Dataset(keys, 0, 0)
                    keep = os.path.join(a.template_root, f"tpl{keys}")
                    if os.path.isdir(os.path.join(keep, "template-data")):
                        templates[keys] = os.path.join(keep, "template-data")
                    else:
                        templates[keys], _ = kingx.build_template(binp, keep, ds, work)
                data = kingx.copy_data(templates[keys], os.path.join(d, "data"))
                if "evict" in opts:  # this copy's pages out of the page cache: the server faults them from disk
                    subprocess.run(["sync"], check=True)
                    for root, _, files in os.walk(data):
                        for fn in files:
                            fd = os.open(os.path.join(root, fn), os.O_RDONLY)
                            os.fsync(fd)
                            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                            os.close(fd)
                env = dict(os.environ)
                for o in opts:
                    if o.startswith("preload="):
                        env["LD_PRELOAD"] = o.split("=", 1)[1]
                port = procs.free_port()
                argv = [binp, "--listen", f"127.0.0.1:{port}", "--data", data, "--workers", "1",
                        "--model", "event", "--sync", "always", "--access-log", "off",
                        "--max-connections", "19000", "--accept", "reuseport"]
                if "shmem_advise" in opts:
                    set_shmem("advise")
                try:
                    p = procs.Proc("kingx", argv, os.path.join(d, "kingx.log"), env=env)
                    procs.wait_http_ok(port, "/readyz", kingx.ready_timeout(scenarios.Dataset(keys, 0, 0)), p)
                finally:
                    if "shmem_advise" in opts:
                        set_shmem("never")
                spec = servers.BY_NAME["kingx-ev1"]
            else:
                p, port = peers.start_nginx(d, 1)
                spec = servers.BY_NAME["nginx-return-w1"]
            insts.append((name, p, port, spec, keys))
            print(f"started {name} pid {p.pid} port {port}", flush=True)
        scen = scenarios.BY_NAME["get100"]
        # warm every instance once (page cache, index pages)
        for name, p, port, spec, keys in insts:
            subprocess.run(scenarios.wrk_argv(spec, scen, port, 100, a.warm, scenarios.Dataset(keys, 0, 0)),
                           capture_output=True, timeout=a.warm + 60)
        for r in range(a.rounds):
            for c in [int(x) for x in a.conns.split(",")]:
                order = list(insts)
                random.shuffle(order)
                for name, p, port, spec, keys in order:
                    root = p.pid
                    pids = sysinfo.process_tree([root])
                    argv = scenarios.wrk_argv(spec, scen, port, c, a.duration, scenarios.Dataset(keys, 0, 0))
                    up = open("/proc/loadavg").read().split()[0]
                    s0 = task_snap(pids)
                    out = subprocess.run(argv, capture_output=True, text=True, timeout=a.duration + 60).stdout
                    s1 = task_snap(pids)
                    n = wrk_requests(out)
                    tot, per = delta(s0, s1)
                    rec = {"round": r, "conns": c, "server": name, "keys": keys, "requests": n,
                           "load1": up, "cmd": " ".join(argv), "total": tot, "tasks": per,
                           "wrk_errors": re.findall(r"(Socket errors.*|Non-2xx.*)", out)}
                    log.write(json.dumps(rec) + "\n"); log.flush()
                    us = lambda t: 1e6 * t / TCK / max(n, 1)
                    print(f"r{r} c{c} {name:10s} n={n:7d} user {us(tot['utime']):5.2f}us sys {us(tot['stime']):5.2f}us "
                          f"run {tot['run_ns']/max(n,1)/1000:5.2f}us minflt/GET {tot['minflt']/max(n,1):.4f} "
                          f"vcsw/GET {tot['vcsw']/max(n,1):.4f} ivcsw/GET {tot['ivcsw']/max(n,1):.4f} load {up}", flush=True)
        for name, p, port, spec, keys in insts:
            per = {pid: (pmd_kb(pid, "ShmemPmdMapped"), pmd_kb(pid, "FilePmdMapped"))
                   for pid in sysinfo.process_tree([p.pid])}
            print(f"{name}: ShmemPmdMapped / FilePmdMapped kB per process {per}", flush=True)
            log.write(json.dumps({"server": name, "pmd_mapped_kb": {str(k): v for k, v in per.items()}}) + "\n")
    finally:
        if open(SHMEM).read().find("[never]") < 0:
            set_shmem("never")
        for name, p, port, spec, keys in insts:
            p.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
