// Kill points: a child process writes until the armed point kills it
// (_exit(137), like kill -9); the parent reopens and checks that every write
// the child saw acknowledged is there, and that nothing appears that nobody
// wrote.
#include "engine/kill_point.h"

#include <catch2/catch.hpp>

#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "engine/compress.h"
#include "tests/engine/support/crash_child.h"
#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;

namespace {

constexpr int kKeys = 20;

// What the child saw acknowledged.
struct Report {
  int id;       // key "k<id>"
  int version;  // MakeValue version
};

// The child: writes versions of kKeys keys (some large), reporting each
// acknowledged (key id, version) on fd. Returns only if the point never fired.
int Child(const std::string& dir, const Options& o, const std::string& point, int fd) {
  IndexRegion region;
  auto w = Writer::Open(PosixEnv(), dir, o, region.index());
  if (!w.ok()) return 3;
  ArmKillPoint(point);
  for (int v = 1; v <= 400; ++v) {
    const int id = v % kKeys;
    const std::string key = "k" + std::to_string(id);
    const std::string value = MakeValue(key, v, v % 7 == 0 ? 20000 : 300, false);
    WriteResult r;
    if (v % 7 == 0) {  // a large value in parts
      WriteOp head;
      head.key = key;
      auto lid = w.value()->BeginLarge(head);
      if (!lid.ok()) return 4;
      if (!w.value()->AppendLarge(lid.value(), std::string_view(value).substr(0, 10000)).ok()) return 5;
      if (!w.value()->AppendLarge(lid.value(), std::string_view(value).substr(10000)).ok()) return 5;
      w.value()->FinishLarge(lid.value(), value.size(), &r);
    } else {
      WriteOp op;
      op.key = key;
      op.stored = value;
      op.raw_len = value.size();
      w.value()->Apply({&op, 1}, {&r, 1});
    }
    if (!r.status.ok()) return 6;
    if (!ReportToParent(fd, Report{id, v})) return 7;
  }
  return 0;
}

// Checks every key of the reopened db against what the child saw
// acknowledged: a key never acknowledged is absent or holds a value somebody
// wrote; an acknowledged one holds a valid value of at least its
// acknowledged version and at most max_version(that version).
void CheckAcked(TestDb& db, const std::map<int, int>& acked, const std::function<uint64_t(int)>& max_version) {
  for (int id = 0; id < kKeys; ++id) {
    const std::string key = "k" + std::to_string(id);
    auto got = db.Get(key);
    auto it = acked.find(id);
    INFO("key " << key);
    if (it == acked.end()) {
      // Never acknowledged: absent, or the in-flight write (any version of this key).
      if (got.ok()) {
        uint64_t v;
        REQUIRE(CheckValue(key, got.value(), &v));
      } else {
        REQUIRE(got.status().Is(Code::kNotFound));
      }
      continue;
    }
    REQUIRE(got.ok());
    uint64_t version = 0;
    REQUIRE(CheckValue(key, got.value(), &version));
    REQUIRE(version >= static_cast<uint64_t>(it->second));
    REQUIRE(version <= max_version(it->second));
  }
}

// Makes the version each key holds now its acknowledged one.
void AdoptSurvivors(TestDb& db, std::map<int, int>& acked) {
  for (int id = 0; id < kKeys; ++id) {
    auto got = db.Get("k" + std::to_string(id));
    uint64_t version;
    if (got.ok() && CheckValue("k" + std::to_string(id), got.value(), &version)) acked[id] = static_cast<int>(version);
  }
}

// The end of a crash round: the child died at its kill point after some
// acknowledged writes; the reopened database has no damage, every key holds
// what CheckAcked allows, and what the keys hold now is the next round's
// baseline.
void CheckRecoveredRound(int status, const std::string& dir, const Options& o, std::map<int, int>& acked,
                         const std::function<uint64_t(int)>& max_version) {
  REQUIRE(KilledAtPoint(status));
  REQUIRE(!acked.empty());
  TestDb db(PosixEnv(), dir, o);
  REQUIRE(db.Open().ok());
  REQUIRE(db.writer().Stats().corruptions == 0);
  CheckAcked(db, acked, max_version);
  AdoptSurvivors(db, acked);
}

}  // namespace

TEST_CASE("a crash at any kill point keeps every acknowledged write and invents nothing",
          "[engine][kill_point][crash]") {
  const std::string point = GENERATE(as<std::string>{}, "append.before_write:5", "append.after_write:5",
                                     "append.before_sync:9", "append.after_sync:9", "append.before_publish:5",
                                     "rotate.after_create:2", "rotate.after_dir_sync:2", "large.before_rename:2",
                                     "large.after_rename:2", "extend.after_write:3", "extend.after_sync:3",
                                     "seal.before_cut:2", "seal.after_cut:2",
                                     "seal.before_hint:2", "seal.before_seal:2");
  TempDir dir;
  Options o;
  o.segment_bytes = 8192;
  std::map<int, int> acked;  // key id -> last acknowledged version
  // Two crashes in a row on the same directory: recovery after a crash must
  // itself leave a database that survives the next one.
  for (int round = 0; round < 2; ++round) {
    const int status = RunCrashChild<Report>([&](int fd) { return Child(dir.path(), o, point, fd); },
                                             [&](const Report& r) { acked[r.id] = r.version; });
    INFO("point " << point << " round " << round << ", wait status " << status);
    // The acknowledged version, or the one in flight when the process died.
    CheckRecoveredRound(status, dir.path(), o, acked,
                        [](int version) { return static_cast<uint64_t>(version) + kKeys; });
  }
}

TEST_CASE("an unarmed or differently named kill point does nothing", "[engine][kill_point]") {
  ArmKillPoint("");
  KillPointHit("append.before_write");
  ArmKillPoint("some.other.point");
  KillPointHit("append.before_write");
  ArmKillPoint("");
  SUCCEED("still alive");
}

TEST_CASE("an armed fail point fails the fdatasync of the files it names, once or from the Nth on",
          "[engine][kill_point][fail_point]") {
  TempDir dir;
  auto open = [&](const std::string& name) {
    auto f = PosixEnv().OpenFile(dir.File(name), OpenMode::kCreateTruncate);
    REQUIRE(f.ok());
    return std::move(f).value();
  };
  auto seg = open("seg-000001.kx");
  auto other = open("MANIFEST");

  SECTION("the Nth sync of a file whose path contains the part, once") {
    REQUIRE(ArmFailPoint("sync@seg-:2"));
    CHECK(other->Sync().ok());  // not counted: another file
    CHECK(seg->Sync().ok());
    Status s = seg->Sync();
    CHECK(s.Is(Code::kIOError));
    CHECK(s.ToString().find("fdatasync") != std::string::npos);
    CHECK(seg->Sync().ok());
    CHECK(other->Sync().ok());
  }
  SECTION("every sync from the Nth on, on any file") {
    REQUIRE(ArmFailPoint("sync:2+"));
    CHECK(seg->Sync().ok());
    CHECK_FALSE(other->Sync().ok());
    CHECK_FALSE(seg->Sync().ok());
    CHECK_FALSE(other->Sync().ok());
  }
  SECTION("a malformed spec arms nothing, and nothing fails") {
    CHECK_FALSE(ArmFailPoint("sync:x"));
    CHECK_FALSE(ArmFailPoint("sync:0"));
    CHECK(seg->Sync().ok());
    CHECK(other->Sync().ok());
  }
  REQUIRE(ArmFailPoint(""));
  CHECK(seg->Sync().ok());
}

TEST_CASE("an armed fail point fails the reads, mappings, renames and directory syncs it names",
          "[engine][kill_point][fail_point]") {
  TempDir dir;
  Env& env = PosixEnv();
  {
    auto f = env.OpenFile(dir.File("seg-00000001.kxd"), OpenMode::kCreateTruncate);
    REQUIRE(f.ok());
    REQUIRE(f.value()->Append("0123456789").ok());
    auto g = env.OpenFile(dir.File("MANIFEST"), OpenMode::kCreateTruncate);
    REQUIRE(g.ok());
    REQUIRE(g.value()->Append("m").ok());
  }
  auto seg = env.OpenFile(dir.File("seg-00000001.kxd"), OpenMode::kRead);
  REQUIRE(seg.ok());
  char buf[16];
  size_t got = 0;

  SECTION("read: the Nth pread of the file, once") {
    REQUIRE(ArmFailPoint("read@seg-:2"));
    CHECK(seg.value()->Read(0, 4, buf, &got).ok());
    Status s = seg.value()->Read(0, 4, buf, &got);
    CHECK(s.Is(Code::kIOError));
    CHECK(s.ToString().find("pread") != std::string::npos);
    CHECK(got == 0);
    CHECK(seg.value()->Read(0, 4, buf, &got).ok());
    CHECK(std::string(buf, got) == "0123");
  }
  SECTION("read at a bad offset: the bytes before it, then EIO, every time; reads not covering it pass") {
    REQUIRE(ArmFailPoint("read@seg-#6:1+"));
    CHECK(seg.value()->Read(0, 6, buf, &got).ok());  // [0, 6) does not hold byte 6
    CHECK(seg.value()->Read(7, 3, buf, &got).ok());
    for (int i = 0; i < 2; ++i) {
      Status s = seg.value()->Read(2, 8, buf, &got);
      CHECK(s.Is(Code::kIOError));
      CHECK(got == 4);
      CHECK(std::string(buf, got) == "2345");
    }
    CHECK(seg.value()->Read(6, 1, buf, &got).Is(Code::kIOError));
    CHECK(got == 0);
    CHECK_FALSE(ArmFailPoint("read@seg-#x:1"));  // a malformed offset arms nothing
    CHECK(seg.value()->Read(0, 10, buf, &got).ok());
  }
  SECTION("a point without a byte range never matches a spec with an offset") {
    REQUIRE(ArmFailPoint("map@seg-#0:1+"));
    CHECK(env.MapReadOnly(dir.File("seg-00000001.kxd"), 0).ok());
  }
  SECTION("map: every mapping of the file from the Nth on; other files are mapped") {
    REQUIRE(ArmFailPoint("map@seg-:1+"));
    for (int i = 0; i < 3; ++i) {
      auto m = env.MapReadOnly(dir.File("seg-00000001.kxd"), 0);
      REQUIRE_FALSE(m.ok());
      CHECK(m.status().Is(Code::kIOError));
      CHECK(m.status().ToString().find("seg-00000001.kxd") != std::string::npos);
    }
    CHECK(env.MapReadOnly(dir.File("MANIFEST"), 0).ok());
  }
  SECTION("rename: matched on 'FROM -> TO'; the file stays where it was") {
    REQUIRE(ArmFailPoint("rename@MANIFEST -> :1"));
    CHECK(env.Rename(dir.File("MANIFEST"), dir.File("other")).Is(Code::kIOError));
    CHECK(env.FileSize(dir.File("MANIFEST")).ok());
    CHECK(env.Rename(dir.File("MANIFEST"), dir.File("other")).ok());
  }
  SECTION("syncdir: the directory's fsync; a part ending in '$' matches the end of the path only") {
    REQUIRE(env.CreateDir(dir.File("keys")).ok());
    const std::string name = dir.path().substr(dir.path().rfind('/'));
    REQUIRE(ArmFailPoint("syncdir@" + name + "$:2"));
    CHECK(env.SyncDir(dir.File("keys")).ok());  // contains the part, does not end in it: not counted
    CHECK(env.SyncDir(dir.path()).ok());
    CHECK(env.SyncDir(dir.path()).Is(Code::kIOError));
    CHECK(env.SyncDir(dir.path()).ok());
  }
  SECTION("a process filter: only hits in the process of that name count") {
    REQUIRE(ArmFailPoint("kingx-worker/read@seg-:1"));
    SetFailPointProcess("kingx-writer");
    CHECK(seg.value()->Read(0, 4, buf, &got).ok());
    SetFailPointProcess("kingx-worker");
    CHECK(seg.value()->Read(0, 4, buf, &got).Is(Code::kIOError));
    CHECK(seg.value()->Read(0, 4, buf, &got).ok());
    SetFailPointProcess("");
  }
  SECTION("a spec without a name arms nothing") {
    CHECK_FALSE(ArmFailPoint("kingx-worker/@seg-:1"));
    CHECK_FALSE(ArmFailPoint("@seg-"));
    CHECK(seg.value()->Read(0, 4, buf, &got).ok());
  }
  REQUIRE(ArmFailPoint(""));
  CHECK(seg.value()->Read(0, 4, buf, &got).ok());
}

TEST_CASE("a kill point's spec is read by the fail points' parser: a malformed count arms nothing",
          "[engine][kill_point]") {
  ArmKillPoint("append.before_write:x");
  KillPointHit("append.before_write");
  ArmKillPoint("append.before_write:0");
  KillPointHit("append.before_write");
  ArmKillPoint("");
  SUCCEED("still alive");
}

TEST_CASE("a crash while a clean close syncs the active segment or finishes its hint keeps every write and reports "
          "no damage",
          "[engine][kill_point][crash]") {
  // sync none: the close's fdatasync is the first of the active segment.
  const std::string point = GENERATE(as<std::string>{}, "append.before_sync:1", "append.after_sync:1",
                                     "close.before_hint:1");
  const SyncMode mode = GENERATE(SyncMode::kAlways, SyncMode::kNone);
  if (mode == SyncMode::kAlways && point != "close.before_hint:1") return;  // its syncs are the writes'
  TempDir dir;
  Options o;
  o.sync = mode;
  for (int round = 0; round < 2; ++round) {
    std::map<int, int> acked;
    const int status = RunCrashChild<Report>(
        [&](int fd) {
          IndexRegion region;
          auto w = Writer::Open(PosixEnv(), dir.path(), o, region.index());
          if (!w.ok()) return 3;
          for (int v = 1; v <= 60; ++v) {
            const std::string key = "k" + std::to_string(v % kKeys);
            const std::string value = MakeValue(key, static_cast<uint64_t>(100 * round + v), 300, false);
            WriteOp op;
            op.key = key;
            op.stored = value;
            op.raw_len = value.size();
            WriteResult r;
            w.value()->Apply({&op, 1}, {&r, 1});
            if (!r.status.ok()) return 6;
            if (!ReportToParent(fd, Report{v % kKeys, 100 * round + v})) return 7;
          }
          ArmKillPoint(point);
          w.value().reset();  // the clean close, killed part-way
          return 0;
        },
        [&](const Report& r) { acked[r.id] = r.version; });
    INFO("point " << point << " round " << round << ", wait status " << status);
    REQUIRE(KilledAtPoint(status));
    REQUIRE(acked.size() == static_cast<size_t>(kKeys));
    // The page cache kept every write (a process crash, not a power loss).
    TestDb db(PosixEnv(), dir.path(), o);
    REQUIRE(db.Open().ok());
    CHECK(db.writer().Stats().corruptions == 0);
    for (const auto& [id, version] : acked) {
      const std::string key = "k" + std::to_string(id);
      auto got = db.Get(key);
      REQUIRE(got.ok());
      uint64_t v = 0;
      REQUIRE(CheckValue(key, got.value(), &v));
      REQUIRE(v == static_cast<uint64_t>(version));
    }
  }
}

TEST_CASE("a crash with two fdatasyncs in flight keeps every acknowledged write and invents nothing",
          "[engine][kill_point][crash][pipeline]") {
  const std::string point = GENERATE(as<std::string>{}, "append.before_write:7", "append.after_write:7",
                                     "append.before_sync:9", "append.after_sync:9", "append.before_publish:7",
                                     "rotate.after_create:2", "seal.before_cut:2");
  TempDir dir;
  Options o;
  o.segment_bytes = 8192;  // rotations, which drain the pipeline, every few batches
  o.sync_depth = 2;
  std::map<int, int> acked;
  for (int round = 0; round < 2; ++round) {
    const int status = RunCrashChild<Report>(
        [&](int fd) {
          IndexRegion region;
          auto w = Writer::Open(PosixEnv(), dir.path(), o, region.index());
          if (!w.ok()) return 3;
          ArmKillPoint(point);
          // Batches of one to three puts, values on both sides of the
          // compression threshold (256 B) and of a few KiB; each batch's
          // views live until it is taken.
          struct InFlight {
            std::vector<std::string> keys, values;
            std::vector<WriteOp> ops;
            std::vector<int> versions;
          };
          std::deque<InFlight> inflight;
          std::vector<WriteResult> results;
          auto take = [&](bool wait) {
            uint64_t ticket = 0;
            if (!w.value()->TakeFinished(&ticket, &results, wait)) return true;
            InFlight& b = inflight.front();
            for (size_t i = 0; i < results.size(); ++i) {
              if (!results[i].status.ok()) return false;
              if (!ReportToParent(fd, Report{std::stoi(b.keys[i].substr(1)), b.versions[i]})) return false;
            }
            inflight.pop_front();
            return true;
          };
          static constexpr size_t kSizes[] = {255, 256, 300, 4096};
          for (int v = 1; v <= 400;) {
            InFlight b;
            for (int n = 0; n < 1 + v % 3 && v <= 400; ++n, ++v) {
              b.keys.push_back("k" + std::to_string(v % kKeys));
              b.values.push_back(MakeValue(b.keys.back(), static_cast<uint64_t>(1000 * round + v), kSizes[v % 4],
                                           v % 2 == 0));
              b.versions.push_back(1000 * round + v);
            }
            for (size_t i = 0; i < b.keys.size(); ++i) {
              WriteOp op;
              op.key = b.keys[i];
              op.stored = b.values[i];
              op.raw_len = b.values[i].size();
              b.ops.push_back(op);
            }
            inflight.push_back(std::move(b));
            w.value()->Submit(inflight.back().ops);
            // Two in flight at most; whatever is final is taken at once.
            while (inflight.size() > 2) {
              if (!take(true)) return 6;
            }
            if (!take(false)) return 6;
          }
          while (!inflight.empty()) {
            if (!take(true)) return 6;
          }
          return 0;
        },
        [&](const Report& r) { acked[r.id] = r.version; });
    INFO("point " << point << " round " << round << ", wait status " << status);
    // The acknowledged version, or one written after it (in flight at the crash).
    CheckRecoveredRound(status, dir.path(), o, acked,
                        [round](int) { return static_cast<uint64_t>(1000 * round + 400); });
  }
}
