#!/usr/bin/env python3
"""Where the kernel's TCP memory sits under the garbage flood beside wrk (pinned as bench/abuse.py
--pin 0:1): after SECONDS of flood, `ss -tmn` split into the server's sockets (local port = the
server's; accepted or waiting in the backlog) and the clients' (peer port = the server's: the flood
tool's and wrk's), summing skmem's r (receive queue memory), t (transmit memory in flight) and w
(queued for sending). tcpmem-rt.json (the first run) summed r and t only.

  tcpmem.py SECONDS name=BIN [name=BIN ...] > tcpmem.json
"""
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../../.."))
import abuse  # noqa: E402
from harness import procs  # noqa: E402


def ss_split(port):
    out = subprocess.run(["ss", "-tmnH"], capture_output=True, text=True, timeout=60).stdout.splitlines()
    res = {"server": [0, 0, 0, 0], "client": [0, 0, 0, 0]}  # sockets, r, t and w bytes
    for i, line in enumerate(out):
        parts = line.split()
        if len(parts) < 5 or parts[0] == "LISTEN":
            continue
        local, peer = parts[3], parts[4]
        side = "server" if local.endswith(f":{port}") else "client" if peer.endswith(f":{port}") else None
        if side is None:
            continue
        mem = out[i + 1] if i + 1 < len(out) and "skmem" in out[i + 1] else line
        m = re.search(r"skmem:\(r(\d+),rb\d+,t(\d+),tb\d+,f\d+,w(\d+)", mem)
        if m:
            res[side][0] += 1
            for k in range(3):
                res[side][k + 1] += int(m.group(k + 1))
    return res


def main():
    seconds = int(sys.argv[1])
    abuse.BIG = random.Random(1).randbytes(1 << 20)
    rows = []
    for name, binary in (a.split("=", 1) for a in sys.argv[2:]):
        workdir = tempfile.mkdtemp(prefix=f"kingx-tcpmem-{name}-")
        try:
            with abuse.spawning_on({0}):
                server = abuse.kingx_server(binary, workdir, 1, "event", [], name=name)
            try:
                wrk = abuse.start_wrk(server.url(server.small), 50, seconds + 2, {0})
                with abuse.spawning_on({1}):
                    tool = procs.Proc("garbage", [sys.executable, os.path.join(abuse.HERE, "abuse_clients.py"),
                                                  "garbage", "--port", str(server.port), "--conns", "64",
                                                  "--seconds", str(seconds + 30)],
                                      os.path.join(workdir, "garbage.log"))
                time.sleep(seconds)
                split = ss_split(server.port)
                tool.stop()
                abuse.finish_wrk(wrk, seconds + 2)
            finally:
                server.stop()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        row = {"server": name, "sockets_r_t": split, "load": os.getloadavg()[0]}
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    json.dump(rows, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
