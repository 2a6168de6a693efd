#!/usr/bin/env python3
"""The Debian package, built by the one command deploy/build-deb.sh, checked without installing
anything on this machine: its control data and contents, man pages generated from --help, the
unit verified by systemd-analyze and as hardened as before (offline security review), and the
packaged binary serving with the packaged configuration from an extracted copy. Also what
`Restart=`/`systemctl restart` relies on: the master exits only after its writer and workers,
so a new instance started right after it finds the data directory free, and one started while
the old one still runs is refused.

    KINGX_BIN=build/src/kingx python3 tests/deploy/test_package.py BUILD_DIR
(BUILD_DIR: where build-deb.sh builds; kept between runs so that a rebuild is incremental.)
"""

import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proxies import DEPLOY, REPO, exit_on_sigterm, require  # noqa: E402
from kingx_harness import (Conn, ConnectionClosed, Server, TestFailure, cases_of, check, free_port,  # noqa: E402
                           http, key_path, proc_stat, run_cases, wait_for)

OUT = None      # build-deb.sh's output directory
DEB = None      # the .deb
ROOT = None     # the .deb extracted
VERSION = None  # meson project version
# Exposure score of deploy/kingx.service when this test was written (systemd 252,
# `systemd-analyze security --offline=yes`): the unit may only get more hardened.
MAX_EXPOSURE = 1.7


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def build():
    global DEB, ROOT, VERSION
    p = run(["meson", "introspect", "--projectinfo", os.path.join(REPO, "meson.build")])
    check(p.returncode == 0, f"meson introspect: {p.stderr}")
    VERSION = json.loads(p.stdout)["version"]
    p = run(["bash", os.path.join(DEPLOY, "build-deb.sh"), OUT], timeout=1500)
    check(p.returncode == 0, f"deploy/build-deb.sh failed:\n{p.stdout}\n{p.stderr}")
    DEB = p.stdout.strip().splitlines()[-1]
    check(os.path.isfile(DEB) and os.path.basename(DEB).startswith(f"kingx_{VERSION}-1_"),
          f"build-deb.sh printed {DEB!r}")
    ROOT = tempfile.mkdtemp(prefix="kingx-deb-root-")
    p = run(["dpkg-deb", "-x", DEB, ROOT])
    check(p.returncode == 0, f"dpkg-deb -x: {p.stderr}")


def field(name):
    p = run(["dpkg-deb", "-f", DEB, name])
    check(p.returncode == 0, f"dpkg-deb -f {name}: {p.stderr}")
    return p.stdout.strip()


def test_control_data_names_the_package_its_version_and_dependencies():
    check(field("Package") == "kingx", "Package")
    check(field("Version") == f"{VERSION}-1", f"Version {field('Version')} vs meson {VERSION}")
    arch = run(["dpkg", "--print-architecture"]).stdout.strip()
    check(field("Architecture") == arch, f"Architecture {field('Architecture')}")
    deps = field("Depends")
    for lib in ("libc6", "libuv1", "libzstd1", "libstdc++6", "adduser"):
        check(re.search(r"(^|, )" + re.escape(lib) + r"( |,|$)", deps), f"Depends lacks {lib}: {deps}")
    p = run(["dpkg-deb", "--ctrl-tarfile", DEB])
    check(p.returncode == 0, "control tarfile")
    ctrl = tempfile.mkdtemp(prefix="kingx-deb-ctrl-")
    try:
        check(run(["dpkg-deb", "-e", DEB, ctrl]).returncode == 0, "dpkg-deb -e")
        with open(os.path.join(ctrl, "conffiles")) as f:
            check(f.read().split() == ["/etc/kingx/kingx.json", "/etc/logrotate.d/kingx"], "conffiles")
        for script in ("postinst", "prerm", "postrm"):
            path = os.path.join(ctrl, script)
            check(os.access(path, os.X_OK), f"{script} not executable")
            check(run(["sh", "-n", path]).returncode == 0, f"{script}: shell syntax error")
        post = open(os.path.join(ctrl, "postinst")).read()
        # Starts go through deb-systemd-invoke, which obeys policy-rc.d, never systemctl start.
        check("deb-systemd-invoke" in post and "systemctl start" not in post
              and "systemctl enable" not in post, "postinst must start through deb-systemd-invoke")
        check("adduser --system" in post, "postinst creates the system user")
        check("rm -rf" not in open(os.path.join(ctrl, "postrm")).read(), "purge must keep the data")
        # md5sums cover every shipped file.
        listed = {l.split(None, 1)[1].strip() for l in open(os.path.join(ctrl, "md5sums"))}
        files = {os.path.relpath(os.path.join(d, f), ROOT) for d, _, fs in os.walk(ROOT) for f in fs}
        check(listed == files, f"md5sums vs contents: {sorted(listed ^ files)}")
    finally:
        shutil.rmtree(ctrl, ignore_errors=True)


def test_removal_masks_the_service_and_purge_keeps_the_data():
    # The README: `apt-get remove kingx` stops and masks the service; neither
    # remove nor purge deletes /var/lib/kingx. The package's own maintainer
    # scripts run with recording stand-ins for deb-systemd-helper,
    # deb-systemd-invoke and systemctl first on PATH: nothing on this machine
    # is changed. prerm stops only where systemd runs (/run/systemd/system),
    # as Debian's own scripts do.
    ctrl = tempfile.mkdtemp(prefix="kingx-deb-ctrl-")
    try:
        check(run(["dpkg-deb", "-e", DEB, ctrl]).returncode == 0, "dpkg-deb -e")
        fake = os.path.join(ctrl, "bin")
        os.mkdir(fake)
        calls = os.path.join(ctrl, "calls")
        for tool in ("deb-systemd-helper", "deb-systemd-invoke", "systemctl", "rm", "rmdir", "deluser", "userdel"):
            with open(os.path.join(fake, tool), "w") as f:
                f.write(f'#!/bin/sh\necho "{tool} $*" >>"{calls}"\n')
            os.chmod(os.path.join(fake, tool), 0o755)
        env = dict(os.environ, PATH=fake + ":" + os.environ["PATH"])

        def maintainer(script, arg):
            open(calls, "w").close()
            p = run(["sh", os.path.join(ctrl, script), arg], env=env, timeout=30)
            check(p.returncode == 0, f"{script} {arg}: exit {p.returncode} {p.stderr}")
            return open(calls).read().splitlines()

        stop = maintainer("prerm", "remove")
        if os.path.isdir("/run/systemd/system"):
            check("deb-systemd-invoke stop kingx.service" in stop, f"prerm remove does not stop the service: {stop}")
        removed = maintainer("postrm", "remove")
        check("deb-systemd-helper mask kingx.service" in removed, f"postrm remove does not mask the service: {removed}")
        purged = maintainer("postrm", "purge")
        check("deb-systemd-helper purge kingx.service" in purged and
              "deb-systemd-helper unmask kingx.service" in purged, f"postrm purge: {purged}")
        for line in removed + purged:
            check("/var/lib/kingx" not in line and not line.startswith(("rm ", "rmdir ", "deluser ", "userdel ")),
                  f"removal touches the data or the user: {line}")
    finally:
        shutil.rmtree(ctrl, ignore_errors=True)


def test_contents_binaries_unit_configuration_man_pages_examples():
    for path, mode in (("usr/bin/kingx", 0o755), ("usr/bin/kingx-tool", 0o755),
                       ("lib/systemd/system/kingx.service", 0o644), ("etc/kingx/kingx.json", 0o644),
                       ("etc/logrotate.d/kingx", 0o644),
                       ("usr/share/man/man1/kingx.1.gz", 0o644), ("usr/share/man/man1/kingx-tool.1.gz", 0o644),
                       ("usr/share/doc/kingx/copyright", 0o644), ("usr/share/doc/kingx/changelog.Debian.gz", 0o644),
                       ("usr/share/doc/kingx/examples/nginx-sharding.conf", 0o644),
                       ("usr/share/doc/kingx/examples/nginx-resharding.conf", 0o644),
                       ("usr/share/doc/kingx/examples/haproxy-sharding.cfg", 0o644),
                       ("usr/share/doc/kingx/examples/haproxy-resharding.cfg", 0o644),
                       ("usr/share/doc/kingx/examples/kingx-reshard", 0o755)):
        full = os.path.join(ROOT, path)
        check(os.path.isfile(full), f"{path} missing")
        check(os.stat(full).st_mode & 0o777 == mode, f"{path} mode {oct(os.stat(full).st_mode & 0o777)}")
    with open(os.path.join(DEPLOY, "kingx.service")) as f, \
            open(os.path.join(ROOT, "lib/systemd/system/kingx.service")) as g:
        check(f.read() == g.read(), "the packaged unit is deploy/kingx.service")
    with open(os.path.join(DEPLOY, "kingx.logrotate")) as f, open(os.path.join(ROOT, "etc/logrotate.d/kingx")) as g:
        check(f.read() == g.read(), "the packaged /etc/logrotate.d/kingx is deploy/kingx.logrotate")


def test_logrotate_file_rotates_the_unit_s_log_directory_and_signals_the_packaged_pid_file():
    # The three places that must agree: the unit's LogsDirectory/RuntimeDirectory, the packaged
    # configuration's pid file, and what the logrotate file rotates and signals.
    unit = open(os.path.join(ROOT, "lib/systemd/system/kingx.service")).read()
    rotate = open(os.path.join(ROOT, "etc/logrotate.d/kingx")).read()
    conf = json.load(open(os.path.join(ROOT, "etc/kingx/kingx.json")))
    check("LogsDirectory=kingx\n" in unit and "\n/var/log/kingx/*.log {" in rotate,
          "the logrotate file rotates the unit's LogsDirectory, /var/log/kingx")
    check("RuntimeDirectory=kingx\n" in unit and conf["pid"] == "/run/kingx/kingx.pid",
          f"the packaged pid file lies in the unit's RuntimeDirectory: {conf['pid']}")
    check(f"cat {conf['pid']} " in rotate, "the logrotate file signals through the packaged pid file")
    check("create 0640 kingx adm" in rotate, "rotated logs are recreated for the service's user")
    p = run(["file", "-b", os.path.join(ROOT, "usr/bin/kingx")]) if shutil.which("file") else None
    if p is not None:
        check("not stripped" not in p.stdout, f"kingx is not stripped: {p.stdout}")


def test_packaged_binaries_carry_no_crash_points():
    # The engine reads its armed crash and fail points from these variables (engine/kill_point.cc,
    # through getenv); a binary built with them carries the names, one built without never links them.
    names = ("KINGX_KILL_POINT", "KINGX_FAIL_POINT")
    with open(os.path.join(REPO, "engine", "kill_point.cc")) as f:
        source = f.read()
    for name in names:
        check(f'"{name}"' in source and "std::getenv(" in source, f"engine/kill_point.cc no longer reads {name}")
    for binary in ("usr/bin/kingx", "usr/bin/kingx-tool"):
        with open(os.path.join(ROOT, binary), "rb") as f:
            data = f.read()
        for name in names:
            check(name.encode() not in data, f"{binary} was built with crash points ({name} in it)")


def test_kingx_version_matches_the_package():
    for binary in (os.environ["KINGX_BIN"], os.path.join(ROOT, "usr/bin/kingx")):
        p = run([binary, "--version"])
        check(p.returncode == 0 and p.stdout.strip() == f"kingx {VERSION}",
              f"{binary} --version: {p.returncode} {p.stdout!r} (meson.build says {VERSION})")


def test_man_pages_are_generated_from_help_and_name_every_flag():
    page = gzip.open(os.path.join(ROOT, "usr/share/man/man1/kingx.1.gz"), "rt").read()
    check("help2man" in page and page.startswith(".\\\""), "kingx.1 was not generated by help2man")
    check(f'"kingx {VERSION}"' in page, "kingx.1 does not carry the version")
    helptext = run([os.path.join(ROOT, "usr/bin/kingx"), "--help"]).stdout
    flags = sorted(set(re.findall(r"^  (--[a-z0-9-]+)", helptext, re.M)))
    check(len(flags) > 10, f"kingx --help lists flags: {flags}")
    missing = [f for f in flags if f.replace("-", "\\-") not in page and f not in page]
    check(not missing, f"kingx.1 lacks flags of --help: {missing}")
    tool = gzip.open(os.path.join(ROOT, "usr/share/man/man1/kingx-tool.1.gz"), "rt").read()
    check("help2man" in tool and "verify" in tool and "compact" in tool, "kingx-tool.1 from its --help")
    if shutil.which("man"):
        p = run(["man", "-l", os.path.join(ROOT, "usr/share/man/man1/kingx.1.gz")], env={**os.environ, "MANPAGER": "cat"})
        check(p.returncode == 0 and "--listen" in p.stdout.replace("‐", "-"), f"man -l kingx.1: {p.stderr}")


def systemd_root():
    """A root for systemd-analyze: the package's files plus this machine's system units (for the
    targets the unit names), so that only the package's own unit is under review."""
    root = tempfile.mkdtemp(prefix="kingx-deb-systemd-")
    shutil.copytree(ROOT, root, dirs_exist_ok=True, symlinks=True)
    units = os.path.join(root, "lib/systemd/system")
    for name in os.listdir("/lib/systemd/system"):
        src = os.path.join("/lib/systemd/system", name)
        dst = os.path.join(units, name)
        if not os.path.lexists(dst) and os.path.isfile(src) and not os.path.islink(src):
            shutil.copy2(src, dst)
    return root


def test_unit_verifies_and_stays_as_hardened_as_before():
    require("systemd-analyze")
    root = systemd_root()
    try:
        # --man=no: systemd would run man(1) on this machine, where the page is not installed;
        # the page itself is checked above.
        p = run(["systemd-analyze", "verify", "--man=no", f"--root={root}", "kingx.service"])
        check(p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(),
              f"systemd-analyze verify: {p.returncode}\n{p.stdout}{p.stderr}")
        p = run(["systemd-analyze", "security", "--offline=yes", f"--root={root}", "kingx.service"])
        m = re.search(r"Overall exposure level for kingx\.service: (\d+\.\d+)", p.stdout + p.stderr)
        check(m, f"systemd-analyze security: {p.stdout[-800:]}{p.stderr}")
        check(float(m.group(1)) <= MAX_EXPOSURE, f"exposure {m.group(1)} > {MAX_EXPOSURE}:\n{p.stdout}")
        unit = open(os.path.join(root, "lib/systemd/system/kingx.service")).read()
        for line in ("KillMode=mixed", "KillSignal=SIGQUIT", "User=kingx", "ProtectSystem=strict"):
            check(re.search("^" + re.escape(line) + "$", unit, re.M), f"unit lacks {line}")
        stop = int(re.search(r"^TimeoutStopSec=(\d+)$", unit, re.M).group(1))
        check(stop > 70, f"TimeoutStopSec={stop} must exceed the master's own 60 s drain + 10 s kill")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def packaged_server(workdir, port):
    """The extracted binary with the packaged configuration; only the listen address, the data
    directory and the pid file (/run/kingx is the unit's) are overridden (flags win over the file),
    and the error log goes to a file."""
    argv = ["--config", os.path.join(ROOT, "etc/kingx/kingx.json"), "--listen", f"127.0.0.1:{port}",
            "--data", os.path.join(workdir, "data"), "--error-log", os.path.join(workdir, "error.log"),
            "--pid", os.path.join(workdir, "kingx.pid")]
    s = Server(argv, workdir=workdir, port=port, raw_args=True)
    s.bin = os.path.join(ROOT, "usr/bin/kingx")
    return s


def test_packaged_configuration_checks_and_serves():
    conf = json.load(open(os.path.join(ROOT, "etc/kingx/kingx.json")))
    check(conf["data"] == "/var/lib/kingx/data" and conf["listen"] == ["127.0.0.1:8080"], f"packaged config {conf}")
    example = json.load(open(os.path.join(DEPLOY, "kingx.example.json")))
    check(set(conf) == set(example), f"the packaged config names every setting: {set(conf) ^ set(example)}")
    # kingx -t checks that the data directory exists or can be created in its parent, and that the
    # pid file's directory exists. Under systemd, StateDirectory=kingx and RuntimeDirectory=kingx
    # create /var/lib/kingx and /run/kingx before ExecStartPre runs -t; this machine has neither,
    # so both are overridden the same way the server below is.
    work = tempfile.mkdtemp(prefix="kingx-deb-serve-")
    unit = open(os.path.join(ROOT, "lib/systemd/system/kingx.service")).read()
    check("StateDirectory=kingx" in unit, "the unit creates /var/lib/kingx (StateDirectory=kingx) before kingx -t runs")
    check("RuntimeDirectory=kingx" in unit, "the unit creates /run/kingx (RuntimeDirectory=kingx) before kingx -t runs")
    p = run([os.path.join(ROOT, "usr/bin/kingx"), "-t", "--config", os.path.join(ROOT, "etc/kingx/kingx.json"),
             "--data", os.path.join(work, "data"), "--pid", os.path.join(work, "kingx.pid")])
    check(p.returncode == 0 and "successful" in p.stderr, f"kingx -t on the packaged config: {p.stderr}")
    s = packaged_server(work, free_port())
    try:
        s.start()
        k = f"pkg-{time.time_ns()}"
        check(http(s.port, "PUT", key_path(k), b"packaged").status == 201, "PUT")
        r = http(s.port, "GET", key_path(k))
        check(r.status == 200 and r.body == b"packaged", f"GET: {r!r}")
    finally:
        s.cleanup()


def test_master_exits_after_its_children_so_a_restart_finds_the_directory_free():
    work = tempfile.mkdtemp(prefix="kingx-deb-restart-")
    port = free_port()
    s = packaged_server(work, port)
    s2 = None
    try:
        s.start()
        # A second instance on the same data directory while the first runs: refused, clearly.
        other = packaged_server(tempfile.mkdtemp(prefix="kingx-deb-second-"), free_port())
        other.data_dir = s.data_dir
        other.extra[other.extra.index("--data") + 1] = s.data_dir
        other.start(wait=False)
        status = other.wait_exit(30)
        check(status not in (None, 0), f"a second instance on a served data directory exited {status}")
        check("another kingx serves it" in other.logs(), f"the refusal says why:\n{other.logs()}")
        other.cleanup()
        # A PUT whose body is still arriving when the stop begins.
        k = f"restart-{time.time_ns()}"
        c = Conn(port)
        body = os.urandom(200_000)
        c.send(f"PUT {key_path(k)} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body[:1000])
        # Events, not times: a worker holds the connection (one still in the listen
        # queue at QUIT would be reset with the listener), and the stop has begun
        # (/readyz no longer 200) before the rest of the body is sent.
        client_port = c.sock.getsockname()[1]
        wait_for(lambda: s.worker_of_client_port(client_port), 120, "a worker to accept the PUT's connection")
        group = s.group_pids()
        check(len(group) >= 3, f"master, writer and a worker expected: {group}")
        s.signal(signal.SIGQUIT)
        wait_for(lambda: not s.answers_ready(), 120, "the graceful stop to begin (/readyz not 200)")
        c.send(body[1000:])
        r = c.read_response()
        check(r.status == 201, f"the PUT in flight at QUIT: {r!r}")
        c.close()
        check(s.wait_exit(60) == 0, "graceful stop exit status")
        # When the master is gone, so is every process of the old instance (what KillMode=mixed
        # and the stop job's wait for an empty cgroup rely on).
        # proc_stat reads /proc/PID/stat once: a process that ends between a
        # check for its directory and the read counts as gone, not as an error.
        left = [p for p in group if (st := proc_stat(p)) is not None and st[3] not in ("Z", "X")]
        check(not left, f"processes of the old instance outlived its master: {left}")
        s2 = packaged_server(tempfile.mkdtemp(prefix="kingx-deb-new-"), port)
        s2.data_dir = s.data_dir
        s2.extra[s2.extra.index("--data") + 1] = s.data_dir
        s2.start()
        r = http(s2.port, "GET", key_path(k))
        check(r.status == 200 and r.body == body, f"the acknowledged PUT after the restart: {r.status}")
    finally:
        if s2 is not None:
            s2.cleanup()
        s.cleanup()


def main():
    exit_on_sigterm()
    global OUT
    OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "build-deb")
    for tool in ("dpkg-deb", "help2man", "dpkg-shlibdeps"):
        require(tool)
    try:
        build()
        status = run_cases("Debian package (deploy/build-deb.sh)", cases_of(globals()))
    except TestFailure as e:
        print(f"FAIL build: {e}")
        status = 1
    finally:
        if ROOT and os.environ.get("KINGX_KEEP") != "1":
            shutil.rmtree(ROOT, ignore_errors=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
