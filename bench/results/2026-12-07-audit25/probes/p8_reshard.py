"""Probe: kingx-reshard --ring haproxy, 3 -> 4 shards, with kill -9 of the tool at random
moments in both phases and kill -9 of a shard; every key ends on its owner only, with its value."""
import os, random, signal, subprocess, sys, time, json, tempfile
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "tests", "deploy")); sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "tests", "blackbox"))
from proxies import DEPLOY, HOST, load_reshard
from kingx_harness import Server, Conn, http, key_path

KR = load_reshard()
seed = int(os.environ.get("SEED", "3")); rng = random.Random(seed)
NKEYS = int(os.environ.get("NKEYS", "3000"))
shards = [Server(["--workers", "1"]) for _ in range(4)]
for s in shards: s.start()
spec = lambda i: f"{HOST}:{shards[i].port} id={i + 1}"
old = ",".join(spec(i) for i in range(3)); new = ",".join(spec(i) for i in range(4))
oldr, newr = KR.HaproxyRing(old.split(",")), KR.HaproxyRing(new.split(","))
work = tempfile.mkdtemp(prefix="audit-reshard-", dir="/tmp")
state = os.path.join(work, "r.json")
by = {f"{HOST}:{s.port}": s for s in shards}
sp = lambda k: key_path(k)[len("/v1/kv/"):]
values = {}
conns = {n: Conn(s.port) for n, s in by.items()}
for i in range(NKEYS):
    k = f"key-{i:05d}-{'é' if i % 7 == 0 else ''}"
    v = os.urandom(rng.choice([10, 300, 5000]))
    values[k] = v
    r = conns[oldr.owner(sp(k))].request("PUT", key_path(k), v); assert r.status == 201, r
for c in conns.values(): c.close()
def run(phase, kill_after=None, shard_kill=False):
    argv = [sys.executable, os.path.join(DEPLOY, "kingx-reshard"), phase, "--ring", "haproxy", "--old", old, "--new", new, "--state", state, "--page", "200"]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if kill_after is not None:
        time.sleep(kill_after)
        if shard_kill:
            victim = shards[rng.randrange(4)]
            victim.kill_group(); victim.start()
            out, err = p.communicate(timeout=600)
            return f"{phase}: shard {victim.port} killed+restarted at {kill_after:.2f}s -> rc {p.returncode} {out.strip()[:200]} {err.strip()[-200:]}"
        p.kill()
        out, err = p.communicate()
        return f"{phase}: tool kill -9 at {kill_after:.2f}s rc {p.returncode} {out.strip()[:150]}"
    out, err = p.communicate(timeout=600)
    return f"{phase}: rc {p.returncode} {out.strip()[:300]} {err.strip()[-300:]}"
try:
    for phase in ("copy", "finish"):
        for i in range(int(os.environ.get("KILLS", "4"))):
            print(run(phase, rng.uniform(0.3, 3.0), shard_kill=(i == 1)), flush=True)
        for _ in range(3):
            res = run(phase); print(res, flush=True)
            if " rc 0 " in res: break
    # check: each key on exactly its new owner, with its value
    bad = 0; where = {}
    for n, s in by.items():
        for page_key in KR.Shard(n).keys(500):
            where.setdefault(page_key, []).append(n)
    for k, v in values.items():
        holders = where.get(sp(k), [])
        owner = newr.owner(sp(k))
        if holders != [owner]:
            bad += 1
            if bad < 10: print("MISPLACED", k, holders, "owner", owner)
            continue
        r = http(by[owner].port, "GET", key_path(k))
        if r.status != 200 or r.body != v:
            bad += 1; print("WRONG VALUE", k, r.status)
    extra = set(where) - {sp(k) for k in values}
    print(f"keys {len(values)} bad {bad} extra {len(extra)}")
    print(subprocess.run([sys.executable, os.path.join(DEPLOY, "kingx-reshard"), "check", "--ring", "haproxy", "--shards", new], capture_output=True, text=True).stdout)
    print("BAD" if bad or extra else "HELD")
finally:
    for s in shards: s.cleanup()
