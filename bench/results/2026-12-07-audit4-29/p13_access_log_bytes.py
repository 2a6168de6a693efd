#!/usr/bin/env python3
"""audit4 probe 13 (a failing check for the lead, not in the suite): README "access log ... nginx's combined
format": its 10th field is nginx's $body_bytes_sent, the body bytes the client was sent. A GET of an 8 MiB
value whose client reads nothing (closed by --send-timeout-ms 1000) and one whose client reads 1,000 bytes and
closes: kingx's line against Debian's nginx serving the same 8 MiB file with the same two clients.

Usage: KINGX_BIN=... python3 p13_access_log_bytes.py [extra kingx flags]
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "2026-12-07-audit3-28"))
from probe_common import run, verdict  # noqa: E402
import kingx_harness as h  # noqa: E402

EXTRA = sys.argv[1:]
BODY = os.urandom(8 << 20)


def clients(port, path):
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.connect(("127.0.0.1", port))
    c.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nUser-Agent: silent\r\n\r\n".encode())
    time.sleep(3.5)
    c.close()
    c = socket.create_connection(("127.0.0.1", port))
    c.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nUser-Agent: dropper\r\n\r\n".encode())
    c.recv(1000)
    c.close()
    time.sleep(1.5)


def bytes_by_agent(log):
    out = {}
    for line in open(log):
        m = re.search(r'" (\d{3}) (\d+) "[^"]*" "(silent|dropper)"', line)
        if m:
            out[m.group(3)] = (int(m.group(1)), int(m.group(2)))
    return out


def p_body_bytes_sent():
    with h.Server(args=EXTRA + ["--workers", "1", "--send-timeout-ms", "1000"]) as s:
        h.http(s.port, "PUT", "/v1/kv/big", body=BODY)
        clients(s.port, "/v1/kv/big")
        s.stop()
        kx = bytes_by_agent(s.access_log)
    d = tempfile.mkdtemp(prefix="audit4-nginx-")
    with open(os.path.join(d, "big"), "wb") as f:
        f.write(BODY)
    port = h.free_port()
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""user root; daemon off; pid {d}/nginx.pid; error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{ access_log {d}/access.log combined; send_timeout 1s; sendfile off;
  server {{ listen 127.0.0.1:{port}; root {d}; }} }}
""")
    ng = subprocess.Popen(["nginx", "-p", d, "-c", conf], stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        clients(port, "/big")
    finally:
        ng.terminate()
        ng.wait(10)
    nx = bytes_by_agent(os.path.join(d, "access.log"))
    shutil.rmtree(d, ignore_errors=True)
    ok = all(kx.get(a, (0, 1 << 30))[1] < 1 << 20 for a in ("silent", "dropper"))
    verdict("access log: body bytes sent of responses cut short (nginx's $body_bytes_sent)", ok,
            f"kingx {kx}; nginx {nx}")


run([p_body_bytes_sent])
