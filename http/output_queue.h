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
// Memory: heads and small copied bodies share blocks of kBlockBytes (larger
// pieces get a block of their size); a block is reused from its start once
// everything is sent and nothing references it. ReleaseIdle gives the block
// and the chunk list of an empty queue to the calling thread's spare lists
// (spare_list.h), where the next queue that needs them on this thread takes
// them: an idle queue holds no heap memory.
//
// Threading: the owning Connection's thread. Nothing here blocks or throws
// (other than std::bad_alloc).
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <memory>
#include <string_view>
#include <vector>

#include "http/spare_list.h"

namespace kingx::http {

class OutputQueue {
 public:
  static constexpr size_t kBlockBytes = 2048;
  // Spare blocks and chunk lists kept per thread (beyond: freed).
  static constexpr size_t kSparesPerThread = 32;
  // Longest chunk list kept as a spare (a longer one is freed).
  static constexpr size_t kSpareChunksMax = 64;

  // Copies `bytes` into the current output block and queues them.
  void Copy(std::string_view bytes);
  // Queues `bytes` without copying; `holder` keeps them alive and unchanged
  // until they are sent (it is released as soon as they are).
  void Reference(std::string_view bytes, std::shared_ptr<const void> holder);

  // Fills up to max_iov entries with the pending bytes, in order; returns
  // how many were filled (0 when empty()).
  size_t Gather(struct iovec* iov, size_t max_iov) const;
  // `bytes` (<= size()) of the gathered output were sent: drops them,
  // releasing holders and blocks that are no longer referenced.
  void Consume(size_t bytes);

  size_t size() const { return bytes_; }  // bytes pending
  bool empty() const { return bytes_ == 0; }

  // When empty: gives the output block (unless a larger piece's) and the
  // chunk list to this thread's spare lists, or frees them; the queue then
  // holds no heap memory. No-op otherwise.
  void ReleaseIdle();
  // Spare output blocks kept for the calling thread now.
  static size_t SpareBlocks();
  // True when ReleaseIdle would free something.
  bool HoldsIdleMemory() const;
  // Heap bytes held (block and chunk list capacity).
  size_t HeapBytes() const;

 private:
  struct Chunk {
    const char* data = nullptr;
    size_t len = 0;
    std::shared_ptr<const void> holder;  // keeps data alive (an output block or a body)
  };

  void NewBlock(size_t len);
  static SpareList<std::shared_ptr<char[]>>& SpareBlockList();
  static SpareList<std::vector<Chunk>>& SpareChunkLists();

  std::shared_ptr<char[]> block_;  // output block being filled
  size_t block_cap_ = 0;
  size_t block_used_ = 0;
  std::vector<Chunk> chunks_;  // pending output, in order
  size_t head_ = 0;            // chunks_[0, head_) are fully sent
  size_t head_sent_ = 0;       // bytes of chunks_[head_] already sent
  size_t bytes_ = 0;
};

}  // namespace kingx::http
