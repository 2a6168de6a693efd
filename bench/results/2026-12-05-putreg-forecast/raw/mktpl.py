"""The bench/compare dataset's template database, built once: python3 mktpl.py KINGX [OUTDIR]
(1M x 100 B, 32 x 64 KiB, 8 x 1 MiB, preloaded as bench/compare does; prints its path and seconds)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
from harness import kingx, scenarios  # noqa: E402

out = sys.argv[2] if len(sys.argv) > 2 else "/tmp/putreg"
ds = scenarios.Dataset(1000000, 32, 8)
os.makedirs(os.path.join(out, "tplraw"), exist_ok=True)
path, secs = kingx.build_template(sys.argv[1], os.path.join(out, "tpl"), ds, os.path.join(out, "tplraw"))
print(path, secs)
