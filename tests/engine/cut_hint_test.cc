#include "engine/cut_hint.h"

#include <catch2/catch.hpp>

#include <string>
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
