-- Preload for wrk -t1: PUT keys <prefix><keyp>0 .. <keyp>(nkeys-1) with a <size>-byte value,
-- in order, wrapping around after the last one. wrk cannot end a run early (a stopped thread
-- still waits for -d), so the harness polls the server for the last key and then interrupts wrk
-- (SIGINT, after which wrk prints its summary). done() prints PRELOAD {"requests":N,...}.
-- Arguments after "--": prefix=/v1/kv/ keyp=k nkeys=N size=100
local cfg = {}
local sent = 0
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
  local n = sent % nkeys
  sent = sent + 1
  return wrk.format("PUT", prefix .. keyp .. n, nil, body)
end

function done(summary, latency, requests)
  io.write(string.format('PRELOAD {"requests":%d,"errors_status":%d}\n',
    summary.requests, summary.errors.status))
end
