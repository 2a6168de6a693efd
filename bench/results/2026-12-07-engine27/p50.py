"""Commit p50 (us) and ops/s of each store's durable overwrites, per engine_bench JSON given."""
import json, sys
for path in sys.argv[1:]:
    d = json.load(open(path))
    for s in d["stores"]:
        cells = "; ".join(f"b{o['batch']} p50 {o['commit_p50_us']:.0f} us p99 {o['commit_p99_us']:.0f} us {o['ops_per_s']:.0f} op/s"
                          for o in s["overwrite"])
        print(f"{path.rsplit('/', 1)[-1]} {s['store']}: fill {s['fill_ops_per_s']:.0f} read {s['read_ops_per_s']:.0f} open {s['open_s']:.3f} s; {cells}")
