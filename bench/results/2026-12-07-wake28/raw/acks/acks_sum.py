"""Per side of port ARGV[2] in an `ss -tin` dump ARGV[1]: sockets, segments out, data segments out, pure ACKs."""
import re, sys
port = sys.argv[2]
lines = open(sys.argv[1]).read().split("\n")
side = None; tot = {"server": [0, 0, 0], "client": [0, 0, 0]}
for l in lines:
    m = re.match(r"\S+\s+\d+\s+\d+\s+(\S+)\s+(\S+)", l)
    if m:
        side = "server" if m.group(1).endswith(":" + port) else ("client" if m.group(2).endswith(":" + port) else None)
        continue
    if side and "segs_out" in l:
        so = int(re.search(r"segs_out:(\d+)", l).group(1)); dso = int((re.search(r"data_segs_out:(\d+)", l) or [0, 0])[1] if re.search(r"data_segs_out:(\d+)", l) else 0)
        tot[side][0] += so; tot[side][1] += dso; tot[side][2] += 1
        side = None
for s, (so, dso, n) in tot.items():
    print(f"{s}: sockets {n} segs_out {so} data_segs_out {dso} pure (segs_out - data) {so - dso} pure/data {((so - dso) / max(dso, 1)):.3f}")
