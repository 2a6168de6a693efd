#!/usr/bin/env python3
"""A randomized crash-and-fault soak of the real kingx, from outside, with an
acknowledged-write oracle (research/reliability.md §4.2: RocksDB's crash test
and its expected state; §1 ALICE: the states scripted cases never reach).

One data directory (on a tmpfs of --disk bytes this script mounts, or with
--fs ext4 an ext4 on a loop device, so that a full disk can be made; a plain
directory under /tmp when it cannot mount) is kept across rounds. Each round:

  1. load: CLIENTS threads, each owning its keys, doing PUT / GET / DELETE,
     conditional PUTs (If-Match with the acknowledged ETag, with a stale one,
     If-None-Match: *), chunked PUTs and PUTs cut off inside their body
     (never to be stored), with values on both sides of every size threshold
     (compression 256 B, the 1 KiB send path, a 64 KiB zstd frame, one
     write-queue entry = an eighth of --write-queue-bytes, the large-value
     part, 1 MiB, the segment size; see value_sizes); a lister paging
     through the keys with small limits, resuming its cursor across restarts;
     a reader of keys written once at the start (availability); and a plan
     of SIGHUP reloads (each changing a setting the writer uses: --sync
     always / interval / none, --sync-depth, the dead ratio, so the writer
     restarts), SIGUSR1 and POST /admin/compact at random moments;
  2. one fault at a random moment: kill -9 of the whole process group, of the
     master (its children get SIGTERM), of the writer, of a worker; SIGTERM;
     or a full disk (a filler file leaves less than the reserve, sometimes
     nothing at all), freed after a while, or a kill -9 on it; with
     --fail-point (a binary built with kill points), a fault of the file
     seam (a failing fdatasync, a mapping that fails) armed for a while;
  3. the checks: every key holds its last acknowledged value or one whose
     answer was lost, never a value another key or nobody sent, no deleted
     key comes back; a value read carries the ETag it was acknowledged with;
     ETags acknowledged in a round are above every one before it; a
     precondition that must hold holds and one that must fail fails; the
     listing is exactly the live keys with their ETags and sizes; while the
     server is down, `kingx-tool verify` is clean and `kingx-tool list`
     equals what the restarted server lists; GETs of the stable keys are
     200 with their bytes through writer kills, reloads and the full disk
     (a worker kill may cut the reader's connection, never give it a 5xx);
     writes are accepted again after every fault; no request goes
     unanswered for the clients' 15 s.

Everything the script decides comes from --seed (printed first): the round
plans, the faults and their moments, the clients' keys, ops and sizes. The
server's timing is not replayed, so a seed reproduces the load and the faults,
not the exact interleaving. Every step is printed with its time.

    bench/chaos_soak.py [--bin build-release/src/kingx] [--tool build-release/engine/tool/kingx-tool]
        [--seconds 600] [--rounds N] [--seed S] [--disk 256m] [--fs tmpfs|ext4] [--workers 2] [--model event]
        [--faults KIND,...] [--fail-point SPEC] [--keep]

Exit status: 0 no violation, 1 violations (the data directory is kept and named).
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "blackbox"))
from kingx_harness import (ABSENT, Conn, ConnectionClosed, Server, TestFailure, http, key_path,  # noqa: E402
                           make_value)
from kingx_load import ClientState, LoadClient, verify_states  # noqa: E402
from test_crash_cycles import SEGMENT_BYTES, WRITE_QUEUE_BYTES, value_sizes  # noqa: E402
from test_listing import decode_key, list_all  # noqa: E402
from chaos_probes import T0, Agent, Disk, Lister, StableReader, log  # noqa: E402

CLIENTS = 4
KEYS_PER_CLIENT = 10
LONG_KEY_BYTES = 3000
PREFIX = b"chaos-"
# Thresholds value_sizes leaves out: compression (both sides), a value sent
# from its segment rather than copied (over 1 KiB), one zstd frame (64 KiB).
EXTRA_SIZES = {255, 256, 257, 1023, 1024, 1025, 65535, 65536, 65537}
STABLE_SIZES = [100, 300, 1025, 70000, (1 << 20) + 1]
FAULTS = {"kill9_all": 3, "kill9_all_twice": 1, "kill9_master": 2, "kill9_writer": 3, "kill9_writer_twice": 1,
          "kill9_worker": 2, "term": 1, "stop_writer": 1, "disk_full": 2, "disk_full_kill9": 1, "seam": 2}
DOWN, UP, RESTARTED = "down", "up", "restarted"  # the server after a fault
STORAGE_TIMEOUT_MS = 2000
RELOADS = [("sync", ["always", "interval:20", "none"]), ("sync_depth", [1, 2]),
           ("compaction_dead_ratio", [0.3, 0.5]), ("segment_bytes", [SEGMENT_BYTES, 4 * SEGMENT_BYTES]),
           ("workers", [1, 2, 3]), ("commit_delay_us", [0, 300])]


class Violations(list):
    def add(self, where, msg):
        msg = msg if len(msg) <= 800 else msg[:800] + f"... ({len(msg)} characters)"
        self.append(f"{where}: {msg}")
        if len(self) <= 40:
            log(f"VIOLATION {where}: {msg}")
        elif len(self) == 41:
            log("(more violations are counted, not printed)")


def client_keys(c):
    return ([PREFIX + b"%d-%d" % (c, i) for i in range(KEYS_PER_CLIENT - 2)]
            + [PREFIX + b"%d-bin-\xff\x00\x80" % c,  # not UTF-8: listed with key_encoding url
               (PREFIX + b"%d-long-" % c).ljust(LONG_KEY_BYTES, b"k")])


def make_chooser(keys):
    table = {k: sorted(set(value_sizes(len(k))) | EXTRA_SIZES) for k in keys}
    small = [0, 1, 100, 255, 256, 1024, 1025, 4000]

    def choose(rng, key):
        return rng.choice(small) if rng.random() < 0.4 else rng.choice(table[key])
    return choose, table


# ------------------------------------------------------------------ the soak

class Soak:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.workdir = tempfile.mkdtemp(prefix="chaos-", dir="/tmp")
        self.disk = Disk(self.workdir, args.disk, args.fs)
        self.config_path = os.path.join(self.workdir, "kingx.json")
        # What a reload may change lives in the file (flags would override it).
        self.config = {"sync": "always", "sync_depth": 1, "compaction_dead_ratio": 0.3,
                       "workers": args.workers, "segment_bytes": SEGMENT_BYTES}
        self.write_config({})
        os.environ["KINGX_BIN"] = os.path.abspath(args.bin)
        self.fault_flag = os.path.join(self.workdir, "fail-point-on")
        if args.fail_point:  # armed only while the flag file exists (engine/kill_point.h)
            os.environ["KINGX_FAIL_POINT"] = args.fail_point
            os.environ["KINGX_FAIL_POINT_WHILE"] = self.fault_flag
        self.server = Server(["--config", self.config_path, "--model", args.model,
                              "--write-queue-bytes", str(WRITE_QUEUE_BYTES), "--max-key-bytes", "4096",
                              "--storage-timeout-ms", str(STORAGE_TIMEOUT_MS)],
                             workdir=self.workdir, data_dir=self.disk.data, admin=True, ready_timeout=60)
        self.states = [ClientState(c, client_keys(c), args.seed * 100 + c) for c in range(CLIENTS)]
        self.choose, self.size_table = make_chooser([k for st in self.states for k in st.keys])
        self.stable = {}
        self.universe = {k for st in self.states for k in st.keys}
        self.list_state = {}
        self.violations = Violations()
        self.stats = {"rounds": 0, "faults": {}, "ops": {}, "acked_puts": 0, "acked_deletes": 0,
                      "refused_507": 0, "reads_stable": 0, "listing_pages": 0, "listing_passes": 0,
                      "hups": 0, "usr1s": 0, "compacts": 0, "tool_checks": 0, "restarts": 0,
                      "log_warn_error_lines": 0, "sizes_put": set()}
        self.log_offset = 0

    def write_config(self, changes):
        self.config.update(changes)
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.config, f)
        os.replace(tmp, self.config_path)

    # -- steps
    def start(self, why):
        t = time.monotonic()
        self.server.start()
        self.stats["restarts"] += 1
        log(f"  {why}: ready after {time.monotonic() - t:.2f} s (pid {self.server.pid})")

    def put_stable(self):
        rng = random.Random(self.args.seed)
        with Conn(self.server.port, timeout=30) as c:
            for i, size in enumerate(STABLE_SIZES):
                key = PREFIX + b"stable-%d" % i
                value = make_value(key, 99, i, rng, total=size)
                r = c.request("PUT", key_path(key), value)
                if r.status not in (201, 204):
                    raise TestFailure(f"PUT of stable key {key!r}: {r!r}")
                self.stable[key] = value
        self.universe |= set(self.stable)

    def live_keys(self):
        """key -> (value, ETag) of every live key, right after verify_states
        settled the oracle (nothing in flight)."""
        live = {}
        for st in self.states:
            for k in st.keys:
                v = st.oracle.acked.get(k)
                if v is not ABSENT:
                    e = st.etags.get(k)
                    live[k] = (v, e[1] if e and e[0] == v else None)
        for k, v in self.stable.items():
            live[k] = (v, None)
        return live

    def check_listing(self, where, tool_listing=None):
        """The whole listing equals the live keys, with their ETags and sizes
        (and equals what kingx-tool listed while the server was down)."""
        try:
            got = list_all(self.server.port, prefix=PREFIX, limit=self.rng.choice([None, 7, 1000]), busy_wait=60)
        except TestFailure as e:
            self.violations.add(where, f"listing: {e}")
            return
        live = self.live_keys()
        keys = [k for k, *_ in got]
        if keys != sorted(live):
            missing = sorted(set(live) - set(keys))[:5]
            extra = sorted(set(keys) - set(live))[:5]
            self.violations.add(where, f"listing is not the live keys: missing {missing}, extra {extra}, "
                                       f"{len(keys)} listed, {len(live)} live")
        for k, etag, size, _ctype in got:
            if k in live:
                v, e = live[k]
                if size != len(v):
                    self.violations.add(where, f"listing size of {k!r}: {size}, its value has {len(v)} bytes")
                if e is not None and etag != f'"{e}"':
                    self.violations.add(where, f"listing ETag of {k!r}: {etag}, acknowledged \"{e}\"")
        if tool_listing is not None:
            mine = [(k, etag, size) for k, etag, size, _ in got]
            if mine != tool_listing:
                diff = [x for x in mine if x not in tool_listing][:3] + [x for x in tool_listing if x not in mine][:3]
                self.violations.add(where, f"the server's listing after the restart differs from kingx-tool "
                                           f"list of the stopped directory: {diff}")
        log(f"  listing: {len(got)} keys, as the oracle says")

    def tool_check(self, where):
        """kingx-tool verify (clean) and list of the stopped directory."""
        tool = self.args.tool
        if not tool:
            return None
        p = subprocess.run([tool, "--data", self.disk.data, "verify"], capture_output=True, timeout=300)
        self.stats["tool_checks"] += 1
        if p.returncode != 0:
            self.violations.add(where, f"kingx-tool verify exit {p.returncode}: "
                                       f"{(p.stdout + p.stderr).decode(errors='replace')[-1500:]}")
        p = subprocess.run([tool, "--data", self.disk.data, "list", "--prefix", PREFIX.decode()],
                           capture_output=True, timeout=300)
        if p.returncode != 0:
            self.violations.add(where, f"kingx-tool list exit {p.returncode}: {p.stderr.decode(errors='replace')}")
            return None
        out = []
        for line in p.stdout.decode().splitlines():
            e = json.loads(line)
            out.append((decode_key(e, False), e["etag"], e["size"]))
        log(f"  kingx-tool: verify exit 0, list {len(out)} keys")
        return out

    def wait_group_gone(self, timeout):
        deadline = time.monotonic() + timeout
        while self.server.group_pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        return not self.server.group_pids()

    # -- a round
    def plan_round(self, r):
        rng = self.rng
        faults = [f for f in (self.args.faults or FAULTS)
                  if (not f.startswith("disk_full") or self.disk.mounted) and (f != "seam" or self.args.fail_point)]
        fault = rng.choices(faults, weights=[FAULTS[f] for f in faults])[0]
        load_s = rng.uniform(0.3, 3.0)
        plan = []
        for _ in range(rng.randint(0, 3)):
            action = rng.choice(["hup", "usr1", "compact", "compact"])
            arg = {}
            if action == "hup":
                name, choices = rng.choice(RELOADS)
                arg = {name: rng.choice(choices)}
            plan.append((round(rng.uniform(0, load_s), 3), action, arg))
        plan.sort(key=lambda x: x[0])
        detail = {}
        if fault.startswith("disk_full"):
            detail = {"leave": rng.choice([0, 64 << 10, 512 << 10]), "hold_s": round(rng.uniform(0.5, 2.5), 2)}
        elif fault == "kill9_worker":
            detail = {"which": rng.randrange(self.args.workers)}
        elif fault.endswith("_twice"):
            detail = {"again_after_s": round(rng.uniform(0, 0.3), 3)}
        elif fault == "seam":
            detail = {"hold_s": round(rng.uniform(0.2, 2.0), 2)}
        elif fault == "stop_writer":
            detail = {"stopped_s": round(rng.uniform(0.5, 2.0) * STORAGE_TIMEOUT_MS / 1000, 2)}
        return fault, round(load_s, 3), plan, detail

    def run_round(self, r):
        fault, load_s, plan, detail = self.plan_round(r)
        where = f"round {r} ({fault})"
        log(f"round {r}: fault {fault} {detail} after {load_s} s of load; plan {plan}; config {self.config}")
        self.stats["faults"][fault] = self.stats["faults"].get(fault, 0) + 1
        stop = threading.Event()
        floor = max(st.last_etag for st in self.states)
        port = self.server.port
        clients = [LoadClient(lambda: port, st, stop, mix=(36, 25, 12, 8, 5, 10, 6, 3), policy="reconnect",
                              value_size=self.choose, etag_floor=floor, deadline=time.monotonic() + 240)
                   for st in self.states]
        reader = StableReader(port, self.stable, stop)
        lister = Lister(port, PREFIX, self.universe, self.list_state, stop, random.Random(self.rng.random()))
        agent_stop = threading.Event()  # the plan ends before the fault begins
        agent = Agent(self, plan, agent_stop)
        for t in clients + [reader, lister, agent]:
            t.start()
        time.sleep(load_s)
        agent_stop.set()
        agent.join(60)
        t_fault = time.monotonic()
        acked_before = sum(len(c.acked_after) for c in clients)
        threads = clients + [reader, lister, agent]

        def halt():
            stop.set()
            agent_stop.set()
            for t in threads:
                t.join(60)
                if t.is_alive():
                    self.violations.add(where, f"{type(t).__name__} did not stop within 60 s")
            threads.clear()

        self.tool_listing = None
        after = self.apply_fault(fault, detail, where, halt)
        t_back = time.monotonic()
        if after == UP:
            # The server kept running: writes must be taken again, then stop the load.
            self.wait_writes_resume(clients, t_back, where)
            time.sleep(0.3)
        halt()
        ops = sum(c.ops_done for c in clients)
        for c in clients:
            for e in c.errors:
                self.violations.add(where, e)
            for k, n in c.ops_by_kind.items():
                self.stats["ops"][k] = self.stats["ops"].get(k, 0) + n
            self.stats["refused_507"] += c.refused
            self.stats["sizes_put"] |= c.sizes_put
        for e, (t, status) in zip(lister.errors, lister.failed_at + [(None, None)] * len(lister.errors)):
            if status == 500 and self.read_fault_window(fault, t, t_fault, t_back):
                continue  # a run or record the worker cannot map: 500 naming it, never a wrong page
            self.violations.add(where, e)
        for e in agent.errors:
            self.violations.add(where, e)
        self.stats["listing_pages"] += lister.pages
        self.stats["listing_passes"] += lister.passes
        for _t, action, _a in agent.done:
            self.stats[{"hup": "hups", "usr1": "usr1s", "compact": "compacts"}[action]] += 1
        self.stats["reads_stable"] += reader.ok
        self.check_availability(where, fault, reader, t_fault, t_back)
        failures = [f for c in clients for f in c.failures]
        for f in failures:
            if f.error.startswith("status 500") and not (
                    self.read_fault_window(fault, f.when, t_fault, t_back)
                    or (f.op == "PUT" and self.sync_fault_window(fault, f.when, t_fault, t_back))):
                self.violations.add(where, f"{f.op} {f.key!r} answered 500 at +{f.when - t_fault:.2f} s "
                                           f"from the fault, with no fault armed that explains it ({f.error})")
            if "timed out" in f.error:  # every fault ends, or is answered, within seconds
                self.violations.add(where, f"{f.op} {f.key!r} got no answer within 15 s "
                                           f"(+{f.when - t_fault:.2f} s from the fault): {f.error}")
            if f.error.startswith("status 507") and not fault.startswith("disk_full"):
                self.violations.add(where, f"{f.op} {f.key!r} answered 507 (disk full) with no full disk")
        log(f"  load: {ops} ops ({acked_before} writes acknowledged before the fault, "
            f"{sum(len(c.acked_after) for c in clients)} in all), {len(failures)} failed requests "
            f"({sum(c.refused for c in clients)} refused 507), {reader.ok} stable GETs 200, "
            f"{lister.pages} listing pages")
        if after == DOWN:
            self.tool_listing = self.tool_check(where)
            self.start(f"restart after {fault}")
        errs = verify_states(self.server.port, self.states)
        for e in errs:
            self.violations.add(where, f"after the fault: {e}")
        for k, v in self.stable.items():
            got = http(self.server.port, "GET", key_path(k), timeout=30)
            if got.status != 200 or got.body != v:
                self.violations.add(where, f"stable key {k!r}: {got!r}")
        log(f"  oracle: {sum(len(st.keys) for st in self.states)} keys checked, {len(errs)} violations")
        self.check_listing(where, self.tool_listing)
        self.log_lines()
        self.stats["rounds"] += 1

    def log_lines(self):
        """Prints the round's new warn and error lines of the server's log."""
        try:
            with open(self.server.error_log, "rb") as f:
                f.seek(self.log_offset)
                data = f.read()
        except OSError:
            return
        self.log_offset += len(data)
        lines = [ln for ln in data.decode("utf-8", "replace").splitlines() if "[warn]" in ln or "[error]" in ln]
        self.stats["log_warn_error_lines"] += len(lines)
        for ln in lines[:8]:
            log(f"  log: {ln[:300]}")
        if len(lines) > 8:
            log(f"  log: ({len(lines) - 8} more warn/error lines)")

    def wait_writes_resume(self, clients, since, where, limit=60.0):
        """True once some client had a write acknowledged after `since`."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if any(t > since for c in clients for t in c.acked_after):
                log(f"  writes acknowledged again {time.monotonic() - since:.2f} s after the fault ended")
                return True
            time.sleep(0.05)
        self.violations.add(where, f"no write acknowledged within {limit} s after the fault ended")
        return False

    def apply_fault(self, fault, detail, where, halt):
        """Applies the fault; returns DOWN (the server is stopped: checked
        with the tool, then restarted), UP (it kept running) or RESTARTED
        (the fault restarted it after halt() stopped the load; self.tool_listing
        holds the tool's listing of the stopped directory)."""
        s = self.server
        if fault in ("kill9_all", "kill9_all_twice"):
            s.kill_group()
            log("  fault: kill -9 of the process group")
            if fault == "kill9_all":
                return DOWN
            s.start(wait=False)  # killed again while it opens the database
            time.sleep(detail["again_after_s"])
            s.kill_group()
            log(f"  fault: restarted, kill -9 of the process group again after {detail['again_after_s']} s")
            return DOWN
        if fault == "kill9_master":
            os.kill(s.pid, signal.SIGKILL)
            s.proc.wait(30)
            gone = self.wait_group_gone(30)
            log(f"  fault: kill -9 of the master; its children {'left' if gone else 'STILL RUN after 30 s'}")
            if not gone:
                self.violations.add(where, f"children of a master killed with -9 still run after 30 s: "
                                           f"{s.group_pids()}")
                s.kill_group()
            return DOWN
        if fault == "term":
            s.signal(signal.SIGTERM)
            status = s.wait_exit(60)
            log(f"  fault: SIGTERM; exit status {status}")
            if status != 0:
                self.violations.add(where, f"SIGTERM: exit status {status}\n{s.new_logs()}")
            if not self.wait_group_gone(30):
                self.violations.add(where, f"processes left after SIGTERM: {s.group_pids()}")
                s.kill_group()
            return DOWN
        if fault in ("kill9_writer", "kill9_writer_twice", "kill9_worker"):
            comm = "kingx-worker" if fault == "kill9_worker" else "kingx-writer"
            for n in range(2 if fault.endswith("_twice") else 1):
                if n:
                    time.sleep(detail["again_after_s"])
                pids = [p for p, _ in s.children(comm)]
                if not pids:
                    self.violations.add(where, f"no {comm} to kill: {s.children()}")
                    return UP
                victim = pids[detail.get("which", 0) % len(pids)]
                os.kill(victim, signal.SIGKILL)
                log(f"  fault: kill -9 of {comm} {victim}")
                try:
                    s.wait_children(comm, 1 if comm == "kingx-writer" else self.config["workers"],
                                    exclude=(victim,), timeout=30)
                except TestFailure as e:
                    self.violations.add(where, f"{comm} not respawned: {e}")
            return UP
        if fault == "stop_writer":
            pids = [p for p, _ in s.children("kingx-writer")]
            os.kill(pids[0], signal.SIGSTOP)
            log(f"  fault: SIGSTOP of kingx-writer {pids[0]} for {detail['stopped_s']} s")
            time.sleep(detail["stopped_s"])
            os.kill(pids[0], signal.SIGCONT)
            return UP
        if fault == "seam":
            open(self.fault_flag, "w").close()
            log(f"  fault: {self.args.fail_point} armed for {detail['hold_s']} s")
            time.sleep(detail["hold_s"])
            self.log_readyz(where, "fail point armed")
            os.unlink(self.fault_flag)
            return UP
        if fault in ("disk_full", "disk_full_kill9"):
            n = self.disk.fill(detail["leave"])
            log(f"  fault: filler of {n} bytes, {self.disk.free()} bytes free")
            time.sleep(detail["hold_s"])
            self.log_readyz(where, "full disk")
            if fault == "disk_full_kill9":
                s.kill_group()
                log("  fault: kill -9 of the process group on the full disk")
                halt()
                self.tool_listing = self.tool_check(where)
                s.start(wait=False)
                self.wait_serving(where)
                self.log_readyz(where, "restarted on the full disk")
            self.disk.unfill()
            log(f"  filler removed, {self.disk.free()} bytes free")
            if fault == "disk_full_kill9":
                s.wait_ready(60)
                log("  ready again")
                return RESTARTED
            return UP
        raise ValueError(fault)

    def log_readyz(self, where, what):
        try:
            r = http(self.server.port, "GET", "/readyz", timeout=15)
            log(f"  {what}: /readyz {r.status} {r.body[:100]!r}")
        except (ConnectionClosed, OSError) as e:
            self.violations.add(where, f"/readyz ({what}): {e!r}")

    def wait_serving(self, where, timeout=60.0):
        """After a start on a full disk /readyz may stay 503: wait until every
        stable key reads back."""
        deadline = time.monotonic() + timeout
        t = time.monotonic()
        left = dict(self.stable)
        while left and time.monotonic() < deadline:
            k, v = next(iter(left.items()))
            try:
                r = http(self.server.port, "GET", key_path(k), timeout=5)
                if r.status == 200 and r.body == v:
                    del left[k]
                    continue
                if r.status == 200:
                    self.violations.add(where, f"stable key {k!r} read back wrong bytes after a start")
                    return
            except (ConnectionClosed, OSError):
                pass
            time.sleep(0.05)
        if left:
            self.violations.add(where, f"stable keys not served within {timeout} s of a start: {sorted(left)}")
        else:
            log(f"  serving reads {time.monotonic() - t:.2f} s after the start")

    def read_fault_window(self, fault, t, t_fault, t_back):
        """True if `t` falls while a read fault of the file seam was armed
        (and half a second after, for requests already under way)."""
        return (fault == "seam" and t is not None and t_fault <= t <= t_back + 0.5
                and any(p in self.args.fail_point for p in ("/map", "/read")))

    def sync_fault_window(self, fault, t, t_fault, t_back):
        """True if `t` falls while a failing fdatasync was armed (and half a
        second after): a large value whose staged file's fdatasync fails is
        answered 500, not stored (README)."""
        return (fault == "seam" and t is not None and t_fault <= t <= t_back + 0.5
                and "/sync" in self.args.fail_point)

    def check_availability(self, where, fault, reader, t_fault, t_back):
        """GETs of the stable keys: 200 with their bytes, except while the
        server is down (those faults stop the reader), and connection cuts
        when a worker is killed."""
        for t, what in reader.outcomes:
            if what == "retryable":
                continue
            if fault in ("kill9_all", "kill9_all_twice", "kill9_master", "term", "disk_full_kill9") and t >= t_fault:
                continue
            if fault == "kill9_worker" and what.startswith("cut") and t >= t_fault:
                continue
            if what.startswith("status 500") and self.read_fault_window(fault, t, t_fault, t_back):
                continue  # a segment the worker cannot map answers 500, never a wrong value
            self.violations.add(where, f"stable GET at +{t - t_fault:.2f} s from the fault: {what}")

    def run(self):
        args = self.args
        log(f"seed {args.seed}; binary {args.bin}; tool {args.tool}; data {self.disk.data} "
            f"({args.fs + ' ' + args.disk if self.disk.mounted else 'not mounted: ' + self.disk.why + '; no disk_full'})")
        deadline = time.monotonic() + args.seconds
        try:
            self.start("first start")
            self.put_stable()
            r = 0
            while time.monotonic() < deadline and (args.rounds is None or r < args.rounds):
                self.run_round(r)
                r += 1
                if self.violations:
                    break
            if not self.violations:
                log("end: SIGTERM, kingx-tool verify")
                status = self.server.stop(60)
                if status != 0:
                    self.violations.add("end", f"SIGTERM: exit status {status}")
                self.tool_check("end")
        except TestFailure as e:
            self.violations.add("harness", str(e))
        finally:
            if self.violations:
                print(self.server.logs(), flush=True)
            try:
                self.server.stop(30)
            except TestFailure as e:
                print(f"stop: {e}")
            keep = args.keep or bool(self.violations)
            if not keep:
                self.disk.close()
                shutil.rmtree(self.workdir, ignore_errors=True)
        st = self.stats
        wanted = {s for k in (self.states[0].keys[0], self.states[0].keys[-1]) for s in self.size_table[k]}
        summary = {k: (len(v) if k == "sizes_put" else v) for k, v in st.items()}
        summary.update(seed=args.seed, seconds=round(time.monotonic() - T0, 1),
                       acked_puts=sum(x.acked_puts for x in self.states),
                       acked_deletes=sum(x.acked_deletes for x in self.states),
                       threshold_sizes_never_sent=sorted(wanted - st["sizes_put"]),
                       violations=len(self.violations))
        log("summary " + json.dumps(summary, sort_keys=True))
        if self.violations:
            log(f"{len(self.violations)} violations; data kept in {self.workdir} "
                f"(replay: --seed {args.seed}):\n  " + "\n  ".join(self.violations[:40]))
            return 1
        return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.environ.get("KINGX_BIN", "build-release/src/kingx"))
    ap.add_argument("--tool", default=os.environ.get("KINGX_TOOL_BIN", "build-release/engine/tool/kingx-tool"))
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--disk", default="256m", help="size of the file system the data lives on")
    ap.add_argument("--fs", choices=["tmpfs", "ext4"], default="tmpfs",
                    help="tmpfs, or ext4 on a loop device (real fdatasyncs)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--model", default="event")
    ap.add_argument("--faults", type=lambda v: v.split(","), default=None,
                    help="comma-separated fault kinds to draw from (default: all): " + ",".join(FAULTS))
    ap.add_argument("--fail-point", default=None,
                    help="with a binary built with kill points: the fault 'seam' arms this KINGX_FAIL_POINT "
                         "spec for a while, e.g. kingx-writer/sync@seg-:1+ or kingx-worker/map@.kxd:1+")
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    args = ap.parse_args()
    if args.faults and set(args.faults) - set(FAULTS):
        ap.error(f"unknown faults {sorted(set(args.faults) - set(FAULTS))}; known: {', '.join(FAULTS)}")
    if args.seed is None:
        args.seed = random.randrange(1, 1 << 30)
    if args.tool and not os.access(args.tool, os.X_OK):
        args.tool = None
    # A background job ignores SIGINT; either signal ends the soak through its
    # clean-up (the server stopped, the tmpfs unmounted).
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
    return Soak(args).run()


if __name__ == "__main__":
    sys.exit(main())
