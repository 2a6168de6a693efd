#!/usr/bin/env python3
"""audit2 probe: README --send-lowat-bytes "a slow reader holds at most this
much unsent data in the kernel": 8 slow readers (receive buffer 4 KiB, reading
nothing) of an 8 MiB random value and of an 8 MiB compressible one; the
server side's `notsent` bytes from `ss -tin` after 1 s, default 16 KiB and
--send-lowat-bytes 64K.

    KINGX_BIN=/work/ref/s27/kingx python3 p7_lowat.py [extra flags]
"""
import os, random, re, socket, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../tests/blackbox"))
from kingx_harness import Server, http  # noqa

EXTRA = sys.argv[1:]
rnd = random.Random(7)
words = [bytes(rnd.choice(b"abcdefghij") for _ in range(rnd.randint(3, 9))) for _ in range(500)]
comp = b" ".join(rnd.choice(words) for _ in range(1 << 20))[:8 << 20]
raw = os.urandom(8 << 20)
for lowat in (None, "64K"):
    args = ["--workers", "1"] + (["--send-lowat-bytes", lowat] if lowat else []) + EXTRA
    with Server(args) as s:
        http(s.port, "PUT", "/v1/kv/raw", raw); http(s.port, "PUT", "/v1/kv/comp", comp)
        for key in ("raw", "comp"):
            cs = []
            for i in range(8):
                c = socket.socket(); c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                c.connect(("127.0.0.1", s.port)); c.sendall(b"GET /v1/kv/%s HTTP/1.1\r\nHost: x\r\n\r\n" % key.encode())
                cs.append(c)
            time.sleep(1.0)
            out = subprocess.run(["ss", "-tin", "state", "established", "( sport = :%d )" % s.port], capture_output=True, text=True).stdout
            ns = [int(x) for x in re.findall(r"notsent:(\d+)", out)]
            q = [int(l.split()[1]) for l in out.splitlines() if re.match(r"^\d+\s+\d+\s", l.strip())] if False else []
            sendq = [int(m.group(1)) for m in re.finditer(r"^\s*\S*\s*\d+\s+(\d+)\s+127\.0\.0\.1:%d" % s.port, out, re.M)]
            print(f"lowat {lowat or 'default 16K'} {key}: notsent per socket {ns} (max {max(ns) if ns else None}); Send-Q {sendq}", flush=True)
            for c in cs:
                c.close()
