#!/usr/bin/env python3
"""Probe: README "Storage engine" numbers from outside.
  - zstd "per value above 256 bytes when it saves >= 10%": values of 200..300 B
    and of chosen compressibility, each record's codec, stored_len and raw_len
    read from the segment files (FORMAT.md's record header), and what zstd -1
    (the CLI, not our code) makes of the same bytes;
  - `--segment-bytes 1M`: every segment file's size after 6 MiB of writes;
  - `kingx-tool stat --json` against what was written.
Usage: p3_engine.py KINGX_BIN KINGX_TOOL_BIN"""
import json, os, random, struct, subprocess, sys, glob
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../tests/blackbox"))
os.environ["KINGX_BIN"] = sys.argv[1]
TOOL = sys.argv[2]
import kingx_harness as h
from probe_verdicts import summary, verdict

def records(path):
    data = open(path, "rb").read()
    off, out = 48, []
    while off + 40 <= len(data):
        seq, stored, raw, klen, mlen, flags = struct.unpack_from("<QIIHBB", data, off + 16)
        if seq == 0 and stored == 0 and klen == 0:
            break  # preallocated zeros
        key = data[off + 40: off + 40 + klen]
        out.append(dict(seq=seq, stored=stored, raw=raw, key=key, type=flags & 3, codec=(flags >> 2) & 3))
        off += 40 + klen + mlen + stored
    return out, len(data), off

def zstd1(b):
    return len(subprocess.run(["zstd", "-1", "-c", "--no-check", "-q"], input=b, capture_output=True, check=True).stdout)

def value(n, rnd_frac, seed):
    r = random.Random(seed)
    k = int(n * rnd_frac)
    return bytes(r.getrandbits(8) for _ in range(k)) + (b"abcd" * n)[: n - k]

def main():
    srv = h.Server(args=["--segment-bytes", "1M", "--compaction", "off", "--workers", "1"])
    srv.start()
    written = {}
    try:
        with h.Conn(srv.port) as c:
            for n in (200, 254, 255, 256, 257, 300, 1000, 5000):
                for frac in (0.0, 0.5, 0.8, 0.85, 0.88, 0.9, 0.92, 0.95, 1.0):
                    key = f"z/{n}/{frac}"
                    v = value(n, frac, n * 100 + int(frac * 100))
                    r = c.request("PUT", "/v1/kv/" + key, body=v)
                    assert r.status in (201, 204), r
                    written[key.encode()] = v
            for i in range(600):       # 6 MiB of 10 KiB random values: rotation
                key = f"r/{i:04d}"
                v = os.urandom(10240)
                r = c.request("PUT", "/v1/kv/" + key, body=v)
                assert r.status in (201, 204), r
                written[key.encode()] = v
        srv.stop()
        segs = sorted(glob.glob(os.path.join(srv.data_dir, "seg-*.kxd")))
        recs = {}
        for s in segs:
            rs, size, end = records(s)
            for rec in rs:
                recs[rec["key"]] = rec
            verdict(size <= (1 << 20), f"segment {os.path.basename(s)}: {size} B file, records end at {end} (<= 1 MiB)")
        for key, v in written.items():
            if not key.startswith(b"z/"):
                continue
            rec = recs[key]
            z = zstd1(v)
            saves10 = rec["stored"] <= 0.9 * len(v) if rec["codec"] == 1 else None
            if rec["codec"] == 1:
                ok = len(v) >= 256 and rec["stored"] <= len(v) * 0.9
                why = "zstd"
            else:
                ok = len(v) < 256 or z > len(v) * 0.9 - 4  # zstd -1 would not save 10% (4 B slack: CLI framing)
                why = "raw"
            verdict(ok, f"{key.decode():14} raw {len(v):5} stored {rec['stored']:5} {why:4} (zstd -1 CLI: {z}, {z / len(v):.2f}) above256={len(v) > 256}")
        out = subprocess.run([TOOL, "--data", srv.data_dir, "stat", "--json"], capture_output=True, text=True)
        print("stat:", out.stdout.strip(), out.stderr.strip())
        st = json.loads(out.stdout)
        live_keys = len(written)
        verdict(st.get("keys") == live_keys, f"stat keys {st.get('keys')} == written {live_keys}")
        print(json.dumps(st, indent=1))
        sum_rec = sum(40 + len(r["key"]) + r["stored"] for r in recs.values())
        print("sum of record bytes of the newest records:", sum_rec, "segments:", len(segs),
              "file bytes:", sum(os.path.getsize(s) for s in segs))
    finally:
        if srv.alive():
            srv.stop()
        srv.cleanup()
    summary()

main()
