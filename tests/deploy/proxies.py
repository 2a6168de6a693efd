"""The real Debian nginx and HAProxy, started by the tests with the configuration files shipped in
deploy/ (standard library only).

The shipped files are used as they are, except for the lines a test must change: the listen
address (127.0.0.1 and an ephemeral port instead of :80 / :8000) and the upstream server lines
(the test's kingx instances instead of 127.0.0.1:8080 / kv-0N.internal:8080). Each change is
made by an exact-match rewrite that fails loudly when the shipped file no longer has the
expected line, so a test never silently runs against something else than what is shipped.

Each proxy runs in the foreground in its own process group with every path (pid, logs, temp
files) in a scratch directory; stop() ends it by PID. Nothing listens anywhere but 127.0.0.1.
"""

import importlib.machinery
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEPLOY = os.path.join(REPO, "deploy")
sys.path.insert(0, os.path.join(REPO, "tests", "blackbox"))

from kingx_harness import HOST, ConnectionClosed, TestFailure, check, free_port, http  # noqa: E402


def exit_on_sigterm():
    """meson's timeout (and `timeout`, and kill) send SIGTERM: turn it into SystemExit so that
    the test's finally blocks stop the servers and proxies it started."""
    def handler(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, handler)


def load_reshard():
    """deploy/kingx-reshard as a module (it has no .py suffix: it is a command)."""
    path = os.path.join(DEPLOY, "kingx-reshard")
    loader = importlib.machinery.SourceFileLoader("kingx_reshard", path)
    spec = importlib.util.spec_from_loader("kingx_reshard", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def reshard(*args, wait=True, timeout=300):
    """deploy/kingx-reshard ARGS: its CompletedProcess (text), or with wait=False the Popen."""
    argv = [sys.executable, os.path.join(DEPLOY, "kingx-reshard")] + list(args)
    if not wait:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def require(program):
    """Absolute path of `program`, or a failure: the suite's install step installs the peers,
    so a missing one is an error, not a skip."""
    path = shutil.which(program) or (os.path.exists(f"/usr/sbin/{program}") and f"/usr/sbin/{program}")
    check(path, f"{program} is not installed (tests/run-all.sh installs it through "
                f"bench/install-peers.sh)")
    return path


def rewrite(text, old, new, count=1):
    """`text` with `old` replaced by `new`; `old` must occur exactly `count` times."""
    n = text.count(old)
    if n != count:
        raise TestFailure(f"shipped configuration changed: expected {count} occurrence(s) of "
                          f"{old!r}, found {n}")
    return text.replace(old, new)


def read_shipped(name):
    with open(os.path.join(DEPLOY, name)) as f:
        return f.read()


def upstream_block(text, name):
    """The body of `upstream NAME { ... }` in an nginx file."""
    m = re.search(r"upstream\s+" + re.escape(name) + r"\s*\{(.*?)\n\}", text, re.S)
    check(m, f"no upstream {name} block")
    return m.group(1)


def seconds(value):
    """nginx/HAProxy time ('60s', '75000ms', '2m', '60') in seconds."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h)?", value)
    check(m, f"unparsed time {value!r}")
    n = int(m.group(1))
    return {"ms": n / 1000, "s": n, None: n, "m": n * 60, "h": n * 3600}[m.group(2)]


class Proxy:
    """A proxy process started from a configuration written into its scratch directory."""

    def __init__(self, kind, argv, workdir, port):
        self.kind, self.argv, self.workdir, self.port = kind, argv, workdir, port
        self.pidfile = os.path.join(workdir, f"{kind}.pid")  # its master's (NGINX_MAIN, HAPROXY_GLOBAL)
        self.proc = None

    def start(self, timeout=20.0):
        out = open(os.path.join(self.workdir, "stdout.log"), "ab")
        self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise TestFailure(f"{self.kind} exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                with socket.create_connection((HOST, self.port), timeout=1.0):
                    return self
            except OSError:
                time.sleep(0.05)
        raise TestFailure(f"{self.kind} did not listen on {self.port} within {timeout}s:\n{self.logs()}")

    def stop(self):
        """TERM to the proxy's own process group (all started here), then KILL if needed."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(15)
        except ProcessLookupError:
            pass

    def reload(self, *extra):
        """`kingx-reshard reload` of this proxy (its master signalled; returns once the previous
        configuration's workers have exited): the CompletedProcess."""
        return reshard("reload", "--proxy", self.kind, "--pidfile", self.pidfile, *extra)

    def reloaded(self):
        """reload(), which must succeed."""
        p = self.reload()
        check(p.returncode == 0, f"kingx-reshard reload of {self.kind}: {p.returncode} {p.stdout} {p.stderr}\n"
                                 f"{self.logs()}")

    def write_nginx_site(self, text):
        """Replaces this nginx's site file with `text`, checked with nginx -t (not reloaded)."""
        path = os.path.join(self.workdir, "site.conf")
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
        t = subprocess.run([self.argv[0], "-t", "-p", self.workdir, "-c", os.path.join(self.workdir, "nginx.conf"),
                            "-e", os.path.join(self.workdir, "error.log")], capture_output=True, text=True)
        check(t.returncode == 0, f"nginx -t on the new site: {t.stderr}")

    def logs(self, limit=4000):
        parts = []
        for name in sorted(os.listdir(self.workdir)):
            if name.endswith(".log"):
                with open(os.path.join(self.workdir, name), "rb") as f:
                    data = f.read()[-limit:]
                parts.append(f"--- {self.kind} {name} ---\n" + data.decode("utf-8", "replace"))
        return "\n".join(parts)

    def cleanup(self):
        self.stop()
        if os.environ.get("KINGX_KEEP") != "1":
            shutil.rmtree(self.workdir, ignore_errors=True)


NGINX_MAIN = """# nginx main configuration written by tests/deploy/proxies.py around a shipped site file.
daemon off;
master_process on;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 1024; }}
http {{
    access_log {d}/access.log;
    default_type application/octet-stream;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    include {d}/site.conf;
}}
"""


def nginx_site(name, upstreams, port):
    """The shipped site file `name` with its listen lines on 127.0.0.1:port and its upstream
    servers replaced by `upstreams` ('127.0.0.1:PORT' names, in order)."""
    text = read_shipped(name)
    text = rewrite(text, "    listen 80 default_server;\n", f"    listen {HOST}:{port} default_server;\n")
    text = rewrite(text, "    listen [::]:80 default_server;\n", "")
    if name == "nginx-reverse-proxy.conf":
        check(len(upstreams) == 1, "the reverse proxy has one upstream")
        text = rewrite(text, "    server 127.0.0.1:8080 max_fails=0;", f"    server {upstreams[0]} max_fails=0;")
    else:
        shipped = [f"    server kv-0{i}.internal:8080 max_fails=0;" for i in (1, 2, 3)]
        text = rewrite(text, "\n".join(shipped),
                       "\n".join(f"    server {u} max_fails=0;" for u in upstreams))
    return text


def start_nginx(name, upstreams):
    """nginx (Debian's binary, one worker) serving the shipped site file `name`."""
    nginx = require("nginx")
    d = tempfile.mkdtemp(prefix=f"kingx-nginx-")
    port = free_port()
    with open(os.path.join(d, "site.conf"), "w") as f:
        f.write(nginx_site(name, upstreams, port))
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(NGINX_MAIN.format(d=d))
    test = subprocess.run([nginx, "-t", "-p", d, "-c", os.path.join(d, "nginx.conf"), "-e",
                           os.path.join(d, "error.log")], capture_output=True, text=True)
    check(test.returncode == 0, f"nginx -t refused the shipped {name}:\n{test.stderr}")
    check("warn" not in test.stderr and "emerg" not in test.stderr,
          f"nginx -t warns about the shipped {name}:\n{test.stderr}")
    return Proxy("nginx", [nginx, "-p", d, "-c", os.path.join(d, "nginx.conf"), "-e",
                           os.path.join(d, "error.log")], d, port).start()


HAPROXY_GLOBAL = """# HAProxy global section written by tests/deploy/proxies.py before the shipped file.
global
    log stderr format short local0 notice   # request logs (info) are not needed here
    maxconn 2000
    pidfile {d}/haproxy.pid

"""


def haproxy_servers(upstreams):
    """HAProxy server lines for `upstreams`, in order: each '127.0.0.1:PORT' (the i-th gets id
    i) or the rest of a server line after its name ('127.0.0.1:PORT id 4 weight 50')."""
    return "\n".join(f"    server kv0{i + 1} {u}" + ("" if " " in u else f" id {i + 1}")
                     for i, u in enumerate(upstreams))


def haproxy_cfg(upstreams, port, old_upstreams=None):
    """deploy/haproxy-sharding.cfg with its bind on 127.0.0.1:port and its servers replaced by
    `upstreams` (haproxy_servers). With `old_upstreams`, deploy/haproxy-resharding.cfg instead:
    its new ring's servers replaced by `upstreams`, its old ring's by `old_upstreams`, and its
    abstract socket names made this HAProxy's own (tests run side by side on one machine)."""
    name = "haproxy-sharding.cfg" if old_upstreams is None else "haproxy-resharding.cfg"
    text = rewrite(read_shipped(name), "    bind :8000\n", f"    bind {HOST}:{port}\n")
    shipped = [f"    server kv0{i} kv-0{i}.internal:8080 id {i}" for i in (1, 2, 3, 4)]
    if old_upstreams is None:
        return rewrite(text, "\n".join(shipped[:3]), haproxy_servers(upstreams))
    text = rewrite(text, "\n".join(shipped), haproxy_servers(upstreams))
    text = rewrite(text, "\n".join(shipped[:3]), haproxy_servers(old_upstreams))
    return rewrite(text, "abns@kingx-", f"abns@kingx-{port}-", count=7)


def write_haproxy_cfg(workdir, upstreams, port, old_upstreams=None, global_extra=""):
    """Writes workdir/haproxy.cfg (the global section, with the lines `global_extra` after it,
    then the shipped file for `upstreams`, see haproxy_cfg) and checks it with haproxy -c: its
    path."""
    cfg = os.path.join(workdir, "haproxy.cfg")
    with open(cfg + ".tmp", "w") as f:
        f.write(HAPROXY_GLOBAL.format(d=workdir) + global_extra + haproxy_cfg(upstreams, port, old_upstreams))
    test = subprocess.run([require("haproxy"), "-c", "-f", cfg + ".tmp"], capture_output=True, text=True)
    check(test.returncode == 0, f"haproxy -c refused the shipped file:\n{test.stdout}{test.stderr}")
    check("WARNING" not in test.stdout + test.stderr,
          f"haproxy -c warns about the shipped file:\n{test.stdout}{test.stderr}")
    os.replace(cfg + ".tmp", cfg)
    return cfg


def start_haproxy(upstreams, master_worker=False):
    """HAProxy serving the shipped sharding file for `upstreams` (see haproxy_cfg). With
    `master_worker`, as Debian's unit runs it (-W): the master re-reads its file on SIGUSR2
    (reload_haproxy)."""
    haproxy = require("haproxy")
    d = tempfile.mkdtemp(prefix="kingx-haproxy-")
    port = free_port()
    cfg = write_haproxy_cfg(d, upstreams, port)
    # -db: foreground, no daemon; logs go to stderr (stdout.log).
    argv = [haproxy, "-db"] + (["-W"] if master_worker else []) + ["-f", cfg]
    return Proxy("haproxy", argv, d, port).start()


def reload_haproxy(proxy, upstreams, old_upstreams=None):
    """The master-worker `proxy` reloaded with the shipped file for `upstreams` (and
    `old_upstreams`: haproxy-resharding.cfg, see haproxy_cfg) as README "Resharding" does it:
    `kingx-reshard reload --proxy haproxy` (SIGUSR2 to the master, as `systemctl reload haproxy`
    does), which returns once the previous configuration's worker has exited."""
    check("-W" in proxy.argv, "reload_haproxy needs start_haproxy(..., master_worker=True)")
    write_haproxy_cfg(proxy.workdir, upstreams, proxy.port, old_upstreams)
    proxy.reloaded()


class Client:
    """A keep-alive HTTP client through a proxy that behaves like a correct HTTP/1.1 client: after
    a response with `Connection: close` it opens a new connection for the next request. Any
    other loss of the connection is the caller's failure (ConnectionClosed/OSError)."""

    def __init__(self, port, timeout=30.0, source=None):
        self.port, self.timeout, self.source = port, timeout, source
        self.conn = None
        self.connections = 0

    def _connect(self):
        from kingx_harness import Conn
        if self.source is None:
            self.conn = Conn(self.port, self.timeout)
        else:
            # Conn connects from 127.0.0.1; bind another loopback source address first.
            c = Conn.__new__(Conn)
            c.port, c.timeout, c.buf, c._consumed, c.requests_sent = self.port, self.timeout, b"", 0, 0
            c.sock = socket.create_connection((HOST, self.port), timeout=self.timeout,
                                              source_address=(self.source, 0))
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.conn = c
        self.connections += 1

    def request(self, method, path, body=None, headers=None):
        if self.conn is None:
            self._connect()
        try:
            r = self.conn.request(method, path, body, headers)
        except (ConnectionClosed, OSError):
            self.close()
            raise
        if (r.header("Connection") or "").lower() == "close":
            self.close()
        return r

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
