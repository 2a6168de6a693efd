import re, statistics, sys
gaps, between = [], []
t_sync = None
pw = 0
for line in open(sys.argv[1]):
    m = re.match(r"(\d+\.\d+) (\w+)\((\d+)[,)].*= (-?\d+).*<([\d.]+)>", line)
    if not m:
        continue
    t, call, fd, ret, dur = float(m.group(1)), m.group(2), m.group(3), int(m.group(4)), float(m.group(5))
    if call == "fdatasync":
        t_sync = t + dur  # when it returned
        pw = 0
    elif call == "pwrite64" and t_sync is not None:
        pw += 1
    elif call == "write" and ret == 8 and t_sync is not None:
        gaps.append((t - t_sync) * 1e6)
        between.append(pw)
        t_sync = None
if gaps:
    print(f"batches {len(gaps)}: fdatasync return -> completion eventfd write: median {statistics.median(gaps):.0f} us, "
          f"mean {statistics.mean(gaps):.0f} us; pwrite64 calls in between: mean {statistics.mean(between):.2f}")
