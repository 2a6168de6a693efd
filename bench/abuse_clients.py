#!/usr/bin/env python3
"""Abusive clients for bench/abuse.py that slowhttptest does not provide (Python standard library
only). Each mode runs until SIGTERM or --seconds, prints one JSON line of counters on exit, and
never connects anywhere but 127.0.0.1.

  abuse_clients.py idle    --port P --conns 10000 --path /healthz   open N keep-alive connections,
                                                                     one GET each, then stay idle
  abuse_clients.py garbage --port P --conns 64                      N connections that send random
                                                                     bytes (not HTTP), reconnecting
                                                                     whenever the server closes
  abuse_clients.py hog     --port P --conns 6000                    open N connections and send
                                                                     nothing (fd exhaustion)
  abuse_clients.py bodies  --port P --conns 3000 --path /v1/kv/b    N PUTs of 1 MiB that send all
                           --body-bytes 1048576                      but the last byte, as fast as
                                                                     the server takes them, then hold
"""

import argparse
import errno
import json
import os
import random
import resource
import selectors
import signal
import socket
import sys
import time

stop = False


def on_term(_sig, _frame):
    global stop
    stop = True


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, n + 100))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def connect_nb(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    return s


def idle(args, deadline):
    """N connections, one GET each (answer read), then nothing until the end."""
    sel = selectors.DefaultSelector()
    req = f"GET {args.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    opened = answered = closed = failed = 0
    pending = {}
    for _ in range(args.conns):
        if stop or time.monotonic() > deadline:
            break
        try:
            s = connect_nb(args.port)
        except OSError:
            failed += 1
            continue
        opened += 1
        pending[s] = b""
        sel.register(s, selectors.EVENT_WRITE)
        # Keep the number of connects in flight bounded.
        while len(pending) > 500 and not stop:
            answered, closed = pump_idle(sel, pending, req, answered, closed)
    while not stop and time.monotonic() < deadline:
        answered, closed = pump_idle(sel, pending, req, answered, closed, timeout=0.5)
    return {"opened": opened, "answered": answered, "closed_by_server": closed, "connect_failed": failed,
            "held": opened - closed}


def pump_idle(sel, pending, req, answered, closed, timeout=0.05):
    for key, ev in sel.select(timeout):
        s = key.fileobj
        if ev & selectors.EVENT_WRITE and s in pending:
            try:
                s.send(req)
                sel.modify(s, selectors.EVENT_READ)
            except OSError:
                sel.unregister(s)
                pending.pop(s, None)
                closed += 1
            continue
        try:
            data = s.recv(65536)
        except OSError:
            data = b""
        if not data:
            sel.unregister(s)
            pending.pop(s, None)
            closed += 1
            continue
        if s in pending:
            pending[s] += data
            if b"\r\n\r\n" in pending[s]:
                answered += 1
                del pending[s]  # answered: stays registered for reads (to see a close)
    return answered, closed


def garbage(args, deadline):
    """N connections that send random garbage; reconnect when closed."""
    sel = selectors.DefaultSelector()
    rng = random.Random(1)
    junk = [bytes(rng.getrandbits(8) for _ in range(4096)) for _ in range(8)]
    conns = sent = reconnects = responses = 0

    def open_one():
        nonlocal conns
        s = connect_nb(args.port)
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
        conns += 1

    for _ in range(args.conns):
        open_one()
    while not stop and time.monotonic() < deadline:
        for key, ev in sel.select(0.2):
            s = key.fileobj
            dead = False
            if ev & selectors.EVENT_READ:
                try:
                    data = s.recv(65536)
                    if data:
                        responses += data.count(b"HTTP/1.")
                    else:
                        dead = True
                except OSError:
                    dead = True
            if not dead and ev & selectors.EVENT_WRITE:
                try:
                    sent += s.send(junk[rng.randrange(8)])
                except BlockingIOError:
                    pass
                except OSError:
                    dead = True
            if dead:
                sel.unregister(s)
                s.close()
                reconnects += 1
                try:
                    open_one()
                except OSError:
                    pass
    return {"connections": conns, "bytes_sent": sent, "reconnects": reconnects, "error_responses": responses}


def hog(args, deadline):
    """Open N connections and send nothing: the server runs out of descriptors."""
    socks = []
    failed = 0
    for _ in range(args.conns):
        if stop or time.monotonic() > deadline:
            break
        try:
            socks.append(connect_nb(args.port))
        except OSError as e:
            failed += 1
            if e.errno in (errno.EMFILE, errno.ENFILE):
                break
    while not stop and time.monotonic() < deadline:
        time.sleep(0.2)
    return {"opened": len(socks), "connect_failed": failed}


def bodies(args, deadline):
    """N uploads of --body-bytes that send everything but their last byte."""
    sel = selectors.DefaultSelector()
    chunk = os.urandom(65536)
    left = {}
    opened = failed = 0
    sent = 0
    for i in range(args.conns):
        if stop or time.monotonic() > deadline:
            break
        try:
            s = connect_nb(args.port)
        except OSError:
            failed += 1
            continue
        opened += 1
        head = (f"PUT {args.path}-{i} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Length: {args.body_bytes}\r\n\r\n").encode()
        left[s] = [head, args.body_bytes - 1]
        sel.register(s, selectors.EVENT_WRITE)
    while not stop and time.monotonic() < deadline:
        events = sel.select(0.2)
        for key, _ in events:
            s = key.fileobj
            head, n = left[s]
            try:
                if head:
                    k = s.send(head)
                    left[s][0] = head[k:]
                elif n > 0:
                    k = s.send(chunk[:min(n, len(chunk))])
                    left[s][1] = n - k
                    sent += k
                if not left[s][0] and left[s][1] == 0:
                    sel.unregister(s)  # all but the last byte: hold
            except BlockingIOError:
                pass
            except OSError:
                sel.unregister(s)
                failed += 1
    return {"opened": opened, "failed": failed, "body_bytes_sent": sent,
            "complete": sum(1 for h, n in left.values() if not h and n == 0)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["idle", "garbage", "hog", "bodies"])
    ap.add_argument("--body-bytes", type=int, default=1 << 20)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--path", default="/healthz")
    ap.add_argument("--seconds", type=float, default=600)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    raise_nofile(args.conns)
    deadline = time.monotonic() + args.seconds
    out = {"idle": idle, "garbage": garbage, "hog": hog, "bodies": bodies}[args.mode](args, deadline)
    out["mode"] = args.mode
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
