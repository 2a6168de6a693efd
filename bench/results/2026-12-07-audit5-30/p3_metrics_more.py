#!/usr/bin/env python3
"""Metrics rows against what a client and the directory see: writer batch histogram vs batches/records,
respawns after kill -9 of a worker and of the writer, engine_segments vs seg files, backup bytes and
failed backups, segment ids reused. usage: p3_metrics_more.py KINGX"""
import os, socket, subprocess, sys, time, signal, http.client, shutil, glob, re
B = sys.argv[1]; extra = sys.argv[2:]
def port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
P, A = port(), port(); D = "/tmp/audit5-p3m"; shutil.rmtree(D, ignore_errors=True); os.makedirs(D)
pr = subprocess.Popen([B, "--listen", f"127.0.0.1:{P}", "--admin-listen", f"127.0.0.1:{A}", "--data", D + "/data",
                       "--workers", "2", "--segment-bytes", "1M", "--error-log", D + "/error.log"] + extra, start_new_session=True)
def req(m, path, body=None, port=P, headers={}):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=15); c.request(m, path, body=body, headers=headers)
    r = c.getresponse(); b = r.read(); return r.status, b, r
def metrics():
    _, b, _ = req("GET", "/metrics"); m = {}
    for l in b.decode().splitlines():
        if l and not l.startswith("#"): k, v = l.rsplit(" ", 1); m[k] = float(v)
    return m
for _ in range(100):
    try:
        if req("GET", "/readyz")[0] == 200: break
    except OSError: pass
    time.sleep(0.1)
for i in range(300): req("PUT", f"/v1/kv/k{i % 40}", os.urandom(20000))
time.sleep(1.2); m = metrics()
print("batches_total", m["kingx_writer_batches_total"], "batch_size_count", m["kingx_writer_batch_size_count"],
      "apply_count", m["kingx_writer_apply_seconds_count"])
print("records_total", m["kingx_writer_records_total"], "batch_size_sum", m["kingx_writer_batch_size_sum"])
segs = sorted(glob.glob(D + "/data/seg-*.kxd"))
print("engine_segments", m["kingx_engine_segments"], "seg files", len(segs), [os.path.basename(s) for s in segs])
# compaction: ids reused once free
req("POST", "/admin/compact", port=A); time.sleep(2.5)
segs2 = sorted(glob.glob(D + "/data/seg-*.kxd")); m = metrics()
print("after compact: engine_segments", m["kingx_engine_segments"], "seg files", len(segs2), [os.path.basename(s) for s in segs2])
for i in range(300, 500): req("PUT", f"/v1/kv/n{i}", os.urandom(20000))
time.sleep(1.2)
segs3 = sorted(glob.glob(D + "/data/seg-*.kxd")); m = metrics()
print("after more puts: engine_segments", m["kingx_engine_segments"], "seg files", len(segs3), [os.path.basename(s) for s in segs3])
# backup bytes and a failed backup
m0 = metrics()
s, b, r = req("GET", "/admin/backup", port=A)
m1 = metrics()
print("backup", s, "Content-Length", r.getheader("Content-Length"), "read", len(b),
      "bytes_sent delta", m1["kingx_backup_bytes_sent_total"] - m0["kingx_backup_bytes_sent_total"],
      "started", m1["kingx_backups_started_total"] - m0["kingx_backups_started_total"],
      "finished", m1["kingx_backups_finished_total"] - m0["kingx_backups_finished_total"])
so = socket.create_connection(("127.0.0.1", A)); so.sendall(b"GET /admin/backup HTTP/1.1\r\nHost: x\r\n\r\n")
so.recv(1000); so.close(); time.sleep(1.5); m2 = metrics()
print("client gone: failed delta", m2["kingx_backups_failed_total"] - m1["kingx_backups_failed_total"],
      "pins", m2["kingx_backup_pins"], "slots", m2["kingx_backup_slots_taken"])
# respawns
kids = {}
for l in os.popen(f"ps -o pid=,comm= --ppid {pr.pid}"):
    pid, comm = l.split(); kids.setdefault(comm, []).append(int(pid))
r0 = m2["kingx_respawns_total"]
os.kill(kids["kingx-worker"][0], signal.SIGKILL); time.sleep(1.5)
os.kill(kids["kingx-writer"][0], signal.SIGKILL); time.sleep(2.5)
for _ in range(50):
    try:
        if req("GET", "/readyz")[0] == 200: break
    except OSError: pass
    time.sleep(0.1)
m3 = metrics(); print("respawns delta after a worker and the writer kill -9:", m3["kingx_respawns_total"] - r0)
pr.send_signal(signal.SIGQUIT); pr.wait(30)
