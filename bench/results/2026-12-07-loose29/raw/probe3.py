"""A FIFO access log whose reader stalls: how many GETs does the worker answer?
usage: probe3.py KINGX MODEL. A reader opens the FIFO and never reads; 600 keep-alive
GETs with a 2 KiB User-Agent (each line ~2.1 KiB: 64 KiB pipe + 64 KiB buffer pass
after ~60) are sent one by one, each with a 3 s timeout; counts answered ones."""
import os, socket, subprocess, sys, tempfile, time
kingx, model = sys.argv[1], sys.argv[2]
d = tempfile.mkdtemp(prefix="loose-p3.", dir="/tmp")
os.mkdir(d + "/data")
fifo = d + "/access.fifo"
os.mkfifo(fifo)
reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader that never reads
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
p = subprocess.Popen([kingx, "--listen", f"127.0.0.1:{port}", "--data", d + "/data", "--error-log", d + "/error.log",
                      "--access-log", fifo, "--workers", "1", "--model", model], start_new_session=True)
try:
    for _ in range(100):
        try:
            c = socket.create_connection(("127.0.0.1", port), timeout=1); break
        except OSError:
            time.sleep(0.1)
    ua = "u" * 2048
    answered = 0; first_fail = None; t0 = time.monotonic()
    c.settimeout(3)
    for i in range(600):
        try:
            c.sendall(f"GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: {ua}\r\n\r\n".encode())
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = c.recv(65536)
                if not chunk: raise OSError("closed")
                buf += chunk
            head, _, rest = buf.partition(b"\r\n\r\n")
            n = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
            while len(rest) < n: rest += c.recv(65536)
            answered += 1
        except (OSError, socket.timeout) as e:
            first_fail = (i, repr(e)); break
    print(f"{model}: answered {answered} of 600 GETs in {time.monotonic()-t0:.1f}s; first failure: {first_fail}")
    print("worker wchan:", [open(f"/proc/{t}/wchan").read() for t in os.listdir(f"/proc/{p.pid}/task")][:1],
          subprocess.run(["ps", "-o", "pid,wchan:30,comm", "--ppid", str(p.pid)], capture_output=True, text=True).stdout)
    time.sleep(1.5)
    os.set_blocking(reader, True)
    got = 0
    os.set_blocking(reader, False)
    try:
        while True:
            b = os.read(reader, 1 << 20)
            if not b: break
            got += len(b)
    except BlockingIOError:
        pass
    print(f"bytes the reader found in the pipe: {got}")
    print(open(d + "/error.log").read()[-1500:])
finally:
    os.killpg(p.pid, 9); p.wait()
    os.close(reader)
    subprocess.run(["rm", "-rf", d])
