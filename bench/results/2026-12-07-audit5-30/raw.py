#!/usr/bin/env python3
"""Send raw bytes to 127.0.0.1:PORT, print every byte the server answers until it closes or goes quiet.
usage: raw.py PORT [quiet_s] < request-bytes"""
import socket, sys, time
port = int(sys.argv[1]); quiet = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
data = sys.stdin.buffer.read()
s = socket.create_connection(("127.0.0.1", port))
s.sendall(data)
s.settimeout(quiet)
out = b""
end = "quiet"
try:
    while True:
        b = s.recv(65536)
        if not b:
            end = "closed"; break
        out += b
except socket.timeout:
    pass
except ConnectionResetError:
    end = "reset"
sys.stdout.write(out.decode("latin-1"))
sys.stdout.write(f"\n[{end}, {len(out)} bytes]\n")
