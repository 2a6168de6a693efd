// CompletionRing (see completion_ring.h). head and tail are monotonic
// counters: the producer owns tail, the consumer owns head; an entry is
// written before tail is stored (release) and read after tail is loaded
// (acquire).
#include "src/ipc/completion_ring.h"

#include <new>

namespace kingx {

namespace {
struct StoredCompletion {
  uint64_t token;
  uint64_t seq;
  uint32_t code;
  uint16_t existed;
  uint16_t reason;  // CompletionReason
};
}  // namespace

struct CompletionRingHeader {
  uint32_t entries;
  alignas(64) std::atomic<uint64_t> head;  // consumer
  alignas(64) std::atomic<uint64_t> tail;  // producer
};

static size_t RingHeaderBytes() { return (sizeof(CompletionRingHeader) + 63) & ~size_t{63}; }

static StoredCompletion* RingEntries(CompletionRingHeader* h) {
  return reinterpret_cast<StoredCompletion*>(reinterpret_cast<char*>(h) + RingHeaderBytes());
}

size_t CompletionRing::RegionBytes(uint32_t entries) {
  return RingHeaderBytes() + size_t{entries} * sizeof(StoredCompletion);
}

engine::Status CompletionRing::Format(void* base, uint32_t entries) {
  if (entries < 2 || (entries & (entries - 1)) != 0) {
    return engine::Status::InvalidArgument("completion ring: entries must be a power of two >= 2");
  }
  auto* h = new (base) CompletionRingHeader();
  h->entries = entries;
  return engine::Status::OK();
}

CompletionRing::CompletionRing(void* base) : header_(static_cast<CompletionRingHeader*>(base)) {}

bool CompletionRing::TryPost(const Completion& c) {
  const uint64_t tail = header_->tail.load(std::memory_order_relaxed);
  const uint64_t head = header_->head.load(std::memory_order_acquire);
  if (tail - head >= header_->entries) return false;
  StoredCompletion& s = RingEntries(header_)[tail & (header_->entries - 1)];
  s.token = c.token;
  s.seq = c.seq;
  s.code = static_cast<uint32_t>(c.code);
  s.existed = c.existed ? 1 : 0;
  s.reason = static_cast<uint16_t>(c.reason);
  header_->tail.store(tail + 1, std::memory_order_release);
  return true;
}

size_t CompletionRing::Drain(uint32_t generation, const std::function<void(const Completion&)>& fn) {
  const uint64_t tail = header_->tail.load(std::memory_order_acquire);
  uint64_t head = header_->head.load(std::memory_order_relaxed);
  size_t seen = 0;
  for (; head < tail; ++head) {
    const StoredCompletion& s = RingEntries(header_)[head & (header_->entries - 1)];
    Completion c;
    c.token = s.token;
    c.seq = s.seq;
    c.code = static_cast<engine::Code>(s.code);
    c.existed = s.existed != 0;
    c.reason = static_cast<CompletionReason>(s.reason);
    // Free the entry before the callback so that a callback that takes long
    // does not hold ring space; c is a copy.
    header_->head.store(head + 1, std::memory_order_release);
    if (TokenGeneration(c.token) != (generation & 0xFFFFFFu)) continue;
    fn(c);
    ++seen;
  }
  return seen;
}

uint32_t CompletionRing::Pending() const {
  const uint64_t tail = header_->tail.load(std::memory_order_acquire);
  const uint64_t head = header_->head.load(std::memory_order_acquire);
  return static_cast<uint32_t>(tail - head);
}

}  // namespace kingx
