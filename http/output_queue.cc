// OutputQueue (see output_queue.h).
#include "http/output_queue.h"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace kingx::http {

SpareList<std::shared_ptr<char[]>>& OutputQueue::SpareBlockList() {
  thread_local SpareList<std::shared_ptr<char[]>> spares(kSparesPerThread);
  return spares;
}

SpareList<std::vector<OutputQueue::Chunk>>& OutputQueue::SpareChunkLists() {
  thread_local SpareList<std::vector<Chunk>> spares(kSparesPerThread);
  return spares;
}

size_t OutputQueue::SpareBlocks() { return SpareBlockList().size(); }

// A new block, never a grown one: bytes already queued must not move.
void OutputQueue::NewBlock(size_t len) {
  block_used_ = 0;
  if (len <= kBlockBytes) {
    block_cap_ = kBlockBytes;
    block_ = SpareBlockList().Take();
    if (!block_) block_ = std::make_shared_for_overwrite<char[]>(kBlockBytes);
  } else {
    block_cap_ = len;
    block_ = std::make_shared_for_overwrite<char[]>(len);
  }
}

void OutputQueue::Copy(std::string_view bytes) {
  const size_t len = bytes.size();
  if (len == 0) return;
  if (!block_ || block_cap_ - block_used_ < len) NewBlock(len);
  if (chunks_.capacity() == 0) chunks_ = SpareChunkLists().Take();
  char* dst = block_.get() + block_used_;
  std::memcpy(dst, bytes.data(), len);
  block_used_ += len;
  bytes_ += len;
  // Contiguous with the previous chunk in the same block: extend it.
  if (chunks_.size() > head_) {
    Chunk& last = chunks_.back();
    if (last.data + last.len == dst && last.holder.get() == static_cast<const void*>(block_.get())) {
      last.len += len;
      return;
    }
  }
  chunks_.push_back(Chunk{dst, len, block_});
}

void OutputQueue::Reference(std::string_view bytes, std::shared_ptr<const void> holder) {
  if (bytes.empty()) return;
  if (chunks_.capacity() == 0) chunks_ = SpareChunkLists().Take();
  chunks_.push_back(Chunk{bytes.data(), bytes.size(), std::move(holder)});
  bytes_ += bytes.size();
}

size_t OutputQueue::Gather(struct iovec* iov, size_t max_iov) const {
  size_t n = 0;
  for (size_t i = head_; i < chunks_.size() && n < max_iov; ++i) {
    const Chunk& c = chunks_[i];
    const size_t skip = i == head_ ? head_sent_ : 0;
    iov[n].iov_base = const_cast<char*>(c.data + skip);
    iov[n].iov_len = c.len - skip;
    ++n;
  }
  return n;
}

void OutputQueue::Consume(size_t bytes) {
  assert(bytes <= bytes_);
  bytes = std::min(bytes, bytes_);
  bytes_ -= bytes;
  while (bytes > 0) {
    Chunk& c = chunks_[head_];
    const size_t left = c.len - head_sent_;
    if (bytes < left) {
      head_sent_ += bytes;
      break;
    }
    bytes -= left;
    head_sent_ = 0;
    c.holder.reset();
    ++head_;
  }
  if (head_ == chunks_.size()) {
    chunks_.clear();
    head_ = 0;
    // Everything sent and no chunk holds the block: reuse it from its start.
    if (block_ && block_.use_count() == 1) block_used_ = 0;
  } else if (head_ >= 64 && head_ * 2 >= chunks_.size()) {
    chunks_.erase(chunks_.begin(), chunks_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
}

void OutputQueue::ReleaseIdle() {
  if (head_ != chunks_.size()) return;
  // Empty: no chunk holds the block any more (Consume reset every holder).
  if (block_ && block_cap_ == kBlockBytes && block_.use_count() == 1) {
    SpareBlockList().Give(std::move(block_));
  }
  block_.reset();
  block_cap_ = block_used_ = 0;
  chunks_.clear();
  head_ = head_sent_ = 0;
  if (chunks_.capacity() > 0 && chunks_.capacity() <= kSpareChunksMax) {
    SpareChunkLists().Give(std::move(chunks_));
  }
  std::vector<Chunk>().swap(chunks_);
}

bool OutputQueue::HoldsIdleMemory() const { return block_ != nullptr || chunks_.capacity() > 0; }

size_t OutputQueue::HeapBytes() const {
  return chunks_.capacity() * sizeof(Chunk) + (block_ ? block_cap_ : 0);
}

}  // namespace kingx::http
