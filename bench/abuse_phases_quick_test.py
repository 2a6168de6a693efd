#!/usr/bin/env python3
"""Smoke test of bench/abuse_phases.py: one one-second pair (alone, then beside a garbage flood) for
kingx in each model, nginx, and kingx's thread model behind nginx serving the shipped
deploy/nginx-reverse-proxy.conf, into a scratch directory; every phase must report wrk's requests, the
server's CPU per request, at least one new client's time to first answer and each worker's largest
RSS with its budget (kingx's and, behind the proxy, nginx's too); no alone phase may have wrk errors
(nginx answered every request 403 when its workers could not read the files: the reference measured
error pages); behind the proxy kingx itself must have answered 2xx at least every request wrk
completed (nginx answering by itself, a 200 of another site or its own error page, is not kingx); and
the summary must name every server. No speed or memory threshold (those are the script's report, not
a test)."""
import json
import os
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
kingx = os.environ.get("KINGX_BIN", os.path.join(os.path.dirname(here), "build", "src", "kingx"))
with tempfile.TemporaryDirectory(prefix="kingx-phases-quick-") as out:
    p = subprocess.run([sys.executable, os.path.join(here, "abuse_phases.py"), "--case", "garbage",
                        "--kingx", f"event={kingx}", "--kingx", f"threads={kingx}:threads",
                        "--kingx-proxied", f"threads-proxied={kingx}:threads", "--nginx", "--rounds", "1",
                        "--phases", "1", "--seconds", "1", "--settle", "1", "--warmup", "1", "--out", out],
                       capture_output=True, text=True, timeout=300)
    print(p.stdout[-3000:], p.stderr[-3000:])
    if p.returncode != 0:
        sys.exit(f"abuse_phases.py exited with {p.returncode}")
    rows = json.load(open(os.path.join(out, "phases.json")))["rows"]
    got = sorted((r["server"], r["abused"]) for r in rows)
    if got != [("event", False), ("event", True), ("nginx", False), ("nginx", True), ("threads", False),
               ("threads", True), ("threads-proxied", False), ("threads-proxied", True)]:
        sys.exit(f"unexpected phases: {got}")
    erred = [(r["server"], r["errors"], r["requests"]) for r in rows if not r["abused"] and r["errors"]]
    if erred:
        sys.exit(f"alone phases answered with errors (server, errors, requests): {erred}")
    bad = [r for r in rows if not (r["requests"] and r["cpu_us_per_req"] and r["first_answer_ms"].get("n"))]
    if bad:
        sys.exit(f"phases without requests, CPU per request or a first answer: {bad}")
    roles = {r["server"]: sorted(r["rss_kib"]) for r in rows}
    if roles != {"event": ["worker"], "threads": ["worker"], "nginx": ["worker"],
                 "threads-proxied": ["kingx", "nginx"]}:
        sys.exit(f"each worker's RSS is not recorded (server: roles): {roles}")
    unbudgeted = [(r["server"], role) for r in rows for role, kib in r["rss_kib"].items()
                  if not kib or (r["budget_kib"][role] is None) != (r["server"] == "nginx")]
    if unbudgeted:
        sys.exit(f"a worker without an RSS or a kingx/proxy worker without a budget: {unbudgeted}")
    proxied = [(r["kingx_2xx"], r["requests"]) for r in rows if r["server"] == "threads-proxied" and not r["abused"]]
    if not proxied or any(answered < requests for answered, requests in proxied):
        sys.exit(f"behind nginx, kingx did not answer every request wrk completed (kingx 2xx, wrk): {proxied}")
    summary = open(os.path.join(out, "summary.md")).read()
    if any(f"| {name} |" not in summary for name in ("event", "threads", "threads-proxied", "nginx")):
        sys.exit(f"the summary does not name every server:\n{summary}")
print("ok")
