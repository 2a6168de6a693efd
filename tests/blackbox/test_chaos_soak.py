"""The chaos soak's short form, only with KINGX_SOAK=1 (skipped, exit 77,
otherwise): bench/chaos_soak.py against the real binary for 120 s of rounds
(KINGX_CHAOS_SECONDS), each a mixed load of plain and conditional writes,
listing, reloads, USR1 and compaction requests, then one random fault (kill -9
of the group, the master, the writer, a worker, twice in a row; SIGTERM; the
writer stopped past --storage-timeout-ms; a full disk, with a kill -9 on it),
then the acknowledged-write oracle, the listing, `kingx-tool verify` and the
availability of reads. The seed is KINGX_SEED (printed; random when unset).

    KINGX_SOAK=1 KINGX_BIN=build/src/kingx KINGX_TOOL_BIN=build/engine/tool/kingx-tool \\
        python3 tests/blackbox/test_chaos_soak.py
"""

import os
import signal
import subprocess
import sys

from kingx_harness import SKIP, SOAK, require_bin

def _interrupt(signum, frame):
    raise KeyboardInterrupt


SOAK_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "chaos_soak.py")


def main():
    if not SOAK:
        print("SKIP: the chaos soak runs only with KINGX_SOAK=1 (or by hand: bench/chaos_soak.py)")
        return SKIP
    cmd = [sys.executable, SOAK_SCRIPT, "--bin", require_bin(),
           "--tool", os.environ.get("KINGX_TOOL_BIN", ""),
           "--seconds", os.environ.get("KINGX_CHAOS_SECONDS", "120")]
    if os.environ.get("KINGX_SEED"):
        cmd += ["--seed", os.environ["KINGX_SEED"]]
    print(" ".join(cmd), flush=True)
    signal.signal(signal.SIGTERM, _interrupt)  # meson's timeout: let the soak clean up
    p = subprocess.Popen(cmd)
    try:
        return p.wait(int(os.environ.get("KINGX_CHAOS_SECONDS", "120")) + 600)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        p.send_signal(signal.SIGTERM)  # the soak stops its server and unmounts its disk
        p.wait(60)
        print("FAIL: the chaos soak did not end in time")
        return 1


if __name__ == "__main__":
    sys.exit(main())
