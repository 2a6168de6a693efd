// Recovery: torn tails of the active segment at every byte offset, flipped
// bytes in sealed segments, damaged or missing hint files.
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <random>
#include <set>

#include "engine/compaction.h"
#include "engine/record.h"
#include "engine/segment_scan.h"
#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;
namespace fs = std::filesystem;

namespace {

// Offsets [begin, end) of each record of a segment file, in order.
std::vector<std::pair<uint64_t, uint64_t>> RecordRanges(const std::string& bytes) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  uint64_t off = kSegmentHeaderBytes;
  RecordLimits limits;
  while (off < bytes.size()) {
    auto r = DecodeRecord(bytes.data() + off, bytes.size() - off, limits);
    if (!r.ok()) break;
    out.emplace_back(off, off + r->header.total_bytes());
    off += r->header.total_bytes();
  }
  return out;
}

// Where the records of the segment file at path end; checks that every byte
// after that is zero (the preallocated room).
uint64_t LogEnd(const std::string& path) {
  const std::string bytes = ReadFileBytes(path);
  const auto ranges = RecordRanges(bytes);
  const uint64_t end = ranges.empty() ? kSegmentHeaderBytes : ranges.back().second;
  CHECK(AllZero(bytes.data() + end, bytes.size() - end));
  return end;
}

}  // namespace

TEST_CASE("recovery truncates a torn tail at every byte offset of the last records and keeps the rest",
          "[engine][recovery]") {
  TempDir pristine;
  std::vector<std::string> keys;
  {
    TestDb db(PosixEnv(), pristine.path(), Options{});
    REQUIRE(db.Open().ok());
    for (int i = 0; i < 20; ++i) {
      keys.push_back("key" + std::to_string(i));
      // The last records: a delete, a compressed value, a small raw one.
      if (i == 17) {
        REQUIRE(db.Delete("key3").status.ok());
        keys.pop_back();
        continue;
      }
      REQUIRE(db.Put(keys.back(), MakeValue(keys.back(), 1, i == 18 ? 600 : 40, true)).status.ok());
    }
  }
  const std::vector<std::string> segs = SegmentFiles(pristine.path());
  REQUIRE(segs.size() == 1);
  // As a crash after the last write leaves it (a clean close's length stays
  // out of the hint): a cut then is a torn write.
  REQUIRE(DropCloseTrailer(segs[0]));
  const std::string seg_name = fs::path(segs[0]).filename();
  // The records only (the file also holds the preallocated zero room).
  std::string full = ReadFileBytes(segs[0]);
  const auto ranges = RecordRanges(full);
  REQUIRE(ranges.size() == 20);
  full.resize(ranges.back().second);

  // A crash of an append leaves the record cut at the end of the file; one
  // into the preallocated room leaves it followed by zeros.
  const bool into_room = GENERATE(false, true);
  TempDir work;
  const uint64_t tear_from = ranges[ranges.size() - 3].first;
  for (uint64_t cut = tear_from; cut <= full.size(); ++cut) {
    CopyDir(pristine.path(), work.path());
    WriteFileBytes(work.File(seg_name), full.substr(0, cut) + std::string(into_room ? 8192 : 0, '\0'));
    TestDb db(PosixEnv(), work.path(), Options{});
    INFO("cut at " << cut << (into_room ? ", zeros after it" : ""));
    REQUIRE(db.Open().ok());
    // Records wholly before the tear survive; the torn one and later are gone.
    size_t whole = 0;
    while (whole < ranges.size() && ranges[whole].second <= cut) ++whole;
    for (size_t i = 0; i < 17; ++i) {
      auto v = db.Get("key" + std::to_string(i));
      if (i == 3 && whole > 17) {
        REQUIRE(v.status().Is(Code::kNotFound));  // the delete survived
      } else {
        REQUIRE(v.ok());
        uint64_t version = 0;
        REQUIRE(CheckValue("key" + std::to_string(i), v.value(), &version));
      }
    }
    REQUIRE(db.Get("key18").ok() == (whole > 18));
    REQUIRE(db.Get("key19").ok() == (whole > 19));
    REQUIRE(db.writer().Stats().corruptions == 0);
    // The file was cut back to the last whole record, and appending works.
    REQUIRE(LogEnd(work.File(seg_name)) == (whole == 0 ? kSegmentHeaderBytes : ranges[whole - 1].second));
    REQUIRE(db.Put("after", "tear").status.ok());
    REQUIRE(db.Open().ok());
    REQUIRE(db.Get("after").value() == "tear");
  }
}

TEST_CASE("a zero-filled or garbage tail ends the log without losing records", "[engine][recovery]") {
  const std::string tail = GENERATE(std::string(4096, '\0'), std::string(100, '\x5a'));
  TempDir dir;
  {
    TestDb db(PosixEnv(), dir.path(), Options{});
    REQUIRE(db.Open().ok());
    for (int i = 0; i < 10; ++i) REQUIRE(db.Put("k" + std::to_string(i), "v" + std::to_string(i)).status.ok());
  }
  const std::string seg = SegmentFiles(dir.path())[0];
  // Where the records end (a closed active segment may also hold its
  // preallocated zero room: the open cuts that too).
  const uint64_t before = RecordRanges(ReadFileBytes(seg)).back().second;
  WriteFileBytes(seg, ReadFileBytes(seg) + tail);
  TestDb db(PosixEnv(), dir.path(), Options{});
  REQUIRE(db.Open().ok());
  for (int i = 0; i < 10; ++i) REQUIRE(db.Get("k" + std::to_string(i)).value() == "v" + std::to_string(i));
  CHECK(LogEnd(seg) == before);
  CHECK(db.writer().Stats().corruptions == 0);
}

TEST_CASE("flipped bytes in sealed segments: corrupted records are never returned, the others are",
          "[engine][recovery][corruption]") {
  TempDir pristine;
  Options o;
  o.segment_bytes = 4096;
  std::map<std::string, std::string> values;
  {
    TestDb db(PosixEnv(), pristine.path(), o);
    REQUIRE(db.Open().ok());
    for (int i = 0; i < 300; ++i) {
      std::string k = "key" + std::to_string(i);
      values[k] = MakeValue(k, 1, 60 + (i * 37) % 400, i % 2 == 0);
      REQUIRE(db.Put(k, values[k]).status.ok());
    }
  }
  const auto segs = SegmentFiles(pristine.path());
  REQUIRE(segs.size() > 10);
  // Which key lives in which byte range of which sealed segment.
  std::map<std::string, std::vector<std::pair<std::pair<uint64_t, uint64_t>, std::string>>> owner;
  for (size_t s = 0; s + 1 < segs.size(); ++s) {
    const std::string bytes = ReadFileBytes(segs[s]);
    for (auto [b, e] : RecordRanges(bytes)) {
      auto r = DecodeRecord(bytes.data() + b, e - b, RecordLimits{});
      owner[fs::path(segs[s]).filename()].push_back({{b, e}, std::string(r->key)});
    }
  }

  std::mt19937_64 rng(99);
  TempDir work;
  for (int trial = 0; trial < 60; ++trial) {
    CopyDir(pristine.path(), work.path());
    const bool drop_hints = trial % 3 == 0;  // force scans too
    if (drop_hints)
      for (const auto& e : fs::directory_iterator(work.path()))
        if (e.path().extension() == ".hint") fs::remove(e.path());
    // 1 to 3 flips in sealed segments.
    std::set<std::string> damaged;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < flips; ++f) {
      const std::string name = fs::path(segs[rng() % (segs.size() - 1)]).filename();
      std::string bytes = ReadFileBytes(work.File(name));
      const uint64_t off = kSegmentHeaderBytes + rng() % (bytes.size() - kSegmentHeaderBytes);
      bytes[off] = static_cast<char>(bytes[off] ^ (1 + rng() % 255));
      WriteFileBytes(work.File(name), bytes);
      for (const auto& [range, key] : owner[name])
        if (off >= range.first && off < range.second) damaged.insert(key);
    }
    TestDb db(PosixEnv(), work.path(), o);
    INFO("trial " << trial);
    REQUIRE(db.Open().ok());
    for (const auto& [k, v] : values) {
      auto got = db.Get(k);
      if (damaged.count(k)) {
        // Never a value: corruption (found via the hint) or gone (skipped by a scan).
        REQUIRE_FALSE(got.ok());
        REQUIRE((got.status().Is(Code::kCorruption) || got.status().Is(Code::kNotFound)));
      } else {
        INFO("key " << k);
        REQUIRE(got.ok());
        REQUIRE(got.value() == v);
      }
    }
    REQUIRE(db.index().counters().corruptions.load() >= 1);
  }
}

TEST_CASE("a damaged or missing hint file falls back to scanning with the same result", "[engine][recovery][hint]") {
  TempDir dir;
  Options o;
  o.segment_bytes = 4096;
  std::vector<std::string> log;
  o.log = [&](const std::string& line) { log.push_back(line); };
  std::map<std::string, std::string> values;
  {
    TestDb db(PosixEnv(), dir.path(), o);
    REQUIRE(db.Open().ok());
    for (int i = 0; i < 100; ++i) {
      std::string k = "k" + std::to_string(i % 60);
      values[k] = MakeValue(k, i, 100, false);
      REQUIRE(db.Put(k, values[k]).status.ok());
    }
    REQUIRE(db.Delete("k5").status.ok());
    values.erase("k5");
  }
  const auto segs = SegmentFiles(dir.path());
  REQUIRE(segs.size() > 3);
  // Damage one hint, truncate another, remove a third.
  std::string h0 = segs[0].substr(0, segs[0].size() - 4) + ".hint";
  std::string h1 = segs[1].substr(0, segs[1].size() - 4) + ".hint";
  std::string h2 = segs[2].substr(0, segs[2].size() - 4) + ".hint";
  std::string b0 = ReadFileBytes(h0);
  b0[b0.size() / 2] ^= 1;
  WriteFileBytes(h0, b0);
  WriteFileBytes(h1, ReadFileBytes(h1).substr(0, 30));
  fs::remove(h2);
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  for (int i = 0; i < 60; ++i) {
    std::string k = "k" + std::to_string(i);
    auto got = db.Get(k);
    if (values.count(k)) REQUIRE(got.value() == values[k]);
    else REQUIRE(got.status().Is(Code::kNotFound));
  }
  // A sealed segment's hint is finished or absent: a bad one is damage,
  // counted and reported; a missing one only costs a scan.
  CHECK(db.writer().Stats().corruptions == 2);
  int scans = 0;
  for (const auto& l : log) scans += l.find("scanning") != std::string::npos;
  CHECK(scans == 2);  // the damaged and the truncated hint; a missing one is silent
  // The segments scanned clean, so their hints were written again.
  log.clear();
  REQUIRE(db.Open().ok());
  CHECK(db.writer().Stats().corruptions == 0);
  CHECK(fs::exists(h2));
  for (int i = 0; i < 60; ++i) {
    std::string k = "k" + std::to_string(i);
    auto got = db.Get(k);
    if (values.count(k)) REQUIRE(got.value() == values[k]);
    else REQUIRE(got.status().Is(Code::kNotFound));
  }
}

TEST_CASE("a segment whose creation was cut short is removed on open", "[engine][recovery]") {
  TempDir dir;
  {
    TestDb db(PosixEnv(), dir.path(), Options{});
    REQUIRE(db.Open().ok());
    REQUIRE(db.Put("k", "v").status.ok());
  }
  WriteFileBytes(dir.File(SegmentFileName(2)), std::string(20, 'x'));
  TestDb db(PosixEnv(), dir.path(), Options{});
  REQUIRE(db.Open().ok());
  CHECK(db.Get("k").value() == "v");
  CHECK_FALSE(fs::exists(dir.File(SegmentFileName(2))));
  CHECK(db.writer().Stats().corruptions == 0);
}

TEST_CASE("files whose names are not a segment's or a hint's are left alone by open", "[engine][recovery][regression]") {
  // Regression: "seg-abcdefgh.hint" made the open throw (std::stoul), so the
  // writer died at every start.
  TempDir dir;
  {
    TestDb db(PosixEnv(), dir.path(), Options{});
    REQUIRE(db.Open().ok());
    REQUIRE(db.Put("k", "v").status.ok());
  }
  // Not ours: not 8 decimal digits, or an id no Location can hold.
  const std::vector<std::string> strangers = {"seg-abcdefgh.hint", "seg-0000001x.kxd", "seg-+0000001.hint",
                                              "seg-00000000.kxd",  "seg-99999999.kxd", "seg-99999999.hint",
                                              "seg-00000001.hint.bak"};
  for (const auto& name : strangers) WriteFileBytes(dir.File(name), "not a segment");
  for (const auto& name : strangers) {
    uint32_t id = 0;
    INFO(name);
    CHECK_FALSE(ParseSegmentFileName(name, &id));
    CHECK_FALSE(ParseHintFileName(name, &id));
  }
  for (int round = 0; round < 2; ++round) {
    TestDb db(PosixEnv(), dir.path(), Options{});
    REQUIRE(db.Open().ok());
    CHECK(db.Get("k").value() == "v");
    REQUIRE(db.Put("k2", "v2").status.ok());
    CHECK(db.writer().Stats().corruptions == 0);
  }
  for (const auto& name : strangers) CHECK(fs::exists(dir.File(name)));
}

TEST_CASE("of two copies of a record, recovery keeps the one compaction wrote", "[engine][recovery][compaction]") {
  // A pass that crashed after installing its output but before unlinking its
  // inputs leaves two copies of each moved record (same seq). The later-born
  // copy wins, so the pass's moves survive the restart and the inputs hold
  // nothing live (a later pass deletes them without copying again).
  TempDir dir;
  Options o;
  o.segment_bytes = 4096;
  o.compression_level = 0;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  for (int i = 0; i < 60; ++i) REQUIRE(db.Put("k" + std::to_string(i), MakeValue("k", i, 200, false)).status.ok());
  for (int i = 0; i < 60; i += 2) REQUIRE(db.Put("k" + std::to_string(i), MakeValue("k", 100 + i, 200, false)).status.ok());
  // Crash after the removals were recorded (the next open finishes them), or before.
  const bool removal_recorded = GENERATE(true, false);
  const auto before = SegmentFiles(dir.path());
  std::map<std::string, std::string> saved;
  for (const auto& p : before) saved[p] = ReadFileBytes(p);
  const std::string manifest_before = ReadFileBytes(dir.File("MANIFEST"));
  CompactionOptions co;
  co.rate_bytes_per_sec = 0;
  co.pick_all = true;
  Compactor c(db.writer(), co);
  PassReport r;
  REQUIRE(c.RunOnce(&r).ok());
  REQUIRE(r.deleted > 0);
  db.Close();
  // Put the deleted inputs back, as a crash before the unlinks would have left them.
  std::vector<std::string> restored;
  for (const auto& [path, bytes] : saved)
    if (!fs::exists(path)) WriteFileBytes(path, bytes), restored.push_back(path);
  REQUIRE_FALSE(restored.empty());
  if (!removal_recorded) WriteFileBytes(dir.File("MANIFEST"), manifest_before);
  REQUIRE(db.Open().ok());
  for (int i = 0; i < 60; ++i) {
    uint64_t version = 0;
    REQUIRE(CheckValue("k", db.Get("k" + std::to_string(i)).value(), &version));
    CHECK(version == static_cast<uint64_t>(i % 2 == 0 ? 100 + i : i));
  }
  uint64_t live_in_restored = 0;
  for (const SegmentStats& s : db.writer().Stats().per_segment) {
    const std::string path = dir.File(SegmentFileName(s.id));
    if (saved.count(path) && !s.active) live_in_restored += s.live_bytes;
  }
  CHECK(live_in_restored == 0);
  CHECK(db.writer().Stats().corruptions == 0);
  if (removal_recorded)
    for (const auto& path : restored) CHECK_FALSE(fs::exists(path));
}

TEST_CASE("a fresh open sizes the index from the hint files before replaying: the table never grows",
          "[engine][recovery][hint]") {
  TempDir dir;
  Options o;
  o.segment_bytes = 64 << 10;
  o.sync = SyncMode::kNone;
  constexpr int kKeys = 3000;
  {
    TestDb db(PosixEnv(), dir.path(), o);
    REQUIRE(db.Open().ok());
    for (int i = 0; i < kKeys; ++i) {
      const std::string k = "key-" + std::to_string(i);
      REQUIRE(db.Put(k, MakeValue(k, 1, 100, false)).status.ok());
    }
    CHECK(db.index().counters().growths.load() > 0);  // inserts one by one do grow it
  }
  REQUIRE(SegmentFiles(dir.path()).size() > 3);
  // A new index region (a fresh master): the replay goes into a table sized
  // for what the hints announce, plus the active segment's bytes.
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  CHECK(db.index().counters().growths.load() == 0);
  CHECK(db.index().counters().keys.load() == kKeys);
  // A writer restart on the same region sizes it from the published index.
  REQUIRE(db.Open().ok());
  CHECK(db.index().counters().growths.load() == 0);
  for (int i = 0; i < kKeys; i += 97) {
    const std::string k = "key-" + std::to_string(i);
    uint64_t version = 0;
    auto got = db.Get(k);
    REQUIRE(got.ok());
    CHECK(CheckValue(k, got.value(), &version));
  }
}
