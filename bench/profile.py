#!/usr/bin/env python3
"""Where the instructions go per request: kingx (event model, 1 worker) against nginx `return 200`,
counted by valgrind's callgrind, so the figures hold on a loaded machine (instruction counts do
not depend on what else runs; times do).

    bench/profile.py [--keys 1000000] [--requests-s 8] [--out bench/results/<date>-profile]
                     [--kingx build/src/kingx] [--loadgen build/bench/loadgen] [--cases a,b]
                     [--conns 100] [--cg-conns 10] [--d1 S,A,L] [--ll S,A,L]

Cases (each server started fresh under `valgrind --tool=callgrind --instr-atstart=no`, its
instrumentation switched on only for the measured load, then dumped per process):
  kingx-get     GET of uniform random keys of 1M (100 B), --cg-conns connections, cache simulation on
  nginx-get     nginx return 200 (100 B), same load, cache simulation on
  kingx-put     durable PUT (--sync always) of 100 B to random keys, --cg-conns connections
  kingx-put-none  the same with --sync none
  syscalls      native run of kingx-get and nginx-get under `strace -c -f`: system calls per
                answered request, by name (strace slows the server; the counts are what matter)
Per case: instructions (Ir) per answered request for every process of the server (master,
writer, worker) and, for the PUT cases (callgrind --separate-threads=yes), for every thread by
name (per_request_by_thread: the writer's loop, kingx-writer, apart from kingx-sync,
kingx-compact, kingx-keyview and kingx-extend), the data-cache misses (D1, LL) per request where simulated, the writer's batch
figures from /metrics (kingx), and callgrind_annotate's top functions. Also a native time profile
(`perf record -e cpu-clock`, software clock: this VM has no hardware counters) of each GET case.

Cache simulation (GET cases): callgrind's model of a first-level data cache (D1) and one last
level (LL), for the server's user-space accesses only (the kernel, the load generator and other
processes do not pollute it, so real misses are at least these). --d1/--ll set the geometry as
valgrind takes it (bytes,ways,line); by default valgrind's own detection, which on some VMs gives
odd last levels (a 256 MiB direct-mapped LL here): pass the machine's, e.g. --ll 1048576,8,64 for
a 1 MiB L2 per core. Per GET case and process, `*.misses.txt` lists the functions by D1 read
misses (callgrind_annotate), and the per-request misses of the top functions go in profile.json.

Connections: with --cg-conns 10 (the default) each measured load opens its own connections after
the warm-up. With more, opening them would weigh on the count per request, so one load generator
runs warm-up and measurement on the same connections (--warmup), instrumentation is switched on
after its warm-up and dumped before its end, and the requests of that window are counted as the
server's calls that send an answer in it (one per answer for both servers under a closed-loop load:
nginx's writev, kingx's send or sendmsg; the load generator's own count is kept
beside it).

Python standard library, valgrind, linux-perf (bench/install-peers.sh --with-profilers).
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import kingx, peers, procs, scenarios, sysinfo  # noqa: E402

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)


def tree(pid):
    return sysinfo.process_tree([pid])


def cg(pids, *flags):
    for p in pids:
        subprocess.run(["callgrind_control", *flags, str(p)], capture_output=True, timeout=600)


def loadgen(args, port, path, seconds, method="GET", conns=10):
    argv = [args.loadgen, "--port", str(port), "--conns", str(conns), "--duration", str(seconds),
            "--path", path]
    if path.endswith("/k"):
        argv += ["--keys", str(args.keys)]
    if method == "PUT":
        argv += ["--method", "PUT", "--body-bytes", "100"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120)
    line = next(l for l in out.stdout.splitlines() if l.startswith("LOADGEN "))
    return json.loads(line[8:]), " ".join(argv)


def totals(path):
    """{event: count} from a callgrind output file's 'events:' and 'totals:'/'summary:' lines."""
    events, tot = None, None
    with open(path) as f:
        for line in f:
            if line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith("totals:") or line.startswith("summary:"):
                tot = [int(x) for x in line.split()[1:]]
    return dict(zip(events or [], tot or []))


def metrics(port):
    try:
        status, body = procs.http_request(port, "GET", "/metrics", timeout_s=60)
    except OSError:
        return {}
    out = {}
    for line in body.decode().splitlines():
        m = re.match(r"(kingx_writer_\w+|kingx_\w*batch\w*|kingx_\w*fsync\w*|kingx_\w*apply\w*)"
                     r"(\{[^}]*\})?\s+([\d.e+-]+)$", line)
        if m and not m.group(2):
            out[m.group(1)] = float(m.group(3))
    return out


def run_case(args, name, start, path, method, workdir, out):
    """Start the server under callgrind, warm it, measure, dump. Returns the case's figures."""
    cgdir = os.path.join(out, "callgrind")
    os.makedirs(cgdir, exist_ok=True)
    # kingx re-executes itself for its writer and workers: follow the children.
    vg = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--vgdb=yes", "--trace-children=yes",
          f"--callgrind-out-file={cgdir}/{name}.%p"]
    if method == "PUT":
        # A file per thread: the writer's loop apart from its sync, compaction, key view and
        # extend threads (named from /proc when the window ends, see thread_names).
        vg += ["--separate-threads=yes"]
    if method == "GET":
        vg += ["--cache-sim=yes"]
        vg += [f"--D1={args.d1}"] if args.d1 else []
        vg += [f"--LL={args.ll}"] if args.ll else []
    proc, port = start(vg)
    try:
        if args.cg_conns <= 10:
            loadgen(args, port, path, 3, method, args.cg_conns)  # warm: page cache, index pages, allocator
            pids = tree(proc.pid)
            m0 = metrics(port) if name.startswith("kingx") else {}
            cg(pids, "-i", "on")
            g, cmd = loadgen(args, port, path, args.requests_s, method, args.cg_conns)
            cg(pids, "-d")
            names = thread_names(pids)
            m1 = metrics(port) if name.startswith("kingx") else {}
        else:
            g, cmd, pids, m0, m1, names = warm_window(args, name, proc, port, path, method)
    finally:
        proc.stop()
    n = g["requests_ok"]
    if args.cg_conns > 10:
        # The window's answers, counted by the server's own calls that send them (the worker's
        # file): nginx's writev; kingx's send (one piece) or sendmsg (SendGathered), and the
        # write or writev of libuv's uv_write when a socket was full.
        n = max((sum(calls_to(os.path.join(cgdir, f), fn) for fn in ANSWER_CALLS)
                 for f in os.listdir(cgdir) if window_file(name, f)), default=0) or n
    per_proc, per_thread = {}, {}
    for f in sorted(os.listdir(cgdir)):
        # Part 1 of each process (of each thread, name.PID.1-NN, under --separate-threads) is the
        # measured load (instrumentation on to the dump); the final file holds the shutdown only.
        m = window_file(name, f)
        if not m:
            continue
        t = totals(os.path.join(cgdir, f))
        if not t or not t.get("Ir"):
            continue
        if m.group(2):
            pid, thread = int(m.group(1)), int(m.group(2))
            comm = names.get(pid, [])
            per_thread[f] = {"thread": comm[thread - 1] if thread <= len(comm) else f"#{thread}",
                             **{k: round(v / n, 1) for k, v in t.items()}}
            proc_key = f"{name}.{pid}.1"
            acc = per_proc.setdefault(proc_key, {})
            for k, v in t.items():
                acc[k] = round(acc.get(k, 0) + v / n, 1)
        else:
            per_proc[f] = {k: round(v / n, 1) for k, v in t.items()}
            # Clock readings per request (vDSO calls: no system call shows them).
            per_proc[f]["clock_gettime_calls"] = round(calls_to(os.path.join(cgdir, f), "clock_gettime") / n, 3)
        ann = subprocess.run(["callgrind_annotate", "--inclusive=no", os.path.join(cgdir, f)],
                             capture_output=True, text=True)
        with open(os.path.join(out, f"{f}.self.txt"), "w") as fo:
            fo.write(ann.stdout)
        ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", os.path.join(cgdir, f)],
                             capture_output=True, text=True)
        with open(os.path.join(out, f"{f}.inclusive.txt"), "w") as fo:
            fo.write(ann.stdout)
        if "D1mr" in t:
            ev = "D1mr,D1mw,DLmr,DLmw,Ir"
            ann = subprocess.run(["callgrind_annotate", "--inclusive=no", f"--show={ev}", "--sort=D1mr",
                                  "--threshold=99.9", os.path.join(cgdir, f)],
                                 capture_output=True, text=True)
            with open(os.path.join(out, f"{f}.misses.txt"), "w") as fo:
                fo.write(ann.stdout)
            per_proc[f]["misses_by_function"] = misses_by_function(ann.stdout, n)
    delta = {k: m1[k] - m0.get(k, 0) for k in m1}
    return {"case": name, "requests": n, "loadgen_requests": g["requests_ok"], "conns": args.cg_conns,
            "load_cmd": cmd, "per_request_by_process": per_proc, "per_request_by_thread": per_thread,
            "ir_per_request": round(sum(p.get("Ir", 0) for p in per_proc.values()
                                        if isinstance(p.get("Ir"), (int, float))), 1),
            "metrics_delta": delta}


def warm_window(args, name, proc, port, path, method):
    """One load generator, --cg-conns connections: warm-up, then the instrumented window inside its
    measured part (so no connection is opened in the window, and none closed: the load runs 10 s
    past the window, which under valgrind on a busy machine starts late)."""
    warm_s, window_s = 4, args.requests_s
    argv = [args.loadgen, "--port", str(port), "--conns", str(args.cg_conns), "--warmup", str(warm_s),
            "--duration", str(window_s + 10), "--path", path, "--connect-timeout", "60"]
    if path.endswith("/k"):
        argv += ["--keys", str(args.keys)]
    if method == "PUT":
        argv += ["--method", "PUT", "--body-bytes", "100"]
    lg = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        # The warm-up starts once every connection is up (a slow server accepts slowly).
        deadline = time.monotonic() + 60
        while established(port) < args.cg_conns and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(warm_s + 1)
        pids = tree(proc.pid)
        m0 = metrics(port) if name.startswith("kingx") else {}
        cg(pids, "-i", "on")
        time.sleep(window_s)
        cg(pids, "-d")
        names = thread_names(pids)
        m1 = metrics(port) if name.startswith("kingx") else {}
        stdout, _ = lg.communicate(timeout=window_s + 180)
    finally:
        if lg.poll() is None:
            lg.kill()
            lg.wait()
    line = next(l for l in stdout.splitlines() if l.startswith("LOADGEN "))
    return json.loads(line[8:]), " ".join(argv), pids, m0, m1, names


def window_file(name, f):
    """The match of a measured window's callgrind file, name.PID.1 or name.PID.1-NN (thread NN)."""
    return re.match(rf"^{re.escape(name)}\.(\d+)\.1(?:-(\d+))?$", f)


def thread_names(pids):
    """{pid: [thread name, ...]} in creation order (ascending thread ids), which is the order of
    valgrind's thread numbers (1 = the main thread) while no thread has exited: kingx's threads
    live as long as their process."""
    out = {}
    for p in pids:
        try:
            tids = sorted(int(t) for t in os.listdir(f"/proc/{p}/task"))
        except OSError:
            continue
        comms = []
        for t in tids:
            try:
                with open(f"/proc/{p}/task/{t}/comm") as f:
                    comms.append(f.read().strip())
            except OSError:
                comms.append(f"tid {t}")
        out[p] = comms
    return out


def established(port):
    """Established TCP connections whose local port is `port` (the server's side), from /proc."""
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                        n += 1
        except OSError:
            pass
    return n


# The functions whose calls count answers (calls_to): glibc's names for them.
ANSWER_CALLS = ("writev", "write", "send", "__libc_send", "sendmsg", "__libc_sendmsg")


def calls_to(path, fn_name):
    """Calls to the function named fn_name, any symbol version of it (clock_gettime@@GLIBC_2.17)
    included (a callgrind output file's cfn=/calls= lines)."""
    names, target, total = {}, None, 0
    with open(path) as f:
        for line in f:
            if line.startswith(("fn=", "cfn=")):
                m = re.match(r"c?fn=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
                if m:
                    if m.group(2):
                        names[m.group(1)] = m.group(2)
                    if line.startswith("cfn="):
                        target = names.get(m.group(1))
            elif line.startswith("calls=") and target is not None and \
                    (target == fn_name or target.startswith(fn_name + "@")):
                total += int(line[6:].split()[0])
    return total


def misses_by_function(annotate_text, requests, top=25):
    """{function: {event: per request}} for the first `top` rows of a callgrind_annotate output
    made with --show=D1mr,D1mw,DLmr,DLmw,Ir."""
    rows = {}
    for line in annotate_text.splitlines():
        m = re.match(r"\s*((?:[\d,.]+(?: \([\s\d.]+%\))?\s+){5})(\S.*)$", line)
        if not m or "PROGRAM TOTALS" in line or ":" not in m.group(2):
            continue
        nums = [int(x.replace(",", "")) if x not in (".",) else 0
                for x in re.findall(r"(?<![(\d.])([\d,]+|\.)(?![\d.]*%)", m.group(1))]
        if len(nums) != 5:
            continue
        fn = re.sub(r"\s\[/[^]]*\]$", "", m.group(2).strip())
        fn = fn.split(":", 1)[1] if ":" in fn else fn
        rows[fn] = {k: round(v / requests, 3) for k, v in zip(("D1mr", "D1mw", "DLmr", "DLmw", "Ir"), nums)}
        if len(rows) >= top:
            break
    return rows


def perf_case(args, name, start, path, out):
    """Native run; perf record -e cpu-clock on the server's processes while loadgen runs."""
    proc, port = start([])
    try:
        loadgen(args, port, path, 2)
        pids = ",".join(str(p) for p in tree(proc.pid))
        data = os.path.join(out, f"perf-{name}.data")
        rec = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "4999", "-g", "-p", pids,
                                "-o", data], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        g, cmd = loadgen(args, port, path, 5, conns=args.conns)
        rec.send_signal(signal.SIGINT)
        rec.wait(timeout=60)
    finally:
        proc.stop()
    rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--stdio",
                          "--percent-limit", "0.7", "-g", "none", "--sort", "dso,symbol"],
                         capture_output=True, text=True)
    dso = subprocess.run(["perf", "report", "-i", data, "--no-children", "--stdio", "--sort", "dso"],
                         capture_output=True, text=True)
    with open(os.path.join(out, f"perf-{name}.txt"), "w") as f:
        f.write(f"$ {cmd}\n{dso.stdout}\n{rep.stdout}")
    os.unlink(data)
    return {"case": name, "rps": g["rps"], "load_cmd": cmd}


def syscall_case(args, name, start, path, out):
    """Native run; strace -c -f on the server's processes while loadgen runs (--conns connections).
    Returns {syscall: calls per answered request}."""
    proc, port = start([])
    try:
        loadgen(args, port, path, 2, conns=args.conns)
        pids = tree(proc.pid)
        txt = os.path.join(out, f"strace-{name}.txt")
        argv = ["strace", "-c", "-f", "-o", txt]
        for p in pids:
            argv += ["-p", str(p)]
        tr = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)  # attached
        g, cmd = loadgen(args, port, path, args.requests_s, conns=args.conns)
        tr.send_signal(signal.SIGINT)
        tr.wait(timeout=60)
    finally:
        proc.stop()
    calls = {}
    with open(txt) as f:
        for line in f:
            m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", line)
            if m and m.group(2) != "total":
                calls[m.group(2)] = int(m.group(1))
    n = g["requests_ok"]
    per = {k: round(v / n, 3) for k, v in sorted(calls.items(), key=lambda kv: -kv[1])}
    return {"case": "syscalls-" + name, "requests": n, "load_cmd": cmd, "syscalls_per_request": per,
            "total_per_request": round(sum(calls.values()) / n, 3)}


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keys", type=int, default=1000000)
    p.add_argument("--requests-s", type=int, default=8, help="seconds of measured load per case")
    p.add_argument("--kingx", default=os.environ.get("KINGX_BIN", os.path.join(REPO, "build/src/kingx")))
    p.add_argument("--loadgen", default=os.environ.get("KINGX_LOADGEN",
                                                       os.path.join(REPO, "build/bench/loadgen")))
    p.add_argument("--out", default=os.path.join(
        BENCH, "results", datetime.now(timezone.utc).strftime("%Y-%m-%d") + "-profile"))
    p.add_argument("--conns", type=int, default=100,
                   help="connections of the native cases (perf, syscalls)")
    p.add_argument("--cg-conns", type=int, default=10, help="connections of the callgrind cases")
    p.add_argument("--d1", help="simulated D1 cache for the GET cases: bytes,ways,line (valgrind --D1)")
    p.add_argument("--ll", help="simulated last-level cache: bytes,ways,line (valgrind --LL)")
    p.add_argument("--cases", default="kingx-get,nginx-get,kingx-put,kingx-put-none,perf")
    p.add_argument("--template", help="an existing kingx data directory with the keys (skip preload)")
    args = p.parse_args()
    cases = args.cases.split(",")
    os.makedirs(args.out, exist_ok=True)
    sysinfo.raise_fd_limit()
    work = tempfile.mkdtemp(prefix="kingx-profile-")
    os.chmod(work, 0o755)
    results = {"date": datetime.now(timezone.utc).isoformat(), "uptime_start":
               subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
               "command": " ".join(sys.argv), "keys": args.keys, "cases": []}
    try:
        template = args.template
        if template is None:
            ds = scenarios.Dataset(args.keys, 0, 0)
            template, secs = kingx.build_template(args.kingx, os.path.join(work, "tpl"), ds, work)
            results["preload_s"] = round(secs, 1)
        n = [0]

        def start_kingx(sync):
            def start(prefix):
                n[0] += 1
                d = os.path.join(work, f"k{n[0]}")
                data = kingx.copy_data(template, os.path.join(d, "data"))
                port = procs.free_port()
                argv = prefix + [args.kingx, "--listen", f"127.0.0.1:{port}", "--data", data,
                                 "--workers", "1", "--model", "event", "--sync", sync,
                                 "--access-log", "off", "--max-connections", "19000"]
                os.makedirs(d, exist_ok=True)
                pr = procs.Proc("kingx", argv, os.path.join(d, "kingx.log"))
                procs.wait_http_ok(port, "/readyz", 1800 if prefix else 120, pr)
                return pr, port
            return start

        def start_nginx(prefix):
            n[0] += 1
            d = os.path.join(work, f"n{n[0]}")
            os.makedirs(d)
            peers.write_static_files(os.path.join(d, "www"))
            port = procs.free_port()
            conf = os.path.join(d, "nginx.conf")
            with open(conf, "w") as f:
                # One process (the worker's code path, no fork): a forked worker switches to an
                # unprivileged user and could not write its callgrind output.
                f.write(peers.nginx_conf(d, port, 1, False).replace("master_process on;",
                                                                     "master_process off;"))
            pr = procs.Proc("nginx", prefix + ["nginx", "-p", d, "-c", conf, "-e", f"{d}/error.log"],
                            os.path.join(d, "stdout.log"))
            procs.wait_http_ok(port, "/r", 600 if prefix else 20, pr)
            return pr, port

        plan = {"kingx-get": (start_kingx("always"), "/v1/kv/k", "GET"),
                "nginx-get": (start_nginx, "/r/k", "GET"),
                "kingx-put": (start_kingx("always"), "/v1/kv/k", "PUT"),
                "kingx-put-none": (start_kingx("none"), "/v1/kv/k", "PUT")}
        for c in cases:
            if c in plan:
                print(f"profile: {c}", file=sys.stderr, flush=True)
                results["cases"].append(run_case(args, c, *plan[c], work, args.out))
        if "syscalls" in cases and shutil.which("strace"):
            for c in ("kingx-get", "nginx-get"):
                print(f"profile: syscalls {c}", file=sys.stderr, flush=True)
                results["cases"].append(syscall_case(args, c, plan[c][0], plan[c][1], args.out))
        if "perf" in cases and shutil.which("perf"):
            for c in ("kingx-get", "nginx-get"):
                print(f"profile: perf {c}", file=sys.stderr, flush=True)
                results["cases"].append(perf_case(args, c, plan[c][0], plan[c][1], args.out))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["uptime_end"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    with open(os.path.join(args.out, "profile.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(args.out)


if __name__ == "__main__":
    main()
