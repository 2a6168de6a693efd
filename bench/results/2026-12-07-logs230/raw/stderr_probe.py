import fcntl, os, socket, subprocess, sys, time, pty, termios, tempfile
BIN = sys.argv[1]; MODE = sys.argv[2]; MODEL = sys.argv[3:]
def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
port = free_port()
work = tempfile.mkdtemp(prefix="logs2-probe-", dir="/tmp")
if MODE == "pipe":
    r, w = os.pipe()
    fcntl.fcntl(w, 1031, 4096)  # F_SETPIPE_SZ
else:
    r, w = pty.openpty()  # r: master side, w: slave
proc = subprocess.Popen([BIN, "--listen", f"127.0.0.1:{port}", "--data", work + "/d", "--workers", "2"] + MODEL,
                        stdout=subprocess.DEVNULL, stderr=w, stdin=subprocess.DEVNULL, start_new_session=True)
def get(path, timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: a\r\n\r\n")
    d = s.recv(100); s.close(); return d
for _ in range(100):
    try: get(b"/readyz", 1); break
    except OSError: time.sleep(0.1)
if MODE == "pty":
    termios.tcflow(w, termios.TCOOFF)
answered = 0; failed = 0
t0 = time.time()
for i in range(300):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        s.sendall(b"GET /v1/kv/" + b"\xff" * 400 + b" HTTP/1.1\r\nBad Header: x\r\n\r\n"); s.recv(100); s.close()
        get(b"/v1/kv/k%d" % i, 2); answered += 1
    except OSError:
        failed += 1
        if failed > 5: break
print(f"{BIN} {MODE} {MODEL}: answered {answered} failed {failed} in {time.time()-t0:.1f}s")
print("stderr flags O_NONBLOCK:", bool(fcntl.fcntl(w, fcntl.F_GETFL) & os.O_NONBLOCK))
proc.terminate()
try:
    proc.wait(5); print("exit", proc.returncode)
except subprocess.TimeoutExpired:
    print("TERM not honoured in 5 s; wchan of master:", open(f"/proc/{proc.pid}/wchan").read()); proc.kill(); proc.wait()
    os.killpg(proc.pid, 9)
subprocess.run(["rm", "-rf", work])
