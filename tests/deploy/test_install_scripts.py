#!/usr/bin/env python3
"""What the install steps install: deploy/setup-debian.sh (the quick start's packages) and
`--tests` (the suite's), run against a fake apt-get/dpkg-query on PATH so nothing is installed:
every apt-get call waits for the dpkg lock, the quick start asks for the build packages and
nothing else (no peer), the test step adds only test tools and hands nginx/haproxy to
bench/install-peers.sh; and none of the packages installed outside install-peers.sh ships a
service (checked with dpkg -L on this machine, where the suite's install step put them; the
base system's required/important packages, on every Debian host anyway, aside).

    python3 tests/deploy/test_install_scripts.py
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proxies import DEPLOY, REPO  # noqa: E402
from kingx_harness import cases_of, check, run_cases  # noqa: E402

PEERS = {"nginx", "nginx-light", "nginx-full", "nginx-extras", "haproxy", "redis-server", "redis",
         "memcached", "webdis", "prometheus", "apache2", "postgresql"}
FAKE_APT = """#!/bin/sh
# fake apt-get: records its arguments, installs nothing
printf '%s\\n' "$*" >> "$FAKE_LOG"
exit 0
"""
FAKE_DPKG_QUERY = """#!/bin/sh
# fake dpkg-query: only the packages in $FAKE_INSTALLED are installed
for a in "$@"; do last=$a; done
case " $FAKE_INSTALLED " in
  *" $last "*) printf 'install ok installed' ;;
  *) exit 1 ;;
esac
"""


def run_setup(args, installed=""):
    """Runs deploy/setup-debian.sh with fakes first on PATH; returns (status, apt-get calls)."""
    d = tempfile.mkdtemp(prefix="kingx-fake-apt-")
    for name, text in (("apt-get", FAKE_APT), ("dpkg-query", FAKE_DPKG_QUERY)):
        path = os.path.join(d, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o755)
    log = os.path.join(d, "log")
    env = dict(os.environ, PATH=d + ":" + os.environ["PATH"], FAKE_LOG=log, FAKE_INSTALLED=installed)
    try:
        p = subprocess.run(["bash", os.path.join(DEPLOY, "setup-debian.sh")] + args, env=env,
                           capture_output=True, text=True, timeout=60)
        calls = open(log).read().splitlines() if os.path.exists(log) else []
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return p, calls


def installed_packages(calls):
    out = []
    for c in calls:
        words = shlex.split(c)
        if "install" in words:
            out += [w for w in words[words.index("install") + 1:] if not w.startswith("-")]
    return out


def script_lists():
    text = open(os.path.join(DEPLOY, "setup-debian.sh")).read()
    def arr(name):
        m = re.search(r"^" + name + r"=\((.*?)\)", text, re.M | re.S)
        check(m, f"setup-debian.sh has no {name}=(...) list")
        return m.group(1).split()
    return arr("build"), arr("tests")


def test_quick_start_installs_the_build_packages_and_nothing_else():
    check(os.geteuid() == 0, "needs root (the script refuses to install as another user)")
    p, calls = run_setup([])
    check(p.returncode == 0, f"setup-debian.sh: {p.returncode}\n{p.stderr}")
    build, _ = script_lists()
    got = installed_packages(calls)
    check(sorted(got) == sorted(build), f"the quick start installed {got}, expected {build}")
    check(not PEERS & set(got), f"the quick start installs peers: {PEERS & set(got)}")
    for c in calls:
        check("-o DPkg::Lock::Timeout=600" in c, f"apt-get call without the dpkg lock timeout: {c}")
    quick = open(os.path.join(DEPLOY, "quickstart.sh")).read()
    check(re.search(r"^bash deploy/setup-debian\.sh$", quick, re.M), "quickstart.sh calls setup-debian.sh alone")


def test_test_step_adds_test_tools_and_leaves_peers_to_install_peers():
    # nginx and haproxy "installed", so bench/install-peers.sh finds nothing to do.
    p, calls = run_setup(["--tests"], installed="nginx haproxy")
    check(p.returncode == 0, f"setup-debian.sh --tests: {p.returncode}\n{p.stderr}")
    build, tests = script_lists()
    got = installed_packages(calls)
    check(sorted(got) == sorted(build + tests), f"--tests installed {got}")
    check(not PEERS & set(got), f"peers installed outside bench/install-peers.sh: {PEERS & set(got)}")
    for c in calls:
        check("-o DPkg::Lock::Timeout=600" in c, f"apt-get call without the dpkg lock timeout: {c}")
    text = open(os.path.join(DEPLOY, "setup-debian.sh")).read()
    check('bash bench/install-peers.sh --packages "$test_peers"' in text and
          re.search(r'^test_peers="nginx haproxy"$', text, re.M), "nginx and haproxy go through install-peers.sh")
    run_all = open(os.path.join(REPO, "tests", "run-all.sh")).read()
    check("bash deploy/setup-debian.sh --tests" in run_all, "tests/run-all.sh installs with --tests")


def test_nothing_is_installed_when_everything_is_present():
    build, tests = script_lists()
    p, calls = run_setup(["--tests"], installed=" ".join(build + tests + ["nginx", "haproxy"]))
    check(p.returncode == 0 and not calls, f"apt-get called although nothing is missing: {calls}")


def test_every_apt_get_in_the_repository_waits_for_the_dpkg_lock():
    bad = []
    for top in ("deploy", "bench", "tests", ".ci"):
        for d, _, files in os.walk(os.path.join(REPO, top)):
            for name in files:
                path = os.path.join(d, name)
                try:
                    text = open(path, errors="replace").read()
                except OSError:
                    continue
                if not (name.endswith(".sh") or text.startswith("#!/usr/bin/env bash") or text.startswith("#!/bin/sh")):
                    continue
                opts = re.search(r"apt_opts=\(([^)]*)\)", text)
                for n, line in enumerate(text.splitlines(), 1):
                    code = line.split("#", 1)[0]
                    if not re.search(r"(^|[;&|(\s])apt-get\s", code) or "echo" in code or "printf" in code:
                        continue
                    # Fetching a .deb or a source into the current directory takes no dpkg lock.
                    if re.search(r"apt-get\s+(-\S+\s+)*(download|source|changelog)\b", code):
                        continue
                    ok = "DPkg::Lock::Timeout=" in code or (
                        '"${apt_opts[@]}"' in code and opts and "DPkg::Lock::Timeout=" in opts.group(1))
                    if not ok:
                        bad.append(f"{os.path.relpath(path, REPO)}:{n}: {line.strip()}")
    check(not bad, "apt-get without -o DPkg::Lock::Timeout:\n  " + "\n  ".join(bad))


def test_no_package_installed_outside_install_peers_ships_a_service():
    build, tests = script_lists()
    with_units = []
    for pkg in build + tests:
        prio = subprocess.run(["dpkg-query", "-W", "-f=${Priority}", pkg], capture_output=True, text=True)
        if prio.stdout in ("required", "important"):
            continue  # the base system (systemd, util-linux's fstrim.timer, procps): on every host
        p = subprocess.run(["dpkg", "-L", pkg], capture_output=True, text=True)
        check(p.returncode == 0, f"{pkg} is not installed here (run deploy/setup-debian.sh --tests)")
        units = [f for f in p.stdout.splitlines()
                 if re.match(r"^/(usr/)?lib/systemd/system/[^/]+\.(service|socket|timer)$", f)
                 or re.match(r"^/etc/init\.d/[^/]+$", f)]
        if units:
            with_units.append((pkg, units))
    check(not with_units, f"packages with services installed without disabling them: {with_units}")


if __name__ == "__main__":
    sys.exit(run_cases("install steps (deploy/setup-debian.sh)", cases_of(globals())))
