"""CAS races through several workers: many clients doing If-Match increments
on one key never lose an update; many clients racing If-None-Match: * on a
new key see exactly one 201.

Connections are spread over the workers on purpose: the test opens
connections until both workers hold some (mapped through /proc), so the
conditional checks really race across processes and only the writer's
apply-time decision can keep them atomic.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_cas_race.py [--model threads]
"""

import argparse
import threading
import time

from kingx_harness import (SOAK, Conn, ConnectionClosed, Server, cases_of, check, key_path, parse_etag,
                           run_with_server)

CLIENTS = 8
INCREMENTS = 400 if SOAK else 60
S = None


def spread_connections(n):
    """n connections, covering every worker when there are several (bounded)."""
    workers = set(S.workers())
    conns, seen = [], {}
    for _ in range(8 * n):
        c = Conn(S.port)
        r = c.request("GET", "/healthz")
        check(r.status == 200, f"/healthz: {r!r}")
        w = S.worker_of_client_port(c.local_port())
        if len(conns) < n and (seen.get(w, 0) < (n + 1) // 2 or len(workers) < 2):
            conns.append(c)
            seen[w] = seen.get(w, 0) + 1
        else:
            c.close()
        if len(conns) == n:
            break
    check(len(conns) == n, f"could not spread {n} connections over the workers {workers}: {seen}")
    if len(workers) >= 2:
        check(len([w for w in seen if w in workers]) >= 2, f"connections all on one worker: {seen}")
    return conns


def test_if_match_increments_never_lose_an_update():
    key = "cas-counter"
    r = Conn(S.port).request("PUT", key_path(key), b"0")
    check(r.status in (201, 204), f"initial PUT: {r!r}")
    conns = spread_connections(CLIENTS)
    results = [None] * CLIENTS
    deadline = time.monotonic() + 60

    def client(i):
        c, done, conflicts, errors, last_etag = conns[i], 0, 0, [], 0
        try:
            while done < INCREMENTS and time.monotonic() < deadline and not errors:
                g = c.request("GET", key_path(key))
                if g.status != 200:
                    errors.append(f"GET: {g!r}")
                    break
                n = int(g.body)
                p = c.request("PUT", key_path(key), b"%d" % (n + 1), [("If-Match", g.header("ETag"))])
                if p.status == 204:
                    done += 1
                    e = parse_etag(p.header("ETag"))
                    if e is None or e <= last_etag:
                        errors.append(f"ETag {p.header('ETag')} after {last_etag}")
                    last_etag = e or last_etag
                elif p.status == 412:
                    conflicts += 1
                else:
                    errors.append(f"CAS PUT: {p!r}")
        except (ConnectionClosed, OSError, ValueError) as e:
            errors.append(repr(e))
        finally:
            c.close()
        results[i] = (done, conflicts, errors)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(150)
    check(all(r is not None for r in results), "a client did not finish")
    errors = [e for r in results for e in r[2]]
    check(not errors, f"client errors: {errors[:10]}")
    done = sum(r[0] for r in results)
    conflicts = sum(r[1] for r in results)
    check(done == CLIENTS * INCREMENTS, f"only {done} of {CLIENTS * INCREMENTS} increments finished in "
                                        f"{time.monotonic() - deadline + 60:.0f} s ({conflicts} conflicts)")
    final = int(Conn(S.port).request("GET", key_path(key)).body)
    print(f"{done} increments, {conflicts} CAS conflicts, final value {final}", flush=True)
    check(final == done, f"lost updates: {done} acknowledged increments but the counter is {final}")
    check(conflicts > 0, "no CAS conflict at all: the clients never raced, so the test proved nothing")


def test_create_only_race_has_exactly_one_winner():
    rounds = 100 if SOAK else 20
    conns = spread_connections(CLIENTS)
    try:
        for rnd in range(rounds):
            key = key_path(f"create-race-{rnd}-{time.time_ns()}")
            barrier = threading.Barrier(CLIENTS)
            statuses = [None] * CLIENTS

            def racer(i):
                barrier.wait(10)
                statuses[i] = conns[i].request("PUT", key, b"winner %d" % i, [("If-None-Match", "*")])

            threads = [threading.Thread(target=racer, args=(i,)) for i in range(CLIENTS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            codes = sorted(r.status if r else None for r in statuses)
            check(codes == [201] + [412] * (CLIENTS - 1), f"round {rnd}: statuses {codes}")
            winner = [i for i, r in enumerate(statuses) if r.status == 201][0]
            g = conns[0].request("GET", key)
            check(g.body == b"winner %d" % winner, f"round {rnd}: value {g.body!r} but {winner} won")
    finally:
        for c in conns:
            c.close()


def main():
    global S
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="event")
    ap.add_argument("--workers", default="2")
    o = ap.parse_args()
    flags = ["--workers", o.workers, "--model", o.model]
    if o.model == "threads":
        flags += ["--threads", "16"]
    S = Server(flags)
    run_with_server(f"CAS races ({' '.join(flags)})", S, cases_of(globals()),
                    ready=lambda server: server.wait_children("kingx-worker", int(o.workers)))


if __name__ == "__main__":
    main()
