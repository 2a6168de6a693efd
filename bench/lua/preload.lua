-- Preload for wrk -t1: PUT every key <prefix><keyp>0 .. <keyp>(nkeys-1) with a <size>-byte
-- value, in order, then stop the thread once stop_at responses arrived (nkeys plus the number
-- of connections, so every key's first request has been answered). Non-2xx answers are counted
-- and printed by done() as PRELOAD {"ok":N,"bad":N}.
-- Arguments after "--": prefix=/v1/kv/ keyp=k nkeys=N size=100 stop_at=N
local cfg = {}
local sent, ok, bad = 0, 0, 0
local body, prefix, keyp, nkeys, stop_at

function init(args)
  for _, a in ipairs(args) do
    local k, v = a:match("^([%w_]+)=(.*)$")
    if k then cfg[k] = v end
  end
  prefix = cfg.prefix or "/v1/kv/"
  keyp = cfg.keyp or "k"
  nkeys = tonumber(cfg.nkeys or "1000")
  stop_at = tonumber(cfg.stop_at or tostring(nkeys))
  body = string.rep("v", tonumber(cfg.size or "100"))
end

function request()
  local n = sent % nkeys
  sent = sent + 1
  return wrk.format("PUT", prefix .. keyp .. n, nil, body)
end

function response(status, headers, resp_body)
  if status >= 200 and status < 300 then ok = ok + 1 else bad = bad + 1 end
  if ok + bad >= stop_at then wrk.thread:stop() end
end

function done(summary, latency, requests)
  io.write(string.format('PRELOAD {"requests":%d,"errors_status":%d}\n',
    summary.requests, summary.errors.status))
end
