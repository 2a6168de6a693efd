#!/usr/bin/env python3
"""audit2 probe: the README Metrics table, one metric at a time. Each event is
driven N times over raw sockets whose bytes are counted here; the scrape delta
is compared with N (and with the delta of two scrapes with nothing between).

    KINGX_BIN=/work/ref/s27/kingx python3 p1_metrics.py [--model threads]
"""
import os, re, signal, socket, sys, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../tests/blackbox"))
from kingx_harness import Conn, Server, build_request, http, key_path  # noqa

MODEL = sys.argv[1:]  # extra flags
N = 7
results = []


LAST = [0, 0]  # bytes of the latest scrape: request, response


def scrape(port):
    cc = CountingConn(port)
    body = cc.request("GET", "/metrics").body.decode()
    cc.close()
    LAST[:] = [cc.sent, cc.recv]
    out = {}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, val = line.rpartition(" ")
        out[name] = float(val)
    return out


def delta(a, b):
    return {k: b.get(k, 0) - a.get(k, 0) for k in set(a) | set(b) if b.get(k, 0) != a.get(k, 0)}


def report(name, ok, detail):
    results.append((name, ok))
    print(("HELD " if ok else "FALSE") + f" {name}: {detail}", flush=True)


class CountingConn:  # noqa: E302
    """A keep-alive connection that counts the bytes it sends and receives."""
    def __init__(self, port):
        self.c = Conn(port)
        self.sent = 0
        self.recv = 0
        orig_send = self.c.sock.sendall
        orig_recv = self.c.sock.recv
        class S:  # wrapper
            pass
        self.c.send = self._send
        self._orig_fill = self.c._fill
        sock = self.c.sock
        outer = self
        def fill(_u=0):
            got = len(outer.c.buf)
            outer._orig_fill()
            outer.recv += len(outer.c.buf) - got
        self.c._fill = fill
    def _send(self, data):
        self.sent += len(data)
        self.c.sock.sendall(data)
    def request(self, *a, **k):
        return self.c.request(*a, **k)
    def close(self):
        self.c.close()


def main():
    srv = Server(["--workers", "1", "--header-timeout-ms", "700"] + MODEL, admin=True)
    srv.start()
    p, ap = srv.port, srv.admin_port
    try:
        # baseline: two scrapes on the admin listener, nothing between
        a = scrape(ap); b = scrape(ap); c = scrape(ap)
        base = delta(b, c)
        print("baseline delta of one scrape:", sorted(base.items()))

        def drive(label, fn, expect, port=ap):
            a = scrape(port)
            scrape_a_resp = LAST[1]
            extra = fn()
            time.sleep(0.3)
            b = scrape(port)
            d = delta(a, b)
            # one scrape's request (b's) and one scrape's response (a's) fall between a and b
            adj = dict(base)
            adj['kingx_http_sent_bytes_total'] = scrape_a_resp
            for k, want in expect(extra).items():
                got = d.get(k, 0) - adj.get(k, 0)
                report(f"{label}: {k}", abs(got - want) < 1e-9, f"delta {got:g} want {want:g}")
            return d

        # GET of a missing key N times on one connection
        def gets():
            cc = CountingConn(p)
            for i in range(N):
                r = cc.request("GET", "/v1/kv/missing%d" % i)
                assert r.status == 404
            cc.close()
            return cc
        drive("N GET 404", gets, lambda cc: {
            'kingx_http_requests_total{method="GET"}': N,
            'kingx_http_responses_total{class="4xx"}': N,
            'kingx_http_responses_by_code_total{code="404"}': N,
            'kingx_http_request_duration_seconds_count': N,
            'kingx_http_connections_opened_total': 1,
            'kingx_http_received_bytes_total': cc.sent,
            'kingx_http_sent_bytes_total': cc.recv,
        })
        # PUT N new keys of 100 B
        def puts():
            cc = CountingConn(p)
            for i in range(N):
                r = cc.request("PUT", "/v1/kv/k%d" % i, b"x" * 100)
                assert r.status == 201, r
            cc.close()
            return cc
        drive("N PUT 201", puts, lambda cc: {
            'kingx_http_requests_total{method="PUT"}': N,
            'kingx_http_responses_total{class="2xx"}': N,
            'kingx_http_responses_by_code_total{code="201"}': N,
            'kingx_writer_records_total': N,
            'kingx_engine_keys': N,
            'kingx_http_received_bytes_total': cc.sent,
            'kingx_http_sent_bytes_total': cc.recv,
        })
        # HEAD N
        def heads():
            cc = CountingConn(p)
            for i in range(N):
                r = cc.request("HEAD", "/v1/kv/k%d" % i)
                assert r.status == 200, r
            cc.close(); return cc
        drive("N HEAD 200", heads, lambda cc: {
            'kingx_http_requests_total{method="HEAD"}': N,
            'kingx_http_responses_by_code_total{code="200"}': N,
            'kingx_http_received_bytes_total': cc.sent,
            'kingx_http_sent_bytes_total': cc.recv,
        })
        # overwrite N: dead bytes grow, keys unchanged
        def overwrite():
            for i in range(N):
                assert http(p, "PUT", "/v1/kv/k%d" % i, b"y" * 100).status in (200, 201, 204)
        drive("N overwrite", overwrite, lambda _: {
            'kingx_engine_keys': 0,
            'kingx_writer_records_total': N,
            'kingx_http_connections_opened_total': N,
        })
        # DELETE N
        def dels():
            cc = CountingConn(p)
            for i in range(N):
                r = cc.request("DELETE", "/v1/kv/k%d" % i)
                assert r.status in (200, 204), r
            cc.close(); return cc
        drive("N DELETE", dels, lambda cc: {
            'kingx_http_requests_total{method="DELETE"}': N,
            'kingx_engine_keys': -N,
                        'kingx_writer_records_total': N,
        })
        # method implemented nowhere
        def brew():
            cc = CountingConn(p)
            for i in range(N):
                r = cc.request("BREW", "/v1/kv/a")
            cc.close(); return cc
        drive("N BREW", brew, lambda cc: {
            'kingx_http_requests_total{method="OTHER"}': N,
            'kingx_http_responses_by_code_total{code="501"}': N,
            'kingx_http_received_bytes_total': cc.sent,
            'kingx_http_sent_bytes_total': cc.recv,
        })
        # garbage: refused by the HTTP core
        def garbage():
            tot_s = tot_r = 0
            for i in range(N):
                s = socket.create_connection(("127.0.0.1", p)); s.sendall(b"GARBAGE\r\n\r\n"); tot_s += 11
                s.settimeout(5)
                while True:
                    d = s.recv(65536)
                    if not d: break
                    tot_r += len(d)
                s.close()
            return (tot_s, tot_r)
        drive("N garbage 400", garbage, lambda t: {
            'kingx_http_protocol_errors_total': N,
            'kingx_http_responses_by_code_total{code="400"}': N,
            'kingx_http_connections_opened_total': N,
            'kingx_http_received_bytes_total': t[0],
            'kingx_http_sent_bytes_total': t[1],
        })
        # header timeouts
        def slow():
            socks = []
            for i in range(N):
                s = socket.create_connection(("127.0.0.1", p)); s.sendall(b"GET /v1/kv/a HTTP/1.1\r\n"); socks.append(s)
            time.sleep(1.6)
            n = 0
            for s in socks:
                s.settimeout(3)
                try:
                    while s.recv(65536): pass
                except OSError: pass
                s.close()
            return None
        drive("N header timeout", slow, lambda _: {
            'kingx_http_timeouts_total': N,
            'kingx_http_responses_by_code_total{code="408"}': N,
        })
        # open connections gauge
        a0 = scrape(ap)
        held = [socket.create_connection(("127.0.0.1", p)) for _ in range(N)]
        time.sleep(0.3)
        a1 = scrape(ap)
        for s in held: s.close()
        time.sleep(0.5)
        a2 = scrape(ap)
        g = 'kingx_http_open_connections'
        report("gauge open_connections +N then rest", a1[g] - a0[g] == N and a2[g] == a0[g],
               f"{a0[g]:g} -> {a1[g]:g} -> {a2[g]:g}")
        # Expect: 100-continue: 1xx class
        def expect100():
            cc = CountingConn(p)
            cc.c.send(build_request("PUT", "/v1/kv/e", None, [("Content-Length", "5"), ("Expect", "100-continue")]))
            r = cc.c.read_response()
            ok100 = r.status == 100
            cc.c.send(b"hello"); r2 = cc.c.read_response()
            cc.close(); return (ok100, r2.status)
        d = drive("Expect 100", expect100, lambda t: {
            'kingx_http_responses_total{class="1xx"}': 1,
            'kingx_http_responses_total{class="2xx"}': 1,
        })
        # linger: a 400 with more bytes after
        def linger():
            s = socket.create_connection(("127.0.0.1", p))
            extra = b"z" * 5000
            s.sendall(b"GET /v1/kv/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            time.sleep(0.2)
            try: s.sendall(extra)
            except OSError: pass
            time.sleep(0.3)
            s.shutdown(socket.SHUT_WR)
            s.settimeout(3)
            try:
                while s.recv(65536): pass
            except OSError: pass
            s.close(); return 5000
        drive("linger", linger, lambda n: {'kingx_http_linger_discarded_bytes_total': n})
        # backups: N=3 sequential
        def backups():
            tot = 0
            for i in range(3):
                r = http(ap, "GET", "/admin/backup", timeout=30)
                assert r.status == 200
                tot += len(r.body)
            return tot
        time.sleep(0.5)
        drive("3 backups", backups, lambda t: {
            'kingx_backups_started_total': 3,
            'kingx_backups_finished_total': 3,
            'kingx_backups_failed_total': 0,
            'kingx_backup_bytes_sent_total': t,
            'kingx_backup_pins': 0,
            'kingx_backup_slots_taken': 0,
        })
        # backup client gone after the head
        big = os.urandom(1 << 20)
        for i in range(24):
            assert http(p, "PUT", "/v1/kv/big%d" % i, big).status == 201
        def backup_gone():
            s = socket.create_connection(("127.0.0.1", ap)); s.sendall(b"GET /admin/backup HTTP/1.1\r\nHost: x\r\n\r\n")
            s.recv(100); s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"); s.close()
            time.sleep(1.0)
        drive("backup client gone", backup_gone, lambda t: {
            'kingx_backups_started_total': 1,
            'kingx_backups_failed_total': 1,
            'kingx_backups_finished_total': 0,
            'kingx_backup_pins': 0,
            'kingx_backup_slots_taken': 0,
        })
        # histogram: one slow PUT (writer stopped 0.6 s)
        writer = [q for q in srv.children() if q != srv.workers()[0]] if hasattr(srv, "children") else []
        names = {}
        for pid in srv.group_pids():
            try: names[pid] = open(f"/proc/{pid}/comm").read().strip()
            except OSError: pass
        wpid = [pid for pid, n in names.items() if "writer" in n]
        print("processes:", names)
        if wpid:
            h0 = scrape(ap)
            os.kill(wpid[0], signal.SIGSTOP)
            t0 = time.monotonic()
            th = threading.Thread(target=lambda: http(p, "PUT", "/v1/kv/slow", b"s" * 10)); th.start()
            time.sleep(0.6); os.kill(wpid[0], signal.SIGCONT); th.join(); el = time.monotonic() - t0
            h1 = scrape(ap)
            d = delta(h0, h1)
            bk = sorted(((float(re.search(r'le="([^"]+)"', k).group(1)), v) for k, v in d.items()
                         if k.startswith("kingx_http_request_duration_seconds_bucket")), key=lambda x: x[0])
            print("client time %.3f s; bucket deltas (le, delta):" % el, bk)
            # the slow PUT must be in a bucket whose le >= 0.55 and not in any le < 0.55
            below = sum(v - base.get('kingx_http_request_duration_seconds_bucket{le="%s"}' % le, 0) for le, v in bk if le < 0.55)
            low = [le for le, v in bk if le < 0.55]
            over = {le: v - 1 for le, v in bk}  # less the scrape's own request, in every bucket
            ok = all(over.get(le, 0) == 0 for le in (0.25, 0.5)) and over.get(1.0) == 1 and el < 1.0
            report("histogram: a PUT the client timed at %.2f s is in le=1 and not le=0.5" % el, ok, f"bucket deltas {bk}")
        # respawn
        w = srv.workers()
        a = scrape(ap)
        os.kill(w[0], signal.SIGKILL)
        time.sleep(2.0)
        srv.wait_ready()
        b = scrape(ap)
        report("respawns_total after kill -9 of a worker", b.get("kingx_respawns_total", 0) - a.get("kingx_respawns_total", 0) == 1,
               f'{a.get("kingx_respawns_total")} -> {b.get("kingx_respawns_total")}')
    finally:
        srv.stop()
    bad = [n for n, ok in results if not ok]
    print(f"{len(results) - len(bad)} held, {len(bad)} false")


main()
