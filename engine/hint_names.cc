#include "engine/hint_names.h"

#include <algorithm>

namespace kingx::engine {

Result<HintNames> HintNames::Load(Env& env, const std::string& path, uint32_t segment_id, uint64_t segment_bytes,
                                  const RecordLimits& limits) {
  HintNames names;
  Status s = LoadHintFile(env, path, segment_id, segment_bytes, limits, [&](const HintEntry& e) {
    names.records_.push_back(NamedRecord{e.seq, e.offset, e.total_bytes, e.type, std::string(e.key)});
  });
  if (s.Is(Code::kNotFound) || s.Is(Code::kCorruption)) return HintNames{};
  if (!s.ok()) return s;  // entries handed out before a page that failed are dropped with it
  names.usable_ = true;
  return names;
}

std::span<const NamedRecord> HintNames::In(uint64_t from, uint64_t to) const {
  auto at = [](const NamedRecord& r, uint64_t off) { return r.offset < off; };
  auto first = std::lower_bound(records_.begin(), records_.end(), from, at);
  auto last = std::lower_bound(first, records_.end(), to, at);
  return {first, last};
}

}  // namespace kingx::engine
