#!/usr/bin/env python3
"""Resharding 3 -> 4 shards behind the real nginx with `deploy/kingx-reshard`, under a concurrent
write load, following README "Resharding": 10,000 keys; `copy` while nginx routes by the old ring;
nginx reloaded with deploy/nginx-resharding.conf (new ring + read-through to the old one);
`finish`; nginx reloaded with deploy/nginx-sharding.conf and the new list; three clients
overwrite, create and delete keys through nginx the whole time. Afterwards about
a quarter of the keys moved, none is lost (every key answers through the new ring with its last
acknowledged value, deleted ones are gone), none is duplicated (each key on exactly one shard, its
owner), and `kingx-reshard check` agrees.

Listing: the mover lists each shard with kingx's own listing API (GET
/v1/kv/?encoding=url&limit=&cursor=), in pages of 250 so that cursors are followed while `finish`
deletes keys already listed.

    KINGX_BIN=build/src/kingx python3 tests/deploy/test_reshard.py
"""

import argparse
import json
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proxies import (HOST, Client, exit_on_sigterm, load_reshard, nginx_site, read_shipped,  # noqa: E402
                     reshard, rewrite, start_nginx)
from kingx_harness import (ConnectionClosed, Server, TestFailure, cases_of, check, key_path,  # noqa: E402
                           run_cases)

SHARDS = []      # kingx Servers (index 3 is the new one)
NGINX = None
NKEYS = int(os.environ.get("KINGX_RESHARD_KEYS", "10000"))  # 10,000 as the issue asks; fewer by hand


def names(n):
    """Shard addresses as the ring and nginx see them."""
    return [f"{HOST}:{s.port}" for s in SHARDS[:n]]


def resharding_site(port, old, new):
    """deploy/nginx-resharding.conf with its two upstream lists replaced by `old` and `new`."""
    text = read_shipped("nginx-resharding.conf")
    text = rewrite(text, "    listen 80 default_server;\n", f"    listen {HOST}:{port} default_server;\n")
    text = rewrite(text, "    listen [::]:80 default_server;\n", "")
    shipped_new = "\n".join(f"    server kv-0{i}.internal:8080 max_fails=0;" for i in (1, 2, 3, 4))
    shipped_old = "\n".join(f"    server kv-0{i}.internal:8080 max_fails=0;" for i in (1, 2, 3))
    text = rewrite(text, "upstream kingx_shards {\n    hash $kingx_key consistent;\n" + shipped_new,
                   "upstream kingx_shards {\n    hash $kingx_key consistent;\n"
                   + "\n".join(f"    server {u} max_fails=0;" for u in new))
    text = rewrite(text, "upstream kingx_old_shards {\n    hash $kingx_key consistent;\n" + shipped_old,
                   "upstream kingx_old_shards {\n    hash $kingx_key consistent;\n"
                   + "\n".join(f"    server {u} max_fails=0;" for u in old))
    return text


def reload_nginx(site_text):
    """Writes a new site file (checked with nginx -t) and reloads nginx as README "Resharding"
    does: `kingx-reshard reload`, which returns once the previous configuration's workers have
    exited."""
    NGINX.write_nginx_site(site_text)
    NGINX.reloaded()


def canonical(key):
    return key_path(key)


STATE = {}       # key bytes -> last acknowledged value, or None after an acknowledged DELETE


def setup():
    global NGINX
    for _ in range(4):
        s = Server(["--workers", "1", "--sync", "none"])
        s.start()
        SHARDS.append(s)
    # The listing answers 503 while a shard's sorted key view is being built: wait for 200.
    deadline = time.monotonic() + 60
    for s in SHARDS:
        with Client(s.port) as c:
            while True:
                r = c.request("GET", "/v1/kv/?encoding=url&limit=1")
                if r.status != 503 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        check(r.status == 200, f"GET /v1/kv/?encoding=url on shard {s.port}: {r.status} {r.body[:200]!r} "
                               f"(resharding needs kingx's listing API)")
    NGINX = start_nginx("nginx-sharding.conf", names(3))


def test_3_to_4_shards_under_a_write_load_moves_a_quarter_and_loses_nothing():
    rng = random.Random(314)
    keys = [b"item/%d/%s" % (i, rng.choice([b"a", b"caf\xc3\xa9", b"x:y"])) for i in range(NKEYS)]
    with Client(NGINX.port) as c:
        for k in keys:
            v = b"v0-" + k
            check(c.request("PUT", canonical(k), v).status == 201, f"PUT {k!r}")
            STATE[k] = v
    reshard_mod = load_reshard()
    ring_old, ring_new = reshard_mod.Ring(names(3)), reshard_mod.Ring(names(4))
    expected_moves = sum(ring_old.owner(canonical(k)[7:]) != ring_new.owner(canonical(k)[7:]) for k in keys)
    state = os.path.join(NGINX.workdir, "reshard-state.json")
    old, new = ",".join(names(3)), ",".join(names(4))

    # The load: overwrites, new keys and deletes through nginx, across every step of the move.
    stop, errors, lock = threading.Event(), [], threading.Lock()
    done = [0, 0, 0]

    def send(c, method, k, body=None):
        """One request; repeated once if a reused connection was closed before any answer (RFC
        9112 9.3.1: nginx closes idle client connections when it reloads)."""
        for attempt in (0, 1):
            try:
                return c.request(method, canonical(k), body)
            except ConnectionClosed as e:
                c.close()
                if attempt or e.partial:
                    raise

    def load(n):
        r_ = random.Random(n)
        seq = 0
        with Client(NGINX.port) as c:
            while not stop.is_set() and len(errors) < 20:
                seq += 1
                op = r_.random()
                # Each client writes its own keys (a third of the existing ones, and a pool of
                # 300 new ones, created, rewritten and deleted again), so that "last acknowledged"
                # is well defined per key; at most 100 operations a second per client.
                k = (keys[r_.randrange(n, NKEYS, 3)] if op < 0.8 else b"new/%d/%d" % (n, r_.randrange(300)))
                time.sleep(0.01)
                try:
                    if op < 0.05:
                        r = send(c, "DELETE", k)
                        if r.status in (204, 404):
                            with lock:
                                STATE[k] = None
                        else:
                            errors.append(f"DELETE {k!r}: {r.status} {r.body[:200]!r}")
                    else:
                        v = b"v%d-%d-%s" % (n, seq, k)
                        r = send(c, "PUT", k, v)
                        if r.status in (201, 204):
                            with lock:
                                STATE[k] = v
                        else:
                            errors.append(f"PUT {k!r}: {r.status} {r.body[:200]!r}")
                    done[n] += 1
                except Exception as e:  # noqa: BLE001 - any failure of the load is reported
                    errors.append(f"client {n}: {e!r}")

    threads = [threading.Thread(target=load, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        lists = ["--old", old, "--new", new, "--state", state, "--page", "250"]
        p1 = reshard("copy", *lists, timeout=900)                                     # step 1
        reload_nginx(resharding_site(NGINX.port, names(3), names(4)))                # step 2
        p2 = reshard("finish", *lists, timeout=900)                                   # step 3
        reload_nginx(nginx_site("nginx-sharding.conf", names(4), NGINX.port))        # step 4
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    for p in (p1, p2):
        check(p.returncode == 0, f"kingx-reshard {p.args[2]}: {p.returncode}\n{p.stdout}\n{p.stderr}")
    s1 = json.loads(p1.stdout.strip().splitlines()[-1])
    s2 = json.loads(p2.stdout.strip().splitlines()[-1])
    print(f"copy: {s1}\nfinish: {s2}\n{expected_moves} of the first {NKEYS} keys change owner; "
          f"load requests per client: {done}", flush=True)
    check(not errors, "the load failed during the move:\n  " + "\n  ".join(errors[:10]))
    check(min(done) > 50, f"the load hardly ran: {done}")
    check(0.18 * NKEYS <= expected_moves <= 0.33 * NKEYS, f"{expected_moves} keys change owner (about 1/4)")
    check(abs(s1["copied"] - expected_moves) <= 0.1 * NKEYS, f"copied {s1['copied']}, {expected_moves} change owner")

    # A second finish finds nothing left on a shard that does not own it.
    p = reshard("finish", "--old", old, "--new", new, "--state", state, timeout=900)
    again = json.loads(p.stdout.strip().splitlines()[-1])
    check(p.returncode == 0 and again["listed"] == again["staying"], f"second finish: {again}")

    # Every key answers through the new ring as last acknowledged; deleted keys stay deleted.
    lost = []
    with Client(NGINX.port) as c:
        for k, v in STATE.items():
            r = c.request("GET", canonical(k))
            if (v is None and r.status != 404) or (v is not None and (r.status != 200 or r.body != v)):
                lost.append((k, r.status, v, r.body[:60]))
    check(not lost, f"{len(lost)} keys lost, stale or resurrected after the move, e.g. {lost[:5]}")
    # Each key on exactly one shard: its owner in the new ring.
    dup = []
    clients = [Client(s.port) for s in SHARDS]
    try:
        for k, v in STATE.items():
            holders = [i for i, cl in enumerate(clients) if cl.request("GET", canonical(k)).status == 200]
            want = [] if v is None else [names(4).index(ring_new.owner(canonical(k)[7:]))]
            if holders != want:
                dup.append((k, holders, want))
    finally:
        for cl in clients:
            cl.close()
    check(not dup, f"{len(dup)} keys not exactly on their owner, e.g. {dup[:5]}")
    p = reshard("check", "--shards", new)
    check(p.returncode == 0, f"kingx-reshard check: {p.stdout} {p.stderr}")


def main():
    exit_on_sigterm()
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    try:
        setup()
        status = run_cases("resharding 3 -> 4 behind nginx", cases_of(globals()), SHARDS[0])
        if status != 0 and NGINX is not None:
            print(NGINX.logs(3000))
    except TestFailure as e:
        print(f"FAIL setup: {e}")
        status = 1
    finally:
        if NGINX is not None:
            NGINX.cleanup()
        for s in SHARDS:
            s.cleanup()
    sys.exit(status)


if __name__ == "__main__":
    main()
