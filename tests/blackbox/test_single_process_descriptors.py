"""--single-process at its descriptor limit: the writer thread's descriptors
(its segment caches, the key view's runs, compaction's inputs and outputs,
the hint writer) live in the worker's process, so the start's minimum and
the worker's reserve must count them, or a descriptor-heavy moment runs the
process into EMFILE.

At `ulimit -n` 512 (hard and soft: nothing can raise it; --limit N for
another), segments of 64 KiB holding one 40,000-byte value each (KEYS
segments, far more than the worker or the writer may map):
- every key written three times on a busy connection: each overwrite makes
  the writer read the key's older record (its segment opened in the
  writer's own cache), and compaction runs on the dead segments;
- a listing; UPLOADS uploads that rest, each spilling its body to a file,
  as many as the connection and spill caps let in;
- FLOOD connections that send nothing: the worker accepts up to its cap;
- GET of every key on the busy connection, a listing of them all.
The process's descriptors are sampled all along.
No request may fail, no "Too many open files" may be logged, and the
process never holds more than the limit. Counts only, no timing threshold.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_single_process_descriptors.py [--limit N] [--model threads]
"""

import socket
import sys
import threading
import time

from kingx_harness import (Conn, LimitedServer, build_request, cases_of, check, key_path, open_descriptors,
                           pop_flag_value, run_with_servers, wait_settled)

S = None
MODEL_ARGS = sys.argv[1:]
LIMIT = pop_flag_value(MODEL_ARGS, "--limit", 512)
KEYS = 300
VALUE_BYTES = 40_000  # one per 64 KiB segment
FLOOD = 400
UPLOADS = 70  # each rests and spills its body to a file, up to the spill cap


def value(k, round_):
    head = f"{k}:{round_}:".encode()
    return head + bytes([65 + (k + round_) % 26]) * (VALUE_BYTES - len(head))


def test_single_process_at_its_descriptor_limit_never_runs_out_of_descriptors():
    global S
    S = LimitedServer(LIMIT, LIMIT, "--single-process", "--segment-bytes", "64K", "--compression-level", "0",
                      "--compaction-dead-ratio", "0.3", "--body-timeout-ms", "120000", *MODEL_ARGS)
    S.start()
    pid = S.pid
    peak = [0, {}]

    def sample(step):
        kinds = open_descriptors(pid)
        total = sum(kinds.values())
        if total > peak[0]:
            peak[0], peak[1] = total, dict(kinds, step=step)

    # Sampled all along, not only between requests: the writer thread's and
    # compaction's descriptors come and go while the requests are served.
    stop = threading.Event()

    def sampler():
        while not stop.is_set():
            try:
                sample("background")
            except OSError:
                pass
            time.sleep(0.002)

    watcher = threading.Thread(target=sampler)
    watcher.start()
    held = []
    try:
        with Conn(S.port, 60) as busy:
            for round_ in (0, 1, 2):
                for k in range(KEYS):
                    r = busy.request("PUT", key_path(f"sp-{k:04d}"), value(k, round_))
                    check(r.status in (200, 201, 204), f"PUT sp-{k:04d} round {round_}: {r.status} {r.body[:300]!r}")
                    if k % 10 == 0:
                        sample(f"put round {round_}")
            r = busy.request("GET", "/v1/kv/?prefix=sp-&limit=1000")
            check(r.status == 200, f"a listing before the flood: {r.status} {r.body[:300]!r}")
            head = build_request("PUT", key_path("upload"), None, [("Content-Length", str(1 << 20))])
            for _ in range(UPLOADS):
                c = Conn(S.port, timeout=120)
                held.append(c)
                c.send(head + bytes(100 << 10))
            # As many as the connection cap and the spill file cap let in.
            wait_settled(lambda: open_descriptors(pid).get("spill", 0),
                         lambda: busy.request("GET", "/healthz"), 60, "body spill files to stop growing",
                         at_least=1)
            sample("uploads")
            for _ in range(FLOOD):
                try:
                    held.append(socket.create_connection(("127.0.0.1", S.port), timeout=10))
                except OSError:
                    break
            sample("flood")
            for k in range(KEYS):
                r = busy.request("GET", key_path(f"sp-{k:04d}"))
                check(r.status == 200 and r.body == value(k, 2),
                      f"GET sp-{k:04d} at the descriptor limit: {r.status} {r.body[:300]!r}")
                if k % 10 == 0:
                    sample("gets")
            r = busy.request("GET", "/v1/kv/?prefix=sp-&limit=1000")
            check(r.status == 200 and r.body.count(b'"sp-') == KEYS,
                  f"a listing at the descriptor limit: {r.status} {r.body[:300]!r}")
            sample("listing")
            r = busy.request("GET", "/metrics")
            check(r.status == 200, f"/metrics: {r.status}")
    finally:
        stop.set()
        watcher.join()
        for c in held:
            c.close()
        S.stop()
    print(f"  peak descriptors {peak[0]} of {LIMIT}: {peak[1]}")
    logs = S.logs(limit=400_000)
    check("Too many open files" not in logs, "EMFILE in the logs:\n" + logs[-6000:])
    check(peak[0] <= LIMIT, f"peak {peak[0]} > limit {LIMIT}")


if __name__ == "__main__":
    run_with_servers("single process at the descriptor limit" + (" " + " ".join(MODEL_ARGS) if MODEL_ARGS else ""),
                     cases_of(globals()), lambda: S)
