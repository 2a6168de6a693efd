"""What the audit3 probe scripts share: the harness on the path, one HELD/FALSE line per verdict, and reading
one answer from a raw socket."""
import os
import re
import socket
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "blackbox"))
sys.path.insert(0, os.path.join(REPO, "tests", "deploy"))

RESULTS = []


def verdict(name, ok, detail):
    RESULTS.append((name, ok))
    print(f"{'HELD ' if ok else 'FALSE'} {name}: {detail}", flush=True)


def summary():
    print("RESULT", sum(ok for _, ok in RESULTS), "held of", len(RESULTS))


def run(probes):
    """Calls each probe; one that raises is a FALSE line naming the error. Then the summary."""
    for f in probes:
        try:
            f()
        except Exception as e:  # noqa: BLE001
            verdict(f.__name__, False, f"probe error {e!r}")
    summary()


def read_answer(s, whole_answer=True):
    """Bytes from socket `s` until EOF, a reset, its timeout, or (`whole_answer`) one whole
    Content-Length answer."""
    out = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
            head, sep, rest = out.partition(b"\r\n\r\n")
            m = re.search(rb"(?im)^content-length: *(\d+)", head) if sep and whole_answer else None
            if m and len(rest) >= int(m.group(1)):
                break
    except (socket.timeout, ConnectionResetError):
        pass
    return out
