#!/usr/bin/env python3
"""--single-process: the signal table (USR1 reopen, HUP reload of a reloadable setting, QUIT graceful with
an upload in flight), the admin listener's backup and compaction, kill -9 and restart.
usage: p4_single.py KINGX [--model threads --threads 8]"""
import os, socket, subprocess, sys, time, signal, http.client, shutil, json
B = sys.argv[1]; extra = sys.argv[2:]
def port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
P, A = port(), port(); D = "/tmp/audit5-p4s"; shutil.rmtree(D, ignore_errors=True); os.makedirs(D)
conf = D + "/c.json"
def write_conf(level, body_timeout):
    json.dump({"listen": [f"127.0.0.1:{P}"], "admin_listen": f"127.0.0.1:{A}", "data": D + "/data", "single_process": True,
               "error_log": D + "/error.log", "access_log": D + "/access.log", "log_level": level,
               "max_value_bytes": body_timeout}, open(conf, "w"))
write_conf("info", "1M")
pr = subprocess.Popen([B, "--config", conf] + extra, start_new_session=True, stdout=open(D + "/out", "w"), stderr=subprocess.STDOUT)
def req(m, path, body=None, port=P):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10); c.request(m, path, body=body)
    r = c.getresponse(); return r.status, r.read()
for _ in range(100):
    try:
        if req("GET", "/readyz")[0] == 200: break
    except OSError: pass
    time.sleep(0.1)
print("procs:", os.popen(f"ps -o pid=,comm= -g {pr.pid}").read().split())
print("PUT 2 MiB at max 1M:", req("PUT", "/v1/kv/big", b"x" * (2 << 20))[0])
# HUP raising max_value_bytes
write_conf("info", "4M"); os.kill(pr.pid, signal.SIGHUP); time.sleep(2)
print("after HUP max 4M: PUT 2 MiB:", req("PUT", "/v1/kv/big", b"x" * (2 << 20))[0], "alive", pr.poll() is None)
# USR1 reopen
os.rename(D + "/access.log", D + "/access.log.1"); os.kill(pr.pid, signal.SIGUSR1); time.sleep(1)
req("GET", "/v1/kv/big"); time.sleep(1.5)
print("USR1: new access.log exists", os.path.exists(D + "/access.log"),
      "lines", len(open(D + "/access.log").read().splitlines()) if os.path.exists(D + "/access.log") else None)
# backup and compact on the admin listener
s, b = req("GET", "/admin/backup", port=A); print("backup", s, len(b))
print("compact", req("POST", "/admin/compact", port=A)[0])
# QUIT with an upload in flight
so = socket.create_connection(("127.0.0.1", P))
so.sendall(b"PUT /v1/kv/inflight HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345")
time.sleep(0.3); t0 = time.time(); os.kill(pr.pid, signal.SIGQUIT); time.sleep(0.5)
try:
    c2 = socket.create_connection(("127.0.0.1", P), timeout=2); c2.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    print("new client after QUIT:", c2.recv(100)[:40])
except OSError as e:
    print("new client after QUIT refused:", e)
so.sendall(b"67890"); so.settimeout(5)
try: print("in-flight upload:", so.recv(200).split(b"\r\n")[0])
except OSError as e: print("in-flight upload error", e)
so.close()
try: pr.wait(20); print(f"exit {pr.returncode} after {time.time()-t0:.2f} s")
except subprocess.TimeoutExpired: print("still running 20 s after QUIT"); pr.kill()
pr = subprocess.Popen([B, "--config", conf] + extra, start_new_session=True, stdout=open(D + "/out2", "w"), stderr=subprocess.STDOUT)
for _ in range(100):
    try:
        if req("GET", "/readyz")[0] == 200: break
    except OSError: pass
    time.sleep(0.1)
print("after restart: GET inflight", req("GET", "/v1/kv/inflight"))
os.killpg(pr.pid, signal.SIGKILL); pr.wait()
pr = subprocess.Popen([B, "--config", conf] + extra, start_new_session=True, stdout=open(D + "/out3", "w"), stderr=subprocess.STDOUT)
t0 = time.time()
for _ in range(100):
    try:
        if req("GET", "/readyz")[0] == 200: break
    except OSError: pass
    time.sleep(0.1)
print(f"after kill -9: ready in {time.time()-t0:.2f} s, GET big", req("GET", "/v1/kv/big")[0])
pr.send_signal(signal.SIGTERM); pr.wait(20); print("TERM exit", pr.returncode)
print(open(D + "/error.log").read()[-3000:])
