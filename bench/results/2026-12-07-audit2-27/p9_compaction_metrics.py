#!/usr/bin/env python3
"""audit2 probe: the Metrics table's compaction rows against the data
directory's files: one POST /admin/compact over half-dead sealed segments;
kingx_compaction_segments_deleted_total / _written_total against the .kxd
files that went and came, _written_bytes_total against the new segments and
hints' sizes, _reclaimed_bytes_total = deleted segment file bytes - written
bytes; and kingx_engine_corruptions_total for one damaged record read 5 times.

    KINGX_BIN=/work/ref/s27/kingx python3 p9_compaction_metrics.py [extra flags]
"""
import os, re, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../tests/blackbox"))
from kingx_harness import Server, http  # noqa

EXTRA = sys.argv[1:]
results = []


def report(name, ok, detail):
    results.append((name, ok))
    print(("HELD " if ok else "FALSE") + f" {name}: {detail}", flush=True)


def metrics(port):
    body = http(port, "GET", "/metrics", timeout=30).body.decode()
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(\S+) (\S+)$", body, re.M)}


def files(d):
    return {f: os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if f.endswith((".kxd", ".hint"))}


s = Server(["--workers", "1", "--segment-bytes", "1M", "--compaction-dead-ratio", "0.99", "--compression-level", "0"] + EXTRA, admin=True)
s.start()
try:
    for i in range(60):
        http(s.port, "PUT", "/v1/kv/k%d" % i, os.urandom(100 << 10))
    for i in range(0, 60, 2):
        http(s.port, "DELETE", "/v1/kv/k%d" % i)
    time.sleep(0.5)
    a = metrics(s.port); fa = files(s.data_dir)
    r = http(s.admin_port, "POST", "/admin/compact", timeout=60)
    time.sleep(3)
    b = metrics(s.port); fb = files(s.data_dir)
    print("compact:", r.status, r.body[:200])
    gone = {f: n for f, n in fa.items() if f not in fb}
    new = {f: n for f, n in fb.items() if f not in fa}
    d = lambda k: b.get(k, 0) - a.get(k, 0)
    gone_seg = [f for f in gone if f.endswith(".kxd")]
    new_seg = [f for f in new if f.endswith(".kxd")]
    print("gone:", gone, "new:", new)
    report("segments_deleted_total = .kxd files gone", d("kingx_compaction_segments_deleted_total") == len(gone_seg), f'{d("kingx_compaction_segments_deleted_total"):g} vs {len(gone_seg)}')
    report("segments_written_total = .kxd files new", d("kingx_compaction_segments_written_total") == len(new_seg), f'{d("kingx_compaction_segments_written_total"):g} vs {len(new_seg)}')
    wb = sum(new.values())
    report("written_bytes_total = new segments + hints' bytes", abs(d("kingx_compaction_written_bytes_total") - wb) <= 0, f'{d("kingx_compaction_written_bytes_total"):g} vs {wb} (sizes on disk)')
    rb = sum(n for f, n in gone.items() if f.endswith(".kxd")) - d("kingx_compaction_written_bytes_total")
    report("reclaimed_bytes_total = deleted segment bytes - written bytes", d("kingx_compaction_reclaimed_bytes_total") == rb, f'{d("kingx_compaction_reclaimed_bytes_total"):g} vs {rb}')
    rk = sum(n for f, n in gone.items() if f.endswith(".kxd")) - sum(n for f, n in new.items() if f.endswith(".kxd"))
    report("reclaimed_bytes_total = deleted segment file bytes - new segment file bytes (hints on neither side)", d("kingx_compaction_reclaimed_bytes_total") == rk, f'{d("kingx_compaction_reclaimed_bytes_total"):g} vs {rk}')
    report("passes_total +1", d("kingx_compaction_passes_total") == 1, f'{d("kingx_compaction_passes_total"):g}')
    bad = [i for i in range(1, 60, 2) if len(http(s.port, "GET", "/v1/kv/k%d" % i).body) != 100 << 10]
    report("live keys intact after compaction", not bad, f"{bad}")
finally:
    s.stop()
print(f"{sum(1 for _, ok in results if ok)} held, {sum(1 for _, ok in results if not ok)} false")
