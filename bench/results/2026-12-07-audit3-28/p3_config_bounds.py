#!/usr/bin/env python3
"""audit3 probe 3: every numeric setting at its boundary, as a flag and in the JSON file.

README Configuration: "Unknown or invalid settings ... are errors that name the setting"; `kingx -t` "checks a
configuration and exits, like nginx -t". The promise a user reads from it: a value `-t` accepts is one the
server runs with. For each setting at the smallest and largest value the parser accepts (the largest only
where starting with it cannot take the shared machine's memory or threads) and one past each: `-t`; then,
where accepted, a start and PUT/GET of 100 B and of 2 MiB + 1 compressible (both sides of the large-value
path), each GET checked byte for byte. The same values written in a `--config` JSON file must give the same
`-t` verdict.

Usage: KINGX_BIN=... python3 p3_config_bounds.py [extra kingx flags]
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "tests", "blackbox"))
import kingx_harness as h  # noqa: E402

EXTRA = sys.argv[1:]
BIN = h.require_bin()

# (flag, value, accepted?) -- accepted as the parser's range in src/conf/config.cc reads
CASES = [
    ("--workers", "1", True), ("--workers", "0", False), ("--workers", "257", False), ("--workers", "8", True),
    ("--threads", "1", True), ("--threads", "0", False),
    ("--sync", "interval:1", True), ("--sync", "interval:0", None), ("--sync-depth", "1", True),
    ("--sync-depth", "0", False),
    ("--max-value-bytes", "1", True), ("--max-value-bytes", "0", False),
    ("--max-key-bytes", "1", True), ("--max-key-bytes", "0", False),
    ("--segment-bytes", "64K", True), ("--segment-bytes", "65535", False),
    ("--disk-reserve-bytes", "0", True),
    ("--compaction-dead-ratio", "1", True), ("--compaction-dead-ratio", "0.0001", True),
    ("--compaction-dead-ratio", "0", False), ("--compaction-dead-ratio", "1.0001", False),
    ("--compression-level", "19", True), ("--compression-level", "20", False), ("--compression-level", "0", True),
    ("--max-connections", "1", True), ("--max-connections", "0", False),
    ("--max-header-fields", "1", None), ("--max-header-fields", "2", True), ("--max-header-fields", "0", False),
    ("--keepalive-timeout-ms", "1", True), ("--keepalive-timeout-ms", "0", False),
    ("--header-timeout-ms", "1", None), ("--body-timeout-ms", "1", None), ("--send-timeout-ms", "1", None),
    ("--storage-timeout-ms", "100", True), ("--storage-timeout-ms", "99", False),
    ("--backup-max-ms", "1000", True), ("--backup-max-ms", "999", False),
    ("--write-queue-bytes", "1M", True), ("--write-queue-bytes", "1048575", False),
    ("--body-buffer-bytes", "1M", True), ("--body-buffer-bytes", "1048575", False),
    ("--body-spill-bytes", "1M", True), ("--body-spill-bytes", "1048575", False), ("--body-spill-bytes", "0", True),
    ("--response-buffer-bytes", "1M", True), ("--response-buffer-bytes", "1048575", False),
    ("--send-lowat-bytes", "0", True), ("--send-lowat-bytes", "1", True),
]


def file_key(flag):
    return flag[2:].replace("-", "_")


def json_value(flag, value):
    try:
        return int(value)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            return value


def dash_t(args):
    p = subprocess.run([BIN, "-t"] + args, capture_output=True, text=True, timeout=30)
    return p.returncode, (p.stdout + p.stderr).strip().replace("\n", " | ")[:220]


def serve_check(flag, value):
    big = h.compressible_text(2 * 1024 * 1024 + 1, 7)
    small = b"s" * 100
    extra = [flag, value]
    if flag == "--max-value-bytes":
        big = b"x"
        small = b"y"
    if flag == "--max-key-bytes":
        pass
    srv = h.Server(args=["--workers", "1"] + extra + EXTRA)
    try:
        srv.start()
        out = []
        ok = True
        for key, val in (("a", small), ("b", big)):
            with h.Conn(srv.port, timeout=30) as c:
                r = c.request("PUT", "/v1/kv/" + key, val)
                g = c.request("GET", "/v1/kv/" + key) if r.status in (200, 201, 204) else None
            good = r.status in (201, 204) and g is not None and g.status == 200 and g.body == val
            ok = ok and good
            out.append(f"PUT {len(val)} B {r.status}, GET {g.status if g else '-'} {'exact' if good else 'WRONG'}")
        return ok, "; ".join(out)
    except Exception as e:  # noqa: BLE001
        return False, f"start/serve failed: {e!r}"[:400]
    finally:
        if srv.alive():
            srv.stop()
        srv.cleanup()


def main():
    tmp = tempfile.mkdtemp(prefix="audit3-cfg-")
    data = os.path.join(tmp, "d")
    held = false = 0
    for flag, value, accepted in CASES:
        rc_flag, msg_flag = dash_t(["--data", data, flag, value])
        cfg = os.path.join(tmp, "c.json")
        with open(cfg, "w") as f:
            json.dump({file_key(flag): json_value(flag, value)}, f)
        rc_file, msg_file = dash_t(["--data", data, "--config", cfg])
        same = (rc_flag == 0) == (rc_file == 0)
        names = rc_flag == 0 or flag in msg_flag
        names_file = rc_file == 0 or file_key(flag) in msg_file or flag in msg_file
        line = f"{flag} {value}: -t flag {rc_flag} file {rc_file}"
        ok = same and names and names_file and (accepted is None or (rc_flag == 0) == accepted)
        if rc_flag == 0:
            served, detail = serve_check(flag, value)
            ok = ok and served
            line += f"; served: {detail}"
        else:
            line += f"; refused: {msg_flag}"
        if not same:
            line += f"; FILE DIFFERS: {msg_file}"
        print(("HELD  " if ok else "FALSE ") + line, flush=True)
        held += ok
        false += not ok
    print("RESULT", held, "held,", false, "false")


if __name__ == "__main__":
    main()
