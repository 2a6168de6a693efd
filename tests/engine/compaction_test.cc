// Compaction (engine/compaction.h): the std::map model with compaction passes
// interleaved, the tombstone rule, accounting rebuilt on open, ENOSPC during a
// pass, a full disk freed by compaction, and passes on a background thread
// while the writer thread writes.
#include "engine/compaction.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <sys/stat.h>
#include <unistd.h>

#include "engine/compaction_policy.h"
#include "engine/compress.h"
#include "engine/mapping_guard.h"
#include "engine/record.h"
#include "tests/engine/support/fault_env.h"
#include "tests/engine/support/model.h"
#include "tests/engine/support/pipeline.h"
#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;

namespace {

CompactionOptions Unthrottled() { return UnthrottledCompaction(7); }  // many small installs

// Per-segment live and dead bytes as the writer keeps them.
std::map<uint32_t, std::pair<uint64_t, uint64_t>> SegmentBytes(Writer& w) {
  std::map<uint32_t, std::pair<uint64_t, uint64_t>> out;
  for (const SegmentStats& s : w.Stats().per_segment) out[s.id] = {s.live_bytes, s.dead_bytes};
  return out;
}

uint64_t DirBytes(const std::string& dir) {
  uint64_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_regular_file()) n += e.file_size();
  return n;
}

}  // namespace

TEST_CASE("compaction interleaved with random puts, deletes and reopens agrees with a std::map model",
          "[engine][compaction][model]") {
  const int level = GENERATE(0, 1);
  TempDir dir;
  Options o;
  o.compression_level = level;
  o.segment_bytes = 16 << 10;  // many segments
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  auto compactor = std::make_unique<Compactor>(db.writer(), Unthrottled());
  std::mt19937_64 rng(77 + level);
  Model model;
  std::vector<std::string> all_keys;
  uint64_t compacted = 0, dropped = 0;

  for (int step = 0; step < 4000; ++step) {
    const int what = static_cast<int>(rng() % 100);
    const std::string key = "k" + std::to_string(rng() % 150) + (rng() % 10 == 0 ? std::string("\0b", 2) : "");
    if (std::find(all_keys.begin(), all_keys.end(), key) == all_keys.end()) all_keys.push_back(key);
    auto it = model.find(key);
    if (what < 60) {
      const size_t len = rng() % 20 == 0 ? 2000 + rng() % 6000 : 20 + rng() % 300;
      std::string value = MakeValue(key, step, len, rng() % 2 == 0);
      WriteResult r = db.Put(key, value);
      REQUIRE(r.status.ok());
      model[key] = ModelEntry{value, r.seq};
    } else if (what < 80) {
      WriteResult r = db.Delete(key);
      REQUIRE(r.status.Is(it == model.end() ? Code::kNotFound : Code::kOk));
      if (it != model.end()) model.erase(it);
    } else if (what < 94) {
      CheckKey(db, model, key);
    } else if (what < 99) {
      PassReport report;
      Status s = compactor->RunOnce(&report);
      INFO(s.ToString());
      REQUIRE(s.ok());
      compacted += report.deleted;
      CheckModel(db, model, all_keys);
    } else {
      // The accounting kept across passes is what recovery rebuilds from the files.
      auto before = SegmentBytes(db.writer());
      compactor.reset();
      REQUIRE(db.Open().ok());
      compactor = std::make_unique<Compactor>(db.writer(), Unthrottled());
      auto after = SegmentBytes(db.writer());
      for (const auto& [id, lb] : before) {
        INFO("segment " << id);
        REQUIRE(after.count(id) == 1);
        REQUIRE(after[id].first == lb.first);
        REQUIRE(after[id].second == lb.second);
      }
      REQUIRE(after.size() == before.size());
      REQUIRE_FALSE(HasTmpFiles(dir.path()));
      CheckModel(db, model, all_keys);
    }
    dropped = std::max(dropped, compactor->stats().tombstones_dropped);
  }
  REQUIRE(compacted > 0);
  CheckModel(db, model, all_keys);

  // A full pass leaves sealed segments whose dead bytes are only tombstones that must stay.
  CompactionOptions all = Unthrottled();
  all.pick_all = true;
  Compactor full(db.writer(), all);
  REQUIRE(full.RunOnce().ok());
  CheckModel(db, model, all_keys);
  WriterStats s = db.writer().Stats();
  uint64_t sealed_dead = 0;
  for (const SegmentStats& g : s.per_segment)
    if (!g.active) sealed_dead += g.dead_bytes;
  REQUIRE(sealed_dead <= full.stats().tombstones_kept * (kRecordHeaderBytes + 8));
  compactor.reset();
  REQUIRE(db.Open().ok());
  CheckModel(db, model, all_keys);
}

TEST_CASE("a tombstone stays while an older segment still holds the deleted put, and goes once it is gone",
          "[engine][compaction][tombstone]") {
  TempDir dir;
  Options o;
  o.compression_level = 0;
  o.segment_bytes = 8 << 10;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  // Segment A: the victim among values that stay live (A stays below the dead ratio).
  REQUIRE(db.Put("victim", MakeValue("victim", 1, 200, false)).status.ok());
  for (int i = 0; i < 30; ++i) REQUIRE(db.Put("stable" + std::to_string(i), MakeValue("s", i, 200, false)).status.ok());
  // Later segments: the delete (after a value too big for the first segment), then churn that makes them dead.
  REQUIRE(db.Put("filler", MakeValue("filler", 1, 1000, false)).status.ok());
  const uint32_t first = db.writer().Stats().per_segment.front().id;
  REQUIRE(db.writer().Stats().per_segment.size() == 2);
  REQUIRE(db.Delete("victim").status.ok());
  for (int round = 0; round < 6; ++round)
    for (int i = 0; i < 20; ++i)
      REQUIRE(db.Put("churn" + std::to_string(i), MakeValue("c", round * 100 + i, 200, false)).status.ok());

  Compactor c(db.writer(), Unthrottled());
  PassReport r;
  REQUIRE(c.RunOnce(&r).ok());
  REQUIRE(r.deleted > 0);
  REQUIRE(c.stats().tombstones_kept == 1);  // the first segment still holds victim's put
  REQUIRE(db.writer().Stats().per_segment.front().id == first);
  REQUIRE(db.Get("victim").status().Is(Code::kNotFound));
  REQUIRE(db.Open().ok());  // recovery must not resurrect it from the first segment
  REQUIRE(db.Get("victim").status().Is(Code::kNotFound));

  // Once the first segment is compacted too, nothing can resurrect the key: the tombstone may go.
  CompactionOptions all = Unthrottled();
  all.pick_all = true;
  Compactor c2(db.writer(), all);
  REQUIRE(c2.RunOnce().ok());
  REQUIRE(c2.RunOnce().ok());
  REQUIRE(c2.stats().tombstones_dropped >= 1);
  REQUIRE(db.Get("victim").status().Is(Code::kNotFound));
  REQUIRE(db.Open().ok());
  REQUIRE(db.Get("victim").status().Is(Code::kNotFound));
  for (int i = 0; i < 30; ++i) REQUIRE(db.Get("stable" + std::to_string(i)).ok());
}

TEST_CASE("ENOSPC while writing an output removes it, keeps the inputs, and a later pass succeeds",
          "[engine][compaction][faults]") {
  const uint64_t nth = GENERATE(1, 2, 3);
  TempDir dir;
  FaultInjectionEnv env;
  Options o;
  o.compression_level = 0;
  o.segment_bytes = 64 << 10;
  TestDb db(env, dir.path(), o);
  REQUIRE(db.Open().ok());
  Model model;
  std::vector<std::string> keys;
  for (int round = 0; round < 4; ++round)
    for (int i = 0; i < 300; ++i) {
      const std::string k = "key" + std::to_string(i);
      if (round == 0) keys.push_back(k);
      // Keys 0..99 stop being overwritten after round 0, so old segments keep live records to copy.
      if (round > 0 && i < 100) continue;
      std::string v = MakeValue(k, round, 150 + i % 50, false);
      WriteResult w = db.Put(k, v);
      REQUIRE(w.status.ok());
      model[k] = ModelEntry{v, w.seq};
    }
  const auto files_before = SegmentFiles(dir.path());
  CompactionOptions co = Unthrottled();
  co.pick_all = true;
  Compactor c(db.writer(), co);
  env.FailNth(FaultOp::kWrite, nth, Code::kNoSpace, false, "!MANIFEST");  // the output's writes
  PassReport r;
  Status s = c.RunOnce(&r);
  REQUIRE(env.FaultsFired() == 1);
  REQUIRE(s.Is(Code::kNoSpace));
  REQUIRE_FALSE(HasTmpFiles(dir.path()));
  CheckModel(db, model, keys);
  env.ClearFaults();
  REQUIRE(db.Open().ok());
  CheckModel(db, model, keys);
  Compactor c2(db.writer(), co);
  REQUIRE(c2.RunOnce(&r).ok());
  REQUIRE(r.outputs > 0);
  CheckModel(db, model, keys);
  REQUIRE(SegmentFiles(dir.path()) != files_before);
}

TEST_CASE("on a full disk compaction frees the space of dead segments without writing, then writes succeed",
          "[engine][compaction][faults]") {
  TempDir dir;
  FaultInjectionEnv env;
  Options o;
  o.compression_level = 0;
  o.segment_bytes = 32 << 10;
  TestDb db(env, dir.path(), o);
  REQUIRE(db.Open().ok());
  for (int i = 0; i < 400; ++i) REQUIRE(db.Put("k" + std::to_string(i % 50), MakeValue("k", i, 300, false)).status.ok());
  for (int i = 0; i < 50; ++i) REQUIRE(db.Delete("k" + std::to_string(i)).status.ok());
  // The disk is full: every write fails, and statvfs says there is no room.
  env.FailNth(FaultOp::kWrite, 1, Code::kNoSpace, /*forever=*/true);
  REQUIRE(db.Put("new", "value").status.Is(Code::kNoSpace));
  const uint64_t bytes_before = DirBytes(dir.path());
  const uint64_t writes_before = env.Calls(FaultOp::kWrite, "!MANIFEST");
  CompactionOptions co = Unthrottled();
  co.free_bytes = [](const std::string&) -> Result<uint64_t> { return uint64_t{0}; };
  Compactor c(db.writer(), co);
  PassReport r;
  Status s = c.RunOnce(&r);
  REQUIRE((s.ok() || s.Is(Code::kNoSpace)));
  REQUIRE(r.deleted > 0);
  REQUIRE(env.Calls(FaultOp::kWrite, "!MANIFEST") == writes_before);  // no segment or hint written
  REQUIRE(DirBytes(dir.path()) < bytes_before);
  for (int i = 0; i < 50; ++i) REQUIRE(db.Get("k" + std::to_string(i)).status().Is(Code::kNotFound));
  // Space is available again: writes succeed.
  env.ClearFaults();
  REQUIRE(db.Put("new", "value").status.ok());
  REQUIRE(db.Open().ok());
  REQUIRE(db.Get("new").ok());
  for (int i = 0; i < 50; ++i) REQUIRE(db.Get("k" + std::to_string(i)).status().Is(Code::kNotFound));
}

TEST_CASE("passes on the background thread run while the writer thread keeps writing",
          "[engine][compaction][thread]") {
  TempDir dir;
  Options o;
  o.segment_bytes = 16 << 10;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  CompactionOptions co = Unthrottled();
  Compactor c(db.writer(), co);
  CompactionThread t(c, 1);
  t.Start();
  Model model;
  std::vector<std::string> keys;
  std::mt19937_64 rng(5);
  for (int i = 0; i < 100; ++i) keys.push_back("key" + std::to_string(i));
  for (int step = 0; step < 6000; ++step) {
    const std::string& k = keys[rng() % keys.size()];
    if (rng() % 10 == 0) {
      WriteResult r = db.Delete(k);
      if (r.status.ok()) model.erase(k);
      else REQUIRE(r.status.Is(Code::kNotFound));
    } else {
      std::string v = MakeValue(k, step, 100 + rng() % 200, true);
      WriteResult r = db.Put(k, v);
      REQUIRE(r.status.ok());
      model[k] = ModelEntry{v, r.seq};
    }
    if (step % 500 == 0) t.Trigger();
  }
  // The background thread may not have run a pass yet (a loaded machine, a
  // sanitizer tree at low priority): trigger until one has compacted,
  // bounded at two minutes.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(2);
  while (c.stats().segments_compacted == 0 && std::chrono::steady_clock::now() < deadline) {
    t.Trigger();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  t.Stop();
  REQUIRE(c.stats().segments_compacted > 0);
  CheckModel(db, model, keys);
  REQUIRE(db.Open().ok());
  CheckModel(db, model, keys);
}

TEST_CASE("power loss after compaction passes, finished or failed at an fsync, loses no record",
          "[engine][compaction][power]") {
  // 0: clean passes; > 0: the fail-th fsync of the pass fails (EIO); -1: every
  // directory fsync fails from the pass on (nothing may be unlinked whose copy's
  // name is not durable).
  const int fail = GENERATE(0, 1, 2, -1);
  TempDir dir;
  FaultInjectionEnv env;
  Options o;
  o.compression_level = 0;
  o.segment_bytes = 16 << 10;
  TestDb db(env, dir.path(), o);
  REQUIRE(db.Open().ok());
  Model model;
  std::vector<std::string> keys;
  for (int i = 0; i < 80; ++i) keys.push_back("key" + std::to_string(i));
  std::mt19937_64 rng(fail);
  auto churn = [&](int steps, int base) {
    for (int step = 0; step < steps; ++step) {
      const std::string& k = keys[rng() % keys.size()];
      if (rng() % 8 == 0) {
        WriteResult r = db.Delete(k);
        if (r.status.ok()) model.erase(k);
        continue;
      }
      std::string v = MakeValue(k, base + step, 100 + rng() % 300, false);
      WriteResult r = db.Put(k, v);
      REQUIRE(r.status.ok());
      model[k] = ModelEntry{v, r.seq};
    }
  };
  churn(1500, 0);
  {
    Compactor c(db.writer(), Unthrottled());
    if (fail > 0) env.FailNth(FaultOp::kSync, static_cast<uint64_t>(fail), Code::kIOError);
    if (fail < 0) env.FailNth(FaultOp::kSyncDir, 1, Code::kIOError, /*forever=*/true);
    Status s = c.RunOnce();
    if (fail != 0) REQUIRE(env.FaultsFired() > 0);
    if (fail > 0) REQUIRE(s.Is(Code::kIOError));
    if (fail == 0) REQUIRE(s.ok());
    if (fail < 0) {
      // Power loss now, while the directory was never synced after the pass.
      db.Close();
      REQUIRE(env.DropUnsynced().ok());
      env.ClearFaults();
      REQUIRE(db.Open().ok());
      CheckModel(db, model, keys);
      return;
    }
    env.ClearFaults();
    churn(500, 10000);
    REQUIRE(c.RunOnce().ok());
  }
  CheckModel(db, model, keys);
  db.Close();
  REQUIRE(env.DropUnsynced().ok());
  REQUIRE(db.Open().ok());
  CheckModel(db, model, keys);
}

TEST_CASE("below the dead ratio nothing is compacted, unless free space runs low",
          "[engine][compaction][low_space]") {
  TempDir dir;
  Options o;
  o.compression_level = 0;
  o.segment_bytes = 8 << 10;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  Model model;
  std::vector<std::string> keys;
  for (int i = 0; i < 120; ++i) keys.push_back("key" + std::to_string(i));
  auto put = [&](const std::string& k, int version) {
    std::string v = MakeValue(k, version, 200, false);
    WriteResult r = db.Put(k, v);
    REQUIRE(r.status.ok());
    model[k] = ModelEntry{v, r.seq};
  };
  for (int i = 0; i < 120; ++i) put(keys[i], 1);
  for (int i = 0; i < 120; i += 3) put(keys[i], 2);  // every old segment about a third dead
  CompactionOptions co = Unthrottled();
  co.max_dead_fraction = 0;  // the threshold alone
  co.low_space_bytes = 1ull << 30;
  co.free_margin_bytes = 1 << 20;
  uint64_t free_bytes = 8ull << 30;
  co.free_bytes = [&](const std::string&) -> Result<uint64_t> { return free_bytes; };
  Compactor c(db.writer(), co);
  PassReport r;
  REQUIRE(c.RunOnce(&r).ok());
  REQUIRE(r.inputs == 0);
  free_bytes = 256ull << 20;  // below low_space_bytes, room for an output
  REQUIRE(c.RunOnce(&r).ok());
  REQUIRE(r.inputs > 0);
  REQUIRE(r.deleted > 0);
  REQUIRE(r.bytes_freed > 0);
  CheckModel(db, model, keys);
  REQUIRE(db.Open().ok());
  CheckModel(db, model, keys);
}

TEST_CASE("a pass that makes no progress is retried only after a back-off, unless explicitly requested",
          "[engine][compaction][thread]") {
  TempDir dir;
  Options o;
  o.compression_level = 0;
  o.segment_bytes = 16 << 10;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  // Half-dead segments whose live halves need copying.
  for (int i = 0; i < 200; ++i) REQUIRE(db.Put("k" + std::to_string(i), MakeValue("k", i, 200, false)).status.ok());
  for (int i = 0; i < 200; i += 2) REQUIRE(db.Put("k" + std::to_string(i), MakeValue("k", i, 200, false)).status.ok());
  // No room for any output: every pass picks segments and gets nowhere.
  CompactionOptions co = Unthrottled();
  co.free_bytes = [](const std::string&) -> Result<uint64_t> { return uint64_t{0}; };
  Compactor c(db.writer(), co);
  constexpr uint64_t kHour = 3600 * 1000;
  CompactionThread t(c, kHour, CompactionBackoff{kHour, kHour});
  t.Start();
  // Waits (bounded: tries x 5 ms) until n passes have run.
  const auto wait_for_passes = [&](uint64_t n, int tries) {
    for (int i = 0; i < tries && t.passes() < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  };
  t.Trigger();
  wait_for_passes(1, 24000);
  REQUIRE(t.passes() == 1);
  REQUIRE(t.fruitless() == 1);
  REQUIRE(c.stats().segments_compacted == 0);
  // Triggers (as the writer loop sends while the dead fraction stays high) wait for the back-off.
  for (int i = 0; i < 20; ++i) {
    t.Trigger();
    wait_for_passes(2 + static_cast<uint64_t>(i), 10);
  }
  REQUIRE(t.passes() == 1);
  // An explicit request runs at once.
  t.Trigger(/*force=*/true);
  wait_for_passes(2, 2000);
  REQUIRE(t.passes() == 2);
  REQUIRE(t.fruitless() == 2);
  t.Stop();
}

TEST_CASE("pinned segments are left for a pass after the pin, without backing compaction off",
          "[engine][compaction][thread][cut]") {
  // A pass that found only pinned segments to compact (an online backup's
  // cut, the key view's catch-up after an open) used to count as fruitless:
  // compaction, and the write stall with it, then backed off while writes
  // went on.
  TempDir dir;
  Options o;
  o.compression_level = 0;
  // Segments of 20 records: three rounds over 20 keys leave two sealed
  // segments with nothing live, then the cut pins them.
  o.segment_bytes = kSegmentHeaderBytes + 20 * (kRecordHeaderBytes + 3 + 300);
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  const auto key = [](int i) { return "k" + std::to_string(10 + i % 20); };
  for (int i = 0; i < 60; ++i) REQUIRE(db.Put(key(i), MakeValue("k", i, 300, false)).status.ok());
  size_t dead_sealed = 0;
  for (const SegmentStats& seg : db.writer().Stats().per_segment)
    if (!seg.active && seg.live_bytes == 0 && seg.dead_bytes > 0) ++dead_sealed;
  REQUIRE(dead_sealed >= 2);
  auto cut = db.writer().PinSegments();
  REQUIRE(cut.ok());
  const auto files = [&] { return SegmentFiles(dir.path()).size(); };
  const size_t before = files();
  constexpr uint64_t kHour = 3600 * 1000;
  Compactor c(db.writer(), Unthrottled());
  CompactionThread t(c, kHour, CompactionBackoff{kHour, kHour});
  t.Start();
  const auto wait_for_passes = [&](uint64_t n) {
    for (int i = 0; i < 2000 && t.passes() < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  };
  t.Trigger();
  wait_for_passes(1);
  REQUIRE(t.passes() == 1);
  REQUIRE(t.fruitless() == 0);
  REQUIRE(files() == before);  // the cut's files stay
  db.writer().UnpinSegmentIds(cut->ids());
  // Not forced: runs at once, no back-off stands in the way.
  t.Trigger();
  wait_for_passes(2);
  REQUIRE(t.passes() == 2);
  REQUIRE(t.progress_passes() == 1);
  REQUIRE(files() < before);
  t.Stop();
}

TEST_CASE("the segments a pass deletes are recorded in the MANIFEST with one fdatasync per batch, not one each",
          "[engine][compaction][faults]") {
  TempDir dir;
  FaultInjectionEnv env;
  Options o;
  o.compression_level = 0;
  o.segment_bytes = 8 << 10;
  TestDb db(env, dir.path(), o);
  REQUIRE(db.Open().ok());
  // Sixty-odd segments, then every key overwritten: all but the newest are wholly dead.
  for (int round = 0; round < 2; ++round)
    for (int i = 0; i < 1000; ++i)
      REQUIRE(db.Put("k" + std::to_string(i), MakeValue("k", round * 1000 + i, 200, false)).status.ok());
  const uint64_t syncs_before = env.Calls(FaultOp::kSync, "MANIFEST");
  Compactor c(db.writer(), Unthrottled());
  PassReport r;
  REQUIRE(c.RunOnce(&r).ok());
  const uint64_t syncs = env.Calls(FaultOp::kSync, "MANIFEST") - syncs_before;
  INFO("deleted " << r.deleted << ", MANIFEST fdatasyncs " << syncs);
  REQUIRE(r.deleted >= 20);
  REQUIRE(syncs <= r.deleted / 32 + 2);
  for (int i = 0; i < 1000; ++i) {
    auto got = db.Get("k" + std::to_string(i));
    REQUIRE(got.ok());
    uint64_t version = 0;
    REQUIRE(CheckValue("k", got.value(), &version));
    REQUIRE(version == 1000u + static_cast<uint64_t>(i));
  }
  REQUIRE(db.Open().ok());
  REQUIRE(db.writer().Stats().missing_segments == 0);
  REQUIRE(db.Get("k999").ok());
}

TEST_CASE("bytes_read counts what a pass reads: the bodies of dead puts are skipped, so not counted",
          "[engine][compaction][stats]") {
  TempDir dir;
  Options o;
  o.compression_level = 0;
  o.segment_bytes = 256 << 10;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  // Sealed segments of 16 KiB values, every one then overwritten by a
  // 20-byte value: the old segments hold nothing but dead bodies.
  for (int i = 0; i < 64; ++i) REQUIRE(db.Put("k" + std::to_string(i), MakeValue("k", i, 16 << 10, false)).status.ok());
  for (int i = 0; i < 64; ++i) REQUIRE(db.Put("k" + std::to_string(i), MakeValue("k", 100 + i, 20, false)).status.ok());
  uint64_t input_file_bytes = 0;
  for (const SegmentStats& s : db.writer().Stats().per_segment)
    if (!s.active && s.live_bytes == 0) input_file_bytes += s.bytes;
  REQUIRE(input_file_bytes >= 512u << 10);
  Compactor c(db.writer(), Unthrottled());
  PassReport r;
  REQUIRE(c.RunOnce(&r).ok());
  REQUIRE(r.deleted > 0);
  const CompactionStats st = c.stats();
  INFO("bytes read " << st.bytes_read << ", input file bytes " << input_file_bytes << ", deleted " << r.deleted);
  // What was read: segment headers and, per dead put, its header and key.
  REQUIRE(st.bytes_read > 0);
  REQUIRE(st.bytes_read <= uint64_t{r.inputs} * kSegmentHeaderBytes + 64 * (kRecordHeaderBytes + 8) +
                                 (db.writer().Stats().live_bytes));
  REQUIRE(st.bytes_read < input_file_bytes / 20);
}

// Segment and hint files in dir by inode and size: ids (so names) are
// reused, and so are inodes, but an output is smaller than its inputs.
static std::map<std::pair<ino_t, uint64_t>, uint64_t> SegmentAndHintFiles(const std::string& dir) {
  std::map<std::pair<ino_t, uint64_t>, uint64_t> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string ext = e.path().extension().string();
    if (ext != ".kxd" && ext != ".hint") continue;
    struct stat st {};
    REQUIRE(::stat(e.path().c_str(), &st) == 0);
    out[{st.st_ino, static_cast<uint64_t>(st.st_size)}] = static_cast<uint64_t>(st.st_size);
  }
  return out;
}

TEST_CASE("bytes_written counts the whole files a pass wrote: output segments and hints, headers and trailers "
          "included", "[engine][compaction][stats]") {
  TempDir dir;
  Options o;
  o.compression_level = 0;
  o.segment_bytes = 64 << 10;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  // Half of each sealed segment dead: a pass copies the other half into
  // outputs, each with its hint.
  for (int i = 0; i < 96; ++i) REQUIRE(db.Put("k" + std::to_string(i), MakeValue("k", i, 4000, false)).status.ok());
  for (int i = 0; i < 96; i += 2) REQUIRE(db.Delete("k" + std::to_string(i)).status.ok());
  const auto before = SegmentAndHintFiles(dir.path());
  Compactor c(db.writer(), Unthrottled());
  PassReport r;
  REQUIRE(c.RunOnce(&r).ok());
  REQUIRE(r.outputs > 0);
  uint64_t new_bytes = 0, new_files = 0;
  for (const auto& [file, bytes] : SegmentAndHintFiles(dir.path())) {
    if (before.count(file) != 0) continue;
    new_bytes += bytes;
    ++new_files;
  }
  const CompactionStats st = c.stats();
  INFO("outputs " << r.outputs << ", new files " << new_files);
  CHECK(new_files == 2 * uint64_t{r.outputs});  // each output with its hint
  CHECK(st.segments_written == r.outputs);
  CHECK(st.bytes_written == new_bytes);
}

TEST_CASE("a pass's counts appear in stats() together when it ends, never part of a pass",
          "[engine][compaction][stats]") {
  FaultInjectionEnv env;
  TempDir dir;
  Options o;
  o.compression_level = 0;
  o.segment_bytes = 64 << 10;
  TestDb db(env, dir.path(), o);
  REQUIRE(db.Open().ok());
  for (int i = 0; i < 96; ++i) REQUIRE(db.Put("k" + std::to_string(i), MakeValue("k", i, 4000, false)).status.ok());
  for (int i = 0; i < 96; i += 2) REQUIRE(db.Delete("k" + std::to_string(i)).status.ok());
  Compactor c(db.writer(), Unthrottled());
  // Taken on the pass's thread as it starts each output after the first:
  // the earlier outputs are installed and their inputs deleted by then.
  std::vector<CompactionStats> during;
  int outputs_started = 0;
  env.SetCreateHook([&](const std::string& path) {
    if (path.find("compact-") == std::string::npos) return;
    if (outputs_started++ > 0) during.push_back(c.stats());
  });
  PassReport r;
  REQUIRE(c.RunOnce(&r).ok());
  env.SetCreateHook(nullptr);
  REQUIRE(r.outputs >= 2);
  REQUIRE(!during.empty());
  for (const CompactionStats& st : during) {
    CHECK(st.passes == 0);
    CHECK(st.segments_written == 0);
    CHECK(st.segments_compacted == 0);
    CHECK(st.bytes_written == 0);
    CHECK(st.bytes_read == 0);
  }
  const CompactionStats st = c.stats();
  CHECK(st.passes == 1);
  CHECK(st.segments_written == r.outputs);
  CHECK(st.segments_compacted == r.deleted);
  CHECK(st.bytes_freed == r.bytes_freed);
}

TEST_CASE("a catch-up pass reclaims what a normal pass leaves: segments under the dead ratio until a tenth is "
          "reclaimable, and the active segment's dead records",
          "[engine][compaction][catch_up]") {
  TempDir dir;
  Options o;
  o.compression_level = 0;
  o.segment_bytes = 64 << 10;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  Model model;
  std::vector<std::string> keys;
  for (int i = 0; i < 600; ++i) keys.push_back("k" + std::to_string(i));
  const auto put = [&](int i, int version) {
    std::string v = MakeValue(keys[i], version, 200, false);
    WriteResult r = db.Put(keys[i], v);
    REQUIRE(r.status.ok());
    model[keys[i]] = ModelEntry{v, r.seq};
  };
  for (int i = 0; i < 600; ++i) put(i, 0);
  for (int i = 0; i < 600; i += 3) put(i, 1);
  // The active segment holds a quarter of a segment (what a catch-up pass
  // seals at these sizes) of new keys, a few of them then overwritten: dead
  // records under the ratio there too.
  const auto active = [&] { return ActiveSegment(db.writer()); };
  for (int n = 0; n < 1000 && active().bytes < (24 << 10); ++n) {
    keys.push_back("new" + std::to_string(n));
    put(static_cast<int>(keys.size()) - 1, 0);
  }
  for (size_t i = keys.size() - 30; i < keys.size(); ++i) put(static_cast<int>(i), 1);
  REQUIRE(active().bytes >= (20 << 10));
  REQUIRE(active().dead_bytes * 10 >= active().bytes);  // as dead as a catch-up pass picks
  // Every segment about a third dead: under the ratio, and no space bound.
  CompactionOptions co = Unthrottled();
  co.max_dead_fraction = 0;
  co.free_bytes = [](const std::string&) -> Result<uint64_t> { return uint64_t{8} << 30; };
  Compactor c(db.writer(), co);
  REQUIRE(c.RunOnce().ok());  // takes whatever passes the ratio
  const uint64_t dead_before = db.writer().Stats().dead_bytes;
  REQUIRE(dead_before > 20 * (200 + kRecordHeaderBytes));  // under-ratio segments and the active one
  REQUIRE(active().dead_bytes > 0);
  // On the thread, as the writer process asks for it while writes wait.
  CompactionThread t(c, 3600 * 1000);
  t.Start();
  const uint64_t seen = t.passes();
  t.TriggerCatchUp();
  for (int i = 0; i < 1000 && t.passes() == seen; ++i) t.WaitForPass(seen, 10);
  REQUIRE(t.passes() == seen + 1);
  REQUIRE(t.catch_up_counts().passes == 1);
  REQUIRE(t.catch_up_counts().progress == 1);
  t.Stop();
  const WriterStats after = db.writer().Stats();
  INFO("dead bytes before " << dead_before << ", after " << after.dead_bytes);
  uint64_t file_bytes = 0;
  for (const SegmentStats& seg : after.per_segment) file_bytes += seg.bytes;
  // The most profitable segments until a tenth at most is reclaimable.
  REQUIRE(after.dead_bytes * 10 <= file_bytes);
  REQUIRE(after.dead_bytes * 3 < dead_before);
  REQUIRE(active().dead_bytes == 0);  // sealed and compacted
  CheckModel(db, model, keys);
  REQUIRE(db.Open().ok());
  CheckModel(db, model, keys);
}

TEST_CASE("a catch-up pass leaves an active segment with a few dead bytes: it would copy its live records to free "
          "next to nothing",
          "[engine][compaction][catch_up]") {
  TempDir dir;
  Options o;
  o.compression_level = 0;
  o.segment_bytes = 64 << 10;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  const auto active = [&] { return ActiveSegment(db.writer()); };
  int n = 0;
  for (; n < 1000 && active().bytes < (24 << 10); ++n) {
    REQUIRE(db.Put("k" + std::to_string(n), MakeValue("k", n, 200, false)).status.ok());
  }
  REQUIRE(db.Put("k0", MakeValue("k", 0, 10, false)).status.ok());  // one record dead
  const SegmentStats before = active();
  REQUIRE(before.dead_bytes > 0);
  REQUIRE(before.dead_bytes * 10 < before.bytes);
  CompactionOptions co = Unthrottled();
  co.free_bytes = [](const std::string&) -> Result<uint64_t> { return uint64_t{8} << 30; };
  Compactor c(db.writer(), co);
  PassReport report;
  REQUIRE(c.RunOnce(&report, PassKind::kCatchUp).ok());
  CHECK(active().id == before.id);  // not sealed
  CHECK(report.outputs == 0);
  // Once a tenth of it is dead, it is.
  for (int i = 1; active().dead_bytes * 10 < active().bytes && i < n; ++i) {
    REQUIRE(db.Put("k" + std::to_string(i), MakeValue("k", i, 10, false)).status.ok());
  }
  REQUIRE(c.RunOnce(&report, PassKind::kCatchUp).ok());
  CHECK(active().id != before.id);
  CHECK(active().dead_bytes == 0);
}

namespace {

// Runs one unthrottled catch-up pass (free space unbounded) and returns the
// directory's largest size during it: an output's fdatasync comes after its
// last byte and before any input it completes is deleted, so the directory is
// at its largest then.
uint64_t CatchUpPeak(FaultInjectionEnv& env, TestDb& db, const std::string& dir, PassReport* report) {
  std::atomic<uint64_t> peak{DirBytes(dir)};
  env.SetSyncHook([&](const std::string& path) {
    if (path.find("compact-") == std::string::npos) return;
    const uint64_t now = DirBytes(dir);
    if (now > peak.load()) peak.store(now);
  });
  CompactionOptions co = Unthrottled();
  co.free_bytes = [](const std::string&) -> Result<uint64_t> { return uint64_t{8} << 30; };
  Compactor c(db.writer(), co);
  const Status s = c.RunOnce(report, PassKind::kCatchUp);
  env.SetSyncHook({});
  REQUIRE(s.ok());
  return peak.load();
}

}  // namespace

TEST_CASE("a catch-up pass holds the copies of one input at a time on top of its inputs, however large "
          "segments are",
          "[engine][compaction][catch_up]") {
  // Writes wait for a catch-up pass because the directory nears twice the
  // live data: copying every picked input's live records into one output
  // before deleting any input would put up to a whole copy of the live data
  // on top of it.
  FaultInjectionEnv env;
  TempDir dir;
  Model model;
  std::vector<std::string> keys;
  {
    // Four sealed segments of 45 records, each a third dead.
    Options small;
    small.compression_level = 0;
    small.segment_bytes = 45 * (4000 + 16 + kRecordHeaderBytes) + kSegmentHeaderBytes;
    TestDb fill(env, dir.path(), small);
    REQUIRE(fill.Open().ok());
    for (int round = 0; round < 4; ++round) {
      for (int i = 0; i < 45; ++i) {
        const std::string key = "r" + std::to_string(round) + "-" + std::to_string(i % 30);
        if (i < 30) keys.push_back(key);
        std::string v = MakeValue(key, i, 4000, false);
        WriteResult r = fill.Put(key, v);
        REQUIRE(r.status.ok());
        model[key] = ModelEntry{v, r.seq};
      }
    }
  }
  Options o;
  o.compression_level = 0;
  o.segment_bytes = 64 << 20;  // one output could hold every input
  TestDb db(env, dir.path(), o);
  REQUIRE(db.Open().ok());
  uint64_t largest_input_live = 0;
  size_t sealed = 0;
  for (const SegmentStats& seg : db.writer().Stats().per_segment) {
    if (seg.active || seg.live_bytes == 0) continue;
    ++sealed;
    INFO("segment " << seg.id << ": " << seg.bytes << " bytes, " << seg.dead_bytes << " dead");
    REQUIRE(seg.dead_bytes * 4 > seg.bytes);
    largest_input_live = std::max(largest_input_live, seg.live_bytes);
  }
  REQUIRE(sealed >= 3);

  const uint64_t before = DirBytes(dir.path());
  PassReport report;
  const uint64_t peak = CatchUpPeak(env, db, dir.path(), &report);
  REQUIRE(report.inputs >= 3);
  REQUIRE(report.deleted == report.inputs);
  INFO("directory " << before << " bytes before the pass, " << peak << " at its largest; largest input's live "
                    << largest_input_live);
  REQUIRE(peak > before);  // the hook saw the outputs
  REQUIRE(peak - before <= largest_input_live + kCatchUpFinishMinBytes);
  REQUIRE(DirBytes(dir.path()) < before);
  CheckModel(db, model, keys);
  REQUIRE(db.Open().ok());
  CheckModel(db, model, keys);
}

namespace {

// Sealed segments of some 20 uncompressed records of 4,000 B each, keys
// "k000", "k001" ... written in order, every record in the model: the
// database of the catch-up target cases. Put(i, version) writes key i.
struct RecordGrid {
  static Options GridOptions() {
    Options o;
    o.compression_level = 0;
    o.segment_bytes = 20 * RecordBytes(4, 0, 4000) + kSegmentHeaderBytes;
    return o;
  }
  static std::string Key(int i) {
    const std::string n = std::to_string(i);
    return "k" + std::string(3 - std::min<size_t>(3, n.size()), '0') + n;
  }
  explicit RecordGrid(int segments) {
    REQUIRE(db.Open().ok());
    keys.push_back(Key(0));
    Put(0, 0);
    record = ActiveSegment(db.writer()).bytes - kSegmentHeaderBytes;
    per_segment = static_cast<int>((o.segment_bytes - kSegmentHeaderBytes) / record);
    for (int i = 1; i < segments * per_segment; ++i) {
      keys.push_back(Key(i));
      Put(i, 0);
    }
  }
  void Put(int i, int version) {
    std::string v = MakeValue(Key(i), version, 4000, false);
    WriteResult r = db.Put(Key(i), v);
    REQUIRE(r.status.ok());
    model[Key(i)] = ModelEntry{v, r.seq};
  }

  TempDir dir;
  Options o = GridOptions();
  TestDb db{PosixEnv(), dir.path(), o};
  Model model;
  std::vector<std::string> keys;
  uint64_t record = 0;  // bytes of one record
  int per_segment = 0;  // records per segment
};

}  // namespace

TEST_CASE("a catch-up pass's reclaimable target copies no segment that frees little of what it copies",
          "[engine][compaction][catch_up]") {
  // Writes waiting for room (the write stall's target of 0 reclaimable
  // bytes) used to make a catch-up pass copy every segment with a dead
  // record, however little it freed: here eight segments about a twentieth
  // dead, each some 18 records copied for one freed. Now only the segment
  // about a fifth dead is copied for the target; the thin ones are left
  // until they are dead enough.
  constexpr int kSegments = 9;
  RecordGrid g(kSegments);
  auto& [dir, o, db, model, keys, record, per_segment] = g;
  const auto put = [&g](int i, int version) { g.Put(i, version); };
  // One record of each of the first eight segments overwritten; four of the last.
  for (int seg = 0; seg < kSegments - 1; ++seg) put(seg * per_segment, 1);
  for (int i = 0; i < 4; ++i) put((kSegments - 1) * per_segment + i, 1);
  const WriterStats before = db.writer().Stats();
  uint64_t sealed_bytes = 0, sealed_dead = 0;
  std::vector<uint32_t> thin;
  uint32_t worth = 0;
  for (const SegmentStats& seg : before.per_segment) {
    if (seg.active) continue;
    INFO("segment " << seg.id << ": " << seg.live_bytes << " live, " << seg.dead_bytes << " dead");
    REQUIRE(seg.dead_bytes > 0);
    REQUIRE(seg.dead_bytes * 2 < seg.bytes);  // under the dead ratio: no threshold pick
    sealed_bytes += seg.bytes;
    sealed_dead += seg.dead_bytes;
    if (seg.dead_bytes * 10 < seg.bytes) {
      thin.push_back(seg.id);
    } else {
      REQUIRE(worth == 0);
      worth = seg.id;
    }
  }
  REQUIRE(thin.size() == kSegments - 1);
  REQUIRE(worth != 0);
  REQUIRE(sealed_dead * 10 < sealed_bytes);  // under the tenth: no space-bound pick in a catch-up pass

  CompactionOptions co = Unthrottled();
  co.free_bytes = [](const std::string&) -> Result<uint64_t> { return uint64_t{8} << 30; };
  Compactor c(db.writer(), co);
  c.SetCatchUpTarget(0);
  PassReport report;
  REQUIRE(c.RunOnce(&report, PassKind::kCatchUp).ok());
  CHECK(report.inputs == 1);
  CHECK(report.deleted == 1);
  std::set<uint32_t> left;
  for (const SegmentStats& seg : db.writer().Stats().per_segment) left.insert(seg.id);
  CHECK(left.count(worth) == 0);
  for (uint32_t id : thin) CHECK(left.count(id) == 1);
  // What it wrote is the worthwhile segment's live records, one segment at most.
  const CompactionStats st = c.stats();
  INFO("bytes written " << st.bytes_written);
  CHECK(st.bytes_written <= o.segment_bytes);
  // Nothing worth copying is left: the next pass for the target picks nothing.
  REQUIRE(c.RunOnce(&report, PassKind::kCatchUp).ok());
  CHECK(report.inputs == 0);
  CheckModel(db, model, keys);
  REQUIRE(db.Open().ok());
  CheckModel(db, model, keys);
}

TEST_CASE("a catch-up pass copies nothing once the reclaimable bytes are within its target, and only what it "
          "needs to get there",
          "[engine][compaction][catch_up]") {
  // Eight sealed segments a fifth dead: under the dead ratio and under the
  // space bound, so a normal pass leaves them. A catch-up pass whose target
  // is met copies nothing (writes wait for no more room); one whose target
  // is a few records away copies the most profitable segment alone.
  constexpr int kSegments = 8;
  RecordGrid g(kSegments);
  auto& [dir, o, db, model, keys, record, per_segment] = g;
  const auto put = [&g](int i, int version) { g.Put(i, version); };
  // A fifth of each segment overwritten, the last one's records first.
  for (int seg = kSegments - 1; seg >= 0; --seg) {
    for (int i = 0; i < per_segment / 5; ++i) put(seg * per_segment + i, 1);
  }
  uint64_t sealed_bytes = 0, sealed_dead = 0;
  for (const SegmentStats& seg : db.writer().Stats().per_segment) {
    INFO("segment " << seg.id << ": " << seg.live_bytes << " live, " << seg.dead_bytes << " dead");
    if (seg.active) {
      REQUIRE(seg.dead_bytes == 0);  // nothing for the pass to seal
      continue;
    }
    sealed_bytes += seg.bytes;
    sealed_dead += seg.dead_bytes;
    REQUIRE(seg.dead_bytes * 2 < seg.bytes);  // under the dead ratio
  }
  REQUIRE(sealed_dead * 4 < sealed_bytes);   // under the space bound
  REQUIRE(sealed_dead * 10 > sealed_bytes);  // with more than a tenth to reclaim

  CompactionOptions co = Unthrottled();
  co.free_bytes = [](const std::string&) -> Result<uint64_t> { return uint64_t{8} << 30; };
  Compactor c(db.writer(), co);
  const uint64_t reclaimable = db.writer().Stats().dead_bytes;
  c.SetCatchUpTarget(reclaimable);
  PassReport report;
  REQUIRE(c.RunOnce(&report, PassKind::kCatchUp).ok());
  CHECK(report.inputs == 0);
  CHECK(c.stats().bytes_written == 0);
  // Three records more than the target: one segment (four dead records) is enough.
  c.SetCatchUpTarget(reclaimable - 3 * record);
  REQUIRE(c.RunOnce(&report, PassKind::kCatchUp).ok());
  CHECK(report.inputs == 1);
  CHECK(report.deleted == 1);
  CHECK(db.writer().Stats().dead_bytes <= reclaimable - 3 * record);
  CheckModel(db, model, keys);
  REQUIRE(db.Open().ok());
  CheckModel(db, model, keys);
}

namespace {

// Three segments of RecordGrid records (the third active), six of the
// second's deleted: it holds more than a quarter of the live data, under a
// third of it dead (under the dead ratio), and the sealed bytes are more
// than a tenth reclaimable, so a catch-up pass's space bound picks it alone.
struct LargeSegmentGrid {
  LargeSegmentGrid() {
    per_segment = g.per_segment;
    for (int i = 0; i < 6; ++i) {
      const std::string k = RecordGrid::Key(per_segment + i);
      REQUIRE(g.db.Delete(k).status.ok());
      g.model.erase(k);
    }
    uint64_t sealed_bytes = 0, sealed_dead = 0;
    for (const SegmentStats& seg : g.db.writer().Stats().per_segment) {
      INFO("segment " << seg.id << ": " << seg.live_bytes << " live, " << seg.dead_bytes << " dead");
      live += seg.live_bytes;
      reclaimable += seg.dead_bytes;
      if (seg.active) continue;
      sealed_bytes += seg.bytes;
      sealed_dead += seg.dead_bytes;
      if (seg.dead_bytes > 0) {
        REQUIRE(large == 0);
        large = seg.id;
        large_live = seg.live_bytes;
        REQUIRE(seg.dead_bytes * 2 < seg.bytes);  // under the dead ratio
      }
    }
    REQUIRE(large != 0);
    REQUIRE(sealed_dead * 10 > sealed_bytes);   // a catch-up pass's space bound picks
    REQUIRE(large_live > live / kMaxActiveShare);  // more than a quarter of the live data
    REQUIRE_FALSE(LargeCopyNeeded(live, reclaimable, 1));  // within the stall's end bound: the fit decides
  }
  // Staged bytes with which its copy just fits beside the reclaimable bytes
  // (a stall floor of 1 byte: the begin bound is half the live data).
  uint64_t FittingStaged() const {
    const uint64_t room = WriteStallBoundsFor(live, 1).begin_bytes + live / kMaxActiveShare;
    REQUIRE(room > reclaimable + large_live);
    return room - reclaimable - large_live;
  }
  uint32_t Remaining(uint32_t id) {
    for (const SegmentStats& seg : g.db.writer().Stats().per_segment)
      if (seg.id == id) return 1;
    return 0;
  }

  RecordGrid g{3};
  int per_segment = 0;
  uint64_t live = 0, reclaimable = 0;
  uint32_t large = 0;  // the second segment
  uint64_t large_live = 0;
};

}  // namespace

TEST_CASE("beside a write stall a catch-up pass copies a segment holding more than a quarter of the live data only "
          "while its copy fits beside the reclaimable and staged bytes, checked when picked and when its turn comes",
          "[engine][compaction][catch_up]") {
  // Its copy stands beside it until it is deleted: on top of the dead bytes
  // and staged uploads the write stall lets stand, a copy of more than a
  // quarter of the live data takes the directory past the stall's arithmetic
  // (and past twice the live data). It is made only while it fits.
  LargeSegmentGrid l;
  const uint64_t fits = l.FittingStaged();
  CompactionOptions co = Unthrottled();
  co.free_bytes = [](const std::string&) -> Result<uint64_t> { return uint64_t{8} << 30; };
  co.stall_floor_bytes = 1;
  std::vector<uint64_t> staged;  // what staged_bytes answers, call by call (then the last)
  size_t calls = 0;
  co.staged_bytes = [&] { return staged[std::min(calls++, staged.size() - 1)]; };
  PassReport report;
  SECTION("too much staged beside it when the pass picks: not picked") {
    staged = {fits + 1};
    Compactor c(l.g.db.writer(), co);
    c.SetCatchUpTarget(0);
    REQUIRE(c.RunOnce(&report, PassKind::kCatchUp).ok());
    CHECK(report.inputs == 0);
    CHECK(c.stats().bytes_written == 0);
    CHECK(l.Remaining(l.large) == 1);
  }
  SECTION("too much staged beside it when its turn comes: picked, left, nothing written") {
    staged = {fits, fits + 1};
    Compactor c(l.g.db.writer(), co);
    c.SetCatchUpTarget(0);
    REQUIRE(c.RunOnce(&report, PassKind::kCatchUp).ok());
    CHECK(report.inputs == 1);
    CHECK(report.deleted == 0);
    CHECK(c.stats().bytes_written == 0);
    CHECK(l.Remaining(l.large) == 1);
  }
  SECTION("once it fits it is copied and deleted") {
    staged = {fits};
    Compactor c(l.g.db.writer(), co);
    c.SetCatchUpTarget(0);
    REQUIRE(c.RunOnce(&report, PassKind::kCatchUp).ok());
    CHECK(report.inputs == 1);
    CHECK(report.deleted == 1);
    CHECK(l.Remaining(l.large) == 0);
  }
  SECTION("without a write stall (kingx-tool) it is copied as any other") {
    co.stall_floor_bytes = 0;
    staged = {l.live};
    Compactor c(l.g.db.writer(), co);
    c.SetCatchUpTarget(0);
    REQUIRE(c.RunOnce(&report, PassKind::kCatchUp).ok());
    CHECK(report.deleted == 1);
  }
  CheckModel(l.g.db, l.g.model, l.g.keys);
  REQUIRE(l.g.db.Open().ok());
  CheckModel(l.g.db, l.g.model, l.g.keys);
}

TEST_CASE("a pass announces its copy (the output plus the live bytes of the input it copies) before the output "
          "exists, and no copy once it is installed",
          "[engine][compaction][catch_up]") {
  // The write stall counts the copy in flight in its backlog from its start:
  // a gauge that followed the output's bytes would show it only as it grows.
  LargeSegmentGrid l;
  CompactionOptions co = Unthrottled();
  // Asked when the pass starts and before each output is created: what the
  // gauge reads then.
  std::vector<uint64_t> seen;
  const Compactor* compactor = nullptr;
  co.free_bytes = [&](const std::string&) -> Result<uint64_t> {
    seen.push_back(compactor->copy_bytes());
    return uint64_t{8} << 30;
  };
  Compactor c(l.g.db.writer(), co);
  compactor = &c;
  CHECK(c.copy_bytes() == 0);
  c.SetCatchUpTarget(0);
  PassReport report;
  REQUIRE(c.RunOnce(&report, PassKind::kCatchUp).ok());
  CHECK(report.deleted == 1);
  CHECK(report.outputs == 1);
  REQUIRE(seen.size() == 2);
  CHECK(seen[0] == 0);
  CHECK(seen[1] == l.large_live);
  CHECK(c.copy_bytes() == 0);
  CheckModel(l.g.db, l.g.model, l.g.keys);
}

TEST_CASE("the active segment is sealed once it holds more than a quarter of the live data, so a catch-up "
          "pass never copies most of the data beside its input, however large segments are",
          "[engine][compaction][catch_up]") {
  // With segments far larger than the database, the active segment used to
  // collect all of it: compacting it, once dead enough, put a copy of most of
  // the live data on top of it.
  FaultInjectionEnv env;
  TempDir dir;
  Options o;
  o.compression_level = 0;
  o.segment_bytes = 256 << 20;
  TestDb db(env, dir.path(), o);
  REQUIRE(db.Open().ok());
  Model model;
  std::vector<std::string> keys;
  const auto put = [&](size_t i, int version) {
    std::string v = MakeValue(keys[i], version, 64 << 10, false);
    WriteResult r = db.Put(keys[i], v);
    REQUIRE(r.status.ok());
    model[keys[i]] = ModelEntry{v, r.seq};
  };
  for (int i = 0; i < 64; ++i) {
    keys.push_back("k" + std::to_string(i));
    put(keys.size() - 1, 0);
  }
  std::mt19937 rng(11);
  for (int n = 0; n < 40; ++n) put(rng() % keys.size(), 1 + n);
  const WriterStats stats = db.writer().Stats();
  size_t segments = 0;
  uint64_t largest_live = 0;
  for (const SegmentStats& seg : stats.per_segment) {
    INFO("segment " << seg.id << ": " << seg.live_bytes << " live of " << stats.live_bytes);
    CHECK(seg.live_bytes * 3 <= stats.live_bytes);
    largest_live = std::max(largest_live, seg.live_bytes);
    ++segments;
  }
  REQUIRE(segments >= 4);

  const uint64_t before = DirBytes(dir.path());
  PassReport report;
  const uint64_t peak = CatchUpPeak(env, db, dir.path(), &report);
  REQUIRE(report.inputs >= 1);
  INFO("directory " << before << " bytes before the pass, " << peak << " at its largest; live " << stats.live_bytes);
  REQUIRE(peak - before <= largest_live + kCatchUpFinishMinBytes);
  REQUIRE(peak - before <= stats.live_bytes / 3);
  CheckModel(db, model, keys);
  REQUIRE(db.Open().ok());
  CheckModel(db, model, keys);
}

TEST_CASE("a small, mostly overwritten database rotates its active segment once per MiB written at most",
          "[engine][compaction]") {
  TempDir dir;
  Options o;
  o.compression_level = 0;
  o.segment_bytes = 256 << 20;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  uint64_t written = 0;
  for (int n = 0; n < 4200; ++n) {
    const std::string key = "k" + std::to_string(n % 10);
    const std::string v = MakeValue(key, n, 1000, false);
    REQUIRE(db.Put(key, v).status.ok());
    written += v.size() + key.size() + kRecordHeaderBytes;
  }
  const size_t segments = db.writer().Stats().per_segment.size();
  INFO(written << " bytes written into " << segments << " segments");
  REQUIRE(segments <= written / (1 << 20) + 1);
  REQUIRE(segments >= 2);
}

namespace {

// A database in segments far larger than it, written records of a MiB.
struct MiBRecords {
  static Options MiBOptions() {
    Options o;
    o.compression_level = 0;
    o.segment_bytes = 256 << 20;
    return o;
  }
  MiBRecords() {
    REQUIRE(db.Open().ok());
    REQUIRE(db.Put("k0", value).status.ok());
    record = db.writer().Stats().live_bytes;  // a record's bytes, as the writer counts them
  }
  // Puts k1 .. k(n - 1), one at a time.
  void PutUpTo(int n) {
    for (int i = 1; i < n; ++i) REQUIRE(db.Put("k" + std::to_string(i), value).status.ok());
  }
  void CheckNoSegmentHoldsTwo() {
    const WriterStats stats = db.writer().Stats();
    for (const SegmentStats& seg : stats.per_segment) {
      INFO("segment " << seg.id << " holds " << seg.live_bytes << " live of " << stats.live_bytes << " (records of "
                      << record << ")");
      CHECK(seg.live_bytes < 2 * record);
    }
  }

  TempDir dir;
  TestDb db{PosixEnv(), dir.path(), MiBOptions()};
  const std::string value = std::string(1 << 20, 'v');
  uint64_t record = 0;
};

}  // namespace

TEST_CASE("records of a MiB get a segment of their own while two of them would pass a quarter of the live data",
          "[engine][compaction]") {
  // Sealed once it already held more than a quarter, the active segment
  // took a second (or third) such record whenever the first alone was
  // within the share: once the live data shrank (deletes, smaller
  // overwrites), that segment held most of it, and its copy, beside a
  // backlog near the write stall's begin bound, took the directory past
  // twice the live data.
  MiBRecords m;
  // Up to 7 of them: two in one segment would pass a quarter of the live data.
  m.PutUpTo(7);
  m.CheckNoSegmentHoldsTwo();
  CHECK(m.db.Get("k6").value() == m.value);
  REQUIRE(m.db.Open().ok());
  CHECK(m.db.Get("k4").value() == m.value);
}

TEST_CASE("records of a MiB in one batch get a segment of their own while two of them would pass a quarter of the "
          "live data",
          "[engine][compaction]") {
  // The records earlier in a batch are in no live count until it is
  // published: measured without them, a batch of three such records went
  // into one segment beside 5 MiB of live data.
  MiBRecords m;
  m.PutUpTo(5);
  const std::vector<std::string> keys = {"b0", "b1", "b2"};
  std::vector<WriteOp> ops(keys.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    ops[i].key = keys[i];
    ops[i].stored = m.value;
    ops[i].raw_len = m.value.size();
  }
  std::vector<WriteResult> results(ops.size());
  m.db.writer().Apply(ops, results);
  for (const WriteResult& r : results) REQUIRE(r.status.ok());
  m.CheckNoSegmentHoldsTwo();
  CHECK(m.db.Get("b2").value() == m.value);
}

TEST_CASE("a dead-only pass deletes the sealed segments a durable write left with nothing live, and nothing else",
          "[engine][compaction]") {
  TempDir dir;
  Options o;
  o.compression_level = 0;
  o.segment_bytes = 256 << 20;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  // Each value over a MiB ends up alone in its segment (RotateActiveForShare).
  const std::string big(3 << 19, 'b');
  for (int i = 0; i < 4; ++i) REQUIRE(db.Put("big" + std::to_string(i), big).status.ok());
  REQUIRE(db.Put("small", "s").status.ok());
  REQUIRE(db.Put("small", "t").status.ok());  // a dead record in the active segment
  const uint64_t emptied = db.writer().emptied_segments();
  const WriterStats before = db.writer().Stats();
  // A cut's pin keeps the writes from deleting the segments they empty
  // (engine/writer_emptied.cc): they are left to the dead-only pass.
  auto cut = db.writer().PinSegments();
  REQUIRE(cut.ok());
  REQUIRE(db.Put("big1", "now small").status.ok());
  REQUIRE(db.Delete("big2").status.ok());
  REQUIRE(db.writer().emptied_segments() == emptied + 2);
  db.writer().UnpinSegmentIds(cut->ids());
  const uint64_t dir_before = DirBytes(dir.path());

  Compactor c(db.writer(), Unthrottled());
  PassReport report;
  REQUIRE(c.RunOnce(&report, PassKind::kDeadOnly).ok());
  CHECK(report.inputs == 2);
  CHECK(report.deleted == 2);
  CHECK(report.outputs == 0);
  const WriterStats after = db.writer().Stats();
  CHECK(after.segments == before.segments - 2);  // the active segment was not sealed
  CHECK(DirBytes(dir.path()) + 2 * big.size() <= dir_before);
  for (const SegmentStats& seg : after.per_segment) CHECK((seg.active || seg.live_bytes > 0));
  CHECK(db.Get("big0").value() == big);
  CHECK(db.Get("big1").value() == "now small");
  CHECK(db.Get("big2").status().Is(Code::kNotFound));
  CHECK(db.Get("big3").value() == big);
  REQUIRE(db.Open().ok());
  CHECK(db.Get("big1").value() == "now small");
  CHECK(db.Get("big2").status().Is(Code::kNotFound));
  CHECK(db.Get("big3").value() == big);
}

TEST_CASE("a dead-only pass deletes nothing when writes are not durable when answered",
          "[engine][compaction]") {
  TempDir dir;
  Options o;
  o.compression_level = 0;
  o.segment_bytes = 256 << 20;
  o.sync = SyncMode::kNone;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  const std::string big(3 << 19, 'b');
  for (int i = 0; i < 2; ++i) REQUIRE(db.Put("big" + std::to_string(i), big).status.ok());
  REQUIRE(db.Put("big0", "small").status.ok());
  REQUIRE(db.writer().emptied_segments() >= 1);
  Compactor c(db.writer(), Unthrottled());
  PassReport report;
  REQUIRE(c.RunOnce(&report, PassKind::kDeadOnly).ok());
  CHECK(report.inputs == 0);
}

TEST_CASE("a dead-only pass beside a running pass deletes the dead segments that pass did not pick, and leaves it "
          "its inputs and a tombstone that may have to stay",
          "[engine][compaction]") {
  FaultInjectionEnv env;
  TempDir dir;
  Options o;
  o.compression_level = 0;
  o.segment_bytes = 64 << 10;
  TestDb db(env, dir.path(), o);
  REQUIRE(db.Open().ok());
  REQUIRE(db.Put("x", std::string(200, 'x')).status.ok());
  for (int i = 0; i < 600; ++i) REQUIRE(db.Put("k" + std::to_string(i), std::string(200, 'a')).status.ok());
  for (int i = 0; i < 600; i += 2) REQUIRE(db.Put("k" + std::to_string(i), std::string(200, 'b')).status.ok());
  std::set<uint32_t> before;  // every segment the pass can pick from
  for (const SegmentStats& s : db.writer().Stats().per_segment) before.insert(s.id);
  auto gate = std::make_unique<SyncGate>(env, "compact-");  // holds the pass in its output's fdatasync
  CompactionOptions co = Unthrottled();
  co.free_bytes = [](const std::string&) -> Result<uint64_t> { return uint64_t{8} << 30; };
  auto c = std::make_unique<Compactor>(db.writer(), co);
  Status catch_up;
  std::thread t([&] { catch_up = c->RunOnce(nullptr, PassKind::kCatchUp); });
  REQUIRE(gate->WaitEntered(1));
  // While the pass waits in its output's sync: a tombstone whose key has no
  // newer put, then segments whose every record the writes below kill (the
  // tombstones of m0..m9 get newer puts), and every input of the pass dead.
  REQUIRE(db.Delete("x").status.ok());
  uint32_t tombstone_segment = 0;
  for (const SegmentStats& s : db.writer().Stats().per_segment)
    if (s.active) tombstone_segment = s.id;
  for (int i = 0; i < 600; ++i) REQUIRE(db.Put("m" + std::to_string(i), std::string(200, 'a')).status.ok());
  for (int i = 0; i < 10; ++i) REQUIRE(db.Delete("m" + std::to_string(i)).status.ok());
  for (int i = 0; i < 600; ++i) REQUIRE(db.Put("m" + std::to_string(i), std::string(200, 'c')).status.ok());
  for (int i = 0; i < 600; ++i) REQUIRE(db.Put("k" + std::to_string(i), std::string(200, 'c')).status.ok());
  std::set<uint32_t> dead_new;  // dead, born after the pass picked (or active then), no tombstone to keep
  for (const SegmentStats& s : db.writer().Stats().per_segment)
    if (!s.active && s.live_bytes == 0 && before.count(s.id) == 0 && s.id != tombstone_segment) dead_new.insert(s.id);
  REQUIRE(!dead_new.empty());

  PassReport report;
  // It left the running pass's inputs (all dead now) and the tombstone's segment: the caller tries again.
  CHECK(c->RunOnce(&report, PassKind::kDeadOnly).Is(Code::kBusy));
  CHECK(report.deleted >= dead_new.size());
  for (const uint32_t id : dead_new) CHECK_FALSE(std::filesystem::exists(dir.path() + "/" + SegmentFileName(id)));
  CHECK(std::filesystem::exists(dir.path() + "/" + SegmentFileName(tombstone_segment)));
  uint32_t dead_left = 0;
  for (const SegmentStats& s : db.writer().Stats().per_segment) {
    if (s.active || s.live_bytes != 0) continue;
    ++dead_left;
    CHECK((before.count(s.id) != 0 || s.id == tombstone_segment));
  }
  CHECK(dead_left > 1);  // the pass's inputs are its own
  gate->Open();
  t.join();
  gate.reset();
  REQUIRE(catch_up.ok());
  CHECK(c->RunOnce(nullptr, PassKind::kDeadOnly).ok());
  c.reset();
  REQUIRE(db.Open().ok());  // the tombstone of x kept what it must
  CHECK(db.Get("x").status().Is(Code::kNotFound));
  for (int i = 0; i < 600; ++i) {
    CHECK(db.Get("m" + std::to_string(i)).value() == std::string(200, 'c'));
    CHECK(db.Get("k" + std::to_string(i)).value() == std::string(200, 'c'));
  }
}

TEST_CASE("a dead-only pass beside a running pass drops at once the kept tombstone bytes of an output it deletes",
          "[engine][compaction]") {
  // They used to stay in the compactor's state until a later pass began,
  // counted as bytes no pass could reclaim (the write stall then held less).
  FaultInjectionEnv env;
  TempDir dir;
  Options o;
  o.compression_level = 0;
  o.segment_bytes = 64 << 10;
  TestDb db(env, dir.path(), o);
  REQUIRE(db.Open().ok());
  const auto active_id = [&] { return ActiveSegment(db.writer()).id; };
  REQUIRE(db.Put("t", std::string(200, 't')).status.ok());
  for (int i = 0; i < 600; ++i) REQUIRE(db.Put("k" + std::to_string(i), std::string(200, 'a')).status.ok());
  // A segment holding t's tombstone and puts that are overwritten after it:
  // a pass keeps the tombstone (t's older put is in a segment it keeps).
  REQUIRE(db.Delete("t").status.ok());
  const uint32_t tombstone_segment = active_id();
  int s_keys = 0;
  for (; s_keys < 1000 && active_id() == tombstone_segment; ++s_keys)
    REQUIRE(db.Put("s" + std::to_string(s_keys), std::string(200, 'a')).status.ok());
  for (int i = 0; i < s_keys; ++i) REQUIRE(db.Put("s" + std::to_string(i), std::string(200, 'b')).status.ok());
  CompactionOptions co = Unthrottled();
  co.free_bytes = [](const std::string&) -> Result<uint64_t> { return uint64_t{8} << 30; };
  auto c = std::make_unique<Compactor>(db.writer(), co);
  std::set<uint32_t> before;
  for (const SegmentStats& s : db.writer().Stats().per_segment) before.insert(s.id);
  REQUIRE(c->RunOnce().ok());
  REQUIRE(c->stats().kept_tombstone_bytes == RecordBytes(1, 0, 0));
  std::set<uint32_t> outputs;  // one of them holds the kept tombstone
  for (const SegmentStats& s : db.writer().Stats().per_segment)
    if (!s.active && before.count(s.id) == 0) outputs.insert(s.id);
  REQUIRE(!outputs.empty());

  // A pass held in its output's fdatasync: half the k keys overwritten give it work.
  for (int i = 0; i < 600; i += 2) REQUIRE(db.Put("k" + std::to_string(i), std::string(200, 'b')).status.ok());
  auto gate = std::make_unique<SyncGate>(env, "compact-");  // holds the pass in its output's fdatasync
  Status running;
  std::thread t([&] { running = c->RunOnce(); });
  REQUIRE(gate->WaitEntered(1));
  // Now, so that the running pass did not pick them: the outputs' copies
  // (of s keys and of k keys that shared the tombstone's segment) die, and
  // so may the tombstone.
  for (int i = 0; i < s_keys; ++i) REQUIRE(db.Put("s" + std::to_string(i), std::string(200, 'c')).status.ok());
  for (int i = 0; i < 600; ++i) REQUIRE(db.Put("k" + std::to_string(i), std::string(200, 'c')).status.ok());
  REQUIRE(db.Put("t", "again").status.ok());
  PassReport report;
  const Status beside = c->RunOnce(&report, PassKind::kDeadOnly);
  CHECK((beside.ok() || beside.Is(Code::kBusy)));
  for (const uint32_t id : outputs) CHECK_FALSE(std::filesystem::exists(dir.path() + "/" + SegmentFileName(id)));
  CHECK(c->stats().kept_tombstone_bytes == 0);
  gate->Open();
  t.join();
  gate.reset();
  REQUIRE(running.ok());
  CHECK(c->stats().kept_tombstone_bytes == 0);
  c.reset();
  REQUIRE(db.Open().ok());
  CHECK(db.Get("t").value() == "again");
}

TEST_CASE("a page of an input that cannot be read under compaction's mapping fails the pass, which keeps every "
          "input and discards its output; the segment is counted, logged and not picked again",
          "[engine][compaction][faults]") {
  TempDir dir;
  FaultInjectionEnv env;
  Options o;
  o.compression_level = 0;
  o.segment_bytes = 64 << 10;
  std::vector<std::string> errors;
  std::mutex errors_mu;
  o.log_error = [&](const std::string& line) {
    std::lock_guard lock(errors_mu);
    errors.push_back(line);
  };
  TestDb db(env, dir.path(), o);
  REQUIRE(db.Open().ok());
  // Keys 0..99 are written once: the oldest segment keeps live records to copy.
  for (int round = 0; round < 4; ++round)
    for (int i = 0; i < 300; ++i) {
      if (round > 0 && i < 100) continue;
      const std::string k = "key" + std::to_string(i);
      REQUIRE(db.Put(k, MakeValue(k, round, 150 + i % 50, false)).status.ok());
    }
  const auto files_before = SegmentFiles(dir.path());
  REQUIRE(files_before.size() >= 3);
  const std::string input = files_before.front();  // the first input: compaction maps it whole, then copies
  CompactionOptions co = Unthrottled();
  co.pick_all = true;
  Compactor c(db.writer(), co);
  // The disk loses the input under the mapping once the pass starts its output.
  bool cut = false;
  env.SetCreateHook([&](const std::string& path) {
    if (cut || path.find("compact-") == std::string::npos) return;
    cut = true;
    REQUIRE(::truncate(input.c_str(), 0) == 0);
  });
  IndexCounters& counters = db.index().counters();
  const uint64_t faults = GuardedFaults();
  PassReport r;
  const Status s = c.RunOnce(&r);
  env.SetCreateHook({});
  REQUIRE(cut);
  CHECK(s.Is(Code::kIOError));
  CHECK(GuardedFaults() == faults + 1);
  CHECK(counters.read_failures.load() == 1);
  // Nothing published: no output, and no input whose copies it held (inputs
  // with nothing live may have gone before it started).
  CHECK(r.outputs == 0);
  CHECK_FALSE(HasTmpFiles(dir.path()));
  const auto files_after = SegmentFiles(dir.path());
  CHECK(std::includes(files_before.begin(), files_before.end(), files_after.begin(), files_after.end()));
  CHECK(std::filesystem::exists(input));
  {
    std::lock_guard lock(errors_mu);
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].find("compaction: segment") != std::string::npos);
    CHECK(errors[0].find("SIGBUS") != std::string::npos);
  }
  // Writes go on: a new key, and a key whose record is elsewhere; a key of
  // the lost pages answers an I/O error, not "absent".
  CHECK(db.Put("new", "value").status.ok());
  CHECK(db.Put("key299", "again").status.ok());
  CHECK(db.Put("key0", "lost").status.Is(Code::kIOError));
  // The next pass leaves the segment alone and compacts the others, without
  // touching the lost pages again.
  PassReport r2;
  CHECK(c.RunOnce(&r2).ok());
  CHECK(r2.deleted > 0);
  CHECK(GuardedFaults() == faults + 1);
  CHECK(std::filesystem::exists(input));
  CHECK(db.Get("new").value() == "value");
  CHECK(db.Get("key299").value() == "again");
  // A writer that opens the cut file finds damage it reports, and opens.
  REQUIRE(db.Open().ok());
  CHECK(db.Get("new").value() == "value");
  CHECK(db.Get("key299").value() == "again");
  CHECK(db.Put("key0", "fresh").status.ok());
  CHECK(db.Get("key0").value() == "fresh");
}

TEST_CASE("a live value larger than compaction's copy pieces is copied piece by piece intact; a damaged byte in its "
          "last piece leaves its segment alone and publishes nothing of it",
          "[engine][compaction]") {
  for (const bool damaged : {false, true}) {
    DYNAMIC_SECTION("damaged: " << damaged) {
      TempDir dir;
      Options o;
      o.compression_level = 0;
      o.segment_bytes = 1 << 20;
      TestDb db(PosixEnv(), dir.path(), o);
      REQUIRE(db.Open().ok());
      // Three pieces and a part: the record is sealed in a segment of its own.
      const std::string big = MakeValue("big", 1, (3 << 20) + 12345, false);
      REQUIRE(db.Put("big", big).status.ok());
      for (int i = 0; i < 20; ++i) REQUIRE(db.Put("k" + std::to_string(i), MakeValue("k", i, 1000, false)).status.ok());
      std::string big_file;
      for (const std::string& f : SegmentFiles(dir.path()))
        if (std::filesystem::file_size(f) > (3u << 20)) big_file = f;
      REQUIRE(!big_file.empty());
      if (damaged) {
        // A byte of the value's last piece, under the writer's mapping too.
        const auto size = std::filesystem::file_size(big_file);
        FILE* f = std::fopen(big_file.c_str(), "r+b");
        REQUIRE(f != nullptr);
        REQUIRE(std::fseek(f, static_cast<long>(size - 10), SEEK_SET) == 0);
        const int c = std::fgetc(f);
        REQUIRE(std::fseek(f, static_cast<long>(size - 10), SEEK_SET) == 0);
        std::fputc(c ^ 0x5a, f);
        std::fclose(f);
      }
      CompactionOptions co = Unthrottled();
      co.pick_all = true;
      Compactor c(db.writer(), co);
      PassReport r;
      const Status s = c.RunOnce(&r);
      for (int i = 0; i < 20; ++i) CHECK(db.Get("k" + std::to_string(i)).value() == MakeValue("k", i, 1000, false));
      CHECK_FALSE(HasTmpFiles(dir.path()));
      if (!damaged) {
        REQUIRE(s.ok());
        CHECK_FALSE(std::filesystem::exists(big_file));
        CHECK(db.Get("big").value() == big);
        REQUIRE(db.Open().ok());
        CHECK(db.Get("big").value() == big);
      } else {
        // Found by the checksum over the pieces: the output holding the first
        // pieces is abandoned, the segment stays (and is not picked again).
        CHECK(s.Is(Code::kCorruption));
        CHECK(std::filesystem::exists(big_file));
        CHECK_FALSE(db.Get("big").ok());
        PassReport r2;
        CHECK(c.RunOnce(&r2).ok());  // nothing else to do: the segment is skipped
        CHECK(std::filesystem::exists(big_file));
        REQUIRE(db.Open().ok());
        for (int i = 0; i < 20; ++i) CHECK(db.Get("k" + std::to_string(i)).value() == MakeValue("k", i, 1000, false));
      }
    }
  }
}

namespace {

// A database whose first sealed segment holds more than half of the live
// data: sixteen records of 64 KiB sealed by share rotation (then all of the
// data), eight more in the active segment, one of the sixteen overwritten
// since. Its dead bytes are few: under the dead ratio and the space bound's
// fraction, so that only its share of the live data can make a pass copy it.
struct OverHalfGrid {
  // Values stored as written (64 KiB each), segments of 256 MiB: the
  // database's options, set before db copies them.
  static Options GridOptions() {
    Options o;
    o.compression_level = 0;
    o.segment_bytes = 256 << 20;
    return o;
  }
  OverHalfGrid() {
    REQUIRE(db.Open().ok());
    for (int i = 0; i < 24; ++i) {
      keys.push_back("k" + std::to_string(100 + i));
      Put(keys.size() - 1, 0);
    }
    Put(0, 1);
    for (const SegmentStats& seg : db.writer().Stats().per_segment) {
      live += seg.live_bytes;
      reclaimable += seg.dead_bytes;
      if (!seg.active && seg.live_bytes > large_live) {
        large = seg.id;
        large_live = seg.live_bytes;
      }
    }
    INFO("largest sealed segment " << large << ": " << large_live << " live of " << live);
    REQUIRE(large_live * 2 > live);
    REQUIRE(reclaimable * 10 < large_live);
  }
  void Put(size_t i, int version) {
    std::string v = MakeValue(keys[i], version, 64 << 10, false);
    WriteResult r = db.Put(keys[i], v);
    REQUIRE(r.status.ok());
    model[keys[i]] = ModelEntry{v, r.seq};
  }
  uint32_t ActiveId() {
    for (const SegmentStats& seg : db.writer().Stats().per_segment)
      if (seg.active) return seg.id;
    return 0;
  }
  uint64_t LargestLive() {
    uint64_t largest = 0;
    for (const SegmentStats& seg : db.writer().Stats().per_segment) largest = std::max(largest, seg.live_bytes);
    return largest;
  }

  FaultInjectionEnv env;
  TempDir dir;
  TestDb db{env, dir.path(), GridOptions()};
  Model model;
  std::vector<std::string> keys;
  uint64_t live = 0, reclaimable = 0;
  uint32_t large = 0;
  uint64_t large_live = 0;
};

}  // namespace

TEST_CASE("an ordinary pass copies a segment holding more than half the live data, finishing an output before "
          "each would pass a quarter of the live data, beside it",
          "[engine][compaction][over_half]") {
  // A copy the write stall needs of a segment holding more than half the
  // live data, made beside a backlog near the stall's begin bound, takes
  // the directory past twice the live data. Copied while the backlog is
  // low, in outputs of at most a quarter each, no such segment is left.
  OverHalfGrid g;
  CompactionOptions co = Unthrottled();
  co.free_bytes = [](const std::string&) -> Result<uint64_t> { return uint64_t{8} << 30; };
  co.stall_floor_bytes = 1;
  co.staged_bytes = [] { return uint64_t{0}; };
  PassReport report;
  // The directory's bytes but the active segment's: the writer's
  // preallocated room ahead of its records (engine/segment_extender.h)
  // grows that file a step at a time on a thread of its own, whenever
  // the last put's step lands, which is no copy of the pass.
  const uint32_t active = g.ActiveId();
  const std::string active_name = SegmentFileName(active);
  const auto copy_bytes = [&] {
    return DirBytes(g.dir.path()) - std::filesystem::file_size(g.dir.File(active_name));
  };
  const uint64_t before = copy_bytes();
  std::atomic<uint64_t> peak{before};
  g.env.SetSyncHook([&](const std::string& path) {
    if (path.find("compact-") == std::string::npos) return;
    peak.store(std::max(peak.load(), copy_bytes()));
  });
  Compactor c(g.db.writer(), co);
  const Status s = c.RunOnce(&report);
  g.env.SetSyncHook({});
  g.env.SetWriteHook({});
  CHECK(g.ActiveId() == active);
  REQUIRE(s.ok());
  CHECK(report.inputs == 1);
  CHECK(report.deleted == 1);
  CHECK(report.outputs >= 3);
  for (const SegmentStats& seg : g.db.writer().Stats().per_segment) {
    INFO("segment " << seg.id << ": " << seg.live_bytes << " live of " << g.live);
    CHECK(seg.live_bytes * 2 <= g.live);
    if (seg.id > g.large && !seg.active) CHECK(seg.live_bytes <= g.live / kMaxActiveShare);
  }
  // Its copy stood beside it: within the write stall's room for a copy.
  INFO("directory " << before << " bytes before the pass, " << peak.load() << " at its largest; live " << g.live);
  CHECK(peak.load() - before <= g.large_live + kCatchUpFinishMinBytes);
  CHECK(g.reclaimable + g.large_live <= WriteStallBoundsFor(g.live, 1).begin_bytes + g.live / kMaxActiveShare);
  // Made once: nothing more to copy for it.
  REQUIRE(c.RunOnce(&report).ok());
  CHECK(report.inputs == 0);
  CheckModel(g.db, g.model, g.keys);
  REQUIRE(g.db.Open().ok());
  CheckModel(g.db, g.model, g.keys);
}

TEST_CASE("any pass copies a segment holding more than half the live data while its copy fits, also a catch-up "
          "pass; not while it does not fit beside the staged uploads",
          "[engine][compaction][over_half]") {
  // A copy the write stall needs of a segment holding more than half the
  // live data, made beside a backlog near the stall's begin bound, takes
  // the directory past twice the live data. Copied while the backlog is
  // low, in outputs of at most a quarter each, no such segment is left.
  OverHalfGrid g;
  CompactionOptions co = Unthrottled();
  co.free_bytes = [](const std::string&) -> Result<uint64_t> { return uint64_t{8} << 30; };
  co.stall_floor_bytes = 1;
  uint64_t staged = 0;
  co.staged_bytes = [&] { return staged; };
  PassReport report;
  SECTION("a catch-up pass copies it too") {
    Compactor c(g.db.writer(), co);
    REQUIRE(c.RunOnce(&report, PassKind::kCatchUp).ok());
    CHECK(report.deleted >= 1);
    CHECK(g.LargestLive() * 2 <= g.live);
  }
  SECTION("while its copy does not fit beside the staged uploads it is left") {
    staged = WriteStallBoundsFor(g.live, 1).begin_bytes + g.live / kMaxActiveShare - g.reclaimable - g.large_live + 1;
    Compactor c(g.db.writer(), co);
    REQUIRE(c.RunOnce(&report).ok());
    CHECK(report.inputs == 0);
    CHECK(c.stats().bytes_written == 0);
    CHECK(g.LargestLive() == g.large_live);
  }
  CheckModel(g.db, g.model, g.keys);
  REQUIRE(g.db.Open().ok());
  CheckModel(g.db, g.model, g.keys);
}

TEST_CASE("a pass whose only pick was left at its turn for want of room does not back compaction off",
          "[engine][compaction][over_half][thread]") {
  // A segment holding more than half the live data fitted when the pass
  // picked it and no longer when its turn came (writes added dead or staged
  // bytes meanwhile). Counted as fruitless, that pass held every later one
  // for the back-off, and the write stall with them, while writes went on
  // unheld: the dead bytes passed the live data.
  OverHalfGrid g;
  CompactionOptions co = Unthrottled();
  co.free_bytes = [](const std::string&) -> Result<uint64_t> { return uint64_t{8} << 30; };
  co.stall_floor_bytes = 1;
  // The pick reads the staged bytes first, the input's turn next: an
  // upload staged in between makes the copy stop fitting at its turn.
  const uint64_t no_room =
      WriteStallBoundsFor(g.live, 1).begin_bytes + g.live / kMaxActiveShare - g.reclaimable - g.large_live + 1;
  std::atomic<int> calls{0};
  std::atomic<bool> upload_done{false};
  co.staged_bytes = [&]() -> uint64_t { return calls.fetch_add(1) == 1 && !upload_done.load() ? no_room : 0; };
  Compactor c(g.db.writer(), co);
  constexpr uint64_t kHour = 3600 * 1000;
  CompactionThread t(c, kHour, CompactionBackoff{kHour, kHour});
  t.Start();
  // Bounded (minutes: CI runs sanitizer trees at the lowest priority).
  const auto wait_for_passes = [&](uint64_t n) {
    for (int i = 0; i < 24000 && t.passes() < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  };
  t.Trigger();
  wait_for_passes(1);
  REQUIRE(t.passes() == 1);
  CHECK(c.stats().bytes_written == 0);
  CHECK(g.LargestLive() == g.large_live);  // left, not copied
  CHECK(t.fruitless() == 0);
  // The upload is done: the next trigger (not forced) runs at once and copies it.
  upload_done = true;
  t.Trigger();
  wait_for_passes(2);
  REQUIRE(t.passes() == 2);
  CHECK(t.progress_passes() == 1);
  CHECK(g.LargestLive() * 2 <= g.live);
  t.Stop();
  CheckModel(g.db, g.model, g.keys);
}

namespace {

// Passes until one finds nothing to delete, as `kingx-tool compact` runs
// them (bounded); the first error.
Status Passes(Compactor& c) {
  for (int pass = 0; pass < 32; ++pass) {
    PassReport report;
    Status s = c.RunOnce(&report);
    if (!s.ok()) return s;
    if (report.inputs == 0 || report.deleted == 0) break;
  }
  return Status::OK();
}

}  // namespace

TEST_CASE("compaction passes whose nth fdatasync fails lose nothing, and a power loss after them, or after the "
          "clean passes that follow, changes nothing",
          "[engine][compaction][offline][faults]") {
  // offline: the active segment is sealed and compacted too (kingx-tool
  // compact); online: the sealed segments only (the writer's passes).
  const bool offline = GENERATE(true, false);
  // The nth fdatasync after arming fails (13: none); 0: the pages of the
  // active segment's live mappings are lost instead (the pass reads it
  // through a mapping made before it ran: SetUnreadable would not reach it).
  const int fail = GENERATE(range(0, 14));
  INFO((offline ? "offline" : "online") << ", " << (fail == 0 ? "pages lost" : "fdatasync " + std::to_string(fail) + " fails"));
  TempDir dir;
  FaultInjectionEnv env;
  Options o;
  o.segment_bytes = 64 << 20;
  o.room_bytes = 0;
  o.log = [](const std::string& l) { WARN(l); };
  TestDb db(env, dir.path(), o);
  REQUIRE(db.Open().ok());
  // Both sides of the compression floor (256 B) and of the part size (1 MiB:
  // larger values take a segment of their own, sealed at birth).
  const size_t sizes[] = {0, 1, 254, 255, 256, 4000, kPartBytes - 2, kPartBytes - 1, kPartBytes};
  std::map<std::string, std::string> model;
  // The small ones are overwritten most (the active segment mostly dead:
  // offline, it is sealed and compacted).
  for (int version = 1; version <= 80; ++version)
    for (int i = 0; i < 18; ++i) {
      if (version > 1 && i % 4 == 0) continue;  // some keys keep their first version
      if (i % 9 >= 6 && version != 1 && version != 3) continue;  // the large ones get two
      const std::string k = "k" + std::to_string(i);
      const std::string v = MakeValue(k, version, sizes[i % 9] + version, i % 2 == 0);
      REQUIRE(PutAsServer(db, k, v, i % 2 == 0).ok());
      model[k] = v;
    }
  auto check = [&] {
    for (const auto& [k, v] : model) {
      INFO("key " << k);
      auto got = db.Get(k);
      REQUIRE(got.ok());
      REQUIRE(got.value() == v);
    }
    REQUIRE(db.writer().Stats().corruptions == 0);
  };
  const uint32_t active = ActiveSegment(db.writer()).id;
  CompactionOptions co;
  co.rate_bytes_per_sec = 0;
  co.offline = offline;
  std::vector<std::string> synced;  // the files of the pass's fdatasyncs, in order
  {
    Compactor c(db.writer(), co);
    env.SetSyncHook([&](const std::string& path) { synced.push_back(std::filesystem::path(path).filename()); });
    if (fail > 0) env.FailNth(FaultOp::kSync, static_cast<uint64_t>(fail), Code::kIOError);
    if (fail == 0) REQUIRE(env.LoseMappedPages(SegmentFileName(active), kSegmentHeaderBytes) > 0);
    const Status s = Passes(c);
    env.SetSyncHook({});
    INFO("fdatasyncs " << synced.size() << ", pass " << s.ToString());
    if (fail == 0) {
      // Offline the pass reads the active segment and fails; online it
      // leaves it alone.
      if (offline) REQUIRE(s.Is(Code::kIOError));
    } else if (static_cast<size_t>(fail) > synced.size()) {
      REQUIRE(env.FaultsFired() == 0);
      REQUIRE(s.ok());
      // The range covers every fdatasync of the passes; offline, the first
      // seals the active segment.
      if (offline) REQUIRE(synced.at(0) == SegmentFileName(active));
    } else {
      REQUIRE(env.FaultsFired() == 1);
      // A hint is derived data: a failed fdatasync of a sealed segment's
      // hint drops the hint and the pass goes on (an output's stops it).
      // Any other stops the pass.
      const std::string& failed = synced[fail - 1];
      INFO("failed: " << failed);
      if (failed.find(".hint") == std::string::npos) REQUIRE_FALSE(s.ok());
    }
  }
  db.Close();
  env.ClearFaults();
  REQUIRE(env.DropUnsynced().ok());  // a power loss right after the pass
  REQUIRE(db.Open().ok());
  REQUIRE_FALSE(HasTmpFiles(dir.path()));
  check();
  {
    Compactor c(db.writer(), co);
    REQUIRE(Passes(c).ok());
  }
  check();
  db.Close();
  REQUIRE(env.DropUnsynced().ok());  // a power loss right after clean passes
  REQUIRE(db.Open().ok());
  check();
}
