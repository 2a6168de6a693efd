// The writer's free-space reserve (engine/disk_space.h) on a simulated small
// disk (FaultInjectionEnv::SimulateDisk): puts that would eat into the reserve
// are refused before anything is written, deletes are not, ENOSPC from the
// file system marks the disk full too, and writes resume by themselves once
// space is back; compaction seals a half-dead active segment to reclaim it,
// and copies within the reserve on a full disk.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <thread>

#include "engine/compaction.h"
#include "engine/compress.h"
#include "engine/disk_space.h"
#include "tests/engine/support/fault_env.h"
#include "tests/engine/support/model.h"
#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;
namespace fs = std::filesystem;

namespace {

uint64_t DirBytes(const std::string& dir) {
  uint64_t n = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) n += e.file_size();
  return n;
}

Options SmallDisk(uint64_t reserve) {
  Options o;
  o.segment_bytes = 256 << 10;
  o.compression_level = 0;
  o.disk_reserve_bytes = reserve;
  return o;
}

}  // namespace

TEST_CASE("auto sizes: segments a 32nd of the disk within [1 MiB, 256 MiB], a reserve that holds one segment",
          "[engine][disk]") {
  CHECK(AutoSegmentBytes(64ull << 20) == (2ull << 20));
  CHECK(AutoSegmentBytes(100ull << 20) == (2ull << 20));  // rounded down to a power of two
  CHECK(AutoSegmentBytes(1ull << 20) == (1ull << 20));    // floor
  CHECK(AutoSegmentBytes(0) == (1ull << 20));
  CHECK(AutoSegmentBytes(1ull << 30) == (32ull << 20));
  CHECK(AutoSegmentBytes(8ull << 30) == (256ull << 20));
  CHECK(AutoSegmentBytes(4ull << 40) == (256ull << 20));  // ceiling
  CHECK(AutoDiskReserveBytes(2ull << 20) == (2ull << 20) + (512ull << 10) + (1ull << 20));
  CHECK(AutoDiskReserveBytes(256ull << 20) == (321ull << 20));
}

TEST_CASE("FileSystemBytes measures the nearest existing ancestor of a path that does not exist yet",
          "[engine][disk]") {
  TempDir dir;
  FaultInjectionEnv env;
  env.SimulateDisk(dir.path(), 0);
  auto real = FileSystemBytes(env, dir.path());
  REQUIRE(real.ok());
  CHECK(real.value() > 0);
  auto deeper = FileSystemBytes(env, dir.File("not/yet/there"));
  REQUIRE(deeper.ok());
  CHECK(deeper.value() == real.value());
  env.FailNth(FaultOp::kSpace, 1, Code::kIOError);
  CHECK(FileSystemBytes(env, dir.path()).status().Is(Code::kIOError));
}

TEST_CASE("a put that would eat into the reserve is refused before anything is written; deletes still go",
          "[engine][disk]") {
  TempDir dir;
  FaultInjectionEnv env;
  env.SimulateDisk(dir.path(), 4 << 20);
  TestDb db(env, dir.path(), SmallDisk(1 << 20));
  REQUIRE(db.Open().ok());
  const std::string value(100 << 10, 'v');
  int stored = 0;
  WriteResult r;
  for (; stored < 100; ++stored) {
    r = db.Put("k" + std::to_string(stored), value);
    if (!r.status.ok()) break;
  }
  REQUIRE(r.status.Is(Code::kNoSpace));
  CHECK(r.status.message().find("reserve") != std::string_view::npos);
  CHECK(stored >= 20);  // ~3 MiB of the 4 went to puts
  const DiskState full = db.writer().disk_state();
  CHECK(full.full);
  CHECK(full.refused_writes == 1);
  CHECK(full.reserve_bytes == (1u << 20));
  // The reserve is still there: the file system was never filled.
  CHECK(env.DiskUsed() + (1 << 20) <= (4u << 20) + value.size());
  const uint64_t before = DirBytes(dir.path());
  CHECK(db.Put("one-more", value).status.Is(Code::kNoSpace));
  CHECK(DirBytes(dir.path()) == before);  // nothing written
  CHECK(db.Get("one-more").status().Is(Code::kNotFound));
  CHECK(db.writer().disk_state().refused_writes == 2);
  CHECK_FALSE(db.writer().read_only());
  // Reads and deletes go on while full.
  CHECK(db.Get("k0").value() == value);
  for (int i = 0; i < stored; i += 2) REQUIRE(db.Delete("k" + std::to_string(i)).status.ok());
  CHECK(db.writer().disk_state().full);
  // Space comes back (here: a bigger disk); a refresh clears the state
  // without any write, and puts are admitted again.
  env.SimulateDisk(dir.path(), 16 << 20);
  db.writer().RefreshDiskState();
  CHECK_FALSE(db.writer().disk_state().full);
  CHECK(db.Put("after", value).status.ok());
  // All of it survives a reopen.
  REQUIRE(db.Open().ok());
  CHECK(db.Get("after").value() == value);
  CHECK(db.Get("k1").value() == value);
  CHECK(db.Get("k0").status().Is(Code::kNotFound));
}

TEST_CASE("a batch that does not fit whole admits the puts that fit and refuses the others",
          "[engine][disk]") {
  TempDir dir;
  FaultInjectionEnv env;
  env.SimulateDisk(dir.path(), 3 << 20);
  TestDb db(env, dir.path(), SmallDisk(1 << 20));
  REQUIRE(db.Open().ok());
  const std::string value(400 << 10, 'b');
  std::vector<std::string> keys = {"a", "b", "c", "d", "e", "f", "g"};
  std::vector<WriteOp> ops(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    ops[i].key = keys[i];
    ops[i].stored = value;
    ops[i].raw_len = value.size();
  }
  std::vector<WriteResult> res(ops.size());
  db.writer().Apply(ops, res);
  size_t ok = 0;
  for (size_t i = 0; i < res.size(); ++i) {
    if (res[i].status.ok()) {
      ++ok;
      CHECK(db.Get(keys[i]).value() == value);
    } else {
      CHECK(res[i].status.Is(Code::kNoSpace));
      CHECK(db.Get(keys[i]).status().Is(Code::kNotFound));
    }
  }
  CHECK(ok >= 3);
  CHECK(ok < keys.size());
  CHECK(db.writer().disk_state().refused_writes == keys.size() - ok);
}

TEST_CASE("a batch's room is the bytes Admit admits without measuring again, and reading it counts no refusal",
          "[engine][disk]") {
  TempDir dir;
  FaultInjectionEnv env;
  env.SimulateDisk(dir.path(), 4 << 20);
  // A measure that never ages: only the estimate moves between Refresh calls.
  DiskSpace space(env, dir.path(), 1 << 20, nullptr, /*max_age_ms=*/UINT64_MAX);
  const uint64_t room = space.Room();
  const DiskState s = space.state();
  REQUIRE(s.known);
  CHECK(room == s.free_bytes - (1 << 20));
  // The last byte of the room is admitted, in one put or after others.
  CHECK(space.Admit(room));
  CHECK(space.Admit(1000, room - 1000));
  CHECK_FALSE(space.Admit(1001, room - 1000));
  CHECK(space.state().full);
  CHECK(space.state().refused_writes == 0);  // counted where the writer answers it (Refused)
  // Bytes written since the measure come off it; reading it refuses nothing.
  space.Consumed(5000);
  CHECK(space.Room() == room - 5000);
  CHECK(space.Admit(room - 5000));
  CHECK_FALSE(space.Admit(room - 4999));
  space.Refused(2);
  CHECK(space.state().refused_writes == 2);
  // A disk with less than the reserve free has no room at all.
  env.SimulateDisk(dir.path(), 1 << 19);
  space.Refresh();
  CHECK(space.Room() == 0);
  CHECK_FALSE(space.Admit(1));
  // Unknown free space admits any put, as Admit does.
  env.FailNth(FaultOp::kSpace, 1, Code::kIOError, /*forever=*/true);
  space.Refresh();
  CHECK(space.Room() == UINT64_MAX);
  CHECK(space.Admit(1 << 30));
}

TEST_CASE("writes refused because the MANIFEST could not be written are counted once each, and mark the disk full",
          "[engine][disk]") {
  TempDir dir;
  FaultInjectionEnv env;
  env.SimulateDisk(dir.path(), 16 << 20);
  TestDb db(env, dir.path(), SmallDisk(1 << 20));
  REQUIRE(db.Open().ok());
  REQUIRE(db.Put("before", "v").status.ok());
  // An open on a full disk: the MANIFEST cannot be written, the open goes on
  // for reads and every write is answered kNoSpace until it can be.
  env.FailNth(FaultOp::kWrite, 1, Code::kNoSpace, /*forever=*/true, "MANIFEST");
  REQUIRE(db.Open().ok());
  CHECK(db.Get("before").value() == "v");
  const uint64_t at_open = db.writer().disk_state().refused_writes;
  CHECK(db.Put("a", "1").status.Is(Code::kNoSpace));
  CHECK(db.writer().disk_state().refused_writes == at_open + 1);
  CHECK(db.writer().disk_state().full);
  CHECK(db.Delete("before").status.Is(Code::kNoSpace));
  CHECK(db.writer().disk_state().refused_writes == at_open + 2);
  // A batch: each of its writes once.
  std::vector<WriteOp> ops(3);
  for (size_t i = 0; i < ops.size(); ++i) {
    ops[i].key = i == 0 ? "x" : i == 1 ? "y" : "z";
    ops[i].stored = "v";
    ops[i].raw_len = 1;
  }
  std::vector<WriteResult> res(ops.size());
  db.writer().Apply(ops, res);
  for (const WriteResult& r : res) CHECK(r.status.Is(Code::kNoSpace));
  CHECK(db.writer().disk_state().refused_writes == at_open + 5);
  // A large value, refused at its finish (the seqs it needs).
  WriteOp big;
  big.key = "large";
  auto id = db.writer().BeginLarge(big);
  REQUIRE(id.ok());
  REQUIRE(db.writer().AppendLarge(id.value(), "part").ok());
  WriteResult lr;
  db.writer().FinishLarge(id.value(), 4, &lr);
  CHECK(lr.status.Is(Code::kNoSpace));
  CHECK(db.writer().disk_state().refused_writes == at_open + 6);
  // Room again: the MANIFEST is written at the next write, nothing more is counted.
  env.ClearFaults();
  db.writer().RefreshDiskState();
  CHECK_FALSE(db.writer().disk_state().full);
  CHECK(db.Put("a", "1").status.ok());
  CHECK(db.writer().disk_state().refused_writes == at_open + 6);
  REQUIRE(db.Open().ok());
  CHECK(db.Get("a").value() == "1");
  CHECK(db.Get("before").value() == "v");
}

TEST_CASE("another process filling the disk is seen by the writer's decisions within 20 ms",
          "[engine][disk]") {
  TempDir dir;
  FaultInjectionEnv env;
  env.SimulateDisk(dir.path(), 8 << 20);
  DiskSpace space(env, dir.path(), 1 << 20, nullptr);
  const uint64_t room = space.Room();
  REQUIRE(room > (4 << 20));
  // Another file takes all but 64 KiB of the room; nothing goes through
  // Consumed, so only a fresh measure knows. Puts written meanwhile could eat
  // into the reserve: the measure's age bounds that window.
  static_assert(DiskSpace::kMaxAgeMs < 20);
  WriteFileBytes(dir.File("filler"), std::string(room - (64 << 10), 'f'));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(space.Room() <= (64 << 10));
  CHECK_FALSE(space.Admit(128 << 10));
  CHECK(space.Admit(32 << 10));
  CHECK_FALSE(space.Spare(1));
}

TEST_CASE("ENOSPC from the file system (no reserve) marks the disk full until space is back",
          "[engine][disk]") {
  TempDir dir;
  FaultInjectionEnv env;
  env.SimulateDisk(dir.path(), 4 << 20);
  // A write that grows the file: records written into preallocated room
  // (its zero bytes already hold their blocks) never meet ENOSPC.
  Options o = SmallDisk(0);
  o.room_bytes = 0;
  TestDb db(env, dir.path(), o);
  REQUIRE(db.Open().ok());
  // The estimate admits it (it is measured less often than it is written);
  // fill the disk through another file so that the file system refuses.
  REQUIRE(db.Put("a", std::string(1000, 'a')).status.ok());
  WriteFileBytes(dir.File("filler"), std::string((4 << 20) - DirBytes(dir.path()) - 100, 'f'));
  auto r = db.Put("b", std::string(1000, 'b'));
  REQUIRE(r.status.Is(Code::kNoSpace));
  CHECK(db.writer().disk_state().full);
  CHECK(db.writer().disk_state().refused_writes >= 1);
  CHECK_FALSE(db.writer().read_only());
  fs::remove(dir.File("filler"));
  db.writer().RefreshDiskState();
  CHECK_FALSE(db.writer().disk_state().full);
  CHECK(db.Put("b", std::string(1000, 'b')).status.ok());
}

TEST_CASE("a large value is refused at the part that would eat into the reserve, and its staging file goes",
          "[engine][disk]") {
  TempDir dir;
  FaultInjectionEnv env;
  env.SimulateDisk(dir.path(), 4 << 20);
  TestDb db(env, dir.path(), SmallDisk(1 << 20));
  REQUIRE(db.Open().ok());
  WriteOp op;
  op.key = "large";
  auto id = db.writer().BeginLarge(op);
  REQUIRE(id.ok());
  const std::string part(512 << 10, 'p');
  Status s;
  int parts = 0;
  for (; parts < 20 && s.ok(); ++parts) s = db.writer().AppendLarge(id.value(), part);
  CHECK(s.Is(Code::kNoSpace));
  CHECK(parts >= 4);
  for (const auto& e : fs::directory_iterator(dir.path())) CHECK(e.path().extension() != ".tmp");
  CHECK(db.writer().disk_state().full);
  // With the staging file gone there is room again for a smaller one.
  db.writer().RefreshDiskState();
  auto id2 = db.writer().BeginLarge(op);
  REQUIRE(id2.ok());
  REQUIRE(db.writer().AppendLarge(id2.value(), part).ok());
  WriteResult r;
  db.writer().FinishLarge(id2.value(), part.size(), &r);
  REQUIRE(r.status.ok());
  CHECK(db.Get("large").value() == part);
}

TEST_CASE("when free space cannot be measured, writes are admitted and the failure is logged once",
          "[engine][disk]") {
  TempDir dir;
  FaultInjectionEnv env;
  std::vector<std::string> lines;
  Options o = SmallDisk(1 << 20);
  o.log = [&](const std::string& l) { lines.push_back(l); };
  TestDb db(env, dir.path(), o);
  REQUIRE(db.Open().ok());
  env.FailNth(FaultOp::kSpace, 1, Code::kIOError, /*forever=*/true);
  DiskSpace space(env, dir.path(), 1 << 20, o.log);
  for (int i = 0; i < 10; ++i) {
    CHECK(space.Admit(1000));
    space.Refresh();
  }
  CHECK_FALSE(space.state().known);
  CHECK_FALSE(space.state().full);
  size_t failures = 0;
  for (const auto& l : lines) failures += l.find("cannot measure") != std::string::npos;
  CHECK(failures == 1);
  env.ClearFaults();
  space.Refresh();
  CHECK(space.state().known);
}

TEST_CASE("a database whose active segment was sealed opens on a disk with no room for a new segment",
          "[engine][disk][recovery]") {
  TempDir dir;
  FaultInjectionEnv env;
  Options o = SmallDisk(0);
  o.segment_bytes = 64 << 10;
  TestDb db(env, dir.path(), o);
  REQUIRE(db.Open().ok());
  REQUIRE(db.Put("a", std::string(40 << 10, 'a')).status.ok());
  // The next put rotates: the old segment is sealed (hint finished), and
  // creating the new one fails as on a full disk.
  env.FailNth(FaultOp::kCreate, 1, Code::kNoSpace, /*forever=*/true);
  CHECK(db.Put("b", std::string(40 << 10, 'b')).status.Is(Code::kNoSpace));
  // Restart on the full disk: the database opens and serves reads.
  Status s = db.Open();
  REQUIRE(s.ok());
  CHECK(db.Get("a").value() == std::string(40 << 10, 'a'));
  CHECK(db.Get("b").status().Is(Code::kNotFound));
  CHECK(db.Put("c", "x").status.Is(Code::kNoSpace));
  CHECK_FALSE(db.writer().read_only());
  // Room again: the first write creates the active segment.
  env.ClearFaults();
  REQUIRE(db.Put("c", "x").status.ok());
  REQUIRE(db.Open().ok());
  CHECK(db.Get("a").value() == std::string(40 << 10, 'a'));
  CHECK(db.Get("c").value() == "x");
}

TEST_CASE("dead records in the active segment are reclaimed: a pass seals it first, then compacts it",
          "[engine][disk][compaction]") {
  TempDir dir;
  Options o = SmallDisk(0);
  o.segment_bytes = 1 << 20;
  // Bytes of records are compared: no preallocated room in the new active segment.
  o.room_bytes = 0;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  const std::string value(10 << 10, 'a');
  for (int i = 0; i < 60; ++i) REQUIRE(db.Put("k" + std::to_string(i), value).status.ok());
  for (int i = 0; i < 60; ++i)
    if (i % 4 != 0) REQUIRE(db.Delete("k" + std::to_string(i)).status.ok());
  // Everything is in the one, active, segment: 3/4 of it dead.
  REQUIRE(db.writer().Stats().segments == 1);
  const uint64_t before = DirBytes(dir.path());
  Compactor compactor(db.writer(), UnthrottledCompaction(16));
  PassReport report;
  REQUIRE(compactor.RunOnce(&report).ok());
  CHECK(report.deleted == 1);
  CHECK(DirBytes(dir.path()) + 40 * value.size() <= before);
  // Writes go on in a new active segment; every key reads as before, after a reopen too.
  REQUIRE(db.Put("after", "x").status.ok());
  for (int pass = 0; pass < 2; ++pass) {
    for (int i = 0; i < 60; ++i) {
      INFO("k" << i << " pass " << pass);
      if (i % 4 == 0)
        CHECK(db.Get("k" + std::to_string(i)).value() == value);
      else
        CHECK(db.Get("k" + std::to_string(i)).status().Is(Code::kNotFound));
    }
    CHECK(db.Get("after").value() == "x");
    REQUIRE(db.Open().ok());
  }
}

TEST_CASE("an active segment below a quarter of segment_bytes or under the dead ratio is left alone",
          "[engine][disk][compaction]") {
  TempDir dir;
  Options o = SmallDisk(0);
  o.segment_bytes = 4 << 20;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  const std::string value(10 << 10, 'a');
  // Most of the live data in sealed segments, none of it dead, so that the
  // active segment below never holds more than a quarter of the live data
  // (the writer would rotate it: RotateActiveForShare); each of these fills
  // a segment of its own, and "first" starts a new one for the same reason.
  const std::string base(2200 << 10, 'b');  // over half a segment: never merged as a small one
  for (int i = 0; i < 3; ++i) REQUIRE(db.Put("base" + std::to_string(i), base).status.ok());
  const auto active_id = [&] { return ActiveSegment(db.writer()).id; };
  REQUIRE(db.Put("first", value).status.ok());
  const uint32_t active = active_id();
  const uint64_t segments = db.writer().Stats().segments;
  for (int i = 0; i < 60; ++i) REQUIRE(db.Put("k" + std::to_string(i), value).status.ok());
  for (int i = 0; i < 40; ++i) REQUIRE(db.Delete("k" + std::to_string(i)).status.ok());
  Compactor compactor(db.writer(), UnthrottledCompaction(16));
  PassReport report;
  REQUIRE(compactor.RunOnce(&report).ok());  // 600 KiB < 1 MiB: not sealed
  CHECK(report.inputs == 0);
  CHECK(active_id() == active);
  CHECK(db.writer().Stats().segments == segments);
  for (int i = 60; i < 120; ++i) REQUIRE(db.Put("k" + std::to_string(i), value).status.ok());
  REQUIRE(compactor.RunOnce(&report).ok());  // 1.2 MiB, 1/3 dead: under the ratio
  CHECK(report.inputs == 0);
  CHECK(active_id() == active);
  CHECK(db.writer().Stats().segments == segments);
}

TEST_CASE("on a full disk of half-dead segments, compaction copies within the reserve and puts resume",
          "[engine][disk][compaction]") {
  TempDir dir;
  FaultInjectionEnv env;
  const uint64_t disk = 8 << 20;
  Options o = SmallDisk(0);
  o.segment_bytes = 256 << 10;
  o.disk_reserve_bytes = AutoDiskReserveBytes(o.segment_bytes);
  env.SimulateDisk(dir.path(), disk);
  TestDb db(env, dir.path(), o);
  REQUIRE(db.Open().ok());
  const std::string value(8 << 10, 'h');
  int stored = 0;
  for (; stored < 2000; ++stored)
    if (!db.Put("k" + std::to_string(stored), value).status.ok()) break;
  REQUIRE(stored > 500);
  REQUIRE(db.writer().disk_state().full);
  // Every segment, the active one included, ends up half dead: nothing can
  // be freed without copying, and all the room there is is the reserve.
  for (int i = 0; i < stored; i += 2) REQUIRE(db.Delete("k" + std::to_string(i)).status.ok());
  const uint64_t used_before = env.DiskUsed();
  CompactionOptions co;  // the defaults, free space measured through the env
  co.rate_bytes_per_sec = 0;
  std::string log;
  co.log = [&log](const std::string& line) { log += line + "\n"; };
  const uint64_t space_calls = env.Calls(FaultOp::kSpace);
  Compactor compactor(db.writer(), co);
  for (int pass = 0; pass < 20; ++pass) {
    PassReport report;
    Status s = compactor.RunOnce(&report);
    INFO(s.ToString());
    REQUIRE((s.ok() || s.Is(Code::kNoSpace)));
    if (report.inputs == 0) break;
  }
  CHECK(env.Calls(FaultOp::kSpace) > space_calls);
  const uint64_t freed = used_before - std::min(used_before, env.DiskUsed());
  INFO(log);
  // Low on space, every segment with dead bytes is picked: all but the
  // tombstones and the active segment's share comes back.
  CHECK(freed >= (stored / 2) * value.size() * 8 / 10);
  db.writer().RefreshDiskState();
  CHECK_FALSE(db.writer().disk_state().full);
  REQUIRE(db.Put("after", value).status.ok());
  REQUIRE(db.Open().ok());
  for (int i = 0; i < stored; ++i) {
    INFO("k" << i);
    if (i % 2 == 1)
      CHECK(db.Get("k" + std::to_string(i)).value() == value);
    else
      CHECK(db.Get("k" + std::to_string(i)).status().Is(Code::kNotFound));
  }
  CHECK(db.Get("after").value() == value);
}
