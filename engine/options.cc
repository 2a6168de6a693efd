#include "engine/options.h"

#include <charconv>
#include <limits>
#include <string>

namespace kingx::engine {

Status ParseSyncMode(std::string_view text, Options* options) {
  if (text == "always") {
    options->sync = SyncMode::kAlways;
    options->sync_interval_ms = 0;
    return Status::OK();
  }
  if (text == "none") {
    options->sync = SyncMode::kNone;
    options->sync_interval_ms = 0;
    return Status::OK();
  }
  constexpr std::string_view kPrefix = "interval:";
  if (text.substr(0, kPrefix.size()) == kPrefix) {
    std::string_view digits = text.substr(kPrefix.size());
    uint32_t ms = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), ms);
    if (!digits.empty() && ec == std::errc() && end == digits.data() + digits.size() && ms > 0) {
      options->sync = SyncMode::kInterval;
      options->sync_interval_ms = ms;
      return Status::OK();
    }
  }
  return Status::InvalidArgument("sync must be always, none or interval:MS (MS > 0 milliseconds), got '" +
                                 std::string(text) + "'");
}

std::string SyncModeString(const Options& options) {
  switch (options.sync) {
    case SyncMode::kAlways: return "always";
    case SyncMode::kNone: return "none";
    case SyncMode::kInterval: return "interval:" + std::to_string(options.sync_interval_ms);
  }
  return "always";
}

uint64_t AutoSegmentBytes(uint64_t filesystem_bytes) {
  constexpr uint64_t kMin = uint64_t{1} << 20, kMax = uint64_t{256} << 20;
  uint64_t s = kMax;
  while (s > kMin && s > filesystem_bytes / 32) s >>= 1;
  return s;
}

uint64_t AutoDiskReserveBytes(uint64_t segment_bytes) { return segment_bytes + segment_bytes / 4 + (uint64_t{1} << 20); }

Status ValidateOptions(const Options& o) {
  if (o.segment_bytes < 4096 || o.segment_bytes > (uint64_t{1} << 39) - 1)
    return Status::InvalidArgument("segment_bytes must be between 4096 and 2^39-1");
  if (o.compression_level < 0 || o.compression_level > 22)
    return Status::InvalidArgument("compression_level must be between 0 (off) and 22");
  if (o.sync == SyncMode::kInterval && o.sync_interval_ms == 0)
    return Status::InvalidArgument("sync interval must be > 0 ms");
  if (o.sync_depth < 1 || o.sync_depth > kMaxSyncDepth)
    return Status::InvalidArgument("sync_depth must be between 1 and " + std::to_string(kMaxSyncDepth));
  if (o.max_key_bytes < 1 || o.max_key_bytes > kLargestKeyBytes)
    return Status::InvalidArgument("max_key_bytes must be between 1 and 65535");
  // Leave room under 4 GiB for zstd's worst-case expansion of stored values.
  if (o.max_value_bytes > kLargestValueBytes)
    return Status::InvalidArgument("max_value_bytes must be below 4 GiB - 64 MiB");
  if (o.max_open_segments < 1) return Status::InvalidArgument("max_open_segments must be at least 1");
  if (!(o.compaction_dead_ratio > 0.0 && o.compaction_dead_ratio <= 1.0))
    return Status::InvalidArgument("compaction_dead_ratio must be in (0, 1]");
  return Status::OK();
}

}  // namespace kingx::engine
