// TokenTable: the write tokens one KvService has issued, each mapped to the
// write exchange waiting for its completion.
//
// A token is MakeToken(generation, local id) (src/ipc/token.h); the
// local id this table chooses is
//   prefix (12 bits) | tag (8 bits) | entry index (20 bits).
// The prefix tells the thread model which pool thread issued a token
// (TokenPrefix). The tag of an entry is bumped each time the entry is reused,
// so a completion for a previous user of the entry finds no match.
//
// Threading: one table per KvService, used on that service's thread only.
// Memory: one Entry per write in flight at the peak, at most 2^20 entries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kingx {

// The local-id prefix a token carries (the token_prefix of the table that
// issued it). Any thread.
uint32_t TokenPrefix(uint64_t token);

namespace token_table_internal {
inline constexpr int kIndexBits = 20;
inline constexpr int kTagBits = 8;
inline constexpr uint64_t kIndexMask = (uint64_t{1} << kIndexBits) - 1;
inline constexpr uint64_t kTagMask = (uint64_t{1} << kTagBits) - 1;
inline constexpr int kPrefixShift = kIndexBits + kTagBits;  // the prefix uses the 12 bits above
inline constexpr uint32_t kPrefixMask = 0xFFF;
}  // namespace token_table_internal

// T is the caller's record of a write; the table never dereferences it and
// does not own it.
template <typename T>
class TokenTable {
 public:
  // prefix: 0..4095 (higher bits are dropped); generation: the worker slot
  // generation every token carries (MakeToken).
  TokenTable(uint32_t prefix, uint32_t generation) : prefix_(prefix), generation_(generation) {}

  // Issues a new token for `value` (not null). False, with nothing changed,
  // when all 2^20 entries are in use.
  bool Insert(T* value, uint64_t* token);

  // The value `token` was issued for, or null when the token is not in the
  // table (never issued here, already erased, or issued for an earlier user
  // of its entry).
  T* Find(uint64_t token) const;

  // Forgets `token` (issued by Insert and not erased yet); its entry can be
  // reused by the next Insert, with another tag.
  void Erase(uint64_t token);

  // Tokens issued and not erased.
  size_t size() const { return size_; }

  // Calls fn(T*) for every value in the table (e.g. to free them).
  template <typename Fn>
  void ForEach(Fn fn) const {
    for (const Entry& e : entries_)
      if (e.value != nullptr) fn(e.value);
  }

 private:
  struct Entry {
    T* value = nullptr;
    uint64_t token = 0;
    uint8_t tag = 0;
  };
  std::vector<Entry> entries_;
  std::vector<uint32_t> free_;
  size_t size_ = 0;
  const uint32_t prefix_;
  const uint32_t generation_;
};

// Token encoding, shared by every TokenTable<T>.
uint64_t EncodeTableToken(uint32_t generation, uint32_t prefix, uint8_t tag, uint32_t index);
uint32_t TableTokenIndex(uint64_t token);

template <typename T>
bool TokenTable<T>::Insert(T* value, uint64_t* token) {
  uint32_t index;
  if (!free_.empty()) {
    index = free_.back();
    free_.pop_back();
  } else {
    if (entries_.size() > token_table_internal::kIndexMask) return false;
    index = static_cast<uint32_t>(entries_.size());
    entries_.emplace_back();
  }
  Entry& e = entries_[index];
  e.tag = static_cast<uint8_t>((e.tag + 1) & token_table_internal::kTagMask);
  e.value = value;
  e.token = EncodeTableToken(generation_, prefix_, e.tag, index);
  *token = e.token;
  ++size_;
  return true;
}

template <typename T>
T* TokenTable<T>::Find(uint64_t token) const {
  const uint32_t index = TableTokenIndex(token);
  if (index >= entries_.size()) return nullptr;
  const Entry& e = entries_[index];
  return e.value != nullptr && e.token == token ? e.value : nullptr;
}

template <typename T>
void TokenTable<T>::Erase(uint64_t token) {
  const uint32_t index = TableTokenIndex(token);
  if (index >= entries_.size() || entries_[index].value == nullptr || entries_[index].token != token) return;
  entries_[index].value = nullptr;
  free_.push_back(index);
  --size_;
}

}  // namespace kingx
