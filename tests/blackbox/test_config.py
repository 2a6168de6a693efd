"""Configuration: --help documents every flag, -t checks good and bad
configurations (like nginx -t) and names the bad setting, flags override the
JSON file, a second server cannot open a data directory in use (LOCK), a bad
configuration at start is refused, --single-process serves.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_config.py
"""

import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from kingx_harness import Server, TestFailure, check, free_port, http, key_path, require_bin, run_cases

BIN = None
TMP = None

FLAGS = ["--listen", "--admin-listen", "--data", "--workers", "--model", "--threads", "--accept",
         "--single-process", "--sync", "--max-value-bytes", "--max-key-bytes", "--segment-bytes",
         "--disk-reserve-bytes", "--compaction-dead-ratio", "--compression-level", "--max-connections",
         "--keepalive-timeout-ms", "--header-timeout-ms", "--body-timeout-ms", "--storage-timeout-ms", "--access-log",
         "--access-log-format", "--error-log",
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


def test_the_example_configuration_names_every_setting():
    # README: every flag has a JSON-file twin, and deploy/kingx.example.json
    # has them all (the Debian package's configuration is made from it).
    code, out = run("--help")
    keys = set(re.findall(r"^\s+\[(\w+)\] default:", out, re.M))
    check(len(keys) > 30, f"--help names only {len(keys)} file keys: {out[:500]!r}")
    example = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "deploy", "kingx.example.json")
    with open(example) as f:
        named = {k for k in json.load(f) if not k.startswith("//")}  # "//" keys are comments
    check(keys <= named, f"deploy/kingx.example.json lacks {sorted(keys - named)}")
    check(named <= keys, f"deploy/kingx.example.json names settings --help does not: {sorted(named - keys)}")
    code, out = run("-t", "--config", example, "--data", os.path.join(TMP, "d-example"))
    check(code == 0, f"-t on the example configuration: exit {code}: {out}")


def test_t_accepts_a_good_configuration():
    good = config_file("good.json", {"listen": ["127.0.0.1:18080"], "workers": 2, "sync": "interval:50",
                                     "max_value_bytes": 1048576, "segment_bytes": 131072,
                                     "access_log": os.path.join(TMP, "a.log")})
    code, out = run("-t", "--config", good, "--data", os.path.join(TMP, "d-good"))
    check(code == 0, f"-t on a good config: exit {code}: {out}")
    code, out = run("-t", "--workers", "3", "--sync", "none", "--data", os.path.join(TMP, "d-good"))
    check(code == 0, f"-t with good flags: exit {code}: {out}")
    # The repeatable settings add one value per flag.
    code, out = run("-t", "--listen", "127.0.0.1:0", "--listen", "127.0.0.1:0", "--trusted-proxy", "10.0.0.1",
                    "--trusted-proxy", "10.0.0.2", "--data", os.path.join(TMP, "d-good"))
    check(code == 0, f"-t with --listen and --trusted-proxy given twice: exit {code}: {out}")


def test_t_rejects_bad_configurations_naming_the_setting():
    cases = [
        (["--config", config_file("unknown.json", {"workers": 1, "no_such_setting": 3})], "no_such_setting"),
        (["--config", config_file("badtype.json", {"workers": "lots"})], "workers"),
        (["--config", config_file("badjson.json", '{"workers": 1,')], "badjson.json"),
        # An empty list would leave the server on the default address, not on none.
        (["--config", config_file("nolisten.json", {"listen": []})], "listen"),
        (["--config", os.path.join(TMP, "does-not-exist.json")], "does-not-exist.json"),
        (["--workers", "banana"], "workers"),
        (["--sync", "sometimes"], "sync"),
        (["--listen", "not-an-address"], "listen"),
        (["--max-value-bytes", "-5"], "max-value-bytes"),
        (["--compaction-dead-ratio", "7"], "compaction-dead-ratio"),
        (["--model", "fibers"], "model"),
        (["--no-such-flag"], "no-such-flag"),
        # A flag given twice would have its last value win silently (nginx refuses a duplicate directive).
        (["--workers", "2", "--workers", "3"], "--workers"),
        (["--sync=none", "--sync", "always"], "--sync"),
        (["--read-only", "--read-only"], "--read-only"),
        (["--config", config_file("twice.json", {"workers": 1}), "--config", config_file("twice.json", {"workers": 1})],
         "--config"),
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


def test_the_smallest_staging_budget_accepted_stores_a_value_of_the_largest_size():
    # A value over 1 MiB is staged with a prefix (its record's headers, key and
    # content type) before its bytes, all counted in --staging-bytes: the
    # smallest budget -t accepts must hold the largest value with the longest
    # key and content type, and one too small for it is refused naming it.
    key_bytes, type_bytes = 64, 255
    largest = 2 << 20
    smallest = largest + 88 + key_bytes + type_bytes
    limits = ["--max-value-bytes", str(largest), "--max-key-bytes", str(key_bytes)]
    code, out = run("-t", "--data", os.path.join(TMP, "d-staging"), *limits, "--staging-bytes", str(smallest - 1))
    check(code != 0 and "staging-bytes" in out, f"-t with --staging-bytes {smallest - 1}: exit {code}: {out}")
    with Server(["--workers", "1", "--compression-level", "0", "--staging-bytes", str(smallest)] + limits) as s:
        key, value = "k" * key_bytes, os.urandom(largest)
        headers = [("Content-Type", "t/" + "x" * (type_bytes - 2))]
        r = http(s.port, "PUT", key_path(key), value, headers, timeout=60)
        check(r.status == 201, f"a {largest}-byte PUT under --staging-bytes {smallest}: {r!r}")
        got = http(s.port, "GET", key_path(key), timeout=60)
        check(got.status == 200 and got.body == value, f"GET: {got.status} {len(got.body)} bytes")


def test_the_fewest_header_fields_accepted_let_a_put_through():
    # A PUT carries Host and Content-Length: a field limit -t accepts must let
    # it through, and one that refuses every PUT (431) is refused naming it.
    code, out = run("-t", "--data", os.path.join(TMP, "d-fields"), "--max-header-fields", "1")
    check(code != 0 and "max-header-fields" in out, f"-t with --max-header-fields 1: exit {code}: {out}")
    with Server(["--workers", "1", "--max-header-fields", "2"]) as s:
        r = http(s.port, "PUT", key_path("fields"), b"v")
        check(r.status == 201, f"a PUT (Host, Content-Length) under --max-header-fields 2: {r!r}")


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


def test_overlapping_listen_addresses_are_refused_by_t_and_at_start():
    # Two listeners the kernel cannot both bind (a wildcard takes the port on every address of
    # its family; one address spelled two ways) are an invalid configuration: -t says so, naming
    # the setting, and a start exits at once, not after waiting 5 s for "another process".
    port = free_port()
    data = os.path.join(TMP, "d-overlap")
    cases = [
        (["--listen", f"0.0.0.0:{port}", "--listen", f"127.0.0.1:{port}"], "--listen"),
        (["--listen", f"[::1]:{port}", "--listen", f"[0::1]:{port}"], "--listen"),
        (["--listen", f"[::]:{port}", "--listen", f"[::1]:{port}"], "--listen"),
        (["--listen", f"0.0.0.0:{port}", "--admin-listen", f"127.0.0.1:{port}"], "--admin-listen"),
        (["--listen", f"127.0.0.1:{port}", "--admin-listen", f"0.0.0.0:{port}"], "--admin-listen"),
    ]
    for args, name in cases:
        code, out = run("-t", "--data", data, *args)
        check(code == 1 and name in out, f"-t {args} must fail naming {name}: exit {code}: {out}")
    started = time.monotonic()
    code, out = run("--data", data, "--error-log", "stderr", *cases[0][0])
    took = time.monotonic() - started
    check(code == 1 and "--listen" in out and took < 3, f"a start with {cases[0][0]}: exit {code} after {took:.1f} s: {out}")
    # What the kernel binds together stays accepted: an IPv6 listener is IPv6-only, and
    # other ports or addresses do not meet.
    for args in (["--listen", f"0.0.0.0:{port}", "--listen", f"[::]:{port}"],
                 ["--listen", f"127.0.0.1:{port}", "--listen", f"127.0.0.2:{port}", "--admin-listen", f"[::1]:{port}"],
                 ["--listen", f"0.0.0.0:{port}", "--admin-listen", f"0.0.0.0:{free_port()}"]):
        code, out = run("-t", "--data", data, *args)
        check(code == 0, f"-t {args} must pass: exit {code}: {out}")


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


def test_a_thread_pool_cut_by_max_connections_says_so():
    # README Descriptors: a worker starts at most --threads, ... or one fewer than its connection
    # cap (logged). The line must name the bound that took effect: here --max-connections, not
    # the descriptor limit.
    with Server(["--model", "threads", "--threads", "150", "--workers", "1", "--max-connections", "20"]) as s:
        line = ""
        for _ in range(50):
            line = next((l for l in open(s.error_log, errors="replace") if "pool threads" in l), "")
            if line:
                break
            time.sleep(0.1)
        check("19 pool threads" in line and "--max-connections" in line and "RLIMIT_NOFILE" not in line,
              f"the pool's size and its cause, --max-connections 20: {line!r}")


def test_t_checks_what_a_start_would_check():
    """-t fails where a start would fail, naming the cause, and never says
    "successful" for such a configuration."""
    cases = [
        (["--data", "/proc/kingx-no-such-dir/data"], "data directory"),   # parent cannot take it
        (["--data", "/sys"], "not writable"),                              # unwritable even for root
        (["--data", "/etc/passwd"], "not a directory"),
        (["--data", os.path.join(TMP, "d-pid"), "--pid", os.path.join(TMP, "no-such-dir", "kingx.pid")], "pid file"),
        (["--data", os.path.join(TMP, "d-log"), "--error-log", "/proc/kingx-no/error.log"], "error log"),
        (["--data", os.path.join(TMP, "d-log"), "--access-log", "/proc/kingx-no/access.log"], "access log"),
        (["--config", config_file("dup.json", '{"workers": 1, "workers": 2}')], "more than once"),
    ]
    for args, what in cases:
        code, out = run("-t", *args)
        check(code != 0, f"-t {args} must fail, exit {code}: {out}")
        check(what in out, f"-t {args}: the message must say {what!r}: {out!r}")
        check("successful" not in out, f"-t {args} must not say successful: {out!r}")


def test_t_read_only_checks_that_tmpdir_takes_the_scratch_directory():
    # A read-only start makes the sorted key view's scratch directory under $TMPDIR (else
    # /tmp) and exits 1 when it cannot: -t must say so too, and pass once TMPDIR is usable.
    db = os.path.join(TMP, "d-ro-tmpdir")
    os.makedirs(db, exist_ok=True)
    open(os.path.join(db, "seg-00000001.kxd"), "wb").close()  # a database, by the data directory rule
    for tmpdir, good in ((os.path.join(TMP, "no-such-tmpdir"), False), ("/proc", False), (TMP, True)):
        env = dict(os.environ, TMPDIR=tmpdir)
        p = subprocess.run([BIN, "-t", "--read-only", "--data", db], capture_output=True, text=True, env=env, timeout=20)
        out = p.stdout + p.stderr
        if good:
            check(p.returncode == 0, f"-t --read-only with TMPDIR={tmpdir}: exit {p.returncode}: {out}")
        else:
            check(p.returncode == 1 and "TMPDIR" in out and tmpdir in out and "successful" not in out,
                  f"-t --read-only with TMPDIR={tmpdir} (a start exits 1) must fail naming it: exit {p.returncode}: {out}")
    check(os.listdir(db) == ["seg-00000001.kxd"] and not [f for f in os.listdir(TMP) if f.startswith(".kingx-t-probe")],
          f"-t --read-only created something: {os.listdir(db)}, {os.listdir(TMP)}")


def test_t_fails_on_a_data_directory_in_use_but_not_for_its_own_running_server():
    with Server(["--workers", "1"]) as first:
        # Another configuration for the same data directory: a start would find it locked.
        code, out = run("-t", "--data", first.data_dir, "--pid", os.path.join(TMP, "other.pid"))
        check(code != 0 and "in use" in out, f"-t on a data directory another kingx serves: {code} {out!r}")
        check(str(first.proc.pid) in out, f"the message names the holder's pid {first.proc.pid}: {out!r}")
        # The running server's own configuration (the reload case: -t, then HUP).
        code, out = run("-t", "--data", first.data_dir, "--pid", first.pid_file)
        check(code == 0 and "successful" in out, f"-t before a reload of the running server: {code} {out!r}")
    # Without a pid file (the packaged configuration has none), the reload case is a kingx
    # master started with the very same command line, as systemd's ExecReload runs it.
    work = tempfile.mkdtemp(dir=TMP)
    port = free_port()
    args = ["--listen", f"127.0.0.1:{port}", "--data", os.path.join(work, "data"), "--error-log",
            os.path.join(work, "error.log"), "--workers", "1", "--pid", "none"]
    s = Server(args, raw_args=True, workdir=work, port=port)
    try:
        s.start()
        code, out = run("-t", *args)
        check(code == 0 and "successful" in out, f"-t with the running server's own command line: {code} {out!r}")
        code, out = run("-t", *(args[:-4] + ["--workers", "2", "--pid", "none"]))
        check(code != 0 and "in use" in out, f"-t with another command line for the same data: {code} {out!r}")
    finally:
        s.cleanup()


def test_pid_none_writes_no_pid_file():
    """"pid": "none" (the documented default) means no pid file, not a file named ./none."""
    work = tempfile.mkdtemp(dir=TMP)
    cfg = config_file("pidnone.json", {"pid": "none"})
    log = os.path.join(work, "error.log")
    p = subprocess.Popen([BIN, "--config", cfg, "--listen", "127.0.0.1:0", "--data", os.path.join(work, "data"),
                          "--error-log", log, "--workers", "1"],
                         cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        deadline = time.monotonic() + 15
        started = False
        while time.monotonic() < deadline and not started:
            time.sleep(0.1)
            with open(log, errors="replace") if os.path.exists(log) else open(os.devnull) as f:
                started = "master started" in f.read()
        check(started, "the server started")
        check(not os.path.exists(os.path.join(work, "none")), "pid none wrote a file named ./none")
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(20)
    code, out = run("-t", "--pid", "none", "--data", os.path.join(TMP, "d-none"))
    check(code == 0, f"-t with pid none: {code} {out!r}")


def test_t_warns_when_max_connections_exceeds_the_open_file_limit():
    # At a limit of 256 a worker keeps 192 descriptors (two segment caches and
    # spill files an eighth of the limit each, 96 of its own:
    # src/worker/serve_options.h), so it accepts at most 64 connections; a
    # pool of threads takes half of those 64 for its doorbells.
    def run(limit, *args):
        def set_limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
        p = subprocess.run([BIN, "-t", *args, "--data", os.path.join(TMP, "d-nofile")],
                           capture_output=True, timeout=20, stdin=subprocess.DEVNULL, preexec_fn=set_limit)
        out = (p.stdout + p.stderr).decode()
        check(p.returncode == 0, f"a warning does not fail -t: {out!r}")
        return out
    out = run(256, "--max-connections", "1000")
    check("warning" in out and "open file limit 256" in out and "max_connections 1000" in out
          and "keeps 192 descriptors" in out and "at most 64 connections" in out,
          f"-t warns about the open file limit, with the worker's real cap: {out!r}")
    # 100 + 128 fit in 256, but the worker would accept only 64: the warning
    # must come from the cap the worker applies, not from a fixed allowance.
    out = run(256, "--max-connections", "100")
    check("warning" in out and "at most 64 connections" in out, f"-t warns when the cap lowers 100 to 64: {out!r}")
    out = run(256, "--model", "threads", "--threads", "150", "--max-connections", "40")
    check("warning" in out and "32 for its pool threads" in out and "at most 32 connections" in out,
          f"-t counts the pool's doorbells: {out!r}")
    out = run(256, "--max-connections", "64")
    check("warning" not in out, f"no warning when the limit is enough: {out!r}")


def main():
    global BIN, TMP
    BIN = os.path.abspath(require_bin())
    TMP = tempfile.mkdtemp(prefix="kingx-bb-cfg-")
    try:
        status = run_cases("configuration", [(n[5:], f) for n, f in globals().items() if n.startswith("test_")])
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
