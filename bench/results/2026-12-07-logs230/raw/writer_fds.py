import os, socket, subprocess, sys, time, tempfile, threading, collections
BIN = sys.argv[1]; EXTRA = sys.argv[2:]
def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
port = free_port(); work = tempfile.mkdtemp(prefix="logs2-wfd-", dir="/tmp")
proc = subprocess.Popen(["prlimit", "--nofile=178:178", "--", BIN, "--listen", f"127.0.0.1:{port}", "--data", work + "/d",
                         "--error-log", work + "/err.log", "--segment-bytes", "64K", "--pid", work + "/pid"] + EXTRA,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
def req(method, path, body=b""):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(f"{method} {path} HTTP/1.1\r\nHost: a\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    d = b""
    while True:
        c = s.recv(65536)
        if not c: break
        d += c
    s.close(); return d[:12]
for _ in range(100):
    try: req("GET", "/readyz"); break
    except OSError: time.sleep(0.1)
def pids():
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                st = open(f"/proc/{p}/stat").read().split()
                if int(st[4]) == proc.pid or int(p) == proc.pid: out.append(int(p))
            except OSError: pass
    return out
peak = collections.Counter(); stop = False
def sample():
    while not stop:
        for p in pids():
            try:
                comm = open(f"/proc/{p}/comm").read().strip()
                n = len(os.listdir(f"/proc/{p}/fd"))
                peak[comm] = max(peak[comm], n)
            except OSError: pass
        time.sleep(0.005)
t = threading.Thread(target=sample); t.start()
val = os.urandom(20000) * 2
bad = 0
for rnd in range(3):
    for i in range(100):
        r = req("PUT", f"/v1/kv/k{i}", val)
        bad += not r.startswith(b"HTTP/1.1 20")
    for i in range(0, 100, 2):
        r = req("DELETE", f"/v1/kv/k{i}")
    for i in range(100):
        r = req("GET", f"/v1/kv/k{i}")
        bad += not (r.startswith(b"HTTP/1.1 200") or r.startswith(b"HTTP/1.1 404"))
time.sleep(3)
stop = True; t.join()
print(BIN, EXTRA, "peak fds by process:", dict(peak), "bad", bad)
err = open(work + "/err.log").read()
print("EMFILE lines:", err.count("Too many open files"), "compaction lines:", err.count("compact"))
proc.terminate(); proc.wait(20)
subprocess.run(["rm", "-rf", work])
