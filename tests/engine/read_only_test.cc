// Read-only open (Options::read_only): recovery of a directory holding every
// leftover a read-write open would clean up or rewrite changes nothing (no
// call that may change the disk reaches the file seam; bytes and time stamps
// stay), reads answer, writes are refused; the shared lock of
// engine/data_dir_lock.h keeps read-only and read-write holders apart.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <string>

#include "engine/compaction.h"
#include "engine/cut_hint.h"
#include "engine/data_dir_lock.h"
#include "engine/record.h"
#include "tests/engine/support/fault_env.h"
#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;
namespace fs = std::filesystem;

namespace {

// Every entry under dir (recursively, dir itself included): its bytes (files)
// and its modification and status-change times in nanoseconds.
std::map<std::string, std::string> Snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  auto add = [&](const fs::path& p) {
    struct stat st {};
    REQUIRE(::lstat(p.c_str(), &st) == 0);
    std::string v = std::to_string(st.st_mode) + " m" + std::to_string(st.st_mtim.tv_sec) + "." +
                    std::to_string(st.st_mtim.tv_nsec) + " c" + std::to_string(st.st_ctim.tv_sec) + "." +
                    std::to_string(st.st_ctim.tv_nsec);
    if (S_ISREG(st.st_mode)) v += " " + ReadFileBytes(p.string());
    out[p.string()] = std::move(v);
  };
  add(dir);
  for (const auto& e : fs::recursive_directory_iterator(dir)) add(e.path());
  return out;
}

Options SmallSegments() {
  Options o;
  o.segment_bytes = 4096;
  o.compression_level = 0;
  return o;
}

// A database with every kind of leftover recovery acts on: a finished
// deletion still on disk (recorded in the MANIFEST), a sealed segment without
// its hint, a staging file, an orphan hint, a header-only segment with a bad
// header, and a torn tail on the active segment. Returns the values it holds.
std::map<std::string, std::string> MakeUntidyDatabase(const std::string& dir) {
  std::map<std::string, std::string> model;
  uint32_t active_id = 0, restored_id = 0;
  {
    TestDb db(PosixEnv(), dir, SmallSegments());
    REQUIRE(db.Open().ok());
    for (int round = 0; round < 3; ++round) {
      for (int i = 0; i < 40; ++i) {
        const std::string key = "key" + std::to_string(i);
        const std::string value = MakeValue(key, round, 200, false);
        REQUIRE(db.Put(key, value).status.ok());
        model[key] = value;
      }
    }
    REQUIRE(db.Delete("key7").status.ok());
    model.erase("key7");
    // A compaction pass deletes segments; bring one back as if the crash came
    // right after the MANIFEST recorded its removal.
    std::map<std::string, std::string> before;
    for (const std::string& s : SegmentFiles(dir)) before[s] = ReadFileBytes(s);
    CompactionOptions co;
    co.pick_all = true;
    co.rate_bytes_per_sec = 0;
    Compactor compactor(db.writer(), co);
    REQUIRE(compactor.RunOnce().ok());
    bool restored = false;
    for (const auto& [path, bytes] : before) {
      if (!restored && !fs::exists(path)) {
        WriteFileBytes(path, bytes);
        restored = true;
        REQUIRE(ParseSegmentFileName(fs::path(path).filename().string(), &restored_id));
      }
    }
    REQUIRE(restored);
    for (int i = 0; i < 5; ++i) {  // the active segment holds records after the pass
      const std::string key = "late" + std::to_string(i);
      model[key] = MakeValue(key, 1, 100, false);
      REQUIRE(db.Put(key, model[key]).status.ok());
    }
    for (const SegmentStats& st : db.writer().Stats().per_segment)
      if (st.active) active_id = st.id;
    REQUIRE(active_id != 0);
  }
  const std::vector<std::string> segs = SegmentFiles(dir);
  REQUIRE(segs.size() >= 3);
  // A sealed segment without its hint (a read-write open rewrites it).
  uint32_t sealed = 0;
  for (const std::string& seg : segs) {
    uint32_t id = 0;
    REQUIRE(ParseSegmentFileName(fs::path(seg).filename().string(), &id));
    if (id != active_id && id != restored_id) sealed = id;
  }
  REQUIRE(sealed != 0);
  REQUIRE(fs::remove(fs::path(dir) / HintFileName(sealed)));
  WriteFileBytes(dir + "/large-77.tmp", "staged bytes of a large value never renamed");
  WriteFileBytes(dir + "/" + HintFileName(900), "an orphan hint");
  WriteFileBytes(dir + "/" + SegmentFileName(901), std::string(10, '\0'));
  // A torn tail: half a record's worth of garbage after the last record.
  const std::string active = dir + "/" + SegmentFileName(active_id);
  WriteFileBytes(active, ReadFileBytes(active) + std::string(37, '\x5a'));
  return model;
}

}  // namespace

TEST_CASE("a read-only open changes nothing in an untidy directory and still reads every key",
          "[engine][read_only]") {
  TempDir dir;
  const auto model = MakeUntidyDatabase(dir.path());
  const auto before = Snapshot(dir.path());

  FaultInjectionEnv env;
  Options o = SmallSegments();
  o.read_only = true;
  {
    TestDb db(env, dir.path(), o);
    REQUIRE(db.Open().ok());
    for (const auto& [key, value] : model) {
      auto got = db.Get(key);
      INFO(key);
      REQUIRE(got.ok());
      CHECK(got.value() == value);
    }
    CHECK(db.Get("key7").status().Is(Code::kNotFound));
    CHECK(db.writer().read_only());

    CHECK(db.Put("new", "value").status.Is(Code::kReadOnly));
    CHECK(db.Delete("key1").status.Is(Code::kReadOnly));
    WriteOp big;
    big.key = "big";
    CHECK(db.writer().BeginLarge(big).status().Is(Code::kReadOnly));
    CHECK(db.writer().Sync().Is(Code::kReadOnly));
    CompactionOptions co;
    co.pick_all = true;
    Compactor compactor(db.writer(), co);
    CHECK(compactor.RunOnce().Is(Code::kReadOnly));
    auto cut = db.writer().PinSegments();
    CHECK(cut.ok());
    if (cut.ok()) db.writer().UnpinSegmentIds(cut->ids());
  }
  const std::vector<std::string> changes = env.ChangingCalls();
  for (const std::string& c : changes) UNSCOPED_INFO("write-side call: " << c);
  CHECK(changes.empty());
  CHECK(Snapshot(dir.path()) == before);
}

TEST_CASE("the untidy directory exercises every write-side step of a read-write open",
          "[engine][read_only]") {
  // The test above can fail only if a read-write open does write here.
  TempDir dir;
  MakeUntidyDatabase(dir.path());
  size_t without_hint = 0;
  for (const std::string& seg : SegmentFiles(dir.path())) {
    uint32_t id = 0;
    REQUIRE(ParseSegmentFileName(fs::path(seg).filename().string(), &id));
    if (id != 901 && !fs::exists(dir.File(HintFileName(id)))) ++without_hint;
  }
  REQUIRE(without_hint >= 1);
  FaultInjectionEnv env;
  {
    TestDb db(env, dir.path(), SmallSegments());
    REQUIRE(db.Open().ok());
  }
  std::string all;
  for (const std::string& c : env.ChangingCalls()) all += c + "\n";
  INFO(all);
  CHECK(all.find("lock-create") != std::string::npos);
  CHECK(all.find("unlink " + dir.File("large-77.tmp")) != std::string::npos);
  CHECK(all.find("unlink " + dir.File(HintFileName(900))) != std::string::npos);
  CHECK(all.find("unlink " + dir.File(SegmentFileName(901))) != std::string::npos);
  CHECK(all.find("truncate ") != std::string::npos);
  CHECK(all.find("MANIFEST") != std::string::npos);
  // the finished deletion, and the hint rewritten for the sealed segment
  size_t segment_unlinks = 0;
  for (const std::string& c : env.ChangingCalls())
    if (c.starts_with("unlink ") && c.ends_with(".kxd")) ++segment_unlinks;
  CHECK(segment_unlinks >= 2);
  for (const std::string& seg : SegmentFiles(dir.path())) {  // the missing hint was written again
    uint32_t id = 0;
    REQUIRE(ParseSegmentFileName(fs::path(seg).filename().string(), &id));
    CHECK(fs::exists(dir.File(HintFileName(id))));
  }
}

TEST_CASE("read-only and read-write holders of a data directory exclude each other; read-only ones share",
          "[engine][read_only]") {
  TempDir dir;
  Env& env = PosixEnv();
  {
    // A directory never opened by a writer (no LOCK): a read-only hold creates nothing.
    auto ro = LockDataDir(env, dir.path(), true);
    REQUIRE(ro.ok());
    CHECK(!fs::exists(dir.File("LOCK")));
    auto ro2 = LockDataDir(env, dir.path(), true);
    CHECK(ro2.ok());
    auto rw = LockDataDir(env, dir.path(), false);
    CHECK(rw.status().Is(Code::kBusy));
  }
  {
    auto rw = LockDataDir(env, dir.path(), false);
    REQUIRE(rw.ok());
    CHECK(LockDataDir(env, dir.path(), true).status().Is(Code::kBusy));
    CHECK(LockDataDir(env, dir.path(), false).status().Is(Code::kBusy));
  }
  {
    // LOCK exists now: a read-only hold shares it, and still excludes a writer.
    auto ro = LockDataDir(env, dir.path(), true);
    REQUIRE(ro.ok());
    CHECK(LockDataDir(env, dir.path(), false).status().Is(Code::kBusy));
  }
  CHECK(LockDataDir(env, dir.File("absent"), true).status().Is(Code::kNotFound));
}

TEST_CASE("a read-only open of a missing directory fails without creating it", "[engine][read_only]") {
  TempDir dir;
  Options o;
  o.read_only = true;
  IndexRegion region;
  auto w = Writer::Open(PosixEnv(), dir.File("absent"), o, region.index());
  CHECK(w.status().Is(Code::kNotFound));
  CHECK(!fs::exists(dir.File("absent")));
}

TEST_CASE("a read-only open's cut names the segment its log ends in as active, up to its last valid record",
          "[engine][read_only]") {
  // A backup of a read-only server builds that segment's hint for the cut:
  // its hint on disk may be unfinished (a crash), and its torn tail is not
  // part of the database.
  TempDir dir;
  MakeUntidyDatabase(dir.path());
  Options o = SmallSegments();
  o.read_only = true;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  auto cut = db.writer().PinSegments();
  REQUIRE(cut.ok());
  std::vector<SegmentFileCut> active;
  for (const SegmentFileCut& f : cut->segments)
    if (f.active) active.push_back(f);
  db.writer().UnpinSegmentIds(cut->ids());
  REQUIRE(active.size() == 1);
  const std::string path = dir.File(SegmentFileName(active[0].id));
  CHECK(active[0].bytes > kSegmentHeaderBytes);
  CHECK(active[0].bytes + 37 <= ReadFileBytes(path).size());  // the zero room and the torn tail left out
  // Whole valid records up to there: the hint a clean close would write.
  CHECK(WriteCutHint(PosixEnv(), path, active[0].id, active[0].bytes, RecordLimits{}, dir.File("cut.hint")).ok());
}

TEST_CASE("a read-only open counts the segment its log ends in by its records: room and torn tail are no bytes",
          "[engine][read_only]") {
  // What a read-write open reports after its cut: the zero room and the torn
  // tail after the last valid record are neither live nor dead bytes.
  TempDir dir;
  MakeUntidyDatabase(dir.path());
  uint64_t rw_live = 0, rw_dead = 0;
  {
    TempDir copy;
    fs::copy(dir.path(), copy.path(), fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    TestDb rw(PosixEnv(), copy.path(), SmallSegments());
    REQUIRE(rw.Open().ok());
    rw_live = rw.writer().Stats().live_bytes;
    rw_dead = rw.writer().Stats().dead_bytes;
  }
  Options o = SmallSegments();
  o.read_only = true;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  const WriterStats s = db.writer().Stats();
  CHECK(s.live_bytes == rw_live);
  CHECK(s.dead_bytes == rw_dead);
  auto cut = db.writer().PinSegments();
  REQUIRE(cut.ok());
  db.writer().UnpinSegmentIds(cut->ids());
  for (const SegmentFileCut& f : cut->segments) {
    if (!f.active) continue;
    for (const SegmentStats& g : s.per_segment) {
      if (g.id != f.id) continue;
      CHECK(g.bytes == f.bytes);  // its records, as the cut names them
      CHECK(g.bytes < ReadFileBytes(dir.File(SegmentFileName(f.id))).size());
    }
  }
}
