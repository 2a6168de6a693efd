"""A worker's counts survive its kill -9 (README, Metrics: /metrics sums every
slot, a dead worker's included): requests answered, the worker killed at
once, and every http counter of /metrics counts each of them, in both models
(run once per model by meson). The thread model's pool threads count in
shared memory as they go, never in a private tally folded in later.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_counters_kill.py [--model threads --threads 4]
"""

import os
import signal
import sys

from kingx_harness import Conn, Server, build_request, cases_of, check, key_path, metric_values, run_with_server

S = None
ROUNDS = 20       # keys; each gets a PUT, a GET, a HEAD and a DELETE
VALUE_BYTES = 2000


def requests_total(m, method):
    return m.get('kingx_http_requests_total{method="%s"}' % method, 0)


def test_counts_of_answered_requests_survive_a_worker_kill():
    victim = S.wait_children("kingx-worker", 1)[0]
    before = metric_values(S.port)
    scrape_bytes = len(build_request("GET", "/metrics"))  # what the next scrape feeds the server
    sent = 0
    classes = {}
    value = b"v" * VALUE_BYTES
    plan = ([("PUT", i, value) for i in range(ROUNDS)] + [("GET", i, None) for i in range(ROUNDS)] +
            [("HEAD", i, None) for i in range(ROUNDS)] + [("DELETE", i, None) for i in range(ROUNDS)] +
            [("PUT", ROUNDS, b"last")])  # the last answer proves the GETs' bytes were sent and counted
    conn = Conn(S.port)
    try:
        for method, i, body in plan:
            sent += len(build_request(method, key_path("ck-%d" % i), body))
            r = conn.request(method, key_path("ck-%d" % i), body)
            classes[r.status // 100] = classes.get(r.status // 100, 0) + 1
        os.kill(victim, signal.SIGKILL)  # at once: within the second the thread model used to fold in
    finally:
        conn.close()
    S.wait_children("kingx-worker", 1, exclude=[victim], timeout=30)
    after = metric_values(S.port, timeout=30)
    print(f"statuses by class {classes}; killed {victim}", flush=True)

    check(classes.get(2) == len(plan), f"every request answered 2xx: {classes}")
    per_method = {"PUT": ROUNDS + 1, "GET": ROUNDS + 1, "HEAD": ROUNDS, "DELETE": ROUNDS}  # GET: the scrape after
    for method, n in per_method.items():
        got = requests_total(after, method) - requests_total(before, method)
        check(got == n, f"kingx_http_requests_total{{method=\"{method}\"}} grew by {got}, not {n}")
    # Responses and the latency histogram count at the response: the load's
    # and the scrape before (its own counted after it rendered).
    n = len(plan) + 1
    got = after['kingx_http_responses_total{class="2xx"}'] - before['kingx_http_responses_total{class="2xx"}']
    check(got == n, f"kingx_http_responses_total{{class=\"2xx\"}} grew by {got}, not {n}")
    got = after["kingx_http_request_duration_seconds_count"] - before["kingx_http_request_duration_seconds_count"]
    check(got == n, f"kingx_http_request_duration_seconds_count grew by {got}, not {n}")
    got = after["kingx_http_received_bytes_total"] - before["kingx_http_received_bytes_total"]
    check(got == sent + scrape_bytes, f"kingx_http_received_bytes_total grew by {got}, not {sent + scrape_bytes}")
    got = after["kingx_http_sent_bytes_total"] - before["kingx_http_sent_bytes_total"]
    check(got >= ROUNDS * VALUE_BYTES, f"kingx_http_sent_bytes_total grew by {got}: less than the GETs' values")
    # The killed worker's connections died with it: the gauge holds the
    # scrape's own only.
    got = after["kingx_http_open_connections"]
    check(got == 1, f"kingx_http_open_connections is {got} after the kill, not 1 (the scrape's)")
    got = after["kingx_http_connections_opened_total"] - before["kingx_http_connections_opened_total"]
    check(got == 2, f"kingx_http_connections_opened_total grew by {got}, not 2 (the load's, the scrape's)")
    check(after["kingx_respawns_total"] - before["kingx_respawns_total"] == 1, "one respawn")


def main():
    global S
    S = Server(["--workers", "1"] + sys.argv[1:])
    run_with_server("http counters across a worker's kill -9", S, cases_of(globals()))


if __name__ == "__main__":
    main()
