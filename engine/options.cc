#include "engine/options.h"

#include <cctype>
#include <charconv>
#include <cstdint>
#include <limits>
#include <string>

namespace kingx::engine {

Result<uint64_t> ParseSize(std::string_view text, uint64_t min, uint64_t max) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end == text.data()) {
    return Status::InvalidArgument("expected a size (bytes, or with a K/M/G suffix), got '" + std::string(text) + "'");
  }
  std::string suffix(end, text.data() + text.size());
  for (char& ch : suffix) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  int shift = 0;
  if (suffix.empty() || suffix == "b") shift = 0;
  else if (suffix == "k" || suffix == "kb" || suffix == "kib") shift = 10;
  else if (suffix == "m" || suffix == "mb" || suffix == "mib") shift = 20;
  else if (suffix == "g" || suffix == "gb" || suffix == "gib") shift = 30;
  else return Status::InvalidArgument("expected a size (bytes, or with a K/M/G suffix), got '" + std::string(text) + "'");
  if (shift > 0 && v > (UINT64_MAX >> shift)) {
    return Status::InvalidArgument("size overflows 64 bits: '" + std::string(text) + "'");
  }
  v <<= shift;
  if (v < min || v > max) {
    return Status::InvalidArgument("expected a size in [" + std::to_string(min) + ", " + std::to_string(max) +
                                   "] bytes, got '" + std::string(text) + "'");
  }
  return v;
}

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
