#!/usr/bin/env python3
"""What a parked descriptor costs in kernel memory, per variant: N flood-like clients (send junk without end,
never read) connect to a listener here; each accepted socket gets a 4 KiB read (as kingx's first read during a
flood), then: keep (park as main does), drain (read what is queued, then hold), shrink (drain, SO_RCVBUF to the
minimum, hold). After --hold s: ss -tmn skmem of the held sockets (r = receive queue bytes charged, rb = buffer).
Also times close() of each held socket (the reset + the client's purge in our context on loopback)."""
import os, socket, subprocess, sys, time, statistics, re, selectors

variant, n, hold = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0)); ls.listen(4096); port = ls.getsockname()[1]
child = subprocess.Popen([sys.executable, "-c", r"""
import os, selectors, socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
junk = bytes(range(1, 256)) * 16
sel = selectors.DefaultSelector(); sel.register(sys.stdin, selectors.EVENT_READ)
for _ in range(n):
    s = socket.socket(); s.setblocking(False); s.connect_ex(("127.0.0.1", port)); sel.register(s, selectors.EVENT_WRITE)
while True:
    for key, ev in sel.select(1.0):
        if key.fileobj is sys.stdin: sys.exit(0)
        try: key.fileobj.send(junk)
        except BlockingIOError: pass
        except OSError: sel.unregister(key.fileobj)
""", str(port), str(n)], stdin=subprocess.PIPE)
held = []
while len(held) < n:
    c, _ = ls.accept()
    c.recv(4096)
    if variant in ("drain", "shrink", "shrink-fin"):
        c.setblocking(False)
        if variant in ("shrink", "shrink-fin"):
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
        try:
            while c.recv(65536): pass
        except BlockingIOError: pass
    held.append(c)
time.sleep(hold)
out = subprocess.run(["ss", "-tmnH", "state", "established", f"( sport = :{port} )"], capture_output=True, text=True).stdout
rs = [int(m.group(1)) for m in re.finditer(r"skmem:\(r(\d+),", out)]
rbs = [int(m.group(1)) for m in re.finditer(r",rb(\d+),", out)]
out2 = subprocess.run(["ss", "-tmnH", "state", "established", f"( dport = :{port} )"], capture_output=True, text=True).stdout
ws = [int(m.group(1)) for m in re.finditer(r",t\d+,tb\d+,f\d+,w(\d+),", out2)] or [0]
t = []
for c in held:
    t0 = time.perf_counter()
    if variant == "shrink-fin":
        try:
            while c.recv(65536): pass
        except BlockingIOError: pass
    c.close(); t.append((time.perf_counter() - t0) * 1e6)
child.stdin.close(); child.wait()
print(f"{variant} n={n}: server recv queue r p50 {statistics.median(rs)} max {max(rs)} sum {sum(rs)}; rb p50 {statistics.median(rbs)}; "
      f"client send queue w p50 {statistics.median(ws)}; close() us p50 {statistics.median(t):.1f} p90 {sorted(t)[int(0.9*len(t))]:.1f}")
