#!/usr/bin/env python3
"""Smoke test of bench/backup.py: one short round (alone, back to back, paced) into a scratch
directory; every run must have its figures, both ratios and at least one cut must be reported,
and the backups must have happened. No speed threshold (the ratios are the script's report)."""
import json
import os
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
kingx = os.environ.get("KINGX_BIN") or sys.exit("KINGX_BIN is not set")
with tempfile.TemporaryDirectory(prefix="kingx-backup-quick-") as out:
    p = subprocess.run([sys.executable, os.path.join(here, "backup.py"), "--kingx", kingx, "--keys", "300",
                        "--seconds", "1", "--rounds", "1", "--clients", "2", "--paced-mb-s", "5",
                        "--max-minutes", "3", "--out", out],
                       capture_output=True, text=True, timeout=240)
    print(p.stdout[-3000:], p.stderr[-3000:])
    if p.returncode != 0:
        sys.exit(f"backup.py exited with {p.returncode}")
    r = json.load(open(os.path.join(out, "result.json")))
    if r["rounds_run"] != 1:
        sys.exit(f"rounds run: {r['rounds_run']}")
    runs = r["rounds"][0]["runs"]
    for mode in ("alone", "back_to_back", "paced"):
        if runs[mode]["get_per_s"] <= 0 or runs[mode]["put_per_s"] <= 0:
            sys.exit(f"{mode}: no requests counted: {runs[mode]}")
    for mode in ("back_to_back", "paced"):
        if runs[mode].get("backups", 0) < 1 or runs[mode].get("backup_bytes", 0) <= 0:
            sys.exit(f"{mode}: no backup taken: {runs[mode]}")
        for kind in ("get", "put"):
            if f"median_{kind}_ratio_{mode}" not in r:
                sys.exit(f"no {kind} ratio for {mode}")
    if r["writer_cut_pauses"]["count"] < 2:
        sys.exit(f"cut pauses not reported: {r['writer_cut_pauses']}")
print("backup quick: ok")
