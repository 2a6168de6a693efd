#!/usr/bin/env python3
"""What the active segment's hint names after a kill -9 at rest: for each
binary, a fresh server (1 worker, --sync always, default segments) takes N
PUTs of 100 B to distinct keys, then nothing for --rest seconds; the whole
process group is killed (SIGKILL). Counted from the files the crash left: the
records of the active segment, and the entries of its hint file as written
(decoded up to the first that does not decode, as recovery reads it): the
records recovery can name by their hint when their key bytes are damaged
(engine/FORMAT.md, "What damage costs"). Binaries run in alternating order.

    bench/hint_at_rest.py --bin ref=/work/ref/s26/kingx --bin new=build-release/src/kingx \\
        [--puts 2000,20000] [--rest 3] [--rounds 2] [--out bench/results/DATE-topic/hint_at_rest.json]

Deterministic counts (no timing figure): the load average is printed anyway.
Standard library only.
"""

import argparse
import json
import os
import struct
import time
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "blackbox"))
from kingx_harness import Conn, Server, key_path  # noqa: E402

HEADER = 48
RECORD_HEADER = 40
HINT_HEADER = 24


def records(path):
    """Offsets of the valid-looking records of a segment file (walk by lengths)."""
    with open(path, "rb") as f:
        b = f.read()
    out = []
    off = HEADER
    while off + RECORD_HEADER <= len(b):
        stored, = struct.unpack_from("<I", b, off + 24)
        klen, mlen = struct.unpack_from("<HB", b, off + 32)
        end = off + RECORD_HEADER + klen + mlen + stored
        if klen == 0 or end > len(b):
            break
        out.append(off)
        off = end
    return out


def varint(b, at):
    v = shift = 0
    while at < len(b) and shift < 70:
        c = b[at]
        at += 1
        v |= (c & 0x7F) << shift
        if not c & 0x80:
            return v, at
        shift += 7
    return None, at


def hint_offsets(path):
    """Record offsets the hint as written names (entries up to the first that does not decode)."""
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        b = f.read()
    out = []
    at = HINT_HEADER
    while at < len(b):
        fields = []
        for _ in range(4):  # seq delta, offset, total bytes, key_len
            v, at = varint(b, at)
            if v is None:
                return out
            fields.append(v)
        at += 1 + fields[3]  # type byte, key
        if at > len(b) or fields[3] == 0:
            return out
        out.append(fields[1])
    return out


def one(binary, puts, rest):
    os.environ["KINGX_BIN"] = binary
    srv = Server(["--workers", "1", "--sync", "always", "--compaction", "off"])
    try:
        srv.start()
        c = Conn(srv.port)
        value = b"v" * 100
        for i in range(puts):
            r = c.request("PUT", key_path(b"rest-%08d" % i), value)
            if r.status not in (201, 204):
                raise SystemExit(f"PUT {i}: {r.status}")
        c.close()
        time.sleep(rest)
        srv.kill_group()
        segs = sorted(n for n in os.listdir(srv.data_dir) if n.endswith(".kxd"))
        active = os.path.join(srv.data_dir, segs[-1])
        recs = records(active)
        named = set(hint_offsets(active[:-4] + ".hint")) & set(recs)
        return {"records": len(recs), "named_by_hint": len(named), "segments": len(segs)}
    finally:
        srv.cleanup()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", action="append", required=True, help="NAME=PATH (repeat)")
    ap.add_argument("--puts", default="2000,20000")
    ap.add_argument("--rest", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out")
    a = ap.parse_args()
    bins = [b.split("=", 1) for b in a.bin]
    rows = []
    print("load", open("/proc/loadavg").read().split()[:3], flush=True)
    for rnd in range(a.rounds):
        order = bins if rnd % 2 == 0 else bins[::-1]
        for n in (int(x) for x in a.puts.split(",")):
            for name, path in order:
                r = {"bin": name, "puts": n, "round": rnd, **one(path, n, a.rest)}
                rows.append(r)
                print(f"{name:8} puts {n:6} round {rnd}: active segment records {r['records']:6}, "
                      f"named by its hint after kill -9 {r['named_by_hint']:6}", flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"rest_s": a.rest, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
