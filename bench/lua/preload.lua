-- Preload for wrk -t1: PUT keys <prefix><keyp>0 .. <keyp>(nkeys-1) with a <size>-byte value,
-- in order, wrapping around after the last one. wrk cannot end a run early (a stopped thread
-- still waits for -d), so the harness polls the server for the last key and then interrupts wrk
-- (SIGINT, after which wrk prints its summary). done() prints PRELOAD {"requests":N,...} with
-- every error wrk counted: a non-2xx/3xx status, and the socket errors (connect, read, write,
-- timeout) that wrk leaves out of the status count. A read or write error drops the request in
-- flight on that connection without a retry (wrk reconnects and asks request() for the next key),
-- so that key may never have been written: the harness refuses a preload with any of them.
--
-- wrk calls request() once before the run to check the script (script_verify_request, on the
-- first thread's Lua state) and never sends that request. So the first key is asked for twice:
-- the sequence is <keyp>0, <keyp>0, <keyp>1, ... and the first pass sends every key even though
-- wrk throws the first one away (with one call fewer, <keyp>0 would be sent only after the
-- wrap-around, racing the harness's interrupt).
-- Arguments after "--": prefix=/v1/kv/ keyp=k nkeys=N size=100
local cfg = {}
local sent = -1
local body, prefix, keyp, nkeys

function init(args)
  for _, a in ipairs(args) do
    local k, v = a:match("^([%w_]+)=(.*)$")
    if k then cfg[k] = v end
  end
  prefix = cfg.prefix or "/v1/kv/"
  keyp = cfg.keyp or "k"
  nkeys = tonumber(cfg.nkeys or "1000")
  body = string.rep("v", tonumber(cfg.size or "100"))
end

function request()
  local n = math.max(sent, 0) % nkeys
  sent = sent + 1
  return wrk.format("PUT", prefix .. keyp .. n, nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('PRELOAD {"requests":%d,"errors_status":%d,"errors_connect":%d,' ..
    '"errors_read":%d,"errors_write":%d,"errors_timeout":%d}\n',
    summary.requests, e.status, e.connect, e.read, e.write, e.timeout))
end
