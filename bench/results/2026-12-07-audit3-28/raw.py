#!/usr/bin/env python3
"""Sends stdin's bytes to 127.0.0.1:PORT, prints what comes back until EOF or WAIT seconds of silence."""
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from probe_common import read_answer  # noqa: E402

port = int(sys.argv[1])
wait = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
s = socket.create_connection(("127.0.0.1", port), timeout=wait)
s.sendall(sys.stdin.buffer.read())
sys.stdout.buffer.write(read_answer(s, whole_answer=False))
