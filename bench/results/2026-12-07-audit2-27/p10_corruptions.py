#!/usr/bin/env python3
"""audit2 probe: kingx_engine_corruptions_total "records that failed a
checksum": one record's value byte flipped while stopped, then the key read
5 times; the counter's delta at open and after the reads.

    KINGX_BIN=/work/ref/s27/kingx python3 p10_corruptions.py [extra flags]
"""
import os, re, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../tests/blackbox"))
from kingx_harness import Server, http  # noqa


def metric(port, name):
    body = http(port, "GET", "/metrics").body.decode()
    return float(re.search(r"^%s (\S+)$" % name, body, re.M).group(1))


s = Server(["--workers", "1", "--compression-level", "0"] + sys.argv[1:])
s.start()
val = os.urandom(10000)
http(s.port, "PUT", "/v1/kv/other", b"o" * 100)
http(s.port, "PUT", "/v1/kv/damaged", val)
s.stop()
seg = sorted(f for f in os.listdir(s.data_dir) if f.endswith(".kxd"))[-1]
p = os.path.join(s.data_dir, seg)
b = bytearray(open(p, "rb").read())
i = b.find(val[:64])
b[i + 5000] ^= 0xFF
open(p, "wb").write(b)
s.start()
c0 = metric(s.port, "kingx_engine_corruptions_total")
sts = [http(s.port, "GET", "/v1/kv/damaged").status for _ in range(5)]
c1 = metric(s.port, "kingx_engine_corruptions_total")
print(f"after open {c0:g}; 5 GETs {sts}; after them {c1:g} (delta {c1 - c0:g}); other key {http(s.port, 'GET', '/v1/kv/other').status}")
s.stop()
