#!/usr/bin/env python3
"""Abuse soak: kingx and nginx through the same abuse, each beside a wrk GET load, in one run.

For every abuse case and every server (servers in a shuffled order per case, so both meet the
same machine): start the server fresh, measure wrk GET of a 100-byte value alone (baseline);
then start the same wrk load again, start the abuse half a second later (so the measured
clients are connected before it, as a running service's clients are), and let wrk run through
the abuse's build-up and steady state while the server's processes' memory is sampled; then
measure 3 s of 10 fresh connections (can new clients still get in and be served?). Reported per case and server: req/s and p99 alone and
under abuse, their ratio, the largest worker RSS (anonymous and total), connections the abuse
held, the kernel's TCP memory and the server's CPU per request in each phase. kingx's ratio is compared with nginx's from the same case.

  bench/abuse.py                                   every case, kingx (event) and nginx
  bench/abuse.py --cases slow-read,slowloris --servers kingx,kingx-threads,nginx --duration 10
  bench/abuse.py --cases fd-exhaustion --servers kingx,old,nginx --kingx-alt old=OLD/kingx
                                                   another kingx binary (event model) beside this one
  bench/abuse.py --pin                             the abuse tool on CPU 1, the server and wrk on CPU 0

What each mode measures:
  unpinned (default)  everything shares every CPU, as on one small host: the ratio mixes what the
                      abuse costs the server with the CPU the abuse *tool* takes from the server and
                      wrk: with abusers on the same small machine, a ratio below 1 may be theirs.
  --pin [S:A]         the server and wrk on CPUs S, the abuse tool (and this script) on CPUs A
                      (default 0:1), in the measurement alone and under abuse alike: the ratio then
                      shows what serving the abuse costs the server, as with abusers on remote
                      hosts. The affinity each process really had is read back from /proc and
                      recorded. Other load on the machine still lands on both sides.
--steady S adds S seconds of the same wrk load on fresh connections once the abuse is built up: its
ratio and CPU per request leave out the build-up (slowhttptest opens 1,000 connections a second; the
idle clients each send one GET first), which the measurement under abuse includes.
In both modes each phase also records the server's CPU per wrk request (user + system time of
all the server's processes over the requests wrk completed): the abuse's cost to the server as a
number, whatever share of the machine the tool took.

Cases: slowloris, slow-body (slowhttptest -B: bodies trickled), big-bodies (3,000 uploads that
each send 1 MiB but one byte, as fast as the server takes them: nginx buffers them to disk, kingx
holds at most --body-buffer-bytes and reads no more), slow-read, slow-read-zstd (a compressible
value: kingx decodes it piece by piece; nginx serves the same bytes from a file), idle-10k,
garbage, fd-exhaustion.

kingx's worker memory budget, checked in every case: --body-buffer-bytes + --response-buffer-bytes
+ 16 MiB (the process itself and about 1 KiB per connection for 10,000 connections).
Needs wrk and slowhttptest (bench/install-peers.sh), nginx (nginx-light), prlimit (util-linux).
Results: bench/results/<date>-abuse[-name]/abuse.json and summary.md. Python standard library
only; every process started here is stopped by its PID (then its process group).
"""

import argparse
import contextlib
import datetime
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import peers, procs, sysinfo  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CASES = ["slowloris", "slow-body", "big-bodies", "slow-read", "slow-read-zstd", "idle-10k", "garbage",
         "fd-exhaustion"]
FD_LIMIT = 2048  # the server's descriptor limit in fd-exhaustion
SMALL = b"v" * 100
BIG = None       # 1 MiB of random bytes, set in main (same bytes for both servers)
BIG_Z = (b"kingx compressible value, served piece by piece. " * 25000)[: 1 << 20]


def log(msg):
    print(f"[abuse {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- servers

class Server:
    """A server under test: its Proc, port, the wrk URL and the abuse URLs."""

    def __init__(self, name, proc, port, small, big, big_z, put_path, body_path, workdir):
        self.name, self.proc, self.port, self.workdir = name, proc, port, workdir
        self.small, self.big, self.big_z, self.put_path, self.body_path = small, big, big_z, put_path, body_path

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def worker_pids(self):
        """The processes that serve connections: kingx-worker children, or nginx's workers."""
        return procs.children(self.proc.pid, ("kingx-worker", "nginx"))

    def workers_by_role(self):
        """{role: worker pids}: one role ("worker") here; a proxied server has two."""
        return {"worker": self.worker_pids()}

    def roots(self):
        """The Procs whose process trees are the server (server_cpu_s sums them)."""
        return [self.proc]

    def stop(self):
        self.proc.stop()


class ProxiedServer(Server):
    """kingx behind nginx: the clients (wrk, the abuse) meet nginx's port, kingx's paths; CPU and
    memory count both (kingx's worker and nginx's, each against its own budget)."""

    def __init__(self, kingx, nginx_proc, nginx_port, workdir):
        super().__init__(kingx.name, nginx_proc, nginx_port, kingx.small, kingx.big, kingx.big_z, kingx.put_path,
                         kingx.body_path, workdir)
        self.kingx = kingx

    def worker_pids(self):
        return self.kingx.worker_pids() + procs.children(self.proc.pid, ("nginx",))

    def workers_by_role(self):
        return {"kingx": self.kingx.worker_pids(), "nginx": procs.children(self.proc.pid, ("nginx",))}

    def roots(self):
        return [self.proc, self.kingx.proc]

    def stop(self):
        try:
            self.proc.stop()
        finally:
            self.kingx.stop()


def kingx_server(kingx, workdir, workers, model, extra, nofile=None, name=None):
    port = procs.free_port()
    data = os.path.join(workdir, "data")
    os.makedirs(data, exist_ok=True)
    argv = [kingx, "--listen", f"127.0.0.1:{port}", "--data", data, "--workers", str(workers),
            "--error-log", os.path.join(workdir, "error.log"), "--model", model] + extra
    if nofile:
        argv = ["prlimit", f"--nofile={nofile}:{nofile}", "--"] + argv
    p = procs.Proc("kingx", argv, os.path.join(workdir, "stdout.log"))
    procs.wait_http_ok(port, "/readyz", 30, p)
    for key, value in (("small", SMALL), ("big", BIG), ("big-z", BIG_Z)):
        status, _ = procs.http_request(port, "PUT", f"/v1/kv/{key}", body=value, timeout_s=30)
        if status not in (201, 204):
            raise RuntimeError(f"kingx PUT {key}: {status}")
    name = name or ("kingx" if model == "event" else "kingx-threads")
    return Server(name, p, port, "/v1/kv/small", "/v1/kv/big", "/v1/kv/big-z", "/v1/kv/slow-body", "/v1/kv/body",
                  workdir)


def nginx_server(workdir, workers, nofile=None):
    # The harness's nginx (bench/harness/peers.py) with what the abuse needs besides: bodies up
    # to 64 MiB, a location that buffers a request body whole (to a file past
    # client_body_buffer_size) before passing it on, as nginx does in front of an upstream, and
    # the error log at error level (warn logs every body buffered to a file), and the header
    # deadline kingx has by default (--header-timeout-ms 10 s; deploy/nginx-reverse-proxy.conf sets
    # the same): at nginx's default 60 s, slowloris and idle descriptor hogs are closed by kingx
    # inside a measurement and by nginx after it, and the reference would skip the work it measures.
    p, port = peers.start_nginx(
        workdir, workers, reuseport=True, nofile=nofile,
        static_files={"v100.txt": SMALL, "v1m.bin": BIG, "v1m-z.bin": BIG_Z},
        error_level="error", client_max_body_size="64m", tcp_nopush=False, client_header_timeout="10s",
        extra_locations="location /up/ { proxy_pass http://127.0.0.1:9; }")
    return Server("nginx", p, port, "/s/v100.txt", "/s/v1m.bin", "/s/v1m-z.bin", "/r", "/up/b", workdir)


def proxied_kingx_server(kingx, workdir, model, nofile=None, name=None):
    """kingx (one worker, `model`) behind nginx (one worker) serving deploy/nginx-reverse-proxy.conf
    as shipped (bench/harness/peers.py's nginx around it; nofile limits nginx, which meets the
    clients). Raises RuntimeError, with both stopped, when either does not answer."""
    k = kingx_server(kingx, os.path.join(workdir, "kingx"), 1, model, [], None, name)
    try:
        p, port = peers.start_nginx(os.path.join(workdir, "nginx"), 1, nofile=nofile, error_level="error",
                                    site=peers.reverse_proxy_site(k.port), ready_path=k.small)
    except BaseException:
        k.stop()
        raise
    return ProxiedServer(k, p, port, workdir)


def one_worker_server(name, kingx, workdir, extra=()):
    """One worker of the server named `name`: nginx_server when kingx is None, else kingx_server
    of that binary (event model) with the extra arguments."""
    if kingx is None:
        return nginx_server(workdir, 1)
    return kingx_server(kingx, workdir, 1, "event", list(extra), name=name)


# ---------------------------------------------------------------- measurements

def start_wrk(url, conns, duration, cpus=None):
    """wrk -t1 -cN -dD --latency in the background (on cpus, None: anywhere); finish_wrk reads its
    result."""
    with spawning_on(cpus):
        return subprocess.Popen(["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency", "--timeout", "5s",
                                 url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish_wrk(p, duration):
    """(req/s, p99 ms, errors, requests completed) of a wrk started by start_wrk."""
    out, _ = p.communicate(timeout=duration + 60)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)) if "Requests/sec" in out else 0.0
    m = re.search(r"(\d+) requests in", out)
    requests = int(m.group(1)) if m else 0
    p99 = None
    m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    if m:
        p99 = round(float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)], 2)
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    return rps, p99, errors, requests


def run_wrk(url, conns, duration, cpus=None):
    return finish_wrk(start_wrk(url, conns, duration, cpus), duration)


def proc_cpu_s(pid):
    """CPU seconds (user + system) a live process used so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def tree_pids(root):
    """root and every process descended from it (a server's master, workers and writer)."""
    children = {}
    for pid, st in procs.proc_stats():
        children.setdefault(procs.stat_ppid(st), []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def server_cpu_s(server):
    """CPU seconds (user + system, all threads) the server's live processes used so far."""
    return sum(proc_cpu_s(pid) for root in server.roots() for pid in tree_pids(root.pid))


def cpus_allowed(pid):
    """The CPU list a process's main thread may run on, as /proc shows it ("0", "0-1"), or ""."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Cpus_allowed_list:"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


@contextlib.contextmanager
def spawning_on(cpus):
    """Processes started inside run on cpus (None: leave the affinity alone). Children inherit the
    affinity of the thread that forks them, so the calling thread takes cpus for the while."""
    if cpus is None:
        yield
        return
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, old)


def tcp_mem_pages():
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                parts = line.split()
                return int(parts[parts.index("mem") + 1])
    return 0


def established(port):
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            if int(parts[1].split(":")[1], 16) == port and parts[3] == "01":
                n += 1
    return n


class Sampler(threading.Thread):
    """Largest worker RSS (anonymous and total; also per role of server.workers_by_role()),
    established connections and TCP memory."""

    def __init__(self, server):
        super().__init__(daemon=True)
        self.server = server
        self.done = threading.Event()
        self.max_anon_kib = self.max_rss_kib = self.max_conns = self.max_tcp_pages = 0
        self.max_rss_kib_by_role = {}

    def run(self):
        while not self.done.is_set():
            for role, pids in self.server.workers_by_role().items():
                for pid in pids:
                    rss = sysinfo.status_kb(pid, "VmRSS")
                    self.max_anon_kib = max(self.max_anon_kib, sysinfo.status_kb(pid, "RssAnon"))
                    self.max_rss_kib = max(self.max_rss_kib, rss)
                    self.max_rss_kib_by_role[role] = max(self.max_rss_kib_by_role.get(role, 0), rss)
            self.max_conns = max(self.max_conns, established(self.server.port))
            self.max_tcp_pages = max(self.max_tcp_pages, tcp_mem_pages())
            self.done.wait(0.25)


# ---------------------------------------------------------------- abuse

def start_abuse(case, server, args, workdir):
    """Starts the abuse against server; returns the list of Procs to stop afterwards."""
    length = args.settle + args.duration + args.steady + 30
    sht = ["slowhttptest", "-l", str(length), "-p", "3", "-r", "1000"]
    n = args.abuse_conns
    if case == "slowloris":
        argv = sht + ["-H", "-c", str(n), "-i", "5", "-x", "24", "-u", server.url(server.small)]
    elif case == "slow-body":
        argv = sht + ["-B", "-c", str(n), "-i", "5", "-x", "24", "-s", str(1 << 20), "-t", "PUT",
                      "-u", server.url(server.put_path)]
    elif case in ("slow-read", "slow-read-zstd"):
        path = server.big if case == "slow-read" else server.big_z
        argv = sht + ["-X", "-c", str(n), "-w", "512", "-y", "1024", "-n", "5", "-z", "32", "-k", "3",
                      "-u", server.url(path)]
    elif case == "idle-10k":
        argv = [sys.executable, os.path.join(HERE, "abuse_clients.py"), "idle", "--port", str(server.port),
                "--conns", "10000", "--path", server.small, "--seconds", str(length)]
    elif case == "garbage":
        argv = [sys.executable, os.path.join(HERE, "abuse_clients.py"), "garbage", "--port", str(server.port),
                "--conns", str(getattr(args, "flood_conns", 64)), "--seconds", str(length)]
    elif case == "big-bodies":
        argv = [sys.executable, os.path.join(HERE, "abuse_clients.py"), "bodies", "--port", str(server.port),
                "--conns", str(n), "--path", server.body_path, "--seconds", str(length)]
    elif case == "fd-exhaustion":
        argv = [sys.executable, os.path.join(HERE, "abuse_clients.py"), "hog", "--port", str(server.port),
                "--conns", str(FD_LIMIT * args.workers + 1000), "--seconds", str(length)]
    else:
        raise ValueError(case)
    return [procs.Proc(f"abuse-{case}", argv, os.path.join(workdir, f"abuse-{case}.log"))]


def parse_size(text):
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", text)
    return int(m.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[m.group(2).lower()]


def kingx_budget_kib(kingx_args):
    """kingx's worker memory budget: body + response buffers (defaults or the flags given) + 16 MiB."""
    sizes = {"--body-buffer-bytes": 64 << 20, "--response-buffer-bytes": 32 << 20}
    for i, a in enumerate(kingx_args):
        flag, eq, value = a.partition("=")
        if flag in sizes:
            sizes[flag] = parse_size(value if eq else kingx_args[i + 1])
    return (sum(sizes.values()) + (16 << 20)) // 1024


# The buffers the shipped reverse proxy lets nginx's worker hold for one client connection: nginx's
# defaults on x86-64, which deploy/nginx-reverse-proxy.conf leaves alone (KiB):
# client_header_buffer_size 1k + large_client_header_buffers 4 8k, client_body_buffer_size 16k (the
# body streams through it: proxy_request_buffering off), proxy_buffer_size 4k + proxy_buffers 8 4k.
NGINX_PROXY_KIB_PER_CONN = 1 + 4 * 8 + 16 + 4 + 8 * 4


def nginx_proxy_budget_kib(conns):
    """nginx's worker memory bound in front of kingx: 16 MiB + NGINX_PROXY_KIB_PER_CONN per client
    connection held. nginx has no memory setting; its configuration's buffers per connection are
    its bound."""
    return 16 * 1024 + NGINX_PROXY_KIB_PER_CONN * conns


def run_case(case, name, args, root):
    workdir = os.path.join(root, f"{case}-{name}")
    os.makedirs(workdir, exist_ok=True)
    nofile = FD_LIMIT if case == "fd-exhaustion" else None
    with spawning_on(args.server_cpus):
        if name == "nginx":
            server = nginx_server(workdir, args.workers, nofile)
        elif name in args.kingx_alt:
            server = kingx_server(args.kingx_alt[name], workdir, args.workers, "event", args.kingx_args, nofile,
                                  name)
        else:
            model = "event" if name == "kingx" else "threads"
            server = kingx_server(args.kingx, workdir, args.workers, model, args.kingx_args, nofile)
    row = {"case": case, "server": name, "loadavg_before": os.getloadavg()[0], "pinned": args.pin}
    abuse = []
    cpus = args.server_cpus
    try:
        run_wrk(server.url(server.small), args.wrk_conns, 2, cpus)  # warm-up
        cpu0 = server_cpu_s(server)
        wrk = start_wrk(server.url(server.small), args.wrk_conns, args.duration, cpus)
        row["cpus_server"] = sorted({cpus_allowed(p) for p in tree_pids(server.proc.pid)})
        row["cpus_wrk"] = cpus_allowed(wrk.pid)
        row["base_rps"], row["base_p99_ms"], row["base_errors"], base_requests = finish_wrk(wrk, args.duration)
        row["base_server_cpu_us_per_req"] = per_request_us(server_cpu_s(server) - cpu0, base_requests)
        base_anon = max((sysinfo.status_kb(p, "RssAnon") for p in server.worker_pids()), default=0)
        row["base_worker_anon_kib"] = base_anon
        # The measured clients are active before the abuse starts, as a running service's are:
        # wrk opens its connections, then the abuse begins and builds up (--settle) and wrk
        # runs on through it. Its figures cover the build-up and the steady state.
        sampler = Sampler(server)
        sampler.start()
        cpu0 = server_cpu_s(server)
        wrk = start_wrk(server.url(server.small), args.wrk_conns, args.settle + args.duration, cpus)
        time.sleep(0.5)
        with spawning_on(args.abuse_cpus):
            abuse = start_abuse(case, server, args, workdir)
        abuse_start = time.monotonic()
        row["cpus_abuse"] = cpus_allowed(abuse[0].pid)
        row["abuse_rps"], row["abuse_p99_ms"], row["abuse_errors"], abuse_requests = finish_wrk(
            wrk, args.settle + args.duration)
        row["abuse_server_cpu_us_per_req"] = per_request_us(server_cpu_s(server) - cpu0, abuse_requests)
        if args.steady:
            # The abuse in place, built up: the same wrk load on fresh connections, as in the
            # measurement alone, so its ratio and CPU per request leave out the build-up.
            cpu0 = server_cpu_s(server)
            row["steady_rps"], row["steady_p99_ms"], row["steady_errors"], steady_requests = run_wrk(
                server.url(server.small), args.wrk_conns, args.steady, cpus)
            row["steady_server_cpu_us_per_req"] = per_request_us(server_cpu_s(server) - cpu0, steady_requests)
        # New clients after the build-up: can a fresh connection get in and be served?
        row["new_client_rps"], row["new_client_p99_ms"], _, _ = run_wrk(server.url(server.small), 10, 3, cpus)
        row["healthy_after"] = probe(server)
        sampler.done.set()
        sampler.join()
        row.update(max_worker_anon_kib=sampler.max_anon_kib, max_worker_rss_kib=sampler.max_rss_kib,
                   max_established=sampler.max_conns, max_tcp_mem_mib=round(sampler.max_tcp_pages * 4 / 1024, 1))
        row["ratio"] = round(row["abuse_rps"] / row["base_rps"], 3) if row["base_rps"] else None
        base_us, abuse_us = row["base_server_cpu_us_per_req"], row["abuse_server_cpu_us_per_req"]
        if base_us and abuse_us:
            # What serving the abuse took: the server's CPU per request above its cost alone, times
            # the requests per second (cores), and the share of its throughput a server bound by
            # its own CPU would keep (alone ÷ abused CPU per request).
            row["abuse_server_cores"] = round((abuse_us - base_us) * row["abuse_rps"] / 1e6, 3)
            row["cpu_ratio"] = round(base_us / abuse_us, 3)
        if args.steady and row["base_rps"] and base_us and row["steady_server_cpu_us_per_req"]:
            row["steady_ratio"] = round(row["steady_rps"] / row["base_rps"], 3)
            row["steady_cpu_ratio"] = round(base_us / row["steady_server_cpu_us_per_req"], 3)
        if name != "nginx":
            row["budget_kib"] = kingx_budget_kib(args.kingx_args)
            row["within_budget"] = row["max_worker_anon_kib"] <= row["budget_kib"]
        row["loadavg_after"] = os.getloadavg()[0]
        if row["base_errors"]:
            # An error answer (a 403 nginx gives for a file its workers cannot read, say) is
            # cheaper than the value: such a baseline measures something else.
            log(f"{case} {name}: {row['base_errors']} errors (non-2xx or socket) in the measurement alone")
    finally:
        for p in abuse:
            row["abuse_cpu_cores"] = round(proc_cpu_s(p.pid) / max(1.0, time.monotonic() - abuse_start), 2)
            p.stop(signal.SIGINT, timeout_s=10)
            row.setdefault("abuse_tail", p.log_tail(300).strip().splitlines()[-1:] or [""])
        server.stop()
    log(f"{case:15s} {name:14s} base {row.get('base_rps', 0):9.0f} req/s  abuse {row.get('abuse_rps', 0):9.0f} "
        f"req/s  ratio {row.get('ratio')}  server CPU/req {row.get('base_server_cpu_us_per_req')} -> "
        f"{row.get('abuse_server_cpu_us_per_req')} us  worker anon max {row.get('max_worker_anon_kib', 0) // 1024} "
        f"MiB  conns {row.get('max_established')}  tcp mem {row.get('max_tcp_mem_mib')} MiB")
    return row


def per_request_us(cpu_s, requests):
    """Microseconds of server CPU per wrk request (None when wrk completed none)."""
    return round(cpu_s * 1e6 / requests, 2) if requests else None


def probe(server):
    """Whether a fresh connection gets its GET answered within 5 s after the run."""
    try:
        status, _ = procs.http_request(server.port, "GET", server.small, timeout_s=5)
        return status == 200
    except OSError:
        return False


def summary(rows, args, started):
    lines = [f"# Abuse soak, {started}", "",
             f"`bench/abuse.py {' '.join(args.argv)}` — wrk -t1 -c{args.wrk_conns} -d{args.duration}s GET of "
             f"100 B beside each abuse ({args.abuse_conns} slowhttptest connections; idle-10k: 10,000 "
             f"connections; garbage: {args.flood_conns} flooding connections; fd-exhaustion: server limited to {FD_LIMIT} "
             f"descriptors, {FD_LIMIT * args.workers + 1000} connections held). {args.workers} worker(s) each. "
             f"Machine: {os.cpu_count()} CPUs; load average in the table.", "",
             (f"Pinned: the server and wrk on CPUs {args.pin.split(':')[0]}, the abuse tool on CPUs "
              f"{args.pin.split(':')[1]} (as read back from /proc: {pin_seen(rows)}), alone and under abuse alike: "
              f"the ratio shows what serving the abuse costs the server."
              if args.pin else
              "Unpinned: the abuse tool shares the CPUs with the server and wrk, so the ratio also counts the "
              "CPU the tool takes from them."),
             "Server CPU per request: user + system time of all the server's processes over wrk's completed "
             "requests, in the phase alone and under abuse (the latter includes serving the abuse and its "
             "build-up); CPU ratio: alone ÷ under abuse, the share of its throughput a server bound by its own "
             "CPU keeps; abuse's server cores: (under abuse − alone) × req/s, the CPU serving the abuse took.", "",
             "| case | server | alone req/s | under abuse req/s | ratio | wrk errors alone / abuse | "
             "p99 alone → abuse (ms) | server CPU µs/req alone → abuse | CPU ratio | abuse's server cores | "
             "new clients req/s | "
             "worker anon max (MiB) | within budget | worker RSS max (MiB) | conns held | TCP mem (MiB) | "
             "abuser CPU (cores) | load | ratio vs nginx |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    by_case = {}
    for r in rows:
        by_case.setdefault(r["case"], {})[r["server"]] = r
    for case in args.cases:
        for name in args.servers:
            r = by_case.get(case, {}).get(name)
            if not r or "abuse_rps" not in r:
                continue
            ng = by_case.get(case, {}).get("nginx")
            vs = ""
            if name != "nginx" and ng and ng.get("ratio") and r.get("ratio") is not None:
                vs = f"{r['abuse_rps'] / ng['abuse_rps']:.2f}× nginx" if ng["abuse_rps"] else "nginx served 0"
            lines.append(f"| {case} | {name} | {r['base_rps']:.0f} | {r['abuse_rps']:.0f} | {r['ratio']} | "
                         f"{r['base_errors']} / {r['abuse_errors']} | "
                         f"{r['base_p99_ms']} → {r['abuse_p99_ms']} | "
                         f"{r.get('base_server_cpu_us_per_req')} → {r.get('abuse_server_cpu_us_per_req')} | "
                         f"{r.get('cpu_ratio', '')} | {r.get('abuse_server_cores', '')} | "
                         f"{r.get('new_client_rps', 0):.0f} | "
                         f"{r['max_worker_anon_kib'] / 1024:.1f} | "
                         f"{'' if 'budget_kib' not in r else ('yes' if r['within_budget'] else 'NO')} "
                         f"{'' if 'budget_kib' not in r else '(' + str(r['budget_kib'] // 1024) + ')'} | "
                         f"{r['max_worker_rss_kib'] / 1024:.1f} | {r['max_established']} | {r['max_tcp_mem_mib']} | "
                         f"{r.get('abuse_cpu_cores', '')} | "
                         f"{r['loadavg_before']:.1f}/{r['loadavg_after']:.1f} | {vs} |")
    if args.steady:
        lines += ["", f"Steady state (--steady {args.steady}: the same wrk load on fresh connections, the abuse "
                  "built up), against the measurement alone:", "",
                  "| case | server | steady req/s | ratio | server CPU µs/req alone → steady | CPU ratio | "
                  "wrk errors |", "|---|---|---|---|---|---|---|"]
        for case in args.cases:
            for name in args.servers:
                r = by_case.get(case, {}).get(name)
                if r and "steady_rps" in r:
                    lines.append(f"| {case} | {name} | {r['steady_rps']:.0f} | {r.get('steady_ratio', '')} | "
                                 f"{r.get('base_server_cpu_us_per_req')} → {r['steady_server_cpu_us_per_req']} | "
                                 f"{r.get('steady_cpu_ratio', '')} | {r['steady_errors']} |")
    return "\n".join(lines) + "\n"


def pin_seen(rows):
    """The affinities the rows recorded, e.g. "server 0, wrk 0, abuse 1"."""
    seen = {"server": set(), "wrk": set(), "abuse": set()}
    for r in rows:
        seen["server"].update(r.get("cpus_server", []))
        for k in ("wrk", "abuse"):
            if r.get(f"cpus_{k}"):
                seen[k].add(r[f"cpus_{k}"])
    return ", ".join(f"{k} {'/'.join(sorted(v)) or '?'}" for k, v in seen.items())


def parse_pin(spec, allowed):
    """"S:A" (CPU lists such as 0 or 0,2) -> (server CPUs, abuse CPUs); ValueError if malformed,
    overlapping or not CPUs this process may use."""
    server, colon, abuse = spec.partition(":")
    if not colon:
        raise ValueError(f"--pin {spec}: expected SERVER_CPUS:ABUSE_CPUS, e.g. 0:1")
    try:
        sets = [{int(c) for c in part.split(",") if c} for part in (server, abuse)]
    except ValueError:
        raise ValueError(f"--pin {spec}: CPUs are numbers, e.g. 0:1 or 0,2:1,3") from None
    if not sets[0] or not sets[1] or sets[0] & sets[1]:
        raise ValueError(f"--pin {spec}: two non-empty, disjoint CPU lists are needed")
    if not (sets[0] | sets[1]) <= allowed:
        raise ValueError(f"--pin {spec}: this process may run only on CPUs {sorted(allowed)}")
    return sets[0], sets[1]


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kingx", default=os.environ.get("KINGX_BIN", os.path.join(ROOT, "build", "src", "kingx")))
    ap.add_argument("--servers", default="kingx,nginx")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--duration", type=int, default=15, help="seconds of each wrk measurement")
    ap.add_argument("--settle", type=int, default=10, help="seconds the abuse builds up before measuring")
    ap.add_argument("--steady", type=int, default=0, metavar="S",
                    help="after the measurement under abuse, S more seconds of the same wrk load on fresh "
                         "connections with the abuse built up (its ratio and CPU per request leave out the "
                         "build-up); 0, the default: none")
    ap.add_argument("--wrk-conns", type=int, default=50)
    ap.add_argument("--abuse-conns", type=int, default=3000)
    ap.add_argument("--flood-conns", type=int, default=64, help="garbage: the flooding connections")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--kingx-arg", action="append", default=[], dest="kingx_args",
                    help="extra kingx flag (repeat), e.g. --kingx-arg=--send-lowat-bytes=0")
    ap.add_argument("--kingx-alt", action="append", default=[], metavar="NAME=BIN",
                    help="another kingx binary, run (event model) as server NAME: name it in --servers (repeat)")
    ap.add_argument("--pin", nargs="?", const="0:1", default="", metavar="SERVER_CPUS:ABUSE_CPUS",
                    help="run the server and wrk on SERVER_CPUS and the abuse tool (and this script) on "
                         "ABUSE_CPUS, alone and under abuse alike (default 0:1): measures what the abuse costs "
                         "the server without the CPU the tool takes; unpinned (the default) measures both")
    ap.add_argument("--name", default="")
    ap.add_argument("--out", default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep-tmp", action="store_true")
    args = ap.parse_args(argv)
    args.argv = argv
    args.servers = [s for s in args.servers.split(",") if s]
    alts = {}
    for spec in args.kingx_alt:
        alt_name, eq, alt_bin = spec.partition("=")
        if not eq or not alt_name or not alt_bin or alt_name in ("kingx", "kingx-threads", "nginx"):
            ap.error(f"--kingx-alt {spec}: expected NAME=BIN with a NAME other than kingx, kingx-threads, nginx")
        if not os.access(alt_bin, os.X_OK):
            print(f"abuse.py: no kingx binary at {alt_bin} (--kingx-alt {spec})", file=sys.stderr)
            return 2
        alts[alt_name] = alt_bin
    args.kingx_alt = alts
    for s in args.servers:
        if s not in ("kingx", "kingx-threads", "nginx") and s not in alts:
            ap.error(f"unknown server {s}; servers: kingx, kingx-threads, nginx and the names of --kingx-alt")
    args.server_cpus = args.abuse_cpus = None
    if args.pin:
        try:
            args.server_cpus, args.abuse_cpus = parse_pin(args.pin, os.sched_getaffinity(0))
        except ValueError as e:
            ap.error(str(e))
    args.cases = [c for c in args.cases.split(",") if c]
    for c in args.cases:
        if c not in CASES:
            ap.error(f"unknown case {c}; cases: {', '.join(CASES)}")
    for tool in ["wrk", "slowhttptest", "prlimit"] + (["nginx"] if "nginx" in args.servers else []):
        if shutil.which(tool) is None:
            print(f"abuse.py: {tool} is missing (bench/install-peers.sh installs the peers and tools)", file=sys.stderr)
            return 2
    if any(s in ("kingx", "kingx-threads") for s in args.servers) and not os.access(args.kingx, os.X_OK):
        print(f"abuse.py: no kingx binary at {args.kingx} (build it, or pass --kingx)", file=sys.stderr)
        return 2
    if args.pin:
        # This script (its sampler thread included) runs beside the abuse tool, not the server.
        os.sched_setaffinity(0, args.abuse_cpus)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    global BIG
    rng = random.Random(args.seed)
    BIG = rng.randbytes(1 << 20)
    started = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    out = args.out or os.path.join(HERE, "results", datetime.date.today().isoformat() + "-abuse" +
                                   (f"-{args.name}" if args.name else ""))
    os.makedirs(out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="kingx-abuse-")
    os.chmod(tmp, 0o755)  # nginx workers run as an unprivileged user when started by root
    rows = []
    try:
        for case in args.cases:
            order = list(args.servers)
            rng.shuffle(order)
            for name in order:
                try:
                    rows.append(run_case(case, name, args, tmp))
                except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                    log(f"{case} {name}: {e!r}")
                    rows.append({"case": case, "server": name, "error": repr(e)})
                with open(os.path.join(out, "abuse.json"), "w") as f:
                    json.dump({"started": started, "argv": argv, "rows": rows}, f, indent=1)
        text = summary(rows, args, started)
        with open(os.path.join(out, "summary.md"), "w") as f:
            f.write(text)
        print(text)
    finally:
        if not args.keep_tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
