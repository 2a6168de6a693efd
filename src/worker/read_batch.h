// ReadBatch: an event loop's small reads, held for a moment so that their
// keys can be hinted to the storage together (their page walks and cache
// misses then overlap instead of following one another), then served in the
// order they arrived.
//
// A read lands in Slice() and Keep(conn, bytes) holds it. How long a held
// read waits is bounded by the batch and its owner together:
//   - the batch serves itself (the ServeFn) the moment it holds kSlices
//     reads, so a slice is always free;
//   - the owner calls Serve() before it feeds any read it does not hold and
//     before it handles any other event that serves requests, and once at
//     the end of each poll phase.
// So a held read waits only while at most kSlices - 1 later reads are taken
// from their sockets; nothing that arrived after it is served before it.
// (An event loop polls again without blocking while the kernel reports a
// full array of events, so a poll phase can span thousands of reads: a
// batch held to the end of the phase would wait for all of them.)
//
// Threading: one thread, the owner's loop. The ServeFn must not Keep and
// must not call Serve (asserted). The batch is empty when Serve returns.
// Memory: kSlices * kSliceBytes bytes allocated at construction; a slice's
// pages are touched only when a read lands in it. No other allocation.
#pragma once

#include <cassert>
#include <cstddef>
#include <memory>
#include <span>

namespace kingx {

class ReadBatch {
 public:
  static constexpr size_t kSlices = 16;
  static constexpr size_t kSliceBytes = 4096;

  struct Read {
    void* conn;                   // the owner's connection, as given to Keep
    std::span<const char> bytes;  // in the batch's slice; valid until the ServeFn returns
  };
  // Serves the reads (hints their keys, feeds each connection its bytes) in
  // the order given, which is the order they were kept.
  using ServeFn = void (*)(void* owner, std::span<const Read> reads);

  ReadBatch(ServeFn serve, void* owner) : serve_(serve), owner_(owner) {}
  ReadBatch(const ReadBatch&) = delete;
  ReadBatch& operator=(const ReadBatch&) = delete;

  // Where the next read may land: kSliceBytes bytes, free until Keep.
  std::span<char> Slice() { return std::span<char>(buf_.get() + held_ * kSliceBytes, kSliceBytes); }

  // Holds the read that landed in Slice(), `bytes` of it (0 < bytes <
  // kSliceBytes: a read that filled its slice may have more behind it and
  // is the owner's to feed at once, from the slice, after Serve()). Serves
  // the batch when this read filled it.
  void Keep(void* conn, size_t bytes) {
    assert(!serving_ && bytes > 0 && bytes < kSliceBytes);
    reads_[held_] = Read{conn, std::span<const char>(buf_.get() + held_ * kSliceBytes, bytes)};
    if (++held_ == kSlices) Serve();
  }

  // Serves every held read now, in arrival order, and empties the batch.
  void Serve() {
    assert(!serving_);
    if (held_ == 0) return;
    serving_ = true;
    serve_(owner_, std::span<const Read>(reads_, held_));
    serving_ = false;
    held_ = 0;
  }

  size_t held() const { return held_; }

 private:
  ServeFn serve_;
  void* owner_;
  std::unique_ptr<char[]> buf_{new char[kSlices * kSliceBytes]};
  Read reads_[kSlices];
  size_t held_ = 0;
  bool serving_ = false;
};

}  // namespace kingx
