"""For each steady sample over 2x with no batch in flight (live >= --live-mb/2): whether a compaction pass
logged in that second or the one before copied an input holding more than half the sample's live bytes
(a large copy: the case src/writer/write_stall.h leaves), from the run's debug log.
Usage: classify.py RUN_DIR... (samples-{bin,compare-bin}.jsonl, logs/{bin,compare-bin}.log)"""
import json, os, re, sys, time
INPUT = re.compile(r"\(([a-z-]+): live (\d+) dead (\d+)")
for run in sys.argv[1:]:
    for name in ("bin", "compare-bin"):
        passes = {}
        for line in open(os.path.join(run, "logs", name + ".log"), errors="replace"):
            if "pass (" not in line or "compaction:" not in line:
                continue
            ts = time.mktime(time.strptime(line[:19], "%Y/%m/%d %H:%M:%S")) - time.timezone
            for why, live, dead in INPUT.findall(line):
                passes.setdefault(int(ts), []).append((why, int(live), int(dead)))
        large = other = 0
        rows = []
        for l in open(os.path.join(run, f"samples-{name}.jsonl")):
            r = json.loads(l)
            L = r.get("live")
            if not L or L < 3 * (1 << 20) or not r.get("steady") or r["dir"] / L <= 2:
                continue
            if r.get("unpublished") or r.get("unpublished_before"):
                continue
            sec = int(r["wall"])
            big = [p for s in (sec - 1, sec) for p in passes.get(s, []) if p[1] > L / 2]
            large += bool(big)
            other += not big
            rows.append(f"  cycle {r['cycle']} {r['dir']/L:.2f}x dead {r['dead']/L:.2f} L; large copy: {big[:2]}")
        print(f"{os.path.basename(run.rstrip('/'))} {name}: {large} beside a copy of an input > L/2, {other} not")
        print("\n".join(rows))
