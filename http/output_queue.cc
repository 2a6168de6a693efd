// OutputQueue (see output_queue.h).
#include "http/output_queue.h"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace kingx::http {

SpareList<std::unique_ptr<OutputQueue::Buffers>>& OutputQueue::Spares() {
  thread_local SpareList<std::unique_ptr<Buffers>> spares(kSparesPerThread);
  return spares;
}

size_t OutputQueue::SpareBlocks() {
  return Spares().Count([](const std::unique_ptr<Buffers>& b) { return b->block != nullptr; });
}

OutputQueue::Buffers& OutputQueue::Busy() {
  if (!b_) {
    b_ = Spares().Take();
    if (!b_) b_ = std::make_unique<Buffers>();
  }
  return *b_;
}

void OutputQueue::Copy(std::string_view bytes) {
  const size_t len = bytes.size();
  if (len == 0) return;
  if (len > kBlockBytes) {
    Buffers& b = Busy();
    bytes_ += len;
    // A piece of its own, in a block of its size: the current block goes on
    // taking the small pieces.
    std::shared_ptr<char[]> piece = std::make_shared_for_overwrite<char[]>(len);
    std::memcpy(piece.get(), bytes.data(), len);
    const char* data = piece.get();
    b.chunks.push_back(Chunk{data, len, std::move(piece)});
    return;
  }
  std::memcpy(Reserve(len), bytes.data(), len);
  Commit(len);
}

char* OutputQueue::Reserve(size_t max_len) {
  assert(max_len > 0 && max_len <= kBlockBytes);
  Buffers& b = Busy();
  if (!b.block || kBlockBytes - b.block_used < max_len) {
    // A new block, never a grown one: bytes already queued must not move.
    b.block = std::make_shared_for_overwrite<char[]>(kBlockBytes);
    b.block_used = 0;
  }
  return b.block.get() + b.block_used;
}

void OutputQueue::Commit(size_t len) {
  if (len == 0) return;
  Buffers& b = *b_;  // Reserve made it busy
  assert(len <= kBlockBytes - b.block_used);
  char* dst = b.block.get() + b.block_used;
  b.block_used += len;
  bytes_ += len;
  // Contiguous with the previous chunk in the same block: extend it.
  if (b.chunks.size() > b.head) {
    Chunk& last = b.chunks.back();
    if (last.data + last.len == dst && last.holder.get() == static_cast<const void*>(b.block.get())) {
      last.len += len;
      return;
    }
  }
  b.chunks.push_back(Chunk{dst, len, b.block});
}

void OutputQueue::Reference(std::string_view bytes, std::shared_ptr<const void> holder) {
  if (bytes.empty()) return;
  Buffers& b = Busy();
  b.chunks.push_back(Chunk{bytes.data(), bytes.size(), std::move(holder)});
  bytes_ += bytes.size();
}

size_t OutputQueue::Gather(struct iovec* iov, size_t max_iov) const {
  if (!b_) return 0;
  const Buffers& b = *b_;
  size_t n = 0;
  for (size_t i = b.head; i < b.chunks.size() && n < max_iov; ++i) {
    const Chunk& c = b.chunks[i];
    const size_t skip = i == b.head ? b.head_sent : 0;
    iov[n].iov_base = const_cast<char*>(c.data + skip);
    iov[n].iov_len = c.len - skip;
    ++n;
  }
  return n;
}

void OutputQueue::Consume(size_t bytes) {
  assert(bytes <= bytes_);
  bytes = std::min(bytes, bytes_);
  if (b_) b_->in_flight_sent = 0;
  if (bytes == 0) return;
  Buffers& b = *b_;  // bytes_ > 0: busy
  bytes_ -= bytes;
  b.sent += bytes;
  while (bytes > 0) {
    Chunk& c = b.chunks[b.head];
    const size_t left = c.len - b.head_sent;
    if (bytes < left) {
      b.head_sent += bytes;
      break;
    }
    bytes -= left;
    b.head_sent = 0;
    c.holder.reset();
    ++b.head;
  }
  if (b.head == b.chunks.size()) {
    b.chunks.clear();
    b.head = 0;
    // Everything sent and no chunk holds the block: reuse it from its start.
    if (b.block && b.block.use_count() == 1) b.block_used = 0;
  } else if (b.head >= 64 && b.head * 2 >= b.chunks.size()) {
    b.chunks.erase(b.chunks.begin(), b.chunks.begin() + static_cast<std::ptrdiff_t>(b.head));
    b.head = 0;
  }
}

void OutputQueue::AddMark(uint64_t body_begin, uint64_t end, size_t note_begin) {
  Buffers& b = Busy();
  assert(note_begin <= b.notes.size());
  b.marks.push_back(Buffers::Mark{body_begin, end, note_begin, b.notes.size() - note_begin});
}

bool OutputQueue::FrontMark(MarkView* out) const {
  if (!b_ || b_->mark_head == b_->marks.size()) return false;
  const Buffers::Mark& m = b_->marks[b_->mark_head];
  out->body_begin = m.body_begin;
  out->end = m.end;
  out->note = std::string_view(b_->notes).substr(m.note_begin, m.note_len);
  return true;
}

void OutputQueue::PopMark() {
  Buffers& b = *b_;
  assert(b.mark_head < b.marks.size());
  if (++b.mark_head < b.marks.size()) return;
  b.marks.clear();
  b.mark_head = 0;
  b.notes.clear();
}

void OutputQueue::ReleaseIdle() {
  if (!b_ || b_->head != b_->chunks.size() || b_->mark_head != b_->marks.size()) return;
  Buffers& b = *b_;
  b.sent = 0;
  b.in_flight_sent = 0;
  if (b.marks.capacity() > kSpareChunksMax) std::vector<Buffers::Mark>().swap(b.marks);
  if (b.notes.capacity() > kSpareNoteBytesMax) std::string().swap(b.notes);
  // Empty: no chunk holds the block any more (Consume reset every holder).
  if (b.block && b.block.use_count() != 1) b.block.reset();
  b.block_used = 0;
  b.chunks.clear();
  b.head = b.head_sent = 0;
  if (b.chunks.capacity() > kSpareChunksMax) std::vector<Chunk>().swap(b.chunks);
  Spares().Give(std::move(b_));
  b_.reset();  // when the spares were full, Give destroyed it
}

size_t OutputQueue::HeapBytes() const {
  if (!b_) return 0;
  size_t bytes = sizeof(Buffers) + b_->chunks.capacity() * sizeof(Chunk) + (b_->block ? kBlockBytes : 0) +
                 b_->marks.capacity() * sizeof(Buffers::Mark) + b_->notes.capacity();
  for (size_t i = b_->head; i < b_->chunks.size(); ++i) {
    const Chunk& c = b_->chunks[i];  // pieces copied into blocks of their own
    if (c.len > kBlockBytes && c.holder.get() == static_cast<const void*>(c.data)) bytes += c.len;
  }
  return bytes;
}

}  // namespace kingx::http
