#include "engine/hint_file.h"

#include <catch2/catch.hpp>

#include <filesystem>
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

TEST_CASE("a hint loaded in batches hands out every entry in order, at most a batch at a time, "
          "each batch announced by the call before",
          "[engine][hint]") {
  TempDir dir;
  std::vector<std::string> keys;
  std::vector<HintEntry> entries;
  for (uint64_t i = 0; i < 2 * kHintBatchEntries + 5; ++i) keys.push_back("key-" + std::to_string(i));
  for (uint64_t i = 0; i < keys.size(); ++i)
    entries.push_back({100 + i, kSegmentHeaderBytes + i * 64, 64, i % 3 == 2 ? RecordType::kDelete : RecordType::kPut,
                       keys[i]});
  const std::string path = WriteHint(dir, 3, entries);
  std::vector<size_t> sizes;
  std::vector<std::pair<std::string, uint64_t>> got;
  std::vector<std::string> announced;  // each call's `next`, to compare with the following batch
  REQUIRE(LoadHintFileBatches(PosixEnv(), path, 3, kSegmentBytes, RecordLimits{},
                              [&](std::span<const HintEntry> b, std::span<const HintEntry> next) {
                                std::string keys_of_batch, keys_of_next;
                                for (const HintEntry& e : b) keys_of_batch += std::string(e.key) + ",";
                                for (const HintEntry& e : next) keys_of_next += std::string(e.key) + ",";
                                if (!announced.empty()) CHECK(announced.back() == keys_of_batch);
                                announced.push_back(keys_of_next);
                                sizes.push_back(b.size());
                                for (const HintEntry& e : b) got.emplace_back(std::string(e.key), e.seq);
                              })
              .ok());
  CHECK(sizes == std::vector<size_t>{kHintBatchEntries, kHintBatchEntries, 5});
  CHECK(announced.back().empty());
  REQUIRE(got.size() == entries.size());
  for (size_t i = 0; i < entries.size(); ++i) CHECK(got[i] == std::make_pair(keys[i], entries[i].seq));
  // Damage anywhere: no batch at all (a hint is all or nothing).
  std::string bad = ReadFileBytes(path);
  bad[bad.size() / 2] ^= 0x20;
  WriteFileBytes(path, bad);
  size_t calls = 0;
  CHECK(LoadHintFileBatches(PosixEnv(), path, 3, kSegmentBytes, RecordLimits{},
                            [&](std::span<const HintEntry>, std::span<const HintEntry>) { ++calls; })
            .Is(Code::kCorruption));
  CHECK(calls == 0);
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

TEST_CASE("hint entries are varints: a small record's entry is a few bytes plus its key", "[engine][hint]") {
  TempDir dir;
  std::vector<HintEntry> entries;
  std::vector<std::string> keys;
  keys.reserve(50);
  for (int i = 0; i < 50; ++i) keys.push_back("key-" + std::to_string(100000 + i));  // 10-byte keys
  uint64_t offset = kSegmentHeaderBytes;
  for (int i = 0; i < 50; ++i) {
    entries.push_back({1000 + static_cast<uint64_t>(i), offset, 150, RecordType::kPut, keys[i]});
    offset += 150;
  }
  const std::string path = WriteHint(dir, 3, entries);
  const size_t per_entry = (ReadFileBytes(path).size() - 48) / entries.size();
  CHECK(per_entry <= 10 + 8);  // key + seq delta, offset, size, key length, type (was 10 + 28)
  Loaded l = Load(path, 3);
  REQUIRE(l.status.ok());
  REQUIRE(l.entries.size() == 50);
  CHECK(l.entries[49] == std::make_pair(keys[49], uint64_t{1049}));
}

TEST_CASE("hint entries keep seqs that go down as well as up (compaction outputs copy old records)",
          "[engine][hint]") {
  TempDir dir;
  const std::vector<HintEntry> entries = {
      {1ull << 40, kSegmentHeaderBytes, 100, RecordType::kPut, "a"},
      {3, kSegmentHeaderBytes + 100, 100, RecordType::kPut, "b"},
      {~0ull >> 1, kSegmentHeaderBytes + 200, 100, RecordType::kDelete, "c"},
      {0, kSegmentHeaderBytes + 300, 100, RecordType::kPut, "d"},
  };
  Loaded l = Load(WriteHint(dir, 4, entries), 4);
  REQUIRE(l.status.ok());
  REQUIRE(l.entries.size() == 4);
  for (size_t i = 0; i < entries.size(); ++i) CHECK(l.entries[i].second == entries[i].seq);
}

TEST_CASE("a hint of format version 1 is not used (the segment is scanned instead)", "[engine][hint]") {
  TempDir dir;
  const std::string path = WriteHint(dir, 7, kEntries);
  std::string bytes = ReadFileBytes(path);
  PutFixed32(bytes.data() + 8, 1);
  WriteFileBytes(path, bytes);
  Loaded l = Load(path, 7);
  CHECK(l.status.Is(Code::kCorruption));
  CHECK(l.entries.empty());
}

TEST_CASE("varints round-trip and truncated or over-long ones are refused", "[engine][coding]") {
  for (uint64_t v : {0ull, 1ull, 127ull, 128ull, 300ull, 1ull << 35, ~0ull}) {
    std::string b;
    AppendVarint64(&b, v);
    const char* p = b.data();
    uint64_t got = 0;
    REQUIRE(GetVarint64(&p, b.data() + b.size(), &got));
    CHECK(got == v);
    CHECK(p == b.data() + b.size());
    const char* q = b.data();
    CHECK_FALSE(GetVarint64(&q, b.data() + b.size() - 1, &got));  // one byte short
  }
  const std::string over_long(10, '\xff');
  const char* p = over_long.data();
  uint64_t got = 0;
  CHECK_FALSE(GetVarint64(&p, over_long.data() + over_long.size(), &got));
  for (int64_t d : {0ll, -1ll, 1ll, -(1ll << 40), (1ll << 62)}) CHECK(UnZigZag(ZigZag(d)) == d);
}

TEST_CASE("a hint's trailer length is read without loading the hint, and its entry count only for that length",
          "[engine][hint]") {
  TempDir dir;
  const std::string path = WriteHint(dir, 7, kEntries);
  auto said = HintTrailerSegmentBytes(PosixEnv(), path);
  REQUIRE(said.ok());
  CHECK(said.value() == kSegmentBytes);
  auto count = HintEntryCount(PosixEnv(), path, kSegmentBytes);
  REQUIRE(count.ok());
  CHECK(count.value() == kEntries.size());
  CHECK(HintEntryCount(PosixEnv(), path, kSegmentBytes + 1).status().Is(Code::kCorruption));
  CHECK(HintTrailerSegmentBytes(PosixEnv(), dir.File("none.hint")).status().Is(Code::kNotFound));
  // Not a hint of this version: nothing is read as its trailer.
  std::string bytes = ReadFileBytes(path);
  bytes[0] = 'X';
  WriteFileBytes(path, bytes);
  CHECK(HintTrailerSegmentBytes(PosixEnv(), path).status().Is(Code::kCorruption));
  WriteFileBytes(path, bytes.substr(0, 30));
  CHECK(HintTrailerSegmentBytes(PosixEnv(), path).status().Is(Code::kCorruption));
}

TEST_CASE("a hint gathered across flushes and buffer growth holds exactly FORMAT.md's bytes for every entry",
          "[engine][hint]") {
  // Keys of every length from none to a few KiB, flushed as the writer does
  // (FlushIfLarge after each batch of entries), past the flush size twice:
  // the file must be the header, each entry encoded field by field, and the
  // trailer with the checksum of everything before it.
  TempDir dir;
  const uint32_t id = 9;
  const std::string path = dir.File(HintFileName(id));
  auto w = HintWriter::Create(PosixEnv(), path, id);
  REQUIRE(w.ok());
  std::string want;
  want.append("KINGXHNT", 8);
  AppendFixed32(&want, 2);
  AppendFixed32(&want, 0);
  AppendFixed64(&want, id);
  std::vector<std::string> keys;
  uint64_t seq = 1000, offset = kSegmentHeaderBytes, last_seq = 0, count = 0;
  size_t flushed = 0;
  while (want.size() < (5u << 20) / 2) {
    const size_t n = count % 97 == 0 ? 3000 + count % 1000 : count % 41;
    std::string key(n, static_cast<char>('a' + count % 26));
    if (n > 0) key[n - 1] = '\0';
    const uint64_t total = 40 + n + count % 300;
    seq = count % 5 == 4 ? seq - 3 : seq + 1 + count % 200;  // compaction outputs go down as well
    const RecordType type = count % 7 == 3 ? RecordType::kDelete : RecordType::kPut;
    w.value()->Add(HintEntry{seq, offset, total, type, key});
    AppendVarint64(&want, ZigZag(static_cast<int64_t>(seq - last_seq)));
    AppendVarint64(&want, offset);
    AppendVarint64(&want, total);
    AppendVarint64(&want, n);
    want.push_back(static_cast<char>(type));
    want += key;
    last_seq = seq;
    offset += total;
    ++count;
    if (count % 37 == 0) {
      REQUIRE(w.value()->FlushIfLarge().ok());
      const auto on_disk = static_cast<size_t>(std::filesystem::file_size(path));
      if (on_disk != flushed) {
        CHECK(ReadFileBytes(path) == want);  // a flush writes every byte gathered, in order
        flushed = on_disk;
      }
    }
  }
  CHECK(flushed > (1u << 20));  // the flush size was passed: a write happened in between
  CHECK(w.value()->finished_bytes() == want.size() + 24);
  REQUIRE(w.value()->Finish(offset).ok());
  AppendFixed64(&want, count);
  AppendFixed64(&want, offset);
  AppendFixed64(&want, Checksum64(want.data(), want.size()));
  CHECK(ReadFileBytes(path) == want);
}
