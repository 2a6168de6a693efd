"""Memory per idle keep-alive connection (perf.md section 5's method).

Against a running server, once its memory has settled after its start: read the memory of its
processes (in all and by process name), open N connections, send one
keep-alive GET on each and read its response, leave them idle for a few seconds, read the
memory again and check which connections are still open. Bytes per connection = RSS growth
divided by the connections that were answered and still open. Then close them and do it again
("warm"): RSS above the same starting point per connection held, so memory the first pass
left behind counts. The kernel's socket memory is not in RSS and is not counted.
"""

import selectors
import socket
import time

from . import sysinfo


def _response_complete(buf):
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return False
    length = 0
    for line in buf[:end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return len(buf) >= end + 4 + length


def _hold(inst, req, nconns, idle_s, answer_timeout_s):
    """Opens nconns connections, sends req on each, reads the answers, idles idle_s. Returns
    (sockets, connect errors, answered, memory after idle, backend memory, still open)."""
    socks = []
    connect_errors = 0
    sel = selectors.DefaultSelector()
    bufs = {}
    try:
        for _ in range(nconns):
            try:
                s = socket.create_connection(("127.0.0.1", inst.port), timeout=5)
                s.sendall(req)
            except OSError:
                connect_errors += 1
                if connect_errors > 100:
                    break
                continue
            s.setblocking(False)
            socks.append(s)
            bufs[s] = bytearray()
            sel.register(s, selectors.EVENT_READ)
        answered = 0
        deadline = time.monotonic() + answer_timeout_s
        pending = len(socks)
        while pending and time.monotonic() < deadline:  # bounded by the deadline
            for key, _ in sel.select(timeout=0.5):
                s = key.fileobj
                try:
                    chunk = s.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                if chunk:
                    bufs[s] += chunk
                if not chunk or _response_complete(bufs[s]):
                    sel.unregister(s)
                    pending -= 1
                    if chunk:
                        answered += 1
        time.sleep(idle_s)
        after = sysinfo.tree_memory(inst.server_pids())
        after["by_name"] = sysinfo.tree_rss_by_name(inst.server_pids())
        after_bk = sysinfo.tree_memory(inst.backend_pids())
        still_open = 0
        for s in socks:
            try:
                if s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b"":
                    still_open += 1  # unexpected bytes, but the connection is open
            except BlockingIOError:
                still_open += 1
            except OSError:
                pass
    except BaseException:
        for s in socks:
            s.close()
        raise
    finally:
        sel.close()
    return socks, connect_errors, answered, after, after_bk, still_open


def _settle(inst, quiet_s=2.0, max_wait_s=30.0, step_s=0.25):
    """Waits until the server's RSS has not changed for quiet_s (at most max_wait_s): what a
    server does by itself after it started (kingx's writer compacts the copied database about a
    second after start, ~100 KB) must not count in the first pass's growth of whichever server is
    measured first. Returns the seconds waited."""
    t0 = time.monotonic()
    last = sysinfo.tree_memory(inst.server_pids())["rss"]
    since = t0
    while time.monotonic() - t0 < max_wait_s:  # bounded by max_wait_s
        time.sleep(step_s)
        now = sysinfo.tree_memory(inst.server_pids())["rss"]
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            break
    return round(time.monotonic() - t0, 2)


def measure(inst, path, nconns, idle_s=3.0, answer_timeout_s=15.0, settle_s=2.0):
    """Two passes of nconns idle keep-alive connections on inst, each connection answered once
    and then idle for idle_s. Pass 1: RSS growth over the server's memory before it, per
    connection held (on a server that served nothing else before: the "fresh" figure). Pass 2,
    after pass 1's connections are closed: RSS above the same starting point, per connection
    held ("warm": memory pass 1 left resident counts, memory it freed and pass 2 reused does
    not count twice). The starting point is taken once the server's memory has not changed for
    settle_s (_settle).
    Returns a dict of figures."""
    settled_after_s = _settle(inst, quiet_s=settle_s)
    base = sysinfo.tree_memory(inst.server_pids())
    base_by_name = sysinfo.tree_rss_by_name(inst.server_pids())
    base_bk = sysinfo.tree_memory(inst.backend_pids())
    req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    passes = []
    for _ in range(2):
        socks, errors, answered, after, after_bk, still_open = _hold(inst, req, nconns, idle_s,
                                                                     answer_timeout_s)
        for s in socks:
            s.close()
        passes.append((len(socks), errors, answered, after, after_bk, still_open))
        time.sleep(1.0)  # let the server see the closes before the next pass
    (connected, connect_errors, answered, after, after_bk, still_open) = passes[0]
    held = min(answered, still_open)
    (connected2, _, answered2, after2, _, still_open2) = passes[1]
    held2 = min(answered2, still_open2)
    rss_growth = after["rss"] - base["rss"]
    return {
        "connections": nconns, "connected": connected, "connect_errors": connect_errors,
        "settled_after_s": settled_after_s,
        "answered": answered, "open_after_idle": still_open,
        "rss_before": base["rss"], "rss_after": after["rss"],
        "pss_before": base["pss"], "pss_after": after["pss"],
        "backend_rss_growth": after_bk["rss"] - base_bk["rss"],
        # Where the first pass's growth is, by process name: the per-connection bytes are the
        # worker's; a master's or writer's growth in the window is not the connections'.
        "rss_growth_by_process": {n: v - base_by_name.get(n, 0) for n, v in sorted(after["by_name"].items())},
        "bytes_per_conn": round(rss_growth / held, 1) if held else None,
        "pss_bytes_per_conn": round((after["pss"] - base["pss"]) / held, 1) if held else None,
        "warm_connected": connected2, "warm_answered": answered2, "warm_open_after_idle": still_open2,
        "warm_rss_after": after2["rss"],
        "warm_bytes_per_conn": round((after2["rss"] - base["rss"]) / held2, 1) if held2 else None,
    }
