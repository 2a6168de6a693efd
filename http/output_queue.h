// OutputQueue: the bytes one Connection has yet to send, as a list of chunks
// handed to one writev.
//
// The rule everything else relies on: bytes returned by Gather stay valid and
// unchanged until Consume reports them sent, or the queue is destroyed.
// Appending never moves them: copied bytes go into fixed-size output blocks
// (a new block when the current one is full, never a reallocation), and
// referenced bytes are kept alive by their holder. So an asynchronous writev
// (uv_write) may use them while more output is appended behind them. While
// such a write is in flight do not gather again (the same bytes would be
// returned); after Consume, gather the rest.
//
// Memory: heads and small copied bodies share blocks of kBlockBytes (a
// larger piece gets a block of its own size, freed once sent); a block is
// reused from its start once everything is sent and nothing references it.
// The block, the chunk list and their bookkeeping live in one heap object
// that the queue holds only while it has output: ReleaseIdle gives it, with
// its block and chunk list, to the calling thread's spare list
// (spare_list.h), where the next queue that needs one on this thread takes
// it. An idle queue is two words and holds no heap memory.
//
// Threading: the owning Connection's thread. Nothing here blocks or throws
// (other than std::bad_alloc).
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/spare_list.h"

namespace kingx::http {

class OutputQueue {
 public:
  static constexpr size_t kBlockBytes = 2048;
  // Spare buffers (block and chunk list) kept per thread (beyond: freed).
  static constexpr size_t kSparesPerThread = 32;
  // Longest chunk list kept with a spare (a longer one is freed).
  static constexpr size_t kSpareChunksMax = 64;
  // Longest notes buffer kept with a spare (a longer one is freed).
  static constexpr size_t kSpareNoteBytesMax = 16 * 1024;

  // Copies `bytes` into the current output block and queues them.
  void Copy(std::string_view bytes);
  // Copy in two steps, for bytes written in place: Reserve returns room for
  // up to `max_len` (1..kBlockBytes) bytes in the current output block (a
  // new block when it has less); Commit(len) queues the first len
  // (<= max_len) bytes written there, as Copy would. Nothing else may be
  // queued between the two calls.
  char* Reserve(size_t max_len);
  void Commit(size_t len);
  // Queues `bytes` without copying; `holder` keeps them alive and unchanged
  // until they are sent (it is released as soon as they are).
  void Reference(std::string_view bytes, std::shared_ptr<const void> holder);

  // Fills up to max_iov entries with the pending bytes, in order; returns
  // how many were filled (0 when empty()).
  size_t Gather(struct iovec* iov, size_t max_iov) const;
  // `bytes` (<= size()) of the gathered output were sent: drops them,
  // releasing holders and blocks that are no longer referenced.
  void Consume(size_t bytes);

  // --- response marks ---
  // Position just past the last byte queued (bytes sent since the buffers
  // were taken, plus those pending).
  uint64_t Queued() const { return b_ ? b_->sent + bytes_ : 0; }
  // Bytes sent (Consume) since the buffers were taken: a mark's end is
  // reached when Sent() >= end.
  uint64_t Sent() const { return b_ ? b_->sent : 0; }
  // Of the gathered bytes a write still has in flight, `bytes` left so far
  // (a partial view the next Consume, which reports the write, replaces).
  // No-op when idle.
  void NoteInFlightSent(size_t bytes) {
    if (b_) b_->in_flight_sent = bytes;
  }
  size_t InFlightSent() const { return b_ ? b_->in_flight_sent : 0; }
  // Where a note for the next mark is appended (takes the buffers when idle).
  std::string* MarkNotes() { return b_ ? &b_->notes : &Busy().notes; }
  // Marks a response: its body spans [body_begin, end) of the queue's bytes
  // (end may lie beyond Queued(): a body still to be queued); its note is
  // MarkNotes()[note_begin, end of notes). Marks are kept in order.
  void AddMark(uint64_t body_begin, uint64_t end, size_t note_begin);
  struct MarkView {
    uint64_t body_begin = 0;
    uint64_t end = 0;
    std::string_view note;  // valid until PopMark
  };
  bool HasMarks() const { return b_ && b_->mark_head != b_->marks.size(); }
  // The oldest pending mark, if any.
  bool FrontMark(MarkView* out) const;
  void PopMark();

  size_t size() const { return bytes_; }  // bytes pending
  bool empty() const { return bytes_ == 0; }

  // When empty: gives the buffers (the output block unless a larger piece's,
  // the chunk list) to this thread's spares, or frees them; the queue then
  // holds no heap memory. No-op otherwise.
  void ReleaseIdle();
  // Spare output blocks kept for the calling thread now.
  static size_t SpareBlocks();
  // True when ReleaseIdle would free something.
  bool HoldsIdleMemory() const { return b_ != nullptr; }
  // Heap bytes held (the buffers object, its block and chunk list capacity).
  size_t HeapBytes() const;

 private:
  struct Chunk {
    const char* data = nullptr;
    size_t len = 0;
    std::shared_ptr<const void> holder;  // keeps data alive (an output block or a body)
  };
  // What a queue with output needs, kept together so that an idle queue
  // gives it back (and a busy one takes it) in one step.
  struct Buffers {
    std::shared_ptr<char[]> block;  // output block being filled (kBlockBytes)
    size_t block_used = 0;
    std::vector<Chunk> chunks;  // pending output, in order
    size_t head = 0;            // chunks[0, head) are fully sent
    size_t head_sent = 0;       // bytes of chunks[head] already sent
    uint64_t sent = 0;          // bytes consumed since these buffers were taken
    size_t in_flight_sent = 0;  // NoteInFlightSent
    struct Mark {
      uint64_t body_begin = 0;
      uint64_t end = 0;
      size_t note_begin = 0;
      size_t note_len = 0;
    };
    std::vector<Mark> marks;  // marks[mark_head, size) are pending, oldest first
    size_t mark_head = 0;
    std::string notes;        // the marks' notes, back to back
  };

  Buffers& Busy();  // the buffers, taken from the spares (or new) when idle
  static SpareList<std::unique_ptr<Buffers>>& Spares();

  std::unique_ptr<Buffers> b_;  // null while idle
  size_t bytes_ = 0;            // bytes pending
};

}  // namespace kingx::http
