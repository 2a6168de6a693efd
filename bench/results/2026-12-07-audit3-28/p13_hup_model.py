#!/usr/bin/env python3
"""audit3 probe 13: README signal table HUP "reload: re-read and validate the configuration, start new workers,
old workers finish their connections and exit" with a change of --model (event <-> threads), which the table
does not list among what only a restart changes (session 27 audit2 row 24: the model changes on HUP), under
load: 6 clients (3 keep-alive, 3 a connection per request) doing PUT-then-GET pairs (test_signals.py's
Requester: a request lost is one with no answer, a 5xx or a refused connection; an idle keep-alive connection
closed by the server is retried once), 6 reloads alternating the model, each waited for (its new workers'
"serving on" line names the model). Then every acknowledged key read back.

Usage: KINGX_BIN=... python3 p13_hup_model.py
"""
import json
import os
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from probe_common import summary, verdict  # noqa: E402
import kingx_harness as h  # noqa: E402
import test_signals as ts  # noqa: E402

srv = h.Server([])
cfg = os.path.join(srv.workdir, "kingx.json")


def write(model):
    with open(cfg + ".tmp", "w") as f:
        json.dump({"workers": 2, "model": model, "threads": 8}, f)
    os.replace(cfg + ".tmp", cfg)


write("event")
srv.extra = ["--config", cfg]
srv.start()
ts.S = srv
stop = threading.Event()
reqs = [ts.Requester(i, fresh=(i >= 3), stop=stop) for i in range(6)]
for r in reqs:
    r.start()
models = []
try:
    time.sleep(0.5)
    for i in range(6):
        model = "threads" if i % 2 == 0 else "event"
        write(model)
        before = set(srv.workers())
        srv.signal(signal.SIGHUP)
        h.wait_for(lambda: len(set(srv.workers()) - before) >= 2, 60, f"new workers after HUP #{i + 1}")
        time.sleep(0.8)
        models.append(model)
finally:
    stop.set()
    for r in reqs:
        r.join(30)
lost = [x for r in reqs for x in r.lost]
done = sum(r.done for r in reqs)
log = open(srv.error_log, errors="replace").read()
pool_lines = len(re.findall(r"thread pool of 8", log))
event_lines = len(re.findall(r"event model", log))
wrong = []
for r in reqs:
    for path, body in r.acked.items():
        g = h.http(srv.port, "GET", path)
        if g.status != 200 or g.body != body:
            wrong.append((path, g.status))
verdict("6 HUPs alternating --model under load: no request lost, each model's workers start, acked keys read back",
        not lost and not wrong and done > 30 and pool_lines >= 6 and event_lines >= 8,
        f"{done} pairs, {sum(r.retried for r in reqs)} idle retries, lost {len(lost)} {lost[:5]}, "
        f"'thread pool' worker lines {pool_lines}, 'event model' lines {event_lines}, wrong reads {wrong[:5]}")
srv.stop()
srv.cleanup()
summary()
