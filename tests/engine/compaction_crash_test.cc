// Crashes inside compaction: a child process runs compaction passes on a
// background thread while its main thread keeps writing (puts and deletes),
// with one compaction kill point armed; it dies there (_exit(137), like
// kill -9). The parent reopens the directory and checks the
// acknowledged-write oracle: every acknowledged put reads back with its
// version, every acknowledged delete stays deleted (no resurrection by a
// dropped tombstone), no key is counted twice, nothing unwritten appears.
// Then it compacts everything again and checks once more.
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <optional>
#include <thread>
#include <vector>

#include "engine/compaction.h"
#include "engine/kill_point.h"
#include "tests/engine/support/crash_child.h"
#include "tests/engine/support/model.h"
#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;

namespace {

constexpr int kKeys = 60;

struct Msg {
  int32_t kind;  // 0 intent, 1 acknowledged
  int32_t id;
  int64_t version;
  int32_t is_delete;
  int32_t ok;
};

std::string Key(int id) { return "key-" + std::to_string(id); }

CompactionOptions Unthrottled() { return UnthrottledCompaction(5); }

// What a key must hold: absent, or MakeValue(key, version, ...).
struct Expect {
  bool exists = false;
  int64_t version = 0;
};

Status Write(Writer& w, int id, int64_t version, bool is_delete) {
  const std::string key = Key(id);
  const std::string value = MakeValue(key, static_cast<uint64_t>(version), 120 + (version % 5) * 60, false);
  WriteOp op;
  op.key = key;
  op.type = is_delete ? OpType::kDelete : OpType::kPut;
  op.stored = value;
  op.raw_len = value.size();
  WriteResult r;
  w.Apply({&op, 1}, {&r, 1});
  return r.status;
}

// The base database: keys 0..29 written once (their segments stay mostly
// live, so they are not compacted), then a third of them deleted among churn
// of keys 30..59 (those segments die and are compacted: their tombstones must
// be kept, or the old puts would resurrect).
void BuildBase(const std::string& dir, const Options& o, std::map<int, Expect>* oracle) {
  IndexRegion region;
  auto w = Writer::Open(PosixEnv(), dir, o, region.index());
  REQUIRE(w.ok());
  int64_t version = 1;
  for (int round = 0; round < 6; ++round) {
    for (int id = 0; id < kKeys; ++id) {
      if (round > 0 && id < 30 && !(round == 3 && id % 3 == 0)) continue;
      const bool del = round == 3 && id < 30;
      Status s = Write(*w.value(), id, version, del);
      REQUIRE(s.ok());
      (*oracle)[id] = del ? Expect{} : Expect{true, version};
      ++version;
    }
  }
}

// The child: compaction passes on a thread, writes on the main thread, each
// intent and acknowledgement reported on fd. Returns only if the point never fired.
int Child(const std::string& dir, const Options& o, const std::string& point, int fd) {
  IndexRegion region;
  auto w = Writer::Open(PosixEnv(), dir, o, region.index());
  if (!w.ok()) return 3;
  Compactor compactor(*w.value(), Unthrottled());
  ArmKillPoint(point);
  std::atomic<bool> done{false};
  std::thread passes([&] {
    for (int i = 0; i < 400 && !done.load(); ++i) {
      compactor.RunOnce().ok();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  for (int64_t v = 1000; v < 1600; ++v) {
    const int id = static_cast<int>(v * 7 % kKeys);
    const bool del = v % 6 == 0;
    if (!ReportToParent(fd, Msg{0, id, v, del, 0})) return 7;
    Status s = Write(*w.value(), id, v, del);
    if (!s.ok() && !s.Is(Code::kNotFound)) return 6;
    if (!ReportToParent(fd, Msg{1, id, v, del, s.ok() ? 1 : 0})) return 7;
  }
  done.store(true);
  passes.join();
  // The point may sit on a path only a final pass reaches.
  CompactionOptions all = Unthrottled();
  all.pick_all = true;
  Compactor last(*w.value(), all);
  last.RunOnce().ok();
  return 0;
}

// Checks the reopened database against the oracle; `inflight` is the one op
// that was not acknowledged (either outcome is allowed for it).
void CheckOracle(TestDb& db, const std::map<int, Expect>& oracle, const std::optional<Msg>& inflight) {
  uint64_t present = 0;
  for (int id = 0; id < kKeys; ++id) {
    const std::string key = Key(id);
    INFO("key " << key);
    auto got = db.Get(key);
    const Expect& e = oracle.at(id);
    Expect alt = e;
    if (inflight && inflight->id == id) alt = inflight->is_delete ? Expect{} : Expect{true, inflight->version};
    if (!got.ok()) {
      REQUIRE(got.status().Is(Code::kNotFound));
      REQUIRE((!e.exists || !alt.exists));
      continue;
    }
    ++present;
    uint64_t version = 0;
    REQUIRE(CheckValue(key, got.value(), &version));
    const bool matches = (e.exists && version == static_cast<uint64_t>(e.version)) ||
                         (alt.exists && version == static_cast<uint64_t>(alt.version));
    REQUIRE(matches);
  }
  REQUIRE(db.writer().Stats().keys == present);  // no key counted twice
  REQUIRE(db.writer().Stats().corruptions == 0);
}

}  // namespace

TEST_CASE("a crash at any compaction kill point keeps every acknowledged write and deletion",
          "[engine][compaction][crash]") {
  const std::string point =
      GENERATE(as<std::string>{}, "compact.before_write", "compact.after_write:2", "compact.before_sync",
               "compact.after_sync:2", "compact.before_hint", "compact.after_hint", "compact.before_rename",
               "compact.after_rename:2", "compact.before_dir_sync", "compact.after_dir_sync",
               "compact.mid_install", "compact.mid_install:4", "compact.before_unlink", "compact.before_unlink:3",
               "compact.after_unlink", "compact.after_unlink:5", "compact.after_unlink_hint:2",
               "compact.before_final_dir_sync");
  TempDir dir;
  Options o;
  o.segment_bytes = 8192;
  std::map<int, Expect> oracle;
  BuildBase(dir.path(), o, &oracle);

  std::optional<Msg> inflight;
  const int status = RunCrashChild<Msg>([&](int fd) { return Child(dir.path(), o, point, fd); },
                                        [&](const Msg& m) {
                                          if (m.kind == 0) {
                                            inflight = m;
                                            return;
                                          }
                                          inflight.reset();
                                          if (m.ok) oracle[m.id] = m.is_delete ? Expect{} : Expect{true, m.version};
                                        });
  INFO("point " << point << ", wait status " << status);
  REQUIRE(KilledAtPoint(status));

  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  REQUIRE_FALSE(HasTmpFiles(dir.path()));
  CheckOracle(db, oracle, inflight);

  // Compaction after the crash finishes the job and changes nothing visible.
  CompactionOptions all = Unthrottled();
  all.pick_all = true;
  {
    Compactor c(db.writer(), all);
    REQUIRE(c.RunOnce().ok());
  }
  CheckOracle(db, oracle, inflight);
  REQUIRE(db.Open().ok());
  CheckOracle(db, oracle, inflight);
}

namespace {

constexpr int kProgressKeys = 2000;

std::string ProgressKey(int i) { return "p" + std::to_string(i); }
// One key in ten keeps its first, 5 KiB value; the others were overwritten
// by a small one.
bool KeepsFirst(int i) { return i % 10 == 0; }

uint64_t SegmentDirBytes(const std::string& dir) {
  uint64_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_regular_file()) n += e.file_size();
  return n;
}

// Reopens dir with `o` again and again, each time running compaction passes
// that die before the process's sixth input (a kill -9 while a pass is under
// way), until a run finishes without reaching that point or 40 cycles pass.
// Returns the number of cycles.
int CompactDyingMidPass(const std::string& dir, const Options& o) {
  int cycles = 0;
  bool finished = false;
  for (; cycles < 40 && !finished; ++cycles) {
    const int status = RunCrashChild<Msg>(
        [&](int) {
          IndexRegion region;
          auto w = Writer::Open(PosixEnv(), dir, o, region.index());
          if (!w.ok()) return 3;
          Compactor compactor(*w.value(), Unthrottled());
          ArmKillPoint("compact.before_input:6");
          for (int pass = 0; pass < 20; ++pass) compactor.RunOnce().ok();
          return 0;
        },
        [](const Msg&) {});
    INFO("cycle " << cycles << ", wait status " << status);
    REQUIRE((KilledAtPoint(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0)));
    finished = !KilledAtPoint(status);
  }
  return cycles;
}

}  // namespace

TEST_CASE("compaction killed again and again part-way through its passes still shrinks the directory to "
          "twice the live data",
          "[engine][compaction][crash]") {
  TempDir dir;
  Options build;
  build.compression_level = 0;
  build.segment_bytes = 256 << 10;
  {
    // About forty sealed segments, each nine tenths dead, the live tenth spread over all of them.
    TestDb db(PosixEnv(), dir.path(), build);
    REQUIRE(db.Open().ok());
    for (int i = 0; i < kProgressKeys; ++i)
      REQUIRE(db.Put(ProgressKey(i), MakeValue(ProgressKey(i), 1, 5000, false)).status.ok());
    for (int i = 0; i < kProgressKeys; ++i)
      if (!KeepsFirst(i)) REQUIRE(db.Put(ProgressKey(i), MakeValue(ProgressKey(i), 2, 20, false)).status.ok());
  }
  // Segments far larger than the live data: no output of a pass ever fills
  // up, as with the default 256 MiB segments and a small database.
  Options o = build;
  o.segment_bytes = 64 << 20;
  // The directory's bytes are compared with the records': no preallocated
  // room (megabytes of zeros in the active segment, next to ~1 MiB of live data).
  o.room_bytes = 0;
  const uint64_t before = SegmentDirBytes(dir.path());

  const int cycles = CompactDyingMidPass(dir.path(), o);
  INFO("cycles " << cycles << ", directory bytes before " << before);

  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  REQUIRE_FALSE(HasTmpFiles(dir.path()));
  for (int i = 0; i < kProgressKeys; ++i) {
    auto got = db.Get(ProgressKey(i));
    REQUIRE(got.ok());
    uint64_t version = 0;
    REQUIRE(CheckValue(ProgressKey(i), got.value(), &version));
    REQUIRE(version == (KeepsFirst(i) ? 1u : 2u));
  }
  const uint64_t live = db.writer().Stats().live_bytes;
  const uint64_t after = SegmentDirBytes(dir.path());
  INFO("live bytes " << live << ", directory bytes after " << after);
  REQUIRE(after <= 2 * live);
  REQUIRE(db.writer().Stats().corruptions == 0);
}


TEST_CASE("compaction killed again and again mid-pass keeps values on both sides of every size threshold, "
          "compressed or not, and shrinks the directory to twice the live data",
          "[engine][compaction][crash]") {
  // Both sides of the compression threshold (256 bytes) and of the
  // large-value path (1 MiB), each as random and as compressible bytes.
  const std::vector<size_t> sizes = {0,   1,    255, 256, 257, 4000, 65536, kPartBytes - 1, kPartBytes,
                                     kPartBytes + 1, 2 * kPartBytes + 3};
  struct Key {
    std::string name;
    size_t first, last;
    bool compressible;
    bool keeps_first;
  };
  std::vector<Key> keys;
  for (size_t i = 0; i < sizes.size(); ++i)
    for (int c = 0; c < 2; ++c)
      for (int k = 0; k < 2; ++k) {
        const size_t n = keys.size();
        keys.push_back(Key{"t" + std::to_string(n), sizes[i], sizes[(i + 3 + k) % sizes.size()], c == 1,
                           n % 3 == 0});
      }
  TempDir dir;
  Options o;
  o.compression_level = 1;
  o.segment_bytes = 1 << 20;
  {
    // Every value written three times (the older copies dead), one key in
    // three left at its first version.
    TestDb db(PosixEnv(), dir.path(), o);
    REQUIRE(db.Open().ok());
    for (uint64_t version = 1; version <= 3; ++version)
      for (const Key& k : keys) {
        if (version > 1 && k.keeps_first) continue;
        const size_t len = version == 1 ? k.first : k.last;
        REQUIRE(PutAsServer(db, k.name, MakeValue(k.name, version, len, k.compressible), k.compressible).ok());
      }
  }
  // Segments far larger than the live data (as with the default 256 MiB
  // segments and a small database).
  o.segment_bytes = 64 << 20;
  const uint64_t before = SegmentDirBytes(dir.path());
  const int cycles = CompactDyingMidPass(dir.path(), o);
  INFO("cycles " << cycles << ", directory bytes before " << before);

  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  REQUIRE_FALSE(HasTmpFiles(dir.path()));
  for (const Key& k : keys) {
    INFO("key " << k.name);
    auto got = db.Get(k.name);
    REQUIRE(got.ok());
    // Exact bytes (values too short to carry their version differ by size).
    const std::string want = k.keeps_first ? MakeValue(k.name, 1, k.first, k.compressible)
                                           : MakeValue(k.name, 3, k.last, k.compressible);
    REQUIRE(got.value().size() == want.size());
    REQUIRE(got.value() == want);
  }
  const uint64_t live = db.writer().Stats().live_bytes;
  const uint64_t after = SegmentDirBytes(dir.path());
  INFO("live bytes " << live << ", directory bytes after " << after);
  REQUIRE(after <= 2 * live);
  REQUIRE(db.writer().Stats().corruptions == 0);
}

namespace {

// kingx-tool's compaction: the only user of the database, so the active
// segment is compacted too (CompactionOptions::offline), passes until one
// finds nothing. Every sealed segment each time (pick_all; `kingx-tool
// compact --all` takes only those with dead bytes), so that every kill point
// meets a pass with work left after the crashes before it.
CompactionOptions Offline() {
  CompactionOptions co = Unthrottled();
  co.offline = true;
  co.pick_all = true;
  return co;
}

int CompactOffline(const std::string& dir, const Options& o, const std::string& point) {
  IndexRegion region;
  auto w = Writer::Open(PosixEnv(), dir, o, region.index());
  if (!w.ok()) return 3;
  Compactor compactor(*w.value(), Offline());
  if (!point.empty()) ArmKillPoint(point);
  for (int pass = 0; pass < 20; ++pass) {
    PassReport report;
    if (!compactor.RunOnce(&report).ok()) return 4;
    if (report.inputs == 0) break;
  }
  return 0;
}

}  // namespace

TEST_CASE("offline compaction rewrites the active segment too, and a crash anywhere in its seal or its pass "
          "keeps values on both sides of every size threshold",
          "[engine][compaction][crash]") {
  // Small values overwritten in the active segment (both sides of the
  // compression threshold), values on both sides of the large-value path
  // (kPartBytes) whose newer version took the other path, and a large value
  // replaced by a larger one (a dead segment of its own). The active segment
  // holds less than half the live data: online, even a pass picking every
  // segment would leave it to the writes that fill it.
  struct Key {
    std::string name;
    std::vector<size_t> sizes;  // one per version, the last one kept
    bool compressible;
  };
  std::vector<Key> keys;
  for (const size_t n : {size_t{0}, size_t{1}, size_t{255}, size_t{256}, size_t{257}, size_t{4000}, size_t{65536}})
    for (int c = 0; c < 2; ++c) keys.push_back(Key{"s" + std::to_string(keys.size()), {n, n + 7, n}, c == 1});
  keys.push_back(Key{"below", {kPartBytes - 1, kPartBytes + 1}, false});
  keys.push_back(Key{"at", {kPartBytes, 2 * kPartBytes + 3}, false});
  keys.push_back(Key{"above", {kPartBytes + 1, kPartBytes}, false});
  keys.push_back(Key{"large", {2 * kPartBytes + 3, 3 * kPartBytes}, false});
  TempDir dir;
  Options o;
  o.compression_level = 1;
  o.segment_bytes = 64 << 20;
  o.room_bytes = 0;
  auto check_values = [&](TestDb& db) {
    for (const Key& k : keys) {
      INFO("key " << k.name);
      auto got = db.Get(k.name);
      REQUIRE(got.ok());
      const std::string want = MakeValue(k.name, k.sizes.size(), k.sizes.back(), k.compressible);
      REQUIRE(got.value() == want);
    }
    REQUIRE(db.writer().Stats().corruptions == 0);
  };
  uint32_t first_active = 0;
  {
    TestDb db(PosixEnv(), dir.path(), o);
    REQUIRE(db.Open().ok());
    for (size_t version = 1; version <= 3; ++version)
      for (const Key& k : keys) {
        if (version > k.sizes.size()) continue;
        const std::string value = MakeValue(k.name, version, k.sizes[version - 1], k.compressible);
        REQUIRE(PutAsServer(db, k.name, value, k.compressible).ok());
      }
    for (const SegmentStats& s : db.writer().Stats().per_segment)
      if (s.active) first_active = s.id;
    REQUIRE(first_active != 0);
  }

  // Killed at each step of the seal and of the pass in turn, reopened and
  // checked between the crashes.
  for (const std::string point :
       {"seal.after_cut", "seal.before_hint", "seal.before_seal", "rotate.after_create",
        "compact.before_input", "compact.after_write:2", "compact.before_rename", "compact.after_rename",
        "compact.mid_install", "compact.before_unlink", "compact.after_unlink", "compact.after_unlink_hint",
        "compact.before_final_dir_sync"}) {
    const int status = RunCrashChild<Msg>([&](int) { return CompactOffline(dir.path(), o, point); },
                                          [](const Msg&) {});
    INFO("point " << point << ", wait status " << status);
    REQUIRE(KilledAtPoint(status));  // each point is on the way of a pass that has work left
    TestDb db(PosixEnv(), dir.path(), o);
    REQUIRE(db.Open().ok());
    REQUIRE_FALSE(HasTmpFiles(dir.path()));
    check_values(db);
  }
  REQUIRE(RunCrashChild<Msg>([&](int) { return CompactOffline(dir.path(), o, ""); }, [](const Msg&) {}) == 0);

  // Every dead byte is gone, the first active segment's with the rest; the
  // active segment is a fresh one holding no record.
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  check_values(db);
  const WriterStats stats = db.writer().Stats();
  CHECK(stats.dead_bytes == 0);
  for (const SegmentStats& s : stats.per_segment) {
    INFO("segment " << s.id << " bytes " << s.bytes << " live " << s.live_bytes << " dead " << s.dead_bytes);
    CHECK(s.id != first_active);
    if (s.active) CHECK(s.bytes == kSegmentHeaderBytes);
  }
}
