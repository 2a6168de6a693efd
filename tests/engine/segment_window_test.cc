// Recovery and verify read a segment through a window of kScanWindowBytes
// (engine/segment_window.h): the memory a scan fills is bounded by the window
// plus one record larger than it, whatever the segment's size, and every rule
// of the scan holds across the window's edges: a torn record is cut at its
// start, a record that fails its checksum is damage (its key answers an
// error, the records after it stay), a sector that cannot be read fails the
// open and changes nothing, a record larger than the window reads whole.
//
// What a scan holds is seen through the file seam: every read of a segment
// file names the memory it fills (FaultInjectionEnv::SetReadHook), and the
// bytes of memory those reads fill, per file, are what a scan of it held.
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <mutex>

#include "engine/record.h"
#include "engine/segment_window.h"
#include "engine/verify.h"
#include "tests/engine/support/fault_env.h"
#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;
namespace fs = std::filesystem;

namespace {

constexpr uint64_t kWindow = kScanWindowBytes;
// Where the scan's first window after the segment header ends: the first
// window edge a record can straddle.
constexpr uint64_t kEdge = kSegmentHeaderBytes + kWindow;
// The memory the reads of one segment file may fill during an open: the
// window, and the segment header recovery reads before it scans.
constexpr uint64_t kHeld = kWindow + kSegmentHeaderBytes;

// Per segment file, the memory its reads filled: the union of the ranges
// [scratch, scratch + n) of every read, and the ranges of the file read.
class ReadLog {
 public:
  explicit ReadLog(FaultInjectionEnv& env) : env_(env) {
    env_.SetReadHook([this](const std::string& path, uint64_t offset, size_t n, const char* scratch) {
      if (path.size() < 4 || path.compare(path.size() - 4, 4, ".kxd") != 0) return;
      std::lock_guard lock(mu_);
      auto& m = memory_[path];
      const auto from = reinterpret_cast<uintptr_t>(scratch);
      Add(m, from, from + n);
      reads_[path].emplace_back(offset, offset + n);
    });
  }
  ~ReadLog() { env_.SetReadHook({}); }

  // The most bytes of memory the reads of one segment file filled.
  uint64_t MostHeld() {
    std::lock_guard lock(mu_);
    uint64_t most = 0;
    for (const auto& [path, ranges] : memory_) {
      uint64_t sum = 0;
      for (const auto& [from, to] : ranges) sum += to - from;
      most = std::max(most, sum);
    }
    return most;
  }
  // Whether a read of path ended strictly inside [from, to): the bytes were
  // not all in one read.
  bool ReadEndedInside(const std::string& path, uint64_t from, uint64_t to) {
    std::lock_guard lock(mu_);
    for (const auto& [begin, end] : reads_[path])
      if (begin < to && end > from && end < to) return true;
    return false;
  }
  // The longest single read of path.
  uint64_t LongestRead(const std::string& path) {
    std::lock_guard lock(mu_);
    uint64_t most = 0;
    for (const auto& [begin, end] : reads_[path]) most = std::max(most, end - begin);
    return most;
  }
  void Clear() {
    std::lock_guard lock(mu_);
    memory_.clear();
    reads_.clear();
  }

 private:
  // Merges [from, to) into the disjoint ranges m (start -> end).
  static void Add(std::map<uintptr_t, uintptr_t>& m, uintptr_t from, uintptr_t to) {
    auto it = m.upper_bound(from);
    if (it != m.begin() && std::prev(it)->second >= from) {
      --it;
      from = it->first;
      to = std::max(to, it->second);
      it = m.erase(it);
    }
    while (it != m.end() && it->first <= to) {
      to = std::max(to, it->second);
      it = m.erase(it);
    }
    m[from] = to;
  }

  FaultInjectionEnv& env_;
  std::mutex mu_;
  std::map<std::string, std::map<uintptr_t, uintptr_t>> memory_;
  std::map<std::string, std::vector<std::pair<uint64_t, uint64_t>>> reads_;
};

// A closed database whose only segment is the active one, longer than
// `bytes`: values of value_bytes (incompressible), key "k<i>"; with
// big_value_bytes > 0, one more value of that size (key "big") right after
// the record that straddles kEdge. The segment file is written here with the
// engine's encoders, as a writer appends it (no MANIFEST, no hint, no
// preallocated room: the file ends at its last record): a writer rotates its
// active segment long before it holds a quarter of the live data, so a large
// active segment would need four times its size written first.
struct Fixture {
  TempDir dir;
  FaultInjectionEnv env;
  Options o;
  std::map<std::string, std::string> model;
  std::unique_ptr<TestDb> db;
  std::string segment;      // the active segment's path
  std::string edge_key;     // the key of the record that straddles kEdge
  uint64_t edge_from = 0;   // that record's offsets
  uint64_t edge_to = 0;
  uint64_t largest_record = 0;
  uint64_t big_from = 0;    // the offset of "big"'s record, when there is one

  Fixture(uint64_t bytes, size_t value_bytes, size_t big_value_bytes = 0) {
    o.room_bytes = 0;
    o.sync = SyncMode::kNone;
    o.compression_level = 0;
    SegmentHeader header;
    header.seed = 0x5eed5eed5eed5eedull;
    header.segment_id = 1;
    header.seq_floor = 1;
    std::string content(kSegmentHeaderBytes, '\0');
    EncodeSegmentHeader(header, content.data());
    uint64_t seq = 1;
    auto put = [&](const std::string& k, const std::string& v) {
      const uint64_t from = content.size();
      EncodeRecord(seq++, RecordType::kPut, Codec::kRaw, k, "", v, v.size(), &content);
      model[k] = v;
      largest_record = std::max<uint64_t>(largest_record, content.size() - from);
      if (from < kEdge && content.size() > kEdge) {
        edge_key = k;
        edge_from = from;
        edge_to = content.size();
      }
    };
    bool big_done = big_value_bytes == 0;
    for (int i = 0; content.size() < bytes || !big_done; ++i) {
      const std::string k = "k" + std::to_string(i);
      put(k, MakeValue(k, 1, value_bytes, false));
      if (!big_done && content.size() > kEdge) {
        big_from = content.size();
        put("big", MakeValue("big", 1, big_value_bytes, false));
        big_done = true;
      }
    }
    REQUIRE(!edge_key.empty());
    segment = dir.File(SegmentFileName(1));
    WriteFileBytes(segment, content);
    db = std::make_unique<TestDb>(env, dir.path(), o);
    // A first open makes it the writer's own (its LOCK, MANIFEST and the
    // active segment's hint); the segment keeps every byte.
    REQUIRE(db->Open().ok());
    CheckAll();
    db->Close();
    REQUIRE(ReadFileBytes(segment) == content);
  }

  // Every key of the model answers its value.
  void CheckAll() {
    for (const auto& [k, v] : model) {
      auto got = db->Get(k);
      INFO(k);
      REQUIRE(got.ok());
      CHECK(got.value() == v);
    }
  }
};

}  // namespace

TEST_CASE("recovery and verify scan an active segment many windows long holding at most one window of it",
          "[engine][recovery][segment_window]") {
  Fixture f(6 * kWindow, 64 << 10);
  ReadLog log(f.env);
  REQUIRE(f.db->Open().ok());
  INFO("largest record " << f.largest_record << ", memory filled " << log.MostHeld());
  CHECK(log.MostHeld() <= kHeld);
  // The record across the first window's edge was read again from its start.
  CHECK(log.ReadEndedInside(f.segment, f.edge_from, f.edge_to));
  f.CheckAll();
  f.db->Close();

  log.Clear();
  std::vector<std::string> findings;
  auto report = VerifyDatabase(f.env, f.dir.path(), f.o, [&](const std::string& line) { findings.push_back(line); });
  REQUIRE(report.ok());
  CHECK(report->damaged == 0);
  CHECK(report->records == f.model.size());
  CHECK(log.MostHeld() <= kHeld);
}

TEST_CASE("a torn record across a window's edge is cut at its start; every record before it stays",
          "[engine][recovery][segment_window]") {
  Fixture f(kEdge, 32 << 10);
  // The record across the edge is the last one: the fixture stops after it.
  const std::string pristine = ReadFileBytes(f.segment);
  REQUIRE(f.edge_to == pristine.size());
  f.model.erase(f.edge_key);
  for (uint64_t cut : {f.edge_from + 1, f.edge_from + kRecordHeaderBytes + 1, kEdge - 1, kEdge, kEdge + 1,
                       f.edge_to - 1}) {
    INFO("cut at " << cut);
    REQUIRE(DropCloseTrailer(f.segment));  // a crash, not a clean close, left it
    WriteFileBytes(f.segment, pristine.substr(0, cut));
    ReadLog log(f.env);
    REQUIRE(f.db->Open().ok());
    CHECK(log.MostHeld() <= kHeld);
    CHECK(f.db->Get(f.edge_key).status().Is(Code::kNotFound));
    f.CheckAll();
    f.db->Close();
    CHECK(fs::file_size(f.segment) == f.edge_from);
  }
}

TEST_CASE("a record across a window's edge that fails its checksum is damage: its key answers an error, the "
          "records after it stay, nothing is cut",
          "[engine][recovery][segment_window]") {
  Fixture f(kEdge + 8 * (32 << 10), 32 << 10);
  const std::string pristine = ReadFileBytes(f.segment);
  REQUIRE(f.edge_to < pristine.size());
  f.model.erase(f.edge_key);
  // A byte of its value after the edge (body checksum), and a byte of its
  // header (the scan searches for the next record across the edge).
  for (uint64_t at : {kEdge + 100, f.edge_from + 20}) {
    INFO("flipped byte at " << at);
    std::string damaged = pristine;
    damaged[at] ^= 0x40;
    WriteFileBytes(f.segment, damaged);
    ReadLog log(f.env);
    REQUIRE(f.db->Open().ok());
    CHECK(log.MostHeld() <= kHeld);
    CHECK(f.db->writer().Stats().corruptions >= 1);
    CHECK_FALSE(f.db->Get(f.edge_key).ok());
    CHECK_FALSE(f.db->Get(f.edge_key).status().Is(Code::kNotFound));
    f.CheckAll();
    f.db->Close();
    CHECK(fs::file_size(f.segment) == pristine.size());
  }
}

TEST_CASE("a sector that cannot be read at a window's edge fails every open with an I/O error naming the segment "
          "and offset, changes nothing, and once readable every record is there",
          "[engine][recovery][segment_window][faults]") {
  // Longer than the edge by more than a window: the scan reads the file's
  // last window first (where its zero tail would begin), then from the start.
  Fixture f(kEdge + kWindow + 8 * (32 << 10), 32 << 10);
  const std::string name = fs::path(f.segment).filename().string();
  uint32_t id = 0;
  REQUIRE(ParseSegmentFileName(name, &id));
  struct Bad {
    const char* what;
    uint64_t from;
    uint64_t bytes;  // 0: to the end of the file
  };
  const Bad cases[] = {
      {"a sector across the first window's edge", kEdge - 256, 512},
      {"a sector starting at the first window's edge", kEdge, 512},
      {"a sector ending at the first window's edge", kEdge - 512, 512},
      {"the sector after the record across the edge", f.edge_to, 512},
      {"every byte from the edge on", kEdge, 0},
  };
  for (const Bad& bad : cases) {
    INFO(bad.what << ": from " << bad.from);
    const auto before = FileBytesOf(f.dir.path());
    if (bad.bytes == 0) f.env.SetUnreadable(name, bad.from);
    else f.env.SetUnreadableSector(name, bad.from, bad.bytes);
    for (int attempt = 0; attempt < 2; ++attempt) {
      ReadLog log(f.env);
      const Status s = f.db->Open();
      INFO(s.ToString());
      CHECK(s.Is(Code::kIOError));
      CHECK(std::string(s.message()).find("segment " + std::to_string(id)) != std::string::npos);
      CHECK(std::string(s.message()).find("offset " + std::to_string(bad.from)) != std::string::npos);
      CHECK(FileBytesOf(f.dir.path()) == before);
      CHECK(log.MostHeld() <= kHeld);
    }
    f.env.ClearUnreadable();
    REQUIRE(f.db->Open().ok());
    f.CheckAll();
    f.db->Close();
  }
}

TEST_CASE("a record larger than the window is read by itself, whole, and the scan holds the window and that "
          "record at most; damaged, it is damage like any other",
          "[engine][recovery][segment_window]") {
  const size_t big_bytes = kWindow + (kWindow / 2);
  Fixture f(kEdge + 4 * (64 << 10), 64 << 10, big_bytes);
  const uint64_t big_record = RecordBytes(3, 0, big_bytes);
  REQUIRE(f.largest_record == big_record);
  {
    ReadLog log(f.env);
    REQUIRE(f.db->Open().ok());
    CHECK(log.LongestRead(f.segment) >= big_record);
    CHECK(log.MostHeld() <= kHeld + big_record);
    f.CheckAll();
    f.db->Close();
  }
  // A byte in the middle of its value: the key answers an error, the rest stay.
  const std::string pristine = ReadFileBytes(f.segment);
  std::string damaged = pristine;
  damaged[f.big_from + big_record / 2] ^= 0x01;
  WriteFileBytes(f.segment, damaged);
  f.model.erase("big");
  ReadLog log(f.env);
  REQUIRE(f.db->Open().ok());
  CHECK(log.MostHeld() <= kHeld + big_record);
  CHECK_FALSE(f.db->Get("big").ok());
  CHECK_FALSE(f.db->Get("big").status().Is(Code::kNotFound));
  f.CheckAll();
}

TEST_CASE("a window counts its reads of the file: bytes it already holds cost none", "[engine][segment_window]") {
  TempDir dir;
  const std::string path = dir.File("seg");
  std::string bytes(100000, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7);
  WriteFileBytes(path, bytes);
  auto file = PosixEnv().OpenFile(path, OpenMode::kRead);
  REQUIRE(file.ok());
  SegmentWindow window(*file.value(), path, bytes.size(), 4096);
  const char* p = nullptr;
  CHECK(window.reads() == 0);
  REQUIRE(window.Bytes(100, 40, &p).ok());  // a refill from 100
  CHECK(window.reads() == 1);
  CHECK(std::string_view(p, 40) == std::string_view(bytes).substr(100, 40));
  REQUIRE(window.Bytes(100, 4000, &p).ok());  // within the window
  REQUIRE(window.Bytes(4000, 196, &p).ok());
  CHECK(window.reads() == 1);
  REQUIRE(window.Bytes(4000, 300, &p).ok());  // past its end: a refill from 4000
  CHECK(window.reads() == 2);
  CHECK(std::string_view(p, 300) == std::string_view(bytes).substr(4000, 300));
  REQUIRE(window.Bytes(5000, 10000, &p).ok());  // larger than the window: read by itself
  CHECK(window.reads() == 3);
  REQUIRE(window.Bytes(5000, 40, &p).ok());  // the start of that range, held
  CHECK(window.reads() == 3);
  CHECK(std::string_view(p, 40) == std::string_view(bytes).substr(5000, 40));
}
