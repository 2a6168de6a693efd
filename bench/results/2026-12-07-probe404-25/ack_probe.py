# usage: ack_probe.py KINGX WORKDIR SYNC WORKERS NEWKEYS [CONNS] [SECONDS]
# Acknowledged writes must be readable, the newest acknowledged value of each key:
# CONNS keep-alive connections (asyncio, one process) PUT NEWKEYS new keys n0.. (the index grows
# through several doublings), overwrite early keys e0..e9999 with rising versions (1 in 8 requests),
# and GET (1 in 4) either an early key or one of the last 4,096 acknowledged new keys. A value is
# "<key> <version>" padded to 100 bytes. Two connections may overwrite one key at once (the server
# may apply them in either order), so a GET is judged by real-time order (linearizability of one
# register): its value v must come from a PUT sent before the GET's answer, and no other PUT w of
# the key may have been sent after v's PUT was acknowledged and acknowledged before the GET was
# sent (w then certainly follows v). Anything else (404, such an overwritten value, an error) is
# printed with the key, the time and what was in flight.
# Bounded by SECONDS (default 900). Prints RESULT {...}.
import asyncio, json, os, random, shutil, signal, socket, subprocess, sys, time

kb, work, sync, workers, newkeys = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
conns = int(sys.argv[6]) if len(sys.argv) > 6 else 32
limit_s = float(sys.argv[7]) if len(sys.argv) > 7 else 900
EARLY = 10000
os.makedirs(work, exist_ok=True)
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
srv = subprocess.Popen([kb, "--listen", f"127.0.0.1:{port}", "--data", os.path.join(work, "data"),
                        "--workers", workers, "--sync", sync, "--error-log", os.path.join(work, "error.log")],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

acked = {}      # key -> newest acknowledged version
sent = {}       # key -> newest version sent
inflight = {}   # key -> count of PUTs in flight
recent = []     # last acknowledged new keys
events = [0]    # a counter of sends and answers (one asyncio thread: a total order in real time)
puts_of = {}    # key -> {version: [send event, ack event or None]}


def tick():
    events[0] += 1
    return events[0]


def overwritten(key, got, get_sent):
    """The PUT of `got` is certainly overwritten before get_sent (None: `got` was never sent)."""
    if key not in puts_of:  # a new key, written once
        return False if got == acked.get(key) else None
    mine = puts_of[key].get(got)
    if mine is None:
        return None
    if mine[1] is None:
        return False  # still unanswered: it may be the newest
    return any(w != got and rec[0] > mine[1] and rec[1] is not None and rec[1] < get_sent
               for w, rec in puts_of[key].items())
st = {"puts": 0, "overwrites": 0, "gets": 0, "bad": 0, "older_but_concurrent": 0, "errors": 0, "statuses": {}}
bad = []
next_new = 0
t_start = time.monotonic()


def value(key, v):
    b = f"{key} {v}".encode()
    return b + b"." * (100 - len(b))


async def request(r, w, method, path, body=b""):
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    w.write(head + body)
    await w.drain()
    line = await r.readline()
    status = int(line.split()[1])
    length = 0
    while True:
        h = await r.readline()
        if h in (b"\r\n", b""):
            break
        k, _, v = h.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    data = await r.readexactly(length) if length else b""
    return status, data


async def client(cid):
    global next_new
    rnd = random.Random(cid)
    r, w = await asyncio.open_connection("127.0.0.1", port)
    while next_new < newkeys and time.monotonic() - t_start < limit_s:
        x = rnd.random()
        try:
            if x < 0.25 and recent:
                key = f"e{rnd.randrange(EARLY)}" if rnd.random() < 0.5 or not recent else rnd.choice(recent)
                if key not in acked:
                    key = rnd.choice(recent)
                low = acked[key]
                t = time.monotonic() - t_start
                fl = inflight.get(key, 0)
                get_sent = tick()
                status, data = await request(r, w, "GET", f"/v1/kv/{key}")
                tick()
                st["gets"] += 1
                high = sent[key]
                got = None
                if status == 200:
                    parts = data.split(b" ", 1)
                    if parts[0].decode() == key:
                        got = int(parts[1].rstrip(b"."))
                stale = overwritten(key, got, get_sent) if got is not None else None
                if stale is False and got < low:
                    # An older version than the newest acknowledged, rightly: its PUT overlapped
                    # the newer one's (two connections; the server applied them in either order).
                    st["older_but_concurrent"] += 1
                if status != 200 or got is None or stale is None or stale:
                    st["bad"] += 1
                    if len(bad) < 50:
                        bad.append({"key": key, "t_s": round(t, 3), "status": status, "got": got,
                                    "acked_at_send": low, "sent_at_answer": high, "inflight_at_send": fl,
                                    "body": data[:120].decode(errors="replace"), "new_keys_acked": len(acked)})
                continue
            if x < 0.375 and next_new > EARLY:
                key = f"e{rnd.randrange(EARLY)}"
                if key not in acked:
                    continue
                st["overwrites"] += 1
            else:
                i = next_new; next_new += 1
                key = f"e{i}" if i < EARLY else f"n{i}"
            v = sent.get(key, 0) + 1
            sent[key] = v
            inflight[key] = inflight.get(key, 0) + 1
            rec = [tick(), None]
            puts_of.setdefault(key, {})[v] = rec
            status, _ = await request(r, w, "PUT", f"/v1/kv/{key}", value(key, v))
            inflight[key] -= 1
            if status in (200, 201, 204):
                rec[1] = tick()
            st["puts"] += 1
            st["statuses"][status] = st["statuses"].get(status, 0) + 1
            if status in (200, 201, 204):
                if v > acked.get(key, 0):
                    acked[key] = v
                if key.startswith("n"):
                    del puts_of[key]  # never overwritten: the version check of acked[] suffices
                    recent.append(key)
                    if len(recent) > 4096:
                        del recent[:1024]
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as e:
            st["errors"] += 1
            print("socket error", cid, repr(e), flush=True)
            w.close()
            r, w = await asyncio.open_connection("127.0.0.1", port)
    w.close()


async def main():
    for _ in range(300):
        try:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            status, _ = await request(r, w, "GET", "/readyz"); w.close()
            if status == 200:
                break
        except OSError:
            pass
        await asyncio.sleep(0.2)
    await asyncio.gather(*(client(c) for c in range(conns)))

try:
    asyncio.run(main())
    # Every acknowledged key once more, at rest: its newest acknowledged value.
    async def final():
        r, w = await asyncio.open_connection("127.0.0.1", port)
        wrong = 0
        for key in [f"e{i}" for i in range(EARLY)] + list(recent):
            status, data = await request(r, w, "GET", f"/v1/kv/{key}")
            parts = data.split(b" ", 1)
            got = int(parts[1].rstrip(b".")) if status == 200 and parts[0].decode() == key else None
            if got is None or overwritten(key, got, tick()) is not False:
                wrong += 1
                if len(bad) < 60:
                    bad.append({"final": key, "status": status, "body": data[:60].decode(errors="replace"),
                                "acked": acked[key]})
        w.close()
        return wrong
    st["final_wrong"] = asyncio.run(final())
finally:
    srv.send_signal(signal.SIGQUIT)
    try:
        st["exit"] = srv.wait(timeout=120)
    except subprocess.TimeoutExpired:
        srv.kill(); st["exit"] = "killed"
st.update({"kingx": kb, "sync": sync, "workers": workers, "conns": conns, "new_keys_sent": next_new,
           "keys_acked": len(acked), "seconds": round(time.monotonic() - t_start, 1), "bad_samples": bad})
print("RESULT " + json.dumps(st), flush=True)
if st["bad"] == 0 and st.get("final_wrong") == 0:
    shutil.rmtree(work, ignore_errors=True)
