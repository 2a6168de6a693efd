"""Scenarios (what the load does) and the wrk command of one cell (server x scenario x
connections). Every cell runs `wrk -t1` (one load thread: on a 2-core machine wrk takes one
core) with a Lua script that prints a JSON summary, so all cells are parsed the same way.
"""

import os
from dataclasses import dataclass

from . import servers

LUA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lua")


@dataclass(frozen=True)
class Dataset:
    nkeys: int   # 100-byte values k0..k(nkeys-1)
    n64k: int    # 64 KiB values m0..
    n1m: int     # 1 MiB values g0..


@dataclass(frozen=True)
class Scenario:
    name: str
    label: str
    op: str              # get | put | mix | fixed
    vclass: str = "small"
    dist: str = "uniform"
    close: bool = False  # Connection: close on every request
    sync: str = "always"  # kingx --sync of the instance that serves it


ALL = [
    Scenario("get100", "GET 100 B, uniform keys", "get"),
    Scenario("get100-zipf", "GET 100 B, Zipf(0.99) keys", "get", dist="zipf"),
    Scenario("get100-fixed", "GET 100 B, one fixed URL (no per-request Lua)", "fixed"),
    Scenario("get100-close", "GET 100 B, uniform, Connection: close", "get", close=True),
    Scenario("put100-always", "PUT 100 B, kingx --sync always", "put"),
    Scenario("put100-none", "PUT 100 B, kingx --sync none", "put", sync="none"),
    Scenario("mix90", "90% GET / 10% PUT 100 B, uniform, kingx --sync always", "mix"),
    Scenario("get64k", "GET 64 KiB", "get", vclass="64k"),
    Scenario("put64k", "PUT 64 KiB, kingx --sync always", "put", vclass="64k"),
    Scenario("get1m", "GET 1 MiB", "get", vclass="1m"),
    Scenario("put1m", "PUT 1 MiB, kingx --sync always", "put", vclass="1m"),
]
BY_NAME = {s.name: s for s in ALL}


def _nkeys(dataset, vclass):
    return {"small": dataset.nkeys, "64k": dataset.n64k, "1m": dataset.n1m}[vclass]


def supports(spec, scen):
    """Whether the server has a cell for the scenario."""
    if scen.op == "fixed":
        return True
    if scen.op in ("get", "mix") and servers.get_path(spec, scen.vclass) is None:
        return False
    if scen.op in ("put", "mix") and servers.put_path(spec, scen.vclass) is None:
        return False
    return True


def wrk_argv(spec, scen, port, conns, duration_s, dataset, timeout_s=10):
    """The wrk command line of one cell (the caller checked supports()). A request still
    unanswered after timeout_s counts as a timeout (wrk checks while the run lasts, so a
    timeout longer than the run never fires)."""
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{duration_s}s", "--timeout", f"{timeout_s}s"]
    if scen.close:
        argv += ["-H", "Connection: close"]
    base = f"http://127.0.0.1:{port}"
    if scen.op == "fixed":
        return argv + ["-s", os.path.join(LUA_DIR, "fixed.lua"), base + servers.fixed_path(spec)]
    keyp, size = servers.VALUE_CLASSES[scen.vclass]
    args = [f"keyp={keyp}", f"nkeys={_nkeys(dataset, scen.vclass)}", f"size={size}",
            f"dist={scen.dist}"]
    if scen.op in ("get", "mix"):
        prefix, suffix = servers.get_path(spec, scen.vclass)
        args += [f"get_prefix={prefix}", f"get_suffix={suffix}"]
    if scen.op in ("put", "mix"):
        args += [f"put_prefix={servers.put_path(spec, scen.vclass)}"]
    args += [f"putfrac={ {'get': 0, 'put': 1, 'mix': 0.1}[scen.op] }"]
    return argv + ["-s", os.path.join(LUA_DIR, "kv.lua"), base + "/", "--"] + args
