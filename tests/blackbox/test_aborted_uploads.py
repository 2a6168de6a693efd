"""Uploads cut off halfway beside whole ones: four clients PUT 300 KB values
(over one write-queue entry with --write-queue-bytes 1M: the large path,
staged part by part) for 8 s, and about one PUT in 30 sends its head and part
of its body, then closes its connection. Every other PUT must be answered
(201/204, or a 5xx for a documented reason) within the client's 15 s: none may
hang, and every acknowledged value reads back. Found by bench/chaos_soak.py
(its cut-off PUTs): the event worker left the other uploads unanswered.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_aborted_uploads.py [--model threads]
"""

import argparse
import sys
import threading
import time

from kingx_harness import Server, check, run_with_server
from kingx_load import ClientState, LoadClient, verify_states

S = None
VALUE_BYTES = 300000
MIX = (97, 0, 0, 0, 0, 0, 0, 3)  # PUT, ..., ABORT (kingx_load.LoadClient.OPS)


def test_uploads_cut_off_leave_the_others_answered():
    states = [ClientState(c, [b"abort-%d-%d" % (c, i) for i in range(8)], 40 + c) for c in range(4)]
    stop = threading.Event()
    clients = [LoadClient(lambda: S.port, st, stop, mix=MIX, policy="reconnect",
                          value_size=lambda rng, key: VALUE_BYTES, deadline=time.monotonic() + 120)
               for st in states]
    for c in clients:
        c.start()
    time.sleep(8)
    stop.set()
    for c in clients:
        c.join(60)
    hung = [f for c in clients for f in c.failures if "timed out" in f.error]
    errors = [e for c in clients for e in c.errors]
    aborted = sum(c.ops_by_kind.get("ABORT", 0) for c in clients)
    puts = sum(st.acked_puts for st in states)
    print(f"{puts} PUTs acknowledged, {aborted} cut off, {len(hung)} unanswered", flush=True)
    check(not errors, "contract violations:\n  " + "\n  ".join(errors[:10]))
    check(not hung, f"{len(hung)} PUTs got no answer within 15 s beside {aborted} cut-off uploads: {hung[:4]}")
    check(aborted > 0, "no upload was cut off: the case did not run")
    errs = verify_states(S.port, states, settle=False)
    check(not errs, "acknowledged values lost:\n  " + "\n  ".join(errs[:10]))


def main():
    global S
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="event")
    args = ap.parse_args()
    S = Server(["--workers", "2", "--model", args.model, "--write-queue-bytes", "1M"])
    run_with_server(f"uploads cut off ({args.model})", S,
                    [("uploads cut off halfway leave the others answered", test_uploads_cut_off_leave_the_others_answered)],
                    check_stop=True)


if __name__ == "__main__":
    sys.exit(main())
