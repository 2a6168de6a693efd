#include "engine/hint_file.h"

#include <catch2/catch.hpp>

#include <vector>

#include "engine/coding.h"
#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;

namespace {

constexpr uint64_t kSegmentBytes = 10000;

std::string WriteHint(const TempDir& dir, uint32_t id, const std::vector<HintEntry>& entries) {
  const std::string path = dir.File(HintFileName(id));
  auto w = HintWriter::Create(PosixEnv(), path, id);
  REQUIRE(w.ok());
  for (const HintEntry& e : entries) w.value()->Add(e);
  REQUIRE(w.value()->Finish(kSegmentBytes).ok());
  return path;
}

struct Loaded {
  Status status;
  std::vector<std::pair<std::string, uint64_t>> entries;  // key, seq
};

Loaded Load(const std::string& path, uint32_t id, uint64_t segment_bytes = kSegmentBytes) {
  Loaded l;
  l.status = LoadHintFile(PosixEnv(), path, id, segment_bytes, RecordLimits{},
                          [&](const HintEntry& e) { l.entries.emplace_back(std::string(e.key), e.seq); });
  return l;
}

const std::vector<HintEntry> kEntries = {
    {5, kSegmentHeaderBytes, 100, RecordType::kPut, "alpha"},
    {6, kSegmentHeaderBytes + 100, 60, RecordType::kDelete, std::string_view("b\0t", 3)},
    {9, 1000, 500, RecordType::kPut, "gamma"},
};

}  // namespace

TEST_CASE("a finished hint file loads back every entry in order", "[engine][hint]") {
  TempDir dir;
  const std::string path = WriteHint(dir, 7, kEntries);
  Loaded l = Load(path, 7);
  REQUIRE(l.status.ok());
  REQUIRE(l.entries.size() == 3);
  CHECK(l.entries[0] == std::make_pair(std::string("alpha"), uint64_t{5}));
  CHECK(l.entries[1] == std::make_pair(std::string("b\0t", 3), uint64_t{6}));
  CHECK(l.entries[2] == std::make_pair(std::string("gamma"), uint64_t{9}));
}

TEST_CASE("a hint that does not check out is rejected whole and hands out nothing", "[engine][hint]") {
  TempDir dir;
  const std::string path = WriteHint(dir, 7, kEntries);
  const std::string good = ReadFileBytes(path);
  SECTION("missing") { CHECK(Load(dir.File("nope.hint"), 7).status.Is(Code::kNotFound)); }
  SECTION("another segment id or size") {
    CHECK(Load(path, 8).status.Is(Code::kCorruption));
    CHECK(Load(path, 7, kSegmentBytes + 1).status.Is(Code::kCorruption));
  }
  SECTION("every truncation") {
    for (size_t n = 0; n < good.size(); ++n) {
      WriteFileBytes(path, good.substr(0, n));
      Loaded l = Load(path, 7);
      INFO("length " << n);
      CHECK(l.status.Is(Code::kCorruption));
      CHECK(l.entries.empty());
    }
  }
  SECTION("every flipped byte") {
    for (size_t i = 0; i < good.size(); ++i) {
      std::string bad = good;
      bad[i] ^= 0x20;
      WriteFileBytes(path, bad);
      Loaded l = Load(path, 7);
      INFO("byte " << i);
      CHECK_FALSE(l.status.ok());
      CHECK(l.entries.empty());
    }
  }
  SECTION("entries outside the segment or overlapping, even with a valid checksum") {
    std::vector<HintEntry> outside = kEntries;
    outside[2].offset = kSegmentBytes - 10;
    CHECK(Load(WriteHint(dir, 9, outside), 9).status.Is(Code::kCorruption));
    std::vector<HintEntry> overlap = kEntries;
    overlap[1].offset = kSegmentHeaderBytes + 50;
    CHECK(Load(WriteHint(dir, 10, overlap), 10).status.Is(Code::kCorruption));
    std::vector<HintEntry> in_header = kEntries;
    in_header[0].offset = 10;
    CHECK(Load(WriteHint(dir, 11, in_header), 11).status.Is(Code::kCorruption));
  }
}
