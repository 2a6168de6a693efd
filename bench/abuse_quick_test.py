#!/usr/bin/env python3
"""Smoke test of bench/abuse.py: three short cases against kingx, a second kingx binary given with
--kingx-alt (the same one, under another name) and nginx, into a scratch directory; every row must
have both measurements, no server may answer its measurement alone with errors (nginx's 403 for a
file its workers cannot read made the reference measure error pages), and the summary must name
every case and server; each phase records the server's CPU per request. Then one case with --pin and
--steady: the server, wrk and the abuse tool must have run on the CPUs asked for (read back from
/proc), the steady-state phase must be measured, and a malformed --pin is refused. No speed or
memory threshold (those are the script's report, not a test)."""
import json
import os
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
kingx = os.environ.get("KINGX_BIN", os.path.join(os.path.dirname(here), "build", "src", "kingx"))
cases = ["slowloris", "slow-read-zstd", "garbage"]
servers = ["kingx", "alt", "nginx"]
with tempfile.TemporaryDirectory(prefix="kingx-abuse-quick-") as out:
    p = subprocess.run([sys.executable, os.path.join(here, "abuse.py"), "--cases", ",".join(cases),
                        "--servers", ",".join(servers), "--kingx", kingx, "--kingx-alt", f"alt={kingx}",
                        "--duration", "1", "--settle", "1", "--abuse-conns", "50", "--out", out],
                       capture_output=True, text=True, timeout=900)
    print(p.stdout[-3000:], p.stderr[-3000:])
    if p.returncode != 0:
        sys.exit(f"abuse.py exited with {p.returncode}")
    rows = json.load(open(os.path.join(out, "abuse.json")))["rows"]
    summary = open(os.path.join(out, "summary.md")).read()
    want = {(c, s) for c in cases for s in servers}
    got = {(r["case"], r["server"]) for r in rows if "abuse_rps" in r and "base_rps" in r}
    if got != want:
        sys.exit(f"missing measurements: {sorted(want - got)}; rows: {rows}")
    bad = [(r["case"], r["server"]) for r in rows
           if not (r["base_server_cpu_us_per_req"] and r["abuse_server_cpu_us_per_req"])]
    if bad:
        sys.exit(f"no server CPU per request (case, server): {bad}")
    bad = [(r["case"], r["server"], r["base_errors"]) for r in rows if r["base_errors"]]
    if bad:
        sys.exit(f"errors in the measurement alone (case, server, errors): {bad}")
    for c in cases:
        for s in servers:
            if f"| {c} | {s} |" not in summary:
                sys.exit(f"summary lacks {c} {s}")
    bad = subprocess.run([sys.executable, os.path.join(here, "abuse.py"), "--servers", "kingx,other",
                          "--out", out], capture_output=True, text=True, timeout=60)
    if bad.returncode == 0 or "unknown server other" not in bad.stderr:
        sys.exit(f"an unknown server name was not refused: {bad.returncode} {bad.stderr[-500:]}")
    bad = subprocess.run([sys.executable, os.path.join(here, "abuse.py"), "--pin", "0:0", "--out", out],
                         capture_output=True, text=True, timeout=60)
    if bad.returncode == 0 or "disjoint" not in bad.stderr:
        sys.exit(f"an overlapping --pin was not refused: {bad.returncode} {bad.stderr[-500:]}")
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        print(f"--pin not tried: this process may run on one CPU only ({cpus})")
    else:
        pin_out = os.path.join(out, "pinned")
        p = subprocess.run([sys.executable, os.path.join(here, "abuse.py"), "--cases", "garbage",
                            "--servers", "kingx,nginx", "--kingx", kingx, "--pin", f"{cpus[0]}:{cpus[1]}",
                            "--duration", "1", "--settle", "1", "--steady", "1", "--out", pin_out],
                           capture_output=True, text=True, timeout=300)
        print(p.stdout[-1500:], p.stderr[-1500:])
        if p.returncode != 0:
            sys.exit(f"abuse.py --pin exited with {p.returncode}")
        for r in json.load(open(os.path.join(pin_out, "abuse.json")))["rows"]:
            seen = (r.get("cpus_server"), r.get("cpus_wrk"), r.get("cpus_abuse"))
            if seen != ([str(cpus[0])], str(cpus[0]), str(cpus[1])):
                sys.exit(f"{r['server']} --pin {cpus[0]}:{cpus[1]}: ran on (server, wrk, abuse) {seen}")
            if not (r.get("steady_rps") and r.get("steady_server_cpu_us_per_req")):
                sys.exit(f"{r['server']} --steady 1: no steady-state measurement in {r}")
        if "Pinned: the server and wrk on CPUs" not in open(os.path.join(pin_out, "summary.md")).read():
            sys.exit("the pinned summary does not say it was pinned")
print("abuse quick: ok")
