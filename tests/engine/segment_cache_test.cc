// SegmentCache: the bound on descriptors and mappings, mapping sizes, file
// identity when an id names another file, and every read-path fault of the
// file seam (open/map, stat, read past the end, a missing file), each leaving
// the cache usable once the fault is gone; ReadHead against ReadRecord.
#include "engine/segment_cache.h"

#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <future>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "engine/mapping_guard.h"
#include "engine/record.h"
#include "tests/engine/support/fault_env.h"
#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;
namespace fs = std::filesystem;

namespace {

// A segment file (header, then one record) of `id` in dir; returns the record's key.
std::string MakeSegment(const std::string& dir, uint32_t id, size_t value_bytes, uint32_t flags = 0) {
  char header[kSegmentHeaderBytes];
  SegmentHeader h;
  h.flags = flags;
  h.seed = 7;
  h.segment_id = id;
  h.seq_floor = id;
  EncodeSegmentHeader(h, header);
  std::string bytes(header, sizeof header);
  const std::string key = "key-of-" + std::to_string(id);
  EncodeRecord(id, RecordType::kPut, Codec::kRaw, key, "", std::string(value_bytes, static_cast<char>('a' + id % 26)),
               value_bytes, &bytes);
  WriteFileBytes(dir + "/" + SegmentFileName(id), bytes);
  return key;
}

Location RecordOf(uint32_t id) { return MakeLocation(id, kSegmentHeaderBytes); }

}  // namespace

TEST_CASE("the cache keeps at most max_open mappings and reads stay exact past the bound",
          "[engine][segment_cache]") {
  TempDir dir;
  FaultInjectionEnv env;
  constexpr uint32_t kSegments = 200;
  for (uint32_t id = 1; id <= kSegments; ++id) MakeSegment(dir.path(), id, 100 + id);
  SegmentCache cache(env, dir.path(), 1 << 20, /*max_open=*/8);
  REQUIRE(cache.max_open() == 8);
  RecordLimits limits;
  for (int round = 0; round < 3; ++round) {
    for (uint32_t id = 1; id <= kSegments; ++id) {
      auto r = cache.ReadRecord(RecordOf(id), limits);
      REQUIRE(r.ok());
      REQUIRE(r->key == "key-of-" + std::to_string(id));
      REQUIRE(r->header.stored_len == 100 + id);
      REQUIRE(cache.cached() <= cache.max_open());
    }
  }
  CHECK(cache.evictions() >= 3 * kSegments - 8);
  // Only what the cache holds is open (no RecordRef is kept alive here).
  CHECK(env.LiveMappings() <= cache.max_open());
  // A record held by a caller stays readable after its mapping left the cache.
  auto held = cache.ReadRecord(RecordOf(1), limits);
  REQUIRE(held.ok());
  for (uint32_t id = 2; id <= 40; ++id) REQUIRE(cache.ReadRecord(RecordOf(id), limits).ok());
  CHECK(held->key == "key-of-1");
  CHECK(VerifyRecordBody(held->record, held->header).ok());
  held = RecordRef{};
  CHECK(env.LiveMappings() <= cache.max_open());
}

TEST_CASE("the bound follows the process's descriptor limit", "[engine][segment_cache]") {
  TempDir dir;
  FaultInjectionEnv env;
  env.SetOpenFileLimit(64);
  SegmentCache a(env, dir.path(), 1 << 20, 1024);
  CHECK(a.max_open() == 16);  // a quarter of 64
  env.SetOpenFileLimit(8);
  SegmentCache b(env, dir.path(), 1 << 20, 1024);
  CHECK(b.max_open() == SegmentCache::kMinOpen);
  env.SetOpenFileLimit(100000);
  SegmentCache c(env, dir.path(), 1 << 20, 300);
  CHECK(c.max_open() == 300);
}

TEST_CASE("sealed segments are mapped at their size; a growing one with room, remapped when it outgrows it",
          "[engine][segment_cache]") {
  TempDir dir;
  FaultInjectionEnv env;
  const uint64_t segment_bytes = 64 << 20;
  // A full segment (at least segment_bytes) and a large value's segment: their size.
  MakeSegment(dir.path(), 1, segment_bytes);
  MakeSegment(dir.path(), 2, 3 << 20, kSegmentFlagSealedAtBirth);
  SegmentCache cache(env, dir.path(), segment_bytes, 16);
  RecordLimits limits;
  limits.max_value_bytes = 128 << 20;
  REQUIRE(cache.ReadRecord(RecordOf(1), limits).ok());
  CHECK(env.LastMappedBytes(dir.File(SegmentFileName(1))) == fs::file_size(dir.File(SegmentFileName(1))));
  REQUIRE(cache.ReadRecord(RecordOf(2), limits).ok());
  const uint64_t two = fs::file_size(dir.File(SegmentFileName(2)));
  CHECK(env.LastMappedBytes(dir.File(SegmentFileName(2))) >= two);
  CHECK(env.LastMappedBytes(dir.File(SegmentFileName(2))) <= two + std::max<uint64_t>(two / 4, 1 << 20));
  // A segment that grows (the active one): a record appended past the mapping is still read.
  const std::string key = MakeSegment(dir.path(), 3, 10);
  REQUIRE(cache.ReadRecord(RecordOf(3), limits).ok());
  const uint64_t first_map = env.LastMappedBytes(dir.File(SegmentFileName(3)));
  std::string bytes = ReadFileBytes(dir.File(SegmentFileName(3)));
  const uint64_t second = bytes.size();
  EncodeRecord(99, RecordType::kPut, Codec::kRaw, "later", "", std::string(first_map, 'z'), first_map, &bytes);
  WriteFileBytes(dir.File(SegmentFileName(3)), bytes);
  auto later = cache.ReadRecord(MakeLocation(3, second), limits);
  REQUIRE(later.ok());
  CHECK(later->key == "later");
  CHECK(VerifyRecordBody(later->record, later->header).ok());
  CHECK(env.LastMappedBytes(dir.File(SegmentFileName(3))) > first_map);
}

TEST_CASE("a segment id that names another file is noticed by Revalidate", "[engine][segment_cache]") {
  TempDir dir;
  FaultInjectionEnv env;
  MakeSegment(dir.path(), 5, 100);
  SegmentCache cache(env, dir.path(), 1 << 20, 16);
  RecordLimits limits;
  auto old = cache.ReadRecord(RecordOf(5), limits);
  REQUIRE(old.ok());
  REQUIRE(old->header.stored_len == 100);
  // Deleted and created again under the same id (ids are reused once free).
  fs::remove(dir.File(SegmentFileName(5)));
  MakeSegment(dir.path(), 5, 333);
  // Until revalidated, the cached mapping is the old file's (the contract:
  // readers revalidate when the segment epoch moves).
  CHECK(cache.ReadRecord(RecordOf(5), limits)->header.stored_len == 100);
  cache.Revalidate();
  auto fresh = cache.ReadRecord(RecordOf(5), limits);
  REQUIRE(fresh.ok());
  CHECK(fresh->header.stored_len == 333);
  // The old record a caller held is still the old bytes.
  CHECK(old->header.stored_len == 100);
  CHECK(VerifyRecordBody(old->record, old->header).ok());
  // A deleted file is forgotten by Revalidate too.
  fs::remove(dir.File(SegmentFileName(5)));
  cache.Revalidate();
  CHECK(cache.ReadRecord(RecordOf(5), limits).status().Is(Code::kNotFound));
}

TEST_CASE("read-path faults come back as errors, are never taken for absence, and leave the cache usable",
          "[engine][segment_cache][faults]") {
  TempDir dir;
  FaultInjectionEnv env;
  for (uint32_t id = 1; id <= 3; ++id) MakeSegment(dir.path(), id, 200);
  RecordLimits limits;
  struct Case {
    FaultOp op;
    Code code;
    Code expect;
  };
  const Case c = GENERATE(Case{FaultOp::kMap, Code::kBusy, Code::kBusy},        // EMFILE / ENOMEM on mmap
                          Case{FaultOp::kMap, Code::kIOError, Code::kIOError},  // EIO on open
                          Case{FaultOp::kStat, Code::kIOError, Code::kIOError},  // fstat fails
                          Case{FaultOp::kStat, Code::kBusy, Code::kBusy});
  INFO("op " << static_cast<int>(c.op) << " code " << static_cast<int>(c.code));
  SegmentCache cache(env, dir.path(), 1 << 20, 16);
  env.FailNth(c.op, 1, c.code, /*forever=*/true, SegmentFileName(2));
  auto bad = cache.ReadRecord(RecordOf(2), limits);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == c.expect);
  CHECK(env.FaultsFired() >= 1);
  // Other segments are unaffected; the failing one works once the fault is gone.
  REQUIRE(cache.ReadRecord(RecordOf(1), limits).ok());
  env.ClearFaults();
  auto good = cache.ReadRecord(RecordOf(2), limits);
  REQUIRE(good.ok());
  CHECK(good->key == "key-of-2");
}

TEST_CASE("a stat fault while a record lies past the known size fails the read, not the process",
          "[engine][segment_cache][faults]") {
  TempDir dir;
  FaultInjectionEnv env;
  MakeSegment(dir.path(), 1, 10);
  SegmentCache cache(env, dir.path(), 1 << 20, 16);
  RecordLimits limits;
  REQUIRE(cache.ReadRecord(RecordOf(1), limits).ok());
  std::string bytes = ReadFileBytes(dir.File(SegmentFileName(1)));
  const uint64_t at = bytes.size();
  EncodeRecord(2, RecordType::kPut, Codec::kRaw, "second", "", "v", 1, &bytes);
  WriteFileBytes(dir.File(SegmentFileName(1)), bytes);
  env.FailNth(FaultOp::kStat, 1, Code::kIOError);
  CHECK(cache.ReadRecord(MakeLocation(1, at), limits).status().Is(Code::kIOError));
  auto ok = cache.ReadRecord(MakeLocation(1, at), limits);
  REQUIRE(ok.ok());
  CHECK(ok->key == "second");
}

TEST_CASE("a read past the end, a bad header and a missing segment have their own errors",
          "[engine][segment_cache][faults]") {
  TempDir dir;
  FaultInjectionEnv env;
  MakeSegment(dir.path(), 1, 10);
  SegmentCache cache(env, dir.path(), 1 << 20, 16);
  RecordLimits limits;
  const uint64_t size = fs::file_size(dir.File(SegmentFileName(1)));
  CHECK(cache.Read(1, size - 4, 8).status().Is(Code::kCorruption));
  CHECK(cache.Read(1, ~uint64_t{0} - 2, 8).status().Is(Code::kCorruption));  // offset + n overflows
  CHECK(cache.ReadRecord(MakeLocation(1, 1), limits).status().Is(Code::kCorruption));  // not a record start
  CHECK(cache.ReadRecord(RecordOf(9), limits).status().Is(Code::kNotFound));
  REQUIRE(cache.ReadRecord(RecordOf(1), limits).ok());
}

TEST_CASE("Revalidate drops a mapping whose file cannot be checked", "[engine][segment_cache][faults]") {
  TempDir dir;
  FaultInjectionEnv env;
  MakeSegment(dir.path(), 1, 10);
  SegmentCache cache(env, dir.path(), 1 << 20, 16);
  RecordLimits limits;
  REQUIRE(cache.ReadRecord(RecordOf(1), limits).ok());
  REQUIRE(cache.cached() == 1);
  env.FailNth(FaultOp::kStat, 1, Code::kIOError);
  cache.Revalidate();
  CHECK(cache.cached() == 0);  // cannot tell it is the same file: mapped again on the next read
  REQUIRE(cache.ReadRecord(RecordOf(1), limits).ok());
}

TEST_CASE("a prefetch maps nothing, opens nothing and ignores locations past the end", "[engine][segment_cache]") {
  TempDir dir;
  FaultInjectionEnv env;
  MakeSegment(dir.path(), 1, 100);
  SegmentCache cache(env, dir.path(), 1 << 20, /*max_open=*/8);
  // Not mapped yet: nothing happens (no open, no mapping).
  cache.Prefetch(RecordOf(1), 256);
  cache.Prefetch(MakeLocation(9, kSegmentHeaderBytes), 256);  // no such segment
  CHECK(cache.cached() == 0);
  CHECK(env.LiveMappings() == 0);
  RecordLimits limits;
  REQUIRE(cache.ReadRecord(RecordOf(1), limits).ok());
  REQUIRE(cache.cached() == 1);
  // Mapped: within, across and past the known end of the file.
  cache.Prefetch(RecordOf(1), 256);
  cache.Prefetch(RecordOf(1), 1 << 30);
  cache.Prefetch(MakeLocation(1, 1 << 19), 256);
  CHECK(cache.cached() == 1);
  CHECK(env.LiveMappings() == 1);
  auto r = cache.ReadRecord(RecordOf(1), limits);
  REQUIRE(r.ok());
  CHECK(r->key == "key-of-1");
}

TEST_CASE("ReadHead answers what ReadRecord and KeyIs answer, a page fault included, with a hold of the lock or "
          "without",
          "[engine][segment_cache][faults]") {
  // With a hold, the calls that map a segment (the exclusive lock) and the
  // fault's report (whose reporter here takes the exclusive lock too) come
  // after the hold let the shared lock go (a hold kept would hang them until
  // the suite's timeout).
  const bool with_hold = GENERATE(false, true);
  INFO("hold " << with_hold);
  TempDir dir;
  FaultInjectionEnv env;
  MakeSegment(dir.path(), 1, 10);
  MakeSegment(dir.path(), 2, 10);
  SegmentCache cache(env, dir.path(), 1 << 20, 16);
  std::vector<uint32_t> reported;
  cache.SetFaultReporter([&](uint32_t id) {
    reported.push_back(id);
    cache.Forget(99);  // the exclusive lock: the reporter runs outside the shared one
  });
  SegmentCache::HeadHold hold(cache);
  SegmentCache::HeadHold* const held = with_hold ? &hold : nullptr;
  RecordLimits limits;
  auto full = cache.ReadRecord(RecordOf(1), limits);  // segment 1 mapped: the one guarded read
  REQUIRE(full.ok());
  RecordHeader h;
  bool same = false;
  // Its key, another of the same length, a prefix of it, a longer one.
  REQUIRE(cache.ReadHead(RecordOf(1), "key-of-1", limits, &h, &same, held).ok());
  CHECK(same);
  CHECK(h.seq == full->header.seq);
  CHECK(h.total_bytes() == full->header.total_bytes());
  CHECK(h.type == RecordType::kPut);
  for (std::string_view other : {"key-of-9", "key-of-", "key-of-11"}) {
    INFO(other);
    REQUIRE(cache.ReadHead(RecordOf(1), other, limits, &h, &same, held).ok());
    CHECK_FALSE(same);
    CHECK(h.seq == full->header.seq);
  }
  // Segment 2 is not mapped yet: mapped on the way.
  REQUIRE(cache.ReadHead(RecordOf(2), "key-of-2", limits, &h, &same, held).ok());
  CHECK(same);
  // A record appended past the size known when it was mapped.
  std::string bytes = ReadFileBytes(dir.File(SegmentFileName(1)));
  const uint64_t at = bytes.size();
  EncodeRecord(5, RecordType::kDelete, Codec::kRaw, "second", "", "", 0, &bytes);
  WriteFileBytes(dir.File(SegmentFileName(1)), bytes);
  REQUIRE(cache.ReadHead(MakeLocation(1, at), "second", limits, &h, &same, held).ok());
  CHECK(same);
  CHECK(h.type == RecordType::kDelete);
  CHECK(h.seq == 5);
  // Not a record start, a segment that does not exist.
  CHECK(cache.ReadHead(MakeLocation(1, 1), "key-of-1", limits, &h, &same, held).Is(Code::kCorruption));
  CHECK(cache.ReadHead(RecordOf(9), "key-of-9", limits, &h, &same, held).Is(Code::kNotFound));
  // The file cut under its mapping: the guarded read faults once, the
  // mapping is marked and reported, and is not touched again.
  REQUIRE(::truncate(dir.File(SegmentFileName(2)).c_str(), 0) == 0);
  const uint64_t faults = GuardedFaults();
  CHECK(cache.ReadHead(RecordOf(2), "key-of-2", limits, &h, &same, held).Is(Code::kIOError));
  CHECK(GuardedFaults() == faults + 1);
  CHECK(cache.ReadHead(RecordOf(2), "key-of-2", limits, &h, &same, held).Is(Code::kIOError));
  CHECK(GuardedFaults() == faults + 1);
  CHECK(reported == std::vector<uint32_t>{2});
  // Other segments are unaffected.
  REQUIRE(cache.ReadHead(RecordOf(1), "key-of-1", limits, &h, &same, held).ok());
  CHECK(same);
}

TEST_CASE("a hold of the segment cache's lock keeps it from one ReadHead to the next until released",
          "[engine][segment_cache]") {
  TempDir dir;
  FaultInjectionEnv env;
  MakeSegment(dir.path(), 1, 10);
  MakeSegment(dir.path(), 2, 10);
  SegmentCache cache(env, dir.path(), 1 << 20, 16);
  RecordLimits limits;
  REQUIRE(cache.ReadRecord(RecordOf(1), limits).ok());  // mapped
  RecordHeader h;
  bool same = false;
  SegmentCache::HeadHold hold(cache);
  REQUIRE(cache.ReadHead(RecordOf(1), "key-of-1", limits, &h, &same, &hold).ok());
  CHECK(same);
  // Forgetting a segment takes the exclusive lock: it waits for the hold.
  std::promise<void> forgotten;
  std::future<void> done = forgotten.get_future();
  std::thread forget([&] {
    cache.Forget(1);
    forgotten.set_value();
  });
  CHECK(done.wait_for(std::chrono::milliseconds(100)) == std::future_status::timeout);
  // Another read under the same hold goes on meanwhile.
  REQUIRE(cache.ReadHead(RecordOf(1), "key-of-1", limits, &h, &same, &hold).ok());
  hold.Release();
  CHECK(done.wait_for(std::chrono::seconds(60)) == std::future_status::ready);
  forget.join();
  // Not mapped any more: the general way maps it again, under no hold.
  REQUIRE(cache.ReadHead(RecordOf(1), "key-of-1", limits, &h, &same, &hold).ok());
  CHECK(same);
}
