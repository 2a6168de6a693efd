#!/bin/bash
# HTTP semantics a curl/wrk user relies on, raw, against a running kingx: PORT ADMIN_PORT.
# usage: bash p0_http.sh PORT ADMIN_PORT
P=$1; A=$2; R="python3 $(dirname "$0")/raw.py"
c() { echo "== $1"; printf "$2" | $R ${3:-$P} ${4:-0.5}; }
curl -s -o /dev/null -X PUT --data-binary x http://127.0.0.1:$P/v1/kv/a
c "PUT overwrite: 204 carries no Content-Length" 'PUT /v1/kv/a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\ny'
c "304 carries the ETag, no body" 'GET /v1/kv/a HTTP/1.1\r\nHost: x\r\nIf-None-Match: *\r\n\r\n'
c "POST on a key: 405 + Allow, its body skipped, next request answered" 'POST /v1/kv/a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'
c "OPTIONS *: Allow" 'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n'
c "TRACE: 501 (implemented nowhere)" 'TRACE /v1/kv/a HTTP/1.1\r\nHost: x\r\n\r\n'
c "HTTP/1.0 + Expect: 100-continue: no 100 (RFC 9110 10.1.1), body read" 'PUT /v1/kv/e10 HTTP/1.0\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n' $P 1.5
c "... then the body" 'PUT /v1/kv/e10 HTTP/1.0\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello'
c "Expect: foo: 417 problem+json" 'PUT /v1/kv/e11 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: foo\r\n\r\nhello'
c "GET with a body: skipped" 'GET /v1/kv/a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'
c "DELETE with a body: skipped" 'DELETE /v1/kv/e10 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'
c "chunked with extension and trailer" 'PUT /v1/kv/tr HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Trailer: v\r\n\r\nGET /v1/kv/tr HTTP/1.1\r\nHost: x\r\n\r\n'
c "Content-Length: 005" 'PUT /v1/kv/cl5 HTTP/1.1\r\nHost: x\r\nContent-Length: 005\r\n\r\nhelloGET /v1/kv/cl5 HTTP/1.1\r\nHost: x\r\n\r\n'
c "absolute-form target" 'GET http://x/v1/kv/a HTTP/1.1\r\nHost: x\r\n\r\n'
c "absolute-form, other spelling: 308 keeps the query" 'GET http://x/v1/kv/a%%2fb?q=1 HTTP/1.1\r\nHost: x\r\n\r\n'
c "HEAD of a 308" 'HEAD /v1/kv/a%%2fb HTTP/1.1\r\nHost: x\r\n\r\n'
c "backup to an HTTP/1.0 client: Content-Length, close" 'GET /admin/backup HTTP/1.0\r\n\r\n' $A 1 | head -9
c "HEAD /admin/backup" 'HEAD /admin/backup HTTP/1.1\r\nHost: x\r\n\r\n' $A
c "POST /admin/compact with a body: skipped" 'POST /admin/compact HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' $A
c "PUT /healthz: 405 Allow GET, HEAD" 'PUT /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx'
c "empty Content-Type: the default" 'PUT /v1/kv/ct0 HTTP/1.1\r\nHost: x\r\nContent-Type:\r\nContent-Length: 1\r\n\r\nyGET /v1/kv/ct0 HTTP/1.1\r\nHost: x\r\n\r\n'
c "DELETE If-None-Match: * on an existing key: 412" 'DELETE /v1/kv/a HTTP/1.1\r\nHost: x\r\nIf-None-Match: *\r\n\r\n'
