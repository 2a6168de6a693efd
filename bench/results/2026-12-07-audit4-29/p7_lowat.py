#!/usr/bin/env python3
"""audit4 probe 7: README --send-lowat-bytes "a slow reader holds at most this much unsent data in the kernel":
notsent (ss -tin) of readers that read nothing, raw and compressible 8 MiB values, client receive buffers left
alone or set small, at 16K (default) and 64K.

Usage: KINGX_BIN=... python3 p7_lowat.py [extra kingx flags]
"""
import os
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "2026-12-07-audit3-28"))
from probe_common import run, verdict  # noqa: E402
import kingx_harness as h  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from audit4_common import notsent, problem_ok  # noqa: E402,F401

EXTRA = sys.argv[1:]




def p_lowat():
    for lowat, bound in (("16K", 16384), ("64K", 65536)):
        with h.Server(args=EXTRA + ["--send-lowat-bytes", lowat]) as s:
            h.http(s.port, "PUT", "/v1/kv/raw", body=os.urandom(8 * 2**20))
            h.http(s.port, "PUT", "/v1/kv/z", body=b"abcdefgh" * 2**20)
            res = {}
            for key in ("raw", "z"):
                for rcv in (None, 4096):
                    socks = []
                    for _ in range(4):
                        c = socket.socket()
                        if rcv:
                            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcv)
                        c.connect(("127.0.0.1", s.port))
                        c.sendall(f"GET /v1/kv/{key} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                        socks.append(c)
                    time.sleep(1.5)
                    res[(key, rcv)] = notsent(s.port)
                    for c in socks:
                        c.close()
                    time.sleep(0.3)
            worst = max(max(v) for v in res.values() if v)
            verdict(f"--send-lowat-bytes {lowat}: notsent of silent readers at most {bound}", worst <= bound,
                    "; ".join(f"{k}: {v}" for k, v in res.items()))


run([p_lowat])
