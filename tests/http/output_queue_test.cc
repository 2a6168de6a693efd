// OutputQueue: gathered bytes never move while more output is appended, short
// writes resume where they stopped, holders are released once their bytes
// are sent, and an idle queue gives its memory back.
#include "http/output_queue.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace kingx::http {
namespace {

// What Gather returns, as (pointer, length) pairs and as one string.
struct Gathered {
  std::vector<iovec> iov;
  std::string bytes;
};

Gathered GatherAll(const OutputQueue& q) {
  Gathered g;
  g.iov.resize(1024);
  g.iov.resize(q.Gather(g.iov.data(), g.iov.size()));
  for (const iovec& v : g.iov) g.bytes.append(static_cast<const char*>(v.iov_base), v.iov_len);
  return g;
}

TEST_CASE("gathered bytes stay in place and unchanged while more output is appended", "[http][output_queue]") {
  OutputQueue q;
  q.Copy("HTTP/1.1 200 OK\r\n\r\n");
  const Gathered first = GatherAll(q);
  const std::string before = first.bytes;
  // Enough appends to fill several blocks, copied and referenced.
  auto body = std::make_shared<const std::string>(5000, 'b');
  for (int i = 0; i < 200; ++i) {
    q.Copy("header line " + std::to_string(i) + "\r\n");
    if (i % 50 == 0) q.Reference(*body, body);
  }
  q.Copy(std::string(3 * OutputQueue::kBlockBytes, 'x'));  // larger than a block
  std::string seen;
  for (const iovec& v : first.iov) seen.append(static_cast<const char*>(v.iov_base), v.iov_len);
  CHECK(seen == before);
  // Nothing moved: the first chunk is still where it was.
  const Gathered now = GatherAll(q);
  REQUIRE(!now.iov.empty());
  CHECK(now.iov[0].iov_base == first.iov[0].iov_base);
}

TEST_CASE("bytes written in place after Reserve are queued as Copy queues them", "[http][output_queue]") {
  OutputQueue q;
  q.Copy("first|");
  const Gathered first = GatherAll(q);
  // Written in place, fewer bytes than reserved: contiguous with the copy
  // before it, so one chunk.
  char* at = q.Reserve(100);
  std::memcpy(at, "second|", 7);
  q.Commit(7);
  q.Copy("third");
  CHECK(q.size() == 18);
  Gathered g = GatherAll(q);
  CHECK(g.bytes == "first|second|third");
  CHECK(g.iov.size() == 1);
  // A reservation the block has no room for starts a new block; what was
  // queued stays where it was.
  at = q.Reserve(OutputQueue::kBlockBytes);
  std::memset(at, 'z', 10);
  q.Commit(10);
  g = GatherAll(q);
  CHECK(g.bytes == "first|second|third" + std::string(10, 'z'));
  REQUIRE(g.iov.size() == 2);
  CHECK(g.iov[0].iov_base == first.iov[0].iov_base);
  // Nothing committed: nothing queued.
  q.Reserve(5);
  q.Commit(0);
  CHECK(q.size() == 28);
  q.Consume(28);
  CHECK(q.empty());
  q.ReleaseIdle();
  CHECK(!q.HoldsIdleMemory());
}

TEST_CASE("output is gathered in order and a short write resumes mid-chunk", "[http][output_queue]") {
  OutputQueue q;
  auto body = std::make_shared<const std::string>("0123456789");
  q.Copy("head:");
  q.Reference(*body, body);
  q.Copy(":tail");
  CHECK(q.size() == 20);
  CHECK(GatherAll(q).bytes == "head:0123456789:tail");
  q.Consume(3);
  CHECK(GatherAll(q).bytes == "d:0123456789:tail");
  q.Consume(7);
  CHECK(GatherAll(q).bytes == "56789:tail");
  q.Consume(10);
  CHECK(q.empty());
  CHECK(GatherAll(q).iov.empty());
}

TEST_CASE("Gather fills at most max_iov entries", "[http][output_queue]") {
  OutputQueue q;
  std::vector<std::shared_ptr<const std::string>> bodies;
  for (int i = 0; i < 10; ++i) {
    bodies.push_back(std::make_shared<const std::string>(1, char('a' + i)));
    q.Reference(*bodies.back(), bodies.back());
  }
  iovec iov[4];
  CHECK(q.Gather(iov, 4) == 4);
  CHECK(static_cast<const char*>(iov[3].iov_base)[0] == 'd');
}

TEST_CASE("consecutive copies share one chunk", "[http][output_queue]") {
  OutputQueue q;
  q.Copy("abc");
  q.Copy("def");
  const Gathered g = GatherAll(q);
  CHECK(g.iov.size() == 1);
  CHECK(g.bytes == "abcdef");
}

TEST_CASE("a referenced body is released as soon as it is sent", "[http][output_queue]") {
  OutputQueue q;
  auto body = std::make_shared<const std::string>("value");
  std::weak_ptr<const std::string> watch = body;
  q.Copy("head");
  q.Reference(*body, body);
  body.reset();  // the queue's reference is the only one left
  q.Copy("next");
  q.Consume(4 + 4);  // the head and most of the body
  CHECK_FALSE(watch.expired());
  q.Consume(1);  // the body's last byte
  CHECK(watch.expired());
  CHECK(GatherAll(q).bytes == "next");
}

TEST_CASE("empty pieces are not queued", "[http][output_queue]") {
  OutputQueue q;
  q.Copy("");
  q.Reference("", nullptr);
  CHECK(q.empty());
  CHECK(GatherAll(q).iov.empty());
}

TEST_CASE("an idle queue releases its block; a busy one keeps it", "[http][output_queue]") {
  OutputQueue q;
  CHECK_FALSE(q.HoldsIdleMemory());
  CHECK(q.HeapBytes() == 0);
  q.Copy("pending");
  CHECK(q.HoldsIdleMemory());
  q.ReleaseIdle();  // output pending: nothing may be freed
  CHECK(GatherAll(q).bytes == "pending");
  q.Consume(7);
  q.ReleaseIdle();
  CHECK_FALSE(q.HoldsIdleMemory());
  CHECK(q.HeapBytes() == 0);  // block and chunk list went to the thread's spares
  q.Copy("again");  // usable after a release
  CHECK(GatherAll(q).bytes == "again");
}

TEST_CASE("a released block serves the next queue on the thread; the spares stay bounded", "[http][output_queue]") {
  std::vector<OutputQueue> queues(OutputQueue::kSparesPerThread + 8);
  for (auto& q : queues) q.Copy("x");  // each takes a block: spares or new
  CHECK(OutputQueue::SpareBlocks() == 0);
  for (auto& q : queues) {
    q.Consume(1);
    q.ReleaseIdle();
  }
  CHECK(OutputQueue::SpareBlocks() == OutputQueue::kSparesPerThread);  // the rest were freed
  OutputQueue next;
  next.Copy("y");
  CHECK(OutputQueue::SpareBlocks() == OutputQueue::kSparesPerThread - 1);
  // A piece larger than a block gets a block of its own size, never kept as a spare.
  OutputQueue big;
  big.Copy(std::string(OutputQueue::kBlockBytes + 1, 'b'));
  big.Consume(OutputQueue::kBlockBytes + 1);
  big.ReleaseIdle();
  CHECK(OutputQueue::SpareBlocks() == OutputQueue::kSparesPerThread - 1);
  CHECK(big.HeapBytes() == 0);
}

TEST_CASE("an idle queue is two words: what a busy one needs lives apart and goes back whole",
          "[http][output_queue][memory]") {
  // Every idle keep-alive connection holds one queue.
  STATIC_REQUIRE(sizeof(OutputQueue) <= 2 * sizeof(void*));
  OutputQueue q;
  q.Copy("head");
  CHECK(q.HeapBytes() >= OutputQueue::kBlockBytes);
  q.Consume(4);
  const size_t spares = OutputQueue::SpareBlocks();
  q.ReleaseIdle();
  CHECK(q.HeapBytes() == 0);
  CHECK(OutputQueue::SpareBlocks() == std::min(spares + 1, OutputQueue::kSparesPerThread));
}

TEST_CASE("a piece larger than a block does not take the place of the block being filled",
          "[http][output_queue]") {
  OutputQueue q;
  q.Copy("HTTP/1.1 200 OK\r\n");
  q.Copy(std::string(OutputQueue::kBlockBytes + 1, 'b'));
  q.Copy("next head");
  const Gathered g = GatherAll(q);
  REQUIRE(g.iov.size() == 3);
  // The small pieces share one block: the second follows the first.
  CHECK(static_cast<const char*>(g.iov[2].iov_base) ==
        static_cast<const char*>(g.iov[0].iov_base) + g.iov[0].iov_len);
  CHECK(g.bytes == "HTTP/1.1 200 OK\r\n" + std::string(OutputQueue::kBlockBytes + 1, 'b') + "next head");
}

TEST_CASE("a block is reused from its start once everything in it is sent", "[http][output_queue]") {
  OutputQueue q;
  q.Copy("first");
  const void* where = GatherAll(q).iov[0].iov_base;
  q.Consume(5);
  q.Copy("second");
  CHECK(GatherAll(q).iov[0].iov_base == where);
}

TEST_CASE("a queue that always lags one chunk behind keeps its chunk list bounded", "[http][output_queue]") {
  OutputQueue q;
  auto body = std::make_shared<const std::string>("x");
  q.Reference(*body, body);
  for (int i = 0; i < 10000; ++i) {
    q.Reference(*body, body);
    q.Consume(1);  // never empty: the list is compacted, not cleared
  }
  CHECK(q.size() == 1);
  CHECK(q.HeapBytes() < 16 * 1024);
}

}  // namespace
}  // namespace kingx::http
