// SharedText: a short text in shared memory that one process writes and any
// process reads, never torn.
//
// The text is a sequence-numbered copy in atomic words (a seqlock): Store
// makes the number odd, stores the words and the length, then makes it even;
// Read copies the words between two loads of the number and retries while
// they differ or the number is odd, a bounded number of times (then it
// answers false). A writer that died half way through a Store leaves the
// number odd; the next Store goes past it. Lives in zero-filled shared
// memory: all zero is the empty text.
//
// Memory order, without fences (GCC's ThreadSanitizer does not support
// atomic_thread_fence, and --single-process runs under TSan; engine/index.cc
// does the same): Store makes the number odd (relaxed), then stores every
// word and the length with release (each orders the odd number before it),
// then the even number with release. Read loads the number, the length and
// the words, and the number again, all with acquire: a word it read from a
// Store in progress makes that Store's odd number visible to its last load,
// which then differs from its first.
//
// Thread-safety: Store from one thread of one process at a time; Read and
// size from any thread of any process.
#pragma once

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace kingx {

template <size_t kMaxBytes>
class SharedText {
  static_assert(kMaxBytes % 8 == 0 && kMaxBytes > 0, "whole words");

 public:
  // Publishes `text` (at most kMaxBytes: the caller cuts or refuses longer).
  void Store(std::string_view text) {
    assert(text.size() <= kMaxBytes);
    text = text.substr(0, kMaxBytes);
    // Past any odd number a dead writer left: odd while the words change.
    const uint64_t odd = (seq_.load(std::memory_order_relaxed) + 2) | 1;
    seq_.store(odd, std::memory_order_relaxed);
    for (size_t i = 0; i < kWords; ++i) {
      uint64_t w = 0;
      if (i * 8 < text.size()) std::memcpy(&w, text.data() + i * 8, std::min<size_t>(8, text.size() - i * 8));
      words_[i].store(w, std::memory_order_release);  // orders the odd number before it
    }
    len_.store(static_cast<uint32_t>(text.size()), std::memory_order_release);
    seq_.store(odd + 1, std::memory_order_release);
  }

  // The latest text in *out. false, *out unspecified, while Stores kept
  // overlapping the copy.
  bool Read(std::string* out) const {
    for (int attempt = 0; attempt < 1000; ++attempt) {
      const uint64_t before = seq_.load(std::memory_order_acquire);
      if (before & 1) continue;
      const uint32_t len = std::min<uint32_t>(len_.load(std::memory_order_acquire), kMaxBytes);
      char bytes[kMaxBytes];
      for (size_t i = 0; i < kWords; ++i) {
        const uint64_t w = words_[i].load(std::memory_order_acquire);
        std::memcpy(bytes + i * 8, &w, 8);
      }
      if (seq_.load(std::memory_order_acquire) == before) {
        out->assign(bytes, len);
        return true;
      }
    }
    return false;
  }

  // The length of the latest text (0: empty); one load, no copy.
  uint32_t size() const { return len_.load(std::memory_order_acquire); }

 private:
  static constexpr size_t kWords = kMaxBytes / 8;
  std::atomic<uint64_t> seq_{0};  // odd while a Store is in progress
  std::atomic<uint32_t> len_{0};
  std::atomic<uint64_t> words_[kWords] = {};
};

}  // namespace kingx
