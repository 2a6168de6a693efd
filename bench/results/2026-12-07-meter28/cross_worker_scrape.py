import os, sys, re, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../tests/blackbox"))
from kingx_harness import Server, Conn, http
# Thread model, 2 workers: requests on one connection, then scrapes on new connections until one is
# answered by the other worker (by its pid in /proc? simpler: count how often the scrape misses the requests).
with Server(["--workers", "2", "--model", "threads", "--threads", "4"]) as s:
    misses = 0
    for rep in range(20):
        b = float(re.search(r'^kingx_http_requests_total\{method="GET"\} (\S+)', http(s.port, "GET", "/metrics").body.decode(), re.M).group(1))
        with Conn(s.port) as c:
            for i in range(5): c.request("GET", "/healthz")
        a = float(re.search(r'^kingx_http_requests_total\{method="GET"\} (\S+)', http(s.port, "GET", "/metrics").body.decode(), re.M).group(1))
        if a - b < 6: misses += 1
    print("scrapes right after 5 GETs that missed some of them:", misses, "of 20")
