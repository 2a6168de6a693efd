#!/usr/bin/env python3
"""One kingx behind the real Debian nginx with the shipped deploy/nginx-reverse-proxy.conf:
the API through the proxy (PUT/GET/HEAD/DELETE, chunked and 32 MiB bodies streamed, conditional
requests and errors with their status codes, the 308 of a non-canonical key spelling), kingx's
access log with the client's address and request id, upstream keep-alive (kingx sees far fewer
connections than nginx serves requests), the timeouts' order, kingx down (502 with
`Connection: close`), nginx's own 413 and 431 in kingx's problem+json (also nginx-sharding.conf), and the file installed the way the header says into a copy of Debian's own
/etc/nginx.

    KINGX_BIN=build/src/kingx python3 tests/deploy/test_nginx_proxy.py
"""

import glob
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proxies import (DEPLOY, Client, Proxy, exit_on_sigterm, free_port, read_shipped, require,  # noqa: E402
                     rewrite, seconds, start_nginx, upstream_block)
from kingx_harness import (HOST, Conn, ConnectionClosed, Server, TestFailure, cases_of, check,  # noqa: E402
                           check_put_without_length_refused, http, key_path, require_bin, run_cases)

K = None      # kingx
N = None      # nginx in front of it
MAX_VALUE = 40 << 20  # kingx's limit here, below nginx's client_max_body_size 64m


def fresh_key(tag="p"):
    return f"{tag}-{time.time_ns()}"


def kingx_default(setting):
    """The default of a kingx setting, as `kingx --help` states it ([name] default: V)."""
    out = subprocess.run([require_bin(), "--help"], capture_output=True, text=True).stdout
    m = re.search(r"\[" + re.escape(setting) + r"\] default: (\S+)", out)
    check(m, f"kingx --help does not state a default for {setting}")
    return m.group(1)


def test_upstream_keepalive_timeouts_stay_below_kingx_idle_timeout():
    kingx_idle_s = int(kingx_default("keepalive_timeout_ms")) / 1000
    for name, upstream in (("nginx-reverse-proxy.conf", "kingx"), ("nginx-sharding.conf", "kingx_shards")):
        block = upstream_block(read_shipped(name), upstream)
        m = re.search(r"keepalive_timeout\s+(\S+);", block)
        check(m, f"{name}: upstream {upstream} sets no keepalive_timeout (nginx's 60 s default is implicit)")
        check(seconds(m.group(1)) < kingx_idle_s,
              f"{name}: upstream keepalive_timeout {m.group(1)} is not below kingx's {kingx_idle_s} s")
        check(re.search(r"^\s*keepalive\s+\d+;", block, re.M), f"{name}: no upstream keepalive pool")
    for name in ("haproxy-sharding.cfg", "haproxy-resharding.cfg"):
        text = read_shipped(name)
        delays = re.findall(r"pool-purge-delay\s+(\S+)", text)
        check(delays and all(seconds(d) < kingx_idle_s for d in delays),
              f"{name}: pool-purge-delay {delays} not below kingx's {kingx_idle_s} s")
        check(re.search(r"timeout server\s+(\S+)", text), f"{name} sets no timeout server")


def start():
    global K, N
    K = Server(["--workers", "1", "--trusted-proxy", "127.0.0.1", "--access-log-format", "json",
                "--max-value-bytes", str(MAX_VALUE)])
    K.start()
    N = start_nginx("nginx-reverse-proxy.conf", [f"{HOST}:{K.port}"])


def test_put_get_head_delete_through_nginx():
    k = fresh_key()
    with Client(N.port) as c:
        r = c.request("PUT", key_path(k), b"hello nginx", [("Content-Type", "text/x-test")])
        check(r.status == 201 and re.fullmatch(r'"\d+"', r.header("ETag") or ""), f"PUT new: {r!r}")
        etag = r.header("ETag")
        r = c.request("GET", key_path(k))
        check(r.status == 200 and r.body == b"hello nginx", f"GET: {r!r}")
        check(r.header("ETag") == etag and r.header("Content-Type") == "text/x-test", f"GET headers: {r!r}")
        r = c.request("HEAD", key_path(k))
        check(r.status == 200 and r.body == b"" and r.header("Content-Length") == "11", f"HEAD: {r!r}")
        r = c.request("PUT", key_path(k), b"again")
        check(r.status == 204, f"PUT overwrite: {r!r}")
        check(c.request("DELETE", key_path(k)).status == 204, "DELETE")
        r = c.request("GET", key_path(k))
        check(r.status == 404 and r.header("Content-Type") == "application/problem+json", f"GET deleted: {r!r}")
        check(c.request("DELETE", key_path(k)).status == 404, "DELETE again")
        check(c.connections == 1, f"one client connection for all of it, used {c.connections}")



def test_a_put_without_length_gets_kingx_s_411_through_nginx():
    # nginx forwards it as sent (no Content-Length: 0 added), so kingx decides.
    k = fresh_key()
    check(http(N.port, "PUT", key_path(k), b"kept").status == 201, "PUT through nginx")
    for key in (k, fresh_key()):
        check_put_without_length_refused(N.port, key_path(key), "through nginx")
    check_put_without_length_refused(N.port, key_path(k), "with Expect through nginx", [("Expect", "100-continue")])

def chunked(body, piece):
    out = b""
    for i in range(0, len(body), piece):
        part = body[i:i + piece]
        out += b"%X\r\n%s\r\n" % (len(part), part)
    return out + b"0\r\n\r\n"


def test_chunked_put_through_nginx():
    k = fresh_key()
    body = os.urandom(300_000)
    with Client(N.port) as c:
        r = c.request("PUT", key_path(k), chunked(body, 7000), [("Transfer-Encoding", "chunked")])
        check(r.status == 201, f"chunked PUT: {r!r}")
        r = c.request("GET", key_path(k))
        check(r.status == 200 and r.body == body, f"GET after chunked PUT: {r.status}, {len(r.body)} bytes")


def body_temp_files():
    return [p for p in glob.glob(os.path.join(N.workdir, "body", "**"), recursive=True) if os.path.isfile(p)]


def test_32_mib_put_is_streamed_through_not_spooled():
    k = fresh_key()
    body = os.urandom(1 << 20) * 32
    with Client(N.port, timeout=120) as c:
        r = c.request("PUT", key_path(k), body)
        check(r.status == 201, f"32 MiB PUT: {r!r}")
        r = c.request("PUT", key_path(k + "-c"), chunked(body[: 16 << 20], 1 << 20),
                      [("Transfer-Encoding", "chunked")])
        check(r.status == 201, f"16 MiB chunked PUT: {r!r}")
        r = c.request("GET", key_path(k))
        check(r.status == 200 and hashlib.sha256(r.body).digest() == hashlib.sha256(body).digest(),
              f"GET 32 MiB: {r.status}, {len(r.body)} bytes")
    with open(os.path.join(N.workdir, "error.log"), errors="replace") as f:
        log = f.read()
    check("buffered to a temporary file" not in log, "nginx spooled a body to disk:\n" + log[-2000:])
    check(not body_temp_files(), f"nginx left body temp files: {body_temp_files()}")


def test_conditional_requests_and_errors_keep_their_status_codes():
    k = fresh_key()
    with Client(N.port) as c:
        etag = c.request("PUT", key_path(k), b"v1").header("ETag")
        r = c.request("GET", key_path(k), None, [("If-None-Match", etag)])
        check(r.status == 304 and r.header("ETag") == etag, f"If-None-Match: {r!r}")
        r = c.request("PUT", key_path(k), b"x", [("If-None-Match", "*")])
        check(r.status == 412 and r.header("Content-Type") == "application/problem+json", f"create-only: {r!r}")
        r = c.request("PUT", key_path(k), b"x", [("If-Match", '"1"')])
        check(r.status == 412, f"stale If-Match: {r!r}")
        r = c.request("DELETE", key_path(k), None, [("If-Match", etag)])
        check(r.status == 204, f"DELETE If-Match current: {r!r}")
        r = c.request("POST", key_path(k), b"x")
        check(r.status == 405 and r.header("Allow") == "GET, HEAD, PUT, DELETE", f"405: {r!r}")
        r = c.request("GET", "/v1/kv/" + "k" * 1025)
        check(r.status == 414 and r.json().get("limit") == 1024, f"414 from kingx: {r!r}")
        r = c.request("GET", "/nope")
        check(r.status == 404 and r.header("Content-Type") == "application/problem+json", f"404: {r!r}")
        # A non-canonical spelling: kingx's 308 and its relative Location pass unchanged.
        r = c.request("GET", f"/v1/kv/{k}%2fa?x=1")
        check(r.status == 308 and r.header("Location") == f"/v1/kv/{k}/a?x=1", f"308: {r!r}")
        r = c.request("GET", "/healthz")
        check(r.status == 200, f"/healthz through nginx: {r!r}")
    # 413 from kingx's own limit (below nginx's client_max_body_size), before the body: nginx
    # answers Expect itself (100), kingx refuses from the Content-Length alone.
    with Conn(N.port) as c:
        c.send(f"PUT {key_path(k)} HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX_VALUE + 1}\r\n"
               f"Expect: 100-continue\r\n\r\n".encode())
        r = c.read_response()
        while r.status < 200:
            r = c.read_response()
        check(r.status == 413 and r.json().get("limit") == MAX_VALUE, f"413 naming kingx's limit: {r!r}")


def test_nginx_own_refusals_of_a_readable_request_are_problem_json_naming_the_limit():
    # A body over client_max_body_size and a header line over nginx's buffer are refused by
    # nginx before kingx sees them: the client still gets kingx's form (status, problem+json,
    # the limit), not nginx's HTML page.
    sharding = start_nginx("nginx-sharding.conf", [f"{HOST}:{K.port}"] * 3)
    try:
        for name, proxy in (("nginx-reverse-proxy.conf", N), ("nginx-sharding.conf", sharding)):
            m = re.search(r"^\s*client_max_body_size\s+(\d+)m;", read_shipped(name), re.M)
            check(m, f"{name} sets no client_max_body_size in MiB")
            limit = int(m.group(1)) << 20
            with Conn(proxy.port) as c:
                c.send(f"PUT {key_path(fresh_key('over'))} HTTP/1.1\r\nHost: x\r\nContent-Length: {limit + 1}"
                       f"\r\n\r\n".encode())
                r = c.read_response()
            check(r.status == 413 and r.header("Content-Type") == "application/problem+json"
                  and r.json().get("limit") == limit, f"{name}: a body one byte over client_max_body_size: {r!r}")
            with Conn(proxy.port) as c:
                c.send(b"GET /v1/kv/x HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n")
                r = c.read_response()
            check(r.status == 431 and r.header("Content-Type") == "application/problem+json"
                  and r.json().get("limit") == 8192, f"{name}: a header line over nginx's 8 KiB buffer: {r!r}")
    finally:
        sharding.cleanup()


def access_log_docs(marker, count, timeout=15.0):
    deadline = time.monotonic() + timeout
    docs = []
    while time.monotonic() < deadline:
        with open(K.access_log, errors="replace") as f:
            docs = [json.loads(l) for l in f if marker in l]
        if len(docs) >= count:
            return docs
        time.sleep(0.1)
    raise TestFailure(f"{count} access log lines with {marker!r} expected, found {docs}")


def test_access_log_shows_the_real_client_address_and_request_id():
    k = fresh_key("log")
    # The client connects from 127.0.0.2 (nginx from 127.0.0.1, which kingx trusts) and tries to
    # spoof its address: kingx takes the right-most address its trusted proxy did not add itself.
    with Client(N.port, source="127.0.0.2") as c:
        r1 = c.request("GET", key_path(k + "-a"), None, [("X-Request-Id", "rid-from-client-1"),
                                                          ("X-Forwarded-For", "203.0.113.9")])
        r2 = c.request("GET", key_path(k + "-b"))
    check(r1.header("X-Request-Id") == "rid-from-client-1", f"the client's request id is echoed: {r1!r}")
    rid = r2.header("X-Request-Id") or ""
    check(re.fullmatch(r"[0-9a-f]{32}", rid), f"nginx's $request_id reaches kingx and comes back: {r2!r}")
    docs = access_log_docs(k, 2)
    values = [{str(v) for v in d.values()} for d in docs]
    a = next(v for v in values if any(x.endswith(k + "-a") for x in v))
    b = next(v for v in values if any(x.endswith(k + "-b") for x in v))
    check("127.0.0.2" in a and "203.0.113.9" not in a and "127.0.0.1" not in a,
          f"kingx logs the client's address, not nginx's nor the spoofed one: {docs}")
    check("rid-from-client-1" in a, f"the client's request id is logged: {docs}")
    check("127.0.0.2" in b and rid in b, f"nginx's request id is logged: {docs}")


def metric(name):
    r = http(K.port, "GET", "/metrics")
    m = re.search(r"^" + re.escape(name) + r" (\d+)", r.body.decode(), re.M)
    check(m, f"no {name} in /metrics")
    return int(m.group(1))


def test_upstream_connections_are_reused():
    before = metric("kingx_http_connections_opened_total")
    k = fresh_key("reuse")
    requests = 0
    for i in range(300):  # a new client connection for each request: the worst case for reuse
        with Client(N.port) as c:
            check(c.request("PUT" if i % 3 == 0 else "GET", key_path(f"{k}-{i % 50}"),
                            b"v" if i % 3 == 0 else None).status in (200, 201, 204, 404), "request")
            requests += 1
    opened = metric("kingx_http_connections_opened_total") - before - 2  # the two /metrics GETs
    check(opened <= 10, f"kingx saw {opened} new connections for {requests} requests through nginx")


def test_kingx_down_gives_502_with_connection_close_and_recovers():
    k = fresh_key("down")
    check(http(N.port, "PUT", key_path(k), b"before").status == 201, "PUT before")
    K.stop()
    with Client(N.port) as c:
        for method, body in (("GET", None), ("PUT", os.urandom(200_000))):
            r = c.request(method, key_path(k), body)
            check(r.status == 502, f"{method} with kingx down: {r!r}")
            check((r.header("Connection") or "").lower() == "close",
                  f"a 502 must say Connection: close (nginx closes the connection): {r!r}")
            check(r.header("Content-Type") == "application/problem+json" and r.json()["status"] == 502,
                  f"problem+json body: {r!r}")
    K.start()
    r = http(N.port, "GET", key_path(k))
    check(r.status == 200 and r.body == b"before", f"GET after kingx is back: {r!r}")


# ---------------------------------------------------------------- Debian's own layout

def debian_etc_nginx(port):
    """A copy of this machine's /etc/nginx (what Debian's nginx package installed) whose absolute
    paths point into a scratch directory, listening on 127.0.0.1:port instead of :80 (IPv6
    listen lines dropped), plus a conf.d file that moves nginx's temp paths to the scratch
    directory. Returns (directory, path of the copied nginx.conf)."""
    check(os.path.isfile("/etc/nginx/nginx.conf") and os.path.isfile("/etc/nginx/sites-available/default"),
          "Debian's /etc/nginx is missing (the suite's install step installs nginx)")
    d = tempfile.mkdtemp(prefix="kingx-debian-nginx-")
    etc = os.path.join(d, "etc-nginx")
    shutil.copytree("/etc/nginx", etc, symlinks=True)
    for sub in ("logs", "run"):
        os.makedirs(os.path.join(d, sub))
    conf = os.path.join(etc, "nginx.conf")
    text = open(conf).read()
    check("/etc/nginx/sites-enabled/" in text, "Debian's nginx.conf no longer includes sites-enabled")
    text = text.replace("/etc/nginx/", etc + "/")
    text = re.sub(r"^pid .*;$", f"pid {d}/run/nginx.pid;", text, flags=re.M)
    text = text.replace("/var/log/nginx/", f"{d}/logs/")
    open(conf, "w").write(text)
    with open(os.path.join(etc, "conf.d", "zz-test-paths.conf"), "w") as f:
        for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            f.write(f"{t}_temp_path {d}/{t};\n")
    # Debian's default site: only its port changes.
    default = os.path.join(etc, "sites-available", "default")
    text = open(default).read()
    text = rewrite(text, "\tlisten 80 default_server;\n", f"\tlisten {HOST}:{port} default_server;\n")
    text = rewrite(text, "\tlisten [::]:80 default_server;\n", "")
    open(default, "w").write(text)
    # The site links must point inside the copy.
    enabled = os.path.join(etc, "sites-enabled")
    for name in os.listdir(enabled):
        p = os.path.join(enabled, name)
        if os.path.islink(p):
            target = os.readlink(p).replace("/etc/nginx/", etc + "/")
            os.unlink(p)
            os.symlink(target, p)
    return d, etc


def install_site(etc, port, kingx_port, where):
    """Puts the shipped reverse proxy file where the header says (`sites`) or in conf.d."""
    from proxies import nginx_site
    text = nginx_site("nginx-reverse-proxy.conf", [f"{HOST}:{kingx_port}"], port)
    if where == "sites":
        with open(os.path.join(etc, "sites-available", "kingx"), "w") as f:
            f.write(text)
        os.symlink("../sites-available/kingx", os.path.join(etc, "sites-enabled", "kingx"))
    else:
        with open(os.path.join(etc, "conf.d", "kingx.conf"), "w") as f:
            f.write(text)


def nginx_t(etc, d):
    return subprocess.run([require("nginx"), "-t", "-c", os.path.join(etc, "nginx.conf"), "-e",
                           os.path.join(d, "logs", "error.log")], capture_output=True, text=True)


def test_installed_as_the_header_says_into_debians_etc_nginx_it_serves_kingx():
    port = free_port()
    for where in ("conf.d", "sites"):
        d, etc = debian_etc_nginx(port)
        try:
            install_site(etc, port, K.port, where)
            # With Debian's default site still enabled, both claim default_server: nginx -t
            # refuses, instead of silently serving Debian's welcome page (as a plain
            # `server_name _` file in conf.d did).
            t = nginx_t(etc, d)
            check(t.returncode != 0 and "duplicate default server" in t.stderr,
                  f"{where}: nginx -t with the default site enabled: {t.returncode} {t.stderr}")
            if where == "conf.d":
                continue
            os.unlink(os.path.join(etc, "sites-enabled", "default"))  # the header's `rm` step
            t = nginx_t(etc, d)
            check(t.returncode == 0 and "conflicting" not in t.stderr, f"nginx -t after the steps: {t.stderr}")
            p = Proxy("nginx", [require("nginx"), "-c", os.path.join(etc, "nginx.conf"), "-e",
                                os.path.join(d, "logs", "error.log"), "-g", "daemon off;"], d, port)
            # Proxy.logs() reads *.log in its directory: point it at the logs folder.
            p.workdir = os.path.join(d, "logs")
            p.start()
            try:
                k = fresh_key("debian")
                r = http(port, "PUT", key_path(k), b"through debian's nginx")
                check(r.status == 201, f"PUT through Debian's layout: {r!r}\n{p.logs()}")
                r = http(port, "GET", key_path(k))
                check(r.status == 200 and r.body == b"through debian's nginx", f"GET: {r!r}")
                r = http(port, "GET", "/v1/kv/absent-" + k)
                check(r.status == 404 and r.header("Content-Type") == "application/problem+json",
                      f"a 404 comes from kingx, not from nginx's default site: {r!r}")
            finally:
                p.stop()
        finally:
            if os.environ.get("KINGX_KEEP") != "1":
                shutil.rmtree(d, ignore_errors=True)


def main():
    exit_on_sigterm()
    require_bin()
    try:
        start()
        status = run_cases("kingx behind nginx (deploy/nginx-reverse-proxy.conf)", cases_of(globals()),
                           lambda: K)
    finally:
        for p in (N, K):
            if p is not None:
                p.cleanup()
    sys.exit(status)


if __name__ == "__main__":
    main()
