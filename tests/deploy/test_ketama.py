#!/usr/bin/env python3
"""deploy/kingx-reshard's ring against the real nginx: for rings of 1 to 5 servers (one of them
weighted), the shipped deploy/nginx-sharding.conf routes thousands of canonical key spellings,
and each one reaches the server the ring names. Also the ring's own properties (even shares,
what moves from 3 to 4 servers), which resharding relies on.

The upstreams here are tiny HTTP servers in this process that answer with their own port and
the request line they received, so the test sees nginx's choice and that the key reached the
shard spelled exactly as sent.
"""

import os
import random
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proxies import Client, exit_on_sigterm, load_reshard, start_nginx  # noqa: E402
from proxies import reshard as run_reshard  # noqa: E402
from kingx_harness import HOST, Conn, cases_of, check, run_cases  # noqa: E402

reshard = load_reshard()


class EchoServer:
    """Answers every request with 200 and '<port> <request line>'. Keep-alive, any number of
    connections, one thread each; daemon threads end with the test process."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind((HOST, 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = c.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                body = b"%d %s" % (self.port, head.split(b"\r\n")[0])
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        except OSError:
            return
        finally:
            c.close()


def random_spelling(rng):
    """A canonical key spelling: unreserved bytes, '/', and %XX escapes of other bytes."""
    literal = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/"
    out = []
    for _ in range(rng.randint(1, 40)):
        if rng.random() < 0.75:
            out.append(rng.choice(literal))
        else:
            # not 0x00: nginx refuses %00 in a path (README "Key spelling")
            b = rng.choice([b for b in range(1, 256) if chr(b) not in literal])
            out.append("%%%02X" % b)
    s = "".join(out)
    # A leading "./" or "../" segment is a dot segment that nginx resolves in $uri before
    # matching locations (README "Key spelling"); keep such keys out of the placement check.
    return s if not any(seg in (".", "..") for seg in s.split("/")) else "k" + s.replace(".", "_")


SERVERS = [EchoServer() for _ in range(5)]


def check_ring_against_nginx(names, keys):
    ring = reshard.Ring(names)
    check(not ring.collisions(), f"ring points collide: {ring.collisions()}")
    port_of = {f"{HOST}:{s.port}": s.port for s in SERVERS}
    nginx = start_nginx("nginx-sharding.conf", names)
    try:
        wrong = []
        with Client(nginx.port) as c:
            for k in keys:
                r = c.request("GET", "/v1/kv/" + k)
                check(r.status == 200, f"GET {k}: {r!r}\n{nginx.logs()}")
                port, line = r.body.split(b" ", 1)
                check(line == b"GET /v1/kv/%s HTTP/1.1" % k.encode(),
                      f"the shard got {line!r} for key spelling {k!r}")
                want = port_of[ring.owner(k).split()[0]]
                if int(port) != want:
                    wrong.append((k, int(port), want))
        check(not wrong, f"{len(wrong)} of {len(keys)} keys went elsewhere than the ring says, e.g. "
                         f"{wrong[:5]} (key, nginx's port, ring's port)")
    finally:
        nginx.cleanup()


def names(n, weights=None):
    return [f"{HOST}:{s.port}" + (f" weight={weights[i]}" if weights and weights[i] > 1 else "")
            for i, s in enumerate(SERVERS[:n])]


def test_the_ring_places_every_key_where_nginx_does():
    rng = random.Random(14)
    keys = [random_spelling(rng) for _ in range(2500)] + [f"user/{i}" for i in range(500)]
    for n in (1, 2, 3, 4, 5):
        check_ring_against_nginx(names(n), keys if n in (3, 4) else keys[:600])


def test_weights_multiply_a_servers_points_as_in_nginx():
    rng = random.Random(15)
    keys = [random_spelling(rng) for _ in range(1500)]
    check_ring_against_nginx(names(3, [1, 3, 1]), keys)


def test_host_and_port_are_split_as_nginx_does():
    split = reshard.split_host_port
    check(split("kv-01.internal:8080") == (b"kv-01.internal", b"8080"), "name:port")
    check(split("[::1]:8080") == (b"[::1]", b"8080"), "[v6]:port")
    check(split("kv-01.internal") == (b"kv-01.internal", b""), "name without port")
    check(split("unix:/run/kingx.sock") == (b"/run/kingx.sock", b""), "unix socket")
    check(split("host:") == (b"host", b""), "empty port")


def test_owner_names_the_shard_of_the_key_whatever_its_spelling():
    # kingx redirects every other spelling of a key to its canonical one, which is what the
    # proxy then hashes: `owner` given another spelling (raw UTF-8, lowercase hex, %2F) must
    # name the canonical spelling's shard, and print that spelling; a cut escape is refused.
    for ring, shards in (("nginx", "kv-01.internal:8080,kv-02.internal:8080,kv-03.internal:8080"),
                         ("haproxy", "kv-01.internal:8080 id=1,kv-02.internal:8080 id=2,kv-03.internal:8080 id=3")):
        for canonical, others in (("dir/caf%C3%A9", ["dir/café", "dir%2Fcaf%C3%A9", "dir/caf%c3%a9"]),
                                  ("a%20b%2Bc", ["a b+c", "a%20b+c"]), ("x/%25", ["x%2F%25"])):
            p = run_reshard("owner", "--ring", ring, "--shards", shards, canonical, *others)
            lines = p.stdout.splitlines()
            want = lines[0].split("\t")[0] + "\t" + canonical
            check(p.returncode == 0 and len(lines) == 1 + len(others) and all(line == want for line in lines),
                  f"{ring}: owner of {[canonical] + others}: every spelling must give {want!r}: "
                  f"exit {p.returncode}, {lines} {p.stderr}")
        for bad in ("a%2", "x%", "%zz/b"):
            p = run_reshard("owner", "--ring", ring, "--shards", shards, bad)
            check(p.returncode == 2 and "%" in p.stderr and not p.stdout,
                  f"{ring}: owner {bad!r} (kingx answers 400) must exit 2 naming the escape: {p.returncode} {p.stdout!r} {p.stderr!r}")


def test_shares_are_even_and_three_to_four_moves_about_a_quarter_all_to_the_new_shard():
    old = reshard.Ring(["kv-01.internal:8080", "kv-02.internal:8080", "kv-03.internal:8080"])
    new = reshard.Ring(["kv-01.internal:8080", "kv-02.internal:8080", "kv-03.internal:8080",
                        "kv-04.internal:8080"])
    keys = [f"k{i}" for i in range(10000)]
    shares = [0, 0, 0]
    moved = 0
    for k in keys:
        shares[old.owner_index(k)] += 1
        o, n = old.owner(k), new.owner(k)
        if o != n:
            moved += 1
            check(n == "kv-04.internal:8080", f"{k} moved from {o} to {n}, not to the new shard")
    check(all(2600 <= s <= 4100 for s in shares), f"uneven shares over 3 shards: {shares}")
    check(1800 <= moved <= 3300, f"{moved} of 10000 keys move from 3 to 4 shards (about 2500 expected)")


if __name__ == "__main__":
    exit_on_sigterm()
    sys.exit(run_cases("ketama ring vs nginx", cases_of(globals())))
