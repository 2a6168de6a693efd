// Recovery compares every index candidate of a key it replays with the record
// at the candidate's location (engine/candidate_reader.h): those records are
// read, never mapped, one header and key at a time, so what an open holds
// of sealed segments is bounded whatever their sizes; and a candidate's sector that cannot be read is an I/O
// error naming the file and the offset (never a SIGBUS, never damage).
//
// What the open takes of each segment file is seen through the file seam:
// every read names the memory it fills (FaultInjectionEnv::SetReadHook),
// every mapping its size (LastMappedBytes).
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>

#include "engine/record.h"
#include "tests/engine/support/fault_env.h"
#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;
namespace fs = std::filesystem;

namespace {

constexpr int kKeys = 4000;
constexpr size_t kKeyBytes = 9;  // "key-00000"
constexpr size_t kValueBytes = 200;

std::string KeyOf(int i) {
  char k[16];
  std::snprintf(k, sizeof k, "key-%05d", i);
  return k;
}

// A closed database of small segments: every key written once (version 1),
// then every key overwritten once (version 2), so that each key's first
// record lies in a sealed segment (with its hint) and its second one later.
struct Fixture {
  TempDir dir;
  Options o;

  Fixture() {
    o.segment_bytes = 64 << 10;
    o.room_bytes = 0;
    o.sync = SyncMode::kNone;
    o.compression_level = 0;
    FaultInjectionEnv env;
    TestDb db(env, dir.path(), o);
    REQUIRE(db.Open().ok());
    for (int version = 1; version <= 2; ++version)
      for (int i = 0; i < kKeys; ++i)
        REQUIRE(db.Put(KeyOf(i), MakeValue(KeyOf(i), version, kValueBytes, false)).status.ok());
    db.Close();
    REQUIRE(SegmentFiles(dir.path()).size() >= 8);
  }

  // Every key answers its second value.
  static void CheckAll(TestDb& db) {
    for (int i = 0; i < kKeys; ++i) {
      auto got = db.Get(KeyOf(i));
      INFO(KeyOf(i));
      REQUIRE(got.ok());
      uint64_t version = 0;
      CHECK(CheckValue(KeyOf(i), got.value(), &version));
      CHECK(version == 2);
    }
  }
};

// The offset of key's first record in the segment file at path (npos: none).
uint64_t FirstRecordOf(const std::string& path, const std::string& key) {
  const std::string bytes = ReadFileBytes(path);
  const size_t at = bytes.find(key);
  if (at == std::string::npos || at < kRecordHeaderBytes) return std::string::npos;
  return at - kRecordHeaderBytes;
}

}  // namespace

TEST_CASE("an open compares overwritten keys with their older records in sealed segments by reading each "
          "record's header and key into one buffer, never mapping a segment",
          "[engine][recovery][candidate_reader]") {
  Fixture f;
  const std::vector<std::string> segments = SegmentFiles(f.dir.path());
  const std::set<std::string> sealed(segments.begin(), segments.end() - 1);
  for (const std::string& path : sealed) REQUIRE(fs::exists(path.substr(0, path.size() - 4) + ".hint"));

  FaultInjectionEnv env;  // fresh: it has seen no mapping yet
  ReadFootprint reads(env, [&](const std::string& path) { return sealed.count(path) != 0; });
  TestDb db(env, f.dir.path(), f.o);
  REQUIRE(db.Open().ok());
  reads.Stop();
  uint64_t mapped_bytes = 0;
  for (const std::string& path : sealed) mapped_bytes += env.LastMappedBytes(path);
  const uint64_t read_bytes = reads.read_bytes(), held = reads.held_bytes();

  // Memory: one record header and key at a time, and the segment header the
  // open reads first. Reads: each segment's header, and per overwritten key
  // the header and key of its older record.
  const uint64_t held_bound = kRecordHeaderBytes + f.o.max_key_bytes + kSegmentHeaderBytes;
  const uint64_t read_bound = sealed.size() * kSegmentHeaderBytes + kKeys * (kRecordHeaderBytes + kKeyBytes);
  uint64_t sealed_bytes = 0;
  for (const std::string& path : sealed) sealed_bytes += fs::file_size(path);
  INFO("sealed segments " << sealed.size() << " of " << sealed_bytes << " bytes; read " << read_bytes
                          << " into " << held << " bytes of memory (bounds " << read_bound << ", " << held_bound
                          << "), mapped " << mapped_bytes);
  CHECK(mapped_bytes == 0);
  CHECK(held + mapped_bytes <= held_bound);
  CHECK(read_bytes + mapped_bytes <= read_bound);
  CHECK(read_bytes >= kKeys * (kRecordHeaderBytes + kKeyBytes));  // every older record was compared, by reading it
  Fixture::CheckAll(db);
}

TEST_CASE("an older record of an overwritten key that cannot be read, with no hint to describe it, fails the open "
          "with an I/O error naming its segment file and offset; once readable the open finds every record",
          "[engine][recovery][candidate_reader][faults]") {
  Fixture f;
  const std::vector<std::string> segments = SegmentFiles(f.dir.path());
  // key 0's first record is in the first segment; its second one later.
  const std::string first = segments.front();
  const std::string key = KeyOf(0);
  const uint64_t older = FirstRecordOf(first, key);
  REQUIRE(older != std::string::npos);
  std::string newer_segment;
  for (size_t i = 1; i < segments.size() && newer_segment.empty(); ++i)
    if (FirstRecordOf(segments[i], key) != std::string::npos) newer_segment = segments[i];
  REQUIRE(!newer_segment.empty());
  // Without hints every segment is scanned; the first one reads cleanly, and
  // its record goes bad once the scan of the segment holding the newer
  // record begins. The hints the scans write cannot be read from then on.
  for (const std::string& path : segments) fs::remove(path.substr(0, path.size() - 4) + ".hint");

  FaultInjectionEnv env;
  const std::string first_name = fs::path(first).filename().string();
  // The sector under the key (after the record's header): the header reads, the key does not.
  const uint64_t bad = older + kRecordHeaderBytes;
  bool armed = false;
  env.SetReadHook([&](const std::string& path, uint64_t, size_t n, const char*) {
    // Its header is read before any segment is replayed; its scan reads more.
    if (armed || path != newer_segment || n <= kSegmentHeaderBytes) return;
    armed = true;
    env.SetUnreadable(first_name, bad);
    env.FailNth(FaultOp::kMap, 1, Code::kIOError, true, ".hint");
  });
  TestDb db(env, f.dir.path(), f.o);
  const Status s = db.Open();
  env.SetReadHook({});
  REQUIRE(armed);
  INFO(s.ToString());
  CHECK(s.Is(Code::kIOError));
  CHECK(std::string(s.message()).find(first) != std::string::npos);
  CHECK(std::string(s.message()).find("offset " + std::to_string(bad)) != std::string::npos);

  env.ClearUnreadable();
  env.ClearFaults();
  REQUIRE(db.Open().ok());
  Fixture::CheckAll(db);
}
