#!/usr/bin/env python3
"""audit2 probe: README "Closing after a response: ... reads and drops what
the client still sends until its EOF, for at most 2 s and 16 KiB": after a
`Connection: close` GET answered, the client sends 10 B every 10 ms (far
under 16 KiB) and never its EOF; when does the server end the connection?

    KINGX_BIN=/work/ref/s27/kingx python3 p8_linger_time.py [extra flags]
"""
import os, socket, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../tests/blackbox"))
from kingx_harness import Server  # noqa

with Server(["--workers", "1"] + sys.argv[1:]) as s:
    c = socket.create_connection(("127.0.0.1", s.port))
    c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    c.settimeout(0.05)
    t0 = None; buf = b""; how = None; fin = None
    end = time.monotonic() + 8
    while time.monotonic() < end:
        try:
            d = c.recv(65536)
            if not d:
                if fin is None:
                    fin = time.monotonic()
                time.sleep(0.01)
                try:
                    c.sendall(b"y" * 10)
                except (BrokenPipeError, ConnectionResetError):
                    how = "RST on send"; break
                continue
            buf += d
            if t0 is None and b"\r\n\r\n" in buf:
                t0 = time.monotonic()
        except socket.timeout:
            pass
        except ConnectionResetError:
            how = "RST"; break
        try:
            c.sendall(b"y" * 10)
        except (BrokenPipeError, ConnectionResetError):
            how = "RST on send"; break
        time.sleep(0.01)
    el = time.monotonic() - t0 if t0 else None
    print(f"server FIN {fin - t0 if fin else None!r} s after the response; ended by {how} {el:.2f} s after it" if el else f"no response {how}")
    print(("HELD" if how and el and el <= 2.5 else "FALSE") + " linger ends within 2 s (+0.5 s slack)")
