#!/usr/bin/env python3
"""One abuse case in paired phases on the same server: what it costs the active clients per request,
and how long a new client waits for its first answer, with the abuse and without it.

For each round and each server (shuffled order per round): start the server (one worker) on CPU S,
then alternate phases on that same process: alone, abused, alone, abused ... (--phases pairs). Each
phase runs wrk -t1 -c50 for --seconds on CPU S and, beside it on CPU A, a prober that opens a fresh
connection every --probe-ms, sends one GET and times the first byte of the answer (time to first
answer: connect + wait in the backlog + the server's turn). An abused phase starts the abuse (on
CPU A, as bench/abuse.py starts it) --settle seconds before wrk, then waits until the connections
the server holds stop growing (the abuse in place, at most --in-place-s more; its ramp is
bench/slowread_profile.py's to measure), and stops it after; the next alone
phase begins once the server holds no more of the abuse's connections. Recorded per phase: wrk
req/s, server CPU per wrk request (user + system of the server's process tree / requests), and the
probes' first-answer times (median, p90, p99, max; a probe with no answer in 10 s counts as 10 s),
and the largest RSS of each worker (sampled every 0.25 s, as bench/abuse.py does) against its budget:
kingx's --body-buffer-bytes + --response-buffer-bytes + 16 MiB, nginx's in front of kingx its
buffers per connection for the most connections it held so far (what they took stays in its RSS)
+ 16 MiB (bench/abuse.py's kingx_budget_kib, nginx_proxy_budget_kib;
nginx serving files has no budget, its RSS is reported). In fd-exhaustion the server meeting the
clients runs with bench/abuse.py's descriptor limit (2,048), as bench/abuse.py runs it.
The ratios pair each abused phase with the alone phase before it: neighbours on the same process,
minutes apart at most, so a machine that changes load between servers moves both. A pair whose alone
phase had wrk errors is reported but left out of the medians (it measured cheaper answers).

  bench/abuse_phases.py --case slow-body --kingx new=build-release/src/kingx --kingx ref=/work/ref/s20/kingx \\
      --nginx --rounds 2 --out bench/results/DIR/phases-slow-body
  bench/abuse_phases.py --case garbage --kingx new=BIN --kingx new-threads=BIN:threads ...
  bench/abuse_phases.py --case slowloris --kingx-proxied threads-proxied=BIN:threads --nginx ...

A kingx spec NAME=BIN[:MODEL] (MODEL event or threads, default event). --kingx-proxied NAME=BIN[:MODEL]:
that kingx (one worker) behind nginx (one worker) serving deploy/nginx-reverse-proxy.conf as shipped
(the harness's nginx.conf around it, bench/harness/peers.py): wrk, the prober and the abuse go to
nginx, the server's CPU is both processes trees', and an alone phase checks that kingx answered
(2xx) at least every request wrk completed (`kingx_2xx`), so nginx answering by itself is not
measured as kingx. Cases: those of
bench/abuse.py (garbage, slow-body, slowloris, slow-read, idle-10k, ...). Needs wrk, slowhttptest,
nginx as bench/abuse.py does. Results: OUT/phases.json and OUT/summary.md. Every process started
here is stopped by its PID.
"""
import argparse
import json
import os
import random
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import abuse  # noqa: E402

PROBE_TIMEOUT_S = 10.0


class Prober(threading.Thread):
    """Every probe_ms: a fresh connection, one GET of path, the time to the answer's first byte (ms)."""

    def __init__(self, port, path, probe_ms):
        super().__init__(daemon=True)
        self.port, self.path, self.probe_ms = port, path, probe_ms
        self.done = threading.Event()
        self.times_ms = []
        self.failed = 0

    def probe(self):
        req = f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        t0 = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=PROBE_TIMEOUT_S) as s:
                s.settimeout(max(0.1, PROBE_TIMEOUT_S - (time.monotonic() - t0)))
                s.sendall(req)
                if not s.recv(1):
                    raise OSError("closed")
        except OSError:
            self.failed += 1
            return PROBE_TIMEOUT_S * 1000
        return (time.monotonic() - t0) * 1000

    def run(self):
        while not self.done.is_set():
            self.times_ms.append(self.probe())
            self.done.wait(self.probe_ms / 1000)


def quantiles(xs):
    if not xs:
        return {}
    s = sorted(xs)

    def q(p):
        return round(s[min(len(s) - 1, int(p * len(s)))], 2)
    return {"n": len(s), "p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "max": round(s[-1], 2)}


def conns_held(port):
    return abuse.established(port)


def wait_in_place(server, limit_s):
    """Waits (at most limit_s) until the connections the server holds stop growing (by less than 1%
    over half a second): the abuse is in place, its ramp over. slowhttptest opens 1,000 connections
    a second when it gets the CPU to, and on a busy machine its 3,000 take longer than a fixed settle;
    the ramp is 1,000 new requests a second (for slow readers, GETs of a 1 MiB value), whose cost
    bench/slowread_profile.py measures on its own. Returns the seconds waited. Reading /proc/net/tcp
    takes up to seconds among thousands of sockets: limit_s 0 reads nothing."""
    if limit_s <= 0:
        return 0.0
    t0 = time.monotonic()
    last = conns_held(server.port)
    while time.monotonic() - t0 < limit_s:
        time.sleep(0.5)
        now = conns_held(server.port)
        if now <= last * 1.01:
            break
        last = now
    return round(time.monotonic() - t0, 1)


def phase(server, kind, args, abused, most_conns):
    """One phase: (row) wrk + prober, with the abuse started args.settle s before when abused.
    most_conns: the most connections the server held in its phases before (nginx's budget counts
    them: the memory they took stays in its RSS)."""
    procs = []
    row = {"abused": abused, "load": os.getloadavg()[0]}
    # Alone, kingx behind nginx answers every request: its own count shows nginx did not answer.
    count_kingx = kind == "proxied" and not abused
    if count_kingx:
        kingx0 = kingx_2xx(server)
    sampler = abuse.Sampler(server)  # the worker's largest RSS during the phase
    sampler.start()
    try:
        if abused:
            with abuse.spawning_on(args.abuse_cpus):
                procs = abuse.start_abuse(args.case, server, args.abuse_args, server.workdir)
            time.sleep(args.settle)  # the abuse builds up (slowhttptest: 1,000 connections a second)
            row["in_place_s"] = wait_in_place(server, args.in_place_s)
        prober = Prober(server.port, server.small, args.probe_ms)
        cpu0 = abuse.server_cpu_s(server)
        wrk = abuse.start_wrk(server.url(server.small), 50, args.seconds, args.server_cpus)
        with abuse.spawning_on(args.abuse_cpus):
            prober.start()
        rps, p99, errors, requests = abuse.finish_wrk(wrk, args.seconds)
        cpu = abuse.server_cpu_s(server) - cpu0
        prober.done.set()
        prober.join(PROBE_TIMEOUT_S + 5)
        row.update(rps=rps, p99_ms=p99, errors=errors, requests=requests,
                   cpu_us_per_req=abuse.per_request_us(cpu, requests), first_answer_ms=quantiles(prober.times_ms),
                   probes_failed=prober.failed, conns=conns_held(server.port))
        if count_kingx:
            row["kingx_2xx"] = kingx_2xx(server) - kingx0
    finally:
        sampler.done.set()
        sampler.join(5)
        row.update(max_worker_rss_kib=sampler.max_rss_kib, max_worker_anon_kib=sampler.max_anon_kib,
                   rss_kib=sampler.max_rss_kib_by_role, max_conns=max(most_conns, sampler.max_conns),
                   budget_kib=budgets_kib(server, kind, max(most_conns, sampler.max_conns)))
        for p in procs:
            p.stop(abuse.signal.SIGINT, timeout_s=10)
    if abused:
        # The next phase alone begins once the abuse's connections are gone (bounded wait).
        deadline = time.monotonic() + 60
        while conns_held(server.port) > 60 and time.monotonic() < deadline:
            time.sleep(0.2)
    row["load_after"] = os.getloadavg()[0]
    return row


def start_server(name, kind, spec, args, workdir):
    """kind: "nginx" (serving the files), "kingx" or "proxied" (kingx behind nginx); spec BIN[:MODEL]."""
    nofile = abuse.FD_LIMIT if args.case == "fd-exhaustion" else None
    binary, _, model = spec.partition(":")
    with abuse.spawning_on(args.server_cpus):
        if kind == "nginx":
            return abuse.nginx_server(workdir, 1, nofile)
        if kind == "proxied":
            return abuse.proxied_kingx_server(binary, workdir, model or "event", nofile, name)
        return abuse.kingx_server(binary, workdir, 1, model or "event", [], nofile, name)


def budgets_kib(server, kind, conns):
    """{role: budget KiB or None} for the roles of server.workers_by_role()."""
    if kind == "proxied":
        return {"kingx": abuse.kingx_budget_kib([]), "nginx": abuse.nginx_proxy_budget_kib(conns)}
    return {"worker": abuse.kingx_budget_kib([]) if kind == "kingx" else None}


def kingx_2xx(server):
    """The 2xx answers kingx behind a proxied server has given so far (its /metrics, read directly)."""
    status, body = abuse.procs.http_request(server.kingx.port, "GET", "/metrics", timeout_s=10)
    for line in body.decode().splitlines():
        if line.startswith('kingx_http_responses_total{class="2xx"} '):
            return int(float(line.split()[1]))
    raise RuntimeError(f"kingx /metrics ({status}) has no 2xx count")


def rss_cell(row):
    """ "kingx 12.3 / 112, nginx 20.1 / 270" (largest RSS / budget, MiB; "no budget" for nginx serving
    files) and whether every role stayed within its budget."""
    cells, within = [], True
    for role, kib in sorted(row.get("rss_kib", {}).items()):
        budget = row.get("budget_kib", {}).get(role)
        cells.append(f"{'' if role == 'worker' else role + ' '}{kib / 1024:.1f} / "
                     f"{'no budget' if budget is None else f'{budget / 1024:.0f}'}")
        within = within and (budget is None or kib <= budget)
    return ", ".join(cells) or "–", within


def medians(rows):
    """Per server: {"rps_ratio", "cpu_ratio": medians of its pairs (None: no pair, no answer),
    "pairs", "rss": its largest RSS per role / budget (rss_cell), "within_budget": in every phase}."""
    per = {}
    for a, b in zip(rows[0::2], rows[1::2]):
        # An alone phase answered with errors (a 403 for a file nginx's workers cannot read) measured
        # cheaper answers than the ones it is compared with: not a pair. An abused phase wrk got no
        # answer in is a pair: req/s ratio 0, CPU ratio none.
        if a["rps"] and a["cpu_us_per_req"] and not a["errors"]:
            per.setdefault(a["server"], []).append(
                (b["rps"] / a["rps"], a["cpu_us_per_req"] / b["cpu_us_per_req"] if b["cpu_us_per_req"] else None))
    out = {}
    for name in {r["server"] for r in rows}:
        xs = per.get(name, [])
        cpu = [y for _, y in xs if y is not None]
        mine = [r for r in rows if r["server"] == name]
        biggest = {"rss_kib": {}, "budget_kib": {}}
        for r in mine:
            for role, kib in r.get("rss_kib", {}).items():
                if kib >= biggest["rss_kib"].get(role, -1):
                    biggest["rss_kib"][role] = kib
                    biggest["budget_kib"][role] = r.get("budget_kib", {}).get(role)
        out[name] = {"rps_ratio": statistics.median(x for x, _ in xs) if xs else None,
                     "cpu_ratio": statistics.median(cpu) if cpu else None, "pairs": len(xs),
                     "rss": rss_cell(biggest)[0], "within_budget": all(rss_cell(r)[1] for r in mine)}
    return out


def ratio_text(x, none):
    return none if x is None else f"{x:.3f}"


def summary(rows, case, started):
    """summary.md's text: every pair, then per server the medians of its pairs and its largest RSS."""
    lines = [f"# Paired phases: {case}, {started}", "",
             "`" + " ".join(sys.argv) + "`", "",
             "Each abused phase ÷ the alone phase before it on the same server process. First answer: "
             "a fresh connection's GET, time to the first byte of the answer (ms). RSS: each worker's largest "
             "in the abused phase / its budget (MiB).", "",
             "| round | server | pair | req/s ratio | CPU µs/req alone → abused | first answer alone p50/p99/max "
             "| first answer abused p50/p99/max | load | RSS / budget, MiB | in place after s "
             "| wrk errors alone / abused |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    pairs = list(zip(rows[0::2], rows[1::2]))
    for a, b in pairs:
        fa, fb = a["first_answer_ms"], b["first_answer_ms"]
        ratio = round(b["rps"] / a["rps"], 3) if a["rps"] else None
        lines.append(f"| {a['round']} | {a['server']} | {a['pair']} | {ratio} | {a['cpu_us_per_req']} → "
                     f"{b['cpu_us_per_req']} | {fa.get('p50')}/{fa.get('p99')}/{fa.get('max')} | "
                     f"{fb.get('p50')}/{fb.get('p99')}/{fb.get('max')} | {a['load']:.1f}–{b['load_after']:.1f} | "
                     f"{rss_cell(b)[0]} | {b.get('in_place_s', '–')} | {a['errors']} / {b['errors']} |")
    lines += ["", "Pairs whose alone phase had wrk errors are left out of the medians; a CPU ratio needs wrk "
              "requests answered in the abused phase. RSS: the largest of every phase (abused or not) / budget.", "",
              "| server | req/s ratio, median of pairs | CPU ratio (alone ÷ abused µs/req), median | pairs "
              "| largest RSS / budget, MiB | within budget |", "|---|---|---|---|---|---|"]
    for name, m in sorted(medians(rows).items()):
        lines.append(f"| {name} | {ratio_text(m['rps_ratio'], '–')} | {ratio_text(m['cpu_ratio'], 'no answer')} | "
                     f"{m['pairs']} | {m['rss']} | {'yes' if m['within_budget'] else 'NO'} |")
    return "\n".join(lines) + "\n"


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", required=True)
    ap.add_argument("--kingx", action="append", default=[], metavar="NAME=BIN[:MODEL]")
    ap.add_argument("--kingx-proxied", action="append", default=[], metavar="NAME=BIN[:MODEL]",
                    help="that kingx behind nginx serving deploy/nginx-reverse-proxy.conf (repeat)")
    ap.add_argument("--nginx", action="store_true")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--phases", type=int, default=2, help="alone/abused pairs per server and round")
    ap.add_argument("--seconds", type=int, default=6)
    ap.add_argument("--settle", type=int, default=6)
    ap.add_argument("--in-place-s", type=float, default=30,
                    help="after --settle, wait at most this long for the abuse's connections to stop growing "
                         "(0: measure from --settle on, the ramp included, as before)")
    ap.add_argument("--warmup", type=int, default=2, help="seconds of wrk before the first phase")
    ap.add_argument("--probe-ms", type=int, default=50)
    ap.add_argument("--abuse-conns", type=int, default=3000)
    ap.add_argument("--flood-conns", type=int, default=64, help="garbage: the flooding connections")
    ap.add_argument("--pin", default="0:1")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    allowed = set(os.sched_getaffinity(0))
    args.server_cpus, args.abuse_cpus = abuse.parse_pin(args.pin, allowed)
    # bench/abuse.py's start_abuse sizes the abuse's life from these.
    args.abuse_args = types.SimpleNamespace(settle=args.settle, duration=args.seconds, steady=int(args.in_place_s) + 1,
                                            abuse_conns=args.abuse_conns, flood_conns=args.flood_conns,
                                            workers=1)
    abuse.BIG = os.urandom(1 << 20)
    servers = {}  # name -> (kind, BIN[:MODEL])
    for kind, specs in (("kingx", args.kingx), ("proxied", args.kingx_proxied)):
        for spec in specs:
            name, eq, binary = spec.partition("=")
            if not eq or not name or not binary or name == "nginx" or name in servers:
                ap.error(f"{spec}: expected NAME=BIN[:MODEL], each NAME once and not nginx")
            servers[name] = (kind, binary)
    if args.nginx:
        servers["nginx"] = ("nginx", "")
    os.makedirs(args.out, exist_ok=True)
    rng = random.Random(args.seed)
    rows = []
    started = time.strftime("%Y-%m-%d %H:%M")
    for rnd in range(1, args.rounds + 1):
        order = list(servers)
        rng.shuffle(order)
        for name in order:
            workdir = tempfile.mkdtemp(prefix=f"phases-{name}-", dir="/tmp")
            server = None
            try:
                kind, spec = servers[name]
                server = start_server(name, kind, spec, args, workdir)
                abuse.run_wrk(server.url(server.small), 50, args.warmup, args.server_cpus)
                most_conns = 0
                for k in range(args.phases):
                    for abused in (False, True):
                        row = phase(server, kind, args, abused, most_conns)
                        most_conns = row["max_conns"]
                        row.update(round=rnd, server=name, pair=k + 1, case=args.case)
                        rows.append(row)
                        fa = row["first_answer_ms"]
                        abuse.log(f"{args.case} r{rnd} {name:12s} pair {k + 1} {'abused' if abused else 'alone '} "
                                  f"{row['rps']:8.0f} req/s  {row['cpu_us_per_req']} us/req  first answer p50 "
                                  f"{fa.get('p50')} p99 {fa.get('p99')} max {fa.get('max')} ms  "
                                  f"load {row['load']:.1f}")
            finally:
                if server is not None:
                    server.stop()
                shutil.rmtree(workdir, ignore_errors=True)
    with open(os.path.join(args.out, "phases.json"), "w") as f:
        json.dump({"argv": sys.argv, "started": started, "rows": rows}, f, indent=1)
    text = summary(rows, args.case, started)
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
