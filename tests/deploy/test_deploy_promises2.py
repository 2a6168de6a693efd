#!/usr/bin/env python3
"""Promises of README's "Resharding" that the other deploy tests do not hold deploy/kingx-reshard
and deploy/nginx-resharding.conf to (the second part; test_deploy_promises.py has the first),
2 -> 3 kingx shards:

  - between `copy` and `finish`, conditional writes sent through nginx-resharding.conf are
    decided by the key's new owner alone: a create-only PUT (If-None-Match: *) of a key that
    only its old owner holds succeeds (the new value wins), an If-Match PUT naming the old
    owner's ETag of such a key is 412, an If-Match PUT naming the copy's ETag replaces the copy
    (also when the original was written again since `copy`), a create-only PUT of a copied key
    is 412, and an If-Match naming the original's ETag instead of the copy's is 412. `finish`
    then keeps every write a client made on the new owner, moves the rest, and leaves each key
    on its owner only;
  - values over 1 MiB (staged in files of their own by kingx) are carried through an
    interrupted `finish`: the tool killed with SIGKILL while it re-copies such a value (the new
    owner's writer held stopped, so the upload is in flight and the tool never learns its
    outcome), then run again: every value arrives byte for byte on its owner and nowhere else,
    and nothing of the cut upload stays staged; the same with small values and Ctrl-C (SIGINT,
    whose exit runs the tool's own cleanup) instead of SIGKILL;
  - `finish` fsyncs its journal naming the originals it is about to delete before it deletes
    them, at most 256 at a time (observed in this process, with chunks of 8);
  - the tool lists a shard through a restart that rebuilt its key view: a cursor handed out
    before is refused and the listing goes on after the last key it yielded (each key once, in
    order), and while the view is being rebuilt (listing 503) `copy` waits for it, then copies
    everything (README: "a shard whose sorted key view is still being built answers 503 and is
    waited for, and a cursor refused after that view was rebuilt is replaced by start_after").

    KINGX_BIN=build/src/kingx python3 tests/deploy/test_deploy_promises2.py
"""

import json
import os
import re
import shutil
import signal
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reshard_setup import Move, name, reshard, run_deploy_cases  # noqa: E402
from kingx_harness import (Conn, build_request, cases_of, check, http, key_path, metric,  # noqa: E402
                           staging_files, wait_for)
from fault_flag import fail_point_while  # noqa: E402

SERVERS = []    # every kingx started here, stopped at the end whatever happens
PROXIES = []
WORKDIR = tempfile.mkdtemp(prefix="kingx-deploy-promises2-")


def check_placement(mv, values):
    """Every key of `values` on its owner in the new ring with its value, and on no other shard."""
    for key, value in values.items():
        owner = mv.new_owner(key)
        for s in (mv.a, mv.b, mv.c):
            r = http(s.port, "GET", key_path(key), timeout=60)
            if s is owner:
                check(r.status == 200 and r.body == value,
                      f"{key} on its owner {name(s)}: {r.status}, {len(r.body)} bytes, want {len(value)}: "
                      f"{r.body[:60]!r} / {value[:60]!r}")
            else:
                check(r.status == 404, f"{key} also on {name(s)} (owner {name(owner)}): {r!r}")


def test_during_a_move_nginx_s_own_413_is_problem_json_and_a_shard_s_own_413_passes_as_written():
    # Shards with a 1 KiB value limit under nginx's 64m: a 2 KiB PUT is the shard's 413 (its own
    # limit in the body), a declared 65 MiB one is nginx's (client_max_body_size), and the
    # move's read-through, mirror and 502 still work behind the redirect that separates them.
    mv = Move(SERVERS, WORKDIR, "too-large", extra_args=["--max-value-bytes", "1K"])
    port = mv.start_resharding_nginx(PROXIES)
    with Conn(port) as c:
        c.send(build_request("PUT", key_path("huge"), None, [("Content-Length", str(65 << 20))]))
        r = c.read_response()
    check(r.status == 413 and r.header("Content-Type") == "application/problem+json"
          and r.json().get("limit") == 64 << 20, f"nginx's own 413 during a move: {r!r}")
    r = http(port, "PUT", key_path("mid"), b"x" * 2048)
    check(r.status == 413 and r.header("Content-Type") == "application/problem+json"
          and r.json().get("limit") == 1024, f"a shard's own 413 (its 1 KiB limit) during a move: {r!r}")
    check(http(port, "PUT", key_path("small"), b"v").status == 201, "a PUT within both limits")
    old_only = mv.moving([f"t{i}" for i in range(400)], 1)[0]
    check(http(mv.old_owner(old_only).port, "PUT", key_path(old_only), b"old").status == 201, "PUT on the old owner")
    r = http(port, "GET", key_path(old_only))
    check(r.status == 200 and r.body == b"old", f"read-through to the old owner: {r!r}")
    check(http(port, "DELETE", key_path(old_only)).status in (204, 404), "DELETE of a key only the old owner holds")
    wait_for(lambda: http(mv.old_owner(old_only).port, "GET", key_path(old_only)).status == 404, 10,
             "the DELETE to reach the old owner")
    mv.c.stop()
    on_c = next(k for k in (f"u{i}" for i in range(400)) if mv.new_owner(k) is mv.c)
    r = http(port, "GET", key_path(on_c))
    check(r.status == 502 and r.header("Content-Type") == "application/problem+json", f"a stopped shard's key: {r!r}")


def test_conditional_writes_during_a_move_are_decided_by_the_new_owner_and_finish_keeps_them():
    mv = Move(SERVERS, WORKDIR, "conditional")
    keys = mv.moving((f"cw/{i}" for i in range(5000)), 7)
    copied, uncopied = keys[:5], keys[5:7]
    values = {k: b"original " + k.encode() for k in copied}
    for key in copied:
        check(http(mv.old_owner(key).port, "PUT", key_path(key), values[key]).status == 201, f"PUT {key}")
    p = reshard("copy", *mv.lists)
    check(p.returncode == 0, f"copy: {p.returncode} {p.stdout} {p.stderr}")
    # Created on their old owners after `copy` passed: only the old owner holds them.
    for key in uncopied:
        values[key] = b"original " + key.encode()
        check(http(mv.old_owner(key).port, "PUT", key_path(key), values[key]).status == 201, f"PUT {key}")
    port = mv.start_resharding_nginx(PROXIES)

    def etag(s, key):
        return http(s.port, "GET", key_path(key)).header("ETag")

    def put(key, value, header, want):
        r = http(port, "PUT", key_path(key), value, [header], timeout=60)
        check(r.status == want, f"PUT {key} with {header[0]}: {header[1]} through nginx: {r!r}, want {want}")
        if want in (201, 204):
            values[key] = value

    create_only, stale_if_match = uncopied
    put(create_only, b"client's create-only write", ("If-None-Match", "*"), 201)
    put(stale_if_match, b"never stored", ("If-Match", etag(mv.old_owner(stale_if_match), stale_if_match)), 412)
    replaced, rewritten_too, created_twice, wrong_etag, untouched = copied
    put(replaced, b"client's If-Match write", ("If-Match", etag(mv.c, replaced)), 204)
    values[rewritten_too] = b"rewritten on the old owner"
    check(http(mv.old_owner(rewritten_too).port, "PUT", key_path(rewritten_too), values[rewritten_too]).status
          == 204, f"rewrite of {rewritten_too} on its old owner")
    put(rewritten_too, b"client's If-Match write over the copy", ("If-Match", etag(mv.c, rewritten_too)), 204)
    put(created_twice, b"never stored", ("If-None-Match", "*"), 412)
    original_etag = etag(mv.old_owner(wrong_etag), wrong_etag)
    if original_etag != etag(mv.c, wrong_etag):  # the two shards number their writes apart
        put(wrong_etag, b"never stored", ("If-Match", original_etag), 412)
    for key in keys:  # what a client reads through nginx now
        r = http(port, "GET", key_path(key))
        check(r.status == 200 and r.body == values[key],
              f"GET {key} through nginx before finish: {r!r}, want {values[key]!r}")

    p = reshard("finish", *mv.lists)
    check(p.returncode == 0, f"finish: {p.returncode} {p.stdout} {p.stderr}")
    check_placement(mv, values)
    p = reshard("check", "--shards", ",".join(mv.new))
    check(p.returncode == 0, f"check after the move: {p.stdout} {p.stderr}")


def interrupted_finish_run_again(tag, size, stop):
    """2 -> 3 shards, four keys moving (values of `size` bytes and more) and two staying; after
    `copy` the last two moving keys in finish's order are written again on their old owners.
    `finish` runs with the new shard's writer stopped: it deletes the first two originals, then
    waits on its upload of the third; `stop` (a signal) interrupts it there. The writer goes on,
    `finish` runs again: every value on its owner only, byte for byte, no journal left."""
    # The new shard: queued writes wait for its stopped writer as long as need be; an upload cut
    # short while its worker does not read is dropped 2 s after its last byte, not 60 s.
    mv = Move(SERVERS, WORKDIR, tag,
              extra_args=["--storage-timeout-ms", "600000", "--compression-level", "0", "--body-timeout-ms", "2000"])
    candidates = [f"{tag}/{i}" for i in range(5000)]
    moving = mv.moving(candidates, 4)
    staying = [k for k in candidates if not mv.moves(k)][:2]
    values = {k: os.urandom(size + 4096 * i) for i, k in enumerate(moving + staying)}
    for key, value in values.items():
        check(http(mv.old_owner(key).port, "PUT", key_path(key), value, timeout=120).status == 201, f"PUT {key}")
    p = reshard("copy", *mv.lists)
    check(p.returncode == 0, f"copy: {p.returncode} {p.stdout} {p.stderr}")
    # finish takes the leaving keys shard by shard (old list first), in byte order: it deletes
    # the originals of the first two (unchanged since copy), then copies the last two again,
    # written again on their old owners (uploads to c).
    order = sorted(moving, key=lambda k: (mv.old.index(name(mv.old_owner(k))), key_path(k)))
    unchanged, rewritten = order[:2], order[2:]
    for key in rewritten:
        values[key] = os.urandom(size + 12345)
        check(http(mv.old_owner(key).port, "PUT", key_path(key), values[key], timeout=120).status == 204,
              f"rewrite of {key}")
    aborted = metric(mv.c.port, "kingx_writer_large_aborted_total")
    writer = mv.c.wait_children("kingx-writer", 1)[0]
    os.kill(writer, signal.SIGSTOP)
    try:
        run = reshard("finish", *mv.lists, wait=False)
        try:
            wait_for(lambda: metric(mv.c.port, "kingx_write_queue_bytes") > 0 or run.poll() is not None, 120,
                     "finish to upload a value again to the new shard")
            check(run.poll() is None, f"finish ended before it uploaded a value: exit {run.returncode}")
            run.send_signal(stop)
            run.communicate(timeout=120)
            check(run.returncode != 0, f"finish interrupted by signal {stop}: exit {run.returncode}")
        finally:
            run.kill()
            run.communicate(timeout=60)
    finally:
        os.kill(writer, signal.SIGCONT)
    for key in unchanged:
        check(http(mv.old_owner(key).port, "GET", key_path(key)).status == 404,
              f"the original of {key}, deleted by the interrupted run before the upload")
    # The interrupted run never learnt the upload's outcome: the new shard either
    # applied it (its body had reached the kernel's buffers) or dropped it
    # (cut short). Either way, nothing of it is left in flight.
    wait_for(lambda: metric(mv.c.port, "kingx_write_queue_bytes") == 0 and
             metric(mv.c.port, "kingx_writer_staged_bytes") == 0 and not staging_files(mv.c.data_dir), 120,
             "the new shard to apply or drop the upload the interrupted run left")
    check(metric(mv.c.port, "kingx_writer_large_aborted_total") in (aborted, aborted + 1),
          "kingx_writer_large_aborted_total after one upload cut short at most")
    p = reshard("finish", *mv.lists)
    check(p.returncode == 0, f"finish run again: {p.returncode} {p.stdout} {p.stderr}")
    check_placement(mv, values)
    check(not os.path.exists(mv.state + ".journal"), "a completed finish removes the journal")


def test_values_over_1_mib_survive_a_finish_killed_while_it_copies_one_and_run_again():
    interrupted_finish_run_again("big", (1 << 20) + 1, signal.SIGKILL)


def test_a_finish_stopped_with_ctrl_c_while_it_waits_on_a_shard_is_run_again_losing_nothing():
    # README: "run the phase again after an interruption (an error such as a shard down,
    # Ctrl-C, kill -9, a power loss)". Ctrl-C is SIGINT: the tool's finally blocks run.
    interrupted_finish_run_again("int", 300, signal.SIGINT)


def test_finish_syncs_its_journal_naming_each_original_before_it_deletes_it():
    # README: "`finish` syncs there the keys whose originals it is about to delete (256 at a
    # time) before deleting them" (so that a power loss of the machine running the tool cannot
    # lose a copy that became a key's only value). The tool runs in this process, its
    # fdatasyncs and requests observed: each DELETE of an original must come after an fsync of
    # a journal that names the key. Chunks of 8 instead of 256, so that several go by.
    mv = Move(SERVERS, WORKDIR, "journal")
    # Where a key goes depends on the shards' names, which carry ephemeral ports: 60 fixed
    # keys left 16 or fewer to move for about one port triple in seven. Chosen by where they
    # go instead: 24 move (three chunks of 8), 36 stay.
    candidates = [f"jn/{i:03d}" for i in range(1000)]
    chosen = mv.moving(candidates, 24) + [k for k in candidates if not mv.moves(k)][:36]
    values = {key: b"value " + key.encode() for key in chosen}
    for key, value in values.items():
        check(http(mv.old_owner(key).port, "PUT", key_path(key), value).status == 201, f"PUT {key}")
    moving = {key_path(k)[len("/v1/kv/"):] for k in values if mv.moves(k)}
    check(len(moving) > 16, f"{len(moving)} keys move")
    p = reshard("copy", *mv.lists)
    check(p.returncode == 0, f"copy: {p.returncode} {p.stdout} {p.stderr}")
    check(mv.kr.Mover.FINISH_CHUNK == 256, f"the tool announces {mv.kr.Mover.FINISH_CHUNK} originals per fsync")

    synced, syncs, deletes = set(), [], []
    real_fsync, real_request = os.fsync, mv.kr.Shard.request

    def fsync(fd):
        real_fsync(fd)
        with open(mv.state + ".journal") as f:
            named = {e["key"] for e in map(json.loads, f.read().splitlines()) if e.get("op") == "finishing"}
        syncs.append(len(named - synced))
        synced.update(named)

    def request(shard, method, path, body=None, headers=None):
        spelling = path[len("/v1/kv/"):]
        if method == "DELETE" and shard.name in mv.old and spelling in moving:
            deletes.append((spelling, spelling in synced))
        return real_request(shard, method, path, body, headers)

    m = mv.kr.Mover(",".join(mv.old), ",".join(mv.new), mv.state, 1000)
    m.FINISH_CHUNK = 8
    os.fsync, mv.kr.Shard.request = fsync, request
    try:
        m.finish()
    finally:
        os.fsync, mv.kr.Shard.request = real_fsync, real_request
        m.close()
    check(sorted(k for k, _ in deletes) == sorted(moving), f"originals deleted: {len(deletes)} of {len(moving)}")
    unsynced = [k for k, was in deletes if not was]
    check(not unsynced, f"originals deleted before an fsync of the journal named them: {unsynced}")
    check(syncs and max(syncs) <= 8 and len(syncs) >= len(moving) // 8,
          f"keys newly named per fsync: {syncs} (chunks of 8 for {len(moving)} originals)")
    check_placement(mv, values)


def responses_503(s):
    """503s the shard answered so far (kingx_http_responses_by_code_total{code="503"})."""
    body = http(s.port, "GET", "/metrics", timeout=60).body.decode()
    m = re.search(r'^kingx_http_responses_by_code_total\{code="503"\} (\S+)$', body, re.M)
    return float(m.group(1)) if m else 0.0


def restart_with_a_new_view(s, flag=None):
    """kill -9 of the shard, its keys/ removed, started again on its port: the key view is
    rebuilt (its old cursors refused). With `flag`, the rebuilt view stays unpublished (listing
    503) while that file exists."""
    s.kill_group()
    shutil.rmtree(os.path.join(s.data_dir, "keys"), ignore_errors=True)
    if flag is None:
        s.start()
    else:
        open(flag, "w").close()
        with fail_point_while("kingx-writer/rename@keys/MANIFEST:1+", flag):
            s.start()


def test_the_tool_waits_for_a_shard_s_view_and_lists_past_a_cursor_refused_after_a_rebuild():
    mv = Move(SERVERS, WORKDIR, "view")
    values = {f"vw/{i:03d}": b"value %d" % i for i in range(80)}
    for key, value in values.items():
        check(http(mv.old_owner(key).port, "PUT", key_path(key), value).status == 201, f"PUT {key}")
    on_a = sorted(key_path(k)[len("/v1/kv/"):] for k in values if mv.old_owner(k) is mv.a)
    check(len(on_a) > 12, f"{len(on_a)} keys on the first shard")

    # A cursor handed out before the shard's view was rebuilt (a restart without keys/) is
    # refused; the listing goes on after the last key it yielded (the tool's own lister).
    lister = mv.kr.Shard(name(mv.a))
    pages = lister.keys(page=5)
    first = [next(pages) for _ in range(5)]
    lister.close()
    restart_with_a_new_view(mv.a)
    rest = list(pages)
    check(first + rest == on_a, f"the tool's listing across the rebuild: {len(first)} + {len(rest)} keys, "
          f"{len(on_a)} on the shard; repeated {sorted(set(first) & set(rest))[:5]}, "
          f"missing {sorted(set(on_a) - set(first) - set(rest))[:5]}")

    # `copy` meets the first shard's view being rebuilt (listing 503): it waits, and copies
    # everything once the view is back.
    flag = os.path.join(WORKDIR, "view-held")
    restart_with_a_new_view(mv.a, flag)
    before = responses_503(mv.a)
    run = reshard("copy", *mv.lists, "--page", "7", wait=False)
    try:
        wait_for(lambda: responses_503(mv.a) > before or run.poll() is not None, 120,
                 "copy to ask the first shard for a listing while its view is rebuilt")
        check(run.poll() is None, f"copy ended while the view was unavailable: exit {run.returncode}")
    finally:
        os.unlink(flag)
    out, err = run.communicate(timeout=300)
    check(run.returncode == 0, f"copy once the view was back: exit {run.returncode}, {out} {err}")
    p = reshard("finish", *mv.lists, "--page", "7")
    check(p.returncode == 0, f"finish: {p.returncode} {p.stdout} {p.stderr}")
    check_placement(mv, values)


def main():
    return run_deploy_cases("deploy promises (part 2)", cases_of(globals()), SERVERS, PROXIES, WORKDIR)


if __name__ == "__main__":
    sys.exit(main())
