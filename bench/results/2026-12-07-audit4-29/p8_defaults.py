#!/usr/bin/env python3
"""audit4 probe 8: documented defaults agree: `kingx --help`'s `[key] default: V` against deploy/kingx.example.json
(whose every value claims to be the default) and against the README's "(default ...)" phrases for each flag.

Usage: python3 p8_defaults.py KINGX_BIN REPO
"""
import json
import re
import subprocess
import sys

B, R = sys.argv[1], sys.argv[2]
help_text = subprocess.run([B, "--help"], capture_output=True, text=True).stdout
defaults = dict(re.findall(r"^\s+\[(\w+)\] default: (.*)$", help_text, re.M))
example = {k: v for k, v in json.load(open(f"{R}/deploy/kingx.example.json")).items() if not k.startswith("//")}
UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def norm(v):
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, list):
        return ",".join(v) if v else "none"
    s = str(v)
    m = re.fullmatch(r"(\d+)([KMG])", s)
    if m:
        return str(int(m.group(1)) * UNITS[m.group(2)])
    return s


bad = []
for k, d in defaults.items():
    if k not in example:
        bad.append(f"{k}: not in the example")
    elif norm(example[k]) != norm(d):
        bad.append(f"{k}: --help {d!r}, example {example[k]!r}")
print(f"--help vs kingx.example.json: {len(defaults)} settings, {len(bad)} differ: {bad}")

readme = open(f"{R}/README.md").read()
words = {"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "s": 1000, "h": 3600000}
bad2 = []
seen = 0
for m in re.finditer(r"`--([a-z-]+)`[^.;()]{0,40}\(default ([^,;)]+)", readme):
    flag, text = m.group(1), m.group(2).strip()
    key = flag.replace("-", "_")
    if key not in defaults:
        continue
    seen += 1
    t = re.match(r"`?([\d.,]+|\w+)`?\s*(KiB|MiB|GiB|s|h)?", text)
    val = t.group(1).replace(",", "")
    if t.group(2) and re.fullmatch(r"[\d.]+", val):
        val = str(int(float(val) * words[t.group(2)]))
    want = norm(defaults[key])
    if val != want:
        bad2.append(f"--{flag}: README '(default {text}' vs --help {defaults[key]}")
print(f"README '(default ...)' vs --help: {seen} phrases, {len(bad2)} differ: {bad2}")
