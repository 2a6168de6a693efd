#!/usr/bin/env python3
"""Promises of README's deployment sections that the other deploy tests do not hold the shipped
files to, each checked where an operator or a client sees it:

  - HAProxy (deploy/haproxy-sharding.cfg) refuses a request line with raw non-ASCII bytes with
    `400`, and nothing of such a PUT reaches a shard; the same key percent-encoded (its
    canonical spelling) goes through; a stopped shard's keys get HAProxy's `503` in problem+json
    (haproxy-resharding.cfg has the same error answers);
  - `deploy/kingx-reshard copy` interrupted (an old shard unreachable halfway: exit 2, some keys
    copied, no state file) and run again, then `finish`, then `finish` once more: every key
    ends on its owner in the new ring, exactly once, with its value, and the last `finish`
    changes nothing (README "Resharding": both phases are idempotent);
  - a step of a move given another --ring, --old or --new than the move's `copy` was (recorded
    in the state file, or in the journal of a `copy` interrupted before it wrote one) exits 3
    naming the option, before it changes anything on any shard; the recorded ones then finish,
    also from a state file of the earlier format (the keys alone, taken with a word on stderr);
  - between the two phases, deploy/nginx-resharding.conf reads a key not yet on its new owner from
    its old one, sends an unconditional DELETE to both rings (the original and the copy go), leaves
    a DELETE with If-Match to the new owner alone, and sends a PUT to the new owner;
  - writes made between `copy` and `finish` are moved, and a copy never overwrites a newer
    write: an original written again on its old owner is copied again, one created there is
    copied, and a value a client wrote on the new owner stays (also when the original was
    written again too).
The shards are asked directly, as the tool does; no proxy is needed for what is checked here.

    KINGX_BIN=build/src/kingx python3 tests/deploy/test_deploy_promises.py
"""

import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proxies import read_shipped, start_haproxy  # noqa: E402
from reshard_setup import Move, name, reshard, run_deploy_cases  # noqa: E402
from kingx_harness import (Conn, Server, cases_of, check, check_put_without_length_refused, http,  # noqa: E402
                           key_path, wait_for)

SERVERS = []    # every kingx started here, stopped at the end whatever happens
PROXIES = []
WORKDIR = tempfile.mkdtemp(prefix="kingx-deploy-promises-")


def shard():
    s = Server(["--workers", "1"])
    SERVERS.append(s)
    return s.start()


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



def test_a_put_without_length_gets_kingx_s_411_through_haproxy():
    # HAProxy forwards it as sent (no Content-Length: 0 added), so kingx decides.
    shards = [shard(), shard()]
    proxy = start_haproxy([name(s) for s in shards])
    PROXIES.append(proxy)
    k = key_path("ha/bare")
    check(http(proxy.port, "PUT", k, b"kept").status == 201, "PUT through HAProxy")
    for path in (k, key_path("ha/bare-absent")):
        check_put_without_length_refused(proxy.port, path, "through HAProxy")
    check_put_without_length_refused(proxy.port, k, "with Expect through HAProxy", [("Expect", "100-continue")])

def test_haproxy_answers_a_down_shard_s_keys_503_in_problem_json():
    shards = [shard(), shard()]
    proxy = start_haproxy([name(s) for s in shards])
    PROXIES.append(proxy)
    shards[1].stop()
    answers = [http(proxy.port, "GET", key_path(f"down-{i}")) for i in range(40)]
    down = [r for r in answers if r.status != 404]
    check(down, "no key of the stopped shard among 40")
    for r in down:
        check(r.status == 503 and r.header("Content-Type") == "application/problem+json"
              and r.json().get("status") == 503, f"a key of the stopped shard through HAProxy: {r!r}")
    shards[1].start()
    # haproxy-resharding.cfg, which serves during a move, answers alike
    lines = lambda f: [ln for ln in read_shipped(f).splitlines() if ln.strip().startswith("http-error ")]
    check(lines("haproxy-sharding.cfg") and lines("haproxy-sharding.cfg") == lines("haproxy-resharding.cfg"),
          "haproxy-resharding.cfg does not answer HAProxy's own errors as haproxy-sharding.cfg does")


def test_an_interrupted_copy_run_again_then_finish_moves_every_key_exactly_once():
    mv = Move(SERVERS, WORKDIR, "reshard")
    a, b, c, lists = mv.a, mv.b, mv.c, mv.lists
    values = {f"rs/{i:04d}": os.urandom(64) + b"%d" % i for i in range(120)}
    for key, value in values.items():
        r = http(mv.old_owner(key).port, "PUT", key_path(key), value)
        check(r.status == 201, f"PUT {key}: {r!r}")
    moving = [k for k in values if mv.moves(k)]
    on_a = [k for k in moving if mv.old_owner(k) is a]
    check(on_a and len(on_a) < len(moving), f"{len(moving)} keys move, {len(on_a)} of them from the first shard")

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
            owner = mv.new_owner(key)
            for s in (a, b, c):
                r = http(s.port, "GET", key_path(key))
                if s is owner:
                    check(r.status == 200 and r.body == value, f"after finish run {run}: {key} on its owner: {r!r}")
                else:
                    check(r.status == 404,
                          f"after finish run {run}: {key} also on {name(s)} (owner {name(owner)}): {r!r}")
    p = reshard("check", "--shards", ",".join(mv.new))
    check(p.returncode == 0 and json.loads(p.stdout)["keys"] == len(values), f"check: {p.stdout} {p.stderr}")


def test_a_step_given_another_ring_or_list_than_the_move_recorded_is_refused_and_changes_nothing():
    # README "Resharding": a `finish` placing keys by nginx's ring after a `copy` by HAProxy's
    # would move them where HAProxy does not read and delete the originals it does read. The
    # likely slip: the README's nginx example (no --ring, no ids) run for a HAProxy move.
    mv = Move(SERVERS, WORKDIR, "ring", ring="haproxy")
    a, b, c, lists = mv.a, mv.b, mv.c, mv.lists
    values = {f"rg/{i:03d}": b"value %d" % i for i in range(60)}
    for key, value in values.items():
        check(http(mv.old_owner(key).port, "PUT", key_path(key), value).status == 201, f"PUT {key}")
    moving = [k for k in values if mv.moves(k)]
    on_a = [k for k in moving if mv.old_owner(k) is a]
    check(on_a and len(on_a) < len(moving), f"{len(moving)} keys move, {len(on_a)} of them from the first shard")

    def holders():
        return {k: [name(s) for s in (a, b, c) if http(s.port, "GET", key_path(k)).status == 200] for k in values}

    def refused(before, phase, option, old=None, new=None, ring="haproxy"):
        """`phase` with another --`option` exits 3 naming it, and the shards hold what `before`
        says they did."""
        args = ["--old", old or lists[1], "--new", new or lists[3], "--state", mv.state, "--ring", ring]
        if ring == "nginx":  # written as for nginx: no ids
            args[1], args[3] = old or ",".join(mv.old), new or ",".join(mv.new)
        p = reshard(phase, *args)
        check(p.returncode == 3 and f"--{option} " in p.stderr and "begun with" in p.stderr,
              f"{phase} with another --{option}: exit {p.returncode}, {p.stdout} {p.stderr}")
        after = holders()
        changed = [k for k in values if before[k] != after[k]]
        check(not changed, f"a refused {phase} moved {len(changed)} keys, e.g. {changed[:3]}")

    # A `copy` stopped by an old shard that cannot be listed leaves its journal, no state file:
    # the journal alone holds the move to its ring.
    check(b.stop() == 0, "stop of the second shard")
    p = reshard("copy", *lists)
    check(p.returncode == 2, f"copy with a shard down: exit {p.returncode}, {p.stderr}")
    b.start()
    check(not os.path.exists(mv.state) and os.path.exists(mv.state + ".journal"),
          "an interrupted copy leaves its journal and no state file")
    before = holders()
    refused(before, "finish", "ring", ring="nginx")
    refused(before, "copy", "ring", ring="nginx")

    p = reshard("copy", *lists)
    check(p.returncode == 0, f"copy run again: exit {p.returncode}, {p.stdout} {p.stderr}")
    before = holders()
    refused(before, "finish", "ring", ring="nginx")
    # Another weight for the new shard, another id for an old one: both move HAProxy's points.
    refused(before, "finish", "new", new=lists[3].replace(" id=3", " id=3 weight=50"))
    refused(before, "finish", "old", old=lists[1].replace(" id=2", " id=5"))
    # A state file of main's tool before the move was recorded (the keys alone) is taken with the
    # run's arguments, said on stderr. The same lists spelled otherwise (the default weight
    # written out) are the same move.
    with open(mv.state) as f:
        doc = json.load(f)
    check(doc["move"]["ring"] == "haproxy" and len(doc["move"]["new"]) == 3, f"the state records {doc['move']}")
    with open(mv.state, "w") as f:
        json.dump(doc["keys"], f)
    p = reshard("finish", "--old", lists[1].replace(" id=2", " id=2 weight=100"), *lists[2:])
    check(p.returncode == 0 and "records no --ring" in p.stderr,
          f"finish with the recorded move from an earlier state file: exit {p.returncode}, {p.stdout} {p.stderr}")
    where = holders()
    wrong = [k for k in values if where[k] != [name(mv.new_owner(k))]]
    check(not wrong, f"after finish {len(wrong)} keys are not on their owner alone, e.g. "
                     f"{[(k, where[k]) for k in wrong[:3]]}")


def test_finish_moves_writes_made_after_copy_and_never_overwrites_a_newer_write():
    # Between copy and finish clients go on writing: on the old owner (before
    # the proxy switched) and on the new owner (after). finish copies again
    # an original written since it was copied, copies one created since, and
    # leaves a value a client wrote on the new owner alone.
    mv = Move(SERVERS, WORKDIR, "after-copy")
    a, b, c, lists = mv.a, mv.b, mv.c, mv.lists
    old_port = lambda k: mv.old_owner(k).port  # noqa: E731
    values = {f"aw/{i:03d}": b"first %d" % i for i in range(120)}
    for key, value in values.items():
        check(http(old_port(key), "PUT", key_path(key), value).status == 201, f"PUT {key}")
    moving = sorted(k for k in values if mv.moves(k))
    check(len(moving) >= 4, f"{len(moving)} keys move")
    p = reshard("copy", *lists)
    check(p.returncode == 0, f"copy: {p.stdout} {p.stderr}")

    rewritten_old, written_new, both = moving[0], moving[1], moving[2]
    for key in (rewritten_old, both):       # written again on the old owner
        values[key] = b"rewritten on the old owner " + key.encode()
        check(http(old_port(key), "PUT", key_path(key), values[key]).status == 204, f"rewrite of {key}")
    for key in (written_new, both):         # then by a client on the new owner
        values[key] = b"written on the new owner " + key.encode()
        check(http(c.port, "PUT", key_path(key), values[key]).status == 204, f"write of {key} on the new owner")
    created = next(f"aw/new-{i}" for i in range(10_000) if mv.moves(f"aw/new-{i}"))
    values[created] = b"created on the old owner after copy"
    check(http(old_port(created), "PUT", key_path(created), values[created]).status == 201, f"PUT {created}")

    p = reshard("finish", *lists)
    check(p.returncode == 0, f"finish: {p.returncode} {p.stdout} {p.stderr}")
    for key, value in values.items():
        owner = mv.new_owner(key)
        for s in (a, b, c):
            r = http(s.port, "GET", key_path(key))
            if s is owner:
                check(r.status == 200 and r.body == value, f"after finish: {key} on its owner: {r!r}, want {value!r}")
            else:
                check(r.status == 404, f"after finish: {key} also on {name(s)} (owner {name(owner)}): {r!r}")


def test_during_a_move_nginx_reads_through_to_the_old_ring_and_deletes_on_both():
    # deploy/nginx-resharding.conf between copy and finish, shards asked
    # directly to set up and to check: a key not yet on its new owner is read
    # from its old one; an unconditional DELETE removes the original and the
    # copy; a DELETE with If-Match is decided by the new owner alone; a PUT
    # goes to the new owner.
    mv = Move(SERVERS, WORKDIR, "nginx")
    c = mv.c
    moving = mv.moving((f"rt/{i}" for i in range(2000)), 4)
    not_copied, copied, conditional, written = moving
    for key in moving:
        check(http(mv.old_owner(key).port, "PUT", key_path(key), b"old " + key.encode()).status == 201, f"PUT {key}")
    for key in (copied, conditional):  # as `copy` leaves them
        check(http(c.port, "PUT", key_path(key), b"old " + key.encode(), [("If-None-Match", "*")]).status == 201,
              f"copy of {key}")

    port = mv.start_resharding_nginx(PROXIES)

    r = http(port, "GET", key_path(not_copied))
    check(r.status == 200 and r.body == b"old " + not_copied.encode(), f"GET of a key not yet copied: {r!r}")
    r = http(port, "DELETE", key_path(copied))
    check(r.status == 204, f"unconditional DELETE through nginx: {r!r}")
    old_copied = mv.old_owner(copied)
    # The mirror's subrequest may end after the client's answer: wait for it.
    wait_for(lambda: http(old_copied.port, "GET", key_path(copied)).status == 404, 60,
             "the original on the old owner deleted by the mirrored DELETE")
    check(http(c.port, "GET", key_path(copied)).status == 404, "the copy after the DELETE")
    # The original and the copy get the same ETag (a shard numbers its writes
    # one by one: rewrite the one behind until they meet), so that an
    # If-Match sent to the old ring too would delete the original there.
    old_conditional = mv.old_owner(conditional)
    seq = lambda s_: int(http(s_.port, "GET", key_path(conditional)).header("ETag").strip('"'))  # noqa: E731
    for _ in range(1000):
        behind = [s_ for s_ in (old_conditional, c) if seq(s_) < max(seq(old_conditional), seq(c))]
        if not behind:
            break
        check(http(behind[0].port, "PUT", key_path(conditional), b"old " + conditional.encode()).status == 204, "")
    check(seq(old_conditional) == seq(c), f"the original and the copy of {conditional} with one ETag")
    etag = http(c.port, "GET", key_path(conditional)).header("ETag")
    with Conn(port, timeout=60) as conn:
        r = conn.request("DELETE", key_path(conditional), None, [("If-Match", etag)])
        check(r.status == 204, f"DELETE with If-Match through nginx: {r!r}")
        # nginx serves the connection's next request once the first one's
        # mirror subrequest has ended.
        r = conn.request("GET", "/v1/kv/")
        check(r.status == 404, f"a request after the DELETE on the same connection: {r!r}")
    r = http(old_conditional.port, "GET", key_path(conditional))
    check(r.status == 200, f"the original after a DELETE with If-Match (decided by the new owner alone): {r!r}")
    r = http(port, "PUT", key_path(written), b"new value")
    check(r.status == 204 or r.status == 201, f"PUT through nginx: {r!r}")
    r = http(c.port, "GET", key_path(written))
    check(r.status == 200 and r.body == b"new value", f"the PUT on the new owner: {r!r}")


def main():
    return run_deploy_cases("deploy promises", cases_of(globals()), SERVERS, PROXIES, WORKDIR)


if __name__ == "__main__":
    sys.exit(main())
