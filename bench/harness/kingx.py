"""Starting kingx for the benchmark, and building its preloaded data directory once.

The dataset is written once into a template directory by a kingx started with --sync none
(PUTs driven by wrk with bench/lua/preload.lua for the small keys, plain HTTP for the large
ones), stopped gracefully (SIGQUIT), then copied for every kingx instance, so that each
instance opens (recovers) the same database and several instances can run at once.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import time

from . import procs

LUA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lua")


def start(kingx_bin, workdir, data_dir, variant, sync, ready_timeout_s):
    """Start kingx with the variant's model flags on a free port; wait for /readyz 200.
    variant: dict with model ('event'|'threads'), workers, accept, threads. Returns (proc, port)."""
    port = procs.free_port()
    argv = [kingx_bin, "--listen", f"127.0.0.1:{port}", "--data", data_dir,
            "--workers", str(variant.get("workers", 1)), "--model", variant["model"],
            "--sync", sync, "--access-log", "off",
            # The same connection cap as the nginx peers' worker_connections.
            "--max-connections", "19000"]
    if variant["model"] == "threads":
        argv += ["--threads", str(variant["threads"])]
    else:
        argv += ["--accept", variant.get("accept", "reuseport")]
    os.makedirs(workdir, exist_ok=True)
    p = procs.Proc("kingx", argv, os.path.join(workdir, "kingx.log"))
    try:
        procs.wait_http_ok(port, "/readyz", ready_timeout_s, p)
    except Exception:
        p.stop()
        raise
    return p, port


def ready_timeout(dataset):
    """How long a kingx start may take to answer /readyz 200: recovery grows with the keys."""
    return 20 + dataset.nkeys / 10000


def _preload_small(port, dataset, raw_dir):
    """PUT k0..k(nkeys-1) with wrk (64 connections); interrupt it once the last key exists."""
    argv = ["wrk", "-t1", "-c64", "-d900s", "--timeout", "30s",
            "-s", os.path.join(LUA_DIR, "preload.lua"), f"http://127.0.0.1:{port}/", "--",
            "prefix=/v1/kv/", "keyp=k", f"nkeys={dataset.nkeys}", "size=100"]
    t0 = time.monotonic()
    last = f"/v1/kv/k{dataset.nkeys - 1}"
    with open(os.path.join(raw_dir, "preload-kingx.txt"), "w") as out:
        out.write("$ " + " ".join(argv) + "\n")
        out.flush()
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        try:
            while p.poll() is None and time.monotonic() - t0 < 900:  # bounded by wrk's -d
                time.sleep(0.5)
                if procs.http_request(port, "GET", last, timeout_s=30)[0] == 200:
                    time.sleep(1)  # let the requests still in flight (earlier keys) finish
                    break
        finally:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    with open(os.path.join(raw_dir, "preload-kingx.txt")) as f:
        text = f.read()
    errors = preload_errors(text)
    if errors:
        raise RuntimeError(f"kingx preload failed ({errors}): {text[-800:]}")
    return time.monotonic() - t0


def preload_errors(text):
    """What was wrong with a preload, from wrk's output with preload.lua's PRELOAD line: "" when
    wrk counted no error of any kind. A socket error counts as much as a bad status: wrk does not
    retry the request a read or write error cut off, so its key may be missing."""
    m = re.search(r"^PRELOAD (\{.*\})$", text, re.MULTILINE)
    if not m:
        return "no PRELOAD line"
    counts = json.loads(m.group(1))
    bad = [f"{k}={v}" for k, v in sorted(counts.items()) if k.startswith("errors_") and v != 0]
    return ", ".join(bad)


def _verify(port, dataset):
    """A few GETs that must hit with the right length, or the preload did not take."""
    checks = [("k0", 100), (f"k{dataset.nkeys - 1}", 100), (f"k{dataset.nkeys // 2}", 100)]
    if dataset.n64k:
        checks.append((f"m{dataset.n64k - 1}", 65536))
    if dataset.n1m:
        checks.append((f"g{dataset.n1m - 1}", 1 << 20))
    for key, size in checks:
        status, body = procs.http_request(port, "GET", f"/v1/kv/{key}", timeout_s=30)
        if status != 200 or len(body) != size:
            raise RuntimeError(f"kingx preload check: GET {key} -> {status}, {len(body)} bytes")


def build_template(kingx_bin, workdir, dataset, raw_dir):
    """Create and fill the template data directory. Returns (path, seconds it took)."""
    data_dir = os.path.join(workdir, "template-data")
    os.makedirs(data_dir, exist_ok=True)
    t0 = time.monotonic()
    p, port = start(kingx_bin, os.path.join(workdir, "template"), data_dir,
                    {"model": "event", "workers": 1, "accept": "reuseport"}, "none",
                    ready_timeout(dataset))
    try:
        _preload_small(port, dataset, raw_dir)
        for prefix, count, size in (("m", dataset.n64k, 65536), ("g", dataset.n1m, 1 << 20)):
            body = b"x" * size
            for i in range(count):
                status, _ = procs.http_request(port, "PUT", f"/v1/kv/{prefix}{i}", body=body,
                                               timeout_s=60)
                if status not in (200, 201, 204):
                    raise RuntimeError(f"kingx preload PUT {prefix}{i} -> {status}")
        _verify(port, dataset)
    finally:
        code = p.stop(signal.SIGQUIT, timeout_s=60)
    if code not in (0, None):
        raise RuntimeError(f"kingx template server exited with {code}: {p.log_tail()}")
    return data_dir, time.monotonic() - t0


def copy_data(template_dir, dest_dir):
    """A private copy of the template database for one instance."""
    shutil.copytree(template_dir, dest_dir)
    return dest_dir
