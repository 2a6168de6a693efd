#include "engine/cut_hint.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "engine/compress.h"
#include "engine/hint_file.h"
#include "engine/record.h"
#include "tests/engine/support/fault_env.h"
#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;

namespace {

constexpr uint32_t kId = 7;
const RecordLimits kLimits{kLargestKeyBytes, kLargestValueBytes};

struct Written {
  std::string key;
  uint64_t seq = 0;
  uint64_t offset = 0;
  uint64_t bytes = 0;
  RecordType type = RecordType::kPut;
};

// A segment file as the writer appends it: header, then one record per raw
// value size (a value of 256 bytes or more compressed, as the service
// stores it), and a delete; *out lists where each record landed.
std::string BuildSegment(const std::vector<size_t>& value_sizes, std::vector<Written>* out) {
  std::string seg(kSegmentHeaderBytes, '\0');
  SegmentHeader h;
  h.seed = 0x1234;
  h.segment_id = kId;
  h.seq_floor = 10;
  EncodeSegmentHeader(h, seg.data());
  uint64_t seq = 10;
  for (size_t i = 0; i < value_sizes.size(); ++i) {
    const std::string key = "key-" + std::to_string(i);
    const std::string raw = MakeValue(key, 1, value_sizes[i], /*compressible=*/true);
    std::string compressed;
    const Codec codec = EncodeValue(raw, 1, 256, &compressed);
    CHECK((codec == Codec::kZstd) == (value_sizes[i] >= 256));
    const std::string_view stored = codec == Codec::kZstd ? std::string_view(compressed) : std::string_view(raw);
    const uint64_t at = seg.size();
    EncodeRecord(seq, RecordType::kPut, codec, key, "text/plain", stored, raw.size(), &seg);
    out->push_back({key, seq, at, seg.size() - at, RecordType::kPut});
    ++seq;
  }
  const uint64_t at = seg.size();
  EncodeRecord(seq, RecordType::kDelete, Codec::kRaw, "key-0", "", "", 0, &seg);
  out->push_back({"key-0", seq, at, seg.size() - at, RecordType::kDelete});
  return seg;
}

// The hint a clean close leaves for the records in `records`, ending at cut.
std::string ExpectedHint(const TempDir& dir, const std::vector<Written>& records, uint64_t cut) {
  const std::string path = dir.File("expected.hint");
  auto w = HintWriter::Create(PosixEnv(), path, kId);
  REQUIRE(w.ok());
  for (const Written& r : records) {
    if (r.offset + r.bytes <= cut) w.value()->Add(HintEntry{r.seq, r.offset, r.bytes, r.type, r.key});
  }
  REQUIRE(w.value()->Finish(cut).ok());
  return ReadFileBytes(path);
}

std::vector<std::string> LoadedKeys(const std::string& path, uint64_t segment_bytes, Status* status) {
  std::vector<std::string> keys;
  *status = LoadHintFile(PosixEnv(), path, kId, segment_bytes, kLimits,
                         [&](const HintEntry& e) { keys.emplace_back(e.key); });
  return keys;
}

}  // namespace

TEST_CASE("a cut's hint names exactly the records below the cut, on both sides of the size thresholds, "
          "byte for byte what a clean close writes",
          "[engine][hint][backup]") {
  TempDir dir;
  std::vector<Written> records;
  const std::string seg = BuildSegment({255, 256, 1024, 1 << 20, (1 << 20) + 1, 100}, &records);
  const std::string seg_path = dir.File(SegmentFileName(kId));
  // Bytes after the last record: the writer's preallocated room, or records
  // published after the cut.
  WriteFileBytes(seg_path, seg + std::string(4096, 'x'));
  const uint64_t window = GENERATE(uint64_t{4096}, kCutHintWindowBytes);
  // Every record boundary: header only, each record's end, the whole log.
  for (size_t n = 0; n <= records.size(); ++n) {
    const uint64_t cut = n == 0 ? kSegmentHeaderBytes : records[n - 1].offset + records[n - 1].bytes;
    const std::string hint_path = dir.File("cut.hint");
    INFO("cut after " << n << " records, at " << cut << ", window " << window);
    REQUIRE(WriteCutHint(PosixEnv(), seg_path, kId, cut, kLimits, hint_path, window).ok());
    CHECK(ReadFileBytes(hint_path) == ExpectedHint(dir, records, cut));
    Status s;
    const std::vector<std::string> keys = LoadedKeys(hint_path, cut, &s);
    REQUIRE(s.ok());
    REQUIRE(keys.size() == n);
    for (size_t i = 0; i < n; ++i) CHECK(keys[i] == records[i].key);
  }
}

TEST_CASE("a copy of the segment cut short of a cut's hint is told apart: the hint records the longer size",
          "[engine][hint][backup]") {
  TempDir dir;
  std::vector<Written> records;
  const std::string seg = BuildSegment({255, 256, 1024, 100}, &records);
  const std::string seg_path = dir.File(SegmentFileName(kId));
  WriteFileBytes(seg_path, seg);
  const std::string hint_path = dir.File("cut.hint");
  REQUIRE(WriteCutHint(PosixEnv(), seg_path, kId, seg.size(), kLimits, hint_path).ok());
  // Cut at a record boundary and inside a record: the hint still loads for
  // the size it records (recovery names the lost keys damaged), and says
  // that size is not the file's.
  for (const uint64_t file_bytes : {records[2].offset, records[2].offset + 7}) {
    uint64_t recorded = 0;
    Status s = LoadHintFile(PosixEnv(), hint_path, kId, file_bytes, kLimits, [](const HintEntry&) {}, &recorded);
    CHECK(s.Is(Code::kCorruption));
    CHECK(recorded == seg.size());
  }
  Status s;
  CHECK(LoadedKeys(hint_path, kAnySegmentSize, &s).size() == records.size());
  CHECK(s.ok());
}

TEST_CASE("a cut's hint is refused when the cut is not a record boundary or a record below it is damaged",
          "[engine][hint][backup]") {
  TempDir dir;
  std::vector<Written> records;
  std::string seg = BuildSegment({255, 256, 1024}, &records);
  const std::string seg_path = dir.File(SegmentFileName(kId));
  const std::string hint_path = dir.File("cut.hint");
  WriteFileBytes(seg_path, seg);
  // Inside a record.
  CHECK(WriteCutHint(PosixEnv(), seg_path, kId, records[1].offset + 1, kLimits, hint_path).Is(Code::kCorruption));
  // Past the file's end.
  CHECK(WriteCutHint(PosixEnv(), seg_path, kId, seg.size() + 1, kLimits, hint_path).Is(Code::kCorruption));
  // Shorter than a header.
  CHECK(WriteCutHint(PosixEnv(), seg_path, kId, 10, kLimits, hint_path).Is(Code::kCorruption));
  // Another segment's id.
  CHECK(WriteCutHint(PosixEnv(), seg_path, kId + 1, seg.size(), kLimits, hint_path).Is(Code::kCorruption));
  // A damaged byte in the second record's value.
  seg[records[1].offset + records[1].bytes - 3] ^= 0x40;
  WriteFileBytes(seg_path, seg);
  CHECK(WriteCutHint(PosixEnv(), seg_path, kId, seg.size(), kLimits, hint_path).Is(Code::kCorruption));
  // Below the damage, the hint is whole.
  CHECK(WriteCutHint(PosixEnv(), seg_path, kId, records[1].offset, kLimits, hint_path).ok());
}

TEST_CASE("a cut's hint of a missing segment file is kNotFound", "[engine][hint][backup]") {
  TempDir dir;
  CHECK(WriteCutHint(PosixEnv(), dir.File(SegmentFileName(kId)), kId, kSegmentHeaderBytes, kLimits, dir.File("h"))
            .Is(Code::kNotFound));
}

TEST_CASE("a cut's hint is a scratch file: written whole but never synced", "[engine][hint][backup]") {
  // Nothing reads it after a crash; a sync of a hint as large as tens of MB
  // would hold the backup's response head for a disk flush.
  TempDir dir;
  std::vector<Written> records;
  const std::string seg = BuildSegment({255, 256, 1024, 100}, &records);
  const std::string seg_path = dir.File(SegmentFileName(kId));
  WriteFileBytes(seg_path, seg);
  FaultInjectionEnv env;
  int syncs = 0;
  env.SetSyncHook([&](const std::string&) { ++syncs; });
  const std::string hint_path = dir.File("cut.hint");
  REQUIRE(WriteCutHint(env, seg_path, kId, seg.size(), kLimits, hint_path).ok());
  CHECK(syncs == 0);
  CHECK(ReadFileBytes(hint_path) == ExpectedHint(dir, records, seg.size()));
}

namespace {

// Reads of the segment file through a FaultInjectionEnv, with an action run
// before the nth of them (1 = the first): a test's way to change the file
// between two reads of one WriteCutHint.
struct ReadsOf {
  explicit ReadsOf(std::string name) : segment(std::move(name)) {}
  std::string segment;  // the file name the reads are counted on
  uint64_t nth = 0;     // 0: no action
  std::function<void()> action;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;  // [offset, offset + n) of every read, in order

  void Arm(FaultInjectionEnv& env) {
    env.SetReadHook([this](const std::string& path, uint64_t offset, size_t n, const char*) {
      if (path.find(segment) == std::string::npos) return;
      ranges.emplace_back(offset, offset + n);
      if (ranges.size() == nth && action) action();
    });
  }
  // Whether a read from the nth on covers offset.
  bool ReadFromNthOn(uint64_t offset) const {
    for (size_t i = nth - 1; i < ranges.size(); ++i)
      if (ranges[i].first <= offset && offset < ranges[i].second) return true;
    return false;
  }
};

void FlipFileByte(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
  REQUIRE(f.good());
}

// A segment and its expected hint for the read-fault cases: records on both
// sides of the size thresholds; with the small window, small records only
// (the cases repeat the build once per read).
struct FaultCase {
  TempDir dir;
  std::vector<Written> records;
  std::string seg, seg_path, hint_path, expected;
  uint64_t cut = 0;
  explicit FaultCase(uint64_t window) {
    seg = BuildSegment(window < kCutHintWindowBytes ? std::vector<size_t>{255, 256, 1024, 1025, 100, 5000}
                                                    : std::vector<size_t>{255, 256, 1024, 1 << 20, (1 << 20) + 1, 100},
                       &records);
    cut = seg.size();
    seg_path = dir.File(SegmentFileName(kId));
    hint_path = dir.File("cut.hint");
    expected = ExpectedHint(dir, records, cut);
    Restore();
  }
  // The segment as the writer left it: the records, then bytes appended after the cut.
  void Restore() { WriteFileBytes(seg_path, seg + std::string(4096, 'x')); }
};

}  // namespace

TEST_CASE("a cut's hint meets a sector it cannot read below the cut: an I/O error, never a hint; past the cut: "
          "no matter",
          "[engine][hint][backup][faults]") {
  const uint64_t window = GENERATE(uint64_t{4096}, kCutHintWindowBytes);
  FaultCase fx(window);
  std::vector<uint64_t> below = {0, 20, kSegmentHeaderBytes - 1, window - 1, window, fx.cut - 1};
  for (const Written& r : fx.records)
    for (uint64_t at : {r.offset, r.offset + 18, r.offset + kRecordHeaderBytes, r.offset + r.bytes / 2,
                        r.offset + r.bytes - 1})
      below.push_back(at);
  FaultInjectionEnv env;
  for (uint64_t at : below) {
    if (at >= fx.cut) continue;
    INFO("unreadable byte at " << at << " of a " << fx.cut << "-byte cut, window " << window);
    env.SetUnreadableSector(SegmentFileName(kId), at, 1);
    Status s = WriteCutHint(env, fx.seg_path, kId, fx.cut, kLimits, fx.hint_path, window);
    env.ClearUnreadable();
    CHECK(s.Is(Code::kIOError));
  }
  for (uint64_t at : {fx.cut, fx.cut + 100}) {
    INFO("unreadable byte at " << at << ", past the cut at " << fx.cut);
    env.SetUnreadableSector(SegmentFileName(kId), at, 1);
    REQUIRE(WriteCutHint(env, fx.seg_path, kId, fx.cut, kLimits, fx.hint_path, window).ok());
    env.ClearUnreadable();
    CHECK(ReadFileBytes(fx.hint_path) == fx.expected);
  }
}

TEST_CASE("a cut's hint refuses the cut when any read of the segment fails or comes back short",
          "[engine][hint][backup][faults]") {
  const uint64_t window = GENERATE(uint64_t{4096}, kCutHintWindowBytes);
  // 0: the nth read fails (EIO); else the file shrinks to that many bytes
  // just before the nth read (a short read).
  const int how = GENERATE(0, 1, 2, 3);
  FaultCase fx(window);
  const uint64_t shrink_to = how == 1 ? 0 : how == 2 ? fx.records[2].offset : fx.cut - 1;
  FaultInjectionEnv env;
  ReadsOf reads(SegmentFileName(kId));
  reads.Arm(env);
  REQUIRE(WriteCutHint(env, fx.seg_path, kId, fx.cut, kLimits, fx.hint_path, window).ok());
  const size_t total = reads.ranges.size();
  REQUIRE(total >= 2);
  for (size_t nth = 1; nth <= total; ++nth) {
    INFO("read " << nth << " of " << total << (how == 0 ? " fails" : " finds the file cut to ")
                 << (how == 0 ? "" : std::to_string(shrink_to)) << ", window " << window);
    fx.Restore();
    reads.ranges.clear();
    reads.nth = nth;
    if (how == 0) {
      env.FailNth(FaultOp::kRead, nth, Code::kIOError, false, SegmentFileName(kId));
    } else {
      reads.action = [&] { std::filesystem::resize_file(fx.seg_path, shrink_to); };
    }
    Status s = WriteCutHint(env, fx.seg_path, kId, fx.cut, kLimits, fx.hint_path, window);
    env.ClearFaults();
    // The header is read by itself first: cut short there it is no segment header.
    CHECK((s.Is(Code::kIOError) || (how != 0 && nth == 1 && s.Is(Code::kCorruption))));
  }
}

TEST_CASE("a cut's hint of bytes that change between its reads describes the bytes as read, or is refused",
          "[engine][hint][backup][faults]") {
  const uint64_t window = GENERATE(uint64_t{4096}, kCutHintWindowBytes);
  FaultCase fx(window);
  FaultInjectionEnv env;
  ReadsOf reads(SegmentFileName(kId));
  reads.Arm(env);
  REQUIRE(WriteCutHint(env, fx.seg_path, kId, fx.cut, kLimits, fx.hint_path, window).ok());
  const size_t total = reads.ranges.size();
  // A byte of the first, a middle and the last record: its header, key, value, last byte.
  std::vector<uint64_t> where;
  for (const Written* r : {&fx.records.front(), &fx.records[fx.records.size() / 2], &fx.records.back()})
    for (uint64_t at : {r->offset + 2, r->offset + kRecordHeaderBytes, r->offset + r->bytes / 2,
                        r->offset + r->bytes - 1})
      where.push_back(at);
  int refused = 0, kept = 0;
  for (uint64_t at : where) {
    for (size_t nth = 1; nth <= total; ++nth) {
      INFO("byte " << at << " changes before read " << nth << " of " << total << ", window " << window);
      fx.Restore();
      reads.ranges.clear();
      reads.nth = nth;
      reads.action = [&] { FlipFileByte(fx.seg_path, at); };
      Status s = WriteCutHint(env, fx.seg_path, kId, fx.cut, kLimits, fx.hint_path, window);
      if (reads.ReadFromNthOn(at)) {
        // The changed byte was read: its record fails its checksum (or
        // its header, read again with the whole record, differs).
        INFO("status " << s.ToString());
        CHECK(s.Is(Code::kCorruption));
        ++refused;
      } else {
        // Read before it changed: the hint of the records as they were read.
        REQUIRE(s.ok());
        CHECK(ReadFileBytes(fx.hint_path) == fx.expected);
        ++kept;
      }
    }
  }
  CHECK(refused > 0);
}
