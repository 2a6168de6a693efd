// The writer process's compaction hooks (src/writer/writer_compaction.h)
// against a real Writer over a shared mapping's index: what happens between
// two batches.
#include "src/writer/writer_compaction.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "engine/env.h"
#include "engine/writer.h"
#include "src/ipc/shm.h"
#include "src/kv/kv_backend.h"
#include "tests/src/support/test_util.h"

namespace kingx {
namespace {

size_t SegmentFiles(const std::string& dir) {
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().extension() == ".kxd") ++n;
  return n;
}

engine::WriteResult Put(engine::Writer& writer, const std::string& key, const std::string& value) {
  engine::WriteOp op;
  op.key = key;
  op.content_type = "text/plain";
  op.stored = value;
  op.raw_len = value.size();
  engine::WriteResult r;
  writer.Apply({&op, 1}, {&r, 1});
  return r;
}

// A real Writer over a shared mapping's index, in a scratch directory
// (segment_bytes 0: the engine's default).
struct WriterOverShm {
  test::TempDir dir;
  std::unique_ptr<SharedMemory> shm;
  std::unique_ptr<engine::Writer> writer;

  explicit WriterOverShm(uint64_t segment_bytes = 0) {
    auto created = SharedMemory::Create(test::SmallShmSizes(2, 64));
    REQUIRE(created.ok());
    shm = std::move(created).value();
    engine::Options o;
    o.compression_level = 0;
    o.take_lock = false;
    if (segment_bytes != 0) o.segment_bytes = segment_bytes;
    auto opened = engine::Writer::Open(engine::PosixEnv(), dir.path, o, shm->index());
    REQUIRE(opened.ok());
    writer = std::move(opened).value();
  }
};

double GaugeValue(SharedMemory& shm, const std::string& name) {
  for (const http::Gauge& g : SharedGauges(shm))
    if (g.name == name) return g.value;
  FAIL("no gauge " << name);
  return -1;
}

}  // namespace

TEST_CASE("the segment of a large value a batch replaced is deleted before the next batch, not a pass later",
          "[src][writer][compaction][regression]") {
  // One batch replacing a few large values made their segments dead at
  // once; they stayed until the compaction thread's next pass (a trigger or
  // the write stall's catch-up pass), and the data directory was over twice
  // the live data meanwhile.
  WriterOverShm f;
  engine::Writer* writer = f.writer.get();
  SharedMemory* shm = f.shm.get();
  const test::TempDir& dir = f.dir;
  // Six values of 1.5 MiB, the first three each in a segment of its own
  // (RotateActiveForShare); replacing one of these leaves
  // the dead fraction under what triggers a pass on its own. The first
  // segment also holds a put and its tombstone: the write cannot delete it
  // itself (engine/writer_emptied.cc deletes only one-record segments).
  REQUIRE(Put(*writer, "gone", "x").status.ok());
  engine::WriteOp del;
  del.type = engine::OpType::kDelete;
  del.key = "gone";
  engine::WriteResult deleted;
  writer->Apply({&del, 1}, {&deleted, 1});
  REQUIRE(deleted.status.ok());
  const std::string big(3 << 19, 'b');
  for (int i = 0; i < 6; ++i) REQUIRE(Put(*writer, "big" + std::to_string(i), big).status.ok());

  WriterHooks hooks = CompactionHooks(*shm);
  Config config;
  hooks.after_open(*writer, config);
  const size_t files = SegmentFiles(dir.path);
  REQUIRE(Put(*writer, "big0", "small now").status.ok());
  REQUIRE(SegmentFiles(dir.path) == files);  // the write alone deletes nothing
  INFO("emptied " << writer->emptied_segments());
  hooks.each_iteration(*writer, false);
  CHECK(SegmentFiles(dir.path) == files - 1);
  CHECK(shm->index().counters().dead_bytes.load() < big.size());
  hooks.before_close(*writer);
}

TEST_CASE("a segment a crash left with nothing live is deleted before the first batch after the open",
          "[src][writer][compaction][regression]") {
  // A crash between a durable write and the deletion of the large value's
  // segment it emptied left that segment, dead, to the next open, where
  // nothing deleted it before a compaction pass (a trigger, a write stall).
  WriterOverShm f;
  const std::string big(3 << 19, 'b');
  REQUIRE(Put(*f.writer, "big", big).status.ok());
  REQUIRE(Put(*f.writer, "small", "s").status.ok());  // seals big's segment
  // A cut's pin stands in for the crash: the write cannot delete the segment.
  auto cut = f.writer->PinSegments();
  REQUIRE(cut.ok());
  REQUIRE(Put(*f.writer, "big", "small now").status.ok());
  f.writer.reset();  // closed with the dead segment on disk
  engine::Options o;
  o.compression_level = 0;
  o.take_lock = false;
  auto opened = engine::Writer::Open(engine::PosixEnv(), f.dir.path, o, f.shm->index());
  REQUIRE(opened.ok());
  f.writer = std::move(opened).value();
  const size_t files = SegmentFiles(f.dir.path);
  WriterHooks hooks = CompactionHooks(*f.shm);
  Config config;
  hooks.after_open(*f.writer, config);
  hooks.each_iteration(*f.writer, false);
  CHECK(SegmentFiles(f.dir.path) == files - 1);
  CHECK(f.shm->index().counters().dead_bytes.load() < big.size());
  hooks.before_close(*f.writer);
}

TEST_CASE("the compaction backlog /metrics reports is never more than the dead bytes reported beside it",
          "[src][writer][compaction][regression]") {
  // The backlog was a gauge the writer loop set at its turn: a pass the
  // compaction thread finished after that turn (the loop idle) left it
  // above the dead bytes the same /metrics page showed.
  WriterOverShm f(64 << 10);
  engine::Writer* writer = f.writer.get();
  SharedMemory* shm = f.shm.get();
  const std::string value(1000, 'v');
  for (int round = 0; round < 2; ++round)
    for (int i = 0; i < 300; ++i) REQUIRE(Put(*writer, "k" + std::to_string(i), value).status.ok());
  WriterHooks hooks = CompactionHooks(*shm);
  Config config;
  hooks.after_open(*writer, config);
  const uint64_t dead_before = shm->index().counters().dead_bytes.load();
  REQUIRE(dead_before >= 200'000);
  // An admin request: the thread's pass starts, the loop's turn ends now.
  hooks.each_iteration(*writer, true);
  for (int i = 0; i < 2000 && shm->index().counters().dead_bytes.load() >= dead_before; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const double dead = GaugeValue(*shm, "kingx_engine_dead_bytes");
  REQUIRE(dead < static_cast<double>(dead_before));  // the pass reclaimed, no loop turn since
  const double backlog = GaugeValue(*shm, "kingx_compaction_backlog_bytes");
  CHECK(backlog >= 0);
  CHECK(backlog <= dead);
  hooks.before_close(*writer);
}

}  // namespace kingx
