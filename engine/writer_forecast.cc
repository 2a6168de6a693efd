// Writer::Forecast (see writer.h): the accounting a batch would change, read
// from the index before the batch is decided.
#include <string_view>
#include <unordered_map>

#include "engine/hash.h"
#include "engine/writer_impl.h"

namespace kingx::engine {

Writer::BatchForecast Writer::Forecast(std::span<const WriteOp> ops) {
  Impl& w = *impl_;
  BatchForecast f;
  // Record bytes of the latest op of each key seen so far in this batch (a
  // later op of that key kills it); only built for batches of several ops.
  std::unordered_map<std::string_view, uint64_t> earlier;
  std::lock_guard lock(w.mu_);
  for (const WriteOp& op : ops) {
    const bool put = op.type == OpType::kPut;
    const uint64_t total =
        put ? RecordBytes(op.key.size(), op.content_type.size(), op.stored.size()) : RecordBytes(op.key.size(), 0, 0);
    if (put) {
      f.put_bytes += total;
    } else {
      f.dead_bytes += total;  // a tombstone serves no read
    }
    if (ops.size() > 1) {
      const auto [it, first] = earlier.try_emplace(op.key, put ? total : 0);
      if (!first) {
        f.dead_bytes += it->second;  // that put is written, then killed by this op
        it->second = put ? total : 0;
        continue;  // the index's record was counted at the key's first op
      }
    }
    auto cur = w.FindKey(op.key, KeyHash(w.seed_, op.key));
    if (!cur.ok() || !cur->exists) continue;
    f.dead_bytes += cur->total_bytes;
    f.killed_live_bytes += cur->total_bytes;
  }
  return f;
}

}  // namespace kingx::engine
