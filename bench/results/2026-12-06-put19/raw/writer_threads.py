#!/usr/bin/env python3
"""CPU per PUT of each thread of kingx's writer process (and the worker), paired interleaved rounds.

For each round and each binary (order alternates per round): copies the template data directory
(--template, e.g. 1M keys from fill_db, its key view already built), starts `BIN --sync SYNC
--workers 1`, warms with wrk for 2 s, then drives wrk -t1 -cCONNS PUTs of 100 B over the template's
keys for --duration s; over a window from 1 s into the run to 1 s before its end it reads every
thread's CPU time (/proc/PID/task/TID/schedstat, ns) of the writer and worker processes and the
keyspace counters of /metrics; requests in the window = window x wrk's req/s. Rows go to --out
(JSON lines) with `uptime`. With --puts N: no warm-up; the window ends once the writer's
records_total grew by N (polled every 0.5 s; wrk is then stopped): the window is the whole wrk run (every merge of the key view those puts cause, whatever
the rate) and requests are the writer's records_total in it. With --perf, the last round also records the writer process
(perf record -g, 1999 Hz) for the window; the report goes beside --out.
Stops only the processes it started, by PID. Python standard library only.
"""
import argparse, json, os, re, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request

LUA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "lua", "kv.lua")
COUNT_LUA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "put_count.lua")


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as r:
        return r.status, r.read().decode()


def keyspace_metrics(port):
    out = {}
    for line in get(port, "/metrics")[1].splitlines():
        m = re.match(r"^(kingx_(?:keyspace|writer)_[a-z_]+(?:_count|_sum|_total)?) ([0-9.e+-]+)$", line)
        if m: out[m.group(1)] = float(m.group(2))
    return out


def children(pid):
    out = {}
    for p in os.listdir("/proc"):
        if not p.isdigit(): continue
        try:
            with open(f"/proc/{p}/stat") as f: fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) != pid: continue
            with open(f"/proc/{p}/comm") as f: out[int(p)] = f.read().strip()
        except (OSError, ValueError): pass
    return out


def thread_ns(pid):
    out = {}
    try: tids = os.listdir(f"/proc/{pid}/task")
    except OSError: return out
    for i, t in enumerate(sorted(tids, key=int)):
        try:
            with open(f"/proc/{pid}/task/{t}/comm") as f: name = f.read().strip()
            with open(f"/proc/{pid}/task/{t}/schedstat") as f: ns = int(f.read().split()[0])
        except OSError: continue
        key = name if i > 0 else "main:" + name
        out[key] = out.get(key, 0) + ns
    return out


def finish(row, a0, a1, m0, m1, req):
    for proc in a0:
        for k in a1[proc]:
            row[f"{proc}/{k}_us_per_put"] = (a1[proc][k] - a0[proc].get(k, 0)) / 1000 / req
        row[f"{proc}_us_per_put"] = sum(a1[proc].values()) / 1000 / req - sum(a0[proc].values()) / 1000 / req
    for k in m1:
        if k.endswith("_total") or k.endswith("_count") or k.endswith("_sum"):
            row["m/" + k] = (m1[k] - m0.get(k, 0)) / req
    return row


def run_one(label, binary, sync, conns, args, rnd, perf_dir):
    d = tempfile.mkdtemp(prefix="put19-wt-")
    data = os.path.join(d, "data")
    shutil.copytree(args.template, data)
    port = free_port()
    log = open(os.path.join(d, "log"), "w")
    kp = subprocess.Popen([binary, "--listen", f"127.0.0.1:{port}", "--data", data, "--workers", "1",
                           "--sync", sync, "--access-log", "off", "--max-connections", "19000"],
                          stdout=log, stderr=subprocess.STDOUT)
    row = {"label": label, "conns": conns, "round": rnd, "sync": sync}
    try:
        deadline = time.time() + 120
        while True:
            try:
                if get(port, "/v1/kv/?limit=1")[0] == 200: break
            except Exception: pass
            if time.time() > deadline: raise RuntimeError("not ready")
            time.sleep(0.2)
        procs = children(kp.pid)
        writer = [p for p, c in procs.items() if c == "kingx-writer"][0]
        worker = [p for p, c in procs.items() if c == "kingx-worker"][0]
        wrk = ["wrk", "-t1", f"-c{conns}", "-s", LUA, f"http://127.0.0.1:{port}/", "--",
               f"keyp={args.keyp}", f"nkeys={args.keys}", "size=100", "put_prefix=/v1/kv/", "putfrac=1"]
        if args.puts:
            m0 = keyspace_metrics(port); t0 = time.time()
            a0 = {"writer": thread_ns(writer), "worker": thread_ns(worker)}
            w = subprocess.Popen(wrk[:2] + ["-d600s"] + wrk[2:], stdout=subprocess.DEVNULL)
            while w.poll() is None and time.time() < t0 + 590:
                time.sleep(0.5)
                if keyspace_metrics(port)["kingx_writer_records_total"] - m0["kingx_writer_records_total"] >= args.puts:
                    break
            a1 = {"writer": thread_ns(writer), "worker": thread_ns(worker)}
            t1 = time.time(); m1 = keyspace_metrics(port)
            if w.poll() is None:
                w.send_signal(signal.SIGINT)
                try: w.wait(timeout=60)
                except subprocess.TimeoutExpired: w.kill(); w.wait()
            req = m1["kingx_writer_records_total"] - m0["kingx_writer_records_total"]
            row.update({"rps": req / (t1 - t0), "window_s": t1 - t0, "puts": req,
                        "uptime": open("/proc/loadavg").read().split()[:3]})
            return finish(row, a0, a1, m0, m1, req)
        subprocess.run(wrk[:2] + ["-d2s"] + wrk[2:], stdout=subprocess.DEVNULL, timeout=60)
        w = subprocess.Popen(wrk[:2] + [f"-d{args.duration}s"] + wrk[2:], stdout=subprocess.PIPE, text=True)
        time.sleep(1)
        m0 = keyspace_metrics(port); t0 = time.time()
        a0 = {"writer": thread_ns(writer), "worker": thread_ns(worker)}
        pr = None
        if perf_dir:
            pr = subprocess.Popen(["perf", "record", "-q", "-F", "1999", "-g", "-p", str(writer), "-o",
                                   os.path.join(perf_dir, f"{label}-c{conns}.data"), "--", "sleep",
                                   str(args.duration - 2)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(args.duration - 2)
        a1 = {"writer": thread_ns(writer), "worker": thread_ns(worker)}
        t1 = time.time(); m1 = keyspace_metrics(port)
        if pr: pr.wait(timeout=120)
        out, _ = w.communicate(timeout=120)
        rps = float(re.search(r"Requests/sec:\s*([0-9.]+)", out).group(1))
        req = rps * (t1 - t0)
        row.update({"rps": rps, "window_s": t1 - t0, "uptime": open("/proc/loadavg").read().split()[:3]})
        finish(row, a0, a1, m0, m1, req)
    finally:
        kp.send_signal(signal.SIGTERM)
        try: kp.wait(timeout=60)
        except subprocess.TimeoutExpired: kp.kill(); kp.wait()
        log.close()
        shutil.rmtree(d, ignore_errors=True)
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", action="append", required=True, help="LABEL=PATH")
    ap.add_argument("--template", required=True)
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--keyp", default="key-")
    ap.add_argument("--conns", default="100")
    ap.add_argument("--sync", default="always")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=6)
    ap.add_argument("--perf", action="store_true")
    ap.add_argument("--puts", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    bins = [b.split("=", 1) for b in a.bin]
    perf_dir = os.path.dirname(os.path.abspath(a.out)) if a.perf else None
    with open(a.out, "a") as f:
        for rnd in range(a.rounds):
            order = bins if rnd % 2 == 0 else bins[::-1]
            for c in [int(x) for x in a.conns.split(",")]:
                for label, b in order:
                    row = run_one(label, b, a.sync, c, a, rnd, perf_dir if rnd == a.rounds - 1 else None)
                    f.write(json.dumps(row) + "\n"); f.flush()
                    print(label, c, rnd, f"{row['rps']:.0f} req/s writer {row['writer_us_per_put']:.2f} "
                          f"worker {row['worker_us_per_put']:.2f} load {row['uptime']}", flush=True)


if __name__ == "__main__":
    main()
