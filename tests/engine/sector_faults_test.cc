// Sectors that cannot be read (FaultInjectionEnv::SetUnreadable: reads fail
// with EIO, mapped pages raise SIGBUS, every time) under recovery, compaction
// and verify, and a segment truncated while recovery reads it. An I/O error
// is not damage: the open fails naming the segment and the offset, and
// changes nothing on disk; a hint file is only a cache of its segment, so one
// that cannot be read costs a scan; compaction leaves such a segment alone.
// Values on both sides of the compression threshold, of a segment's size and
// of the large-value path (a value written in parts).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <map>
#include <mutex>

#include "engine/compaction.h"
#include "engine/mapping_guard.h"
#include "engine/record.h"
#include "engine/verify.h"
#include "tests/engine/support/fault_env.h"
#include "tests/engine/support/model.h"
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
  bool in_parts;  // written through the large-value path (BeginLarge: a staged segment of its own, sealed at birth)
};

const ValueKind kKinds[] = {
    {"255 bytes: below the compression threshold, stored raw", 255, true, false},
    {"256 compressible bytes: compressed", 256, true, false},
    {"a record just inside a segment", kSegmentBytes - 512, false, false},
    {"a record larger than a segment (a segment of its own)", kSegmentBytes + 4096, false, false},
    {"a value written in parts (a segment of its own, sealed at birth)", kSegmentBytes + 4096, false, true},
};

// What is written after the value under test.
enum class Layout {
  kOverwriteAll,     // every filler written twice more: older records lie on the value's pages
  kNewKeysAfter,     // new keys only after it (nothing on its pages is an older record), 10 early keys rewritten
};

constexpr uint64_t kPage = 4096;

// A closed database of a few segments: 40 fillers, one padding record so that
// the value under test starts 80 bytes before a page boundary (unless it goes
// into a segment of its own), the value, and fillers (Layout) so that it ends
// up sealed with a hint. No preallocated room: a segment file ends at its last
// record. big_body is the first page boundary inside the value's stored bytes:
// no record before it touches that page.
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

  explicit Fixture(const ValueKind& kind, Layout layout = Layout::kOverwriteAll) {
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
    auto fill = [&](int i, int round) { put("fill" + std::to_string(i), MakeValue("fill" + std::to_string(i), round, 150, false)); };
    for (int i = 0; i < 40; ++i) fill(i, 0);
    // "pad": 3-byte key, 10-byte content type, raw value.
    const uint64_t used = fs::file_size(SegmentFiles(dir.path()).back());
    const uint64_t pad_record = kRecordHeaderBytes + 3 + 10;
    const uint64_t target = (used + pad_record + 200 + kPage - 1) / kPage * kPage - 80;
    put("pad", MakeValue("pad", 0, target - used - pad_record, false));
    const std::string big = MakeValue(kBigKey, 7, kind.bytes, kind.compressible);
    if (kind.in_parts) {
      PutLarge(*db, kBigKey, big);
      model[kBigKey] = big;
    } else {
      put(kBigKey, big);
    }
    if (layout == Layout::kOverwriteAll) {
      for (int round = 1; round < 3; ++round)
        for (int i = 0; i < 400; ++i) fill(i, round);
    } else {
      for (int i = 40; i < 700; ++i) fill(i, 0);
      for (int i = 0; i < 10; ++i) fill(i, 1);
    }
    db->Close();
    REQUIRE(SegmentFiles(dir.path()).size() >= 3);
    // The big record: the one file whose bytes hold its key.
    for (const std::string& path : SegmentFiles(dir.path())) {
      const std::string bytes = ReadFileBytes(path);
      const size_t at = bytes.find(kBigKey);
      if (at == std::string::npos) continue;
      big_segment = path;
      const uint64_t start = at - kRecordHeaderBytes;
      auto r = DecodeRecord(bytes.data() + start, bytes.size() - start, {});
      REQUIRE(r.ok());
      const uint64_t body = at + r->header.key_len + r->header.meta_len;
      big_body = body / kPage * kPage + kPage;
      REQUIRE(big_body < start + r->header.total_bytes());
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
    const auto before = FileBytesOf(dir.path());
    env.SetUnreadable(fs::path(path).filename().string(), offset);
    for (int attempt = 0; attempt < 2; ++attempt) {
      const Status s = db->Open();
      INFO(s.ToString());
      CHECK(s.Is(Code::kIOError));
      CHECK(std::string(s.message()).find("segment " + id) != std::string::npos);
      CHECK(std::string(s.message()).find("offset " + std::to_string(offset)) != std::string::npos);
      CHECK(FileBytesOf(dir.path()) == before);
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

TEST_CASE("compaction meeting a value it cannot read abandons the pass, counts and logs it, never picks the "
          "segment again, and loses nothing: once the sector reads, every record is there; for values on both "
          "sides of each size threshold",
          "[engine][recovery][compaction][faults]") {
  for (const ValueKind& kind : kKinds) {
    INFO(kind.name);
    Fixture f(kind, Layout::kNewKeysAfter);
    const std::string id = IdOf(f.big_segment);
    // Recovery reads the hint; the older records it checks lie before the bad page.
    f.env.SetUnreadable(fs::path(f.big_segment).filename().string(), f.big_body);
    REQUIRE(f.db->Open().ok());
    REQUIRE(f.Errors().empty());
    IndexCounters& counters = f.db->index().counters();
    const uint64_t failures = counters.read_failures.load();
    const uint64_t faults = GuardedFaults();
    CompactionOptions co = UnthrottledCompaction(7);
    co.pick_all = true;
    Compactor c(f.db->writer(), co);
    PassReport r;
    const Status s = c.RunOnce(&r);
    INFO(s.ToString());
    CHECK(s.Is(Code::kIOError));
    CHECK(GuardedFaults() == faults + 1);
    CHECK(counters.read_failures.load() == failures + 1);
    CHECK(r.outputs == 0);
    CHECK_FALSE(HasTmpFiles(f.dir.path()));
    CHECK(fs::exists(f.big_segment));
    const auto lines = f.Errors();
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].find("compaction: segment " + id) != std::string::npos);
    CHECK(lines[0].find("SIGBUS") != std::string::npos);
    // The next pass leaves it alone without touching its pages again.
    PassReport r2;
    CHECK(c.RunOnce(&r2).ok());
    CHECK(GuardedFaults() == faults + 1);
    CHECK(fs::exists(f.big_segment));
    // Reads: the value answers an I/O error, keys written later their values.
    CHECK(f.db->Get(kBigKey).status().Is(Code::kIOError));
    for (int i = 0; i < 10; ++i) {
      const std::string k = "fill" + std::to_string(i);
      CHECK(f.db->Get(k).value() == f.model[k]);
    }
    REQUIRE(f.db->Put("a-new-key", "value").status.ok());
    f.model["a-new-key"] = "value";
    // Nothing was lost: with the sector readable again, every record is read.
    f.env.ClearUnreadable();
    REQUIRE(f.db->Open().ok());
    f.CheckAll();
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
