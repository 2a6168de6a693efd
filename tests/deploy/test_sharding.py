#!/usr/bin/env python3
"""Three kingx shards behind the real Debian nginx (deploy/nginx-sharding.conf) or HAProxy
(deploy/haproxy-sharding.cfg), as shipped:

  - 10,000 keys, written under mixed spellings, land in roughly equal shares, each on exactly
    one shard, the one deploy/kingx-reshard's ring for that proxy names (`owner`; `check` finds
    none misplaced), and every spelling of every key reads it through the proxy (canonical: 200;
    any other: 308 to the canonical URL);
  - one shard stopped: only its keys fail, with a 5xx from the proxy (502/504 nginx, 503
    HAProxy); the other shards' keys never fail, on the same client connections, even after a
    PUT with a streamed body to the stopped shard; no write lands on another shard;
  - HUP of a shard under load through the proxy loses nothing;
  - HAProxy only (test_reshard.py moves keys behind nginx): a fourth shard with a new id and
    another weight, moved to with `kingx-reshard --ring haproxy`: `copy` under the old file,
    keys rewritten and created through HAProxy, a reload (SIGUSR2 to the master) to
    deploy/haproxy-resharding.cfg, keys created after `copy` read (their value, through to the
    old owner), deleted, and written then deleted, a stopped new owner and a stopped old owner
    failing their keys (never replaced), `finish`, a reload to the file with four servers: no
    key deleted in the window comes back, every key reads its latest value through HAProxy,
    `check` finds every key on its owner and none twice.

    KINGX_BIN=build/src/kingx python3 tests/deploy/test_sharding.py --proxy nginx|haproxy
"""

import argparse
import concurrent.futures
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proxies import Client, exit_on_sigterm, load_reshard, reload_haproxy, start_haproxy, start_nginx  # noqa: E402
from reshard_setup import reshard  # noqa: E402
from kingx_harness import (HOST, CaseSkipped, ConnectionClosed, Server, TestFailure, cases_of, check,  # noqa: E402
                           key_path, require_bin, run_cases)

ARGS = None
SHARDS = []     # kingx Servers
PROXY = None
KEYS = {}       # key bytes -> value
OWNER = {}      # key bytes -> index of the shard holding it
NKEYS = 10000
DOWN_STATUS = {"nginx": (502, 504), "haproxy": (502, 503, 504)}
# --sync none: nothing here crashes, and the shards' fdatasyncs would only slow the run.
SHARD_ARGS = ["--workers", "1", "--trusted-proxy", "127.0.0.1", "--sync", "none"]


def canonical(key):
    return key_path(key)


def spellings(key):
    """Other spellings of `key` that kingx decodes to the same bytes: escapes in lowercase hex
    and '/' as %2f; the raw bytes (UTF-8, '+', ':' unescaped); the first byte escaped."""
    canon = canonical(key).encode()
    rest = canon[len(b"/v1/kv/"):]
    low = re.sub(rb"%[0-9A-F]{2}", lambda m: m.group(0).lower(), rest).replace(b"/", b"%2f")
    out = [b"/v1/kv/" + low, b"/v1/kv/" + key, b"/v1/kv/%%%02X" % key[0] + rest[1:]]
    return [p for p in dict.fromkeys(out) if p != canon]


def make_keys():
    rng = random.Random(2026)
    keys = {}
    for i in range(NKEYS):
        kind = i % 4
        if kind == 0:
            k = b"dir%d/file-%d" % (i % 97, i)
        elif kind == 1:
            k = b"caf\xc3\xa9/%d" % i
        elif kind == 2:
            k = b"user:%d+x" % i
        else:
            k = b"plain-%d" % i
        keys[k] = b"%s=%d" % (k, rng.randrange(1 << 30))
    return keys


def start():
    global PROXY
    require_bin()
    for _ in range(3):
        s = Server(SHARD_ARGS)
        s.start()
        SHARDS.append(s)
    names = [f"{HOST}:{s.port}" for s in SHARDS]
    PROXY = start_nginx("nginx-sharding.conf", names) if ARGS.proxy == "nginx" else \
        start_haproxy(names, master_worker=True)


def tool_shards(server_lines):
    """kingx-reshard's --shards list for the proxy's server lines ('127.0.0.1:PORT' for nginx;
    '127.0.0.1:PORT id N [weight N]' after HAProxy's server name): the same words, each
    parameter written NAME=VALUE."""
    return ",".join(re.sub(r" (id|weight) (\d+)", r" \1=\2", line) for line in server_lines)


def proxy_lines(shards):
    """The proxy's server lines for `shards` as proxies.py writes them (HAProxy: id i + 1)."""
    if ARGS.proxy == "nginx":
        return [f"{HOST}:{s.port}" for s in shards]
    return [f"{HOST}:{s.port} id {i + 1}" for i, s in enumerate(shards)]


def proxy_ring(server_lines):
    """deploy/kingx-reshard's ring for this proxy over `server_lines`."""
    kr = load_reshard()
    return kr.RINGS[ARGS.proxy](kr.shards_of(tool_shards(server_lines)))


def reshard_ok(*args):
    """deploy/kingx-reshard ARGS with this proxy's --ring: its JSON line (exit 0 required)."""
    p = reshard(*args, "--ring", ARGS.proxy)
    check(p.returncode == 0, f"kingx-reshard {args[0]}: exit {p.returncode}: {p.stdout[-2000:]}{p.stderr[-2000:]}")
    return json.loads(p.stdout) if args[0] != "owner" else p.stdout


def holders(shards):
    """{key spelling: [index in `shards` of each shard holding it]}, from each shard's listing
    (kingx's listing API, asked directly, not through the proxy): a page per 1,000 keys instead
    of a GET per key and shard."""
    kr = load_reshard()
    held = {}
    for i, s in enumerate(shards):
        lister = kr.Shard(f"{HOST}:{s.port}")
        for spelling in lister.keys():
            held.setdefault(spelling, []).append(i)
        lister.close()
    return held


def shard_named(name):
    """The Server of SHARDS whose name in the rings ('127.0.0.1:PORT') is `name`."""
    return next(s for s in SHARDS if f"{HOST}:{s.port}" == name)


def spelled(key):
    """The canonical spelling of `key`, as listed and hashed."""
    return canonical(key)[len("/v1/kv/"):]


def follow(c, method, path, body=None, headers=None):
    """A request that follows one 308 (as curl -L, browsers and HTTP libraries do)."""
    r = c.request(method, path, body, headers)
    if r.status == 308:
        loc = r.header("Location")
        check(loc and loc.startswith("/v1/kv/"), f"308 without a usable Location: {r!r}")
        r = c.request(method, loc, body, headers)
    return r


def test_10000_keys_in_even_shares_each_on_exactly_one_shard():
    KEYS.update(make_keys())
    with Client(PROXY.port) as c:
        for n, (k, v) in enumerate(KEYS.items()):
            # Half of the writes use another spelling and follow the redirect.
            path = spellings(k)[0] if n % 2 else canonical(k)
            r = follow(c, "PUT", path, v)
            check(r.status == 201, f"PUT {path!r}: {r!r}")
    counts = [0, 0, 0]
    held = holders(SHARDS)
    for k in KEYS:
        on = held.get(spelled(k), [])
        check(len(on) == 1, f"{k!r} is on shards {on}, not on exactly one")
        OWNER[k] = on[0]
        counts[on[0]] += 1
    check(len(held) == len(KEYS), f"the shards hold {len(held)} keys, {len(KEYS)} were written")
    print(f"shares over 3 shards: {counts}", flush=True)
    check(all(0.6 * NKEYS / 3 <= n <= 1.4 * NKEYS / 3 for n in counts), f"uneven shares: {counts}")
    shards = tool_shards(proxy_lines(SHARDS))
    report = reshard_ok("check", "--shards", shards)
    check(report["keys"] == NKEYS and report["misplaced"] == 0,
          f"kingx-reshard check --ring {ARGS.proxy}: {report}")
    by_name = {f"{HOST}:{s.port}": i for i, s in enumerate(SHARDS)}
    sample = list(KEYS)[::25]
    lines = reshard_ok("owner", "--shards", shards, *[spelled(k) for k in sample])
    named = [by_name.get(line.split("\t")[0]) for line in lines.splitlines()]
    off = [k for k, i in zip(sample, named) if i != OWNER[k]]
    check(len(named) == len(sample) and not off,
          f"kingx-reshard owner --ring {ARGS.proxy} names another shard than the holder for "
          f"{len(off)} of {len(sample)} keys: {off[:5]}")


def test_every_spelling_of_every_key_reads_it_through_the_proxy():
    check(KEYS, "needs the keys of the first case")

    def read(items):
        with Client(PROXY.port) as c:
            for k, v in items:
                # What following any of the redirects below reads.
                r = c.request("GET", canonical(k))
                check(r.status == 200 and r.body == v, f"GET {canonical(k)}: {r!r}")
                for path in spellings(k):
                    r = c.request("GET", path)
                    if ARGS.proxy == "haproxy" and any(b >= 0x80 for b in path):
                        # HAProxy refuses raw non-ASCII bytes in a request line before routing
                        # it (README "Key spelling"): a refusal, never a misroute.
                        check(r.status == 400, f"HAProxy on raw bytes {path!r}: {r!r}")
                        continue
                    check(r.status == 308 and r.header("Location") == canonical(k),
                          f"GET {path!r}: expected 308 to {canonical(k)}, got {r!r}")

    # Two clients, so that one's wait for the proxy overlaps the other's Python.
    items = list(KEYS.items())
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        for f in [pool.submit(read, items[i::2]) for i in range(2)]:
            f.result()


def test_a_key_written_in_absolute_form_or_over_h2c_lands_on_its_owner():
    """A request target in absolute form (`PUT http://host/v1/kv/KEY`, which a server must
    accept, RFC 9112 §3.2.2) and an HTTP/2 request (HAProxy speaks h2c on a plain `bind` and
    carries :authority as an absolute URI) name the key as origin form does: each lands on the
    owner kingx-reshard names and an HTTP/1.1 GET in origin form reads it."""
    ring = proxy_ring(proxy_lines(SHARDS))
    names = [f"{HOST}:{s.port}" for s in SHARDS]
    absolute = [b"absolute/%d" % i for i in range(120)]
    with Client(PROXY.port) as c:
        for k in absolute:
            r = c.request("PUT", b"http://kv.example" + canonical(k).encode(), b"abs",
                          [("Host", "kv.example")])
            check(r.status == 201, f"PUT in absolute form of {k!r}: {r!r}")
    h2c = []
    if ARGS.proxy == "haproxy" and shutil.which("curl"):   # nginx's listener speaks HTTP/1 only
        h2c = [b"h2c/%d" % i for i in range(60)]
        for k in h2c:
            p = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "-X", "PUT", "--data-binary", "h2",
                                "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                                f"http://{HOST}:{PROXY.port}{canonical(k)}"],
                               capture_output=True, text=True, timeout=30)
            check(p.stdout == "2 201", f"PUT of {k!r} over h2c: {p.stdout!r} {p.stderr[-300:]!r}")
    held = holders(SHARDS)
    off = [(k, [names[i] for i in held.get(spelled(k), [])], names[ring.owner_index(spelled(k))])
           for k in absolute + h2c
           if held.get(spelled(k), []) != [ring.owner_index(spelled(k))]]
    check(not off, f"{len(off)} of {len(absolute) + len(h2c)} keys (absolute form, h2c) are not on their "
                   f"owner alone (key, holders, owner): {off[:4]}")
    with Client(PROXY.port) as c:
        for k in absolute + h2c:
            r = c.request("GET", canonical(k))
            check(r.status == 200, f"GET {canonical(k)} after its PUT: {r!r}")
            r = c.request("DELETE", canonical(k))
            check(r.status == 204, f"DELETE {canonical(k)}: {r!r}")


def test_one_shard_down_fails_only_its_keys_and_writes_nowhere_else():
    check(OWNER, "needs the keys of the first case")
    down = 1
    SHARDS[down].stop()
    new_results = {}
    rng = random.Random(7)
    try:
        healthy_fail, down_ok, down_other = [], [], []
        with Client(PROXY.port) as c:
            for n, (k, v) in enumerate(KEYS.items()):
                if n % 5 == 0:
                    # A write of a new key with a streamed 64 KiB body; a third of them go to the
                    # stopped shard, and the next request on this client must not suffer from it.
                    nk = b"new/%d" % n
                    body = rng.randbytes(65536)
                    try:
                        r = c.request("PUT", canonical(nk), body)
                        new_results[nk] = r.status
                    except (ConnectionClosed, OSError) as e:
                        new_results[nk] = repr(e)
                try:
                    r = c.request("GET", canonical(k))
                except (ConnectionClosed, OSError) as e:
                    (down_other if OWNER[k] == down else healthy_fail).append((k, repr(e)))
                    continue
                if OWNER[k] == down:
                    if r.status not in DOWN_STATUS[ARGS.proxy]:
                        (down_ok if r.status == 200 else down_other).append((k, r.status))
                elif r.status != 200 or r.body != v:
                    healthy_fail.append((k, r.status))
        check(not healthy_fail, f"{len(healthy_fail)} keys of healthy shards failed while shard {down} "
                                f"was down, e.g. {healthy_fail[:5]}")
        check(not down_ok and not down_other, f"keys of the stopped shard answered other than "
                                              f"{DOWN_STATUS[ARGS.proxy]}: {(down_ok + down_other)[:5]}")
        failed_puts = [k for k, s in new_results.items() if s != 201]
        bad = [(k, s) for k, s in new_results.items() if s != 201 and s not in DOWN_STATUS[ARGS.proxy]]
        check(not bad, f"PUTs that failed otherwise than with a 5xx from the proxy: {bad[:5]}")
        frac = len(failed_puts) / len(new_results)
        check(0.15 <= frac <= 0.5, f"{len(failed_puts)} of {len(new_results)} new keys failed: about a "
                                   f"third expected")
        ring = proxy_ring(proxy_lines(SHARDS))
        wrong = [k for k in new_results
                 if (new_results[k] != 201) != (ring.owner_index(spelled(k)) == down)]
        check(not wrong, f"failures do not match the stopped shard's keys: {wrong[:5]}")
    finally:
        SHARDS[down].start()
    # Nothing landed on a shard that does not own it: a failed write is nowhere; a successful
    # one is on exactly one shard, the one the proxy reads it from now that all are up.
    held = holders(SHARDS)
    with Client(PROXY.port) as c:
        for nk, status in new_results.items():
            on = held.get(spelled(nk), [])
            if status == 201:
                check(len(on) == 1 and on[0] != down, f"{nk!r} written while shard {down} was down is on {on}")
                check(c.request("GET", canonical(nk)).status == 200, f"{nk!r} not readable")
            else:
                check(not on, f"{nk!r} failed ({status}) but was written to shards {on}")
        for k, v in list(KEYS.items())[:2000]:
            r = c.request("GET", canonical(k))
            check(r.status == 200 and r.body == v, f"after restart: {k!r}: {r!r}")


def test_hup_of_a_shard_under_load_loses_nothing():
    check(SHARDS, "needs the shards")
    stop = threading.Event()
    errors, acked, lock = [], {}, threading.Lock()
    counts = [0] * 4

    def load(n):
        rng = random.Random(n)
        mine = [b"hup/%d/%d" % (n, i) for i in range(200)]
        deadline = time.monotonic() + 60
        with Client(PROXY.port) as c:
            seq = 0
            while not stop.is_set() and time.monotonic() < deadline and len(errors) < 20:
                k = rng.choice(mine)
                seq += 1
                try:
                    if seq % 2:
                        v = b"%s=%d" % (k, seq)
                        r = c.request("PUT", canonical(k), v)
                        if r.status in (201, 204):
                            with lock:
                                acked[k] = v
                        else:
                            errors.append(f"PUT {k!r}: {r.status} {r.body[:200]!r}")
                    else:
                        r = c.request("GET", canonical(k))
                        with lock:
                            want = acked.get(k)
                        if r.status not in (200, 404) or (r.status == 200) != (want is not None) or \
                                (want is not None and r.body != want):
                            errors.append(f"GET {k!r}: {r.status} {r.body[:100]!r}, acked {want!r}")
                    counts[n] += 1
                except (ConnectionClosed, OSError) as e:
                    errors.append(f"client {n}: {e!r}")

    threads = [threading.Thread(target=load, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        for target in (0, 2, 0):
            SHARDS[target].signal(signal.SIGHUP)
            time.sleep(1.5)
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join(90)
    print(f"requests per client during the reloads: {counts}", flush=True)
    check(not errors, f"{len(errors)} requests lost or wrong while shards reloaded:\n  " + "\n  ".join(errors[:10]))
    check(min(counts) > 20, f"the load did not run: {counts}")
    with Client(PROXY.port) as c:
        for k, v in acked.items():
            r = c.request("GET", canonical(k))
            check(r.status == 200 and r.body == v, f"acknowledged {k!r} after the reloads: {r!r}")


def wait_until_haproxy_routes(key, status):
    """Waits until GET `key` through HAProxy, on a new connection, answers `status`: the
    reloaded file routes."""
    deadline = time.monotonic() + 180
    while True:
        with Client(PROXY.port) as c:
            if c.request("GET", "/v1/kv/" + key).status == status:
                return
        check(PROXY.proc.poll() is None, f"HAProxy's master exited on reload:\n{PROXY.logs()}")
        check(time.monotonic() < deadline, f"HAProxy did not route by the new file:\n{PROXY.logs()}")
        time.sleep(0.05)


def test_a_fourth_shard_added_behind_haproxy_with_kingx_reshard_loses_no_write():
    if ARGS.proxy != "haproxy":
        raise CaseSkipped("moves behind nginx are tests/deploy/test_reshard.py's")
    check(KEYS and len(SHARDS) == 3, "needs the keys and the three shards of the first case")
    workdir = tempfile.mkdtemp(prefix="kingx-reshard-haproxy-")
    try:
        s4 = Server(SHARD_ARGS)
        SHARDS.append(s4)
        s4.start()
        old_lines = proxy_lines(SHARDS[:3])
        # A new id, and another weight than the default-server's: both place the new points.
        new_lines = old_lines + [f"{HOST}:{s4.port} id 4 weight 50"]
        new_ring = proxy_ring(new_lines)
        s4_name = f"{HOST}:{s4.port}"
        lists = ["--old", tool_shards(old_lines), "--new", tool_shards(new_lines),
                 "--state", os.path.join(workdir, "move.json")]
        before = holders(SHARDS[:3])
        moving = {sp for sp in before if new_ring.owner(sp) == s4_name}
        check(0.08 * len(before) <= len(moving) <= 0.25 * len(before),
              f"{len(moving)} of {len(before)} keys move to a weight-50 shard beside three of 100")

        copied = reshard_ok("copy", *lists)
        # The new shard is listed last, holding the copies by then.
        check(copied["copied"] == len(moving) and copied["listed"] == len(before) + len(moving),
              f"copy: {copied}; expected {len(moving)} of {len(before)} keys copied")

        # Clients write on through HAProxy, still on the old file: rewrites and new keys, some of
        # them the fourth shard's, which `finish` copies again or for the first time.
        latest = dict(KEYS)
        touched = set()
        with Client(PROXY.port) as c:
            for n, k in enumerate(list(KEYS)[::40]):
                v = b"rewritten-%d" % n
                r = c.request("PUT", canonical(k), v)
                check(r.status in (201, 204), f"PUT {k!r} through HAProxy: {r!r}")
                latest[k] = v
                touched.add(spelled(k))
            for n in range(100):
                k = b"after-copy/%d" % n
                r = c.request("PUT", canonical(k), b"created-%d" % n)
                check(r.status == 201, f"PUT {k!r} through HAProxy: {r!r}")
                latest[k] = b"created-%d" % n
                touched.add(spelled(k))
        # Of the keys created after `copy` that move (on their old owners only, not copied), some
        # are deleted between the reload and `finish`, some written again there first.
        created_moving = [k for k in latest if k.startswith(b"after-copy/") and
                          new_ring.owner(spelled(k)) == s4_name]
        check(len(created_moving) >= 6, f"{len(created_moving)} keys created after copy move")
        deleted = created_moving[:len(created_moving) // 3]
        rewritten_deleted = created_moving[len(deleted):2 * len(deleted)]

        # The switch: the master reloads deploy/haproxy-resharding.cfg, the new ring with the old
        # one behind it. A canary only the fourth shard holds reads 200 through a new connection
        # once the new file routes.
        canary = next(f"reload-canary/{n}" for n in range(100000) if new_ring.owner(f"reload-canary/{n}") == s4_name)
        with Client(s4.port) as c:
            check(c.request("PUT", "/v1/kv/" + canary, b"new file").status == 201, "canary PUT")
        reload_haproxy(PROXY, new_lines, old_lines)
        wait_until_haproxy_routes(canary, 200)
        with Client(s4.port) as c:
            check(c.request("DELETE", "/v1/kv/" + canary).status == 204, "canary DELETE")

        # Between the reload and `finish`: every key reads its latest value; the deletes hold.
        with Client(PROXY.port) as c:
            window_reads = [(k, latest[k], c.request("GET", canonical(k))) for k in created_moving]
            window_deletes = []
            for k in deleted + rewritten_deleted:
                if k in rewritten_deleted:
                    r = c.request("PUT", canonical(k), b"written in the window")
                    check(r.status in (201, 204), f"PUT {k!r} between the reload and finish: {r!r}")
                window_deletes.append((k, c.request("DELETE", canonical(k))))
                latest.pop(k)
        # A shard that cannot be reached is never replaced by another: with the new owner stopped,
        # a copied key fails instead of reading its original through the old ring; with its old
        # owner stopped, its DELETE fails before the new owner is asked.
        old_ring = proxy_ring(old_lines)
        probe = min(moving - touched)
        probe_holder = shard_named(old_ring.owner(probe))
        for stopped, method in ((s4, "GET"), (probe_holder, "DELETE")):
            stopped.stop()
            try:
                with Client(PROXY.port) as c:
                    r = c.request(method, "/v1/kv/" + probe)
            finally:
                stopped.start()
            check(r.status in DOWN_STATUS["haproxy"], f"{method} of a moving key with shard {stopped.port} "
                                                      f"stopped between the reload and finish: {r!r}")
        for holder in (probe_holder, s4):
            with Client(holder.port) as c:
                check(c.request("GET", "/v1/kv/" + probe).status == 200, f"{probe} left on {holder.port}")

        finished = reshard_ok("finish", *lists)
        # Then haproxy-sharding.cfg with the new list: a canary left on its old owner alone, which
        # the resharding file reads through to, reads 404 once the new file routes.
        canary = next(f"final-canary/{n}" for n in range(100000) if new_ring.owner(f"final-canary/{n}") == s4_name)
        canary_holder = shard_named(old_ring.owner(canary))
        with Client(canary_holder.port) as c:
            check(c.request("PUT", "/v1/kv/" + canary, b"old file").status == 201, "canary PUT")
        reload_haproxy(PROXY, new_lines)
        wait_until_haproxy_routes(canary, 404)
        with Client(canary_holder.port) as c:
            check(c.request("DELETE", "/v1/kv/" + canary).status == 204, "canary DELETE")

        with Client(PROXY.port) as c:
            back = [k for k in deleted + rewritten_deleted if c.request("GET", canonical(k)).status != 404]
        check(not back, f"{len(back)} of {len(deleted + rewritten_deleted)} keys deleted through HAProxy between "
                        f"the reload and finish are back after finish: {back[:5]}")
        stale = [(k, r.status) for k, v, r in window_reads if r.status != 200 or r.body != v]
        check(not stale, f"{len(stale)} of {len(window_reads)} keys created after copy read otherwise than their "
                         f"value between the reload and finish: {stale[:5]}")
        # The client gets the new owner's answer: 404 where the key's only value was the original
        # on its old owner (deleted all the same, as checked above).
        refused = [(k, r.status) for k, r in window_deletes
                   if r.status != 204 and not (r.status == 404 and k in deleted)]
        check(not refused, f"DELETEs of keys created after copy between the reload and finish: {refused[:5]}")
        # Originals unchanged since `copy` are deleted; the ones written since are copied first.
        gone = {spelled(k) for k in deleted + rewritten_deleted}
        again = {sp for sp in touched if new_ring.owner(sp) == s4_name} - gone
        check(finished["finished_unchanged"] == len(moving - touched) and
              finished["recopied"] == len(again) and finished["conflicts"] == 0,
              f"finish: {finished}; expected {len(moving - touched)} unchanged, {len(again)} copied again")

        with Client(PROXY.port) as c:
            stale = []
            for k, v in latest.items():
                r = c.request("GET", canonical(k))
                if r.status != 200 or r.body != v:
                    stale.append((k, r.status))
        check(not stale, f"{len(stale)} of {len(latest)} keys do not read their latest value through "
                         f"HAProxy after the move: {stale[:5]}")
        after = holders(SHARDS)
        twice = [sp for sp, on in after.items() if len(on) > 1]
        check(not twice and set(after) == (set(before) | touched) - gone, f"after the move {len(after)} keys "
              f"(before {len(before)} + new - deleted), {len(twice)} on two shards: {twice[:5]}")
        report = reshard_ok("check", "--shards", tool_shards(new_lines))
        check(report["misplaced"] == 0 and report["keys"] == len(after), f"check after the move: {report}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main():
    exit_on_sigterm()
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--proxy", choices=("nginx", "haproxy"), required=True)
    p.add_argument("-k", action="append", default=[], help="run only cases containing this")
    ARGS = p.parse_args()
    try:
        start()
        cases = [(n, f) for n, f in cases_of(globals()) if not ARGS.k or any(s in n for s in ARGS.k)]
        status = run_cases(f"3 shards behind {ARGS.proxy}", cases, SHARDS[0])
        if status != 0 and PROXY is not None:
            print(PROXY.logs(3000))
    except TestFailure as e:
        print(f"FAIL setup: {e}")
        status = 1
    finally:
        if PROXY is not None:
            PROXY.cleanup()
        for s in SHARDS:
            s.cleanup()
    sys.exit(status)


if __name__ == "__main__":
    main()
