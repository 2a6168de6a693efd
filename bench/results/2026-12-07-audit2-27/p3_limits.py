#!/usr/bin/env python3
"""audit2 probe: README "Bounded memory and disk per client", each limit just
under, at and just over: the answer, the problem+json naming the limit, the
worker's RSS.

    KINGX_BIN=/work/ref/s27/kingx python3 p3_limits.py [extra flags]
"""
import json, os, socket, subprocess, sys, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../tests/blackbox"))
from kingx_harness import Conn, Server, build_request, http  # noqa

EXTRA = sys.argv[1:]
results = []
BIN = os.environ["KINGX_BIN"]


def report(name, ok, detail):
    results.append((name, ok))
    print(("HELD " if ok else "FALSE") + f" {name}: {detail}", flush=True)


def names(r, setting, limit=None):
    try:
        j = r.json()
    except Exception:
        return False
    return r.header("Content-Type", ) == "application/problem+json" and setting in json.dumps(j) and (
        limit is None or j.get("limit") == limit)


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])


def chunked(body, piece=65536):
    out = b""
    for i in range(0, len(body), piece):
        c = body[i:i + piece]
        out += b"%x\r\n" % len(c) + c + b"\r\n"
    return out + b"0\r\n\r\n"


def max_value():
    M = 1 << 20
    with Server(["--workers", "1", "--max-value-bytes", "1M"] + EXTRA) as s:
        for n in (M - 1, M, M + 1):
            r = http(s.port, "PUT", "/v1/kv/v%d" % n, os.urandom(n))
            want = 201 if n <= M else 413
            ok = r.status == want and (n <= M or names(r, "", M))  # the README promises `limit`; the setting is not named
            report(f"--max-value-bytes 1M, Content-Length {n}", ok, f"{r.status} {r.body[:150]!r}")
            with Conn(s.port) as c:
                c.send(build_request("PUT", "/v1/kv/c%d" % n, None, [("Transfer-Encoding", "chunked")]) + chunked(os.urandom(n)))
                try:
                    r = c.read_response()
                except Exception as e:
                    r = None
                ok = r is not None and r.status == want and (n <= M or names(r, "", M))
                report(f"--max-value-bytes 1M, chunked {n}", ok, f"{r and r.status} {r and r.body[:150]!r}")


def staging_min():
    # at least --max-value-bytes + 88, --max-key-bytes and 255
    mv, mk = 2 << 20, 16
    at = mv + 88 + mk + 255
    for n, want in ((at - 1, "refused"), (at, "starts")):
        r = subprocess.run([BIN, "-t", "--max-value-bytes", str(mv), "--max-key-bytes", str(mk), "--staging-bytes", str(n), "--data", "/tmp/audit2-t-nonexist", "--pid", "none"],
                           capture_output=True, text=True)
        got = "starts" if r.returncode == 0 else "refused"
        report(f"--staging-bytes {n} with max value {mv}, key {mk}: -t {want}", got == want and (want == "starts" or "staging" in (r.stderr + r.stdout)), (r.stderr + r.stdout).strip()[-200:])
    with Server(["--workers", "1", "--max-value-bytes", str(mv), "--max-key-bytes", str(mk), "--staging-bytes", str(at)] + EXTRA) as s:
        key = "k" * mk
        r = http(s.port, "PUT", "/v1/kv/" + key, os.urandom(mv), [("Content-Type", "t/" + "x" * 253)])
        report(f"--staging-bytes at its minimum: the largest value with the longest key and content type", r.status == 201, f"{r.status} {r.body[:200]!r}")


def staging_over():
    mv = 2 << 20
    st = mv + 88 + 1024 + 255
    with Server(["--workers", "1", "--max-value-bytes", str(mv), "--staging-bytes", str(st), "--body-timeout-ms", "3000",
                 "--storage-timeout-ms", "6000"] + EXTRA) as s:
        for i in range(40):  # 40 MB live: share 5 MB
            http(s.port, "PUT", "/v1/kv/fill%d" % i, os.urandom(1 << 20))
        a = Conn(s.port)
        abody = os.urandom(1536 << 10)
        a.send(build_request("PUT", "/v1/kv/a", None, [("Content-Length", str(len(abody)))]) + abody[:1200 << 10])
        time.sleep(0.5)
        b = Conn(s.port, timeout=10)
        t0 = time.monotonic()
        b.send(build_request("PUT", "/v1/kv/b", None, [("Content-Length", str(1536 << 10))]))
        out = {}
        def rd():
            try:
                out["r"] = b.read_response(); out["t"] = time.monotonic() - t0
            except Exception as e:
                out["r"] = None; out["e"] = repr(e); out["t"] = time.monotonic() - t0
        th = threading.Thread(target=rd); th.start()
        try:
            b.sock.settimeout(1.0)
            b.send(os.urandom(1536 << 10))
        except OSError as e:
            print("b send:", e)
        # keep a alive: one byte every 0.5 s until b is answered (its body timeout is 3 s)
        sent = 1200 << 10
        while th.is_alive() and sent < len(abody) - 1:
            a.send(abody[sent:sent + 1]); sent += 1; time.sleep(0.5)
        th.join()
        rb = out.get("r")
        print("staging metrics:", {k: v for k, v in _m(s.port).items() if "staging" in k})
        ok = rb is not None and rb.status == 503 and names(rb, "staging-bytes") and rb.header("Retry-After")
        report("two 1.5 MiB uploads past --staging-bytes: the second refused 503 naming it, Retry-After", bool(ok),
               f"after {out.get('t', 0):.2f} s: {rb and rb.status} {rb and rb.body[:250]!r} RA={rb and rb.header('Retry-After')} {out.get('e', '')}")
        a.send(abody[sent:])
        ra = a.read_response()
        report("the first upload then stored", ra.status == 201, f"{ra.status}")
        a.close(); b.close()


def _m(port):
    import re
    body = http(port, "GET", "/metrics").body.decode()
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(\S+) (\S+)$", body, re.M)}


def body_buffer():
    with Server(["--workers", "1", "--body-buffer-bytes", "4M", "--body-timeout-ms", "1500", "--body-spill-bytes", "0"] + EXTRA) as s:
        w = s.workers()[0]
        r0 = rss_kb(w)
        conns = []
        for i in range(6):  # six 1 MiB uploads stalled one byte short: 2 MiB each of room
            c = Conn(s.port, timeout=10)
            c.send(build_request("PUT", "/v1/kv/u%d" % i, None, [("Content-Length", str(1 << 20))]))
            try:
                c.sock.settimeout(0.5)
                c.send(os.urandom((1 << 20) - 1))
            except OSError:
                pass
            conns.append(c)
        time.sleep(0.5)
        r1 = rss_kb(w)
        outs = []
        for c in conns:
            c.sock.settimeout(10)
            try:
                r = c.read_response(); outs.append((r.status, names(r, "body-buffer-bytes", 4 << 20) or names(r, "body-timeout-ms"), r.header("Retry-After"), r.body[:200]))
            except Exception as e:
                outs.append(repr(e))
        print("body-buffer outcomes:", outs)
        n503 = [o for o in outs if isinstance(o, tuple) and o[0] == 503]
        ok503 = all(o[1] and o[2] for o in n503) and len(n503) > 0
        report("--body-buffer-bytes 4M: waiting uploads 503 naming the setting with limit and Retry-After", ok503, f"{[o[:3] if isinstance(o, tuple) else o for o in outs]}")
        report("--body-buffer-bytes 4M: worker RSS grows by at most the budget", (r1 - r0) <= 4 * 1024 + 2048, f"RSS {r0} kB -> {r1} kB")


def response_buffer():
    import random
    rnd = random.Random(3)
    words = [bytes(rnd.choice(b"abcdefghij") for _ in range(rnd.randint(3, 9))) for _ in range(500)]
    val = b" ".join(rnd.choice(words) for _ in range(1 << 20))[:8 << 20]
    with Server(["--workers", "1", "--response-buffer-bytes", "1M", "--send-timeout-ms", "1500"] + EXTRA, admin=True) as s:
        assert http(s.port, "PUT", "/v1/kv/z", val).status == 201
        silent = []
        for i in range(24):
            c = socket.create_connection(("127.0.0.1", s.port))
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            c.sendall(b"GET /v1/kv/z HTTP/1.1\r\nHost: x\r\n\r\n")
            silent.append(c)
        time.sleep(0.3)
        t0 = time.monotonic()
        c = Conn(s.port, timeout=10)
        r = c.request("GET", "/v1/kv/z")
        el = time.monotonic() - t0
        print("eager GET:", r.status, len(r.body), "%.2f s" % el)
        if r.status == 503:
            ok = names(r, "response-buffer-bytes") and r.header("Retry-After")
            r2 = c.request("GET", "/healthz")
            report("--response-buffer-bytes 1M full: a GET 503 naming it, Retry-After, connection usable", bool(ok) and r2.status == 200, f"{r.body[:200]!r} then {r2.status}")
        else:
            report("--response-buffer-bytes 1M: eager GET served whole", r.status == 200 and r.body == val, f"{r.status} {len(r.body)} in {el:.2f}s")
        for x in silent:
            x.close()


for c in [globals()[n] for n in os.environ.get('CASES', 'max_value staging_min staging_over body_buffer response_buffer').split()]:
    try:
        c()
    except Exception as e:
        import traceback; traceback.print_exc()
        report(c.__name__, False, f"probe error {e!r}")
bad = [n for n, ok in results if not ok]
print(f"{len(results) - len(bad)} held, {len(bad)} false")
