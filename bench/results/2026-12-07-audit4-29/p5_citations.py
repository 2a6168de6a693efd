#!/usr/bin/env python3
"""audit4 probe 5: every test RELIABILITY.md and README.md cite exists: each `name_test` / `test_x.py` named, and
each quoted case title beside it (a title ending in '…' is matched as a prefix) is found in tests/.

Usage: python3 p5_citations.py REPO
"""
import os
import re
import sys

repo = sys.argv[1] if len(sys.argv) > 1 else "."
corpus = ""
files = set()
for root, _, names in os.walk(os.path.join(repo, "tests")):
    for n in names:
        files.add(n)
        if n.endswith((".cc", ".py", ".build", ".sh")):
            corpus += open(os.path.join(root, n), encoding="utf-8", errors="replace").read()
meson_tests = set(re.findall(r"'(\w+)'", corpus))
for root, _, names in os.walk(os.path.join(repo, "build", "tests")):
    meson_tests.update(names)  # executables (http_connection_test from tests/http/connection_test.cc)
corpus_flat = re.sub(r"\s+", " ", corpus)
missing = []
checked = 0
for doc in ("RELIABILITY.md", "README.md"):
    text = open(os.path.join(repo, doc), encoding="utf-8").read()
    for m in re.finditer(r"`(?:tests/[\w/]+/)?(test_\w+\.py|\w+_test)`((?:[ ,]*(?:and )?\"[^\"]+\")*)", text):
        name = m.group(1)
        checked += 1
        if name.endswith(".py"):
            if name not in files:
                missing.append((doc, name, "file missing"))
        elif name + ".cc" not in files and name not in meson_tests:
            missing.append((doc, name, "test missing"))
        for title in re.findall(r"\"([^\"]+)\"", m.group(2) or ""):
            checked += 1
            # a title cut with '…' is matched piece by piece; titles in Python are function names
            # (spaces as _) or strings; a title may be folded over lines in the document
            for t in re.sub(r"\s+", " ", title).split("…"):
                t = t.strip().rstrip(".,").strip()
                if len(t) < 8:
                    continue
                if t not in corpus_flat and t.replace(" ", "_").replace("-", "_").replace("'", "") not in corpus_flat:
                    missing.append((doc, name, t))
                    break
for x in missing:
    print("MISSING", *x)
print(f"checked {checked} citations, {len(missing)} not found")
