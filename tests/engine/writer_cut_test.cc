// Point-in-time cuts and segment pins (Writer::PinSegments, engine/writer_cut.cc):
// a copy made of exactly the cut's files (sealed segments whole, the active
// one up to its cut size, sealed hints, EncodeCutManifest) opens and verifies
// with every write applied before the cut and none after it; a pinned
// segment outlives compaction and its id is not reused until unpinned; a cut
// never waits for the fdatasync in flight and leaves the batches it covers out.
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <set>

#include "engine/compaction.h"
#include "engine/manifest.h"
#include "engine/verify.h"
#include "tests/engine/support/fault_env.h"
#include "tests/engine/support/model.h"
#include "tests/engine/support/pipeline.h"
#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;

namespace {

std::string ReadPrefix(const std::string& path, uint64_t bytes) {
  std::ifstream in(path, std::ios::binary);
  std::string s(bytes, '\0');
  in.read(s.data(), static_cast<std::streamsize>(bytes));
  s.resize(static_cast<size_t>(in.gcount()));
  return s;
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// What an online backup writes: the cut's files as they are at the cut.
void CopyCut(const std::string& from, const DatabaseCut& cut, const std::string& to) {
  std::filesystem::create_directories(to);
  for (const SegmentFileCut& f : cut.segments) {
    const std::string seg = ReadPrefix(JoinPath(from, SegmentFileName(f.id)), f.bytes);
    REQUIRE(seg.size() == f.bytes);
    WriteFile(JoinPath(to, SegmentFileName(f.id)), seg);
    const std::string hint = JoinPath(from, HintFileName(f.id));
    if (!f.active && std::filesystem::exists(hint)) {
      WriteFile(JoinPath(to, HintFileName(f.id)), ReadPrefix(hint, std::filesystem::file_size(hint)));
    }
  }
  WriteFile(JoinPath(to, Manifest::kFileName), EncodeCutManifest(cut));
}

ino_t Inode(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

}  // namespace

TEST_CASE("a copy of a cut's files holds every write before the cut and none after, and verifies",
          "[engine][cut]") {
  const int level = GENERATE(0, 1);
  TempDir dir, copy;
  Options o;
  o.compression_level = level;
  o.segment_bytes = 16 << 10;  // several sealed segments plus the active one
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  Model model;
  std::vector<std::string> keys;
  for (int i = 0; i < 400; ++i) {
    const std::string k = "key" + std::to_string(i % 150);
    if (i < 150) keys.push_back(k);
    if (i % 7 == 3) {
      if (db.Delete(k).status.ok()) model.erase(k);
      continue;
    }
    const std::string v = MakeValue(k, i, 100 + i % 300, i % 2 == 0);
    WriteResult w = db.Put(k, v);
    REQUIRE(w.status.ok());
    model[k] = ModelEntry{v, w.seq};
  }
  auto cut = db.writer().PinSegments();
  REQUIRE(cut.ok());
  REQUIRE(cut->segments.size() >= 3);
  REQUIRE(cut->seq_high_water >= cut->next_seq);
  int actives = 0;
  for (const SegmentFileCut& f : cut->segments) {
    actives += f.active ? 1 : 0;
    REQUIRE(f.birth != 0);
  }
  REQUIRE(actives == 1);
  // Writes after the cut (overwrites, deletes, new keys) and a compaction
  // pass: none of it may reach the copy, none of it may tear the copy.
  for (int i = 0; i < 300; ++i) {
    const std::string k = "key" + std::to_string(i % 200);
    if (i % 5 == 0) {
      db.Delete(k);
    } else {
      REQUIRE(db.Put(k, MakeValue(k, 100000 + i, 200, false)).status.ok());
    }
  }
  CompactionOptions co = UnthrottledCompaction(7);
  co.pick_all = true;
  Compactor c(db.writer(), co);
  REQUIRE(c.RunOnce().ok());
  CopyCut(dir.path(), cut.value(), copy.path());
  db.writer().UnpinSegmentIds(cut->ids());

  Result<VerifyReport> report = VerifyDatabase(PosixEnv(), copy.path(), o, [](const std::string& line) {
    INFO(line);
  });
  REQUIRE(report.ok());
  REQUIRE(report->damaged == 0);
  TestDb restored(PosixEnv(), copy.path(), o);
  REQUIRE(restored.Open().ok());
  CheckModel(restored, model, keys);
  for (int i = 150; i < 200; ++i) REQUIRE(restored.Get("key" + std::to_string(i)).status().Is(Code::kNotFound));
  // The restored copy goes on from the cut: a new write gets a seq above every copied one.
  WriteResult w = restored.Put("after", "x");
  REQUIRE(w.status.ok());
  REQUIRE(w.seq >= cut->next_seq);
}

TEST_CASE("a pinned segment survives compaction and its id is not reused until unpinned", "[engine][cut]") {
  TempDir dir;
  Options o;
  o.compression_level = 0;
  o.segment_bytes = 8 << 10;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  for (int i = 0; i < 200; ++i) REQUIRE(db.Put("k" + std::to_string(i % 40), MakeValue("k", i, 300, false)).status.ok());
  auto cut = db.writer().PinSegments();
  REQUIRE(cut.ok());
  std::map<uint32_t, ino_t> pinned;
  for (const SegmentFileCut& f : cut->segments) pinned[f.id] = Inode(JoinPath(dir.path(), SegmentFileName(f.id)));
  REQUIRE(pinned.size() >= 4);

  // Every record of the cut dies; compaction copies nothing live out of the
  // sealed segments and would delete them all.
  for (int round = 0; round < 3; ++round)
    for (int i = 0; i < 40; ++i) REQUIRE(db.Put("k" + std::to_string(i), MakeValue("k", 1000 + round * 40 + i, 300, false)).status.ok());
  CompactionOptions co = UnthrottledCompaction(7);
  co.pick_all = true;
  Compactor c(db.writer(), co);
  REQUIRE(c.RunOnce().ok());
  REQUIRE(c.RunOnce().ok());
  // More segments are created (rotation, compaction outputs): none takes a pinned id.
  for (int i = 0; i < 120; ++i) REQUIRE(db.Put("n" + std::to_string(i), MakeValue("n", i, 300, false)).status.ok());
  for (const auto& [id, ino] : pinned) {
    INFO("segment " << id);
    REQUIRE(Inode(JoinPath(dir.path(), SegmentFileName(id))) == ino);
  }

  db.writer().UnpinSegmentIds(cut->ids());
  REQUIRE(c.RunOnce().ok());
  REQUIRE(c.RunOnce().ok());
  size_t gone = 0;
  for (const auto& [id, ino] : pinned) {
    if (Inode(JoinPath(dir.path(), SegmentFileName(id))) != ino) ++gone;
  }
  REQUIRE(gone > 0);  // unpinned, the dead ones go (their ids free again)
}

// The directory of a database: segment id -> inode of its file.
static std::map<uint32_t, ino_t> SegmentInodes(const std::string& dir, const Writer& w) {
  std::map<uint32_t, ino_t> out;
  for (const SegmentStats& s : w.Stats().per_segment) out[s.id] = Inode(JoinPath(dir, SegmentFileName(s.id)));
  return out;
}

TEST_CASE("while a cut is pinned, compaction deletes the segments born after it and keeps the cut's",
          "[engine][cut]") {
  TempDir dir;
  Options o;
  o.compression_level = 0;
  o.segment_bytes = 8 << 10;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  for (int i = 0; i < 200; ++i) REQUIRE(db.Put("k" + std::to_string(i % 40), MakeValue("k", i, 300, false)).status.ok());
  auto cut = db.writer().PinSegments();
  REQUIRE(cut.ok());
  std::map<uint32_t, ino_t> pinned;
  for (const SegmentFileCut& f : cut->segments) pinned[f.id] = Inode(JoinPath(dir.path(), SegmentFileName(f.id)));
  REQUIRE(pinned.size() >= 4);
  REQUIRE(db.writer().pinned_segments() == pinned.size());

  // After the cut: the cut's keys and new ones overwritten round after
  // round, so the segments born after the cut die as well as the cut's.
  for (int round = 0; round < 4; ++round) {
    for (int i = 0; i < 40; ++i) {
      REQUIRE(db.Put("k" + std::to_string(i), MakeValue("k", 1000 + round * 40 + i, 300, false)).status.ok());
      REQUIRE(db.Put("n" + std::to_string(i), MakeValue("n", 2000 + round * 40 + i, 300, false)).status.ok());
    }
  }
  std::map<uint32_t, ino_t> born_after;
  for (const auto& [id, ino] : SegmentInodes(dir.path(), db.writer())) {
    if (pinned.count(id) == 0) born_after[id] = ino;
  }
  REQUIRE(born_after.size() >= 4);
  CompactionOptions co = UnthrottledCompaction(7);
  co.pick_all = true;
  Compactor c(db.writer(), co);
  REQUIRE(c.RunOnce().ok());
  REQUIRE(c.RunOnce().ok());
  for (int i = 0; i < 80; ++i) REQUIRE(db.Put("m" + std::to_string(i), MakeValue("m", i, 300, false)).status.ok());

  for (const auto& [id, ino] : pinned) {
    INFO("segment " << id << " of the cut");
    REQUIRE(Inode(JoinPath(dir.path(), SegmentFileName(id))) == ino);
  }
  size_t deleted = 0;
  for (const auto& [id, ino] : born_after) {
    if (Inode(JoinPath(dir.path(), SegmentFileName(id))) != ino) ++deleted;
  }
  INFO(deleted << " of " << born_after.size() << " segments born after the cut deleted");
  REQUIRE(deleted > 0);

  // A second cut shares the first one's segments: they stay until both are released.
  auto second = db.writer().PinSegments();
  REQUIRE(second.ok());
  db.writer().UnpinSegmentIds(cut->ids());
  for (int i = 0; i < 40; ++i) REQUIRE(db.Put("k" + std::to_string(i), MakeValue("k", 3000 + i, 300, false)).status.ok());
  REQUIRE(c.RunOnce().ok());
  for (const auto& [id, ino] : pinned) {
    INFO("segment " << id << " of both cuts");
    REQUIRE(Inode(JoinPath(dir.path(), SegmentFileName(id))) == ino);
  }
  db.writer().UnpinSegmentIds(second->ids());
  REQUIRE(db.writer().pinned_segments() == 0);
  REQUIRE(c.RunOnce().ok());
  size_t gone = 0;
  for (const auto& [id, ino] : pinned) {
    if (Inode(JoinPath(dir.path(), SegmentFileName(id))) != ino) ++gone;
  }
  REQUIRE(gone > 0);
}

TEST_CASE("a segment whose file is missing is in the cut as missing, so a copy keeps reporting it",
          "[engine][cut]") {
  TempDir dir;
  Options o;
  o.compression_level = 0;
  o.segment_bytes = 8 << 10;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  for (int i = 0; i < 100; ++i) REQUIRE(db.Put("m" + std::to_string(i), MakeValue("m", i, 300, false)).status.ok());
  const uint32_t gone = db.writer().Stats().per_segment.front().id;
  db.Close();
  std::filesystem::remove(JoinPath(dir.path(), SegmentFileName(gone)));
  REQUIRE(db.Open().ok());
  auto cut = db.writer().PinSegments();
  REQUIRE(cut.ok());
  bool seen = false;
  for (const SegmentFileCut& f : cut->segments) {
    if (f.id != gone) {
      REQUIRE_FALSE(f.missing);
      continue;
    }
    seen = true;
    REQUIRE(f.missing);
    REQUIRE(f.bytes == 0);
  }
  REQUIRE(seen);
  db.writer().UnpinSegmentIds(cut->ids());
  TempDir copy;
  WriteFile(JoinPath(copy.path(), Manifest::kFileName), EncodeCutManifest(cut.value()));
  auto listed = Manifest::Read(PosixEnv(), copy.path());
  REQUIRE(listed.ok());
  REQUIRE(listed->segments.size() == cut->segments.size());
  REQUIRE(listed->segments.count(gone) == 1);
  REQUIRE(listed->seed == cut->seed);
  REQUIRE(listed->seq_high_water == cut->seq_high_water);
}

TEST_CASE("a cut taken while an fdatasync is in flight does not wait for it and leaves the batches in flight out",
          "[engine][cut][pipeline][regression]") {
  // Regression: the cut drained the pipeline first, so a backup request
  // paused the writer for as long as the fdatasync in flight took.
  TempDir dir, copy;
  FaultInjectionEnv env;
  Options o;
  o.compression_level = 0;
  TestDb db(env, dir.path(), o);
  REQUIRE(db.Open().ok());
  REQUIRE(db.Put("before", "acknowledged").status.ok());
  SyncGate gate(env);
  Batch a = Puts({"a1", "before"}, "in flight");
  db.writer().Submit(a.ops);
  REQUIRE(gate.WaitEntered(1));  // A is written, its fdatasync held
  auto cutting = std::async(std::launch::async, [&] { return db.writer().PinSegments(); });
  // Bounded so that a cut that waits for the held sync fails instead of hanging.
  const bool returned = cutting.wait_for(std::chrono::seconds(120)) == std::future_status::ready;
  gate.Open();
  REQUIRE(returned);
  Result<DatabaseCut> cut = cutting.get();
  REQUIRE(cut.ok());
  Taken ta = Take(db, true);
  REQUIRE(ta.got);
  REQUIRE(AllOk(ta));
  CHECK(cut->next_seq == ta.results[0].seq);  // the first seq the cut leaves out is A's
  CHECK(db.Get("before").value() == "in flight");

  CopyCut(dir.path(), cut.value(), copy.path());
  db.writer().UnpinSegmentIds(cut->ids());
  TestDb restored(PosixEnv(), copy.path(), o);
  REQUIRE(restored.Open().ok());
  CHECK(restored.Get("before").value() == "acknowledged");
  CHECK(restored.Get("a1").status().Is(Code::kNotFound));
  WriteResult w = restored.Put("after", "x");
  REQUIRE(w.status.ok());
  CHECK(w.seq >= cut->next_seq);
}
