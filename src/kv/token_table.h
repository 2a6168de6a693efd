// TokenTable: the write tokens one KvService has issued, each mapped to the
// write exchange waiting for its completion.
//
// A token is MakeToken(generation, local id) (src/ipc/token.h); the local id
// this table chooses is
//   prefix (12 bits) | serial (28 bits).
// The prefix tells the thread model which pool thread issued a token
// (TokenPrefix). The serial counts the table's insertions (wrapping at 2^28),
// so a token value comes back only after 2^28 more insertions: a late or
// repeated completion for an earlier write (a writer that died after posting
// its completions but before releasing their batch answers them again; a
// completion arriving after its write timed out) finds no match, however
// often the entries were reused meanwhile (exchanges refused before they were
// queued, aborted uploads and timeouts free entries without a completion).
//
// Lookup is by the serial's low bits: entry (serial mod capacity), capacity a
// power of two that grows (doubling, rehashing by serial) when the entry an
// insertion would take is still in use. So memory follows the writes in
// flight at the peak, at most 2^20 entries.
//
// Threading: one table per KvService, used on that service's thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kingx {

// The local-id prefix a token carries (the token_prefix of the table that
// issued it). Any thread.
uint32_t TokenPrefix(uint64_t token);

namespace token_table_internal {
inline constexpr int kSerialBits = 28;
inline constexpr uint64_t kSerialMask = (uint64_t{1} << kSerialBits) - 1;
inline constexpr int kPrefixShift = kSerialBits;  // the prefix uses the 12 bits above
inline constexpr uint32_t kPrefixMask = 0xFFF;
inline constexpr size_t kMaxEntries = size_t{1} << 20;
}  // namespace token_table_internal

// Token encoding, shared by every TokenTable<T>.
uint64_t EncodeTableToken(uint32_t generation, uint32_t prefix, uint32_t serial);
uint32_t TableTokenSerial(uint64_t token);

// T is the caller's record of a write; the table never dereferences it and
// does not own it.
template <typename T>
class TokenTable {
 public:
  // prefix: 0..4095 (higher bits are dropped); generation: the worker slot
  // generation every token carries (MakeToken).
  TokenTable(uint32_t prefix, uint32_t generation) : prefix_(prefix), generation_(generation) {}

  // Issues a new token for `value` (not null). False, with nothing changed,
  // when 2^20 tokens are in use.
  bool Insert(T* value, uint64_t* token);

  // The value `token` was issued for, or null when the token is not in the
  // table (never issued here, already erased).
  T* Find(uint64_t token) const;

  // Forgets `token` (issued by Insert and not erased yet); a stale token
  // erases nothing.
  void Erase(uint64_t token);

  // Tokens issued and not erased.
  size_t size() const { return size_; }
  // Entries allocated (a power of two, or 0).
  size_t capacity() const { return entries_.size(); }

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
  };
  size_t Slot(uint32_t serial) const { return serial & (entries_.size() - 1); }
  // Doubles the capacity (at least 16), placing each entry by its serial.
  bool Grow();

  std::vector<Entry> entries_;
  size_t size_ = 0;
  uint32_t next_serial_ = 0;
  const uint32_t prefix_;
  const uint32_t generation_;
};

template <typename T>
bool TokenTable<T>::Grow() {
  const size_t cap = entries_.empty() ? 16 : entries_.size() * 2;
  if (cap > token_table_internal::kMaxEntries) return false;
  std::vector<Entry> next(cap);
  // Serials in use differ modulo the old capacity, so they differ modulo the new one.
  for (const Entry& e : entries_)
    if (e.value != nullptr) next[TableTokenSerial(e.token) & (cap - 1)] = e;
  entries_ = std::move(next);
  return true;
}

template <typename T>
bool TokenTable<T>::Insert(T* value, uint64_t* token) {
  if (size_ >= token_table_internal::kMaxEntries) return false;
  // Bounded: a table at most half full always has a free entry among the next
  // capacity serials, and it grows before it is more than half full.
  if ((size_ + 1) * 2 > entries_.size() && !Grow() && size_ >= entries_.size()) return false;
  for (size_t tries = 0; tries <= entries_.size(); ++tries) {
    const uint32_t serial = next_serial_;
    next_serial_ = (next_serial_ + 1) & token_table_internal::kSerialMask;
    Entry& e = entries_[Slot(serial)];
    if (e.value != nullptr) continue;  // a long write still holds it: the next serial
    e.value = value;
    e.token = EncodeTableToken(generation_, prefix_, serial);
    *token = e.token;
    ++size_;
    return true;
  }
  return false;
}

template <typename T>
T* TokenTable<T>::Find(uint64_t token) const {
  if (entries_.empty()) return nullptr;
  const Entry& e = entries_[Slot(TableTokenSerial(token))];
  return e.value != nullptr && e.token == token ? e.value : nullptr;
}

template <typename T>
void TokenTable<T>::Erase(uint64_t token) {
  if (entries_.empty()) return;
  Entry& e = entries_[Slot(TableTokenSerial(token))];
  if (e.value == nullptr || e.token != token) return;
  e.value = nullptr;
  --size_;
}

}  // namespace kingx
