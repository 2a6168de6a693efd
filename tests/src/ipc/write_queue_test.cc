// The shared write queue, in one process and across processes (fork),
// including a producer killed while it holds the mutex.
#include "src/ipc/token.h"
#include "src/ipc/write_queue.h"

#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <functional>
#include <future>
#include <map>
#include <string>
#include <vector>

namespace kingx {
namespace {

// An anonymous shared mapping big enough for a queue with `ring` bytes.
struct SharedRegion {
  explicit SharedRegion(size_t bytes) : size(bytes) {
    base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(base != MAP_FAILED);
  }
  ~SharedRegion() { munmap(base, size); }
  void* base;
  size_t size;
};

struct TestQueue {
  explicit TestQueue(uint64_t ring, int efd = -1) : region(WriteQueue::RegionBytes(ring)) {
    REQUIRE(WriteQueue::Format(region.base, ring, efd).ok());
    queue = std::make_unique<WriteQueue>(region.base);
    queue->BeginConsuming();
  }
  SharedRegion region;
  std::unique_ptr<WriteQueue> queue;
};

// A queue whose consumer sleeps on an eventfd of its own (closed with it):
// the wake-up cases read that eventfd to see which call woke the consumer.
struct WakeQueue {
  explicit WakeQueue(uint64_t ring) : efd(NewEventFd()), t(ring, efd), queue(*t.queue) {}
  ~WakeQueue() { close(efd); }
  WakeQueue(const WakeQueue&) = delete;
  WakeQueue& operator=(const WakeQueue&) = delete;

  // The wake-ups written to the eventfd since the last call (its counter,
  // which the read resets), 0 when none.
  uint64_t TakeWakes() {
    uint64_t count = 0;
    return read(efd, &count, sizeof(count)) == sizeof(count) ? count : 0;
  }

  static int NewEventFd() {
    const int fd = eventfd(0, EFD_NONBLOCK);
    REQUIRE(fd >= 0);
    return fd;
  }

  const int efd;
  TestQueue t;
  WriteQueue& queue;
};

WriteRequest Put(std::string_view key, std::string_view value) {
  WriteRequest r;
  r.kind = WriteKind::kPut;
  r.key = key;
  r.content_type = "text/plain";
  r.stored = value;
  r.raw_len = value.size();
  return r;
}

// Takes everything queued (bounded number of Peek calls).
std::vector<QueueEntry> TakeAll(WriteQueue& q) {
  std::vector<QueueEntry> out;
  for (int i = 0; i < 100000 && q.Peek(&out, 1000, 1 << 30) > 0; ++i) {
  }
  return out;
}

}  // namespace

TEST_CASE("an enqueued write comes out with every field intact", "[src][write_queue]") {
  TestQueue t(64 << 10);
  const std::string binary_key("k\0ey", 4);
  WriteRequest r = Put(binary_key, "value bytes");
  r.condition = WriteCondition::kIfMatch;
  r.if_match_seq = 42;
  r.codec = engine::Codec::kZstd;
  r.raw_len = 1000;
  REQUIRE(t.queue->TryEnqueue(3, MakeToken(7, 99), r).ok());
  WriteRequest d;
  d.kind = WriteKind::kDelete;
  d.key = "gone";
  REQUIRE(t.queue->TryEnqueue(4, MakeToken(8, 1), d).ok());
  CHECK(t.queue->DepthEntries() == 2);

  auto batch = TakeAll(*t.queue);
  REQUIRE(batch.size() == 2);
  CHECK(batch[0].type == EntryType::kOp);
  CHECK(batch[0].slot == 3);
  CHECK(TokenGeneration(batch[0].token) == 7);
  CHECK(TokenLocalId(batch[0].token) == 99);
  CHECK(batch[0].request.key == std::string_view("k\0ey", 4));
  CHECK(batch[0].request.content_type == "text/plain");
  CHECK(batch[0].request.stored == "value bytes");
  CHECK(batch[0].request.condition == WriteCondition::kIfMatch);
  CHECK(batch[0].request.if_match_seq == 42);
  CHECK(batch[0].request.codec == engine::Codec::kZstd);
  CHECK(batch[0].request.raw_len == 1000);
  CHECK(batch[1].request.kind == WriteKind::kDelete);
  CHECK(batch[1].request.key == "gone");
  t.queue->Release();
  CHECK(t.queue->DepthEntries() == 0);
  CHECK(t.queue->DepthBytes() == 0);
}

TEST_CASE("a full queue answers Busy and accepts again once the writer releases", "[src][write_queue]") {
  TestQueue t(64 << 10);
  const std::string value(1000, 'v');
  int accepted = 0;
  engine::Status s;
  for (int i = 0; i < 1000; ++i) {
    s = t.queue->TryEnqueue(0, MakeToken(1, static_cast<uint64_t>(i)), Put("key", value));
    if (!s.ok()) break;
    ++accepted;
  }
  REQUIRE(s.Is(engine::Code::kBusy));
  CHECK(accepted > 10);
  CHECK(accepted < 66);  // 64 KiB cannot hold 66 entries of 1 KiB
  auto batch = TakeAll(*t.queue);
  CHECK(batch.size() == static_cast<size_t>(accepted));
  // Peeked but not released: still no room.
  CHECK(t.queue->TryEnqueue(0, 1, Put("key", value)).Is(engine::Code::kBusy));
  t.queue->Release();
  CHECK(t.queue->TryEnqueue(0, 1, Put("key", value)).ok());
}

TEST_CASE("entries too big for one piece are refused, parts of a large value go through", "[src][write_queue]") {
  TestQueue t(64 << 10);
  const size_t max = t.queue->max_entry_bytes();
  CHECK(max == 8 << 10);
  const std::string big(max + 1, 'b');
  CHECK(t.queue->TryEnqueue(0, 1, Put("k", big)).Is(engine::Code::kTooLarge));
  CHECK(t.queue->TryEnqueue(0, 1, Put("", "x")).Is(engine::Code::kInvalidArgument));
  CHECK(t.queue->DepthEntries() == 0);

  // A 1 MiB value through a 64 KiB ring: the consumer drains as it goes.
  const uint64_t token = MakeToken(2, 5);
  WriteRequest header = Put("large", "");
  REQUIRE(t.queue->TryEnqueueLargeBegin(1, token, header).ok());
  std::string sent, received;
  bool ended = false;
  std::vector<EntryType> types;
  for (int i = 0; i < 128; ++i) {
    std::string part(max, static_cast<char>('a' + i % 26));
    sent += part;
    // Bounded retry: each round the consumer frees the ring.
    engine::Status s;
    for (int tries = 0; tries < 3; ++tries) {
      s = t.queue->TryEnqueueLargePart(1, token, part);
      if (s.ok()) break;
      REQUIRE(s.Is(engine::Code::kBusy));
      for (const QueueEntry& e : TakeAll(*t.queue)) {
        types.push_back(e.type);
        if (e.type == EntryType::kLargePart) received.append(e.request.stored);
      }
      t.queue->Release();
    }
    REQUIRE(s.ok());
  }
  REQUIRE(t.queue->TryEnqueueLargeEnd(1, token, sent.size()).ok());
  for (const QueueEntry& e : TakeAll(*t.queue)) {
    types.push_back(e.type);
    CHECK(e.token == token);
    if (e.type == EntryType::kLargePart) received.append(e.request.stored);
    if (e.type == EntryType::kLargeEnd) {
      ended = true;
      CHECK(e.request.raw_len == sent.size());
    }
  }
  t.queue->Release();
  CHECK(ended);
  CHECK(types.front() == EntryType::kLargeBegin);
  CHECK(received == sent);
}

TEST_CASE("entries of every size wrap around the ring without corruption", "[src][write_queue]") {
  TestQueue t(64 << 10);
  uint64_t produced = 0, consumed = 0;
  std::string value;
  // Sizes cycle through odd lengths so entries end at every alignment and
  // the ring wraps many times (several MB through 64 KiB).
  for (int round = 0; round < 20000; ++round) {
    value.assign(static_cast<size_t>(produced * 37 % 3000), static_cast<char>('A' + produced % 26));
    const std::string key = "key" + std::to_string(produced);
    engine::Status s = t.queue->TryEnqueue(0, produced, Put(key, value));
    if (s.ok()) {
      ++produced;
      continue;
    }
    REQUIRE(s.Is(engine::Code::kBusy));
    for (const QueueEntry& e : TakeAll(*t.queue)) {
      REQUIRE(e.token == consumed);
      REQUIRE(e.request.key == "key" + std::to_string(consumed));
      REQUIRE(e.request.stored ==
              std::string(static_cast<size_t>(consumed * 37 % 3000), static_cast<char>('A' + consumed % 26)));
      ++consumed;
    }
    t.queue->Release();
  }
  for (const QueueEntry& e : TakeAll(*t.queue)) {
    REQUIRE(e.token == consumed);
    REQUIRE(e.request.stored.size() == consumed * 37 % 3000);
    ++consumed;
  }
  t.queue->Release();
  CHECK(consumed == produced);
  CHECK(produced > 10000);
}

TEST_CASE("producers in several processes: every entry arrives once, in per-producer order",
          "[src][write_queue][multiprocess]") {
  WakeQueue w(256 << 10);
  TestQueue& t = w.t;
  constexpr int kProducers = 4;
  constexpr uint64_t kPerProducer = 20000;
  std::vector<pid_t> pids;
  for (int p = 0; p < kProducers; ++p) {
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      WriteQueue q(t.region.base);
      std::string value;
      for (uint64_t i = 0; i < kPerProducer; ++i) {
        value.assign(static_cast<size_t>(i % 200), static_cast<char>('a' + p));
        const std::string key = std::to_string(p) + ":" + std::to_string(i);
        // Bounded: the consumer keeps draining; give up after many tries.
        int tries = 0;
        while (!q.TryEnqueue(static_cast<uint32_t>(p), MakeToken(1, i), Put(key, value)).ok()) {
          if (++tries > 10'000'000) _exit(3);
          sched_yield();
        }
      }
      _exit(0);
    }
    pids.push_back(pid);
  }
  std::vector<uint64_t> next(kProducers, 0);
  uint64_t total = 0;
  bool in_order = true;
  // Bounded by the count, and by WaitForEntries' timeout per round.
  for (int rounds = 0; total < kProducers * kPerProducer && rounds < 10'000'000; ++rounds) {
    if (!t.queue->WaitForEntries(1000)) continue;
    std::vector<QueueEntry> batch;
    t.queue->Peek(&batch, 512, 1 << 20);
    for (const QueueEntry& e : batch) {
      const uint32_t p = e.slot;
      const uint64_t i = TokenLocalId(e.token);
      in_order = in_order && p < kProducers && i == next[p] &&
                 e.request.key == std::to_string(p) + ":" + std::to_string(i) &&
                 e.request.stored == std::string(static_cast<size_t>(i % 200), static_cast<char>('a' + p));
      if (p < kProducers) next[p] = i + 1;
      ++total;
    }
    t.queue->Release();
  }
  for (pid_t pid : pids) {
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  }
  CHECK(in_order);
  CHECK(total == kProducers * kPerProducer);
}

TEST_CASE("a producer killed while holding the queue's mutex does not wedge the others",
          "[src][write_queue][multiprocess]") {
  TestQueue t(64 << 10);
  REQUIRE(t.queue->TryEnqueue(0, 1, Put("before", "1")).ok());
  int ready[2];
  REQUIRE(pipe(ready) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    WriteQueue q(t.region.base);
    q.LockForTesting();
    char junk = 'x';
    (void)!write(ready[1], &junk, 1);
    pause();
    _exit(0);
  }
  char c;
  REQUIRE(read(ready[0], &c, 1) == 1);
  REQUIRE(kill(pid, SIGKILL) == 0);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFSIGNALED(status));

  // The next locker gets EOWNERDEAD, makes the mutex consistent, goes on;
  // later lockers see a normal mutex.
  CHECK(t.queue->TryEnqueue(0, 2, Put("after", "2")).ok());
  CHECK(t.queue->TryEnqueue(0, 3, Put("again", "3")).ok());
  auto batch = TakeAll(*t.queue);
  REQUIRE(batch.size() == 3);
  CHECK(batch[0].request.key == "before");
  CHECK(batch[1].request.key == "after");
  CHECK(batch[2].request.key == "again");
  close(ready[0]);
  close(ready[1]);
}

// Runs fn in a child process that is killed (SIGKILL) right after it.
void DieAfter(const std::function<void()>& fn) {
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    fn();
    raise(SIGKILL);
    _exit(0);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFSIGNALED(status));
}

TEST_CASE("a producer killed at any step of its enqueue leaves the entry count exact",
          "[src][write_queue][multiprocess][regression]") {
  // Regression: the count of published entries was bumped before the entry
  // was published, so a producer dying in between left the queue's depth one
  // too high for ever (kingx_write_queue_entries).
  using Stop = WriteQueue::StopPoint;
  for (Stop stop : {Stop::kBeforePublish, Stop::kAfterPublish}) {
    const bool published = stop == Stop::kAfterPublish;
    INFO("producer killed " << (published ? "after" : "before") << " publishing");
    TestQueue t(64 << 10);
    REQUIRE(t.queue->TryEnqueue(0, 1, Put("before", "1")).ok());
    DieAfter([&] {
      WriteQueue q(t.region.base);
      q.EnqueueForTesting(0, 2, Put("dying", "2"), stop);
    });
    const uint64_t queued = published ? 2 : 1;
    CHECK(t.queue->DepthEntries() == queued);
    REQUIRE(t.queue->TryEnqueue(0, 3, Put("after", "3")).ok());  // the next locker gets EOWNERDEAD
    CHECK(t.queue->DepthEntries() == queued + 1);
    auto batch = TakeAll(*t.queue);
    CHECK(batch.size() == queued + 1);
    t.queue->Release();
    CHECK(t.queue->DepthEntries() == 0);
    REQUIRE(t.queue->TryEnqueue(0, 4, Put("last", "4")).ok());
    CHECK(t.queue->DepthEntries() == 1);
  }
}

TEST_CASE("a consumer killed at any step of its release leaves the entry count exact",
          "[src][write_queue][multiprocess][regression]") {
  // Regression: the count of released entries was bumped before head moved,
  // so a writer dying in between had its batch counted as released twice
  // (once by it, once when the next writer released the same entries as
  // orphans): the depth read too low for ever.
  using Stop = WriteQueue::StopPoint;
  for (Stop stop : {Stop::kBeforePublish, Stop::kAfterPublish}) {
    const bool released = stop == Stop::kAfterPublish;
    INFO("consumer killed " << (released ? "after" : "before") << " moving head");
    TestQueue t(64 << 10);
    for (uint64_t i = 0; i < 3; ++i) REQUIRE(t.queue->TryEnqueue(0, i, Put("k" + std::to_string(i), "v")).ok());
    DieAfter([&] {
      WriteQueue q(t.region.base);
      q.BeginConsuming();
      REQUIRE(TakeAll(q).size() == 3);
      q.ReleaseForTesting(stop);
    });
    CHECK(t.queue->DepthEntries() == (released ? 0 : 3));
    WriteQueue fresh(t.region.base);
    fresh.BeginConsuming();
    std::vector<QueueEntry> orphans;
    CHECK(fresh.PeekOrphans(&orphans) == (released ? 0 : 3));
    fresh.Release();
    CHECK(fresh.DepthEntries() == 0);
    REQUIRE(t.queue->TryEnqueue(0, 9, Put("next", "v")).ok());
    CHECK(fresh.DepthEntries() == 1);
    CHECK(TakeAll(fresh).size() == 1);
    fresh.Release();
    CHECK(fresh.DepthEntries() == 0);
  }
}

TEST_CASE("a restarted consumer gets its predecessor's taken entries as orphans, not as new work",
          "[src][write_queue]") {
  TestQueue t(64 << 10);
  REQUIRE(t.queue->TryEnqueue(0, 1, Put("a", "1")).ok());
  REQUIRE(t.queue->TryEnqueue(0, 2, Put("b", "2")).ok());
  CHECK(TakeAll(*t.queue).size() == 2);  // the old writer dies before Release
  REQUIRE(t.queue->TryEnqueue(0, 3, Put("c", "3")).ok());  // queued after its death
  WriteQueue fresh(t.region.base);
  fresh.BeginConsuming();
  std::vector<QueueEntry> orphans;
  REQUIRE(fresh.PeekOrphans(&orphans) == 2);
  CHECK(orphans[0].request.key == "a");
  CHECK(orphans[1].request.key == "b");
  fresh.Release();
  auto next = TakeAll(fresh);
  REQUIRE(next.size() == 1);
  CHECK(next[0].request.key == "c");
  fresh.Release();
  CHECK(fresh.DepthEntries() == 0);

  // After a clean handover (everything released) there are no orphans.
  WriteQueue third(t.region.base);
  third.BeginConsuming();
  std::vector<QueueEntry> none;
  CHECK(third.PeekOrphans(&none) == 0);
}

TEST_CASE("releasing a prefix of the taken entries frees exactly those; the rest stay taken (orphans of a successor)",
          "[src][write_queue]") {
  // A ring that holds a handful of entries: the freed room is observable.
  TestQueue t(64 << 10);
  const std::string value(6000, 'v');
  REQUIRE(t.queue->TryEnqueue(0, 1, Put("a", value)).ok());
  REQUIRE(t.queue->TryEnqueue(0, 2, Put("b", value)).ok());
  std::vector<QueueEntry> first;
  REQUIRE(t.queue->Peek(&first, 1000, 1 << 30) == 2);
  const uint64_t first_end = t.queue->PeekPosition();
  REQUIRE(t.queue->TryEnqueue(0, 3, Put("c", value)).ok());
  REQUIRE(t.queue->TryEnqueue(0, 4, Put("d", value)).ok());
  std::vector<QueueEntry> second;
  REQUIRE(t.queue->Peek(&second, 1000, 1 << 30) == 2);
  CHECK(t.queue->DepthEntries() == 4);
  // Fill the ring: room comes back only when a prefix is released.
  uint64_t token = 10;
  while (t.queue->TryEnqueue(0, token, Put("f", value)).ok()) ++token;
  const uint64_t queued = token - 10;
  t.queue->ReleaseThrough(first_end, 2);
  CHECK(t.queue->DepthEntries() == 2 + queued);
  CHECK(t.queue->TryEnqueue(0, token, Put("g", value)).ok());  // a's and b's room is free
  CHECK(second[0].request.key == "c");  // the views of the later entries are intact
  CHECK(second[1].request.key == "d");
  // The consumer dies here: c and d were taken, not released.
  WriteQueue fresh(t.region.base);
  fresh.BeginConsuming();
  std::vector<QueueEntry> orphans;
  REQUIRE(fresh.PeekOrphans(&orphans) == 2);
  CHECK(orphans[0].request.key == "c");
  CHECK(orphans[1].request.key == "d");
  fresh.Release();
  auto rest = TakeAll(fresh);
  CHECK(rest.size() == queued + 1);
  fresh.Release();
  CHECK(fresh.DepthEntries() == 0);
}

TEST_CASE("the consumer sleeps on the eventfd and a producer in another process wakes it",
          "[src][write_queue][multiprocess]") {
  WakeQueue w(64 << 10);
  TestQueue& t = w.t;
  CHECK_FALSE(t.queue->WaitForEntries(0));
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    WriteQueue q(t.region.base);
    usleep(50 * 1000);
    _exit(q.TryEnqueue(0, 1, Put("wake", "up")).ok() ? 0 : 1);
  }
  // Without a timeout: only the producer's eventfd write can end this wait
  // (meson's test timeout catches a lost wake-up).
  CHECK(t.queue->WaitForEntries(-1));
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  auto batch = TakeAll(*t.queue);
  REQUIRE(batch.size() == 1);
  CHECK(batch[0].request.key == "wake");
}

TEST_CASE("a consumer waiting for a wake is not woken by enqueues, only by Wake, and then finds them all",
          "[src][write_queue]") {
  // The writer waits so while a batch's fdatasync runs: what arrives stays
  // queued for the next batch, and producers do not pay for an eventfd write.
  WakeQueue w(64 << 10);
  TestQueue& t = w.t;
  REQUIRE(t.queue->TryEnqueue(0, 1, Put("a", "1")).ok());
  CHECK(t.queue->WaitForWake(0));  // no wake yet: returns at its timeout, saying entries are queued
  // Without a timeout, entries queued and one more arriving: only the Wake
  // may end this wait (a wait that ends without it fails here at once; one
  // that never ends is caught by meson's test timeout).
  auto waiting = std::async(std::launch::async, [&] { return t.queue->WaitForWake(-1); });
  REQUIRE(t.queue->TryEnqueue(0, 2, Put("b", "2")).ok());
  CHECK(waiting.wait_for(std::chrono::milliseconds(200)) == std::future_status::timeout);
  CHECK(w.TakeWakes() == 0);  // neither enqueue wrote the eventfd
  t.queue->Wake();
  CHECK(waiting.get());
  CHECK(w.TakeWakes() == 0);  // the wait consumed the wake
  auto batch = TakeAll(*t.queue);
  REQUIRE(batch.size() == 2);
  CHECK(batch[0].request.key == "a");
  CHECK(batch[1].request.key == "b");
  CHECK_FALSE(t.queue->WaitForWake(0));
}

// ---------------------------------------------------------------- early wrap

namespace {

constexpr uint64_t kEntryHeaderBytes = 56;  // write_queue.cc's EntryHeader

// An entry of exactly `bytes` ring bytes (a multiple of 8, >= 64): a one-byte
// key, no content type, the rest value.
WriteRequest Sized(uint64_t bytes, const std::string& storage) {
  REQUIRE(bytes % 8 == 0);
  REQUIRE(bytes >= kEntryHeaderBytes + 8);
  WriteRequest r;
  r.key = "s";
  r.stored = std::string_view(storage).substr(0, bytes - kEntryHeaderBytes - 1);
  r.raw_len = r.stored.size();
  return r;
}

// Queues entries that end exactly at ring position `to` (tail must be at
// `from`; to - from is 0 or >= 64, a multiple of 8, and no entry crosses the
// ring's end). Returns how many it queued.
uint64_t FillTo(WriteQueue& q, uint64_t from, uint64_t to, const std::string& storage) {
  uint64_t n = 0;
  // Bounded: every entry advances by at least 64 bytes.
  while (from < to) {
    uint64_t chunk = std::min<uint64_t>(to - from, 8 << 10);
    if (to - from - chunk != 0 && to - from - chunk < 64) chunk -= 64;
    REQUIRE(q.TryEnqueue(0, 1000 + n, Sized(chunk, storage)).ok());
    from += chunk;
    ++n;
  }
  return n;
}

// Offset in the ring of an entry handed out by Peek.
uint64_t RingOffset(const TestQueue& t, uint64_t ring, const QueueEntry& e) {
  const char* ring_base = static_cast<const char*>(t.region.base) + WriteQueue::RegionBytes(ring) - ring;
  return static_cast<uint64_t>(e.request.key.data() - ring_base) - kEntryHeaderBytes;
}

}  // namespace

TEST_CASE("a wait for queued entries counts only those not taken, ends at its timeout short of them, and at the "
          "producer's wake-up that brings the last one",
          "[src][write_queue][commit_delay]") {
  WakeQueue w(64 << 10);
  WriteQueue& q = w.queue;
  REQUIRE(q.TryEnqueue(1, MakeToken(1, 1), Put("a", "1")).ok());
  std::vector<QueueEntry> taken;
  REQUIRE(q.Peek(&taken, 1, 1 << 20) == 1);     // taken, not released: not counted
  REQUIRE(q.TryEnqueue(1, MakeToken(1, 2), Put("b", "2")).ok());
  CHECK(q.Untaken() == 1);
  CHECK(q.WaitForQueued(1, 60000000) == 1);     // there already: no sleep
  CHECK(q.WaitForQueued(2, 1000) == 1);         // short of it: the timeout ends the wait
  CHECK(w.TakeWakes() == 0);
  // Enqueues from another thread until the third untaken one: each wakes the
  // sleeping consumer (the wait announces its sleep again after each look),
  // and the one that brings the third ends the wait long before its minute.
  const auto t0 = std::chrono::steady_clock::now();
  auto waiting = std::async(std::launch::async, [&] { return q.WaitForQueued(3, 60000000); });
  REQUIRE(q.TryEnqueue(1, MakeToken(1, 3), Put("c", "3")).ok());
  CHECK(waiting.wait_for(std::chrono::milliseconds(100)) == std::future_status::timeout);
  REQUIRE(q.TryEnqueue(1, MakeToken(1, 4), Put("d", "4")).ok());
  CHECK(waiting.get() == 3);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30));
  q.Release();
  CHECK(q.Untaken() == 3);
  CHECK(TakeAll(q).size() == 3);
}

TEST_CASE("a thread that defers wake-ups wakes the sleeping writer once, at its flush, for all its enqueues",
          "[src][write_queue]") {
  WakeQueue w(1 << 16);
  WriteQueue& q = w.queue;
  // Deferred: the enqueues that find the writer asleep write nothing yet.
  q.AnnounceSleepForTesting();
  WriteQueue::DeferWakes(true);
  REQUIRE(q.TryEnqueue(1, MakeToken(1, 1), Put("a", "1")).ok());
  REQUIRE(q.TryEnqueue(1, MakeToken(1, 2), Put("b", "2")).ok());
  CHECK(w.TakeWakes() == 0);
  WriteQueue::FlushWakes();                      // one wake-up for both
  CHECK(w.TakeWakes() == 1);
  WriteQueue::FlushWakes();                      // nothing owed any more
  CHECK(w.TakeWakes() == 0);
  // Turning deferral off flushes what is owed.
  q.AnnounceSleepForTesting();
  REQUIRE(q.TryEnqueue(1, MakeToken(1, 3), Put("c", "3")).ok());
  CHECK(w.TakeWakes() == 0);
  WriteQueue::DeferWakes(false);
  REQUIRE(w.TakeWakes() == 1);
  // Not deferring: the enqueue wakes the sleeping writer itself, as before.
  q.AnnounceSleepForTesting();
  REQUIRE(q.TryEnqueue(1, MakeToken(1, 4), Put("d", "4")).ok());
  REQUIRE(w.TakeWakes() == 1);
  // The 128th deferred enqueue wakes the writer by itself.
  q.AnnounceSleepForTesting();
  WriteQueue::DeferWakes(true);
  for (uint64_t i = 0; i < 127; ++i) REQUIRE(q.TryEnqueue(1, MakeToken(1, 100 + i), Put("f", "6")).ok());
  CHECK(w.TakeWakes() == 0);
  REQUIRE(q.TryEnqueue(1, MakeToken(1, 227), Put("f", "6")).ok());
  REQUIRE(w.TakeWakes() == 1);
  WriteQueue::DeferWakes(false);
  CHECK(w.TakeWakes() == 0);   // nothing was owed after it
  // Another thread's deferral does not hold back this one's wake-up.
  std::async(std::launch::async, [] { WriteQueue::DeferWakes(true); }).get();
  q.AnnounceSleepForTesting();
  REQUIRE(q.TryEnqueue(1, MakeToken(1, 5), Put("e", "5")).ok());
  REQUIRE(w.TakeWakes() == 1);
  CHECK(TakeAll(q).size() == 5 + 128);
}

TEST_CASE("the wake-up counts say how many enqueues each wake-up of the sleeping writer carried",
          "[src][write_queue]") {
  WakeQueue w(1 << 16);
  WriteQueue& q = w.queue;
  CHECK(q.WakeStats().wakes == 0);
  // An enqueue that finds the writer awake wakes nothing and is not counted.
  REQUIRE(q.TryEnqueue(1, MakeToken(1, 1), Put("a", "1")).ok());
  CHECK(q.WakeStats().wakes == 0);
  // Not deferring: the enqueue that finds it asleep carries itself; the
  // next ones find it woken.
  q.AnnounceSleepForTesting();
  REQUIRE(q.TryEnqueue(1, MakeToken(1, 2), Put("b", "2")).ok());
  REQUIRE(q.TryEnqueue(1, MakeToken(1, 3), Put("c", "3")).ok());
  REQUIRE(w.TakeWakes() == 1);
  WriteQueue::WakeCounts c = q.WakeStats();
  CHECK(c.wakes == 1);
  CHECK(c.enqueues == 1);
  CHECK(c.max_enqueues == 1);
  // Deferred: the flush's wake-up carries every enqueue since the last flush.
  q.AnnounceSleepForTesting();
  WriteQueue::DeferWakes(true);
  for (uint64_t i = 0; i < 5; ++i) REQUIRE(q.TryEnqueue(1, MakeToken(1, 10 + i), Put("d", "4")).ok());
  WriteQueue::FlushWakes();
  REQUIRE(w.TakeWakes() == 1);
  c = q.WakeStats();
  CHECK(c.wakes == 2);
  CHECK(c.enqueues == 6);
  CHECK(c.max_enqueues == 5);
  // A flush that finds the writer awake counts nothing, and the next
  // flush's count starts over.
  REQUIRE(q.TryEnqueue(1, MakeToken(1, 20), Put("e", "5")).ok());
  WriteQueue::FlushWakes();
  q.AnnounceSleepForTesting();
  REQUIRE(q.TryEnqueue(1, MakeToken(1, 21), Put("e", "5")).ok());
  REQUIRE(q.TryEnqueue(1, MakeToken(1, 22), Put("e", "5")).ok());
  WriteQueue::DeferWakes(false);
  REQUIRE(w.TakeWakes() == 1);
  c = q.WakeStats();
  CHECK(c.wakes == 3);
  CHECK(c.enqueues == 8);
  CHECK(c.max_enqueues == 5);
  CHECK(TakeAll(q).size() == 11);
}

TEST_CASE("a load the consumer keeps up with stays in the ring's first window", "[src][write_queue]") {
  const uint64_t ring = 1 << 20;
  TestQueue t(ring);
  const uint64_t window = t.queue->wrap_window_bytes();
  CHECK(window == ring / 16);
  const std::string value(200, 'v');
  uint64_t max_end = 0, bytes = 0, token = 0;
  // Bounded: 30,000 rounds of up to three entries, several laps' worth.
  for (int round = 0; round < 30000; ++round) {
    for (int i = 0; i <= round % 3; ++i) REQUIRE(t.queue->TryEnqueue(0, token++, Put("key", value)).ok());
    for (const QueueEntry& e : TakeAll(*t.queue)) {
      REQUIRE(e.request.stored == value);
      max_end = std::max(max_end, RingOffset(t, ring, e) + kEntryHeaderBytes + 3 + 10 + 200);
      bytes += 272;
    }
    t.queue->Release();
    REQUIRE(t.queue->DepthBytes() == 0);
  }
  CHECK(bytes > 4 * ring);  // the ring's bytes were passed through several times over
  CHECK(max_end <= window + 272);  // yet no entry started past the window
}

TEST_CASE("an entry wraps early exactly when it starts past the window, little is queued and it fits before head",
          "[src][write_queue]") {
  // Every 8-byte position of a 64 KiB ring, with nothing, half the window
  // and just over half of it queued, and entries that fit before head or not.
  const uint64_t ring = 64 << 10;
  const std::string storage(16 << 10, 'x');
  const uint64_t window = WriteQueue::WrapWindowBytes(ring);
  REQUIRE(window == 4 << 10);
  for (uint64_t queued : {uint64_t{0}, window / 2, window / 2 + 64}) {
    for (uint64_t bytes : {uint64_t{64}, uint64_t{1024}, uint64_t{3072}}) {
      for (uint64_t pos = queued + 64; pos < ring; pos += 8) {
        INFO("tail at " << pos << ", " << queued << " bytes queued, entry of " << bytes);
        TestQueue t(ring);
        // Bring head to pos - queued and tail to pos.
        const uint64_t released = FillTo(*t.queue, 0, pos - queued, storage);
        std::vector<QueueEntry> first;
        if (released > 0) REQUIRE(t.queue->Peek(&first, SIZE_MAX, UINT64_MAX) == released);
        const uint64_t kept = FillTo(*t.queue, pos - queued, pos, storage);
        t.queue->ReleaseThrough(pos - queued, released);
        REQUIRE(t.queue->DepthBytes() == queued);

        const uint64_t to_end = ring - pos;
        const uint64_t head_off = pos - queued;
        const bool early = to_end >= bytes && pos >= window && queued <= window / 2 && head_off >= bytes;
        const uint64_t pad = to_end < bytes || early ? to_end : 0;
        const bool fits = ring - queued >= pad + bytes;
        WriteRequest r = Sized(bytes, storage);
        r.key = "t";
        const engine::Status s = t.queue->TryEnqueue(0, 7, r);
        if (!fits) {
          REQUIRE(s.Is(engine::Code::kBusy));
          continue;
        }
        REQUIRE(s.ok());
        CHECK(t.queue->DepthEntries() == kept + 1);
        CHECK(t.queue->DepthBytes() == queued + bytes);  // the pad is not counted
        std::vector<QueueEntry> rest;
        REQUIRE(t.queue->Peek(&rest, SIZE_MAX, UINT64_MAX) == kept + 1);
        const QueueEntry& e = rest.back();
        CHECK(e.token == 7);
        CHECK(e.request.key == "t");
        CHECK(e.request.stored == r.stored);
        CHECK(RingOffset(t, ring, e) == (pad != 0 ? 0 : pos));
        t.queue->Release();
        CHECK(t.queue->DepthBytes() == 0);
        CHECK(t.queue->DepthEntries() == 0);
      }
    }
  }
}

TEST_CASE("after an early wrap producers see the room before head, and the whole ring once head passed the pad",
          "[src][write_queue]") {
  const uint64_t ring = 64 << 10;
  TestQueue t(ring);
  const std::string storage(8 << 10, 'x');
  const uint64_t head = 8 << 10;  // past the 4 KiB window
  const uint64_t n = FillTo(*t.queue, 0, head, storage);
  REQUIRE(TakeAll(*t.queue).size() == n);
  t.queue->Release();

  // The first entry wraps; then the 8 KiB before head's offset take 32 of 256 bytes.
  uint64_t accepted = 0;
  while (t.queue->TryEnqueue(0, accepted, Sized(256, storage)).ok()) ++accepted;
  CHECK(accepted == head / 256);
  CHECK(t.queue->DepthBytes() == head);
  std::vector<QueueEntry> batch;
  REQUIRE(t.queue->Peek(&batch, 16, UINT64_MAX) == 16);
  const uint64_t sixteen_end = t.queue->PeekPosition();
  REQUIRE(t.queue->Peek(&batch, SIZE_MAX, UINT64_MAX) == accepted - 16);
  CHECK(RingOffset(t, ring, batch.front()) == 0);
  // Taken, not released: still no room.
  CHECK(t.queue->TryEnqueue(0, 99, Sized(256, storage)).Is(engine::Code::kBusy));

  // Head past the pad, 16 entries (4 KiB) still queued: the rest of the ring.
  t.queue->ReleaseThrough(sixteen_end, 16);
  accepted = 0;
  while (t.queue->TryEnqueue(0, accepted, Sized(256, storage)).ok()) ++accepted;
  CHECK(accepted == (ring - 16 * 256) / 256);
  CHECK(t.queue->DepthBytes() == ring);
}

TEST_CASE("a batch with an early wrap's pad in it is not cut short by the pad's bytes", "[src][write_queue]") {
  const uint64_t ring = 64 << 10;
  TestQueue t(ring);
  const std::string storage(8 << 10, 'x');
  const uint64_t n = FillTo(*t.queue, 0, 8 << 10, storage);
  REQUIRE(TakeAll(*t.queue).size() == n);
  t.queue->Release();
  REQUIRE(t.queue->TryEnqueue(0, 1, Sized(256, storage)).ok());  // wraps: a 56 KiB pad before it
  REQUIRE(t.queue->TryEnqueue(0, 2, Sized(256, storage)).ok());
  std::vector<QueueEntry> batch;
  CHECK(t.queue->Peek(&batch, 100, 1024) == 2);
}

TEST_CASE("a producer killed at any step of an early wrap leaves the ring and its counts exact",
          "[src][write_queue][multiprocess]") {
  using Stop = WriteQueue::StopPoint;
  const uint64_t ring = 64 << 10;
  const std::string storage(8 << 10, 'x');
  for (Stop stop : {Stop::kBeforePublish, Stop::kAfterPublish}) {
    const bool published = stop == Stop::kAfterPublish;
    INFO("producer killed " << (published ? "after" : "before") << " publishing");
    TestQueue t(ring);
    const uint64_t n = FillTo(*t.queue, 0, 8 << 10, storage);
    REQUIRE(TakeAll(*t.queue).size() == n);
    t.queue->Release();
    DieAfter([&] {
      WriteQueue q(t.region.base);
      q.EnqueueForTesting(0, 2, Sized(256, storage), stop);
    });
    CHECK(t.queue->DepthEntries() == (published ? 1 : 0));
    CHECK(t.queue->DepthBytes() == (published ? 256 : 0));
    REQUIRE(t.queue->TryEnqueue(0, 3, Sized(512, storage)).ok());  // the next locker gets EOWNERDEAD
    CHECK(t.queue->DepthEntries() == (published ? 2 : 1));
    CHECK(t.queue->DepthBytes() == (published ? 768 : 512));
    auto batch = TakeAll(*t.queue);
    REQUIRE(batch.size() == (published ? 2 : 1));
    CHECK(batch.back().token == 3);
    CHECK(batch.back().request.stored.size() == 512 - kEntryHeaderBytes - 1);
    CHECK(RingOffset(t, ring, batch.front()) == 0);
    t.queue->Release();
    CHECK(t.queue->DepthEntries() == 0);
    CHECK(t.queue->DepthBytes() == 0);
  }
}

}  // namespace kingx
