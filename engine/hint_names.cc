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

Result<HintNames> HintNames::LoadAsWritten(Env& env, const std::string& path, uint32_t segment_id,
                                           const RecordLimits& limits) {
  HintNames names;
  Status s = ReadHintEntriesAsWritten(env, path, segment_id, limits, [&](const HintEntry& e) {
    names.records_.push_back(NamedRecord{e.seq, e.offset, e.total_bytes, e.type, std::string(e.key)});
  });
  if (s.Is(Code::kNotFound) || s.Is(Code::kCorruption)) return HintNames{};
  if (!s.ok()) return s;
  return names;
}

const NamedRecord* HintNames::ProvenAt(uint64_t offset, const RecordHeader& h, const char* record) const {
  std::span<const NamedRecord> at = In(offset, offset + 1);
  if (at.empty()) return nullptr;
  const NamedRecord& n = at.front();
  if (n.seq != h.seq || n.total_bytes != h.total_bytes() || n.type != h.type || n.key.size() != h.key_len)
    return nullptr;
  return RecordBodyMatchesKey(record, h, n.key) ? &n : nullptr;
}

std::span<const NamedRecord> HintNames::In(uint64_t from, uint64_t to) const {
  auto at = [](const NamedRecord& r, uint64_t off) { return r.offset < off; };
  auto first = std::lower_bound(records_.begin(), records_.end(), from, at);
  auto last = std::lower_bound(first, records_.end(), to, at);
  return {first, last};
}

}  // namespace kingx::engine
