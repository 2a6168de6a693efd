-- Key-value load for wrk: GET and/or PUT of random keys, printing a JSON summary in done().
-- Arguments after "--" (key=value):
--   get_prefix=/v1/kv/ get_suffix=   path of a GET is get_prefix .. keyp .. n .. get_suffix
--   put_prefix=/v1/kv/               path of a PUT is put_prefix .. keyp .. n
--   keyp=k nkeys=N                   keys are keyp0 .. keyp(N-1)
--   putfrac=0..1                     share of PUTs (0 = GET only, 1 = PUT only)
--   dist=uniform|zipf                key choice; zipf uses s=0.99 (YCSB's default) with ranks
--                                    scattered over the key space by a multiplicative bijection
--   size=100                         PUT body bytes
local cfg = {}
local get_prefix, get_suffix, put_prefix, keyp, nkeys, putfrac, zipf, body
local zipf_a, zipf_na

function init(args)
  for _, a in ipairs(args) do
    local k, v = a:match("^([%w_]+)=(.*)$")
    if k then cfg[k] = v end
  end
  get_prefix = cfg.get_prefix or "/v1/kv/"
  get_suffix = cfg.get_suffix or ""
  put_prefix = cfg.put_prefix or "/v1/kv/"
  keyp = cfg.keyp or "k"
  nkeys = tonumber(cfg.nkeys or "1000")
  putfrac = tonumber(cfg.putfrac or "0")
  zipf = (cfg.dist == "zipf")
  body = string.rep("v", tonumber(cfg.size or "100"))
  zipf_a = 1 - 0.99
  zipf_na = nkeys ^ zipf_a
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end

local function pick()
  if zipf then
    -- Inverse CDF of the continuous approximation of Zipf(s) over ranks 1..nkeys.
    local r = math.floor(((zipf_na - 1) * math.random() + 1) ^ (1 / zipf_a))
    if r > nkeys then r = nkeys end
    if r < 1 then r = 1 end
    -- 2654435761 is prime and larger than any nkeys we use, so this permutes 0..nkeys-1.
    return ((r - 1) * 2654435761) % nkeys
  end
  return math.random(0, nkeys - 1)
end

function request()
  local n = pick()
  if putfrac > 0 and (putfrac >= 1 or math.random() < putfrac) then
    return wrk.format("PUT", put_prefix .. keyp .. n, nil, body)
  end
  return wrk.format("GET", get_prefix .. keyp .. n .. get_suffix, nil, nil)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"err_connect":%d,"err_read":%d,' ..
    '"err_write":%d,"err_status":%d,"err_timeout":%d,"lat_mean_us":%.1f,"lat_max_us":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
