#!/usr/bin/env python3
"""Audit probe: /metrics through a strict Prometheus text-format 0.0.4 parser written from
the format's spec (not promtool), scraped repeatedly under a PUT/GET load and across a worker
kill -9 and a HUP. Checks per scrape: every line is a HELP, TYPE, comment or sample; HELP/TYPE
at most once per family and before its samples; samples of a family contiguous; metric and label
names valid; label values escaped (only \\\\, \\", \\n); no duplicate series; values parse as
Go floats; histograms: le ascending, cumulative non-decreasing, +Inf present and == _count, _sum
present; counters (and histogram buckets/_count/_sum) never go down between scrapes.
Usage: p2_metrics.py KINGX_BIN [extra server args]"""
import math, os, re, signal, socket, subprocess, sys, tempfile, threading, time, shutil

BIN = sys.argv[1]; EXTRA = sys.argv[2:]
NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*$")
LNAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*$")

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def get(port, path, method="GET", body=None):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    hdr = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    if body is not None: hdr += f"Content-Length: {len(body)}\r\n"
    s.sendall(hdr.encode() + b"\r\n" + (body or b""))
    out = b""
    while True:
        b = s.recv(65536)
        if not b: break
        out += b
    s.close()
    i = out.find(b"\r\n\r\n")
    return int(out.split()[1]), out[:i].decode("latin1"), out[i+4:]

def parse_labels(s, errs, line):
    # s: the text between { and }, strict
    labels = []; i = 0
    while i < len(s):
        m = re.match(r"([a-zA-Z_][a-zA-Z0-9_]*)=\"", s[i:])
        if not m: errs.append(f"bad label at {i}: {line!r}"); return None
        name = m.group(1); i += m.end(); val = ""
        while True:
            if i >= len(s): errs.append(f"unterminated label value: {line!r}"); return None
            c = s[i]
            if c == "\\":
                n = s[i+1:i+2]
                if n == "\\": val += "\\"
                elif n == '"': val += '"'
                elif n == "n": val += "\n"
                else: errs.append(f"bad escape \\{n}: {line!r}"); return None
                i += 2
            elif c == '"': i += 1; break
            elif c == "\n": errs.append(f"raw newline in label: {line!r}"); return None
            else: val += c; i += 1
        labels.append((name, val))
        if i < len(s):
            if s[i] != ",": errs.append(f"expected , at {i}: {line!r}"); return None
            i += 1
    names = [n for n, _ in labels]
    if len(set(names)) != len(names): errs.append(f"duplicate label name: {line!r}")
    return tuple(labels)

def parse_value(v, errs, line):
    if v in ("+Inf", "-Inf", "NaN"): return float(v.replace("+", ""))
    if not re.match(r"^[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?)$", v):
        errs.append(f"bad value {v!r}: {line!r}"); return None
    return float(v)

def parse(text):
    errs = []; fams = {}; order = []; series = {}; seen_done = set(); cur = None
    if not text.endswith("\n"): errs.append("does not end with a newline")
    for line in text.split("\n")[:-1]:
        if line == "": errs.append("empty line"); continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not NAME.match(name): errs.append(f"bad name in {line!r}")
                f = fams.setdefault(name, {"type": "untyped", "help": None, "typed": False, "samples": False})
                if parts[1] == "TYPE":
                    if f["typed"]: errs.append(f"TYPE twice for {name}")
                    if f["samples"]: errs.append(f"TYPE after samples for {name}")
                    t = parts[3] if len(parts) > 3 else ""
                    if t not in ("counter", "gauge", "histogram", "summary", "untyped"): errs.append(f"bad type {line!r}")
                    f["type"] = t; f["typed"] = True
                else:
                    if f["help"] is not None: errs.append(f"HELP twice for {name}")
                    h = parts[3] if len(parts) > 3 else ""
                    if re.search(r"\\[^\\n]", h): errs.append(f"bad escape in HELP {line!r}")
                    f["help"] = h
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( (-?\d+))?$", line)
        if not m: errs.append(f"malformed sample {line!r}"); continue
        name = m.group(1); labels = parse_labels(m.group(3), errs, line) if m.group(2) else ()
        v = parse_value(m.group(4), errs, line)
        # family: histogram suffixes
        fam = name
        for suf in ("_bucket", "_sum", "_count"):
            if name.endswith(suf) and name[:-len(suf)] in fams and fams[name[:-len(suf)]]["type"] in ("histogram", "summary"):
                fam = name[:-len(suf)]
        if fam not in fams: fams[fam] = {"type": "untyped", "help": None, "typed": False, "samples": False}
        if fam != cur:
            if fam in seen_done: errs.append(f"samples of {fam} not contiguous")
            if cur: seen_done.add(cur)
            cur = fam
        fams[fam]["samples"] = True
        key = (name, labels)
        if key in series: errs.append(f"duplicate series {line!r}")
        series[key] = v
        if fams[fam]["type"] == "histogram" and name == fam: errs.append(f"bare sample of histogram {line!r}")
        if fams[fam]["type"] in ("counter",) and v is not None and (v < 0 or math.isnan(v)): errs.append(f"negative counter {line!r}")
    # histograms
    for fam, f in fams.items():
        if f["type"] != "histogram": continue
        groups = {}
        for (name, labels), v in series.items():
            if name == fam + "_bucket":
                le = dict(labels).get("le")
                if le is None: errs.append(f"bucket without le: {fam}"); continue
                rest = tuple(x for x in labels if x[0] != "le")
                groups.setdefault(rest, []).append((float(le.replace("+Inf", "inf")), le, v))
        for rest, bs in groups.items():
            order_le = [b[0] for b in bs]
            bs_sorted = sorted(bs)
            if bs[-1][1] != "+Inf": errs.append(f"{fam}{rest}: last bucket not +Inf")
            for a, b in zip(bs_sorted, bs_sorted[1:]):
                if b[2] < a[2]: errs.append(f"{fam}{rest}: bucket le={b[1]} {b[2]} < le={a[1]} {a[2]}")
            cnt = series.get((fam + "_count", rest)); sm = series.get((fam + "_sum", rest))
            if cnt is None or sm is None: errs.append(f"{fam}{rest}: missing _count or _sum")
            elif bs_sorted[-1][2] != cnt: errs.append(f"{fam}{rest}: +Inf {bs_sorted[-1][2]} != _count {cnt}")
            if len(set(order_le)) != len(order_le): errs.append(f"{fam}: duplicate le")
    return errs, fams, series

def monotonic(prev, cur, fams, errs, what):
    for (name, labels), v in cur.items():
        fam = name
        for suf in ("_bucket", "_sum", "_count"):
            if name.endswith(suf) and name[:-len(suf)] in fams: fam = name[:-len(suf)]
        t = fams.get(fam, {}).get("type")
        if t in ("counter", "histogram") and (name, labels) in prev and v < prev[(name, labels)]:
            errs.append(f"{what}: {name}{dict(labels)} went down {prev[(name, labels)]} -> {v}")

def main():
    d = tempfile.mkdtemp(prefix="audit-p2-", dir="/tmp")
    port = free_port()
    p = subprocess.Popen([BIN, "--listen", f"127.0.0.1:{port}", "--data", d + "/data", "--workers", "2"] + EXTRA,
                         stdout=open(d + "/out", "w"), stderr=subprocess.STDOUT, start_new_session=True)
    stop = threading.Event(); counts = {"req": 0}
    try:
        for _ in range(100):
            try:
                if get(port, "/readyz")[0] == 200: break
            except OSError: pass
            time.sleep(0.1)
        def load(i):
            n = 0
            while not stop.is_set() and n < 20000:
                try:
                    get(port, f"/v1/kv/k{i}-{n % 50}", "PUT", b"v" * (n % 3000))
                    get(port, f"/v1/kv/k{i}-{n % 50}")
                    get(port, f"/v1/kv/zz{n}", "HEAD")
                except OSError: pass
                n += 1; counts["req"] += 3
        ths = [threading.Thread(target=load, args=(i,)) for i in range(4)]
        for t in ths: t.start()
        prev = None; total_err = []; scrapes = 0; t0 = time.time(); events = []
        while time.time() - t0 < float(os.environ.get("SECONDS_RUN", "20")):
            st, head, body = get(port, "/metrics")
            errs, fams, series = parse(body.decode("utf-8"))
            if prev is not None: monotonic(prev, series, fams, errs, f"scrape {scrapes}")
            for e in errs: print("ERR", e, flush=True)
            total_err += errs; prev = series; scrapes += 1
            el = time.time() - t0
            if el > 6 and "kill" not in events:
                w = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
                comms = {x: open(f"/proc/{x}/comm").read().strip() for x in w}
                ws = [x for x, c in comms.items() if "worker" in c]
                if ws: os.kill(int(ws[0]), signal.SIGKILL); events.append("kill"); print("killed worker", ws[0], comms[ws[0]], flush=True)
            if el > 12 and "hup" not in events:
                os.kill(p.pid, signal.SIGHUP); events.append("hup"); print("HUP", flush=True)
            time.sleep(0.05)
        stop.set()
        for t in ths: t.join()
        print(f"{scrapes} scrapes, {counts['req']} requests, {len(total_err)} errors; families {len(fams)}")
        print("RESULT", "HELD" if not total_err else "FALSE")
    finally:
        stop.set(); p.terminate(); p.wait(30); shutil.rmtree(d, ignore_errors=True)

main()
