#!/usr/bin/env python3
"""kingx_http_received_bytes_total / sent_bytes_total against the bytes a client sent and read,
requests_total{method="OTHER"}, protocol_errors_total, open_connections, linger counters.
usage: p1_metrics_bytes.py PORT"""
import socket, sys, time, re
port = int(sys.argv[1])

def raw(data, quiet=0.4):
    s = socket.create_connection(("127.0.0.1", port)); s.sendall(data); s.settimeout(quiet)
    out = b""
    try:
        while True:
            b = s.recv(65536)
            if not b: break
            out += b
    except (socket.timeout, ConnectionResetError): pass
    s.close(); return out

def scrape():
    req = b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    out = raw(req, 2)
    head, _, body = out.partition(b"\r\n\r\n")
    m = {}
    for line in body.decode().splitlines():
        if line.startswith("#") or not line: continue
        k, v = line.rsplit(" ", 1); m[k] = float(v)
    return m, len(req), len(out)

m1, q1, r1 = scrape()
sent_req = 0; got = 0
reqs = [b"PUT /v1/kv/mb HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"z" * 1000,
        b"GET /v1/kv/mb HTTP/1.1\r\nHost: x\r\n\r\n",
        b"PATCH /v1/kv/mb HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /v1/kv/mb HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"]
data = b"".join(reqs)
out = raw(data, 2)
m2, q2, r2 = scrape()
d = lambda k: m2.get(k, 0) - m1.get(k, 0)
print("client sent", len(data), "+ scrape requests", q1, q2, "; read", len(out), "+ first scrape answer", r1)
print("received delta", d("kingx_http_received_bytes_total"), "expected", len(data) + q2, "(or + q1)")
print("sent delta", d("kingx_http_sent_bytes_total"), "expected", len(out) + r1)
print("OTHER delta", d('kingx_http_requests_total{method="OTHER"}'), "expected 1")
print("501 delta", d('kingx_http_responses_by_code_total{code="501"}'))
print("protocol errors delta", d("kingx_http_protocol_errors_total"), "expected 1 (501 written by the core)")
print("open connections now", m2.get("kingx_http_open_connections"), "(the scrape's own: 1)")
# linger: a 400 followed by 40 KiB more: 16 KiB dropped then cut
m3, _, _ = scrape()
s = socket.create_connection(("127.0.0.1", port)); s.sendall(b"GARBAGE\r\n\r\n")
time.sleep(0.3)
try:
    for i in range(40):
        s.sendall(b"x" * 1024); time.sleep(0.005)
except OSError as e:
    print("send stopped:", e)
time.sleep(0.5); s.close(); time.sleep(0.3)
m4, _, _ = scrape()
d2 = lambda k: m4.get(k, 0) - m3.get(k, 0)
print("linger discarded delta", d2("kingx_http_linger_discarded_bytes_total"), "cut delta", d2("kingx_http_linger_cut_total"))
