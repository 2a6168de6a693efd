"""What the deploy tests that move keys with deploy/kingx-reshard set up alike (standard library
only): a move from two kingx shards to three, the tool run as a command, and nginx serving the
shipped deploy/nginx-resharding.conf between the tool's two phases.

Every kingx started here is appended to the caller's `servers` list and every proxy to its
`proxies` list, which the caller stops by PID when it ends (Server.cleanup, Proxy.cleanup),
whatever happened.
"""

import os
import shutil
import tempfile

from proxies import HOST, NGINX_MAIN, Proxy, exit_on_sigterm, load_reshard, read_shipped, require, rewrite
from proxies import reshard  # noqa: F401 - the deploy tests take it from here with Move
from kingx_harness import Server, free_port, key_path, run_cases


def name(s):
    """The shard's name in the tool's lists and nginx's upstreams: 127.0.0.1:PORT."""
    return f"{HOST}:{s.port}"


def spelling(key):
    """The key's canonical spelling: what the tool and nginx hash."""
    return key_path(key)[len("/v1/kv/"):]


class Move:
    """Shards a and b (the old ring) and c (the new ring is a, b, c), each a one-worker kingx
    started at once; `lists` are the tool's --old/--new/--state arguments, the state file named
    after `tag` in `workdir`. `extra_args` go to every shard's command line. With
    ring="haproxy" the lists give the shards ids 1, 2, 3 (`lists` then ends with --ring haproxy)
    and the rings are HAProxy's."""

    def __init__(self, servers, workdir, tag, extra_args=(), ring="nginx"):
        self.kr = load_reshard()
        shards = []
        for _ in range(3):
            s = Server(["--workers", "1"] + list(extra_args))
            servers.append(s)
            shards.append(s.start())
        self.a, self.b, self.c = shards
        self.old = [name(self.a), name(self.b)]
        self.new = [name(self.a), name(self.b), name(self.c)]
        self.by_name = {name(s): s for s in shards}
        specs = [f"{n} id={i + 1}" if ring == "haproxy" else n for i, n in enumerate(self.new)]
        self.old_ring, self.new_ring = self.kr.RINGS[ring](specs[:2]), self.kr.RINGS[ring](specs)
        self.state = os.path.join(workdir, f"{tag}.json")
        self.lists = ["--old", ",".join(specs[:2]), "--new", ",".join(specs), "--state", self.state]
        if ring != "nginx":
            self.lists += ["--ring", ring]

    def old_owner(self, key):
        return self.by_name[self.old_ring.owner(spelling(key))]

    def new_owner(self, key):
        return self.by_name[self.new_ring.owner(spelling(key))]

    def moves(self, key):
        """True when the key's owner in the new ring is the new shard c."""
        return self.new_ring.owner(spelling(key)) == name(self.c)

    def moving(self, candidates, count):
        """The first `count` of `candidates` that move to c."""
        out = [k for k in candidates if self.moves(k)][:count]
        assert len(out) == count, f"only {len(out)} of the candidates move"
        return out

    def resharding_nginx_site(self, port):
        """deploy/nginx-resharding.conf listening on 127.0.0.1:port, its new list replaced by
        a, b, c and its old list by a, b."""
        text = read_shipped("nginx-resharding.conf")
        text = rewrite(text, "    listen 80 default_server;\n", f"    listen {HOST}:{port} default_server;\n")
        text = rewrite(text, "    listen [::]:80 default_server;\n", "")
        text = rewrite(text, "\n".join(f"    server kv-0{i}.internal:8080 max_fails=0;" for i in (1, 2, 3, 4)),
                       "\n".join(f"    server {u} max_fails=0;" for u in self.new))
        return rewrite(text, "\n".join(f"    server kv-0{i}.internal:8080 max_fails=0;" for i in (1, 2, 3)),
                       "\n".join(f"    server {u} max_fails=0;" for u in self.old))

    def start_resharding_nginx(self, proxies):
        """nginx (Debian's, one worker) serving deploy/nginx-resharding.conf with its new list
        replaced by a, b, c and its old list by a, b; returns its port."""
        nginx = require("nginx")
        d = tempfile.mkdtemp(prefix="kingx-nginx-")
        port = free_port()
        with open(os.path.join(d, "site.conf"), "w") as f:
            f.write(self.resharding_nginx_site(port))
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write(NGINX_MAIN.format(d=d))
        proxy = Proxy("nginx", [nginx, "-p", d, "-c", os.path.join(d, "nginx.conf"), "-e",
                                os.path.join(d, "error.log")], d, port)
        proxies.append(proxy)
        proxy.start()
        return port


def run_deploy_cases(title, cases, servers, proxies, workdir):
    """run_cases(title, cases); then, whatever happened (SIGTERM included),
    every proxy and server the cases started is stopped and `workdir` removed
    (kept with KINGX_KEEP=1). The exit status."""
    exit_on_sigterm()
    try:
        return run_cases(title, cases)
    finally:
        for p in proxies:
            p.cleanup()
        for s in servers:
            s.cleanup()
        if os.environ.get("KINGX_KEEP") != "1":
            shutil.rmtree(workdir, ignore_errors=True)
