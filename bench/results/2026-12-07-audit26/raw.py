#!/usr/bin/env python3
"""raw.py PORT [WAIT_S]: send stdin's bytes to 127.0.0.1:PORT, print what comes back until EOF or WAIT_S of silence."""
import socket, sys
port = int(sys.argv[1]); wait = float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
s = socket.create_connection(("127.0.0.1", port)); s.settimeout(wait)
data = sys.stdin.buffer.read()
try:
    s.sendall(data)
except OSError as e:
    print("send:", e)
out = b""
try:
    while True:
        b = s.recv(65536)
        if not b: out += b"<EOF>"; break
        out += b
except socket.timeout:
    out += b"<silence>"
except OSError as e:
    out += ("<%s>" % e).encode()
sys.stdout.buffer.write(out[:4000] + b"\n")
