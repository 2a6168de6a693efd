#!/usr/bin/env python3
"""Audit probe: If-Match / If-None-Match: * decided atomically for values on both sides of the
large-value path (1 MiB): N clients race one conditional PUT per round; exactly one may win,
and the value read back is the winner's. Usage: p7_cas_large.py PORT [ROUNDS]"""
import http.client, sys, threading, os, hashlib
port = int(sys.argv[1]); rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 8
bad = 0
for size in (1000, (1 << 20) - 100, (1 << 20) + 1, 3 << 20):
    for rnd in range(rounds):
        key = f"/v1/kv/cas-{size}-{rnd}"
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request("PUT", key, body=b"init"); r = c.getresponse(); r.read(); etag = r.getheader("ETag")
        for mode in ("if-match", "create"):
            if mode == "create":
                key = key + "-new"
            vals = [os.urandom(size) for _ in range(4)]; res = [None] * 4
            barrier = threading.Barrier(4)
            def go(i):
                cc = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                h = {"If-Match": etag} if mode == "if-match" else {"If-None-Match": "*"}
                barrier.wait()
                cc.request("PUT", key, body=vals[i], headers=h); rr = cc.getresponse(); rr.read(); res[i] = rr.status
            ts = [threading.Thread(target=go, args=(i,)) for i in range(4)]
            for t in ts: t.start()
            for t in ts: t.join()
            wins = [i for i, s in enumerate(res) if s in (200, 201, 204)]
            c.request("GET", key); r = c.getresponse(); got = r.read()
            ok = len(wins) == 1 and all(s == 412 for i, s in enumerate(res) if i not in wins) and got == vals[wins[0]]
            if not ok:
                bad += 1; print("BAD", size, rnd, mode, res, len(got))
print("bad rounds:", bad, "RESULT", "HELD" if bad == 0 else "FALSE")
