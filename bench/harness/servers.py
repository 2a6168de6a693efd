"""The servers of a comparison: their names, how to start them, and which URL paths serve which
scenario. A server that cannot serve a scenario (nginx `return` has no 64 KiB value, memcached
is GET-only) has no path for it and its cells are simply absent from the matrix.
"""

import os
from dataclasses import dataclass, field

from . import kingx, peers


@dataclass(frozen=True)
class Spec:
    name: str
    family: str          # kingx | nginx-return | nginx-static | nginx-mc | webdis
    label: str
    params: dict = field(default_factory=dict, hash=False, compare=False)


KINGX_VARIANTS = [
    Spec("kingx-ev1", "kingx", "kingx event model, 1 worker (reuseport)",
         {"model": "event", "workers": 1, "accept": "reuseport"}),
    Spec("kingx-ev2-reuseport", "kingx", "kingx event model, 2 workers, reuseport",
         {"model": "event", "workers": 2, "accept": "reuseport"}),
    Spec("kingx-ev2-shared", "kingx", "kingx event model, 2 workers, shared listen socket",
         {"model": "event", "workers": 2, "accept": "shared"}),
    Spec("kingx-thr16", "kingx", "kingx thread pool, 16 threads",
         {"model": "threads", "workers": 1, "threads": 16}),
    Spec("kingx-thr150", "kingx", "kingx thread pool, 150 threads",
         {"model": "threads", "workers": 1, "threads": 150}),
    Spec("kingx-thr1000", "kingx", "kingx thread pool, 1000 threads",
         {"model": "threads", "workers": 1, "threads": 1000}),
]

PEERS = [
    Spec("nginx-return-w1", "nginx-return", "nginx return 200 (100 B), 1 worker; PUT = body discarded",
         {"workers": 1}),
    Spec("nginx-return-w2", "nginx-return", "nginx return 200 (100 B), 2 workers; PUT = body discarded",
         {"workers": 2}),
    Spec("nginx-static-w1", "nginx-static", "nginx static file (sendfile), 1 worker",
         {"workers": 1}),
    Spec("nginx-mc-w1", "nginx-mc", "nginx memcached_pass (upstream keepalive 64) -> memcached -t1",
         {"workers": 1}),
    Spec("webdis-redis", "webdis", "webdis (1 thread, pool 20) -> redis (no persistence)",
         {"threads": 1}),
]

ALL = KINGX_VARIANTS + PEERS
BY_NAME = {s.name: s for s in ALL}


def add_kingx_binary(label, path):
    """Registers `<variant>@<label>` for every kingx variant: the same server run from another
    kingx binary (an older build, a branch), so that both are measured side by side in one run.
    Returns the new names."""
    names = []
    for base in KINGX_VARIANTS:
        spec = Spec(f"{base.name}@{label}", "kingx", f"{base.label}, binary {path}",
                    dict(base.params, bin=path))
        ALL.append(spec)
        BY_NAME[spec.name] = spec
        names.append(spec.name)
    return names

# Servers against which ratios are computed, in order of preference: the first one that has a
# cell for the scenario is the scenario's reference.
REFERENCES = ["nginx-return-w1", "nginx-static-w1"]

VALUE_CLASSES = {"small": ("k", 100), "64k": ("m", 65536), "1m": ("g", 1 << 20)}


def get_path(spec, vclass):
    """(prefix, suffix) of a GET for the value class, or None if the server has none."""
    f = spec.family
    if f == "kingx":
        return "/v1/kv/", ""
    if f == "nginx-return":
        return ("/r/", "") if vclass == "small" else None
    if f == "nginx-static":
        # The key goes in the query string, which nginx ignores: every server then gets a
        # request built by the same Lua code, so wrk's own cost is the same for all.
        return {"small": "/s/v100.txt?", "64k": "/s/v64k.bin?", "1m": "/s/v1m.bin?"}[vclass], ""
    if f == "nginx-mc":
        return "/mc/", ""
    if f == "webdis":
        return "/GET/", ".txt"
    raise ValueError(f)


def put_path(spec, vclass):
    """Prefix of a PUT path (key appended), or None if the server takes no PUT."""
    f = spec.family
    if f == "kingx":
        return "/v1/kv/"
    if f == "nginx-return":
        return "/r/"
    if f == "webdis":
        return "/SET/"
    return None


def fixed_path(spec):
    """One constant GET path of a 100-byte value (key k0 where there are keys)."""
    return {"kingx": "/v1/kv/k0", "nginx-return": "/r", "nginx-static": "/s/v100.txt",
            "nginx-mc": "/mc/k0", "webdis": "/GET/k0.txt"}[spec.family]


class Instance:
    """A running server: `procs` are the server's own processes, `backends` the store behind it
    (memcached, redis). CPU and memory are reported for both, separately."""

    def __init__(self, spec, sync, port, server_procs, backend_procs):
        self.spec = spec
        self.sync = sync
        self.port = port
        self.procs = server_procs
        self.backends = backend_procs

    def server_pids(self):
        return [p.pid for p in self.procs]

    def backend_pids(self):
        return [p.pid for p in self.backends]

    def alive(self):
        return all(p.alive() for p in self.procs + self.backends)

    def stop(self):
        for p in self.procs + self.backends:
            p.stop()


class Context:
    """What starting servers needs: scratch space, the dataset, the kingx binary, and the
    kingx template database (built on first use)."""

    def __init__(self, workdir, dataset, kingx_bin, raw_dir, log):
        self.workdir = workdir
        self.dataset = dataset
        self.kingx_bin = kingx_bin
        self.raw_dir = raw_dir
        self.log = log
        self.template = None
        self.notes = {}
        self.counter = 0

    def fresh_dir(self, name):
        self.counter += 1
        d = os.path.join(self.workdir, f"{self.counter:03d}-{name}")
        os.makedirs(d)
        return d


def start(spec, sync, ctx):
    """Start one instance of spec (sync only matters for kingx) with the dataset loaded."""
    d = ctx.fresh_dir(f"{spec.name}-{sync}" if spec.family == "kingx" else spec.name)
    f = spec.family
    if f == "kingx":
        if ctx.template is None:
            ctx.log("building the kingx dataset (template database)")
            ctx.template, secs = kingx.build_template(ctx.kingx_bin, os.path.join(ctx.workdir, "tpl"),
                                                      ctx.dataset, ctx.raw_dir)
            ctx.notes["kingx_preload_s"] = round(secs, 1)
        data = kingx.copy_data(ctx.template, os.path.join(d, "data"))
        p, port = kingx.start(spec.params.get("bin", ctx.kingx_bin), d, data, spec.params, sync,
                              kingx.ready_timeout(ctx.dataset))
        return Instance(spec, sync, port, [p], [])
    if f in ("nginx-return", "nginx-static"):
        p, port = peers.start_nginx(d, spec.params["workers"])
        return Instance(spec, sync, port, [p], [])
    if f == "nginx-mc":
        mc, mc_port = peers.start_memcached(os.path.join(d, "memcached"))
        try:
            peers.preload_memcached(mc_port, ctx.dataset)
            p, port = peers.start_nginx(d, spec.params["workers"], mc_port=mc_port)
        except Exception:
            mc.stop()
            raise
        return Instance(spec, sync, port, [p], [mc])
    if f == "webdis":
        rd, rd_port = peers.start_redis(os.path.join(d, "redis"))
        try:
            peers.preload_redis(rd_port, ctx.dataset)
            p, port = peers.start_webdis(d, rd_port, spec.params["threads"])
        except Exception:
            rd.stop()
            raise
        return Instance(spec, sync, port, [p], [rd])
    raise ValueError(f)
