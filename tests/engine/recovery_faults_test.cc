// Recovery over sectors that cannot be read (FaultInjectionEnv::SetUnreadable:
// reads fail with EIO, mapped pages raise SIGBUS, every time) and over a
// segment truncated while recovery reads it. An I/O error is not damage: the
// open fails naming the segment and the offset, and changes nothing on disk;
// a hint file is only a cache of its segment, so one that cannot be read
// costs a scan. Values on both sides of the compression threshold and of a
// segment's size.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <map>
#include <mutex>

#include "engine/mapping_guard.h"
#include "engine/record.h"
#include "engine/verify.h"
#include "tests/engine/support/fault_env.h"
#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;
namespace fs = std::filesystem;

namespace {

constexpr uint64_t kSegmentBytes = 64 << 10;
constexpr char kBigKey[] = "the-value-under-test";

// One value on one side of a size threshold.
struct ValueKind {
  const char* name;
  size_t bytes;
  bool compressible;
};

const ValueKind kKinds[] = {
    {"255 bytes: below the compression threshold, stored raw", 255, true},
    {"256 compressible bytes: compressed", 256, true},
    {"a record just inside a segment", kSegmentBytes - 512, false},
    {"a record larger than a segment (a segment of its own)", kSegmentBytes + 4096, false},
};

// Every file of dir, name -> bytes (read around the env: no fault applies).
std::map<std::string, std::string> Snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) out[e.path().filename().string()] = ReadFileBytes(e.path().string());
  return out;
}

// A closed database of a few segments: fillers (overwritten once, so that
// compaction has dead bytes), the big key written after 6 KiB of them (its
// record starts past the first page of its segment unless it rotated), and
// more fillers so that it ends up sealed with a hint. No preallocated room:
// a segment file ends at its last record.
struct Fixture {
  TempDir dir;
  FaultInjectionEnv env;
  Options o;
  std::vector<std::string> errors;
  std::mutex errors_mu;
  std::map<std::string, std::string> model;
  std::string big_segment;   // the path of the segment file holding kBigKey's record
  uint64_t big_body = 0;     // an offset inside its value's stored bytes, past the segment's first page
  std::unique_ptr<TestDb> db;

  explicit Fixture(const ValueKind& kind) {
    o.segment_bytes = kSegmentBytes;
    o.room_bytes = 0;
    o.compression_level = 1;
    o.log_error = [this](const std::string& line) {
      std::lock_guard lock(errors_mu);
      errors.push_back(line);
    };
    db = std::make_unique<TestDb>(env, dir.path(), o);
    REQUIRE(db->Open().ok());
    auto put = [&](const std::string& k, const std::string& v) {
      REQUIRE(db->Put(k, v).status.ok());
      model[k] = v;
    };
    for (int i = 0; i < 40; ++i) put("fill" + std::to_string(i), MakeValue("fill" + std::to_string(i), 0, 150, false));
    put(kBigKey, MakeValue(kBigKey, 7, kind.bytes, kind.compressible));
    for (int round = 1; round < 3; ++round)
      for (int i = 0; i < 400; ++i) put("fill" + std::to_string(i), MakeValue("fill" + std::to_string(i), round, 150, false));
    db->Close();
    REQUIRE(SegmentFiles(dir.path()).size() >= 3);
    // The big record: the one file whose bytes hold its key.
    for (const std::string& path : SegmentFiles(dir.path())) {
      const std::string bytes = ReadFileBytes(path);
      const size_t at = bytes.find(kBigKey);
      if (at == std::string::npos) continue;
      big_segment = path;
      const uint64_t body = at + sizeof kBigKey - 1 + std::string_view("text/plain").size();
      big_body = std::max<uint64_t>(body + 10, 4096 + 10);
      auto r = DecodeRecord(bytes.data() + at - kRecordHeaderBytes, bytes.size() - (at - kRecordHeaderBytes), {});
      REQUIRE(r.ok());
      REQUIRE(big_body < at - kRecordHeaderBytes + r->header.total_bytes());
    }
    REQUIRE_FALSE(big_segment.empty());
    REQUIRE(big_segment != SegmentFiles(dir.path()).back());  // sealed, with a hint
    REQUIRE(fs::exists(HintOf(big_segment)));
  }

  static std::string HintOf(const std::string& segment_path) {
    return segment_path.substr(0, segment_path.size() - 4) + ".hint";
  }

  std::vector<std::string> Errors() {
    std::lock_guard lock(errors_mu);
    return errors;
  }

  // Every key answers its last value.
  void CheckAll() {
    for (const auto& [k, v] : model) {
      auto got = db->Get(k);
      REQUIRE(got.ok());
      CHECK(got.value() == v);
    }
  }

  // With path's bytes from `offset` unreadable, two opens in a row fail with
  // an I/O error naming the segment (id) and the offset, log it, and leave
  // every file as it was; once the sector reads again, the open finds every
  // record.
  void CheckOpenFailsAt(const std::string& path, uint64_t offset, const std::string& id) {
    const auto before = Snapshot(dir.path());
    env.SetUnreadable(fs::path(path).filename().string(), offset);
    for (int attempt = 0; attempt < 2; ++attempt) {
      const Status s = db->Open();
      INFO(s.ToString());
      CHECK(s.Is(Code::kIOError));
      CHECK(std::string(s.message()).find("segment " + id) != std::string::npos);
      CHECK(std::string(s.message()).find("offset " + std::to_string(offset)) != std::string::npos);
      CHECK(Snapshot(dir.path()) == before);
    }
    const auto lines = Errors();
    REQUIRE(!lines.empty());
    CHECK(lines.back().find("segment " + id) != std::string::npos);
    env.ClearUnreadable();
    REQUIRE(db->Open().ok());
    CheckAll();
  }
};

std::string IdOf(const std::string& segment_path) {
  uint32_t id = 0;
  REQUIRE(ParseSegmentFileName(fs::path(segment_path).filename().string(), &id));
  return std::to_string(id);
}

}  // namespace

TEST_CASE("a sector of the active segment that cannot be read fails every open with an I/O error naming the "
          "segment and offset, cuts nothing, and once readable every record is there",
          "[engine][recovery][faults]") {
  Fixture f(kKinds[0]);
  const std::string active = SegmentFiles(f.dir.path()).back();
  REQUIRE(fs::file_size(active) > 8192);
  f.CheckOpenFailsAt(active, 5000, IdOf(active));
}

TEST_CASE("a segment header that cannot be read fails the open with an I/O error at offset 0 and changes nothing",
          "[engine][recovery][faults]") {
  Fixture f(kKinds[0]);
  const std::string first = SegmentFiles(f.dir.path()).front();
  f.CheckOpenFailsAt(first, 0, IdOf(first));
}

TEST_CASE("a sector under a value that cannot be read, in a segment read without its hint, fails the open "
          "(an I/O error is not damage: nothing after it is dropped), for values on both sides of each size "
          "threshold",
          "[engine][recovery][faults]") {
  for (const ValueKind& kind : kKinds) {
    INFO(kind.name);
    Fixture f(kind);
    REQUIRE(fs::remove(Fixture::HintOf(f.big_segment)));
    f.CheckOpenFailsAt(f.big_segment, f.big_body, IdOf(f.big_segment));
  }
}

TEST_CASE("a sector under a value that cannot be read, in a segment with an intact hint, costs only that value: "
          "the open reads the hint, the value answers an I/O error, every other key its value",
          "[engine][recovery][faults]") {
  for (const ValueKind& kind : kKinds) {
    INFO(kind.name);
    Fixture f(kind);
    f.env.SetUnreadable(fs::path(f.big_segment).filename().string(), f.big_body);
    REQUIRE(f.db->Open().ok());
    const uint64_t faults = GuardedFaults();
    CHECK(f.db->Get(kBigKey).status().Is(Code::kIOError));
    CHECK(GuardedFaults() > faults);
    f.model.erase(kBigKey);
    // The fillers' last values lie in later segments.
    for (int i = 0; i < 400; ++i) {
      const std::string k = "fill" + std::to_string(i);
      CHECK(f.db->Get(k).value() == f.model[k]);
    }
    // Older records of the fillers lay on those pages too: their hint said
    // which records they were, so the newer ones won without reading them.
    REQUIRE(f.db->Put("a-new-key", "value").status.ok());
    CHECK(f.db->Get("a-new-key").value() == "value");
  }
}

TEST_CASE("a hint file that cannot be read costs a scan of its segment: counted, logged, and the open goes on with "
          "every record, for values on both sides of each size threshold",
          "[engine][recovery][faults]") {
  for (const ValueKind& kind : kKinds) {
    INFO(kind.name);
    Fixture f(kind);
    const std::string hint = Fixture::HintOf(f.big_segment);
    f.env.SetUnreadable(fs::path(hint).filename().string(), 30);
    const uint64_t failures = f.db->index().counters().read_failures.load();
    REQUIRE(f.db->Open().ok());
    CHECK(f.db->index().counters().read_failures.load() == failures + 1);
    const auto lines = f.Errors();
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].find("hint of segment " + IdOf(f.big_segment) + " cannot be read") != std::string::npos);
    f.CheckAll();
    // The scan found the segment clean and wrote its hint again: the next
    // open, with the sector readable, reads the new hint without a word.
    f.env.ClearUnreadable();
    REQUIRE(f.db->Open().ok());
    CHECK(f.Errors().size() == 1);
    f.CheckAll();
  }
}

TEST_CASE("zeros after an intact hint's last record that cannot be read fail the open instead of being cut",
          "[engine][recovery][faults]") {
  Fixture f(kKinds[0]);
  const std::string first = SegmentFiles(f.dir.path()).front();
  const uint64_t end = fs::file_size(first);
  // The room a rotation's cut did not keep: zeros past the hint's size.
  WriteFileBytes(first, ReadFileBytes(first) + std::string(12288, '\0'));
  f.CheckOpenFailsAt(first, end + 4096, IdOf(first));
  // The open that could read them cut them.
  CHECK(fs::file_size(first) == end);
}

TEST_CASE("an active segment cut under recovery while it reads the segments before it fails the open with an I/O "
          "error; the failed open changes nothing, the next one reads the cut file",
          "[engine][recovery][faults]") {
  Fixture f(kKinds[0]);
  const auto files = SegmentFiles(f.dir.path());
  const std::string active = files.back();
  REQUIRE(fs::file_size(active) > 8192);
  // The first segment without its hint: recovery scans it and writes the
  // hint again, which is when the active segment loses its end.
  REQUIRE(fs::remove(Fixture::HintOf(files.front())));
  bool cut = false;
  f.env.SetCreateHook([&](const std::string& path) {
    if (cut || path.find(".hint") == std::string::npos) return;
    cut = true;
    REQUIRE(::truncate(active.c_str(), 6000) == 0);
  });
  const Status s = f.db->Open();
  f.env.SetCreateHook({});
  REQUIRE(cut);
  INFO(s.ToString());
  CHECK(s.Is(Code::kIOError));
  CHECK(std::string(s.message()).find("segment " + IdOf(active)) != std::string::npos);
  CHECK(fs::file_size(active) == 6000);
  // The next open reads the file as it now is: a torn tail, cut.
  REQUIRE(f.db->Open().ok());
  CHECK(f.db->Put("after", "cut").status.ok());
  CHECK(f.db->Get("after").value() == "cut");
}

TEST_CASE("verify stops at a sector it cannot read with an I/O error naming the segment file and offset",
          "[engine][recovery][faults]") {
  Fixture f(kKinds[0]);
  const std::string active = SegmentFiles(f.dir.path()).back();
  f.env.SetUnreadable(fs::path(active).filename().string(), 5000);
  std::vector<std::string> findings;
  auto r = VerifyDatabase(f.env, f.dir.path(), f.o, [&](const std::string& line) { findings.push_back(line); });
  REQUIRE_FALSE(r.ok());
  INFO(r.status().ToString());
  CHECK(r.status().Is(Code::kIOError));
  CHECK(std::string(r.status().message()).find(fs::path(active).filename().string()) != std::string::npos);
  CHECK(std::string(r.status().message()).find("offset 5000") != std::string::npos);
  f.env.ClearUnreadable();
  auto clean = VerifyDatabase(f.env, f.dir.path(), f.o, [](const std::string&) {});
  REQUIRE(clean.ok());
  CHECK(clean->damaged == 0);
}
