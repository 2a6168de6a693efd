#!/usr/bin/env python3
"""A write that a proxy worker of the previous configuration holds across the reload into the
move window (README "Resharding"), behind Debian's nginx and HAProxy, 2 -> 3 kingx shards:

  - the proxy serves the old list (nginx-sharding.conf, haproxy-sharding.cfg in master-worker
    mode); a key that moves to the new shard is written, and `kingx-reshard copy` copies it;
  - a client then begins a PUT of that key (its head and half its body): the proxy's worker has
    chosen the key's owner in the old list and streams the body to it;
  - the proxy is reloaded into the move window (nginx-resharding.conf, haproxy-resharding.cfg)
    as the README says, with `kingx-reshard reload`; the client sends the rest of its body once
    `finish` has passed the key (its original gone from the old owner) or two seconds after the
    reload began, whichever comes first, and the old owner acknowledges the write;
  - `finish`, the reload to the sharding file with the new list: the value acknowledged is what
    a GET returns, the key on its new owner only, and `check` agrees.
  - `kingx-reshard reload` fails while that worker runs (`--timeout 1`: exit 2, naming the
    worker's pid and the proxy's setting that bounds it), and, behind nginx, when nginx keeps
    its configuration (a site file it refuses: no new worker), or when the pid file names a
    worker instead of the master, or another program's master (refused, nothing signalled); an
    idle keep-alive client connection does not keep an old worker (the proxy closes it at the
    reload);
  - nginx's `worker_shutdown_timeout` (which that failure names) ends the wait: the reload
    returns 0 once nginx cut the worker, whose held PUT got no answer and was not applied;
  - a PUT whose body had wholly reached the old owner when that bound (or HAProxy's
    hard-stop-after) cut the worker is not acknowledged (no answer; HAProxy's 502), yet the old
    owner applies it, possibly after `finish` passed the key (here its
    worker, stopped, reads the body only then): `check` after the last reload finds the key on
    its old owner, and `finish` run again (README) removes it there and keeps the latest
    acknowledged value on the owner.

With `--reload signal` the reloads are those of the procedure before `kingx-reshard reload`
(signal the master, wait until the new configuration routes), to show this test failing on it.

    KINGX_BIN=build/src/kingx python3 tests/deploy/test_reshard_reload.py [--reload wait|signal]
"""

import argparse
import os
import signal
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proxies import load_reshard, nginx_site, rewrite, start_haproxy, start_nginx, write_haproxy_cfg  # noqa: E402
from reshard_setup import Move, name, reshard, run_deploy_cases, spelling  # noqa: E402
from kingx_harness import (CaseSkipped, ConnectionClosed, Conn, build_request, cases_of, check, http,  # noqa: E402
                           key_path)

KR = load_reshard()
SERVERS = []    # every kingx started here, stopped at the end whatever happens
PROXIES = []
WORKDIR = tempfile.mkdtemp(prefix="kingx-reshard-reload-")
ARGS = None
SIGNALS = {"nginx": signal.SIGHUP, "haproxy": signal.SIGUSR2}
BOUNDS = {"nginx": "worker_shutdown_timeout", "haproxy": "hard-stop-after"}


def established():
    """(local port, remote port, unread bytes) of each established TCP connection's end on
    127.0.0.1, from /proc/net/tcp (both ends of a loopback connection are listed)."""
    out = []
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, remote, st, queues = fields[1], fields[2], fields[3], fields[4]
            if st == "01":
                out.append((int(local.split(":")[1], 16), int(remote.split(":")[1], 16),
                            int(queues.split(":")[1], 16)))
    return out


def proxy_has_read(proxy_port, client_port):
    """True once the proxy's end of the client's connection has no unread bytes (its worker read
    the request head and the body sent so far)."""
    return any(unread == 0 for local, remote, unread in established()
               if local == proxy_port and remote == client_port)


class HeldPut:
    """A PUT whose head and first half of the body are sent now, through the proxy, and whose
    rest is sent by a thread once release() is called; the answer and the time it came."""

    def __init__(self, port, key, value):
        self.conn = Conn(port, timeout=120.0)
        head = build_request("PUT", key_path(key), value)
        self.half = len(head) - len(value) // 2
        self.data = head
        self.conn.send(head[:self.half])
        deadline = time.monotonic() + 30
        while not proxy_has_read(port, self.conn.local_port()):
            check(time.monotonic() < deadline, "the proxy did not read the PUT's head in 30 s")
            time.sleep(0.02)
        time.sleep(0.2)  # the worker connects to the owner as it reads the head: let it
        self.go = threading.Event()
        self.response, self.error, self.acked_at = None, None, None
        self.thread = threading.Thread(target=self._finish)
        self.thread.start()

    def _finish(self):
        self.go.wait(120)
        try:
            self.conn.send(self.data[self.half:])
            self.response = self.conn.read_response()
            self.acked_at = time.monotonic()
        except (ConnectionClosed, OSError) as e:
            self.error = e
        finally:
            self.conn.close()

    def release(self):
        self.go.set()

    def result(self):
        self.release()
        self.thread.join(130)
        check(self.error is None, f"the held PUT: {self.error!r}")
        return self.response


class MovingProxy:
    """nginx or HAProxy (master-worker) started on the old list, reloaded by either procedure."""

    def __init__(self, kind, mv):
        self.kind, self.mv = kind, mv
        self.global_extra = ""  # HAProxy: lines of its global section (bound_old_workers)
        if kind == "nginx":
            self.p = start_nginx("nginx-sharding.conf", mv.old)
        else:
            self.p = start_haproxy(mv.old, master_worker=True)
        PROXIES.append(self.p)
        self.port = self.p.port

    def write_window(self):
        """The move window's file with both lists: nginx-resharding.conf, haproxy-resharding.cfg."""
        if self.kind == "nginx":
            self.p.write_nginx_site(self.mv.resharding_nginx_site(self.port))
        else:
            write_haproxy_cfg(self.p.workdir, self.mv.new, self.port, self.mv.old, self.global_extra)

    def write_final(self):
        """The sharding file with the new list."""
        if self.kind == "nginx":
            self.p.write_nginx_site(nginx_site("nginx-sharding.conf", self.mv.new, self.port))
        else:
            write_haproxy_cfg(self.p.workdir, self.mv.new, self.port, global_extra=self.global_extra)

    def reload(self, *extra):
        """`kingx-reshard reload` for this proxy (the README's procedure)."""
        return self.p.reload(*extra)

    def reload_by_signal(self, canary, status):
        """The procedure before `kingx-reshard reload`: the master signalled, then waited for
        until the new configuration routes (`canary` answers `status`)."""
        os.kill(self.p.proc.pid, SIGNALS[self.kind])
        deadline = time.monotonic() + 30
        while http(self.port, "GET", key_path(canary)).status != status:
            check(time.monotonic() < deadline, f"{self.kind} did not route by its new file in 30 s")
            time.sleep(0.05)


def move_with_a_write_held_across_the_reload(kind):
    ring = "nginx" if kind == "nginx" else "haproxy"
    mv = Move(SERVERS, WORKDIR, f"held-{kind}", ring=ring)
    key, canary = mv.moving((f"held/{kind}/{i}" for i in range(5000)), 2)
    proxy = MovingProxy(kind, mv)
    check(http(proxy.port, "PUT", key_path(key), b"first").status == 201, "PUT through the proxy")
    check(http(mv.old_owner(key).port, "GET", key_path(key)).body == b"first", "the key on its old owner")
    # Only on the new shard: 404 through the old list, 200 through the move window.
    check(http(mv.c.port, "PUT", key_path(canary), b"canary").status == 201, "PUT the canary")
    p = reshard("copy", *mv.lists)
    check(p.returncode == 0, f"copy: {p.returncode} {p.stdout} {p.stderr}")

    late = b"acknowledged after the reload " * 100
    held = HeldPut(proxy.port, key, late)
    try:
        proxy.write_window()
        began = time.monotonic()

        def release_when_passed():
            # The rest of the body once `finish` has deleted the original, or after 2 s.
            while time.monotonic() - began < 2.0 and not held.go.is_set():
                if http(mv.old_owner(key).port, "GET", key_path(key)).status == 404:
                    break
                time.sleep(0.02)
            held.release()

        releaser = threading.Thread(target=release_when_passed)
        if ARGS.reload == "signal":
            releaser.start()
            proxy.reload_by_signal(canary, 200)
        else:
            # While the worker holding the PUT runs, the reload does not return 0.
            old_workers = KR.children(proxy.p.proc.pid)
            p = proxy.reload("--timeout", "1")
            check(p.returncode == 2 and BOUNDS[kind] in p.stderr and "still run" in p.stderr
                  and all(str(pid) in p.stderr for pid in old_workers),
                  f"reload --timeout 1 while an old worker holds a PUT: {p.returncode} {p.stdout} {p.stderr}")
            # An idle keep-alive client of the old worker does not hold it: the proxy closes it.
            idle = Conn(proxy.port)
            check(idle.request("GET", key_path(canary)).status == 200, "GET on the idle connection")
            began = time.monotonic()
            releaser.start()
            p = proxy.reload()
            reloaded_at = time.monotonic()
            check(p.returncode == 0, f"reload: {p.returncode} {p.stdout} {p.stderr}")
            check(held.acked_at is not None and held.acked_at <= reloaded_at,
                  f"`kingx-reshard reload` returned before the old worker's PUT was answered: {p.stdout}")
            check(idle.wait_closed(5.0) == "closed", f"{kind} left an idle keep-alive connection open "
                                                     f"across the reload")
            idle.close()
            check(http(proxy.port, "GET", key_path(canary)).status == 200,
                  "after `kingx-reshard reload` the move window's file routes every new connection")
        p = reshard("finish", *mv.lists)
        check(p.returncode == 0, f"finish: {p.returncode} {p.stdout} {p.stderr}")
        r = held.result()
        releaser.join(10)
    finally:
        held.release()
    check(r.status in (201, 204), f"the held PUT: {r!r}")
    proxy.write_final()
    if ARGS.reload == "signal":
        os.kill(proxy.p.proc.pid, SIGNALS[kind])
        time.sleep(1.0)
    else:
        p = proxy.reload()
        check(p.returncode == 0, f"reload to the new list: {p.returncode} {p.stdout} {p.stderr}")
    r = http(proxy.port, "GET", key_path(key))
    check(r.status == 200 and r.body == late,
          f"the PUT acknowledged through a worker of the old list after the reload is lost behind "
          f"{kind}: GET answers {r.status} {r.body[:40]!r}, not the acknowledged value "
          f"(old owner {name(mv.old_owner(key))} holds "
          f"{http(mv.old_owner(key).port, 'GET', key_path(key)).body[:40]!r})")
    for s in (mv.a, mv.b, mv.c):
        got = http(s.port, "GET", key_path(key)).status
        check(got == (200 if s is mv.c else 404), f"{key} on {name(s)}: {got}")
    p = reshard("check", "--shards", mv.lists[3], *(["--ring", ring] if ring != "nginx" else []))
    check(p.returncode == 0, f"check: {p.returncode} {p.stdout} {p.stderr}")
    return proxy, mv


def test_a_put_held_by_an_old_nginx_worker_across_the_reload_is_what_a_get_returns_after_the_move():
    proxy, mv = move_with_a_write_held_across_the_reload("nginx")
    if ARGS.reload == "signal":
        return
    # A pid file naming a worker, not the master: refused, nothing signalled.
    worker = min(KR.children(proxy.p.proc.pid))
    wrong = os.path.join(proxy.p.workdir, "worker.pid")
    with open(wrong, "w") as f:
        f.write(f"{worker}\n")
    p = reshard("reload", "--pidfile", wrong, "--timeout", "5")  # --proxy nginx is the default
    check(p.returncode == 2 and "not nginx's master process" in p.stderr and worker in KR.children(proxy.p.proc.pid),
          f"reload given a worker's pid: {p.returncode} {p.stdout} {p.stderr}")
    # A pid file naming another program's master (a stale one, say): refused, nothing signalled.
    shard_workers = KR.children(mv.a.pid)
    with open(wrong, "w") as f:
        f.write(f"{mv.a.pid}\n")
    p = reshard("reload", "--pidfile", wrong, "--timeout", "5")
    check(p.returncode == 2 and "not nginx" in p.stderr and KR.children(mv.a.pid) == shard_workers,
          f"reload given a kingx master's pid: {p.returncode} {p.stdout} {p.stderr}")
    # A site file nginx refuses: it keeps its configuration and starts no new worker.
    with open(os.path.join(proxy.p.workdir, "site.conf"), "a") as f:
        f.write("this is not nginx configuration;\n")
    p = proxy.reload("--timeout", "2")
    check(p.returncode == 2 and "started no new worker" in p.stderr and "nginx -t" in p.stderr,
          f"reload into a refused file: {p.returncode} {p.stdout} {p.stderr}")


def test_worker_shutdown_timeout_ends_the_wait_and_the_put_it_cut_is_not_applied():
    """nginx's bound on old workers (README: what `reload` names when it times out): the reload
    returns once nginx has cut the worker, whose PUT was never answered nor applied."""
    if ARGS.reload == "signal":
        raise CaseSkipped("a case of kingx-reshard reload")
    mv = Move(SERVERS, WORKDIR, "bounded", ring="nginx")
    key = mv.moving((f"bounded/{i}" for i in range(5000)), 1)[0]
    proxy = MovingProxy("nginx", mv)
    bound_old_workers(proxy)
    check(http(proxy.port, "PUT", key_path(key), b"first").status == 201, "PUT through nginx")
    p = reshard("copy", *mv.lists)
    check(p.returncode == 0, f"copy: {p.returncode} {p.stdout} {p.stderr}")
    held = HeldPut(proxy.port, key, b"never acknowledged " * 100)
    proxy.write_window()
    p = proxy.reload("--timeout", "60")
    check(p.returncode == 0, f"reload with worker_shutdown_timeout 1s: {p.returncode} {p.stdout} {p.stderr}")
    check(held.conn.wait_closed(5.0) == "closed", "nginx's cut worker left the held PUT's connection open")
    held.release()
    held.thread.join(10)
    check(held.response is None, f"the cut PUT was answered: {held.response!r}")
    p = reshard("finish", *mv.lists)
    check(p.returncode == 0, f"finish: {p.returncode} {p.stdout} {p.stderr}")
    for s in (mv.a, mv.b, mv.c):
        r = http(s.port, "GET", key_path(key))
        want = (200, b"first") if s is mv.c else (404, r.body)
        check((r.status, r.body) == want, f"{key} on {name(s)}: {r.status} {r.body[:40]!r}")


def bound_old_workers(proxy):
    """The proxy's bound on old workers set to 1 s (nginx's worker_shutdown_timeout in nginx.conf,
    HAProxy's hard-stop-after in its global section), its workers reloaded into it (the workers it
    will cut are this configuration's)."""
    if proxy.kind == "nginx":
        conf = os.path.join(proxy.p.workdir, "nginx.conf")
        with open(conf) as f:
            text = f.read()
        with open(conf, "w") as f:
            f.write(rewrite(text, "worker_processes 1;\n", "worker_processes 1;\nworker_shutdown_timeout 1s;\n"))
    else:
        proxy.global_extra = "    hard-stop-after 1s\n"
        write_haproxy_cfg(proxy.p.workdir, proxy.mv.old, proxy.port, global_extra=proxy.global_extra)
    proxy.p.reloaded()


def a_put_cut_whole_and_applied_after_finish_is_found_by_check_and_undone_by_finish(kind):
    """A PUT whose body had wholly reached the old owner when the proxy's bound on old workers
    (nginx's worker_shutdown_timeout, HAProxy's hard-stop-after) cut the worker holding it:
    unanswered, yet the old owner applies it, here after `finish` passed the key (its worker,
    stopped, reads the body only then). The README's last steps: `check` finds the key on its
    old owner (exit 1), `finish` run again with the same state removes it there and keeps the
    owner's value, which is the latest acknowledged one, and `check` exits 0."""
    if ARGS.reload == "signal":
        raise CaseSkipped("a case of kingx-reshard reload")
    ring = "nginx" if kind == "nginx" else "haproxy"
    # Two workers accepting from one socket: the old owner still answers `finish` while the
    # worker that holds the cut PUT is stopped.
    mv = Move(SERVERS, WORKDIR, f"late-{kind}", extra_args=["--workers", "2", "--accept", "shared"], ring=ring)
    key = mv.moving((f"late/{kind}/{i}" for i in range(5000)), 1)[0]
    old = mv.old_owner(key)
    proxy = MovingProxy(kind, mv)
    bound_old_workers(proxy)
    # Written on its owner directly: nginx then holds no idle connection to it, and the held PUT's
    # is the one connection from nginx to the old owner.
    check(http(old.port, "PUT", key_path(key), b"first").status == 201, "PUT on the old owner")
    p = reshard("copy", *mv.lists)
    check(p.returncode == 0, f"copy: {p.returncode} {p.stdout} {p.stderr}")
    cut = b"cut by worker_shutdown_timeout " * 100
    held = HeldPut(proxy.port, key, cut)
    rest = len(held.data) - held.half
    to_old = [local for local, remote, _ in established() if remote == old.port]
    check(len(to_old) == 1, f"nginx's connections to the old owner: {to_old}")
    worker = old.worker_of_client_port(to_old[0])
    check(worker is not None, "the old owner's worker reading the held PUT")
    os.kill(worker, signal.SIGSTOP)
    try:
        held.release()
        deadline = time.monotonic() + 30
        while not any(local == old.port and remote == to_old[0] and unread == rest
                      for local, remote, unread in established()):
            check(time.monotonic() < deadline, "nginx did not pass the rest of the body to the old owner in 30 s")
            time.sleep(0.02)
        proxy.write_window()
        p = proxy.reload("--timeout", "60")
        check(p.returncode == 0, f"reload with {BOUNDS[kind]} 1s: {p.returncode} {p.stdout} {p.stderr}")
        held.thread.join(10)
        # No answer (nginx closes the connection), or HAProxy's 502: never acknowledged.
        check(held.response is None or held.response.status >= 500, f"the cut PUT was answered: {held.response!r}")
        p = reshard("finish", *mv.lists)
        check(p.returncode == 0, f"finish: {p.returncode} {p.stdout} {p.stderr}")
        check(http(old.port, "GET", key_path(key)).status == 404, "finish deleted the original")
    finally:
        os.kill(worker, signal.SIGCONT)
    # The body was whole in the worker's socket: the old owner applies the PUT now.
    deadline = time.monotonic() + 30
    while http(old.port, "GET", key_path(key)).body != cut:
        check(time.monotonic() < deadline, "the old owner did not apply the PUT cut whole")
        time.sleep(0.05)
    proxy.write_final()
    p = proxy.reload()
    check(p.returncode == 0, f"reload to the new list: {p.returncode} {p.stdout} {p.stderr}")
    check_args = ["check", "--shards", mv.lists[3]] + (["--ring", ring] if ring != "nginx" else [])
    p = reshard(*check_args)
    check(p.returncode == 1 and spelling(key) in p.stdout,
          f"check after the late write: {p.returncode} {p.stdout} {p.stderr}")
    # README: `check` exits 1 after a move: run `finish` again, then `check`.
    p = reshard("finish", *mv.lists)
    check(p.returncode == 0, f"finish run again: {p.returncode} {p.stdout} {p.stderr}")
    p = reshard(*check_args)
    check(p.returncode == 0, f"check after finish run again: {p.returncode} {p.stdout} {p.stderr}")
    r = http(proxy.port, "GET", key_path(key))
    check(r.status == 200 and r.body == b"first", f"GET after the move: {r.status} {r.body[:40]!r}, not the "
                                                  f"acknowledged value")
    for s in (mv.a, mv.b, mv.c):
        got = http(s.port, "GET", key_path(key)).status
        check(got == (200 if s is mv.c else 404), f"{key} on {name(s)}: {got}")


def test_a_put_cut_whole_by_nginx_and_applied_after_finish_is_found_by_check_and_undone_by_finish():
    a_put_cut_whole_and_applied_after_finish_is_found_by_check_and_undone_by_finish("nginx")


def test_a_put_held_by_an_old_haproxy_worker_across_the_reload_is_what_a_get_returns_after_the_move():
    move_with_a_write_held_across_the_reload("haproxy")


def test_a_put_cut_whole_by_haproxy_and_applied_after_finish_is_found_by_check_and_undone_by_finish():
    a_put_cut_whole_and_applied_after_finish_is_found_by_check_and_undone_by_finish("haproxy")


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reload", choices=("wait", "signal"), default="wait",
                    help="wait: kingx-reshard reload (README); signal: the procedure before it")
    ap.add_argument("-k", default="", help="run only the cases whose name contains this")
    ARGS = ap.parse_args()
    cases = [c for c in cases_of(globals()) if ARGS.k in c[0]]
    sys.exit(run_deploy_cases("a write held across the reload into a move", cases, SERVERS, PROXIES, WORKDIR))


if __name__ == "__main__":
    main()
