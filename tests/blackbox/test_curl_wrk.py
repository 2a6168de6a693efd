"""Real clients against a running kingx: curl PUT (--data-binary @file), GET,
HEAD, DELETE, and a short bounded wrk run (-t1 -c10 -d2s) that must finish
with no socket errors and no non-2xx responses. Skipped (exit 77) when curl
is not installed; a missing wrk fails (deploy/setup-debian.sh installs both).

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_curl_wrk.py
"""

import os
import re
import shutil
import subprocess
import sys

from kingx_harness import SKIP, Server, cases_of, check, http, key_path, run_with_server

S = None


def curl(*args, timeout=30):
    p = subprocess.run(["curl", "-sS", "--max-time", "20"] + list(args), capture_output=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def url(path):
    return f"http://127.0.0.1:{S.port}{path}"


def test_curl_put_get_head_delete():
    src = os.path.join(S.workdir, "upload.bin")
    data = os.urandom(300000) + b"\x00\r\n" + b"text" * 50000
    with open(src, "wb") as f:
        f.write(data)
    code, out, err = curl("-o", "/dev/null", "-w", "%{http_code} %header{etag}", "-X", "PUT",
                          "-H", "Content-Type: application/x-test", "--data-binary", f"@{src}", url("/v1/kv/curl-file"))
    check(code == 0, f"curl PUT failed: {err}")
    status, _, etag = out.decode().partition(" ")
    check(status == "201", f"curl PUT status {status}")
    check(re.fullmatch(r'"\d+"', etag.strip()), f"curl PUT ETag {etag!r}")
    dst = os.path.join(S.workdir, "download.bin")
    code, out, err = curl("-o", dst, "-w", "%{http_code} %{content_type}", url("/v1/kv/curl-file"))
    check(code == 0 and out.decode() == "200 application/x-test", f"curl GET: {code} {out!r} {err}")
    with open(dst, "rb") as f:
        check(f.read() == data, "curl GET returned other bytes than curl PUT sent")
    code, out, err = curl("-I", url("/v1/kv/curl-file"))
    head = out.decode()
    check(code == 0 and head.startswith("HTTP/1.1 200"), f"curl -I: {head!r} {err}")
    check(re.search(r"(?im)^content-length: %d\r?$" % len(data), head), f"HEAD Content-Length: {head!r}")
    code, out, err = curl("-o", "/dev/null", "-w", "%{http_code}", "-X", "DELETE", url("/v1/kv/curl-file"))
    check(code == 0 and out == b"204", f"curl DELETE: {out!r} {err}")
    code, out, err = curl("-o", "/dev/null", "-w", "%{http_code}", url("/v1/kv/curl-file"))
    check(out == b"404", f"curl GET after DELETE: {out!r}")
    # Small upload through curl's default Expect handling and a chunked upload from stdin.
    p = subprocess.run(["curl", "-sS", "--max-time", "20", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT",
                        "-H", "Transfer-Encoding: chunked", "--data-binary", "@-", url("/v1/kv/curl-chunked")],
                       input=b"chunked from stdin", capture_output=True, timeout=30)
    check(p.stdout == b"201", f"curl chunked PUT: {p.stdout!r} {p.stderr!r}")
    check(http(S.port, "GET", "/v1/kv/curl-chunked").body == b"chunked from stdin", "chunked value")


def test_wrk_get_run_has_no_errors():
    check(shutil.which("wrk"), "wrk is not installed (deploy/setup-debian.sh installs it)")
    check(http(S.port, "PUT", key_path("wrk-key"), b"v" * 100).status == 201, "setup PUT")
    p = subprocess.run(["wrk", "-t1", "-c10", "-d2s", "--latency", url("/v1/kv/wrk-key")],
                       capture_output=True, timeout=60)
    out = p.stdout.decode(errors="replace")
    print(out, flush=True)
    check(p.returncode == 0, f"wrk exit {p.returncode}: {p.stderr!r}")
    m = re.search(r"(\d+) requests in", out)
    check(m and int(m.group(1)) > 0, f"wrk made no requests: {out}")
    check("Non-2xx" not in out, f"wrk saw non-2xx responses: {out}")
    check("Socket errors" not in out, f"wrk saw socket errors: {out}")
    check(S.alive(), "server survived wrk")
    check(http(S.port, "GET", "/readyz").status == 200, "still ready after wrk")


def main():
    global S
    if not shutil.which("curl"):
        print("SKIP: curl not installed")
        sys.exit(SKIP)
    S = Server(["--workers", "2"])
    run_with_server("curl and wrk", S, cases_of(globals()))


if __name__ == "__main__":
    main()
