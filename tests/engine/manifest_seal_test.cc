// Sealed segments' lengths in the MANIFEST (engine/manifest.h, engine/FORMAT.md
// "Manifest"): what the log keeps, that every segment the writer seals gets
// its file's length, and what an open and `kingx-tool verify` make of a
// sealed segment whose file is shorter or longer than its seal.
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "engine/compaction.h"
#include "engine/manifest.h"
#include "engine/record.h"
#include "engine/verify.h"
#include "tests/engine/support/model.h"
#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;
namespace fs = std::filesystem;

namespace {

Options SmallSegments() {
  Options o;
  o.segment_bytes = 16 << 10;
  o.room_bytes = 4 << 10;
  o.compression_level = 0;
  return o;
}

uint64_t Damage(const std::string& dir, const Options& o) {
  auto report = VerifyDatabase(PosixEnv(), dir, o, [](const std::string&) {});
  REQUIRE(report.ok());
  return report->damaged;
}

std::string SegmentPath(const std::string& dir, uint32_t id) { return JoinPath(dir, SegmentFileName(id)); }

// Fills a database with 16 KiB segments (several rotations); returns the
// values written. Closed when it returns.
std::map<std::string, std::string> Fill(const std::string& dir, const Options& o) {
  std::map<std::string, std::string> want;
  TestDb db(PosixEnv(), dir, o);
  REQUIRE(db.Open().ok());
  for (int i = 0; i < 150; ++i) {
    const std::string k = "k" + std::to_string(i);
    want[k] = MakeValue(k, static_cast<uint64_t>(i), 300, false);
    REQUIRE(db.Put(k, want[k]).status.ok());
  }
  return want;
}

// The lowest-id segment the MANIFEST says is sealed, and its seal.
std::pair<uint32_t, uint64_t> FirstSealed(const std::string& dir) {
  auto listed = Manifest::Read(PosixEnv(), dir);
  REQUIRE(listed.ok());
  for (const auto& [id, seg] : listed->segments)
    if (seg.sealed_bytes != 0) return {id, seg.sealed_bytes};
  FAIL("no sealed segment in the MANIFEST");
  return {0, 0};
}

// Offsets of the records in a segment file's bytes, in order.
std::vector<uint64_t> RecordOffsets(const std::string& bytes) {
  std::vector<uint64_t> out;
  RecordLimits limits;
  for (uint64_t off = kSegmentHeaderBytes; off < bytes.size();) {
    auto r = DecodeRecord(bytes.data() + off, bytes.size() - off, limits);
    if (!r.ok()) break;
    out.push_back(off);
    off += r->header.total_bytes();
  }
  return out;
}

}  // namespace

TEST_CASE("the MANIFEST keeps a seal per listed segment, dropped with its removal or a new add of its id",
          "[engine][manifest]") {
  TempDir dir;
  auto m = Manifest::Create(PosixEnv(), dir.path(), 42, {{1, {1, 0}}, {2, {2, 900}}}, 1000);
  REQUIRE(m.ok());
  REQUIRE(m.value()->SealSegment(1, 500).ok());
  REQUIRE(m.value()->AddSegment(3, 3, 700).ok());  // written whole: sealed with its add
  REQUIRE(m.value()->AddSegment(4, 4, 0).ok());
  REQUIRE(m.value()->SealSegment(9, 5).ok());      // not listed: nothing to seal
  REQUIRE(m.value()->RemoveSegment(2).ok());
  REQUIRE(m.value()->AddSegment(2, 5, 0).ok());    // the id given again: a new segment, not sealed
  const ManifestSegments expect{{1, {1, 500}}, {2, {5, 0}}, {3, {3, 700}}, {4, {4, 0}}};
  CHECK(m.value()->segments() == expect);
  auto listed = Manifest::Read(PosixEnv(), dir.path());
  REQUIRE(listed.ok());
  CHECK(listed->segments == expect);
  CHECK(listed->damaged_entries == 0);

  // A rewrite (every open writes one) keeps them.
  m.value().reset();
  REQUIRE(Manifest::Create(PosixEnv(), dir.path(), 42, listed->segments, listed->seq_high_water).ok());
  auto again = Manifest::Read(PosixEnv(), dir.path());
  REQUIRE(again.ok());
  CHECK(again->segments == expect);
}

TEST_CASE("every segment the writer seals is listed with its file's length; the active one is not sealed",
          "[engine][manifest]") {
  TempDir dir;
  const Options o = SmallSegments();
  {
    TestDb db(PosixEnv(), dir.path(), o);
    REQUIRE(db.Open().ok());
    std::map<std::string, std::string> want;
    for (int i = 0; i < 200; ++i) {  // rotations, and overwrites for compaction to drop
      const std::string k = "k" + std::to_string(i % 40);
      want[k] = MakeValue(k, static_cast<uint64_t>(i), 300, false);
      REQUIRE(db.Put(k, want[k]).status.ok());
    }
    PutLarge(db, "large", MakeValue("large", 1, 100 << 10, false));  // a segment written whole
    CompactionOptions all = UnthrottledCompaction(7);
    all.pick_all = true;
    Compactor c(db.writer(), all);
    REQUIRE(c.RunOnce().ok());  // outputs: written whole
    REQUIRE(c.stats().segments_written >= 1);
    const uint32_t active = [&] {
      for (const SegmentStats& g : db.writer().Stats().per_segment)
        if (g.active) return g.id;
      return uint32_t{0};
    }();
    REQUIRE(active != 0);
    auto listed = Manifest::Read(PosixEnv(), dir.path());
    REQUIRE(listed.ok());
    size_t sealed = 0;
    for (const auto& [id, seg] : listed->segments) {
      INFO("segment " << id);
      if (!fs::exists(SegmentPath(dir.path(), id))) continue;  // removed by compaction (its removal listed)
      if (id == active) {
        CHECK(seg.sealed_bytes == 0);
        continue;
      }
      CHECK(seg.sealed_bytes == fs::file_size(SegmentPath(dir.path(), id)));
      ++sealed;
    }
    CHECK(sealed >= 2);
  }
  // The open's fresh MANIFEST keeps them; a clean database has no damage.
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  CHECK(db.writer().Stats().corruptions == 0);
  auto listed = Manifest::Read(PosixEnv(), dir.path());
  REQUIRE(listed.ok());
  for (const auto& [id, seg] : listed->segments) {
    INFO("segment " << id);
    if (seg.sealed_bytes != 0) CHECK(seg.sealed_bytes == fs::file_size(SegmentPath(dir.path(), id)));
  }
}

TEST_CASE("a sealed segment cut at a record boundary, its hint gone, is damage by its seal: reported at every open",
          "[engine][manifest][recovery][corruption]") {
  // Without the seal nothing tells this file from one that ended there: its
  // last records are lost without a word.
  TempDir dir;
  const Options o = SmallSegments();
  const auto want = Fill(dir.path(), o);
  const auto [id, seal] = FirstSealed(dir.path());
  const std::string path = SegmentPath(dir.path(), id);
  std::string bytes = ReadFileBytes(path);
  REQUIRE(bytes.size() == seal);
  const std::vector<uint64_t> offsets = RecordOffsets(bytes);
  REQUIRE(offsets.size() >= 3);
  bytes.resize(offsets[offsets.size() - 2]);  // its last two records, exactly
  WriteFileBytes(path, bytes);
  fs::remove(path.substr(0, path.size() - 4) + ".hint");
  CHECK(Damage(dir.path(), o) >= 1);
  for (int open = 0; open < 2; ++open) {
    INFO("open " << open);
    TestDb db(PosixEnv(), dir.path(), o);
    REQUIRE(db.Open().ok());
    CHECK(db.writer().Stats().corruptions >= 1);
    db.Close();
    CHECK(ReadFileBytes(path) == bytes);
    CHECK(!fs::exists(path.substr(0, path.size() - 4) + ".hint"));  // no fresh hint blesses the cut file
  }
  CHECK(Damage(dir.path(), o) >= 1);
  auto listed = Manifest::Read(PosixEnv(), dir.path());
  REQUIRE(listed.ok());
  CHECK(listed->segments.at(id).sealed_bytes == seal);  // the seal stays: every open reports the cut
  (void)want;
}

TEST_CASE("zeros appended past a sealed segment's seal, its hint gone, are a lost cut: no damage, cut on open",
          "[engine][manifest][recovery][room]") {
  const uint64_t zeros = GENERATE(uint64_t{1}, uint64_t{4096});
  INFO(zeros << " zero bytes");
  TempDir dir;
  const Options o = SmallSegments();
  const auto want = Fill(dir.path(), o);
  const auto [id, seal] = FirstSealed(dir.path());
  const std::string path = SegmentPath(dir.path(), id);
  const std::string original = ReadFileBytes(path);
  REQUIRE(original.size() == seal);
  WriteFileBytes(path, original + std::string(zeros, '\0'));
  fs::remove(path.substr(0, path.size() - 4) + ".hint");
  CHECK(Damage(dir.path(), o) == 0);
  {
    TestDb db(PosixEnv(), dir.path(), o);
    REQUIRE(db.Open().ok());
    CHECK(db.writer().Stats().corruptions == 0);
    for (const auto& [k, v] : want) {
      INFO("key " << k);
      auto got = db.Get(k);
      REQUIRE(got.ok());
      CHECK(got.value() == v);
    }
  }
  CHECK(ReadFileBytes(path) == original);
  CHECK(fs::exists(path.substr(0, path.size() - 4) + ".hint"));  // clean: its hint is written again
}

TEST_CASE("a MANIFEST without seals opens clean and gets them for the sealed segments that read clean",
          "[engine][manifest][recovery]") {
  TempDir dir;
  const Options o = SmallSegments();
  Fill(dir.path(), o);
  auto before = Manifest::Read(PosixEnv(), dir.path());
  REQUIRE(before.ok());
  REQUIRE(StripSeals(dir.path()));
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  CHECK(db.writer().Stats().corruptions == 0);
  auto after = Manifest::Read(PosixEnv(), dir.path());
  REQUIRE(after.ok());
  size_t sealed = 0;
  for (const auto& [id, seg] : before->segments) {
    if (seg.sealed_bytes == 0) continue;
    INFO("segment " << id);
    CHECK(after->segments.at(id).sealed_bytes == seg.sealed_bytes);
    ++sealed;
  }
  CHECK(sealed >= 2);
}
