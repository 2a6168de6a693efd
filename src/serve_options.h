// The settings both serving models derive from a worker's configuration:
// the HTTP core's limits and KvService's options. Pure functions; any thread.
#pragma once

#include <cstdint>

#include "http/http_limits.h"
#include "src/kv_service.h"
#include "src/worker_context.h"

namespace kingx {

// http::Limits from --max-key-bytes, --max-value-bytes and the timeouts; the
// rest keep the core's defaults.
http::Limits LimitsFor(const Config& config);

// KvService options for one service of this worker: compression settings,
// trusted proxies (a view into ctx.config: ctx must outlive the service),
// the slot generation, and `token_prefix` (0..4095; one per pool thread in
// the thread model).
KvServiceOptions ServiceOptionsFor(const WorkerContext& ctx, uint32_t token_prefix);

}  // namespace kingx
