#!/usr/bin/env python3
"""Instructions (callgrind Ir) of one /metrics scrape in a thread-pool worker, by pool size and by
how many pool threads counted.

    bench/callgrind_scrape.py KINGX [--threads 1000] [--used 1,16,150,1000] [--scrapes 20]

For each --used count U (at most --threads): a fresh server under callgrind (--workers 1,
--model threads --threads T, 127.0.0.1, ephemeral port, data under $TMPDIR, stopped by PID);
one PUT, then U connections held open at once, each answered one GET (each served by its own
pool thread, so U threads have counted), then closed; the worker's counters are zeroed, --scrapes
GET /metrics are sent on one keep-alive connection, and the worker's counters are dumped. Printed
per U: the worker's whole Ir per scrape (every thread: idle threads' wake-ups in that window are
in it) and the inclusive Ir of ShmKvBackend::RenderMetrics per scrape (the scrape's summing of
the slots' counters is inlined in it, the rendering with it). Instruction counts: the machine's
load does not move them. Standard library only; needs valgrind.
"""

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from counter_stripes import hold_connections  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "blackbox"))
from kingx_harness import Conn, Server, free_port, key_path  # noqa: E402

FUNCTION = "kingx::ShmKvBackend::RenderMetrics"


def dump_totals(path, function):
    """(whole Ir, inclusive Ir of `function`) of a callgrind dump."""
    total = None
    with open(path) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                total = int(line.split()[1])
                break
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", path],
                         capture_output=True, text=True, check=True).stdout
    incl = 0
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+)\s.*?\s(\S*" + re.escape(function) + r"\S*)", line)
        if m and "[clone" not in line:
            incl = max(incl, int(m.group(1).replace(",", "")))
    return total, incl


def one(binary, threads, used, scrapes):
    port = free_port()
    work = tempfile.mkdtemp(prefix="cg-scrape-")
    server = Server(["--tool=callgrind", "--trace-children=yes", f"--max-threads={threads + 64}",
                     f"--callgrind-out-file={work}/cg.%p", binary, "--listen", f"127.0.0.1:{port}",
                     "--data", f"{work}/data", "--error-log", f"{work}/error.log", "--workers", "1",
                     "--model", "threads", "--threads", str(threads)],
                    workdir=work, port=port, raw_args=True, ready_timeout=300)
    server.bin = "valgrind"
    with server:
        worker = server.wait_children("kingx-worker", 1)[0]
        path = key_path("scrape")
        with Conn(port, timeout=60) as c:
            c.request("PUT", path, b"v" * 100)
        if used > 0 and hold_connections(port, used, path, timeout_s=300) != used:
            raise RuntimeError(f"{used} connections not all answered")
        time.sleep(1.0)
        with Conn(port, timeout=60) as c:
            c.request("GET", "/metrics")  # the scraping thread's first scrape is not counted
            subprocess.run(["callgrind_control", "-z", str(worker)], check=True, capture_output=True)
            for _ in range(scrapes):
                r = c.request("GET", "/metrics")
                if r.status != 200:
                    raise RuntimeError(f"GET /metrics: {r.status}")
            subprocess.run(["callgrind_control", "-d", str(worker)], check=True, capture_output=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the dump is written at the worker's next client-request check
            dumps = [d for d in glob.glob(f"{work}/cg.{worker}*") if os.path.getsize(d) > 0]
            done = [d for d in dumps if any(line.startswith(("summary:", "totals:")) for line in open(d))]
            if done:
                break
            time.sleep(0.3)
        else:
            raise RuntimeError(f"no dump of worker {worker} in 60 s")
        total, incl = dump_totals(max(done, key=os.path.getmtime), FUNCTION)
    shutil.rmtree(work, ignore_errors=True)
    return round(total / scrapes), round(incl / scrapes)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kingx")
    ap.add_argument("--threads", type=int, default=1000)
    ap.add_argument("--used", default="1,16,150,1000")
    ap.add_argument("--scrapes", type=int, default=20)
    a = ap.parse_args()
    os.environ.setdefault("KINGX_BIN", a.kingx)  # the harness wants one; the server runs under valgrind
    print(f"# {a.kingx} --threads {a.threads}; load {open('/proc/loadavg').read().split()[0]}", flush=True)
    for used in (int(x) for x in a.used.split(",")):
        if used > a.threads:
            continue
        whole, render = one(a.kingx, a.threads, used, a.scrapes)
        print(f"threads {a.threads} used {used}: worker Ir/scrape {whole}  {FUNCTION} Ir/scrape {render}", flush=True)


if __name__ == "__main__":
    main()
