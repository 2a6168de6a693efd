"""Configuration: --help documents every flag, -t checks good and bad
configurations (like nginx -t) and names the bad setting, flags override the
JSON file, a second server cannot open a data directory in use (LOCK), a bad
configuration at start is refused, --single-process serves.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_config.py
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from kingx_harness import Server, TestFailure, check, http, key_path, require_bin, run_cases

BIN = None
TMP = None

FLAGS = ["--listen", "--admin-listen", "--data", "--workers", "--model", "--threads", "--accept",
         "--single-process", "--sync", "--max-value-bytes", "--max-key-bytes", "--segment-bytes",
         "--compaction-dead-ratio", "--compression-level", "--max-connections", "--keepalive-timeout-ms",
         "--header-timeout-ms", "--body-timeout-ms", "--storage-timeout-ms", "--access-log", "--access-log-format", "--error-log",
         "--log-level", "--trusted-proxy", "--pid", "--config"]


def run(*args, timeout=20):
    p = subprocess.run([BIN] + list(args), capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


def config_file(name, doc):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def test_help_documents_every_flag():
    code, out = run("--help")
    check(code == 0, f"--help exit {code}")
    missing = [f for f in FLAGS if f not in out]
    check(not missing, f"--help does not mention {missing}")
    check("8080" in out, "--help shows the default listen port")


def test_t_accepts_a_good_configuration():
    good = config_file("good.json", {"listen": ["127.0.0.1:18080"], "workers": 2, "sync": "interval:50",
                                     "max_value_bytes": 1048576, "segment_bytes": 131072,
                                     "access_log": os.path.join(TMP, "a.log")})
    code, out = run("-t", "--config", good, "--data", os.path.join(TMP, "d-good"))
    check(code == 0, f"-t on a good config: exit {code}: {out}")
    code, out = run("-t", "--workers", "3", "--sync", "none", "--data", os.path.join(TMP, "d-good"))
    check(code == 0, f"-t with good flags: exit {code}: {out}")


def test_t_rejects_bad_configurations_naming_the_setting():
    cases = [
        (["--config", config_file("unknown.json", {"workers": 1, "no_such_setting": 3})], "no_such_setting"),
        (["--config", config_file("badtype.json", {"workers": "lots"})], "workers"),
        (["--config", config_file("badjson.json", '{"workers": 1,')], "badjson.json"),
        (["--config", os.path.join(TMP, "does-not-exist.json")], "does-not-exist.json"),
        (["--workers", "banana"], "workers"),
        (["--sync", "sometimes"], "sync"),
        (["--listen", "not-an-address"], "listen"),
        (["--max-value-bytes", "-5"], "max-value-bytes"),
        (["--compaction-dead-ratio", "7"], "compaction-dead-ratio"),
        (["--model", "fibers"], "model"),
        (["--no-such-flag"], "no-such-flag"),
    ]
    for args, name in cases:
        code, out = run("-t", "--data", os.path.join(TMP, "d-bad"), *args)
        check(code != 0, f"-t {args} must fail, exit {code}: {out}")
        alt = name.replace("-", "_")
        check(name in out or alt in out, f"-t {args}: the message must name {name!r}: {out!r}")


def test_flags_override_the_file():
    cfg = config_file("override.json", {"max_value_bytes": 1000})
    with Server(["--config", cfg, "--max-value-bytes", "3000", "--workers", "1"]) as s:
        st = http(s.port, "PUT", key_path("ov"), b"x" * 2000).status
        check(st == 201, f"--max-value-bytes 3000 overrides the file's 1000: PUT of 2000 bytes gave {st}")
        st = http(s.port, "PUT", key_path("ov"), b"x" * 3001).status
        check(st == 413, f"3001 bytes over the flag's limit: {st}")


def test_bad_configuration_at_start_is_refused():
    bad = config_file("refused.json", {"no_such_setting": 1})
    s = Server(["--config", bad])
    try:
        s.start(wait=False)
        status = s.wait_exit(15)
        check(status not in (None, 0), f"kingx with a bad config must exit non-zero, got {status}")
        check("no_such_setting" in s.logs(), f"the refusal names the setting: {s.logs()}")
    finally:
        s.cleanup()


def test_second_server_on_the_same_data_dir_is_refused():
    with Server(["--workers", "1"]) as first:
        second = Server(["--workers", "1"], data_dir=first.data_dir)
        try:
            second.start(wait=False)
            status = second.wait_exit(15)
            check(status not in (None, 0), f"second server on a locked data dir: exit {status}")
        finally:
            second.cleanup()
        check(http(first.port, "GET", "/readyz").status == 200, "the first server still serves")
        check(os.path.isdir(first.data_dir), "data dir intact")


def test_single_process_mode_serves():
    with Server(["--single-process"]) as s:
        r = http(s.port, "PUT", key_path("sp"), b"single")
        check(r.status == 201, f"PUT: {r!r}")
        g = http(s.port, "GET", key_path("sp"))
        check(g.status == 200 and g.body == b"single", f"GET: {g!r}")
        check(not s.children(), f"--single-process forks no children: {s.children()}")
        s.signal(signal.SIGTERM)
        check(s.wait_exit(20) == 0, "TERM stops the single process with status 0")


def main():
    global BIN, TMP
    BIN = require_bin()
    TMP = tempfile.mkdtemp(prefix="kingx-bb-cfg-")
    try:
        status = run_cases("configuration", [(n[5:], f) for n, f in globals().items() if n.startswith("test_")])
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
