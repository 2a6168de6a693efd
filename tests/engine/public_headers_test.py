#!/usr/bin/env python3
"""The engine's public API is the list of headers in engine/meson.build
(engine_public_headers). This test fails when code outside the engine
(src/, http/, engine/tool/, bench/, and the tests of those) includes an engine
header that is not on the list, or when a public header includes a private
one (the public set must stand on its own, as leveldb's include/ does).
engine/ itself and tests/engine/ may include anything.

Usage: public_headers_test.py SOURCE_ROOT PUBLIC_HEADER...
(meson passes the list; the paths may be absolute or relative to SOURCE_ROOT).

Before the real tree it checks a synthetic tree with one violation of each
kind, so a checker that stopped finding anything would fail here too.
"""
import os
import re
import sys
import tempfile

INCLUDE = re.compile(r'^\s*#\s*include\s*[<"](engine/[^">]+)[">]', re.MULTILINE)
# Trees outside the engine: they may include public engine headers only.
OUTSIDE = ("src", "http", "engine/tool", "bench", "tests/src", "tests/http", "tests/fuzz", "tests/blackbox")
SUFFIXES = (".h", ".cc", ".c", ".hpp", ".cpp")


def engine_includes(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return INCLUDE.findall(f.read())


def violations(root, public):
    found = []
    for top in OUTSIDE:
        base = os.path.join(root, top)
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if not name.endswith(SUFFIXES):
                    continue
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root)
                for inc in engine_includes(path):
                    if inc not in public:
                        found.append(f"{rel}: includes {inc}, which is not a public engine header")
    for header in sorted(public):
        path = os.path.join(root, header)
        if not os.path.isfile(path):
            found.append(f"{header}: listed as public but missing")
            continue
        for inc in engine_includes(path):
            if inc not in public:
                found.append(f"{header}: a public header that includes the private {inc}")
    return found


def self_test():
    with tempfile.TemporaryDirectory() as root:
        def write(rel, text):
            path = os.path.join(root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
        write("engine/api.h", '#include "engine/api_types.h"\n')
        write("engine/api_types.h", "")
        write("engine/leaky.h", '#include "engine/inner.h"\n')
        write("engine/inner.h", "")
        write("engine/impl.cc", '#include "engine/inner.h"\n')  # the engine itself: allowed
        write("tests/engine/impl_test.cc", '#include "engine/inner.h"\n')  # its tests: allowed
        write("src/ok.cc", '#include "engine/api.h"\n// #include "engine/inner.h" in a comment\n')
        write("http/angle.h", '#include <engine/inner.h>\n')
        write("src/kv/bad.cc", '#include <string>\n  #  include "engine/inner.h"\n')
        write("engine/tool/tool.cc", '#include "engine/impl.h"\n')
        got = violations(root, {"engine/api.h", "engine/api_types.h", "engine/leaky.h"})
        want = [
            "src/kv/bad.cc: includes engine/inner.h, which is not a public engine header",
            "http/angle.h: includes engine/inner.h, which is not a public engine header",
            "engine/tool/tool.cc: includes engine/impl.h, which is not a public engine header",
            "engine/leaky.h: a public header that includes the private engine/inner.h",
        ]
        if sorted(got) != sorted(want):
            print("self-test failed: the checker found\n  " + "\n  ".join(got), file=sys.stderr)
            return False
    return True


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    root = os.path.abspath(sys.argv[1])
    public = set()
    for arg in sys.argv[2:]:
        path = os.path.abspath(arg if os.path.isabs(arg) else os.path.join(root, arg))
        public.add(os.path.relpath(path, root))
    if not self_test():
        return 1
    found = violations(root, public)
    for line in found:
        print(line)
    print(f"{len(public)} public engine headers; {len(found)} violation(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
