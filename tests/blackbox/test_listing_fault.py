"""A key run that cannot be read under a worker's mapping, end to end: a
listing answers 500 problem+json naming the run, never a crash and never a
page with keys missing; the worker stays up and serves reads and writes.

The sorted key view keeps its keys in run files (data/keys/run-*.kxr) that
workers map and read under the mapping guard (engine/key_run.h). The server
is stopped once so that its keys go into a run, started again, lists once
(the worker maps the run and reads its pages), and then the run files are
truncated under the running server (as damage or an operator would): the
worker's next read of those pages meets a real SIGBUS from the kernel.

No timing threshold: each wait is bounded far above what a loaded machine
needs.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_listing_fault.py [--model threads]
"""

import json
import os
import sys
import tempfile

from kingx_harness import Conn, Server, cases_of, check, http, key_path, metric, run_with_shared_data, wait_for

MODEL_ARGS = sys.argv[1:]
WORKDIR = tempfile.mkdtemp(prefix="kingx-bb-listing-fault-")
DATA = os.path.join(WORKDIR, "data")
KEYS = {f"lf-{i:04d}": os.urandom(100) for i in range(300)}
SERVERS = []


def start():
    if SERVERS:
        SERVERS[-1].stop()  # the next server serves the same data directory
    s = Server(["--workers", "1"] + MODEL_ARGS, data_dir=DATA, workdir=tempfile.mkdtemp(prefix="run-", dir=WORKDIR))
    SERVERS.append(s)
    s.start()
    return s


def runs():
    keys = os.path.join(DATA, "keys")
    return sorted(n for n in os.listdir(keys) if n.startswith("run-") and n.endswith(".kxr"))


def listing(port):
    return http(port, "GET", "/v1/kv/?prefix=lf-&limit=100", timeout=60)


def test_keys_are_written_and_go_into_a_run():
    s = start()
    for key, value in KEYS.items():
        r = http(s.port, "PUT", key_path(key), body=value, timeout=60)
        check(r.status == 201, f"PUT {key}: {r!r}")
    s = start()  # the stop flushed the keys into a run
    check(runs(), "no run file after a restart")
    # 503 while the view checks its runs; then the first page, read from them.
    r = wait_for(lambda: (lambda r: r if r.status == 200 else None)(listing(s.port)), 120, "a listing")
    page = r.json()
    check(len(page.get("keys", [])) == 100, f"the first page: {r.body[:300]!r}")


def test_a_run_cut_under_the_worker_answers_500_naming_it_and_the_worker_serves_on():
    s = SERVERS[-1]
    workers = s.workers()
    names = runs()
    with Conn(s.port, timeout=60) as c:
        check(c.request("GET", "/v1/kv/?prefix=lf-&limit=100").status == 200, "a listing before the cut")
        for name in names:
            os.truncate(os.path.join(DATA, "keys", name), 0)
        r = c.request("GET", "/v1/kv/?prefix=lf-&limit=100")
        check(r.status == 500, f"a listing over a cut run: {r!r}")
        check((r.header("Content-Type") or "").startswith("application/problem+json"), f"{r!r}")
        detail = json.loads(r.body).get("detail", "")
        check(any(name in detail for name in names), f"the problem does not name the run {names}: {detail}")
        # The same connection serves reads and writes on.
        for key in list(KEYS)[:20]:
            g = c.request("GET", key_path(key))
            check(g.status == 200 and g.body == KEYS[key], f"GET {key} after the cut: {g.status}")
        p = c.request("PUT", key_path("lf-after"), body=b"after the cut")
        check(p.status == 201, f"PUT after the cut: {p!r}")
    check(metric(s.port, "kingx_respawns_total") == 0, "a process died of the cut run:\n" + s.logs())
    check(s.workers() == workers, f"workers {workers} became {s.workers()}")


def main():
    title = "listing fault" + (" " + " ".join(MODEL_ARGS) if MODEL_ARGS else "")
    run_with_shared_data(title, cases_of(globals()), SERVERS, WORKDIR)


if __name__ == "__main__":
    main()
