#!/usr/bin/env python3
"""Smoke test of bench/abuse.py: three short cases against kingx, a second kingx binary given with
--kingx-alt (the same one, under another name) and nginx, into a scratch directory; every row must
have both measurements, no server may answer its measurement alone with errors (nginx's 403 for a
file its workers cannot read made the reference measure error pages), and the summary must name
every case and server. No speed or memory threshold (those are the script's report, not a test)."""
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
print("abuse quick: ok")
