"""Promises of README.md that no other test checked, each against the real
binary (the audit that found them: the claims table kept with the project's
notes). Every case fails when the promise breaks, on either side: a default
changed in the code but not in the README, or the README rewritten without
the code.

  - every default the README states for a setting is the one `kingx --help`
    prints, and the README still states it;
  - at most 4 online backups run at once: a fifth is answered 503 with
    Retry-After, naming the limit, while the four keep their pins;
  - a backup that finds no room in --response-buffer-bytes (held by readers
    of a compressed value that do not read) is answered 503 + Retry-After
    naming the setting;
  - a write that finds the write queue full waits, then gets 503 +
    Retry-After, and is not stored; the writes queued before it are;
  - a GET on a keep-alive connection costs the event worker one `recv` and
    one `send` on that connection's socket (no `read`, `write` or
    `writev`): the system calls the head-to-head section counts;
  - every benchmark command README.md and RELIABILITY.md give beside a
    figure still runs as written: the script exists, takes every flag given
    (and kingx every flag passed through to it), and bench/compare knows
    every server and scenario named, each `name@label` with its
    --kingx-alt; every results directory they link to exists;
  - the head-to-head table's "met?" column says what its goal and latest
    figures say: "yes" when every figure meets the goal, "no" when none
    does, else it starts with the cases that meet it (c=1000 …).

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_readme_claims.py
"""

import os
import random
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time

from kingx_harness import (CaseSkipped, Conn, ServerPerCase, adopt, build_request, cases_of, check, http, key_path,
                           metric, require_bin, run_with_servers, traced_calls, wait_for)

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
README = os.path.join(ROOT, "README.md")
FIGURE_DOCS = ("README.md", "RELIABILITY.md")
SERVERS = ServerPerCase()

# (setting as --help names it, default --help prints, words of README.md that promise it)
DEFAULTS = [
    ("listen", "127.0.0.1:8080", "listening on `127.0.0.1:8080`"),
    ("data", "./data", "data in `./data`"),
    ("workers", "auto", "N processes, default one per CPU"),
    ("threads", "150", "N pool threads (default 150)"),
    ("sync", "always", "`always` (default)"),
    ("max_key_bytes", "1024", "1 to\n1024 bytes by default"),
    ("max_header_line_bytes", "8K", "header line over 8 KiB (`--max-header-line-bytes`)"),
    ("max_header_bytes", "16K", "header section over 16 KiB (`--max-header-bytes`)"),
    ("max_request_line_bytes", "8K", "request line over 8 KiB (`--max-request-line-bytes`)"),
    ("max_header_fields", "100", "over 100 header fields (`--max-header-fields`)"),
    ("keepalive_timeout_ms", "75000", "below kingx's 75 s"),
    ("storage_timeout_ms", "30000", "`--storage-timeout-ms` (default 30 s)"),
    ("backup_max_ms", "21600000", "`--backup-max-ms` (default 6 h)"),
    ("body_buffer_bytes", "64M", "`--body-buffer-bytes` (default 64 MiB per worker)"),
    ("staging_bytes", "1G", "`--staging-bytes` (default 1 GiB"),
    ("body_spill_bytes", "1G", "`--body-spill-bytes` (default 1 GiB per worker"),
    ("response_buffer_bytes", "32M", "`--response-buffer-bytes` (default 32 MiB per worker)"),
    ("send_lowat_bytes", "16K", "`--send-lowat-bytes` (default 16 KiB"),
    ("send_timeout_ms", "60000", "`--send-timeout-ms` (default 60 s"),
    ("disk_reserve_bytes", "auto", "`--disk-reserve-bytes`, default `auto` = one segment × 1.25 + 1 MiB"),
    ("segment_bytes", "auto", "`--segment-bytes auto` = a 32nd of\nthe file system"),
    ("admin_listen", "off", "off by default"),
    ("pid", "none", "`--pid none` (the default)"),
]


def squash(text):
    """Whitespace runs as one space: the README wraps its lines anywhere."""
    return re.sub(r"\s+", " ", text)


def test_help_prints_the_defaults_the_readme_states():
    out = subprocess.run([require_bin(), "--help"], capture_output=True, text=True, timeout=30).stdout
    printed = dict(re.findall(r"^\s+\[(\w+)\] default: (.*)$", out, re.M))
    readme = squash(open(README, encoding="utf-8").read())
    for name, default, words in DEFAULTS:
        check(printed.get(name) == default, f"--help: [{name}] default {printed.get(name)!r}, README says {default!r}")
        check(squash(words) in readme, f"README.md no longer says {squash(words)!r}")


def open_unread_backup(admin_port):
    """GET /admin/backup on a socket that reads the head only (a small
    window): the backup stays in progress, holding its slot."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.settimeout(60)
    sock.connect(("127.0.0.1", admin_port))
    sock.sendall(b"GET /admin/backup HTTP/1.1\r\nHost: x\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = sock.recv(4096)
        check(d, "a backup closed before its head")
        buf += d
    check(buf.startswith(b"HTTP/1.1 200"), f"backup: {buf[:200]!r}")
    return sock


def zstd_cli_bytes(value):
    """What the zstd command line tool at level 1 (not kingx's code) makes of `value`: one frame
    with its content size and no checksum, as kingx writes them."""
    return len(subprocess.run(["zstd", "-1", "-c", "-q", "--no-check"], input=value, capture_output=True,
                              check=True, timeout=30).stdout)


def test_a_value_that_zstd_shrinks_by_10_percent_is_stored_compressed_also_at_the_line():
    """README storage engine: "zstd per value from 256 bytes when it saves >= 10%". Values of 256
    B to 64 KiB made of a random prefix and a repeated tail, chosen near that line; the oracle is
    the zstd tool at level 1; what a PUT stored is read from kingx_engine_live_bytes (each record:
    40-byte header, key, Content-Type, stored value)."""
    if shutil.which("zstd") is None:
        raise CaseSkipped("the zstd command line tool is not installed (Debian: zstd)")
    s = SERVERS.start("--workers", "1")
    rng = random.Random(27)
    checked = 0
    for n in (256, 257, 300, 1000, 4096, 65536):
        for pct in range(74, 92):
            value = rng.randbytes(n * pct // 100) + b"abcd" * n
            value = value[:n]
            z = zstd_cli_bytes(value)
            limit = n - n // 10
            if not z <= limit - 2:   # zstd saves 10% with a margin for the tool's own framing choices
                continue
            key = f"z/{n}/{pct}"
            before = metric(s.port, "kingx_engine_live_bytes")
            r = http(s.port, "PUT", key_path(key), value, headers=[("Content-Type", "a/b")])
            check(r.status == 201, f"PUT {key}: {r.status}")
            stored = metric(s.port, "kingx_engine_live_bytes") - before - 40 - len(key) - len("a/b")
            check(stored <= limit, f"{key}: {n} B that zstd -1 makes {z} B (limit {limit}) stored as {stored:.0f} B")
            checked += 1
    check(checked >= 30, f"only {checked} values near the line: the generator lost them")


def test_a_fifth_backup_at_once_is_503_naming_the_limit():
    s = SERVERS.start("--workers", "1", "--compression-level", "0", admin=True)
    admin = s.admin_port
    for i in range(12):  # 12 MiB: far more than four unread sockets hold
        r = http(s.port, "PUT", key_path(f"v{i}"), os.urandom(1 << 20), timeout=60)
        check(r.status == 201, f"PUT v{i}: {r.status}")
    held = [open_unread_backup(admin) for _ in range(4)]
    try:
        wait_for(lambda: metric(s.port, "kingx_backup_pins") == 4, 30, "four backups pinned")
        with Conn(admin, 30) as c:
            r = c.request("GET", "/admin/backup")
        check(r.status == 503, f"fifth backup: {r.status} {r.body[:200]!r}")
        check(r.header("Retry-After") is not None, "the fifth backup's 503 has no Retry-After")
        check("at most 4 backups" in r.body.decode(), f"the 503 does not name the limit: {r.body[:300]!r}")
        check(metric(s.port, "kingx_backup_pins") == 4, "the refusal touched the four backups' pins")
    finally:
        # The writer held (SIGSTOP) while the four clients leave: their pins
        # read 0 at once, but a slot is free only once the writer has given its
        # pin back, so until then a new backup is still the fifth.
        writer = s.wait_children("kingx-writer", 1)[0]
        os.kill(writer, signal.SIGSTOP)
        try:
            for sock in held:
                sock.close()
            wait_for(lambda: metric(s.port, "kingx_backup_pins") == 0, 30, "the pins given back")
            check(metric(s.port, "kingx_backup_slots_taken") == 4, "slots freed while the writer was stopped")
            with Conn(admin, 30) as c:
                r = c.request("GET", "/admin/backup")
            check(r.status == 503 and r.header("Retry-After") is not None,
                  f"a backup before the writer freed the slots: {r.status}")
        finally:
            os.kill(writer, signal.SIGCONT)
    wait_for(lambda: metric(s.port, "kingx_backup_slots_taken") == 0, 30, "the slots freed")
    with Conn(admin, 60) as c:
        c.send(b"GET /admin/backup HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        r = c.read_response()
    check(r.status == 200, f"a backup once the others ended: {r.status}")


def test_a_backup_without_room_in_the_response_buffer_is_503_naming_the_setting():
    # Readers that do not read a large compressible value hold the worker's
    # --response-buffer-bytes (its decoded pieces wait for the socket); more
    # of them until a backup finds no room for its piece (bounded: 64).
    s = SERVERS.start("--workers", "1", "--response-buffer-bytes", "1M", admin=True)
    admin = s.admin_port
    value = (b"kingx compressible value " * 3000)[:65536] * 256  # 16 MiB, a few KiB stored
    r = http(s.port, "PUT", key_path("squeezed"), value, timeout=60)
    check(r.status == 201, f"PUT: {r.status}")
    readers = []
    refused = None
    try:
        while refused is None and len(readers) < 64:
            for _ in range(4):
                c = socket.socket()
                c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                c.settimeout(30)
                c.connect(("127.0.0.1", s.port))
                c.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % key_path("squeezed").encode())
                readers.append(c)
            for c in readers[-4:]:
                check(c.recv(12, socket.MSG_PEEK) == b"HTTP/1.1 200", "a reader got no response head")
            with Conn(admin, 30) as c:
                c.send(b"GET /admin/backup HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                head = c.read_response(head=True)  # the archive itself is not wanted
            if head.status == 503:
                refused = head
            else:
                check(head.status == 200, f"backup: {head.status}")
                wait_for(lambda: metric(s.port, "kingx_backup_pins") == 0, 30, "the closed backup's pin back")
        check(refused is not None, f"{len(readers)} readers holding the response buffer and still room for a backup")
        with Conn(admin, 30) as c:
            r = c.request("GET", "/admin/backup")
        check(r.status == 503 and r.header("Retry-After") is not None, f"refused backup: {r!r}")
        check("--response-buffer-bytes" in r.body.decode(), f"the 503 does not name the setting: {r.body[:300]!r}")
    finally:
        for c in readers:
            c.close()
    r = http(admin, "GET", "/healthz")
    check(r.status == 200, "the admin listener after the readers left")


def test_a_write_that_finds_the_queue_full_is_503_with_retry_after_and_not_stored():
    # The writer stopped (SIGSTOP) with a 1 MiB write queue: the first PUTs
    # fill it and wait for the writer (--storage-timeout-ms is far away);
    # later ones find it full, wait for room, unread, and are answered 503 +
    # Retry-After with nothing queued. Once the writer runs again the queued
    # ones are stored and the refused ones are not.
    s = SERVERS.start("--workers", "1", "--write-queue-bytes", "1M", "--storage-timeout-ms", "120000",
                      "--compression-level", "0")
    writer = s.wait_children("kingx-writer", 1)[0]
    values = {f"q{i}": os.urandom(100 * 1024) for i in range(24)}
    socks = {}
    os.kill(writer, signal.SIGSTOP)
    try:
        t_sent = time.monotonic()
        for key, value in values.items():
            sock = socket.create_connection(("127.0.0.1", s.port), timeout=60)
            sock.sendall(build_request("PUT", key_path(key), value))
            socks[key] = sock
        answered = {}
        deadline = time.monotonic() + 60  # the give-up is a few seconds; the storage deadline 120 s
        while not answered and time.monotonic() < deadline:
            ready, _, _ = select.select(list(socks.values()), [], [], 1.0)
            for sock in ready:
                key = next(k for k, v in socks.items() if v is sock)
                answered[key] = adopt(sock, s.port, 30).read_response()
        check(answered, "no PUT was answered while the queue stayed full")
        # README: 503 "only after 5 s" of waiting for room (a lower bound: a
        # slow machine answers later, never sooner).
        waited = time.monotonic() - t_sent
        check(waited >= 5.0, f"a PUT that found the queue full was refused {waited:.2f} s after it was sent, "
              "before the 5 s wait for room")
        for key, r in answered.items():
            check(r.status == 503 and r.header("Retry-After") is not None, f"PUT {key} while the queue was full: {r!r}")
            check("write queue" in r.body.decode(), f"the 503 does not say the queue was full: {r.body[:300]!r}")
    finally:
        os.kill(writer, signal.SIGCONT)
    for key, sock in socks.items():
        if key not in answered:
            r = adopt(sock, s.port, 60).read_response()
            answered[key] = r
        sock.close()
    stored = [k for k, r in answered.items() if r.status == 201]
    check(stored, "no PUT was stored once the writer ran again")
    for key, r in answered.items():
        g = http(s.port, "GET", key_path(key), timeout=30)
        if r.status == 201:
            check(g.status == 200 and g.body == values[key], f"GET {key} after 201: {g.status}")
        elif r.status == 503 and "write queue" in r.body.decode():
            check(g.status == 404, f"{key} was answered 503 (queue full) but is stored")


def keep_alive_get_calls(s, calls, gets, on_socket):
    """The calls named in `calls` the worker made while one client sent
    `gets` GETs of a 100 B value one at a time on one keep-alive connection:
    those on that connection's socket (on_socket), or all of its threads'."""
    check(http(s.port, "PUT", key_path("k"), body=b"v" * 100).status in (200, 201, 204), "PUT k")
    with Conn(s.port) as c:
        check(c.request("GET", key_path("k")).status == 200, "first GET of k")
        side = s.server_side_of_client_port(c.local_port())
        check(side is not None, "the worker holding the connection not found")

        def get_one_at_a_time():
            for _ in range(gets):
                r = c.request("GET", key_path("k"))
                check(r.status == 200 and r.body == b"v" * 100, f"GET k: {r}")

        return traced_calls(side[0], calls, get_one_at_a_time, fd=side[1] if on_socket else None)


def test_a_keep_alive_get_costs_the_event_worker_one_recv_and_one_send():
    s = SERVERS.start("--workers", "1", "--model", "event")
    gets = 40
    calls = ["read", "recvfrom", "recvmsg", "readv", "write", "writev", "sendto", "sendmsg"]
    n = keep_alive_get_calls(s, calls, gets, on_socket=True)
    check(n["recvfrom"] == gets and n["sendto"] + n["sendmsg"] == gets and
          n["read"] + n["readv"] + n["recvmsg"] + n["write"] + n["writev"] == 0,
          f"{gets} GETs on one connection: the worker's calls on its socket {dict(n)}, "
          f"want {gets} recvfrom and {gets} sendto or sendmsg and nothing else")


def test_a_keep_alive_get_costs_a_pool_thread_one_recv_and_one_send_and_no_poll():
    # The thread pool: the pool thread waits for the next request in its
    # recv, not in a poll before it (every thread of the worker is traced:
    # poll's first argument is no descriptor). A recv that waited past the
    # idle connection's next look (a quarter second) is one more recv.
    s = SERVERS.start("--workers", "1", "--model", "threads", "--threads", "8")
    gets = 40
    n = keep_alive_get_calls(s, ["recvfrom", "sendto", "sendmsg", "poll", "ppoll"], gets, on_socket=False)
    check(n["recvfrom"] >= gets and n["sendto"] + n["sendmsg"] == gets and n["poll"] + n["ppoll"] == 0,
          f"{gets} GETs on one connection: the thread pool's calls {dict(n)}, want {gets} recvfrom (or more), "
          f"{gets} sendto or sendmsg and no poll")


def doc_commands(text):
    """(line, command) of every bench/ program run in a Markdown text: each
    line of a fenced block (continuations joined, comments dropped) and each
    backtick span of the prose, cut at ;, && and |. A command is the span
    from its program's path to its end."""
    found = []
    in_block = False
    pending, pending_line = "", 0
    prose = []
    for n, line in enumerate(text.split("\n"), 1):
        if line.lstrip().startswith("```"):
            in_block = not in_block
            prose.append("")
            continue
        if not in_block:
            prose.append(line)
            continue
        prose.append("")
        if not pending:
            pending_line = n
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        found.append((pending_line, re.sub(r"\s#\s.*$", "", pending + line)))
        pending = ""
    joined = "\n".join(prose)
    for m in re.finditer(r"`([^`]+)`", joined):
        found.append((joined.count("\n", 0, m.start()) + 1, m.group(1).replace("\n", " ")))
    commands = []
    for n, span in found:
        for part in re.split(r"\s(?:;|&&|\|)\s", span):
            m = re.search(r"(?<![\w/.-])((?:build[-\w]*/)?bench/(?!results/)[\w.-]+)(.*)$", part)
            if m:
                commands.append((n, m.group(1), m.group(2)))
    return commands


def program_flags(path, cache={}):
    """The text a bench program's flags are found in: its --help for a
    Python script, its source for a shell script or a C++ program (build
    trees' bench/X is bench/X.cc); None when it does not exist."""
    src = path if path.startswith("bench/") else "bench/" + path.rsplit("/", 1)[1]
    if path not in cache:
        full = os.path.join(ROOT, src)
        if not os.path.exists(full) and os.path.exists(full + ".cc"):
            full += ".cc"
        if not os.path.exists(full):
            cache[path] = None
        elif full.endswith(".py") or open(full, errors="replace").readline().startswith("#!/usr/bin/env python"):
            r = subprocess.run([sys.executable, full, "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT)
            cache[path] = r.stdout + r.stderr
        else:
            cache[path] = open(full, errors="replace").read()
    return cache[path]


def has_flag(text, flag):
    return re.search(re.escape(flag) + r"(?![\w-])", text) is not None


def compare_names():
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    try:
        from harness import main, scenarios, servers
    finally:
        sys.path.pop(0)
    return set(servers.BY_NAME), set(scenarios.BY_NAME) | set(main.SPECIAL)


def command_faults(program, args, kingx_help, compare_known):
    """What in `program args` would not run as written (a list of words)."""
    text = program_flags(program)
    if text is None:
        return [f"{program} does not exist"]
    faults = []
    try:
        words = shlex.split(args.replace("[", " ").replace("]", " "))
    except ValueError:
        words = args.split()
    for i, w in enumerate(words):
        name, eq, value = w.partition("=")
        if w.startswith("--") and not has_flag(text, name):
            faults.append(f"{program} takes no {name}")
        passed = value if w.startswith("--") else (w.partition("=")[2] if eq else "")
        for f in re.findall(r"(?<![\w-])--[\w-]+", passed):
            if not has_flag(kingx_help, f):
                faults.append(f"{program} passes kingx {f}, which kingx does not take")
    if program.endswith("bench/compare"):
        known_servers, known_scenarios = compare_known
        alts = {w.partition("=")[0] for a, w in zip(words, words[1:]) if a == "--kingx-alt"}
        alts |= {w.split("=", 2)[1] for w in words if w.startswith("--kingx-alt=")}
        for a, w in zip(words, words[1:]):
            if a == "--servers":
                for s in w.split(","):
                    base, at, label = s.partition("@")
                    if base not in known_servers:
                        faults.append(f"bench/compare knows no server {base}")
                    if at and label not in alts:
                        faults.append(f"bench/compare: {s} without --kingx-alt {label}=BIN")
            if a == "--scenarios":
                faults += [f"bench/compare knows no scenario {c}" for c in w.split(",") if c not in known_scenarios]
    return faults


def test_every_benchmark_command_the_docs_give_runs_as_written():
    kingx_help = subprocess.run([require_bin(), "--help"], capture_output=True, text=True, timeout=30).stdout
    compare_known = compare_names()
    faults, checked = [], 0
    for doc in FIGURE_DOCS:
        text = open(os.path.join(ROOT, doc), encoding="utf-8").read()
        for line, program, args in doc_commands(text):
            checked += 1
            faults += [f"{doc}:{line}: {f}" for f in command_faults(program, args, kingx_help, compare_known)]
        for m in re.finditer(r"(?<![\w/.-])bench/results/(?!DATE-)[\w.-]*[\w-]", text):
            if not os.path.exists(os.path.join(ROOT, m.group(0))):
                faults.append(f"{doc}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)} does not exist")
    check(checked >= 50, f"only {checked} benchmark commands found in {FIGURE_DOCS}: the parser lost them")
    check(not faults, "commands that would not run as written:\n  " + "\n  ".join(faults))


def table_cells(row):
    """The cells of a Markdown table row; a | inside a backtick span is text."""
    cells, cell, code = [], "", False
    for ch in row.strip().strip("|"):
        if ch == "`":
            code = not code
        if ch == "|" and not code:
            cells.append(cell.strip())
            cell = ""
        else:
            cell += ch
    return cells + [cell.strip()]


def glance_rows(text):
    """(line, cells) of each row of the README's head-to-head table."""
    lines = text.split("\n")
    start = next(i for i, l in enumerate(lines) if l.startswith("### The head-to-head at a glance"))
    rows, seen = [], False
    for n, line in enumerate(lines[start + 1:], start + 2):
        if line.startswith("|"):
            seen = True
            if not line.startswith(("| figure |", "|---")):
                rows.append((n, table_cells(line)))
        elif seen:
            break
    return rows


def judged_figures(goal, latest):
    """(comparison, bound, the bold latest figure) of a row, or None for a row
    without a numeric goal or a bold latest figure (not judged)."""
    g = re.match(r"([≥≤]) ([\d.,]+)", goal)
    m = re.search(r"\*\*([\d.,]+(?: / [\d.,]+)*)\*\*", latest)
    return (g.group(1), float(g.group(2).replace(",", "")), m.group(1)) if g and m else None


def met_fault(figure, goal, latest, met):
    """What is wrong with a judged row's verdict, or None."""
    cmp, bound, shown = judged_figures(goal, latest)
    values = [float(v.replace(",", "")) for v in shown.split(" / ")]
    ok = [v >= bound if cmp == "≥" else v <= bound for v in values]
    labels = re.findall(r"c=[\d,]+", figure)
    verdict = met.lower()
    if all(ok):
        want = "yes"
    elif not any(ok):
        want = "no"
    elif len(labels) == len(values):
        want = " / ".join(l for l, o in zip(labels, ok) if o)
        # "c=100" must not pass for a verdict that names only "c=1000"
        if verdict.startswith(want) and not verdict[len(want):len(want) + 1].isdigit():
            return None
        return f"{figure}: {shown} against {goal}: the verdict should start with {want!r}, it is {met!r}"
    else:
        return None if not verdict.startswith(("yes", "no")) else \
            f"{figure}: {shown} against {goal} is met in part, the verdict is {met!r}"
    if re.match(want + r"\b", verdict):
        return None
    return f"{figure}: {shown} against {goal}: the verdict should be {want!r}, it is {met!r}"


def test_the_head_to_head_verdicts_follow_their_figures():
    text = open(README, encoding="utf-8").read()
    rows = glance_rows(text)
    check(len(rows) >= 5, f"only {len(rows)} rows found in the head-to-head table: the parser lost it")
    faults, judged = [], 0
    for line, cells in rows:
        check(len(cells) == 5, f"README.md:{line}: {len(cells)} cells, the table has 5")
        if judged_figures(cells[1], cells[2]) is None:
            continue
        judged += 1
        fault = met_fault(cells[0], cells[1], cells[2], cells[3])
        if fault:
            faults.append(f"README.md:{line}: {fault}")
    check(judged >= 5, f"only {judged} rows with a goal and a bold latest figure: the parser lost them")
    check(not faults, "verdicts the figures do not support:\n  " + "\n  ".join(faults))


if __name__ == "__main__":
    run_with_servers("README claims", cases_of(globals()), SERVERS.current)
