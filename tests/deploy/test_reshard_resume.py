#!/usr/bin/env python3
"""`deploy/kingx-reshard` run again after an interruption (README "Resharding": both phases are
idempotent, run `finish` again after an interruption), 2 -> 3 kingx shards addressed directly
(no proxy: what is checked is the mover's own bookkeeping):

- `finish` stopped by an error halfway (the new shard down, exit 2), run again once it is back;
- `finish` killed with SIGKILL halfway (after it deleted some originals), run again;

after which every key is on its owner in the new ring with its value, on no other shard, and a
key deleted on its old owner between `copy` and `finish` is gone everywhere (its copy removed);
and `check --state` after a move that removes a shard (3 -> 2): late writes on the removed shard
and on a remaining one, both named with where they are and the `finish` command that settles
them, which it prints; it changes no byte of any shard's listing or of the state file; usage
errors exit 2 naming the flag, another ring or list than the move's 3.
The interruption points are wherever the run happens to be: every one must be safe.

    KINGX_BIN=build/src/kingx python3 tests/deploy/test_reshard_resume.py
"""

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proxies import DEPLOY, HOST, exit_on_sigterm, load_reshard  # noqa: E402
from kingx_harness import Conn, Server, check, http, key_path, metric, run_cases  # noqa: E402

SERVERS = []
WORKDIR = tempfile.mkdtemp(prefix="kingx-reshard-resume-")
KR = load_reshard()


def shard():
    s = Server(["--workers", "1"])
    SERVERS.append(s)
    s.start()
    return s


def name(s):
    return f"{HOST}:{s.port}"


def spelling(key):
    return key_path(key)[len("/v1/kv/"):]


def reshard(*args, wait=True):
    argv = [sys.executable, os.path.join(DEPLOY, "kingx-reshard")] + list(args)
    if not wait:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(argv, capture_output=True, text=True, timeout=600)


def fill(old_ring, by_name, values):
    conns = {n: Conn(s.port) for n, s in by_name.items()}
    try:
        for key, value in values.items():
            r = conns[old_ring.owner(spelling(key))].request("PUT", key_path(key), value)
            check(r.status == 201, f"PUT {key}: {r!r}")
    finally:
        for c in conns.values():
            c.close()


def listed(s):
    return set(KR.Shard(name(s)).keys())


def check_placement(new_ring, by_name, values, deleted):
    """Every key of `values` on its owner only, with its value; every key of `deleted` nowhere."""
    on = {n: listed(s) for n, s in by_name.items()}
    lost = []
    for key, value in values.items():
        owner = new_ring.owner(spelling(key))
        r = http(by_name[owner].port, "GET", key_path(key))
        if r.status != 200 or r.body != value:
            lost.append((key, owner, r.status))
        elsewhere = [n for n in on if n != owner and spelling(key) in on[n]]
        check(not elsewhere, f"{key} is also on {elsewhere} (owner {owner})")
    check(not lost, f"{len(lost)} of {len(values)} keys not on their owner with their value, e.g. {lost[:5]}")
    for key in deleted:
        holders = [n for n in on if spelling(key) in on[n]]
        check(not holders, f"{key}, deleted on its old owner before finish, is still on {holders}")


def setup(nkeys, tag):
    a, b, c = shard(), shard(), shard()
    old, new = [name(a), name(b)], [name(a), name(b), name(c)]
    by_name = {name(s): s for s in (a, b, c)}
    old_ring, new_ring = KR.Ring(old), KR.Ring(new)
    values = {f"{tag}/{i:05d}": os.urandom(48) + b"%d" % i for i in range(nkeys)}
    fill(old_ring, by_name, values)
    state = os.path.join(WORKDIR, f"{tag}.json")
    lists = ["--old", ",".join(old), "--new", ",".join(new), "--state", state]
    p = reshard("copy", *lists)
    check(p.returncode == 0, f"copy: {p.returncode} {p.stdout} {p.stderr}")
    # Deleted on its old owner between copy and finish: its copy on the new owner must go too.
    moving = [k for k in values if new_ring.owner(spelling(k)) == name(c)]
    check(len(moving) > 10, f"only {len(moving)} of {nkeys} keys move to the new shard")
    gone = moving[:3]
    for key in gone:
        check(http(by_name[old_ring.owner(spelling(key))].port, "DELETE", key_path(key)).status == 204, key)
        del values[key]
    return a, b, c, lists, new_ring, by_name, values, gone, state


def test_finish_stopped_by_an_error_and_run_again_loses_no_key():
    a, b, c, lists, new_ring, by_name, values, gone, state = setup(1200, "err")
    # The new shard cannot be listed: finish deletes the old shards' originals of the keys
    # moving to it (their copies are there: the listing of a and b comes first), then stops.
    check(c.stop() == 0, "stop of the new shard")
    p = reshard("finish", *lists)
    check(p.returncode == 2 and name(c) in p.stderr, f"finish with the new shard down: {p.returncode} {p.stderr}")
    journal_left = os.path.exists(state + ".journal")
    c.start()
    check(name(c) in by_name, "the new shard came back on its port")
    p = reshard("finish", *lists)
    check(p.returncode == 0, f"finish run again: {p.returncode} {p.stdout} {p.stderr}")
    check_placement(new_ring, by_name, values, gone)
    check(journal_left, "the interrupted finish left no journal")
    check(not os.path.exists(state + ".journal"), "a completed finish removes the journal")
    p = reshard("check", "--shards", lists[3])
    check(p.returncode == 0, f"check after the move: {p.stdout} {p.stderr}")


def test_finish_killed_halfway_and_run_again_loses_no_key():
    a, b, c, lists, new_ring, by_name, values, gone, state = setup(1200, "kill")
    moving = sum(1 for k in values if new_ring.owner(spelling(k)) == name(c))
    old_keys = len(listed(a)) + len(listed(b))
    # Killed once it has deleted some originals, before it deleted them all (polled: the
    # point it dies at is whatever it is doing then).
    p = reshard("finish", *lists, wait=False)
    killed = False
    deadline = time.monotonic() + 300
    while p.poll() is None and time.monotonic() < deadline:
        left = metric(a.port, "kingx_engine_keys") + metric(b.port, "kingx_engine_keys")
        if left < old_keys:
            p.send_signal(signal.SIGKILL)
            killed = True
            break
        time.sleep(0.002)
    p.wait(60)
    check(killed, f"finish ended before it could be killed mid-run (rc {p.returncode}); {moving} keys to move")
    deleted_first = old_keys - (len(listed(a)) + len(listed(b)))
    check(0 < deleted_first < moving, f"the killed run deleted {deleted_first} of {moving} originals")
    p = reshard("finish", *lists)
    check(p.returncode == 0, f"finish run again: {p.returncode} {p.stdout} {p.stderr}")
    check_placement(new_ring, by_name, values, gone)


def snapshot(shards, state):
    """Every shard's whole listing as bytes, and the state file and its journal (None: absent)."""
    out = {}
    for s in shards:
        r = http(s.port, "GET", "/v1/kv/?encoding=url&limit=1000")
        check(r.status == 200, f"listing {name(s)}: {r!r}")
        out[name(s)] = r.body
    for path in (state, state + ".journal"):
        try:
            with open(path, "rb") as f:
                out[path] = f.read()
        except FileNotFoundError:
            out[path] = None
    return out


def test_check_with_the_state_names_every_key_left_and_changes_nothing():
    # A move that removes a shard (a, b, c -> a, b). After it, two late writes: one on the
    # removed shard c (its old owner), which `check --shards a,b` cannot see, and one on b for
    # a key that a owns. `check --state` lists c too, names both, says the finish command;
    # it changes no byte of any shard's listing or of the state file; finish run again
    # settles both, and check --state then exits 0.
    a, b, c = shard(), shard(), shard()
    old, new = [name(a), name(b), name(c)], [name(a), name(b)]
    by_name = {name(s): s for s in (a, b, c)}
    old_ring, new_ring = KR.Ring(old), KR.Ring(new)
    values = {f"cs/{i:04d}": b"v%d" % i for i in range(300)}
    fill(old_ring, by_name, values)
    state = os.path.join(WORKDIR, "check-state.json")
    lists = ["--old", ",".join(old), "--new", ",".join(new), "--state", state]
    for phase in ("copy", "finish"):
        p = reshard(phase, *lists)
        check(p.returncode == 0, f"{phase}: {p.returncode} {p.stdout} {p.stderr}")
    p = reshard("check", "--state", state)
    check(p.returncode == 0, f"check --state after the move: {p.returncode} {p.stdout} {p.stderr}")
    done = json.loads(p.stdout)
    check(done["misplaced"] == 0 and done["where"] == [] and done["keys"] == len(values) and done["tracked"] == 0
          and not done["interrupted"], f"after the move: {done}")
    late_c = next(f"late/c{i}" for i in range(1000) if old_ring.owner(spelling(f"late/c{i}")) == name(c))
    late_b = next(f"late/b{i}" for i in range(1000) if new_ring.owner(spelling(f"late/b{i}")) == name(a))
    check(http(c.port, "PUT", key_path(late_c), b"on c").status == 201, "late write on the removed shard")
    check(http(b.port, "PUT", key_path(late_b), b"on b").status == 201, "late write on b, owned by a")
    p = reshard("check", "--shards", ",".join(new))
    check(p.returncode == 1 and json.loads(p.stdout)["misplaced"] == 1,
          f"check --shards a,b sees the key on b, not the one on c: {p.stdout} {p.stderr}")
    before = snapshot((a, b, c), state)
    p = reshard("check", "--state", state)
    after = snapshot((a, b, c), state)
    check(p.returncode == 1, f"check --state with keys left: {p.returncode} {p.stdout} {p.stderr}")
    report = json.loads(p.stdout)
    where = sorted((w["key"], w["on"], w["owner"]) for w in report["where"])
    want = sorted([(spelling(late_c), name(c), new_ring.owner(spelling(late_c))), (spelling(late_b), name(b), name(a))])
    check(where == want, f"where: {where}, expected {want}")
    check(report["misplaced"] == 2 and report["keys"] == len(values) + 2, f"counts: {report}")
    command = re.fullmatch(r"run `(kingx-reshard finish [^`]*)`, then check again", report["next"])
    check(command and all(n in command.group(1) for n in old) and state in command.group(1),
          f"next names the finish command with the move's lists and state: {report['next']}")
    check(before == after, "check --state changed a shard's listing or the state file: "
          + ", ".join(k for k in before if before[k] != after[k]))
    p = reshard(*shlex.split(command.group(1))[1:])  # the command as printed
    check(p.returncode == 0, f"{command.group(1)}: {p.returncode} {p.stdout} {p.stderr}")
    p = reshard("check", "--state", state)
    check(p.returncode == 0 and json.loads(p.stdout)["where"] == [], f"check --state after: {p.stdout} {p.stderr}")
    for key, value in ((late_c, b"on c"), (late_b, b"on b")):
        r = http(by_name[new_ring.owner(spelling(key))].port, "GET", key_path(key))
        check(r.status == 200 and r.body == value, f"{key} on its owner: {r!r}")
    # Usage errors name the flag (2); another ring or list than the move's is refused (3).
    for args, code, named in ((["check"], 2, "--state"), (["check", "--state", state + ".missing"], 2, "--state"),
                              (["check", "--state", state, "--ring", "haproxy"], 3, "--ring"),
                              (["check", "--state", state, "--shards", ",".join(old)], 3, "--shards")):
        p = reshard(*args)
        check(p.returncode == code and named in p.stderr, f"{args}: exit {p.returncode}, {p.stderr!r}")


def main():
    exit_on_sigterm()
    try:
        return run_cases("kingx-reshard run again after an interruption", [
            ("finish_stopped_by_an_error_and_run_again_loses_no_key",
             test_finish_stopped_by_an_error_and_run_again_loses_no_key),
            ("finish_killed_halfway_and_run_again_loses_no_key",
             test_finish_killed_halfway_and_run_again_loses_no_key),
            ("check_with_the_state_names_every_key_left_and_changes_nothing",
             test_check_with_the_state_names_every_key_left_and_changes_nothing),
        ])
    finally:
        for s in SERVERS:
            s.cleanup()
        shutil.rmtree(WORKDIR, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
