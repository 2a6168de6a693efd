"""What --data may name, for a start and for `kingx -t` alike (the rule
kingx-tool applies too, engine/data_dir_holds.h): read-write, a missing
directory (created), an empty one (a LOCK, a MANIFEST.tmp or lost+found
aside) or one holding a database (a MANIFEST or a segment file, so a
database from before the MANIFEST too); --read-only, a database only. A
directory holding anything else (a home directory's dotfiles, another
program's files) is refused with exit 1 and a message naming --data, the
directory and what it holds, and nothing is created or changed in it.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_data_dir.py
"""

import os
import shutil
import subprocess
import sys
import tempfile

from kingx_harness import Server, check, http, key_path, require_bin, run_cases

BIN = None
TMP = None


def run_t(*args):
    p = subprocess.run([BIN, "-t"] + list(args), capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


def listing(path):
    """Every entry under path (relative names), or None when it is missing."""
    if not os.path.exists(path):
        return None
    out = []
    for root, dirs, files in os.walk(path):
        out += [os.path.relpath(os.path.join(root, n), path) for n in dirs + files]
    return sorted(out)


def make_dir(name, entries=()):
    """A directory under TMP holding `entries` (names; a trailing / makes a directory)."""
    d = os.path.join(TMP, name)
    os.makedirs(d)
    for e in entries:
        if e.endswith("/"):
            os.makedirs(os.path.join(d, e))
        else:
            with open(os.path.join(d, e), "w") as f:
                f.write("not kingx's\n")
    return d


def database(name, manifest=True):
    """A directory a server wrote key 'kept' into and stopped; without
    `manifest`, its MANIFEST and sorted key view are removed: the layout of a
    database from before the MANIFEST (segments and hints only)."""
    with Server(["--workers", "1"]) as s:
        check(http(s.port, "PUT", key_path("kept"), b"value").status == 201, "PUT kept")
        src = s.data_dir
        s.stop()
        d = os.path.join(TMP, name)
        shutil.copytree(src, d)
    if not manifest:
        os.remove(os.path.join(d, "MANIFEST"))
        shutil.rmtree(os.path.join(d, "keys"), ignore_errors=True)
        check(any(n.endswith(".kxd") for n in os.listdir(d)), f"the copy holds segments: {os.listdir(d)}")
    return d


def serves(d, extra=(), key=None):
    """Starts a server on d (its own work directory beside it): it must get
    ready; with `key`, GET of it must answer 'value'."""
    s = Server(["--workers", "1"] + list(extra), data_dir=d, workdir=tempfile.mkdtemp(dir=TMP))
    try:
        s.start()
        if key is not None:
            r = http(s.port, "GET", key_path(key))
            check(r.status == 200 and r.body == b"value", f"GET {key} from {d}: {r!r}")
    finally:
        s.cleanup()


def refused(d, found, extra=()):
    """A start and -t on d both exit 1 naming --data, d and `found`;
    nothing in d is created or changed."""
    before = listing(d)
    code, out = run_t("--data", d, *extra)
    check(code == 1 and "--data " + d in out and found in out and "successful" not in out,
          f"-t --data {d} {list(extra)}: exit {code}, must be 1 naming --data and {found!r}: {out!r}")
    s = Server(["--workers", "1"] + list(extra), data_dir=d, workdir=tempfile.mkdtemp(dir=TMP))
    try:
        if before is None:
            os.rmdir(d)  # the harness makes the directory; this case wants none
        s.start(wait=False)
        status = s.wait_exit(20)
        logs = s.logs()
        check(status == 1, f"a start on {d} {list(extra)}: exit {status}, must be 1:\n{logs}")
        check("--data " + d in logs and found in logs, f"the start's error names --data {d} and {found!r}:\n{logs}")
    finally:
        s.cleanup()
    check(listing(d) == before, f"{d} changed: {before} -> {listing(d)}")


def test_a_missing_directory_is_created_and_an_empty_one_used():
    missing = os.path.join(TMP, "missing")
    code, out = run_t("--data", missing)
    check(code == 0 and not os.path.exists(missing), f"-t on a missing directory: {code} {out!r}")
    serves(missing)
    check("MANIFEST" in os.listdir(missing), f"the start made a database: {os.listdir(missing)}")
    for name, entries in (("empty", ()), ("lost-found", ("lost+found/",)), ("first-open-cut", ("LOCK", "MANIFEST.tmp"))):
        d = make_dir(name, entries)
        code, out = run_t("--data", d)
        check(code == 0, f"-t on the {name} directory: {code} {out!r}")
        serves(d)
        check("MANIFEST" in os.listdir(d), f"the start made a database in the {name} directory: {os.listdir(d)}")


def test_a_directory_of_other_files_is_refused_and_left_as_it_was():
    refused(make_dir("foreign", ("notes.txt", "lost+found/")), "'notes.txt'")
    refused(make_dir("home", (".bashrc", ".profile")), "2 other entries ('.bashrc', ...)")
    refused(make_dir("look-alike", ("seg-abcdefgh.kxd", "MANIFEST.bak")), "2 other entries")
    refused(make_dir("single", ("notes.txt",)), "'notes.txt'", extra=["--single-process"])


def test_a_database_is_served_with_or_without_its_manifest():
    d = database("db")
    with open(os.path.join(d, "README.txt"), "w") as f:
        f.write("the operator's note beside the database\n")
    for extra in ([], ["--read-only"]):
        code, out = run_t("--data", d, *extra)
        check(code == 0, f"-t {extra} on a database: {code} {out!r}")
        serves(d, extra, key="kept")
    old = database("pre-manifest", manifest=False)
    code, out = run_t("--data", old, "--read-only")
    check(code == 0, f"-t --read-only on a database from before the MANIFEST: {code} {out!r}")
    serves(old, ["--read-only"], key="kept")
    serves(old, key="kept")


def test_read_only_refuses_a_directory_without_a_database():
    refused(os.path.join(TMP, "ro-missing"), "no such directory", extra=["--read-only"])
    refused(make_dir("ro-empty"), "the directory is empty", extra=["--read-only"])
    refused(make_dir("ro-lost-found", ("lost+found/",)), "the directory is empty", extra=["--read-only"])
    refused(make_dir("ro-foreign", ("notes.txt",)), "'notes.txt'", extra=["--read-only"])


def main():
    global BIN, TMP
    BIN = os.path.abspath(require_bin())
    TMP = tempfile.mkdtemp(prefix="kingx-bb-data-dir-")
    try:
        status = run_cases("data directory", [(n[5:], f) for n, f in globals().items() if n.startswith("test_")])
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
