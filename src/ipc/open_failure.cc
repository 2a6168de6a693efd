// OpenFailureNote (see open_failure.h).
//
// Memory order, without fences (GCC's ThreadSanitizer does not support
// atomic_thread_fence, and --single-process runs under TSan; engine/index.cc
// does the same): Store makes the number odd (relaxed), then stores every
// word and the length with release (each orders the odd number before it),
// then the even number with release. Read loads the number, the length and
// the words, and the number again, all with acquire: a word it read from a
// publication in progress makes that publication's odd number visible to its
// last load, which then differs from its first.
#include "src/ipc/open_failure.h"

#include <algorithm>
#include <cstring>

namespace kingx {

void OpenFailureNote::Store(std::string_view text) {
  std::string cut(text.substr(0, kMaxBytes));
  if (text.size() > kMaxBytes) cut.replace(kMaxBytes - 3, 3, "...");
  // Past any odd number a dead writer left: odd while the words change.
  const uint64_t odd = (seq_.load(std::memory_order_relaxed) + 2) | 1;
  seq_.store(odd, std::memory_order_relaxed);
  for (size_t i = 0; i < kWords; ++i) {
    uint64_t w = 0;
    if (i * 8 < cut.size()) std::memcpy(&w, cut.data() + i * 8, std::min<size_t>(8, cut.size() - i * 8));
    words_[i].store(w, std::memory_order_release);  // orders the odd number before it
  }
  len_.store(static_cast<uint32_t>(cut.size()), std::memory_order_release);
  seq_.store(odd + 1, std::memory_order_release);
}

void OpenFailureNote::Publish(std::string_view text) {
  failures_.fetch_add(1, std::memory_order_relaxed);
  // An empty text would read as "no failure".
  Store(text.empty() ? std::string_view("the open failed") : text);
}

void OpenFailureNote::Clear() { Store({}); }

std::string OpenFailureNote::Read() const {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const uint64_t before = seq_.load(std::memory_order_acquire);
    if (before & 1) continue;
    const uint32_t len = std::min<uint32_t>(len_.load(std::memory_order_acquire), kMaxBytes);
    char bytes[kMaxBytes];
    for (size_t i = 0; i < kWords; ++i) {
      const uint64_t w = words_[i].load(std::memory_order_acquire);
      std::memcpy(bytes + i * 8, &w, 8);
    }
    if (seq_.load(std::memory_order_acquire) == before) return std::string(bytes, len);
  }
  return std::string(kBusyText);
}

}  // namespace kingx
