"""Promises of README.md that no other test held the real binary to (the
sixth part; test_promises.py to test_promises5.py have the others), each
checked where a client or an operator sees it, with no timing threshold:

  - a reload (HUP) with a configuration file the JSON parser itself cannot
    take, a number beyond a double's range included, is logged and the old
    configuration keeps serving (the master stays, its workers too); so does
    one naming an access log that cannot be opened (kingx -t rejects it): the
    old workers stay and go on writing the old access log.
  - deploy/kingx-reshard: "both phases are idempotent: run the phase again
    after an interruption (kill -9 ...)", "no acknowledged write is lost". A
    `copy` interrupted right after a copy's PUT was answered, before its
    journal line (what a kill -9 there leaves), then the original written
    again by a client (the proxy still routes by the old ring), then `copy`
    and `finish` run to the end: the new owner holds the client's write, the
    old shard nothing. And the same copy whose original a client deleted
    before the switch is removed by `finish` (no deleted key comes back).
    Also without an interruption: `copy` run to the end twice with a client's
    write of a copied key between (a phase run again after an error), then
    `finish`: the new owner holds that write. And "a copy never overwrites a
    newer write": a value on the new owner the tool did not write stays.

Every server a case starts is stopped by PID when the case ends, and
SIGTERM (meson's timeout) exits through that cleanup.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_promises6.py
"""

import importlib.machinery
import importlib.util
import json
import os
import signal
import io
import subprocess
import sys
import tarfile

from kingx_harness import (Server, ServerPerCase, cases_of, check, free_port, http, key_path, log_since, replace_file,
                           restore_cut_archive, run_with_servers, wait_for)

SERVERS = ServerPerCase()
RESHARD = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                       "deploy", "kingx-reshard")
SHARDS = []  # the resharding case's own servers, stopped by PID when it ends
WAIT_S = 120  # generous: CI runs sanitizer trees beside this one


def server_with_config(doc, *args):
    """A server started on a configuration file in its own work directory
    (the previous case's server stopped first)."""
    if SERVERS.server is not None:
        SERVERS.server.cleanup()
    s = SERVERS.server = Server(list(args))
    config = os.path.join(s.workdir, "kingx.json")
    replace_file(config, json.dumps(doc))
    s.extra += ["--config", config]
    s.start()
    return s


def test_a_reload_with_a_number_beyond_a_double_keeps_the_old_configuration_serving():
    s = server_with_config({"workers": 1, "max_value_bytes": 4096})
    config = s.extra[-1]
    check(http(s.port, "PUT", key_path("k"), b"v" * 5000).status == 413, "max_value_bytes 4096 from the file")
    workers = set(s.workers())
    for setting, literal in (("compaction_dead_ratio", "1e400"), ("workers", "-1e999")):
        before = os.path.getsize(s.error_log) if os.path.exists(s.error_log) else 0
        replace_file(config, '{"workers": 1, "max_value_bytes": 4096, "%s": %s}' % (setting, literal))
        s.signal(signal.SIGHUP)
        wait_for(lambda: "reload failed" in log_since(s, before) or not s.alive(), WAIT_S,
                 f"the error log to report the rejected configuration ({setting}: {literal})")
        check(s.alive(), f"the master ended on a HUP with {setting}: {literal} in the file "
                         f"(exit {s.proc.returncode}):\n{log_since(s, before)[-2000:]}")
        tail = log_since(s, before)
        check(setting in tail, f"the error log does not name {setting}: {tail[-1500:]!r}")
        check(set(s.workers()) == workers, f"workers replaced by a rejected reload: {workers} -> {s.workers()}")
        r = http(s.port, "PUT", key_path("k"), b"v" * 5000)
        check(r.status == 413, f"the old max_value_bytes (4096) must stay in force: PUT of 5000 B gave {r.status}")
        check(http(s.port, "PUT", key_path("k"), b"small").status in (201, 204), "a small PUT is served")
    s.cleanup()
    SERVERS.server = None


def current_server():
    """The server whose logs a failed case prints (and which run_cases then stops)."""
    return SHARDS[0] if SHARDS else SERVERS.current()


def test_a_reload_naming_an_access_log_that_cannot_be_opened_keeps_the_old_configuration():
    # Every setting from the file (flags would win over it): the harness's own flags are left out.
    if SERVERS.server is not None:
        SERVERS.server.cleanup()
    s = SERVERS.server = Server(raw_args=True, port=free_port())
    config = os.path.join(s.workdir, "kingx.json")
    log = os.path.join(s.workdir, "access.log")
    doc = {"listen": [f"127.0.0.1:{s.port}"], "data": s.data_dir, "error_log": s.error_log, "pid": "none",
           "workers": 1, "access_log": log}
    replace_file(config, json.dumps(doc))
    s.extra = ["--config", config]
    s.start()
    workers = set(s.workers())
    before = os.path.getsize(s.error_log) if os.path.exists(s.error_log) else 0
    bad = os.path.join(s.workdir, "no-such-dir", "access.log")
    replace_file(config, json.dumps(dict(doc, access_log=bad)))
    s.signal(signal.SIGHUP)
    wait_for(lambda: "reload failed" in log_since(s, before) or "reload done" in log_since(s, before), WAIT_S,
             "the master to take the reload")
    check("reload failed" in log_since(s, before) and "access log" in log_since(s, before),
          f"a reload naming an access log that cannot be opened ({bad}) was applied:\n{log_since(s, before)[-1500:]}")
    check(s.alive() and set(s.workers()) == workers, f"workers replaced: {workers} -> {s.workers()}")
    tag = "after-the-rejected-reload"
    check(http(s.port, "GET", key_path(tag)).status == 404, "a GET after the reload")

    def logged():
        try:
            with open(log, errors="replace") as f:
                return tag in f.read()
        except FileNotFoundError:
            return False
    wait_for(logged, WAIT_S, f"the GET after the rejected reload in the old access log {log}")
    s.cleanup()
    SERVERS.server = None


class Killed(BaseException):
    """Stands for a SIGKILL of the tool at the moment it is raised: nothing after it runs."""


def load_reshard():
    loader = importlib.machinery.SourceFileLoader("kingx_reshard", RESHARD)
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("kingx_reshard", loader))
    loader.exec_module(module)
    return module


def reshard(*args):
    r = subprocess.run([sys.executable, RESHARD] + list(args), capture_output=True, text=True, timeout=600)
    check(r.returncode == 0, f"kingx-reshard {args[0]}: exit {r.returncode}: {r.stdout}{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def two_shards():
    """Shard a (the old ring) and c (the new ring is a, c): one-worker servers, the previous
    case's stopped first."""
    for s in SHARDS:
        s.cleanup()
    SHARDS.clear()
    for _ in range(2):
        SHARDS.append(Server(["--workers", "1"]).start())
    return SHARDS


def test_a_copy_interrupted_before_its_journal_line_loses_no_write_made_before_the_rerun():
    kr = load_reshard()
    a, c = two_shards()
    old, new = [f"127.0.0.1:{a.port}"], [f"127.0.0.1:{a.port}", f"127.0.0.1:{c.port}"]
    ring = kr.Ring(new)
    moving = [f"key-{i}" for i in range(400) if ring.owner(f"key-{i}") == new[1]][:2]
    check(len(moving) == 2, "two of 400 keys move to the new shard")
    written, deleted = moving
    for key in moving:
        check(http(a.port, "PUT", key_path(key), b"original " + key.encode()).status == 201, f"PUT {key}")
    state = os.path.join(a.workdir, "reshard.json")
    lists = ["--old", ",".join(old), "--new", ",".join(new), "--state", state]

    # Two copy runs, each stopped as a kill -9 would stop it right after a copy's PUT was
    # answered 201, before that copy's journal line: the copies exist, nothing records them.
    def interrupted_copy():
        mover = kr.Mover(",".join(old), ",".join(new), state, 1000)
        journal = mover.log
        made = []

        def log(entry):
            if entry.get("op") == "copied" and entry.get("etag_old") and entry.get("etag_new"):  # a PUT's 201
                made.append(entry["key"])
                raise Killed()
            journal(entry)
        mover.log = log
        try:
            mover.copy()
        except Killed:
            pass
        if mover.journal is not None:
            mover.journal.close()  # what the kernel does for a killed process
        return made
    copies = interrupted_copy() + interrupted_copy()
    # The tool copies in its listing's order (by key), not in the order the keys were picked.
    check(sorted(copies) == sorted(moving), f"the two interrupted runs copied {copies} (want {moving}, one each)")
    for key in moving:
        check(http(c.port, "GET", key_path(key)).status == 200, f"{key} was copied to the new shard")

    # Clients, the proxy still on the old ring: one key written again, one deleted (acknowledged).
    r = http(a.port, "PUT", key_path(written), b"rewritten by a client")
    check(r.status == 204, f"the client's overwrite of {written}: {r.status}")
    check(http(a.port, "DELETE", key_path(deleted)).status == 204, f"the client's DELETE of {deleted}")

    reshard("copy", *lists)
    reshard("finish", *lists)
    r = http(c.port, "GET", key_path(written))
    check(r.status == 200 and r.body == b"rewritten by a client",
          f"{written} on its new owner after copy (run again) and finish: {r.status} {r.body[:40]!r}, "
          f"want the client's acknowledged overwrite b'rewritten by a client' (the stale copy kept)")
    check(http(a.port, "GET", key_path(written)).status == 404, f"{written} left on the old shard")
    r = http(c.port, "GET", key_path(deleted))
    check(r.status == 404, f"{deleted}, deleted by a client before the switch, is back on its new owner: "
                           f"{r.status} {r.body[:40]!r}")


def one_key_moving_to_a_new_shard():
    """Two shards, the ring growing from the first to both, a key the new ring gives to the second, and
    kingx-reshard's --old/--new/--state arguments for them: (old shard, new shard, key, arguments)."""
    kr = load_reshard()
    a, c = two_shards()
    old, new = [f"127.0.0.1:{a.port}"], [f"127.0.0.1:{a.port}", f"127.0.0.1:{c.port}"]
    ring = kr.Ring(new)
    key = next(f"key-{i}" for i in range(400) if ring.owner(f"key-{i}") == new[1])
    return a, c, key, ["--old", ",".join(old), "--new", ",".join(new), "--state",
                       os.path.join(a.workdir, "reshard.json")]


def test_copy_run_again_after_a_client_wrote_a_copied_key_keeps_that_write():
    a, c, key, lists = one_key_moving_to_a_new_shard()
    check(http(a.port, "PUT", key_path(key), b"original").status == 201, f"PUT {key}")
    check(reshard("copy", *lists)["copied"] == 1, f"{key} copied")
    check(http(a.port, "PUT", key_path(key), b"rewritten by a client").status == 204, "the client's overwrite")
    reshard("copy", *lists)
    reshard("finish", *lists)
    r = http(c.port, "GET", key_path(key))
    check(r.status == 200 and r.body == b"rewritten by a client",
          f"{key} on its new owner after copy, a client's overwrite, copy again and finish: {r.status} "
          f"{r.body[:40]!r}, want the acknowledged overwrite b'rewritten by a client'")
    check(http(a.port, "GET", key_path(key)).status == 404, f"{key} left on the old shard")


def test_a_value_on_the_new_owner_the_tool_did_not_write_is_never_overwritten():
    a, c, key, lists = one_key_moving_to_a_new_shard()
    check(http(a.port, "PUT", key_path(key), b"original").status == 201, f"PUT {key} on the old owner")
    check(http(c.port, "PUT", key_path(key), b"written on the new owner").status == 201, f"PUT {key} on the new one")
    reshard("copy", *lists)
    reshard("copy", *lists)
    reshard("finish", *lists)
    r = http(c.port, "GET", key_path(key))
    check(r.status == 200 and r.body == b"written on the new owner",
          f"{key} on its new owner after copy (twice) and finish: {r.status} {r.body[:40]!r}, want the value "
          f"written there, which no copy may overwrite")
    check(http(a.port, "GET", key_path(key)).status == 404, f"{key} left on the old shard")


def test_a_backup_archive_cut_inside_its_active_segment_is_damage_verify_reports():
    """README Backup: restore is tar -xf then kingx-tool verify ("exit 0"); Storage engine: a
    segment cut short is damage (counted, verify exit 2, the damaged key 500, never an older
    value); the limits named there are a crash's cut of the active segment and a segment removed
    with its hint. An archive cut short inside its last member (the active segment of the cut,
    shipped without a hint) is neither."""
    tool = os.environ.get("KINGX_TOOL_BIN", "")
    check(tool and os.access(tool, os.X_OK), "KINGX_TOOL_BIN names kingx-tool")
    s = SERVERS.start(admin=True)
    acked = {}
    for round_ in range(3):  # the newest value of every key is in the active segment's last records
        for i in range(40):
            key = f"k{i:02d}"
            value = f"{key} round {round_} ".encode() * 20
            r = http(s.port, "PUT", key_path(key), value)
            check(r.status in (201, 204), f"PUT {key}: {r.status}")
            acked[key] = (value, r.header("ETag"))
    r = http(s.admin_port, "GET", "/admin/backup", timeout=120)
    check(r.status == 200, f"GET /admin/backup: {r.status}")
    archive = r.body
    members = tarfile.open(fileobj=io.BytesIO(archive)).getmembers()
    last = members[-1]
    check(last.name.endswith(".kxd"), f"the archive's last member is a segment: {[m.name for m in members]}")
    cut = last.offset_data + last.size - 200  # about the last record of the active segment
    # The copy's server is stopped by PID with the case's other servers (SHARDS).
    v, wrong = restore_cut_archive(tool, archive, cut, os.path.join(s.workdir, "restored"), acked, SHARDS)
    check(v.returncode == 2 and not wrong,
          f"an archive cut 200 bytes before the end of its active segment ({last.name}): kingx-tool verify "
          f"exit {v.returncode} (want 2: a segment cut short) {v.stdout.strip()[-200:]!r}; keys served older "
          f"than acknowledged or absent (want 500 or the acked value): {wrong}")


if __name__ == "__main__":
    try:
        run_with_servers("promises6", cases_of(globals()), current_server)
    finally:
        for shard in SHARDS:
            shard.cleanup()
        if SERVERS.server is not None:  # current_server() names SHARDS[0] once a case filled SHARDS
            SERVERS.server.cleanup()
