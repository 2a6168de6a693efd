import os, socket, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "tests", "blackbox"))
from kingx_harness import Server, http, key_path, build_request, metric
s = Server(["--workers", "1", "--segment-bytes", "1M"] + sys.argv[1:], admin=True); s.start()
for i in range(60): http(s.port, "PUT", key_path(f"k{i}"), os.urandom(200000))
socks = []
for i in range(5):
    c = socket.socket(); c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.connect(("127.0.0.1", s.admin_port)); c.sendall(build_request("GET", "/admin/backup")); socks.append(c)
    time.sleep(0.3)
heads = []
for c in socks:
    c.settimeout(5)
    try: heads.append(c.recv(400).split(b"\r\n\r\n")[0].split(b"\r\n"))
    except Exception as e: heads.append(repr(e))
print("statuses:", [h[0] if isinstance(h, list) else h for h in heads])
fifth = [h for h in heads if isinstance(h, list) and b"503" in h[0]]
print("503 headers:", fifth[0][:8] if fifth else None)
print("pins with 4 open:", metric(s.port, "kingx_backup_pins"))
for c in socks: c.close()
time.sleep(1.0)
print("pins 1 s after the clients closed:", metric(s.port, "kingx_backup_pins"))
s.cleanup()
