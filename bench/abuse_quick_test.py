#!/usr/bin/env python3
"""Smoke test of bench/abuse.py: three short cases against kingx and nginx into a scratch
directory; every row must have both measurements and the summary must name every case.
No speed or memory threshold (those are the script's report, not a test)."""
import json
import os
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
cases = ["slowloris", "slow-read-zstd", "garbage"]
with tempfile.TemporaryDirectory(prefix="kingx-abuse-quick-") as out:
    p = subprocess.run([sys.executable, os.path.join(here, "abuse.py"), "--cases", ",".join(cases),
                        "--duration", "1", "--settle", "1", "--abuse-conns", "50", "--out", out],
                       capture_output=True, text=True, timeout=600)
    print(p.stdout[-3000:], p.stderr[-3000:])
    if p.returncode != 0:
        sys.exit(f"abuse.py exited with {p.returncode}")
    rows = json.load(open(os.path.join(out, "abuse.json")))["rows"]
    summary = open(os.path.join(out, "summary.md")).read()
    want = {(c, s) for c in cases for s in ("kingx", "nginx")}
    got = {(r["case"], r["server"]) for r in rows if "abuse_rps" in r and "base_rps" in r}
    if got != want:
        sys.exit(f"missing measurements: {sorted(want - got)}; rows: {rows}")
    for c in cases:
        if f"| {c} | kingx |" not in summary:
            sys.exit(f"summary lacks {c}")
print("abuse quick: ok")
