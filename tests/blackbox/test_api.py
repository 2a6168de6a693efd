"""API conformance of the real kingx binary through real sockets: the whole
HTTP contract the README states. Run with the serving model and worker count
under test, e.g.:

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_api.py --workers 2
    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_api.py --model threads --threads 8

Every case opens its own connections; with several workers, SO_REUSEPORT
spreads them, so reads after writes cross workers too.
"""

import argparse
import email.utils
import json
import random
import re
import socket
import time

from kingx_harness import (Conn, ConnectionClosed, Server, build_request, cases_of, check,
                           check_put_without_length_refused, http, key_path, parse_etag, run_with_server, wait_for)

MAX_VALUE = 4 << 20
TIMEOUT_MS = 2000
S = None  # the Server under test
# Connections a case keeps open at once: the thread pool serves as many as it
# has threads (the others wait, or are closed), so fewer there.
AT_ONCE = 24
RNG = random.Random(0x6B696E67)
_uniq = [0]


def P():
    return S.port


def fresh_key(tag="k"):
    _uniq[0] += 1
    return f"{tag}-{_uniq[0]}-{RNG.randrange(1 << 30)}"


def put(key, body, headers=None):
    return http(P(), "PUT", key_path(key), body, headers)


def get(key, headers=None, method="GET"):
    return http(P(), method, key_path(key), None, headers)


def expect_status(r, status, what):
    check(r.status == status, f"{what}: expected {status}, got {r!r}")


def expect_problem(r, status, what):
    """An RFC 9457 problem+json error with the given status."""
    expect_status(r, status, what)
    ct = (r.header("Content-Type") or "").split(";")[0].strip()
    check(ct == "application/problem+json", f"{what}: Content-Type {ct!r}, want application/problem+json")
    try:
        doc = r.json()
    except ValueError as e:
        raise AssertionError(f"{what}: problem body is not JSON ({e}): {r.body[:200]!r}")
    for field in ("type", "title", "status", "detail"):
        check(field in doc, f"{what}: problem+json lacks '{field}': {doc}")
    check(doc["status"] == status, f"{what}: problem status {doc['status']} != {status}")
    return doc


def expect_one_response_then_close(raw, statuses, what):
    """Sends `raw` (a bad request followed by a valid one in the same packet):
    exactly one response whose status is in `statuses`, then the server closes."""
    with Conn(P()) as c:
        c.send(raw)
        r = c.read_response()
        check(r.status in statuses, f"{what}: expected one of {statuses}, got {r!r}")
        rest = c.wait_closed(timeout=10)
        check(rest == "closed", f"{what}: after the error the connection must close with no "
                                f"second response; got {rest!r}")
    return r


# ------------------------------------------------------------------ basic CRUD

def test_put_new_is_201_with_strong_etag_and_overwrite_is_204():
    k = fresh_key()
    r1 = put(k, b"one")
    expect_status(r1, 201, "PUT new")
    e1 = parse_etag(r1.header("ETag"))
    check(e1 is not None, f"PUT 201 ETag must be a strong \"<seq>\": {r1.header('ETag')!r}")
    r2 = put(k, b"two")
    expect_status(r2, 204, "PUT overwrite")
    check(r2.body == b"", "204 carries no body")
    e2 = parse_etag(r2.header("ETag"))
    check(e2 is not None and e2 > e1, f"overwrite ETag {r2.header('ETag')} must be a larger seq than {e1}")


def test_get_returns_exact_bytes_length_etag_and_content_type():
    k = fresh_key()
    value = bytes(range(256)) * 3 + b"\r\n\r\n\x00tail"
    r = put(k, value, [("Content-Type", "text/plain; charset=utf-8")])
    expect_status(r, 201, "PUT")
    g = get(k)
    expect_status(g, 200, "GET")
    check(g.body == value, "GET must return the exact bytes")
    check(g.header("Content-Length") == str(len(value)), f"Content-Length {g.header('Content-Length')}")
    check(g.header("ETag") == r.header("ETag"), f"GET ETag {g.header('ETag')} != PUT ETag {r.header('ETag')}")
    check(g.header("Content-Type") == "text/plain; charset=utf-8", f"stored Content-Type: {g.header('Content-Type')!r}")


def test_content_type_defaults_to_octet_stream():
    k = fresh_key()
    expect_status(put(k, b"x"), 201, "PUT")
    g = get(k)
    check(g.header("Content-Type") == "application/octet-stream", f"default Content-Type: {g.header('Content-Type')!r}")


def test_head_has_get_headers_and_no_body():
    k = fresh_key()
    expect_status(put(k, b"0123456789", [("Content-Type", "image/png")]), 201, "PUT")
    with Conn(P()) as c:
        h = c.request("HEAD", key_path(k))
        expect_status(h, 200, "HEAD")
        check(h.header("Content-Length") == "10", f"HEAD Content-Length {h.header('Content-Length')}")
        check(h.header("Content-Type") == "image/png", "HEAD Content-Type")
        check(h.header("ETag") is not None, "HEAD ETag")
        # If HEAD had sent a body, it would be parsed as the next status line.
        g = c.request("GET", key_path(k))
        expect_status(g, 200, "GET after HEAD on the same connection")
        check(g.body == b"0123456789", "GET after HEAD body")
    missing = get(fresh_key(), method="HEAD")
    expect_status(missing, 404, "HEAD missing key")


def test_delete_is_204_then_404_and_the_key_is_gone():
    k = fresh_key()
    expect_status(put(k, b"v"), 201, "PUT")
    expect_status(http(P(), "DELETE", key_path(k)), 204, "DELETE existing")
    expect_status(http(P(), "DELETE", key_path(k)), 404, "DELETE again")
    expect_problem(get(k), 404, "GET deleted")
    expect_status(put(k, b"again"), 201, "PUT after DELETE creates anew")


def test_get_missing_is_404_problem_json():
    expect_problem(get(fresh_key()), 404, "GET missing")


def test_empty_and_large_values_round_trip():
    k = fresh_key()
    expect_status(put(k, b""), 201, "PUT empty")
    g = get(k)
    check(g.status == 200 and g.body == b"" and g.header("Content-Length") == "0", f"GET empty: {g!r}")
    big_random = RNG.randbytes(3 << 20)
    big_text = b"".join(b"line %07d of a compressible value\n" % i for i in range(90000))[:3 << 20]
    for i, v in enumerate((big_random, big_text)):
        k = fresh_key("big")
        expect_status(put(k, v), 201, f"PUT big #{i}")
        g = get(k)
        check(g.status == 200 and g.body == v, f"GET big #{i}: status {g.status}, {len(g.body)} bytes")



def test_put_without_length_is_411_and_stores_nothing():
    # A PUT that lost its framing header must not overwrite a value with
    # nothing (RFC 9112 would read it as an empty body): 411 naming the header,
    # the connection kept since no body follows; Content-Length: 0 stays a
    # valid empty value.
    k, absent = fresh_key(), fresh_key()
    expect_status(put(k, b"kept"), 201, "PUT the value a bare PUT must not replace")
    for key in (k, absent):
        check_put_without_length_refused(P(), key_path(key), "PUT")
    check_put_without_length_refused(P(), key_path(k), "PUT with Expect", [("Expect", "100-continue")])
    with Conn(P()) as c:
        for extra in ([], [("Content-Type", "text/plain")]):
            c.send(build_request("PUT", key_path(k), None, extra))
            expect_problem(c.read_response(), 411, f"PUT with no length {extra}")
        c.send(build_request("GET", key_path(k)))
        r = c.read_response()
        check(r.status == 200 and r.body == b"kept", f"the value is unchanged, on the same connection: {r!r}")
    with Conn(P()) as c:
        c.send(build_request("PUT", key_path(absent), None, version="HTTP/1.0", host=False))
        expect_problem(c.read_response(), 411, "HTTP/1.0 PUT with no Content-Length")
    expect_status(get(absent), 404, "nothing stored under a new key")
    expect_status(put(k, b""), 204, "Content-Length: 0 is a valid empty value")
    check(get(k).body == b"", "the empty value is stored")

def test_read_your_writes_across_connections():
    # Each PUT and GET on its own connection: with several workers they land on
    # different workers, which share one index.
    for i in range(20):
        k = fresh_key("ryw")
        v = b"value-%d" % i
        expect_status(put(k, v), 201, "PUT")
        g = get(k)
        check(g.status == 200 and g.body == v, f"GET after PUT on another connection: {g!r}")


# ------------------------------------------------------------------ conditionals

def test_if_none_match_on_get_and_head_gives_304():
    k = fresh_key()
    etag = put(k, b"cached").header("ETag")
    for method in ("GET", "HEAD"):
        r = get(k, [("If-None-Match", etag)], method)
        expect_status(r, 304, f"{method} If-None-Match current")
        check(r.body == b"", "304 has no body")
        check(r.header("ETag") == etag, f"304 carries the ETag: {r!r}")
    r = get(k, [("If-None-Match", '"1", ' + etag)])
    expect_status(r, 304, "If-None-Match list containing the current ETag")
    r = get(k, [("If-None-Match", '"999999999999"')])
    expect_status(r, 200, "If-None-Match other ETag")
    r = get(k, [("If-None-Match", "*")])
    expect_status(r, 304, "If-None-Match * on existing key")


def test_put_if_none_match_star_is_create_only():
    k = fresh_key()
    expect_status(put(k, b"first", [("If-None-Match", "*")]), 201, "create-only on absent key")
    expect_problem(put(k, b"second", [("If-None-Match", "*")]), 412, "create-only on existing key")
    check(get(k).body == b"first", "a failed create-only PUT must not change the value")


def test_put_if_match_is_compare_and_set():
    k = fresh_key()
    e1 = put(k, b"v1").header("ETag")
    r = put(k, b"v2", [("If-Match", e1)])
    expect_status(r, 204, "If-Match current")
    e2 = r.header("ETag")
    expect_problem(put(k, b"v3", [("If-Match", e1)]), 412, "If-Match stale")
    check(get(k).body == b"v2", "stale CAS must not write")
    expect_problem(put(fresh_key(), b"x", [("If-Match", e2)]), 412, "If-Match on absent key")


def test_delete_if_match():
    k = fresh_key()
    e1 = put(k, b"v1").header("ETag")
    put(k, b"v2")
    expect_problem(http(P(), "DELETE", key_path(k), None, [("If-Match", e1)]), 412, "DELETE If-Match stale")
    e2 = get(k).header("ETag")
    expect_status(http(P(), "DELETE", key_path(k), None, [("If-Match", e2)]), 204, "DELETE If-Match current")
    expect_status(get(k), 404, "deleted")


# ------------------------------------------------------------------ keys

def test_keys_are_percent_decoded_and_binary_safe():
    pairs = [b"a\x00b", b"a", b"\xff\xfe\x00\x01", b"with space", b"slash/inside", b"%25", b"\x00"]
    keys = [(k + b"-" + fresh_key().encode()) for k in pairs]
    for i, k in enumerate(keys):
        expect_status(put(k, b"value %d" % i), 201, f"PUT key {k!r}")
    for i, k in enumerate(keys):
        g = get(k)
        check(g.status == 200 and g.body == b"value %d" % i, f"GET key {k!r}: {g!r}")
    # %00 is a byte of the key, not an end: "a%00b" and "a" differ.
    base = fresh_key().encode()
    expect_status(put(base + b"\x00x", b"with-nul"), 201, "PUT key with NUL")
    expect_status(get(base), 404, "key prefix before NUL is another key")


def test_other_spellings_of_a_key_are_redirected_to_the_canonical_one():
    # %2F and '/' decode to the same key, %41 to 'A', %c3%a9 and raw UTF-8 to
    # the same bytes: each key is served under one spelling only (unreserved
    # bytes and '/' as themselves, the rest %XX uppercase), so a proxy that
    # hashes the path sends every request for it to one shard. The others get
    # 308 to it, before any storage access, whatever the method.
    k = fresh_key()
    canonical = f"/v1/kv/{k}/zA%C3%A9%2B"
    for spelling in (f"/v1/kv/{k}%2Fz%41%c3%a9%2b".encode(), f"/v1/kv/{k}%2fzA%C3%A9+".encode(),
                     f"/v1/kv/{k}/z%41".encode() + b"\xc3\xa9%2B"):  # raw UTF-8
        for method, body in (("PUT", b"written under another spelling"), ("GET", None),
                             ("HEAD", None), ("DELETE", None)):
            r = http(P(), method, spelling, body)
            check(r.status == 308 and r.reason == "Permanent Redirect", f"{method} {spelling!r}: expected 308, got {r!r}")
            check(r.header("Location") == canonical, f"{method} {spelling!r}: Location {r.header('Location')!r}")
    expect_status(http(P(), "GET", canonical), 404, "nothing was written through a redirected spelling")
    expect_status(http(P(), "PUT", canonical, b"decoded"), 201, "PUT canonical")
    g = http(P(), "GET", canonical)
    check(g.status == 200 and g.body == b"decoded", f"GET canonical: {g!r}")
    # The query string travels with the redirect; the connection stays usable
    # after a redirected PUT whose body was skipped.
    with Conn(P()) as c:
        r = c.request("PUT", f"/v1/kv/{k}%2fq?x=1", b"skipped body")
        check(r.status == 308 and r.header("Location") == f"/v1/kv/{k}/q?x=1", f"PUT with query: {r!r}")
        expect_status(c.request("GET", canonical), 200, "next request on the same connection")
    expect_status(http(P(), "GET", f"/v1/kv/{k}/q"), 404, "the redirected PUT wrote nothing")


def test_keys_differing_only_in_their_last_byte_are_distinct():
    # Found against the first binary: 8- and 9-byte keys differing in the last
    # byte were one key to the server (second PUT answered 204).
    for n in (1, 4, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64):
        stem = fresh_key("d").encode()[:n - 1].ljust(n - 1, b"s")
        a, b = stem + b"1", stem + b"2"
        expect_status(put(a, b"A"), 201, f"PUT {a!r}")
        expect_status(put(b, b"B"), 201, f"PUT {b!r} (a different key of {n} bytes)")
        check(get(a).body == b"A" and get(b).body == b"B", f"{n}-byte keys {a!r} and {b!r} mixed up")


def test_key_does_not_depend_on_the_headers_that_follow():
    # Found against the first binary: GET with "Host: 127.0.0.1:PORT" (what
    # wrk and curl send) missed a key that "Host: 127.0.0.1" found.
    k = fresh_key("hosts")
    expect_status(put(k, b"same key"), 201, "PUT")
    variants = [[("Host", "127.0.0.1")], [("Host", f"127.0.0.1:{P()}")], [("Host", "localhost.localdomain:65535")],
                [("Host", "h"), ("User-Agent", "x" * 300), ("Accept", "*/*")],
                [("Host", "h"), ("X-Pad", "y" * 4000)]]
    for hdrs in variants:
        with Conn(P()) as c:
            c.send(build_request("GET", key_path(k), None, hdrs))
            r = c.read_response()
            check(r.status == 200 and r.body == b"same key", f"GET with headers {[h[0] for h in hdrs]} "
                                                               f"({hdrs[0][1]}): {r!r}")
        with Conn(P()) as c:
            c.send(build_request("PUT", key_path(k + "-w"), b"v", hdrs))
            check(c.read_response().status in (201, 204), "PUT with these headers")
        check(get(k + "-w").body == b"v", f"PUT with headers {[h[0] for h in hdrs]} stored under another key")


def test_body_arriving_after_the_headers():
    # Found against the first binary: a body that did not come in the same
    # read as the headers wedged the worker (100% CPU, nothing answered).
    for size, split in ((10, 0), (1000, 500), (40000, 20000)):
        k = fresh_key("late")
        body = RNG.randbytes(size)
        with Conn(P()) as c:
            c.send(build_request("PUT", key_path(k), None, [("Content-Length", str(size))]) + body[:split])
            time.sleep(0.2)
            c.send(body[split:])
            expect_status(c.read_response(), 201, f"PUT of {size} bytes, {split} sent with the headers")
        check(get(k).body == body, f"value of the {size}-byte PUT sent in two parts")


def test_empty_key_is_the_listing_and_overlong_key_is_414():
    # /v1/kv/ (no key) is the listing: reads only, never a write to an empty key.
    for method in ("PUT", "DELETE"):
        r = http(P(), method, "/v1/kv/", b"x" if method == "PUT" else None)
        expect_problem(r, 405, f"{method} /v1/kv/")
        check(r.header("Allow") == "GET, HEAD", f"Allow on {method} /v1/kv/: {r.header('Allow')!r}")
    listing = []
    wait_for(lambda: listing.append(http(P(), "GET", "/v1/kv/")) or listing[-1].status != 503, 30,
             "the sorted key view (listing answers 503 while it is built)")
    expect_status(listing[-1], 200, "GET /v1/kv/")
    check(isinstance(listing[-1].json().get("keys"), list), f"GET /v1/kv/ is not a listing: {listing[-1]!r}")
    k1024 = b"k" * 1024
    expect_status(put(k1024, b"max key"), 201, "1024-byte key (the default maximum)")
    check(get(k1024).body == b"max key", "GET 1024-byte key")
    expect_problem(put(b"k" * 1025, b"x"), 414, "1025-byte key")
    # The limit is on decoded bytes: 1024 bytes written as %XX are 3072 URL chars.
    enc = "/v1/kv/" + "%01" * 1024
    expect_status(http(P(), "PUT", enc, b"encoded max"), 201, "1024 decoded bytes sent percent-encoded")


def test_bad_percent_encoding_is_400():
    for path in ("/v1/kv/%zz", "/v1/kv/abc%4", "/v1/kv/%"):
        r = http(P(), "GET", path)
        expect_problem(r, 400, f"GET {path}")


# ------------------------------------------------------------------ other endpoints and errors

def test_healthz_readyz_and_metrics():
    for method in ("GET", "HEAD"):
        expect_status(http(P(), method, "/healthz"), 200, f"{method} /healthz")
        expect_status(http(P(), method, "/readyz"), 200, f"{method} /readyz")
    m = http(P(), "GET", "/metrics")
    expect_status(m, 200, "/metrics")
    ct = m.header("Content-Type") or ""
    check(ct.startswith("text/plain"), f"/metrics Content-Type {ct!r}")
    text = m.body.decode("utf-8")
    sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? [-+0-9.eEInfa]+( \d+)?$')
    samples = 0
    for line in text.splitlines():
        if not line or line.startswith("#"):
            check(not line.startswith("# TYPE") or len(line.split()) == 4, f"bad TYPE line {line!r}")
            continue
        check(sample.match(line), f"/metrics line is not Prometheus text format: {line!r}")
        samples += 1
    check(samples >= 5, f"/metrics has only {samples} samples")
    check("# TYPE" in text, "/metrics declares metric types")


def test_metrics_count_requests():
    def total_requests():
        text = http(P(), "GET", "/metrics").body.decode()
        tot = 0.0
        for line in text.splitlines():
            name = line.split("{")[0].split(" ")[0]
            if not line.startswith("#") and "request" in name and name.endswith("_total"):
                tot += float(line.rsplit(" ", 1)[1])
        return tot
    before = total_requests()
    check(before > 0, "no *request*_total counter in /metrics")
    for _ in range(30):
        get(fresh_key())
    # Counters aggregate every worker; the scrape may land on another worker
    # than the requests, so allow aggregation to be slightly delayed (bounded).
    deadline = time.monotonic() + 5
    after = total_requests()
    while after < before + 30 and time.monotonic() < deadline:
        time.sleep(0.2)
        after = total_requests()
    check(after >= before + 30, f"request counters went from {before} to {after} after 30 requests")


def test_unknown_path_404_and_wrong_method_405_with_allow():
    expect_problem(http(P(), "GET", "/nope"), 404, "unknown path")
    expect_problem(http(P(), "GET", "/v1/other/x"), 404, "unknown path under /v1")
    r = http(P(), "POST", key_path(fresh_key()), b"x")
    expect_problem(r, 405, "POST on a key")
    allow = {m.strip() for m in (r.header("Allow") or "").split(",")}
    check({"GET", "HEAD", "PUT", "DELETE"} <= allow, f"Allow on /v1/kv: {r.header('Allow')!r}")
    r = http(P(), "PUT", "/healthz", b"")
    expect_problem(r, 405, "PUT /healthz")
    allow = {m.strip() for m in (r.header("Allow") or "").split(",")}
    check("GET" in allow and "PUT" not in allow, f"Allow on /healthz: {r.header('Allow')!r}")


def test_every_response_has_date_and_length_or_chunked():
    k = fresh_key()
    responses = [put(k, b"x"), put(k, b"y"), get(k), get(k, method="HEAD"), get(fresh_key()),
                 http(P(), "GET", "/healthz"), http(P(), "GET", "/metrics"), http(P(), "POST", "/v1/kv/x", b""),
                 http(P(), "DELETE", key_path(k)), http(P(), "GET", "/v1/kv/")]
    for r in responses:
        d = r.header("Date")
        check(d is not None, f"no Date on {r!r}")
        check(re.fullmatch(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT", d),
              f"Date is not IMF-fixdate: {d!r}")
        parsed = email.utils.parsedate_to_datetime(d).timestamp()
        check(abs(parsed - time.time()) < 120, f"Date {d!r} is not now")
        if r.status not in (204, 304):
            check(r.header("Content-Length") is not None or r.header("Transfer-Encoding") == "chunked",
                  f"no Content-Length on {r!r}")


def test_request_id_is_echoed_or_generated():
    r = http(P(), "GET", "/healthz", None, [("X-Request-Id", "bb-req-42")])
    check(r.header("X-Request-Id") == "bb-req-42", f"X-Request-Id echo: {r.header('X-Request-Id')!r}")
    a = http(P(), "GET", "/healthz").header("X-Request-Id")
    b = http(P(), "GET", "/healthz").header("X-Request-Id")
    check(a and b and a != b, f"generated X-Request-Id must be present and unique: {a!r} {b!r}")


# ------------------------------------------------------------------ connections

def test_keep_alive_by_default_on_http11():
    with Conn(P()) as c:
        for i in range(5):
            r = c.request("GET", "/healthz")
            expect_status(r, 200, f"request {i} on one connection")
            check((r.header("Connection") or "").lower() != "close", "HTTP/1.1 keeps the connection")
        ka = r.header("Keep-Alive") or ""
        check(re.search(r"timeout=\d+", ka), f"Keep-Alive: timeout=N advertised: {ka!r}")


def test_http10_closes_unless_keep_alive_requested():
    with Conn(P()) as c:
        r = c.request("GET", "/healthz", version="HTTP/1.0", host=False)
        expect_status(r, 200, "HTTP/1.0 GET")
        check(c.wait_closed() == "closed", "HTTP/1.0 without keep-alive must close")
    with Conn(P()) as c:
        for i in range(2):
            r = c.request("GET", "/healthz", headers=[("Connection", "keep-alive")], version="HTTP/1.0")
            expect_status(r, 200, f"HTTP/1.0 keep-alive request {i}")
            check((r.header("Connection") or "").lower() == "keep-alive", f"keep-alive echoed: {r!r}")


def test_connection_close_is_honoured_and_echoed():
    with Conn(P()) as c:
        c.send(build_request("GET", "/healthz", headers=[("Connection", "close")])
               + build_request("GET", "/healthz"))
        r = c.read_response()
        expect_status(r, 200, "GET with Connection: close")
        check((r.header("Connection") or "").lower() == "close", f"Connection: close echoed: {r!r}")
        check(c.wait_closed() == "closed", "server must close after Connection: close, ignoring later bytes")


def test_pipelined_put_then_get_sees_the_put():
    k = fresh_key()
    missing = fresh_key()
    with Conn(P()) as c:
        c.send(build_request("PUT", key_path(k), b"pipelined")
               + build_request("GET", key_path(k))
               + build_request("GET", key_path(missing))
               + build_request("DELETE", key_path(k))
               + build_request("GET", key_path(k))
               + build_request("PUT", key_path(k), b"second")
               + build_request("HEAD", key_path(k)))
        statuses = []
        r = c.read_response(); statuses.append(r.status)
        r = c.read_response(); statuses.append(r.status)
        check(r.body == b"pipelined", f"pipelined GET must see the PUT before it: {r!r}")
        for head in (False, False, False, False, True):
            statuses.append(c.read_response(head=head).status)
        check(statuses == [201, 200, 404, 204, 404, 201, 200], f"pipelined statuses in order: {statuses}")


def test_many_pipelined_requests_answered_in_order():
    keys = [fresh_key("pipe") for _ in range(60)]
    for i, k in enumerate(keys[:30]):
        expect_status(put(k, b"v%d" % i), 201, "setup PUT")
    with Conn(P()) as c:
        c.send(b"".join(build_request("GET", key_path(k)) for k in keys))
        for i, k in enumerate(keys):
            r = c.read_response()
            if i < 30:
                check(r.status == 200 and r.body == b"v%d" % i, f"pipelined response {i} out of order: {r!r}")
            else:
                check(r.status == 404, f"pipelined response {i}: {r!r}")


def test_reads_sent_on_many_connections_at_once_are_answered_in_order_on_each():
    # Every connection's bytes are sent before any answer is read, so that the
    # server finds many of them ready in one turn of its loop (the event model
    # then holds the reads that start with a GET and serves them together).
    # Each connection's answers must still follow its own requests, whatever
    # they are pipelined behind the first GET. The connections of a round are
    # opened after its setup PUTs: opened before, they would sit idle through
    # those durable writes, which on a busy machine outlast the keep-alive
    # (and header) timeout of this suite, and the server would rightly close them.
    conns = []
    try:
        for rnd in range(4):
            keys = [fresh_key(f"many{rnd}") for _ in range(AT_ONCE)]
            for i, k in enumerate(keys):
                expect_status(put(k, b"old-%d" % i), 201, "setup PUT")
            missing = fresh_key("many-missing")
            for c in conns:
                c.close()
            conns = [Conn(P()) for _ in range(AT_ONCE)]
            for i, (c, k) in enumerate(zip(conns, keys)):
                if i % 3 == 0:
                    c.send(build_request("GET", key_path(k)))
                elif i % 3 == 1:
                    c.send(build_request("GET", key_path(k))
                           + build_request("PUT", key_path(k), b"new-%d" % i)
                           + build_request("GET", key_path(k))
                           + build_request("HEAD", key_path(k))
                           + build_request("DELETE", key_path(k))
                           + build_request("GET", key_path(k))
                           + build_request("GET", key_path(missing)))
                else:
                    c.send(build_request("HEAD", key_path(k)) + build_request("GET", key_path(k) + "?x=1"))
            for i, (c, k) in enumerate(zip(conns, keys)):
                what = f"round {rnd}, connection {i}"
                if i % 3 == 0:
                    r = c.read_response()
                    check(r.status == 200 and r.body == b"old-%d" % i, f"{what}: {r!r}")
                elif i % 3 == 1:
                    r = c.read_response()
                    check(r.status == 200 and r.body == b"old-%d" % i, f"{what}, first GET: {r!r}")
                    expect_status(c.read_response(), 204, f"{what}, PUT over it")
                    r = c.read_response()
                    check(r.status == 200 and r.body == b"new-%d" % i, f"{what}, GET after the PUT: {r!r}")
                    r = c.read_response(head=True)
                    check(r.status == 200 and r.header("Content-Length") == str(len(b"new-%d" % i)),
                          f"{what}, HEAD: {r!r}")
                    expect_status(c.read_response(), 204, f"{what}, DELETE")
                    expect_status(c.read_response(), 404, f"{what}, GET after the DELETE")
                    expect_status(c.read_response(), 404, f"{what}, GET of a missing key")
                else:
                    r = c.read_response(head=True)
                    check(r.status == 200 and r.body == b"", f"{what}, HEAD: {r!r}")
                    r = c.read_response()
                    check(r.status == 200 and r.body == b"old-%d" % i, f"{what}, GET with a query: {r!r}")
    finally:
        for c in conns:
            c.close()


def test_a_large_value_read_among_many_connections_reads_is_sent_whole_and_in_order():
    # A value too large to go out in one write (its rest is sent
    # asynchronously, or streamed while it is decoded) read on several
    # connections at once, each with smaller reads pipelined behind it.
    big = fresh_key("big")
    small = fresh_key("small")
    value = bytes(RNG.getrandbits(8) for _ in range(1 << 16)) * 24 + b"x" * (1 << 20)  # 2.5 MiB
    expect_status(put(big, value), 201, "setup PUT of the large value")
    expect_status(put(small, b"small"), 201, "setup PUT")
    conns = [Conn(P()) for _ in range(min(6, AT_ONCE))]
    try:
        for c in conns:
            c.send(build_request("GET", key_path(small)) + build_request("GET", key_path(big))
                   + build_request("GET", key_path(small)) + build_request("HEAD", key_path(big)))
        for i, c in enumerate(conns):
            r = c.read_response()
            check(r.status == 200 and r.body == b"small", f"connection {i}, first GET: {r!r}")
            r = c.read_response()
            check(r.status == 200 and r.body == value, f"connection {i}: the large value whole "
                                                       f"({len(r.body)} of {len(value)} bytes)")
            r = c.read_response()
            check(r.status == 200 and r.body == b"small", f"connection {i}, GET after the large one: {r!r}")
            r = c.read_response(head=True)
            check(r.status == 200 and r.header("Content-Length") == str(len(value)), f"connection {i}, HEAD: {r!r}")
    finally:
        for c in conns:
            c.close()


def test_a_read_sent_with_the_end_of_input_on_many_connections_is_answered():
    # GET then FIN at once, on many connections: the answer comes before the
    # close, whatever turn of the loop sees the end of input.
    k = fresh_key("fin")
    expect_status(put(k, b"fin-value"), 201, "setup PUT")
    conns = [Conn(P()) for _ in range(min(16, AT_ONCE))]
    try:
        for c in conns:
            c.send(build_request("GET", key_path(k)))
            c.sock.shutdown(socket.SHUT_WR)
        for i, c in enumerate(conns):
            r = c.read_response()
            check(r.status == 200 and r.body == b"fin-value", f"connection {i}: {r!r}")
            check(c.wait_closed() == "closed", f"connection {i}: closes after the answer")
    finally:
        for c in conns:
            c.close()


def test_request_split_one_byte_at_a_time():
    k = fresh_key()
    raw = build_request("PUT", key_path(k), b"slow body", [("Content-Type", "text/x-slow")])
    with Conn(P()) as c:
        for i in range(len(raw)):
            c.send(raw[i:i + 1])
            if i % 16 == 0:
                time.sleep(0.001)
        expect_status(c.read_response(), 201, "byte-at-a-time PUT")
    check(get(k).body == b"slow body", "value of byte-at-a-time PUT")


def test_expect_100_continue():
    k = fresh_key()
    with Conn(P()) as c:
        c.send(build_request("PUT", key_path(k), None, [("Content-Length", "5"), ("Expect", "100-continue")]))
        r = c.read_response()
        expect_status(r, 100, "interim response before the body")
        c.send(b"hello")
        expect_status(c.read_response(), 201, "final response after the body")
    check(get(k).body == b"hello", "value sent after 100 Continue")
    # Refusable from the headers: the final status at once, no 100.
    with Conn(P()) as c:
        c.send(build_request("PUT", key_path(fresh_key()), None,
                             [("Content-Length", str(MAX_VALUE + 1)), ("Expect", "100-continue")]))
        r = c.read_response()
        expect_problem(r, 413, "Expect with Content-Length over the limit")
    with Conn(P()) as c:
        c.send(build_request("PUT", key_path(k), None,
                             [("Content-Length", "5"), ("Expect", "100-continue"), ("If-None-Match", "*")]))
        r = c.read_response()
        expect_status(r, 412, "Expect with a precondition that already fails")
    check(get(k).body == b"hello", "refused PUT did not write")


def test_chunked_request_body():
    k = fresh_key()
    body = b"5\r\nhello\r\n1;ext=1\r\n \r\n6\r\nworld!\r\n0\r\n\r\n"
    raw = build_request("PUT", key_path(k), body, [("Transfer-Encoding", "chunked")])
    with Conn(P()) as c:
        c.send(raw + build_request("GET", key_path(k)))
        expect_status(c.read_response(), 201, "chunked PUT")
        g = c.read_response()
        check(g.status == 200 and g.body == b"hello world!", f"GET of chunked PUT: {g!r}")


# ------------------------------------------------------------------ limits

def test_body_over_limit_is_413_from_content_length():
    k = fresh_key()
    with Conn(P()) as c:
        c.send(build_request("PUT", key_path(k), None, [("Content-Length", str(MAX_VALUE + 1))]))
        doc = expect_problem(c.read_response(), 413, "Content-Length over max value")
        check(str(MAX_VALUE) in json.dumps(doc), f"413 problem names the limit {MAX_VALUE}: {doc}")
    expect_status(get(k), 404, "nothing stored")
    exact = RNG.randbytes(MAX_VALUE)
    expect_status(put(k, exact), 201, "a value of exactly the limit")


def test_chunked_body_over_limit_is_413():
    k = fresh_key()
    with Conn(P()) as c:
        c.send(build_request("PUT", key_path(k), None, [("Transfer-Encoding", "chunked")]))
        piece = b"z" * (256 << 10)
        chunk = b"%x\r\n" % len(piece) + piece + b"\r\n"
        sent = 0
        try:
            while sent <= MAX_VALUE + len(piece):
                c.send(chunk)
                sent += len(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may close as soon as it has answered
        r = c.read_response()
        expect_problem(r, 413, "chunked body over max value")
    expect_status(get(k), 404, "nothing stored")


def test_header_limits_431_and_request_line_414():
    big = [("X-Big", "a" * (17 << 10))]
    r = expect_one_response_then_close(build_request("GET", "/healthz", None, big)
                                       + build_request("GET", "/healthz"), (431,), "17 KiB header")
    many = [(f"X-H{i}", "v") for i in range(101)]
    expect_one_response_then_close(build_request("GET", "/healthz", None, many)
                                   + build_request("GET", "/healthz"), (431,), "101 header fields")
    ok = [(f"X-H{i}", "v") for i in range(90)]
    expect_status(http(P(), "GET", "/healthz", None, ok), 200, "90 header fields are fine")
    expect_one_response_then_close(build_request("GET", "/v1/kv/" + "u" * (20 << 10))
                                   + build_request("GET", "/healthz"), (414,), "20 KiB request line")


def test_header_timeout_is_408_then_close():
    with Conn(P(), timeout=TIMEOUT_MS / 1000 * 5 + 10) as c:
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        r = c.read_response()
        expect_status(r, 408, "incomplete header section")
        check(c.wait_closed() == "closed", "408 then close")


def test_body_timeout_is_408_then_close():
    k = fresh_key()
    with Conn(P(), timeout=TIMEOUT_MS / 1000 * 5 + 10) as c:
        c.send(build_request("PUT", key_path(k), None, [("Content-Length", "10")]) + b"abc")
        r = c.read_response()
        expect_status(r, 408, "stalled body")
        check(c.wait_closed() == "closed", "408 then close")
    expect_status(get(k), 404, "a timed-out PUT stores nothing")


def test_idle_keep_alive_connection_is_closed():
    with Conn(P()) as c:
        expect_status(c.request("GET", "/healthz"), 200, "first request")
        check(c.wait_closed(timeout=TIMEOUT_MS / 1000 * 5 + 10) == "closed",
              "idle keep-alive connection must be closed after the keep-alive timeout")


# ------------------------------------------------------------------ strictness

FOLLOW = build_request("GET", "/healthz")

SMUGGLING = [
    ("CL and TE together", b"PUT /v1/kv/smug HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", (400,)),
    ("TE and CL together", b"PUT /v1/kv/smug HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
     b"Content-Length: 4\r\n\r\n0\r\n\r\n", (400,)),
    ("duplicate Content-Length", b"PUT /v1/kv/smug HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
     b"Content-Length: 3\r\n\r\nabc", (400,)),
    ("Content-Length list", b"PUT /v1/kv/smug HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc", (400,)),
    ("negative Content-Length", b"PUT /v1/kv/smug HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", (400,)),
    ("TE identity,chunked", b"PUT /v1/kv/smug HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity, chunked\r\n"
     b"\r\n0\r\n\r\n", (400, 501)),
    ("TE xchunked", b"PUT /v1/kv/smug HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
     (400, 501)),
    ("obs-fold TE", b"PUT /v1/kv/smug HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
     (400,)),
    ("space before colon", b"PUT /v1/kv/smug HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
     (400,)),
    ("TE on HTTP/1.0", b"PUT /v1/kv/smug HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     (400,)),
    ("bad chunk size", b"PUT /v1/kv/smug HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
     (400,)),
    ("chunk size overflow", b"PUT /v1/kv/smug HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"FFFFFFFFFFFFFFFFF\r\nab\r\n0\r\n\r\n", (400, 413)),
    ("missing Host on 1.1", b"GET /healthz HTTP/1.1\r\n\r\n", (400,)),
    ("duplicate Host", b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", (400,)),
    ("HTTP/0.9 request", b"GET /healthz\r\n\r\n", (400, 505)),
    ("bare LF line ends", b"GET /healthz HTTP/1.1\nHost: x\n\n", (400,)),
    ("unknown major version", b"GET /healthz HTTP/3.0\r\nHost: x\r\n\r\n", (505,)),
    ("not HTTP", b"GET /healthz RTSP/1.0\r\nHost: x\r\n\r\n", (400,)),
    ("bare CR ending the head", b"GET /healthz HTTP/1.1\r\nHost: x\r\n\rX", (400,)),
    ("no CRLF after chunk data", b"PUT /v1/kv/smug HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"1\r\nab0\r\n\r\n", (400,)),
    ("NUL in header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", (400,)),
    ("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n", (400, 501, 505)),
]


def test_smuggling_vectors_get_one_error_then_close():
    for name, raw, statuses in SMUGGLING:
        expect_one_response_then_close(raw + FOLLOW, statuses, name)
    expect_status(get("smug"), 404, "no smuggling vector stored a value")


def test_server_survives_abrupt_disconnects():
    for raw in (b"PUT /v1/kv/abrupt HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc",
                b"GET /v1/kv/abrupt HTTP/1.1\r\nHo", build_request("GET", "/metrics")):
        s = socket.create_connection(("127.0.0.1", P()), timeout=5)
        s.sendall(raw)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()  # RST
    expect_status(http(P(), "GET", "/healthz"), 200, "still serving after resets")
    expect_status(get("abrupt"), 404, "a PUT whose body never came stored nothing")


def main():
    global S, AT_ONCE
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", default="1")
    ap.add_argument("--model", default="event")
    ap.add_argument("--threads", default=None)
    ap.add_argument("--accept", default=None)
    ap.add_argument("--single-process", action="store_true",
                    help="master, writer and worker in one process (nginx master_process off; the TSan run)")
    ap.add_argument("-k", dest="only", default=None, help="run only cases whose name contains this")
    ap.add_argument("-x", dest="exclude", action="append", default=[],
                    help="skip cases whose name contains this (repeatable)")
    opts = ap.parse_args()
    flags = ["--workers", opts.workers, "--model", opts.model, "--max-value-bytes", str(MAX_VALUE),
             "--header-timeout-ms", str(TIMEOUT_MS), "--body-timeout-ms", str(TIMEOUT_MS),
             "--keepalive-timeout-ms", str(TIMEOUT_MS)]
    if opts.threads:
        flags += ["--threads", opts.threads]
    if opts.model == "threads":
        AT_ONCE = max(2, int(opts.threads or 8) - 2)  # room for the setup requests' own connections
    if opts.accept:
        flags += ["--accept", opts.accept]
    if opts.single_process:
        flags += ["--single-process"]
    shown = ["--workers", opts.workers, "--model", opts.model] + (["--threads", opts.threads] if opts.threads else []) \
        + (["--accept", opts.accept] if opts.accept else []) + (["--single-process"] if opts.single_process else [])
    title = f"api ({' '.join(shown)})"
    cases = [(n, f) for n, f in cases_of(globals())
             if (not opts.only or opts.only in n) and not any(x in n for x in opts.exclude)]
    S = Server(flags)
    run_with_server(title, S, cases, check_stop=True)


if __name__ == "__main__":
    main()
