"""The peers kingx is compared with, each configured and started by the harness on 127.0.0.1:
nginx (return 200 / static file / memcached_pass, or the shipped reverse proxy in front of kingx),
memcached, redis, webdis.

Each start function returns a Proc that is already accepting requests; the caller stops it.
Values are the ones the kingx dataset holds: 100 'v' bytes for small keys, 'x' bytes for large.
"""

import json
import os
import socket

from . import procs

RETURN_BODY = "v" * 100
DEPLOY = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "deploy")


def write_static_files(www_dir):
    """Writes the files nginx serves statically (s/v100.txt, s/v64k.bin, s/v1m.bin); returns {name: bytes}."""
    s = os.path.join(www_dir, "s")
    os.makedirs(s, exist_ok=True)
    files = {name: ch * size for name, size, ch in (("v100.txt", 100, b"v"), ("v64k.bin", 65536, b"x"),
                                                     ("v1m.bin", 1 << 20, b"x"))}
    for name, data in files.items():
        with open(os.path.join(s, name), "wb") as f:
            f.write(data)
    return files


def reverse_proxy_site(kingx_port):
    """deploy/nginx-reverse-proxy.conf as shipped, with its upstream server on 127.0.0.1:kingx_port:
    a function of nginx's port that returns the site's text listening on 127.0.0.1:port only (for
    nginx_conf's `site`). Each change is an exact-match rewrite; RuntimeError when the shipped file
    no longer has the line, so nothing is measured but what is shipped."""
    with open(os.path.join(DEPLOY, "nginx-reverse-proxy.conf")) as f:
        text = f.read()

    def rewrite(text, old, new):
        if text.count(old) != 1:
            raise RuntimeError(f"deploy/nginx-reverse-proxy.conf changed: {old!r} is not there exactly once")
        return text.replace(old, new)
    text = rewrite(text, "    server 127.0.0.1:8080 max_fails=0;", f"    server 127.0.0.1:{kingx_port} max_fails=0;")
    text = rewrite(text, "    listen [::]:80 default_server;\n", "")
    return lambda port: rewrite(text, "    listen 80 default_server;", f"    listen 127.0.0.1:{port} default_server;")


def nginx_conf(workdir, port, workers, reuseport, mc_port=None, rlimit_nofile=20000, error_level="warn",
               client_max_body_size="4m", tcp_nopush=True, extra_locations="", site=None,
               client_header_timeout="60s"):
    """An nginx.conf with every location the benchmark uses (see bench/README.md).

    The keyword arguments are what the abuse soak (bench/abuse.py) sets differently: the worker's
    descriptor limit (fd-exhaustion lowers it), the error log level (warn logs every body buffered
    to a file), the largest body accepted, TCP_NOPUSH with sendfile, and locations of its own
    (nginx-syntax text placed inside the server block), and how long a request's head may take to
    arrive (nginx's default 60s; kingx's --header-timeout-ms is 10 s). `site`: http-context text (upstreams, maps,
    its own server block listening on `port`) in place of the benchmark's server block, as a
    Debian site file is included (reverse_proxy_site).
    """
    mc_upstream = ""
    mc_location = ""
    if mc_port is not None:
        mc_upstream = f"upstream mc {{ server 127.0.0.1:{mc_port}; keepalive 64; }}"
        mc_location = """
        location ~ ^/mc/(?<mckey>.+)$ {
            set $memcached_key $mckey;
            memcached_pass mc;
        }"""
    rp = " reuseport" if reuseport else ""
    nopush = "tcp_nopush on;" if tcp_nopush else ""
    server = site if site is not None else f"""{mc_upstream}
    server {{
        listen 127.0.0.1:{port} backlog=4096{rp};
        location = /r {{ return 200 "{RETURN_BODY}"; }}
        location /r/ {{ return 200 "{RETURN_BODY}"; }}
        location /s/ {{ root {workdir}/www; }}
        {mc_location}
        {extra_locations}
    }}"""
    return f"""
worker_processes {workers};
daemon off;
master_process on;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log {error_level};
worker_rlimit_nofile {rlimit_nofile};
events {{ worker_connections 19000; }}
http {{
    access_log off;
    default_type application/octet-stream;
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 75s;
    sendfile on;
    {nopush}
    tcp_nodelay on;
    open_file_cache max=1000 inactive=60s;
    client_max_body_size {client_max_body_size};
    client_header_timeout {client_header_timeout};
    {server}
}}
"""


def start_nginx(workdir, workers, reuseport=False, mc_port=None, static_files=None, nofile=None, site=None,
                ready_path="/readyz", **conf):
    """Start nginx in the foreground (daemon off). Returns (proc, port) once nginx answers its
    `return 200` location and serves every static file whole (200 and its length).

    static_files: {name: bytes} served under /s/ instead of write_static_files' set.
    site: a function of nginx's port returning the http-context text that replaces the benchmark's
    server block (reverse_proxy_site); nginx is then ready once GET ready_path answers 200 through
    it, and serves no static files.
    nofile: run nginx under prlimit with this descriptor limit (soft and hard), and set
    worker_rlimit_nofile to it. Other keyword arguments go to nginx_conf.
    Started by root, nginx's workers run as an unprivileged user: workdir (often a mkdtemp, mode
    0700) is made searchable for them. Raises RuntimeError (nginx stopped) when a static file is
    not served: a 403 in its place is a cheaper answer than the file, and would be measured as it.
    """
    port = procs.free_port()
    os.makedirs(workdir, exist_ok=True)
    os.chmod(workdir, os.stat(workdir).st_mode | 0o755)
    if site is not None:
        conf["site"] = site(port)
        static_files = {}
    elif static_files is None:
        static_files = write_static_files(os.path.join(workdir, "www"))
    else:
        s = os.path.join(workdir, "www", "s")
        os.makedirs(s, exist_ok=True)
        for name, data in static_files.items():
            with open(os.path.join(s, name), "wb") as f:
                f.write(data)
    if nofile:
        conf["rlimit_nofile"] = nofile
    conf_path = os.path.join(workdir, "nginx.conf")
    with open(conf_path, "w") as f:
        f.write(nginx_conf(workdir, port, workers, reuseport, mc_port, **conf))
    argv = ["nginx", "-p", workdir, "-c", conf_path, "-e", f"{workdir}/error.log"]
    if nofile:
        argv = ["prlimit", f"--nofile={nofile}:{nofile}", "--"] + argv
    p = procs.Proc("nginx", argv, os.path.join(workdir, "stdout.log"))
    try:
        procs.wait_http_ok(port, "/r" if site is None else ready_path, 20, p)
        for name, data in static_files.items():
            status, body = procs.http_request(port, "GET", f"/s/{name}", timeout_s=30)
            if status != 200 or body != data:
                raise RuntimeError(f"nginx answers /s/{name} with {status} and {len(body)} bytes, not the "
                                   f"file's {len(data)} (can its workers read {workdir}?)")
    except BaseException:
        p.stop()
        raise
    return p, port


def start_memcached(workdir):
    """memcached with one worker thread (as perf.md measured), 1 GiB, items up to 2 MiB."""
    os.makedirs(workdir, exist_ok=True)
    port = procs.free_port()
    argv = ["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0",
            "-t", "1", "-m", "1024", "-c", "19000", "-I", "2m"]
    if os.geteuid() == 0:  # memcached refuses to run as root without naming a user
        argv += ["-u", "root"]
    p = procs.Proc("memcached", argv,
                   os.path.join(workdir, "memcached.log"))
    procs.wait_tcp(port, 20, p)
    return p, port


def start_redis(workdir):
    """redis without persistence (webdis's backend)."""
    os.makedirs(workdir, exist_ok=True)
    port = procs.free_port()
    p = procs.Proc("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--daemonize", "no",
                             "--maxclients", "19000", "--dir", workdir],
                   os.path.join(workdir, "redis.log"))
    procs.wait_tcp(port, 20, p)
    return p, port


def start_webdis(workdir, redis_port, threads=1):
    """webdis in front of redis (pool_size 20, as perf.md measured). Returns (proc, port)."""
    os.makedirs(workdir, exist_ok=True)
    port = procs.free_port()
    conf = {
        "redis_host": "127.0.0.1", "redis_port": redis_port, "redis_auth": None,
        "http_host": "127.0.0.1", "http_port": port, "threads": threads, "pool_size": 20,
        "daemonize": False, "database": 0, "websockets": False, "verbosity": 1,
        "logfile": os.path.join(workdir, "webdis.log"),
        "http_max_request_size": 8 << 20,
    }
    path = os.path.join(workdir, "webdis.json")
    with open(path, "w") as f:
        json.dump(conf, f)
    p = procs.Proc("webdis", ["webdis", path], os.path.join(workdir, "stdout.log"))
    procs.wait_http_ok(port, "/PING", 20, p)
    return p, port


def _keys(dataset):
    """(key bytes, value bytes) for every key of the dataset."""
    for prefix, count, size, ch in (("k", dataset.nkeys, 100, b"v"),
                                    ("m", dataset.n64k, 65536, b"x"),
                                    ("g", dataset.n1m, 1 << 20, b"x")):
        value = ch * size
        for i in range(count):
            yield f"{prefix}{i}".encode(), value


def _drain(sock, want, terminator=None):
    """Read until `want` bytes arrived (or the buffer ends with terminator)."""
    buf = bytearray()
    while len(buf) < want and not (terminator and buf.endswith(terminator)):
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise RuntimeError("backend closed the connection during preload")
        buf += chunk
    return bytes(buf)


def preload_memcached(port, dataset, batch=5000):
    """SET every dataset key with noreply, pipelined; a final `version` waits for the last."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        out = []
        for key, value in _keys(dataset):
            out.append(b"set %s 0 0 %d noreply\r\n%s\r\n" % (key, len(value), value))
            if len(out) >= batch:
                s.sendall(b"".join(out))
                out = []
        out.append(b"version\r\n")
        s.sendall(b"".join(out))
        reply = _drain(s, 1 << 30, b"\r\n")
        if not reply.startswith(b"VERSION"):
            raise RuntimeError(f"memcached preload failed: {reply[:200]!r}")


def preload_redis(port, dataset, batch=5000):
    """SET every dataset key, pipelined in batches; checks every reply is +OK."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        out = []

        def flush():
            s.sendall(b"".join(out))
            reply = _drain(s, 5 * len(out))
            if reply != b"+OK\r\n" * len(out):
                raise RuntimeError(f"redis preload failed: {reply[:200]!r}")
            out.clear()

        for key, value in _keys(dataset):
            out.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n"
                       % (len(key), key, len(value), value))
            if len(out) >= batch:
                flush()
        if out:
            flush()
