// The shared write queue (see write_queue.h).
//
// Ring invariants (positions are monotonic byte counters; offset = pos % ring):
//  - [head, tail) holds published entries; only the consumer reads them and
//    only the consumer advances head (release store).
//  - [tail, head + ring) is free; only a producer holding the mutex writes
//    there, and it publishes by storing tail once, after every byte of the
//    entry (and of any padding entry before it) is in place. So a producer
//    that dies anywhere inside its critical section publishes nothing, and
//    the robust mutex's next owner finds a consistent ring.
//  - An entry never wraps: when it does not fit before the end of the ring,
//    the producer pads to the end (a kPad entry, or nothing when fewer than
//    sizeof(EntryHeader) bytes remain: the consumer skips such a tail too).
//  - Early wrap: an entry that would start at an offset past the window
//    (WrapWindowBytes) while at most half the window is queued, and that fits
//    at offset 0 before head's offset, is padded to the ring's end the same
//    way and written at 0. A load the consumer keeps up with so stays in the
//    ring's first pages, which both processes have touched already (a page
//    of shared memory costs a fault in each process at its first touch).
//    Between such a wrap and the release past its pad, producers see only
//    the room before head's offset: at least half the window at the wrap.
//  - last_pad holds where the newest pad starts (it ends at the next lap):
//    DepthBytes leaves it out, so the queued bytes it reports are entries'.
//
// The consumer never takes the mutex: tail is read with acquire and head is
// stored with release, and a stale head only makes producers see less room.
//
// Entry counts (DepthEntries) are kept so that a process dying at any store
// leaves them exact. Each count is stored packed with the ring position it
// belongs to, in one word (count mod 2^29 above position mod 2^35: a ring
// holds fewer than 2^29 entries and advances by at most 2^34 bytes at once):
//  - published: a producer stores (count + 1, new tail) before it stores the
//    tail. The count at tail is the word's count when its position is tail's,
//    else one less (that producer has not published, or died before it did).
//  - released: the consumer stores its intent (count + n, new head), then
//    head, then the same word as `released`. The count at head is that of
//    whichever word names head's position; a new consumer settles `released`
//    from it before its first release.
//
// Sleep/wake (Dekker-style, all seq_cst): the consumer stores sleeping = 1 and
// then loads tail; a producer stores tail and then exchanges sleeping with 0,
// writing the eventfd only if it was 1. One of the two always sees the other.
#include "src/ipc/write_queue.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <new>

namespace kingx {

namespace {
constexpr uint64_t kQueueMagic = 0x4b58575155455545ull;  // "KXWQUEUE"-ish
constexpr uint8_t kPadType = 0xff;

uint64_t Align8(uint64_t n) { return (n + 7) & ~uint64_t{7}; }

constexpr int kPosBits = 35;
constexpr uint64_t kPosMask = (uint64_t{1} << kPosBits) - 1;
constexpr uint64_t kCountMask = (uint64_t{1} << (64 - kPosBits)) - 1;
uint64_t Stamp(uint64_t count, uint64_t pos) { return ((count & kCountMask) << kPosBits) | (pos & kPosMask); }
uint64_t StampCount(uint64_t stamp) { return stamp >> kPosBits; }
bool StampAt(uint64_t stamp, uint64_t pos) { return (stamp & kPosMask) == (pos & kPosMask); }

struct EntryHeader {
  uint32_t bytes;  // the whole entry, header and padding included (multiple of 8)
  uint8_t type;    // EntryType or kPadType
  uint8_t kind;
  uint8_t condition;
  uint8_t codec;
  uint32_t slot;
  uint32_t key_len;
  uint32_t content_type_len;
  uint32_t reserved;
  uint64_t token;
  uint64_t if_match_seq;
  uint64_t raw_len;
  uint64_t data_len;
};
static_assert(sizeof(EntryHeader) % 8 == 0);

void WakeFd(int fd) {
  if (fd < 0) return;
  const uint64_t one = 1;
  ssize_t w;
  do {
    w = write(fd, &one, sizeof(one));
  } while (w < 0 && errno == EINTR);
  // EAGAIN means the counter is already huge: the reader is being woken anyway.
}
// The calling thread's deferral of wake-ups (WriteQueue::DeferWakes), and
// the queue whose sleeping writer it owes one.
thread_local bool t_defer_wakes = false;
thread_local WriteQueueHeader* t_owed = nullptr;
thread_local uint32_t t_owed_enqueues = 0;  // enqueues since the wake-up was first owed
// A deferred wake-up is written at the latest after this many enqueues, so
// that a long poll phase (thousands of ready connections) feeds the writer
// as it goes instead of leaving it asleep until the phase ends.
constexpr uint32_t kMaxDeferredEnqueues = 128;

}  // namespace

struct WriteQueueHeader {
  uint64_t magic;
  uint64_t ring_bytes;
  int32_t writer_efd;
  pthread_mutex_t mu;                          // robust, process-shared; producers only
  alignas(64) std::atomic<uint64_t> tail;      // producers (under mu), release
  std::atomic<uint64_t> published;             // producers (under mu): Stamp(entries ever published, tail)
  std::atomic<uint64_t> last_pad;              // producers (under mu): start of the newest pad
  alignas(64) std::atomic<uint64_t> head;      // consumer, release
  std::atomic<uint64_t> release_intent;        // consumer: Stamp(entries released, the head it is storing)
  std::atomic<uint64_t> released;              // consumer: Stamp(entries ever released, head)
  std::atomic<uint64_t> taken;                 // consumer: end of what Peek handed out, stored
                                               // before the entries are applied (see PeekOrphans)
  alignas(64) std::atomic<uint32_t> sleeping;  // consumer sets 1 before sleeping
  // Producers' wake-ups of the sleeping writer (WriteQueue::WakeStats),
  // updated only by the producer that writes the eventfd.
  alignas(64) std::atomic<uint64_t> wakes;
  std::atomic<uint64_t> wake_enqueues;
  std::atomic<uint64_t> wake_enqueues_max;
};

static size_t HeaderBytes() { return (sizeof(WriteQueueHeader) + 63) & ~size_t{63}; }

size_t WriteQueue::RegionBytes(uint64_t ring_bytes) { return HeaderBytes() + ring_bytes; }

engine::Status WriteQueue::Format(void* base, uint64_t ring_bytes, int writer_eventfd) {
  if (ring_bytes < (64u << 10) || ring_bytes % 8 != 0 || reinterpret_cast<uintptr_t>(base) % 64 != 0) {
    return engine::Status::InvalidArgument("write queue: ring must be >= 64 KiB, a multiple of 8, 64-byte aligned");
  }
  auto* h = new (base) WriteQueueHeader();
  h->magic = kQueueMagic;
  h->ring_bytes = ring_bytes;
  h->writer_efd = writer_eventfd;
  h->last_pad.store(UINT64_MAX, std::memory_order_relaxed);
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  const int rc = pthread_mutex_init(&h->mu, &attr);
  pthread_mutexattr_destroy(&attr);
  if (rc != 0) return engine::Status::IOError(std::string("write queue: pthread_mutex_init: ") + std::strerror(rc));
  return engine::Status::OK();
}

WriteQueue::WriteQueue(void* base)
    : header_(static_cast<WriteQueueHeader*>(base)), ring_(static_cast<char*>(base) + HeaderBytes()) {
  assert(header_->magic == kQueueMagic);
  peek_pos_ = header_->head.load(std::memory_order_acquire);
}

size_t WriteQueue::max_entry_bytes() const { return header_->ring_bytes / 8; }
uint64_t WriteQueue::ring_bytes() const { return header_->ring_bytes; }

uint64_t WriteQueue::wrap_window_bytes() const { return WrapWindowBytes(header_->ring_bytes); }

uint64_t WriteQueue::WrapWindowBytes(uint64_t ring_bytes) {
  return std::min<uint64_t>(ring_bytes / 16, uint64_t{4} << 20) & ~uint64_t{7};
}

uint64_t WriteQueue::DepthBytes() const {
  const uint64_t head = header_->head.load(std::memory_order_acquire);
  const uint64_t tail = header_->tail.load(std::memory_order_acquire);
  if (tail <= head) return 0;
  uint64_t used = tail - head;
  // At most one pad lies in [head, tail): two would span more than a lap.
  // A pad whose producer died before publishing lies at or past tail.
  const uint64_t pad = header_->last_pad.load(std::memory_order_acquire);
  const uint64_t ring = header_->ring_bytes;
  if (pad != UINT64_MAX && pad >= head && pad < tail) used -= std::min(used, ring - pad % ring);
  return used;
}

// Entries published up to `tail`, given the producers' stamp.
static uint64_t PublishedAt(uint64_t stamp, uint64_t tail) {
  return StampAt(stamp, tail) ? StampCount(stamp) : (StampCount(stamp) - 1) & kCountMask;
}

uint64_t WriteQueue::ReleasedAt(uint64_t head) const {
  const uint64_t done = header_->released.load(std::memory_order_acquire);
  if (StampAt(done, head)) return StampCount(done);
  const uint64_t intent = header_->release_intent.load(std::memory_order_acquire);
  return StampAt(intent, head) ? StampCount(intent) : StampCount(done);
}

uint64_t WriteQueue::DepthEntries() const {
  const uint64_t head = header_->head.load(std::memory_order_acquire);
  const uint64_t released = ReleasedAt(head);
  const uint64_t tail = header_->tail.load(std::memory_order_acquire);
  const uint64_t published = PublishedAt(header_->published.load(std::memory_order_acquire), tail);
  const uint64_t depth = (published - released) & kCountMask;
  // A snapshot racing the consumer can see a release newer than the publish.
  return depth <= header_->ring_bytes / sizeof(EntryHeader) ? depth : 0;
}

int WriteQueue::Lock() {
  int rc = pthread_mutex_lock(&header_->mu);
  if (rc == EOWNERDEAD) {
    // The previous owner died inside its critical section. By the ring
    // invariants it published its whole entry or nothing, and the published
    // count's stamp says which: the state is consistent as is.
    rc = pthread_mutex_consistent(&header_->mu);
  }
  return rc;
}

void WriteQueue::Unlock() { pthread_mutex_unlock(&header_->mu); }

engine::Status WriteQueue::Enqueue(EntryType type, uint32_t slot, uint64_t token, const WriteRequest& r,
                                   const StopPoint* stop) {
  const uint64_t payload = r.key.size() + r.content_type.size() + r.stored.size();
  if (payload > max_entry_bytes()) {
    return engine::Status::TooLarge("write queue entry of " + std::to_string(payload) + " bytes exceeds " +
                                    std::to_string(max_entry_bytes()) + ": use the large-value calls");
  }
  if ((type == EntryType::kOp || type == EntryType::kLargeBegin) && r.key.empty()) {
    return engine::Status::InvalidArgument("write queue: empty key");
  }
  const uint64_t ring = header_->ring_bytes;
  const uint64_t bytes = Align8(sizeof(EntryHeader) + payload);

  if (const int rc = Lock(); rc != 0) {
    return engine::Status::IOError(std::string("write queue: lock: ") + std::strerror(rc));
  }
  const uint64_t head = header_->head.load(std::memory_order_acquire);
  uint64_t tail = header_->tail.load(std::memory_order_relaxed);
  const uint64_t off = tail % ring;
  const uint64_t to_end = ring - off;
  uint64_t pad = to_end < bytes ? to_end : 0;
  const uint64_t window = WrapWindowBytes(ring);
  const uint64_t queued = tail - head;
  if (pad == 0 && off >= window && queued <= window / 2 && to_end <= UINT32_MAX &&
      ring - queued >= to_end + bytes) {
    pad = to_end;  // early wrap (see the file comment); head is in tail's lap, bytes fit before it
  }
  if (ring - queued < pad + bytes) {
    Unlock();
    return engine::Status::Busy("write queue full");
  }
  if (pad >= sizeof(EntryHeader)) {
    EntryHeader ph{};
    ph.bytes = static_cast<uint32_t>(pad);
    ph.type = kPadType;
    std::memcpy(ring_ + off, &ph, sizeof(ph));
  }
  if (pad != 0) header_->last_pad.store(tail, std::memory_order_release);
  tail += pad;
  char* p = ring_ + tail % ring;
  EntryHeader eh{};
  eh.bytes = static_cast<uint32_t>(bytes);
  eh.type = static_cast<uint8_t>(type);
  eh.kind = static_cast<uint8_t>(r.kind);
  eh.condition = static_cast<uint8_t>(r.condition);
  eh.codec = static_cast<uint8_t>(r.codec);
  eh.slot = slot;
  eh.key_len = static_cast<uint32_t>(r.key.size());
  eh.content_type_len = static_cast<uint32_t>(r.content_type.size());
  eh.token = token;
  eh.if_match_seq = r.if_match_seq;
  eh.raw_len = r.raw_len;
  eh.data_len = r.stored.size();
  std::memcpy(p, &eh, sizeof(eh));
  p += sizeof(eh);
  if (!r.key.empty()) std::memcpy(p, r.key.data(), r.key.size());
  p += r.key.size();
  if (!r.content_type.empty()) std::memcpy(p, r.content_type.data(), r.content_type.size());
  p += r.content_type.size();
  if (!r.stored.empty()) std::memcpy(p, r.stored.data(), r.stored.size());
  const uint64_t count = PublishedAt(header_->published.load(std::memory_order_relaxed), tail - pad);
  header_->published.store(Stamp(count + 1, tail + bytes), std::memory_order_release);
  if (stop != nullptr && *stop == StopPoint::kBeforePublish) return engine::Status::OK();
  header_->tail.store(tail + bytes, std::memory_order_seq_cst);
  if (stop != nullptr) return engine::Status::OK();
  Unlock();

  if (t_defer_wakes) {
    // The tail is stored: whenever the flush looks at `sleeping`, the
    // argument above holds as it does here.
    if (t_owed != nullptr && t_owed != header_) FlushWakes();
    t_owed = header_;
    if (++t_owed_enqueues >= kMaxDeferredEnqueues) FlushWakes();
    return engine::Status::OK();
  }
  WakeIfSleeping(header_, 1);
  return engine::Status::OK();
}

void WriteQueue::WakeIfSleeping(WriteQueueHeader* h, uint32_t enqueues) {
  if (h->sleeping.load(std::memory_order_seq_cst) != 0 && h->sleeping.exchange(0, std::memory_order_seq_cst) != 0) {
    WakeFd(h->writer_efd);
    h->wakes.fetch_add(1, std::memory_order_relaxed);
    h->wake_enqueues.fetch_add(enqueues, std::memory_order_relaxed);
    uint64_t max = h->wake_enqueues_max.load(std::memory_order_relaxed);
    while (enqueues > max && !h->wake_enqueues_max.compare_exchange_weak(max, enqueues, std::memory_order_relaxed)) {
    }
  }
}

WriteQueue::WakeCounts WriteQueue::WakeStats() const {
  WakeCounts c;
  c.wakes = header_->wakes.load(std::memory_order_relaxed);
  c.enqueues = header_->wake_enqueues.load(std::memory_order_relaxed);
  c.max_enqueues = header_->wake_enqueues_max.load(std::memory_order_relaxed);
  return c;
}

void WriteQueue::DeferWakes(bool on) {
  if (!on) FlushWakes();
  t_defer_wakes = on;
}

void WriteQueue::FlushWakes() {
  if (t_owed == nullptr) return;
  WriteQueueHeader* const h = t_owed;
  const uint32_t enqueues = t_owed_enqueues;
  t_owed = nullptr;
  t_owed_enqueues = 0;
  WakeIfSleeping(h, enqueues);
}

void WriteQueue::AnnounceSleepForTesting() { header_->sleeping.store(1, std::memory_order_seq_cst); }

engine::Status WriteQueue::TryEnqueue(uint32_t slot, uint64_t token, const WriteRequest& request) {
  return Enqueue(EntryType::kOp, slot, token, request);
}

engine::Status WriteQueue::TryEnqueueLargeBegin(uint32_t slot, uint64_t token, const WriteRequest& header) {
  WriteRequest r = header;
  r.stored = {};
  return Enqueue(EntryType::kLargeBegin, slot, token, r);
}

engine::Status WriteQueue::TryEnqueueLargePart(uint32_t slot, uint64_t token, std::string_view stored_part) {
  WriteRequest r;
  r.stored = stored_part;
  return Enqueue(EntryType::kLargePart, slot, token, r);
}

engine::Status WriteQueue::TryEnqueueLargeEnd(uint32_t slot, uint64_t token, uint64_t raw_len) {
  WriteRequest r;
  r.raw_len = raw_len;
  return Enqueue(EntryType::kLargeEnd, slot, token, r);
}

engine::Status WriteQueue::TryEnqueueLargeAbort(uint32_t slot, uint64_t token) {
  return Enqueue(EntryType::kLargeAbort, slot, token, WriteRequest{});
}

void WriteQueue::BeginConsuming() {
  peek_pos_ = header_->head.load(std::memory_order_acquire);
  // A consumer that died between storing head and `released` left the count in its intent.
  header_->released.store(Stamp(ReleasedAt(peek_pos_), peek_pos_), std::memory_order_release);
  pending_release_ = 0;
  const uint64_t taken = header_->taken.load(std::memory_order_acquire);
  orphan_end_ = taken > peek_pos_ ? taken : peek_pos_;
}

size_t WriteQueue::PeekOrphans(std::vector<QueueEntry>* batch) {
  size_t n = 0;
  // Bounded: each round takes at least one entry or ends.
  while (peek_pos_ < orphan_end_) {
    const size_t got = PeekUpTo(batch, SIZE_MAX, UINT64_MAX, orphan_end_);
    if (got == 0) break;
    n += got;
  }
  return n;
}

size_t WriteQueue::Peek(std::vector<QueueEntry>* batch, size_t max_entries, uint64_t max_bytes) {
  const size_t n = PeekUpTo(batch, max_entries, max_bytes, header_->tail.load(std::memory_order_acquire));
  // Published before the caller applies anything: a writer that dies from
  // here on leaves these entries to PeekOrphans of the next one.
  header_->taken.store(peek_pos_, std::memory_order_release);
  return n;
}

size_t WriteQueue::PeekUpTo(std::vector<QueueEntry>* batch, size_t max_entries, uint64_t max_bytes,
                            uint64_t limit) {
  const uint64_t ring = header_->ring_bytes;
  const uint64_t tail = limit;
  uint64_t entry_bytes = 0;  // pads are not counted: an early wrap's pad is most of a lap
  size_t taken = 0;
  // Bounded: every iteration advances peek_pos_ by at least 8 bytes toward tail.
  while (peek_pos_ < tail && taken < max_entries && (taken == 0 || entry_bytes < max_bytes)) {
    const uint64_t off = peek_pos_ % ring;
    const uint64_t to_end = ring - off;
    if (to_end < sizeof(EntryHeader)) {
      peek_pos_ += to_end;  // implicit padding
      continue;
    }
    EntryHeader eh;
    std::memcpy(&eh, ring_ + off, sizeof(eh));
    // Producers wrote these bytes before publishing tail; a bad size can only
    // come from memory corruption.
    assert(eh.bytes >= sizeof(EntryHeader) && eh.bytes % 8 == 0 && eh.bytes <= to_end &&
           peek_pos_ + eh.bytes <= tail);
    if (eh.type == kPadType) {
      peek_pos_ += eh.bytes;
      continue;
    }
    const char* p = ring_ + off + sizeof(EntryHeader);
    QueueEntry e;
    e.type = static_cast<EntryType>(eh.type);
    e.slot = eh.slot;
    e.token = eh.token;
    e.request.kind = static_cast<WriteKind>(eh.kind);
    e.request.condition = static_cast<WriteCondition>(eh.condition);
    e.request.codec = static_cast<engine::Codec>(eh.codec);
    e.request.if_match_seq = eh.if_match_seq;
    e.request.raw_len = eh.raw_len;
    e.request.key = std::string_view(p, eh.key_len);
    p += eh.key_len;
    e.request.content_type = std::string_view(p, eh.content_type_len);
    p += eh.content_type_len;
    e.request.stored = std::string_view(p, eh.data_len);
    e.end_position = peek_pos_ + eh.bytes;
    batch->push_back(e);
    ++taken;
    entry_bytes += eh.bytes;
    peek_pos_ += eh.bytes;
  }
  pending_release_ += taken;
  return taken;
}

void WriteQueue::Release() { ReleaseUntil(nullptr, peek_pos_, pending_release_); }

void WriteQueue::ReleaseThrough(uint64_t position, uint64_t entries) {
  assert(position <= peek_pos_ && entries <= pending_release_);
  ReleaseUntil(nullptr, position, entries);
}

void WriteQueue::ReleaseUntil(const StopPoint* stop, uint64_t position, uint64_t entries) {
  const uint64_t head = header_->head.load(std::memory_order_relaxed);
  if (position <= head && entries == 0) return;
  const uint64_t count = (ReleasedAt(head) + entries) & kCountMask;
  header_->release_intent.store(Stamp(count, position), std::memory_order_release);
  if (stop != nullptr && *stop == StopPoint::kBeforePublish) return;
  header_->head.store(position, std::memory_order_release);
  if (stop != nullptr) return;
  header_->released.store(Stamp(count, position), std::memory_order_release);
  pending_release_ -= entries;
}

bool WriteQueue::HasUntaken() const { return header_->tail.load(std::memory_order_acquire) != peek_pos_; }

bool WriteQueue::WaitForEntries(int timeout_ms) {
  header_->sleeping.store(1, std::memory_order_seq_cst);
  if (header_->tail.load(std::memory_order_seq_cst) != peek_pos_) {
    header_->sleeping.store(0, std::memory_order_relaxed);
    return true;
  }
  if (header_->writer_efd >= 0) {
    pollfd pfd{header_->writer_efd, POLLIN, 0};
    const int rc = poll(&pfd, 1, timeout_ms);
    if (rc > 0) {
      uint64_t count;
      ssize_t r = read(header_->writer_efd, &count, sizeof(count));
      (void)r;  // EAGAIN: another reader took it; either way we look at tail below
    }
  } else if (timeout_ms != 0) {
    // No eventfd (tests): sleep a little, bounded by the timeout.
    usleep(static_cast<useconds_t>(std::min(timeout_ms < 0 ? 1 : timeout_ms, 1) * 1000));
  }
  header_->sleeping.store(0, std::memory_order_relaxed);
  return header_->tail.load(std::memory_order_acquire) != peek_pos_;
}

uint64_t WriteQueue::Untaken() const {
  const uint64_t depth = DepthEntries();
  return depth > pending_release_ ? depth - pending_release_ : 0;
}

uint64_t WriteQueue::WaitForQueued(uint64_t want, uint64_t timeout_us) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point deadline = Clock::now() + std::chrono::microseconds(timeout_us);
  uint64_t queued = 0;
  // Bounded by the deadline: every turn sleeps until it at most, or ends.
  for (;;) {
    // Announced before the count is read (see the sleep/wake note above):
    // an enqueue the count misses finds the writer sleeping and wakes it.
    header_->sleeping.store(1, std::memory_order_seq_cst);
    queued = Untaken();
    const Clock::time_point now = Clock::now();
    if (queued >= want || now >= deadline) break;
    const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - now);
    if (header_->writer_efd < 0) {
      usleep(static_cast<useconds_t>(std::min<int64_t>(left.count() / 1000 + 1, 1000)));
      continue;
    }
    const timespec ts{static_cast<time_t>(left.count() / 1000000000), static_cast<long>(left.count() % 1000000000)};
    pollfd pfd{header_->writer_efd, POLLIN, 0};
    if (ppoll(&pfd, 1, &ts, nullptr) > 0) {
      uint64_t count;
      ssize_t r = read(header_->writer_efd, &count, sizeof(count));
      (void)r;  // EAGAIN: another reader took it; the count is read again either way
    }
  }
  header_->sleeping.store(0, std::memory_order_relaxed);
  return queued;
}

bool WriteQueue::WaitForWake(int timeout_ms) {
  if (header_->writer_efd >= 0) {
    pollfd pfd{header_->writer_efd, POLLIN, 0};
    if (poll(&pfd, 1, timeout_ms) > 0) {
      uint64_t count;
      ssize_t r = read(header_->writer_efd, &count, sizeof(count));
      (void)r;  // EAGAIN: another reader took it
    }
  } else if (timeout_ms != 0) {
    // No eventfd (tests): sleep a little, bounded by the timeout.
    usleep(static_cast<useconds_t>(std::min(timeout_ms < 0 ? 1 : timeout_ms, 1) * 1000));
  }
  return header_->tail.load(std::memory_order_acquire) != peek_pos_;
}

void WriteQueue::Wake() {
  header_->sleeping.store(0, std::memory_order_seq_cst);
  WakeFd(header_->writer_efd);
}

}  // namespace kingx
