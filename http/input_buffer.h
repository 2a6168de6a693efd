// InputBuffer: the bytes a Connection received and could not parse where
// they arrived (a partial head, a pipelined request waiting for its turn, a
// paused body), kept until they are parsed.
//
// Holds no memory until bytes are first kept: a connection whose requests
// arrive whole and are parsed in the reader's own buffer costs one pointer
// here for its whole life. Once it held bytes it keeps its memory for the
// next ones until Release.
//
// Views: Unparsed() points into the buffer and stays valid across Consume
// (which frees and moves nothing); Clear writes over the first byte; Assign,
// Append and Release invalidate it.
//
// Threading: the owning Connection's thread only.
#pragma once

#include <cassert>
#include <cstddef>
#include <memory>
#include <span>
#include <string>

namespace kingx::http {

class InputBuffer {
 public:
  // Bytes kept and not consumed yet.
  size_t size() const { return held_ ? held_->bytes.size() - held_->pos : 0; }
  bool empty() const { return size() == 0; }

  // The bytes not consumed yet, oldest first (empty when none).
  std::span<const char> Unparsed() const {
    if (!held_) return {};
    return std::span<const char>(held_->bytes.data() + held_->pos, held_->bytes.size() - held_->pos);
  }

  // Marks the first n unparsed bytes consumed (n <= size()).
  void Consume(size_t n) {
    assert(n <= size());
    if (held_) held_->pos += n;
  }

  // Keeps `bytes` in place of whatever was kept.
  void Assign(std::span<const char> bytes) {
    if (bytes.empty() && !held_) return;
    Hold();
    held_->bytes.assign(bytes.data(), bytes.size());
    held_->pos = 0;
  }

  // Keeps `bytes` after the unparsed ones (dropping the consumed ones first).
  void Append(std::span<const char> bytes) {
    if (bytes.empty()) return;
    Hold();
    if (held_->pos > 0) {
      held_->bytes.erase(0, held_->pos);
      held_->pos = 0;
    }
    held_->bytes.append(bytes.data(), bytes.size());
  }

  // Forgets every byte, keeps the memory.
  void Clear() {
    if (!held_) return;
    held_->bytes.clear();
    held_->pos = 0;
  }

  // Forgets every byte and frees the memory.
  void Release() { held_.reset(); }

  // Whether any memory is held (Release would free some).
  bool HoldsMemory() const { return held_ != nullptr; }

  // Heap bytes held: the holder and the bytes' own allocation, if any.
  size_t HeapBytes() const {
    if (!held_) return 0;
    size_t bytes = sizeof(Held);
    if (held_->bytes.capacity() > kInlineBytes) bytes += held_->bytes.capacity() + 1;
    return bytes;
  }

 private:
  // What std::string keeps without a heap allocation of its own (libstdc++).
  static constexpr size_t kInlineBytes = 15;

  struct Held {
    std::string bytes;  // kept bytes are bytes[pos, end)
    size_t pos = 0;
  };

  void Hold() {
    if (!held_) held_ = std::make_unique<Held>();
  }

  std::unique_ptr<Held> held_;
};

}  // namespace kingx::http
