// The preallocated room of the active segment (engine/segment_extender.h,
// engine/FORMAT.md "Preallocated room"): zero bytes past the records while a
// segment is active, none once it is sealed, cut by an open; a sealed
// segment left with a zero tail opens without damage when its hint ends where
// the zeros begin (a lost cut), and reports them as damage otherwise.
#include "engine/segment_extender.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <vector>

#include "engine/hint_file.h"
#include "engine/record.h"
#include "engine/segment_scan.h"
#include "engine/verify.h"
#include "tests/engine/support/fault_env.h"
#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;
namespace fs = std::filesystem;

namespace {

// Just past the last whole record of a segment file's bytes.
uint64_t RecordsEnd(const std::string& bytes) {
  uint64_t off = kSegmentHeaderBytes;
  RecordLimits limits;
  while (off < bytes.size()) {
    auto r = DecodeRecord(bytes.data() + off, bytes.size() - off, limits);
    if (!r.ok()) break;
    off += r->header.total_bytes();
  }
  return off;
}

bool SealedAtBirth(const std::string& bytes) {
  SegmentHeader h;
  return DecodeSegmentHeader(bytes.data(), bytes.size(), &h).ok() && (h.flags & kSegmentFlagSealedAtBirth) != 0;
}

Options RoomOptions(uint64_t segment_bytes, uint64_t room_bytes) {
  Options o;
  o.segment_bytes = segment_bytes;
  o.room_bytes = room_bytes;
  o.compression_level = 0;
  return o;
}

// Every value in `want` reads back as written.
void CheckAll(TestDb& db, const std::map<std::string, std::string>& want) {
  for (const auto& [k, v] : want) {
    auto got = db.Get(k);
    INFO("key " << k);
    REQUIRE(got.ok());
    CHECK(got.value() == v);
  }
}

uint64_t Damage(const std::string& dir, const Options& o) {
  auto report = VerifyDatabase(PosixEnv(), dir, o, [](const std::string&) {});
  REQUIRE(report.ok());
  return report->damaged;
}

}  // namespace

TEST_CASE("under sync always the active segment keeps zero room past its records; an open cuts it",
          "[engine][room]") {
  TempDir dir;
  const Options o = RoomOptions(1 << 20, 64 << 10);
  std::map<std::string, std::string> want;
  {
    TestDb db(PosixEnv(), dir.path(), o);
    REQUIRE(db.Open().ok());
    for (int i = 0; i < 200; ++i) {
      const std::string k = "k" + std::to_string(i);
      want[k] = MakeValue(k, 1, 100 + i, false);
      REQUIRE(db.Put(k, want[k]).status.ok());
    }
    const auto files = SegmentFiles(dir.path());
    REQUIRE(files.size() == 1);
    // The room is made on its own thread: wait until it covers the records' end.
    const std::string bytes = ReadFileBytes(files[0]);
    const uint64_t end = RecordsEnd(bytes);
    CHECK(end > kSegmentHeaderBytes + 200 * 100);
    CHECK(bytes.size() >= end);
    CHECK(AllZero(bytes.data() + end, bytes.size() - end));
    CheckAll(db, want);
  }
  const auto files = SegmentFiles(dir.path());
  const std::string closed = ReadFileBytes(files[0]);
  const uint64_t end = RecordsEnd(closed);
  CHECK(closed.size() > end);  // the room stays on a close: 64 KiB ahead of ~40 KiB of records
  CHECK(AllZero(closed.data() + end, closed.size() - end));
  CHECK(Damage(dir.path(), o) == 0);
  {
    TestDb db(PosixEnv(), dir.path(), o);
    REQUIRE(db.Open().ok());
    CHECK(db.writer().Stats().corruptions == 0);
    CheckAll(db, want);
    REQUIRE(db.Put("after", "reopen").status.ok());
    want["after"] = "reopen";
    CheckAll(db, want);
  }
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  CHECK(db.writer().Stats().corruptions == 0);
  CheckAll(db, want);
}

TEST_CASE("a sealed segment ends at its last record, with values on both sides of the room step",
          "[engine][room]") {
  TempDir dir;
  const uint64_t room = 16 << 10;
  const Options o = RoomOptions(64 << 10, room);
  std::map<std::string, std::string> want;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  int n = 0;
  // Values just below, at and above the step, and a whole segment's worth
  // (alone in a segment of its own), between runs of small ones.
  for (size_t len : {size_t{100}, room - 100, room - RecordBytes(3, 0, 0), room, room + 1, size_t{300},
                     size_t{70} << 10, size_t{50}, room / 2, room / 2 + 1}) {
    for (int i = 0; i < 5; ++i, ++n) {
      const std::string k = "k" + std::to_string(n % 37);
      want[k] = MakeValue(k, static_cast<uint64_t>(n), len, false);
      INFO("value of " << len << " bytes, write " << n);
      REQUIRE(db.Put(k, want[k]).status.ok());
    }
  }
  CheckAll(db, want);
  const auto files = SegmentFiles(dir.path());
  REQUIRE(files.size() > 3);
  for (size_t i = 0; i + 1 < files.size(); ++i) {
    const std::string bytes = ReadFileBytes(files[i]);
    INFO(files[i]);
    CHECK(bytes.size() == RecordsEnd(bytes));  // sealed: cut to its records
  }
  db.Close();
  CHECK(Damage(dir.path(), o) == 0);
  REQUIRE(db.Open().ok());
  CHECK(db.writer().Stats().corruptions == 0);
  CheckAll(db, want);
}

TEST_CASE("large values on both sides of a 1 MiB part go around the room", "[engine][room]") {
  TempDir dir;
  const Options o = RoomOptions(4 << 20, 256 << 10);
  std::map<std::string, std::string> want;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  int n = 0;
  for (size_t len : {(size_t{1} << 20) - 1, size_t{1} << 20, (size_t{1} << 20) + 1}) {
    // One through Apply (into the active segment), one staged in parts (a
    // segment sealed at birth), each between small writes.
    const std::string k = "big" + std::to_string(n++);
    want[k] = MakeValue(k, 1, len, false);
    REQUIRE(db.Put(k, want[k]).status.ok());
    const std::string s = "small" + std::to_string(n);
    want[s] = "x";
    REQUIRE(db.Put(s, "x").status.ok());
    const std::string l = "large" + std::to_string(n);
    want[l] = MakeValue(l, 2, len, false);
    WriteOp head;
    head.key = l;
    auto id = db.writer().BeginLarge(head);
    REQUIRE(id.ok());
    REQUIRE(db.writer().AppendLarge(id.value(), std::string_view(want[l]).substr(0, len / 2)).ok());
    REQUIRE(db.writer().AppendLarge(id.value(), std::string_view(want[l]).substr(len / 2)).ok());
    WriteResult r;
    db.writer().FinishLarge(id.value(), len, &r);
    REQUIRE(r.status.ok());
  }
  CheckAll(db, want);
  for (const std::string& f : SegmentFiles(dir.path())) {
    const std::string bytes = ReadFileBytes(f);
    if (SealedAtBirth(bytes)) CHECK(bytes.size() == RecordsEnd(bytes));  // never given room
  }
  db.Close();
  CHECK(Damage(dir.path(), o) == 0);
  REQUIRE(db.Open().ok());
  CHECK(db.writer().Stats().corruptions == 0);
  CheckAll(db, want);
}

TEST_CASE("a rotation syncs the new segment's file as often with room as without, the room's first step making "
          "its header durable before its directory entry",
          "[engine][room]") {
  // Each rotation used to sync the new file for its header and again for
  // the room's first step, which covers the header too.
  const uint64_t room = GENERATE(uint64_t{0}, uint64_t{16} << 10);
  INFO("room " << room);
  TempDir dir;
  FaultInjectionEnv env;
  TestDb db(env, dir.path(), RoomOptions(4096, room));
  REQUIRE(db.Open().ok());
  int rotations = 0;
  for (int i = 0; i < 200 && rotations < 3; ++i) {
    const size_t before = env.ChangingCalls().size();
    REQUIRE(db.Put("k" + std::to_string(i % 7), std::string(100, 'v')).status.ok());
    const std::vector<std::string> calls = env.ChangingCalls();
    // The put's calls from the creation of a segment file on, if it made one.
    std::string created;
    int syncs_before_dir = 0, syncs = 0;
    bool dir_synced = false;
    for (size_t c = before; c < calls.size(); ++c) {
      const std::string& call = calls[c];
      if (created.empty()) {
        if (call.rfind("create ", 0) == 0 && call.size() > 4 && call.compare(call.size() - 4, 4, ".kxd") == 0)
          created = call.substr(7);
        continue;
      }
      if (call == "fdatasync " + created) {
        ++syncs;
        if (!dir_synced) ++syncs_before_dir;
      }
      if (call.rfind("fsync-dir ", 0) == 0) dir_synced = true;
    }
    if (created.empty()) continue;
    ++rotations;
    std::string all;
    for (size_t c = before; c < calls.size(); ++c) all += calls[c] + "\n";
    INFO("the put that made " << created << ":\n" << all);
    CHECK(dir_synced);
    CHECK(syncs_before_dir == 1);  // the header, durable before the entry that names the file
    CHECK(syncs == 2);             // and the put's record
    if (room > 0) CHECK(fs::file_size(created) > RecordsEnd(ReadFileBytes(created)));  // the room was made
  }
  REQUIRE(rotations == 3);
}

TEST_CASE("sync none and interval keep no room", "[engine][room]") {
  TempDir dir;
  Options o = RoomOptions(1 << 20, 64 << 10);
  o.sync = GENERATE(SyncMode::kNone, SyncMode::kInterval);
  o.sync_interval_ms = 5;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  for (int i = 0; i < 100; ++i) REQUIRE(db.Put("k" + std::to_string(i), std::string(200, 'v')).status.ok());
  db.Close();
  const std::string bytes = ReadFileBytes(SegmentFiles(dir.path())[0]);
  CHECK(bytes.size() == RecordsEnd(bytes));
}

namespace {

// A database of several sealed 16 KiB segments (300-byte values of 50 keys,
// overwritten): returns the values written and the first segment's path.
std::string FillSealed(const std::string& dir, const Options& o, std::map<std::string, std::string>* want) {
  {
    TestDb db(PosixEnv(), dir, o);
    REQUIRE(db.Open().ok());
    for (int i = 0; i < 120; ++i) {
      const std::string k = "k" + std::to_string(i % 50);
      (*want)[k] = MakeValue(k, static_cast<uint64_t>(i), 300, false);
      REQUIRE(db.Put(k, (*want)[k]).status.ok());
    }
  }
  const auto files = SegmentFiles(dir);
  REQUIRE(files.size() >= 3);
  const std::string original = ReadFileBytes(files[0]);
  REQUIRE(original.size() == RecordsEnd(original));
  return files[0];
}

std::string HintOf(const std::string& segment) { return segment.substr(0, segment.size() - 4) + ".hint"; }

}  // namespace

TEST_CASE("a sealed segment whose cut was lost (a zero tail) opens without damage and is cut when its hint ends there",
          "[engine][room][recovery]") {
  const uint64_t zeros = GENERATE(uint64_t{1}, uint64_t{40}, uint64_t{16} << 10);
  INFO(zeros << " zero bytes");
  TempDir dir;
  const Options o = RoomOptions(16 << 10, 4 << 10);
  std::map<std::string, std::string> want;
  const std::string sealed = FillSealed(dir.path(), o, &want);
  const std::string original = ReadFileBytes(sealed);
  WriteFileBytes(sealed, original + std::string(zeros, '\0'));
  CHECK(Damage(dir.path(), o) == 0);
  {
    TestDb db(PosixEnv(), dir.path(), o);
    REQUIRE(db.Open().ok());
    CHECK(db.writer().Stats().corruptions == 0);
    CheckAll(db, want);
  }
  CHECK(ReadFileBytes(sealed) == original);  // cut back to its records
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  CHECK(db.writer().Stats().corruptions == 0);
  CheckAll(db, want);
}

TEST_CASE("zeros ending a sealed segment without an intact hint are damage: reported at every open, never cut",
          "[engine][room][recovery][corruption]") {
  // A sealed segment is cut before its hint is finished: zeros after its
  // records, with nothing to say that no record was there, may be records a
  // device lost. Appended zeros (a lost cut) and zeros over the last records
  // (lost records) read the same; neither may pass as the end of the log.
  // (A seal in the MANIFEST ending where appended zeros begin vouches for
  // them, manifest_seal_test: here the MANIFEST is one written without seals.)
  const bool over_records = GENERATE(false, true);
  const int hint = GENERATE(0, 1);  // 0: removed, 1: damaged
  INFO((over_records ? "zeros over the last records" : "zeros appended") << ", hint " << (hint ? "damaged" : "removed"));
  TempDir dir;
  const Options o = RoomOptions(16 << 10, 4 << 10);
  std::map<std::string, std::string> want;
  const std::string sealed = FillSealed(dir.path(), o, &want);
  std::string bytes = ReadFileBytes(sealed);
  std::set<std::string> lost;  // keys whose newest record the zeros cover
  if (over_records) {
    // Zero the last two records.
    std::vector<std::pair<uint64_t, std::string>> records;  // offset, key
    RecordLimits limits;
    for (uint64_t off = kSegmentHeaderBytes; off < bytes.size();) {
      auto r = DecodeRecord(bytes.data() + off, bytes.size() - off, limits);
      REQUIRE(r.ok());
      records.emplace_back(off, std::string(r->key));
      off += r->header.total_bytes();
    }
    REQUIRE(records.size() >= 3);
    const uint64_t from = records[records.size() - 2].first;
    for (size_t i = records.size() - 2; i < records.size(); ++i) lost.insert(records[i].second);
    std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(from), bytes.end(), '\0');
  } else {
    bytes += std::string(4096, '\0');
  }
  WriteFileBytes(sealed, bytes);
  REQUIRE(StripSeals(dir.path()));
  if (hint == 0) {
    fs::remove(HintOf(sealed));
  } else {
    std::string h = ReadFileBytes(HintOf(sealed));
    h[h.size() / 2] = static_cast<char>(h[h.size() / 2] ^ 0x40);
    WriteFileBytes(HintOf(sealed), h);
  }
  CHECK(Damage(dir.path(), o) >= 1);
  for (int open = 0; open < 2; ++open) {
    INFO("open " << open);
    TestDb db(PosixEnv(), dir.path(), o);
    REQUIRE(db.Open().ok());
    CHECK(db.writer().Stats().corruptions >= 1);
    for (const auto& [k, v] : want) {
      if (lost.count(k) != 0) continue;  // its record is gone: nothing names its key
      auto got = db.Get(k);
      INFO("key " << k);
      REQUIRE(got.ok());
      CHECK(got.value() == v);
    }
    db.Close();
    CHECK(ReadFileBytes(sealed) == bytes);  // never cut: the evidence stays
  }
  CHECK(Damage(dir.path(), o) >= 1);
}

TEST_CASE("a read-only open reads past a zero tail and leaves it", "[engine][room][recovery]") {
  TempDir dir;
  const Options o = RoomOptions(1 << 20, 64 << 10);
  std::map<std::string, std::string> want;
  {
    TestDb db(PosixEnv(), dir.path(), o);
    REQUIRE(db.Open().ok());
    for (int i = 0; i < 50; ++i) {
      const std::string k = "k" + std::to_string(i);
      want[k] = MakeValue(k, 1, 500, false);
      REQUIRE(db.Put(k, want[k]).status.ok());
    }
  }
  const std::string before = ReadFileBytes(SegmentFiles(dir.path())[0]);
  REQUIRE(before.size() > RecordsEnd(before));
  Options ro = o;
  ro.read_only = true;
  TestDb db(PosixEnv(), dir.path(), ro);
  REQUIRE(db.Open().ok());
  CHECK(db.writer().Stats().corruptions == 0);
  CheckAll(db, want);
  db.Close();
  CHECK(ReadFileBytes(SegmentFiles(dir.path())[0]) == before);
}

TEST_CASE("a record write that fails inside the room fails its batch and cuts the room with the partial bytes",
          "[engine][room][faults]") {
  const bool short_write = GENERATE(false, true);
  TempDir dir;
  FaultInjectionEnv env;
  const uint64_t room = 64 << 10;
  TestDb db(env, dir.path(), RoomOptions(1 << 20, room));
  REQUIRE(db.Open().ok());
  REQUIRE(db.Put("before", "ok").status.ok());
  const std::string seg = SegmentFiles(dir.path())[0];
  // The room's first step came with the segment; no other starts before the
  // records come within half a step of its end: the next write is theirs.
  REQUIRE(fs::file_size(seg) >= room);
  const uint64_t end = RecordsEnd(ReadFileBytes(seg));
  if (short_write) env.ShortWriteNth(1, 30, Code::kNoSpace);
  else env.FailNth(FaultOp::kWrite, 1, Code::kNoSpace);
  CHECK(db.Put("a", std::string(500, 'v')).status.Is(Code::kNoSpace));
  CHECK_FALSE(db.writer().read_only());
  CHECK(fs::file_size(seg) == end);  // the partial bytes and the room were cut
  CHECK(db.Get("a").status().Is(Code::kNotFound));
  REQUIRE(db.Put("after", "fits").status.ok());
  REQUIRE(db.Open().ok());
  CHECK(db.Get("before").value() == "ok");
  CHECK(db.Get("after").value() == "fits");
  CHECK(db.Get("a").status().Is(Code::kNotFound));
  CHECK(db.writer().Stats().corruptions == 0);
}

TEST_CASE("a power loss drops a record written into the room that no fdatasync covered",
          "[engine][room][power_loss]") {
  TempDir dir;
  FaultInjectionEnv env;
  const uint64_t room = 64 << 10;
  TestDb db(env, dir.path(), RoomOptions(1 << 20, room));
  REQUIRE(db.Open().ok());
  REQUIRE(db.Put("before", "durable").status.ok());
  const std::string seg = SegmentFiles(dir.path())[0];
  // The room's first step (which made the new segment's header durable
  // too), the put: the next fdatasync of the segment is the records'.
  REQUIRE(fs::file_size(seg) >= room);
  REQUIRE(env.Calls(FaultOp::kSync, ".kxd") == 2);
  env.FailNth(FaultOp::kSync, 1, Code::kIOError, true);
  CHECK(db.Put("lost", std::string(300, 'x')).status.Is(Code::kOutcomeUnknown));
  db.Close();
  env.ClearFaults();
  REQUIRE(env.DropUnsynced().ok());
  // Its bytes went back to the zeros the room's sync made durable.
  const std::string bytes = ReadFileBytes(seg);
  const uint64_t end = RecordsEnd(bytes);
  CHECK(AllZero(bytes.data() + end, bytes.size() - end));
  REQUIRE(db.Open().ok());
  CHECK(db.Get("before").value() == "durable");
  CHECK(db.Get("lost").status().Is(Code::kNotFound));
  CHECK(db.writer().Stats().corruptions == 0);
}

TEST_CASE("a failed zero write or sync of the room ends the room, and the writer goes on past it",
          "[engine][room][faults]") {
  const FaultOp op = GENERATE(FaultOp::kWrite, FaultOp::kSync);
  TempDir dir;
  FaultInjectionEnv env;  // only the extender's descriptor goes through it
  auto file = PosixEnv().OpenFile(dir.File("f"), OpenMode::kCreateExclusive);
  REQUIRE(file.ok());
  std::vector<std::string> logged;
  std::mutex log_mu;
  SegmentExtender ext([] { return uint64_t{4096}; }, [&](const std::string& line) {
    std::lock_guard lock(log_mu);
    logged.push_back(line);
  });
  auto second = env.OpenFile(dir.File("f"), OpenMode::kReadWrite);
  REQUIRE(second.ok());
  env.FailNth(op, 1, Code::kNoSpace);
  ext.Start(std::move(second.value()), 0, 1 << 20);  // its first step fails
  const std::string rec(1000, 'r');
  uint64_t at = 0;
  for (int i = 0; i < 40; ++i) {
    ext.BeforeWrite(at + rec.size());
    REQUIRE(file.value()->PWrite(at, rec).ok());
    at += rec.size();
    ext.AfterWrite(at);
  }
  ext.Paused();
  CHECK(env.FaultsFired() == 1);
  CHECK(env.Calls(op) == 1);  // no second try on this segment
  {
    std::lock_guard lock(log_mu);
    CHECK(logged.size() == 1);
  }
  ext.Stop();
  const std::string bytes = ReadFileBytes(dir.File("f"));
  REQUIRE(bytes.size() >= at);
  for (uint64_t i = 0; i < at; ++i) REQUIRE(bytes[i] == 'r');
}

TEST_CASE("the extender waits for no write it does not cover, and stops cleanly", "[engine][room]") {
  TempDir dir;
  auto file = PosixEnv().OpenFile(dir.File("f"), OpenMode::kCreateExclusive);
  REQUIRE(file.ok());
  File* writer = file.value().get();
  SegmentExtender ext([] { return uint64_t{4096}; }, nullptr);
  auto second = PosixEnv().OpenFile(dir.File("f"), OpenMode::kReadWrite);
  REQUIRE(second.ok());
  ext.Start(std::move(second.value()), 0, 64 << 10);
  uint64_t at = 0;
  const std::string rec(1000, 'r');
  while (at + rec.size() <= (64 << 10)) {
    ext.BeforeWrite(at + rec.size());
    REQUIRE(writer->PWrite(at, rec).ok());
    at += rec.size();
    ext.AfterWrite(at);
  }
  const uint64_t room = ext.Stop();
  CHECK(room <= (64 << 10));
  CHECK(room >= at);
  const std::string bytes = ReadFileBytes(dir.File("f"));
  // Every record byte is there: no zero write ever covered one.
  for (uint64_t i = 0; i < at; ++i) REQUIRE(bytes[i] == 'r');
  CHECK(AllZero(bytes.data() + at, bytes.size() - at));
  CHECK(ext.room_end() == 0);
}

TEST_CASE("the room never takes the space kept in reserve for compaction", "[engine][room][disk]") {
  // 7 MiB of reserve, a first step of 64 KiB (a small database): a step
  // that would leave less than the reserve plus 1 MiB of headroom is not made.
  const uint64_t disk = GENERATE(uint64_t{12} << 20, uint64_t{8} << 20);
  TempDir dir;
  FaultInjectionEnv env;
  env.SimulateDisk(dir.path(), disk);
  Options o = RoomOptions(8 << 20, 4 << 20);
  o.disk_reserve_bytes = 7 << 20;
  TestDb db(env, dir.path(), o);
  REQUIRE(db.Open().ok());
  REQUIRE(db.Put("k", "v").status.ok());
  const std::string bytes = ReadFileBytes(SegmentFiles(dir.path())[0]);
  INFO("disk " << disk);
  if (disk == (uint64_t{12} << 20)) CHECK(bytes.size() > RecordsEnd(bytes));  // 12 >= 7 + 1 + 1/16: room
  else CHECK(bytes.size() == RecordsEnd(bytes));                             // 8 < 7 + 1 + 1/16: none
  CHECK(db.Get("k").value() == "v");
}

TEST_CASE("the room's step follows the live data: small next to a small database", "[engine][room]") {
  TempDir dir;
  const Options o = RoomOptions(64 << 20, 4 << 20);
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  REQUIRE(db.Put("k", "v").status.ok());
  const std::string seg = SegmentFiles(dir.path())[0];
  CHECK(fs::file_size(seg) <= kSegmentHeaderBytes + (64 << 10) + 100);  // the minimum step, not 4 MiB
  // 32 MiB of live data: steps of 128 KiB (a 256th), the room at most two of them past the records.
  const std::string value(64 << 10, 'v');
  for (int i = 0; i < 512; ++i) REQUIRE(db.Put("big" + std::to_string(i), value).status.ok());
  db.Close();
  // The active segment (the writer may have rotated: the newest one).
  const std::string bytes = ReadFileBytes(SegmentFiles(dir.path()).back());
  const uint64_t end = RecordsEnd(bytes);
  CHECK(bytes.size() > end);
  CHECK(bytes.size() <= end + 2 * (128 << 10) + (64 << 10));
}
