#!/usr/bin/env bash
# What Debian's nginx 1.22 answers a PUT with no Content-Length and no Transfer-Encoding:
# a DAV location (dav_methods PUT) and a static one. Scratch under /tmp/edge4-ngxdav, 127.0.0.1.
set -euo pipefail
d=$(mktemp -d /tmp/edge4-ngxdav.XXXXXX); mkdir -p "$d/root"
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
cat >"$d/nginx.conf" <<CONF
daemon off; master_process off; worker_processes 1; pid $d/nginx.pid; error_log $d/error.log info;
events { worker_connections 64; }
http { access_log $d/access.log; client_body_temp_path $d/body; proxy_temp_path $d/proxy;
  fastcgi_temp_path $d/f; uwsgi_temp_path $d/u; scgi_temp_path $d/s;
  server { listen 127.0.0.1:$port; root $d/root;
    location /dav/ { dav_methods PUT DELETE; create_full_put_path on; }
    location / { }
  }
}
CONF
nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log" & npid=$!
trap 'kill $npid 2>/dev/null; wait $npid 2>/dev/null; rm -rf "$d"' EXIT
sleep 0.5
python3 - "$port" <<'PY'
import socket, sys
port = int(sys.argv[1])
def first_line(raw):
    s = socket.create_connection(("127.0.0.1", port)); s.sendall(raw); s.settimeout(2); out = b""
    try:
        while True:
            b = s.recv(65536)
            if not b: break
            out += b
    except socket.timeout:
        pass
    return out.decode("latin-1").split("\r\n")[0]
for what, raw in (("DAV, no length", b"PUT /dav/x HTTP/1.1\r\nHost: h\r\n\r\n"),
                  ("DAV, Content-Length: 0", b"PUT /dav/y HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"),
                  ("DAV, HTTP/1.0 no length", b"PUT /dav/z HTTP/1.0\r\n\r\n"),
                  ("static, no length", b"PUT /x HTTP/1.1\r\nHost: h\r\n\r\n")):
    print(f"{what}: {first_line(raw)}")
PY
echo "files written under dav/: $(ls "$d/root/dav" 2>/dev/null | tr '\n' ' ')"
grep -o 'PUT request body must be in a file.*request: "[^"]*"' "$d/error.log" || true
nginx -v 2>&1
