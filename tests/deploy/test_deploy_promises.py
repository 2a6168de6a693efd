#!/usr/bin/env python3
"""Promises of README's deployment sections that the other deploy tests do not hold the shipped
files to, each checked where an operator or a client sees it:

  - HAProxy (deploy/haproxy-sharding.cfg) refuses a request line with raw non-ASCII bytes with
    `400`, and nothing of such a PUT reaches a shard; the same key percent-encoded (its
    canonical spelling) goes through;
  - `deploy/kingx-reshard copy` interrupted (an old shard unreachable halfway: exit 2, some keys
    copied, no state file) and run again, then `finish`, then `finish` once more: every key
    ends on its owner in the new ring, exactly once, with its value, and the last `finish`
    changes nothing (README "Resharding": both phases are idempotent);
  - writes made between `copy` and `finish` are moved, and a copy never overwrites a newer
    write: an original written again on its old owner is copied again, one created there is
    copied, and a value a client wrote on the new owner stays (also when the original was
    written again too).
The shards are asked directly, as the tool does; no proxy is needed for what is checked here.

    KINGX_BIN=build/src/kingx python3 tests/deploy/test_deploy_promises.py
"""

import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proxies import DEPLOY, HOST, exit_on_sigterm, load_reshard, start_haproxy  # noqa: E402
from kingx_harness import Conn, Server, cases_of, check, http, key_path, run_cases  # noqa: E402

SERVERS = []    # every kingx started here, stopped at the end whatever happens
PROXIES = []
WORKDIR = tempfile.mkdtemp(prefix="kingx-deploy-promises-")


def shard():
    s = Server(["--workers", "1"])
    SERVERS.append(s)
    return s.start()


def name(s):
    return f"{HOST}:{s.port}"


def test_haproxy_refuses_raw_non_ascii_in_the_request_line_with_400():
    shards = [shard(), shard()]
    proxy = start_haproxy([name(s) for s in shards])
    PROXIES.append(proxy)
    raw = b"/v1/kv/ha/caf\xc3\xa9"
    with Conn(proxy.port) as c:
        c.send(b"PUT " + raw + b" HTTP/1.1\r\nHost: kv\r\nContent-Length: 5\r\n\r\nvalue")
        r = c.read_response()
    check(r.status == 400, f"PUT with raw non-ASCII bytes through HAProxy: {r!r}")
    with Conn(proxy.port) as c:
        c.send(b"GET " + raw + b" HTTP/1.1\r\nHost: kv\r\n\r\n")
        r = c.read_response()
    check(r.status == 400, f"GET with raw non-ASCII bytes through HAProxy: {r!r}")
    spelling = key_path("ha/café")
    check(spelling == "/v1/kv/ha/caf%C3%A9", spelling)
    for s in shards:  # the refused PUT stored nothing anywhere
        r = http(s.port, "GET", spelling)
        check(r.status == 404, f"the key on shard {name(s)} after the refused PUT: {r!r}")
    r = http(proxy.port, "PUT", spelling, b"value")
    check(r.status == 201, f"PUT of the canonical spelling through HAProxy: {r!r}")
    r = http(proxy.port, "GET", spelling)
    check(r.status == 200 and r.body == b"value", f"GET of the canonical spelling through HAProxy: {r!r}")


def reshard(*args):
    return subprocess.run([sys.executable, os.path.join(DEPLOY, "kingx-reshard")] + list(args),
                          capture_output=True, text=True, timeout=300)


def test_an_interrupted_copy_run_again_then_finish_moves_every_key_exactly_once():
    kr = load_reshard()
    a, b, c = shard(), shard(), shard()
    old, new = [name(a), name(b)], [name(a), name(b), name(c)]
    by_name = {name(s): s for s in (a, b, c)}
    old_ring, new_ring = kr.Ring(old), kr.Ring(new)
    values = {f"rs/{i:04d}": os.urandom(64) + b"%d" % i for i in range(120)}
    for key, value in values.items():
        r = http(by_name[old_ring.owner(key_path(key)[len("/v1/kv/"):])].port, "PUT", key_path(key), value)
        check(r.status == 201, f"PUT {key}: {r!r}")
    moving = [k for k in values if new_ring.owner(key_path(k)[len("/v1/kv/"):]) == name(c)]
    on_a = [k for k in moving if old_ring.owner(key_path(k)[len("/v1/kv/"):]) == name(a)]
    check(on_a and len(on_a) < len(moving), f"{len(moving)} keys move, {len(on_a)} of them from the first shard")
    state = os.path.join(WORKDIR, "reshard.json")
    lists = ["--old", ",".join(old), "--new", ",".join(new), "--state", state]

    # The second old shard is unreachable: the first shard's leaving keys are copied, then the
    # listing of the second fails and the run stops (exit 2) before it records anything.
    check(b.stop() == 0, "stop of the second shard")
    p = reshard("copy", *lists)
    check(p.returncode == 2 and name(b) in p.stderr, f"copy with a shard down: exit {p.returncode}, {p.stderr}")
    copied = [k for k in on_a if http(c.port, "GET", key_path(k)).status == 200]
    check(copied == on_a, f"the interrupted copy copied {len(copied)} of the first shard's {len(on_a)} leaving keys")
    b.start()

    p = reshard("copy", *lists)
    check(p.returncode == 0, f"copy run again: exit {p.returncode}, {p.stdout} {p.stderr}")
    stats = json.loads(p.stdout)
    check(stats["copied"] == len(moving) - len(on_a),
          f"copy run again (copies only what the first run did not): {stats}, {len(moving)} keys move, "
          f"{len(on_a)} copied before")
    for run in (1, 2):
        p = reshard("finish", *lists)
        check(p.returncode == 0, f"finish run {run}: exit {p.returncode}, {p.stdout} {p.stderr}")
        for key, value in values.items():
            owner = new_ring.owner(key_path(key)[len("/v1/kv/"):])
            for s in (a, b, c):
                r = http(s.port, "GET", key_path(key))
                if name(s) == owner:
                    check(r.status == 200 and r.body == value, f"after finish run {run}: {key} on its owner: {r!r}")
                else:
                    check(r.status == 404, f"after finish run {run}: {key} also on {name(s)} (owner {owner}): {r!r}")
    p = reshard("check", "--shards", ",".join(new))
    check(p.returncode == 0 and json.loads(p.stdout)["keys"] == len(values), f"check: {p.stdout} {p.stderr}")


def test_finish_moves_writes_made_after_copy_and_never_overwrites_a_newer_write():
    # Between copy and finish clients go on writing: on the old owner (before
    # the proxy switched) and on the new owner (after). finish copies again
    # an original written since it was copied, copies one created since, and
    # leaves a value a client wrote on the new owner alone.
    kr = load_reshard()
    a, b, c = shard(), shard(), shard()
    old, new = [name(a), name(b)], [name(a), name(b), name(c)]
    by_name = {name(s): s for s in (a, b, c)}
    old_ring, new_ring = kr.Ring(old), kr.Ring(new)
    spelling = lambda k: key_path(k)[len("/v1/kv/"):]  # noqa: E731
    old_port = lambda k: by_name[old_ring.owner(spelling(k))].port  # noqa: E731
    values = {f"aw/{i:03d}": b"first %d" % i for i in range(120)}
    for key, value in values.items():
        check(http(old_port(key), "PUT", key_path(key), value).status == 201, f"PUT {key}")
    moving = sorted(k for k in values if new_ring.owner(spelling(k)) == name(c))
    check(len(moving) >= 4, f"{len(moving)} keys move")
    state = os.path.join(WORKDIR, "after-copy.json")
    lists = ["--old", ",".join(old), "--new", ",".join(new), "--state", state]
    p = reshard("copy", *lists)
    check(p.returncode == 0, f"copy: {p.stdout} {p.stderr}")

    rewritten_old, written_new, both = moving[0], moving[1], moving[2]
    for key in (rewritten_old, both):       # written again on the old owner
        values[key] = b"rewritten on the old owner " + key.encode()
        check(http(old_port(key), "PUT", key_path(key), values[key]).status == 204, f"rewrite of {key}")
    for key in (written_new, both):         # then by a client on the new owner
        values[key] = b"written on the new owner " + key.encode()
        check(http(c.port, "PUT", key_path(key), values[key]).status == 204, f"write of {key} on the new owner")
    created = next(f"aw/new-{i}" for i in range(10_000) if new_ring.owner(spelling(f"aw/new-{i}")) == name(c))
    values[created] = b"created on the old owner after copy"
    check(http(old_port(created), "PUT", key_path(created), values[created]).status == 201, f"PUT {created}")

    p = reshard("finish", *lists)
    check(p.returncode == 0, f"finish: {p.returncode} {p.stdout} {p.stderr}")
    for key, value in values.items():
        owner = new_ring.owner(spelling(key))
        for s in (a, b, c):
            r = http(s.port, "GET", key_path(key))
            if name(s) == owner:
                check(r.status == 200 and r.body == value, f"after finish: {key} on its owner: {r!r}, want {value!r}")
            else:
                check(r.status == 404, f"after finish: {key} also on {name(s)} (owner {owner}): {r!r}")


def main():
    exit_on_sigterm()
    try:
        return run_cases("deploy promises", cases_of(globals()))
    finally:
        for p in PROXIES:
            p.cleanup()
        for s in SERVERS:
            s.cleanup()
        if os.environ.get("KINGX_KEEP") != "1":
            import shutil
            shutil.rmtree(WORKDIR, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
