// Segment ids never run out (they are reused once free, round robin), and a
// process never holds more descriptors and mappings than its bound, however
// many segments the database has.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <set>

#include "engine/compaction.h"
#include "engine/location.h"
#include "engine/record.h"
#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;
namespace fs = std::filesystem;

namespace {

// An empty segment sealed at birth with `id`, holding this database's seed.
void PlantEmptySegment(const std::string& dir, uint32_t id) {
  const std::string any = ReadFileBytes(SegmentFiles(dir).front());
  SegmentHeader seed_source;
  REQUIRE(DecodeSegmentHeader(any.data(), any.size(), &seed_source).ok());
  SegmentHeader h;
  h.flags = kSegmentFlagSealedAtBirth;
  h.seed = seed_source.seed;
  h.segment_id = id;
  h.seq_floor = 1;
  char bytes[kSegmentHeaderBytes];
  EncodeSegmentHeader(h, bytes);
  WriteFileBytes(dir + "/" + SegmentFileName(id), std::string(bytes, sizeof bytes));
}

std::set<uint32_t> SegmentIds(const std::string& dir) {
  std::set<uint32_t> ids;
  for (const auto& path : SegmentFiles(dir)) {
    uint32_t id = 0;
    REQUIRE(ParseSegmentFileName(fs::path(path).filename().string(), &id));
    ids.insert(id);
  }
  return ids;
}

}  // namespace

TEST_CASE("a database near the last segment id keeps writing, compacting and reopening past it",
          "[engine][segment_ids][regression]") {
  // Regression: ids were never reused, so after 2^24 - 1 segments (rotations,
  // large values, compaction outputs) the database could not even be opened.
  TempDir dir;
  Options o;
  o.segment_bytes = 4096;
  o.compression_level = 0;
  o.sync = SyncMode::kNone;
  std::map<std::string, std::string> model;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  for (int i = 0; i < 50; ++i) {
    const std::string k = "k" + std::to_string(i);
    model[k] = MakeValue(k, 0, 200, false);
    REQUIRE(db.Put(k, model[k]).status.ok());
  }
  db.Close();
  // Ids are given after the highest on disk: start right below the limit.
  PlantEmptySegment(dir.path(), static_cast<uint32_t>(kMaxSegmentId) - 2);
  REQUIRE(db.Open().ok());
  CompactionOptions co;
  co.rate_bytes_per_sec = 0;
  co.pick_all = true;
  bool wrapped = false;
  for (int round = 1; round <= 12; ++round) {
    for (int i = 0; i < 50; ++i) {
      const std::string k = "k" + std::to_string(i);
      model[k] = MakeValue(k, static_cast<uint64_t>(round), 200 + (i * round) % 300, false);
      REQUIRE(db.Put(k, model[k]).status.ok());
      // Every read goes through the reader's cache while ids are reused under it.
      if (i % 7 == 0)
        for (const auto& [mk, mv] : model) REQUIRE(db.Get(mk).value() == mv);
    }
    Compactor c(db.writer(), co);
    PassReport r;
    REQUIRE(c.RunOnce(&r).ok());
    const std::set<uint32_t> ids = SegmentIds(dir.path());
    wrapped |= ids.count(static_cast<uint32_t>(kMaxSegmentId)) == 0 && *ids.begin() < 100 &&
               *ids.rbegin() < kMaxSegmentId - 100;
    for (const auto& [k, v] : model) REQUIRE(db.Get(k).value() == v);
    if (round % 4 == 0) {
      REQUIRE(db.Open().ok());
      for (const auto& [k, v] : model) REQUIRE(db.Get(k).value() == v);
    }
  }
  // The ids went past the limit and came back to small ones, freed by compaction.
  CHECK(wrapped);
  CHECK(db.writer().Stats().corruptions == 0);
}

TEST_CASE("with ulimit -n 64, a database of thousands of segments opens, reads and writes",
          "[engine][segment_cache][regression]") {
  // Regression: every segment kept a descriptor and a mapping for ever in the
  // writer and every reader, so past the descriptor limit (or
  // vm.max_map_count) the writer could not open the database at all.
  TempDir dir;
  Options o;
  o.segment_bytes = 4096;
  o.compression_level = 0;
  o.sync = SyncMode::kNone;
  constexpr int kKeys = 30000;  // ~20 records a 4 KiB segment: ~1,500 segments
  {
    TestDb db(PosixEnv(), dir.path(), o);
    REQUIRE(db.Open().ok());
    for (int i = 0; i < kKeys; ++i) {
      const std::string k = "k" + std::to_string(i);
      REQUIRE(db.Put(k, MakeValue(k, 1, 150, false)).status.ok());
    }
  }
  const size_t segments = SegmentFiles(dir.path()).size();
  REQUIRE(segments > 1000);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    struct rlimit rl {64, 64};
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) _exit(10);
    TestDb db(PosixEnv(), dir.path(), o);
    if (!db.Open().ok()) _exit(11);
    for (int i = 0; i < kKeys; i += 3) {
      const std::string k = "k" + std::to_string(i);
      auto v = db.Get(k);
      uint64_t version = 0;
      if (!v.ok() || !CheckValue(k, v.value(), &version) || version != 1) _exit(12);
    }
    for (int i = 0; i < kKeys; i += 5) {
      const std::string k = "k" + std::to_string(i);
      if (!db.Put(k, MakeValue(k, 2, 150, false)).status.ok()) _exit(13);
    }
    CompactionOptions co;
    co.rate_bytes_per_sec = 0;
    Compactor c(db.writer(), co);
    if (!c.RunOnce().ok()) _exit(14);
    if (!db.Open().ok()) _exit(15);
    for (int i = 0; i < kKeys; i += 7) {
      const std::string k = "k" + std::to_string(i);
      auto v = db.Get(k);
      uint64_t version = 0;
      if (!v.ok() || !CheckValue(k, v.value(), &version) || version != (i % 5 == 0 ? 2u : 1u)) _exit(16);
    }
    _exit(0);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
