// The corruption matrix, at the engine level: one damaged byte (or a cut, or
// a missing file) in each part of a database, with the hints intact and
// damaged. For every case the database opens, every key whose newest record
// is intact answers exactly that record, the damaged key never answers an
// older value (nor "not found" when it exists), and the damage is counted and
// reported as an error.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <iterator>
#include <map>
#include <span>
#include <set>

#include "engine/manifest.h"
#include "engine/record.h"
#include "engine/verify.h"
#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;
namespace fs = std::filesystem;

namespace {

struct RecordAt {
  std::string segment;  // file name
  uint64_t begin = 0, end = 0;
  std::string key;
  uint64_t seq = 0;
  RecordType type = RecordType::kPut;
};

std::vector<RecordAt> Records(const std::string& dir) {
  std::vector<RecordAt> out;
  RecordLimits limits;
  for (const std::string& path : SegmentFiles(dir)) {
    const std::string bytes = ReadFileBytes(path);
    uint64_t off = kSegmentHeaderBytes;
    while (off < bytes.size()) {
      auto r = DecodeRecord(bytes.data() + off, bytes.size() - off, limits);
      if (!r.ok()) break;
      out.push_back(RecordAt{fs::path(path).filename(), off, off + r->header.total_bytes(), std::string(r->key),
                             r->header.seq, r->header.type});
      off += r->header.total_bytes();
    }
  }
  return out;
}

void FlipByte(const std::string& path, uint64_t off) {
  std::string bytes = ReadFileBytes(path);
  REQUIRE(off < bytes.size());
  bytes[off] = static_cast<char>(bytes[off] ^ 0x5a);
  WriteFileBytes(path, bytes);
}

std::string HintOf(const std::string& segment_name) {
  return segment_name.substr(0, segment_name.size() - 4) + ".hint";
}

// A database opened with its error lines collected.
struct ReportingDb {
  std::vector<std::string> errors;
  TestDb db;
  ReportingDb(const std::string& dir, const Options& options) : db(PosixEnv(), dir, Collecting(options, &errors)) {}

  static Options Collecting(Options o, std::vector<std::string>* lines) {
    o.log_error = [lines](const std::string& line) { lines->push_back(line); };
    return o;
  }
};

// A database with several sealed segments and an active one; every key has
// an older version somewhere, so an answer from an older record shows.
struct Fixture {
  TempDir pristine;
  Options options;
  std::map<std::string, std::string> latest;  // key -> value (absent: deleted)
  std::vector<std::string> keys;

  Fixture() {
    options.segment_bytes = 4096;
    options.compression_level = 0;
    TestDb db(PosixEnv(), pristine.path(), options);
    REQUIRE(db.Open().ok());
    for (int round = 0; round < 3; ++round)
      for (int i = 0; i < 40; ++i) {
        const std::string k = "key" + std::to_string(i);
        if (round == 0) keys.push_back(k);
        const std::string v = MakeValue(k, round, 90 + (i * 13) % 120, false);
        REQUIRE(db.Put(k, v).status.ok());
        latest[k] = v;
      }
    for (int i = 0; i < 40; i += 7) {
      REQUIRE(db.Delete(keys[i]).status.ok());
      latest.erase(keys[i]);
    }
    // A few writes after the deletes, so the active segment holds records
    // that are the newest of their keys and are followed by others.
    for (int i = 1; i < 40; i += 5) {
      const std::string v = MakeValue(keys[i], 9, 100, false);
      REQUIRE(db.Put(keys[i], v).status.ok());
      latest[keys[i]] = v;
    }
  }

  // The newest record of a live key in the active (last-written) segment,
  // followed by other records; and one in a sealed segment.
  RecordAt Pick(bool active) const {
    const auto recs = Records(pristine.path());
    std::map<std::string, RecordAt> newest;
    for (const RecordAt& r : recs)
      if (!newest.count(r.key) || newest[r.key].seq < r.seq) newest[r.key] = r;
    std::string active_name;
    uint64_t active_seq = 0;
    for (const RecordAt& r : recs)
      if (r.seq > active_seq) active_seq = r.seq, active_name = r.segment;
    for (const RecordAt& r : recs) {
      if (r.type != RecordType::kPut || newest[r.key].seq != r.seq || !latest.count(r.key)) continue;
      if ((r.segment == active_name) != active) continue;
      // Not the last record of its segment: valid records follow it.
      bool followed = false;
      for (const RecordAt& o : recs) followed |= o.segment == r.segment && o.begin >= r.end;
      if (followed) return r;
    }
    FAIL("no record to damage");
    return {};
  }
};

// Opens work/ and checks the contract. `damaged_key`: may answer kCorruption
// (never an older value; never absent); empty when no key is damaged.
// `key_known`: false when the damage hit the key's own bytes and no intact
// hint names it: nothing on disk says which key the record was, so that key
// may answer its previous value (engine/FORMAT.md, "What damage costs").
void CheckOpen(const Fixture& fx, const std::string& dir, const std::string& damaged_key, bool expect_reports,
               bool key_known = true) {
  std::vector<std::string> errors;
  Options o = fx.options;
  o.log_error = [&](const std::string& line) { errors.push_back(line); };
  TestDb db(PosixEnv(), dir, o);
  REQUIRE(db.Open().ok());
  for (const std::string& k : fx.keys) {
    INFO("key " << k);
    auto got = db.Get(k);
    auto want = fx.latest.find(k);
    if (k == damaged_key) {
      // The newest record is damaged: reported as such, or (when the damage
      // left it readable) its exact value; never an older one, never absent.
      if (!key_known) continue;
      if (got.ok()) REQUIRE(got.value() == want->second);
      else REQUIRE(got.status().Is(Code::kCorruption));
      continue;
    }
    if (want == fx.latest.end()) {
      REQUIRE(got.status().Is(Code::kNotFound));
    } else {
      REQUIRE(got.ok());
      REQUIRE(got.value() == want->second);
    }
  }
  if (expect_reports) {
    CHECK(db.index().counters().corruptions.load() >= 1);
    CHECK_FALSE(errors.empty());
  }
  // Writes go on, and the damaged key can be written again.
  if (!damaged_key.empty()) {
    WriteResult w = db.Put(damaged_key, "repaired");
    REQUIRE(w.status.ok());
    REQUIRE(db.Get(damaged_key).value() == "repaired");
  }
  REQUIRE(db.Put("after-damage", "ok").status.ok());
  REQUIRE(db.Open().ok());
  REQUIRE(db.Get("after-damage").value() == "ok");
  if (!damaged_key.empty()) REQUIRE(db.Get(damaged_key).value() == "repaired");
}

}  // namespace

TEST_CASE("one damaged byte in a record: the rest of the segment survives and the key never goes back",
          "[engine][corruption]") {
  Fixture fx;
  const bool active = GENERATE(true, false);
  const bool hint_damaged = GENERATE(false, true);
  // Header bytes: the header checksum, the body checksum, the seq, the key
  // length, the flags; then a key byte and a value byte.
  const uint64_t where = GENERATE(2, 12, 18, 33, 35, 41, 70);
  const RecordAt r = fx.Pick(active);
  INFO((active ? "active" : "sealed") << " segment " << r.segment << ", record at " << r.begin << ", byte +" << where
                                      << (hint_damaged ? ", hint damaged" : ", hint intact"));
  TempDir work;
  CopyDir(fx.pristine.path(), work.path());
  // Where its records end (not the preallocated zero room an open cuts).
  uint64_t before = 0;
  for (const RecordAt& x : Records(work.path()))
    if (x.segment == r.segment) before = std::max(before, x.end);
  FlipByte(work.File(r.segment), r.begin + where);
  if (hint_damaged && fs::exists(work.File(HintOf(r.segment)))) {
    FlipByte(work.File(HintOf(r.segment)), fs::file_size(work.File(HintOf(r.segment))) / 2);
  }
  const bool in_key = where >= kRecordHeaderBytes && where < kRecordHeaderBytes + r.key.size();
  const bool hint_names_it = !active && !hint_damaged;
  CheckOpen(fx, work.path(), r.key, /*expect_reports=*/true, /*key_known=*/!in_key || hint_names_it);
  // Nothing was cut: the damage stays in place, after it the records are there.
  CHECK(fs::file_size(work.File(r.segment)) >= before);
}

TEST_CASE("a damaged segment header, hint or MANIFEST costs nothing but a report", "[engine][corruption]") {
  Fixture fx;
  const auto segs = SegmentFiles(fx.pristine.path());
  REQUIRE(segs.size() >= 3);
  const int which = GENERATE(0, 1, 2, 3, 4);
  TempDir work;
  CopyDir(fx.pristine.path(), work.path());
  const std::string first = fs::path(segs.front()).filename();
  switch (which) {
    case 0: FlipByte(work.File(first), 20); break;                                 // a sealed segment's header (seed)
    case 1:                                                                         // every segment's header
      for (const auto& s : segs) FlipByte(work.File(fs::path(s).filename()), 40);
      break;
    case 2: FlipByte(work.File(HintOf(first)), 30); break;                          // a sealed segment's hint
    case 3: FlipByte(work.File(Manifest::kFileName), 17); break;                    // the MANIFEST's seed
    case 4: FlipByte(work.File(Manifest::kFileName), 32 + 24 + 5); break;           // a MANIFEST entry
  }
  INFO("case " << which);
  CheckOpen(fx, work.path(), "", /*expect_reports=*/true);
}

TEST_CASE("the only segment's damaged header does not make the database unopenable", "[engine][corruption]") {
  TempDir dir;
  {
    TestDb db(PosixEnv(), dir.path(), Options{});
    REQUIRE(db.Open().ok());
    for (int i = 0; i < 20; ++i) REQUIRE(db.Put("k" + std::to_string(i), "v" + std::to_string(i)).status.ok());
  }
  // A database written before the MANIFEST existed: the header is the only copy of the seed.
  fs::remove(dir.File(Manifest::kFileName));
  const auto segs = SegmentFiles(dir.path());
  REQUIRE(segs.size() == 1);
  FlipByte(segs[0], 17);  // inside the seed
  TestDb db(PosixEnv(), dir.path(), Options{});
  REQUIRE(db.Open().ok());
  for (int i = 0; i < 20; ++i) REQUIRE(db.Get("k" + std::to_string(i)).value() == "v" + std::to_string(i));
  CHECK(db.writer().Stats().corruptions >= 1);
  REQUIRE(db.Put("new", "x").status.ok());
  REQUIRE(db.Open().ok());
  for (int i = 0; i < 20; ++i) REQUIRE(db.Get("k" + std::to_string(i)).value() == "v" + std::to_string(i));
  REQUIRE(db.Get("new").value() == "x");
}

TEST_CASE("a cut or missing sealed segment is reported, and its keys never answer older values",
          "[engine][corruption]") {
  Fixture fx;
  const RecordAt r = fx.Pick(/*active=*/false);
  // Cut inside the record; segment file missing; both files missing; cut
  // inside the segment header (an archive cut in a file's first bytes): to
  // 0 bytes, to one byte short of a header.
  const int which = GENERATE(0, 1, 2, 3, 4);
  TempDir work;
  CopyDir(fx.pristine.path(), work.path());
  const std::string seg = work.File(r.segment);
  std::set<std::string> in_segment;
  for (const RecordAt& o : Records(fx.pristine.path()))
    if (o.segment == r.segment) in_segment.insert(o.key);
  if (which == 0) {
    WriteFileBytes(seg, ReadFileBytes(seg).substr(0, r.begin + 50));
  } else if (which >= 3) {
    WriteFileBytes(seg, ReadFileBytes(seg).substr(0, which == 3 ? 0 : kSegmentHeaderBytes - 1));
  } else {
    fs::remove(seg);
    if (which == 2) fs::remove(work.File(HintOf(r.segment)));
  }
  INFO("case " << which << " on " << r.segment);
  auto report = VerifyDatabase(PosixEnv(), work.path(), fx.options, [](const std::string&) {});
  REQUIRE(report.ok());
  CHECK(report->damaged >= 1);
  ReportingDb opened(work.path(), fx.options);
  TestDb& db = opened.db;
  REQUIRE(db.Open().ok());
  CHECK(db.writer().Stats().corruptions >= 1);
  if (which == 1 || which == 2) CHECK(db.writer().Stats().missing_segments == 1);
  CHECK_FALSE(opened.errors.empty());
  const bool keys_known = which != 2;
  for (const std::string& k : fx.keys) {
    INFO("key " << k);
    auto got = db.Get(k);
    auto want = fx.latest.find(k);
    const bool newest_here = [&] {
      uint64_t best = 0;
      std::string seg_of_best;
      for (const RecordAt& o2 : Records(fx.pristine.path()))
        if (o2.key == k && o2.seq > best) best = o2.seq, seg_of_best = o2.segment;
      return seg_of_best == r.segment;
    }();
    if (newest_here) {
      if (keys_known) {
        // Cut before its record ends, or in the missing file: "damaged".
        if (got.ok()) REQUIRE(got.value() == want->second);
        else REQUIRE(got.status().Is(Code::kCorruption));
      }
      continue;  // both files gone: nothing says what the key held (reported above)
    }
    if (want == fx.latest.end()) REQUIRE(got.status().Is(Code::kNotFound));
    else REQUIRE(got.value() == want->second);
  }
  // Reported again at the next open (the MANIFEST keeps listing it; a
  // file cut inside its header is kept, with its hint).
  if (which >= 3) {
    REQUIRE(db.Open().ok());
    CHECK(db.writer().Stats().corruptions >= 1);
    CHECK(fs::exists(work.File(HintOf(r.segment))));
  }
  if (which == 1 || which == 2) {
    REQUIRE(db.Open().ok());
    CHECK(db.writer().Stats().missing_segments == 1);
  }
}

namespace {

// The findings of `kingx-tool verify` on dir; its report must be OK.
std::vector<std::string> VerifyFindings(const std::string& dir, const Options& options, uint64_t* damaged) {
  std::vector<std::string> findings;
  auto report = VerifyDatabase(PosixEnv(), dir, options, [&](const std::string& f) { findings.push_back(f); });
  REQUIRE(report.ok());
  *damaged = report->damaged;
  return findings;
}

// Whether a finding names key (as verify quotes it).
bool Names(const std::vector<std::string>& findings, const std::string& key) {
  for (const std::string& f : findings)
    if (f.find("'" + key + "'") != std::string::npos) return true;
  return false;
}

// Opens work twice (the damage is reported at every open, not only the
// first) and checks at each: counted, an error line; every key in `damaged`
// answers kCorruption or its latest value, never an older one nor "not
// found"; every other key its latest value. With `rewrite`, the second open
// then writes each damaged key again ("again") and a key "after" ("more"),
// and a third open finds those values (the damaged bytes, still reported,
// never hide them). Last, verify finds the damage and names every key in
// `damaged`.
void CheckDamageReportedTwice(const std::string& work, const Options& options, const std::vector<std::string>& keys,
                              const std::map<std::string, std::string>& latest,
                              const std::set<std::string>& damaged, bool rewrite = false) {
  for (int open = 0; open < (rewrite ? 3 : 2); ++open) {
    ReportingDb opened(work, options);
    TestDb& db = opened.db;
    REQUIRE(db.Open().ok());
    CHECK(db.writer().Stats().corruptions >= 1);
    CHECK_FALSE(opened.errors.empty());
    const bool rewritten = open == 2;
    for (const std::string& k : keys) {
      INFO("open " << open << " key " << k << (damaged.count(k) ? " (its newest record is damaged)" : ""));
      auto got = db.Get(k);
      if (rewritten && damaged.count(k)) {
        REQUIRE(got.ok());
        REQUIRE(got.value() == "again");
      } else if (damaged.count(k) && !got.ok()) {
        REQUIRE(got.status().Is(Code::kCorruption));
      } else {
        REQUIRE(got.ok());
        REQUIRE(got.value() == latest.at(k));
      }
    }
    if (rewritten) REQUIRE(db.Get("after").value() == "more");
    if (rewrite && open == 1) {
      for (const std::string& k : damaged) REQUIRE(db.Put(k, "again").status.ok());
      REQUIRE(db.Put("after", "more").status.ok());
    }
    db.Close();
  }
  uint64_t found = 0;
  const auto findings = VerifyFindings(work, options, &found);
  CHECK(found >= 1);
  for (const std::string& k : damaged) {
    INFO("verify names " << k);
    CHECK(Names(findings, k));
  }
}

// CopyDir, but the segments other than `active` (the cleanly closed
// database's active segment, which the caller damages) are hard links to
// from's: an open never writes a sealed segment whose hint is intact, and a
// large one is then not copied again for every damaged copy.
void CopyDirSharingSealed(const std::string& from, const std::string& to, const std::string& active) {
  CopyDir(from, to);
  for (const std::string& path : SegmentFiles(from)) {
    const std::string name = fs::path(path).filename();
    if (name == active) continue;
    fs::remove(fs::path(to) / name);
    fs::create_hard_link(path, fs::path(to) / name);
  }
}

// A database closed cleanly twice: every key's first version written before
// the first close, its second (or only) version after it, in the segment
// written last; values on both sides of the size thresholds (compression
// 255/256 B, 1 KiB, 1 MiB).
struct ClosedTwice {
  TempDir dir;
  Options options;
  std::map<std::string, std::string> older, latest;
  std::vector<std::string> keys;
  uint64_t first_round_seq = 0;  // the last seq the first version's writes got

  // The values of every size; last_bytes > 0: a key "last" of that many
  // bytes (compressible or not), written in both rounds, is the last record
  // of each.
  static constexpr size_t kAllSizes[] = {10, 100, 255, 256, 1024, 1025, 4000, 1 << 20, (1 << 20) + 1};
  explicit ClosedTwice(std::span<const size_t> sizes = kAllSizes, size_t last_bytes = 0,
                       bool last_compressible = false) {
    TestDb db(PosixEnv(), dir.path(), options);
    for (int version = 1; version <= 2; ++version) {
      REQUIRE(db.Open().ok());
      // Enough live data that the ~6 MiB after it stay in one segment (the
      // writer rotates a segment holding over a quarter of the live data).
      const size_t largest = std::max(*std::max_element(sizes.begin(), sizes.end()), last_bytes);
      if (version == 1 && largest >= (1 << 20))
        REQUIRE(db.Put("filler", MakeValue("filler", 1, 24 << 20, false)).status.ok());
      for (size_t i = 0; i < sizes.size(); ++i)
        for (bool compressible : {false, true}) {
          const std::string k = "k" + std::to_string(sizes[i]) + (compressible ? "z" : "r");
          const std::string v = MakeValue(k, static_cast<uint64_t>(version), sizes[i], compressible);
          const WriteResult w = db.Put(k, v);
          REQUIRE(w.status.ok());
          if (version == 1) keys.push_back(k), older[k] = v, first_round_seq = w.seq;
          else latest[k] = v;
          // A key with only one version, in the segment written last.
          if (version == 2 && !compressible) {
            const std::string only = "new" + std::to_string(sizes[i]);
            keys.push_back(only);
            REQUIRE(db.Put(only, MakeValue(only, 1, sizes[i], false)).status.ok());
            latest[only] = MakeValue(only, 1, sizes[i], false);
          }
        }
      if (last_bytes > 0) {
        const std::string v = MakeValue("last", static_cast<uint64_t>(version), last_bytes, last_compressible);
        const WriteResult w = db.Put("last", v);
        REQUIRE(w.status.ok());
        if (version == 1) keys.push_back("last"), older["last"] = v, first_round_seq = w.seq;
        else latest["last"] = v;
      }
      db.Close();  // a clean close, the server's SIGTERM
    }
  }

  // The segment the second round went to (written last), and the second
  // round's records in it, in file order.
  std::string LastSegment(std::vector<RecordAt>* second_round) const {
    const auto recs = Records(dir.path());
    std::string last;
    uint64_t last_seq = 0;
    for (const RecordAt& r : recs)
      if (r.seq > last_seq) last_seq = r.seq, last = r.segment;
    second_round->clear();
    for (const RecordAt& r : recs)
      if (r.segment == last && r.seq > first_round_seq) second_round->push_back(r);
    REQUIRE(second_round->size() == latest.size());  // all in the segment written last
    return last;
  }

  void CheckReportedTwice(const std::string& work, const std::set<std::string>& damaged, bool rewrite = false) const {
    CheckDamageReportedTwice(work, options, keys, latest, damaged, rewrite);
  }
};

}  // namespace

TEST_CASE("a segment cut after a clean close is reported, and its lost keys never answer older values or not found",
          "[engine][corruption][recovery]") {
  ClosedTwice fx;
  std::vector<RecordAt> in_last;  // the second round's records
  const std::string last = fx.LastSegment(&in_last);
  const RecordAt& mid = in_last[in_last.size() / 2];
  const RecordAt& tail = in_last.back();  // the largest value
  const int where = GENERATE(0, 1, 2, 3);
  const uint64_t cut = where == 0   ? mid.begin                                 // a record boundary
                       : where == 1 ? mid.begin + 60                            // inside a small record
                       : where == 2 ? tail.begin + (tail.end - tail.begin) / 2  // inside a 1 MiB + 1 value
                                    : in_last.front().begin;                    // every record
  INFO("segment " << last << " cut at " << cut << " (case " << where << ")");
  std::set<std::string> lost;
  for (const RecordAt& r : in_last)
    if (r.end > cut) lost.insert(r.key);
  TempDir work;
  CopyDir(fx.dir.path(), work.path());
  std::filesystem::resize_file(work.File(last), cut);

  // Offline, before any open: verify finds it.
  std::vector<std::string> findings;
  auto report = VerifyDatabase(PosixEnv(), work.path(), fx.options, [&](const std::string& f) { findings.push_back(f); });
  REQUIRE(report.ok());
  CHECK(report->damaged >= 1);
  // Lost keys written again answer their new values.
  fx.CheckReportedTwice(work.path(), lost, /*rewrite=*/true);
}

TEST_CASE("a close cut short while it finishes the active segment's hint opens as after a crash: no damage",
          "[engine][corruption][recovery]") {
  ClosedTwice fx;
  std::vector<RecordAt> in_last;
  const std::string last = fx.LastSegment(&in_last);
  const std::string hint = fx.dir.File(HintOf(last));
  const std::string bytes = ReadFileBytes(hint);
  const size_t keep = GENERATE(1, 8, 16, 23);  // of the 24-byte trailer
  WriteFileBytes(hint, bytes.substr(0, bytes.size() - 24 + keep));
  INFO("the hint of " << last << " keeps " << keep << " bytes of its trailer");
  TestDb db(PosixEnv(), fx.dir.path(), fx.options);
  REQUIRE(db.Open().ok());
  CHECK(db.writer().Stats().corruptions == 0);
  for (const std::string& k : fx.keys) REQUIRE(db.Get(k).value() == fx.latest.at(k));
  db.Close();
  auto report = VerifyDatabase(PosixEnv(), fx.dir.path(), fx.options, [](const std::string&) {});
  REQUIRE(report.ok());
  CHECK(report->damaged == 0);
}

TEST_CASE("a damaged record of a cleanly closed active segment is damage, not a torn tail, wherever it lies",
          "[engine][corruption][recovery]") {
  // The last record's value on both sides of each size threshold: the
  // compression threshold (256 B), 1 KiB, 1 MiB.
  const size_t last_bytes = GENERATE(255, 256, 1024, 1025, 1 << 20, (1 << 20) + 1);
  const bool compressible = GENERATE(false, true);
  const size_t small[] = {100, 255, 256, 1024, 1025};
  ClosedTwice fx(small, last_bytes, compressible);
  std::vector<RecordAt> in_last;
  const std::string last = fx.LastSegment(&in_last);
  REQUIRE(in_last.back().key == "last");
  for (const RecordAt* r : {&in_last.back(), &in_last[in_last.size() / 2], &in_last.front()}) {
    // The header checksum, the seq; a key byte (the record then names another key: the hint the clean close
    // finished names the real one); a value byte; the record's last byte.
    for (uint64_t where : {uint64_t{2}, uint64_t{18}, uint64_t{kRecordHeaderBytes},
                           (r->end - r->begin + kRecordHeaderBytes + r->key.size()) / 2, r->end - r->begin - 1}) {
      INFO("segment " << last << ": byte +" << where << " of " << r->key << "'s record at " << r->begin << " ("
                      << r->end - r->begin << " bytes; last " << last_bytes << (compressible ? " compressible" : "")
                      << ")");
      TempDir work;
      CopyDirSharingSealed(fx.dir.path(), work.path(), last);
      FlipByte(work.File(last), r->begin + where);
      auto report = VerifyDatabase(PosixEnv(), work.path(), fx.options, [](const std::string&) {});
      REQUIRE(report.ok());
      CHECK(report->damaged >= 1);
      {
        // A read-only open reports it the same way and changes nothing.
        const std::string segment = ReadFileBytes(work.File(last)), hint = ReadFileBytes(work.File(HintOf(last)));
        Options ro = fx.options;
        ro.read_only = true;
        ReportingDb opened(work.path(), ro);
        REQUIRE(opened.db.Open().ok());
        CHECK(opened.db.writer().Stats().corruptions >= 1);
        CHECK_FALSE(opened.errors.empty());
        auto got = opened.db.Get(r->key);
        if (!got.ok()) CHECK(got.status().Is(Code::kCorruption));
        else CHECK(got.value() == fx.latest.at(r->key));
        opened.db.Close();
        CHECK(ReadFileBytes(work.File(last)) == segment);
        CHECK(ReadFileBytes(work.File(HintOf(last))) == hint);
      }
      // Written again after the damage: the new value, which the damaged
      // bytes never hide (they stay where they were).
      fx.CheckReportedTwice(work.path(), {r->key}, /*rewrite=*/true);
      std::string kept = ReadFileBytes(fx.dir.File(last)).substr(0, in_last.back().end);
      kept[r->begin + where] = static_cast<char>(kept[r->begin + where] ^ 0x5a);
      CHECK(ReadFileBytes(work.File(last)).substr(0, kept.size()) == kept);
    }
  }
}

TEST_CASE("a segment whose only record has a damaged header names its key at every open",
          "[engine][corruption][recovery]") {
  // The record's value on both sides of each size threshold: the compression
  // threshold (256 B), 1 KiB, 1 MiB.
  const size_t bytes = GENERATE(100, 255, 256, 1024, 1025, 1 << 20, (1 << 20) + 1);
  const bool compressible = GENERATE(false, true);
  TempDir dir;
  Options options;
  std::map<std::string, std::string> latest;
  {
    TestDb db(PosixEnv(), dir.path(), options);
    REQUIRE(db.Open().ok());
    // The segment then holds over 1 MiB (values compress to about a third),
    // all of the live data: the writer rotates before the next record, which
    // is alone in its segment.
    for (const auto& [k, v] : {std::pair{"k", MakeValue("k", 1, bytes, compressible)},
                               std::pair{"filler", MakeValue("filler", 1, 4 << 20, false)},
                               std::pair{"k", MakeValue("k", 2, bytes, compressible)}}) {
      REQUIRE(db.Put(k, v).status.ok());
      latest[k] = v;
    }
    db.Close();  // a clean close
  }
  const auto recs = Records(dir.path());
  const RecordAt& only = recs.back();
  REQUIRE(only.key == "k");
  REQUIRE(only.begin == kSegmentHeaderBytes);
  // The header checksum, the seq, the stored length, the key length.
  for (uint64_t where : {2, 18, 25, 33}) {
    INFO("byte +" << where << " of the only record of " << only.segment << " (" << bytes
                  << (compressible ? " compressible" : "") << " bytes)");
    TempDir work;
    CopyDir(dir.path(), work.path());
    FlipByte(work.File(only.segment), only.begin + where);
    // The first open finds it with the hint the clean close finished and
    // seals the segment there, removing that hint; the second reads it
    // without one: the header's seq_floor then bounds the record's seq.
    CheckDamageReportedTwice(work.path(), options, {"filler", "k"}, latest, {"k"});
  }
}

TEST_CASE("a large value's segment with a damaged header and no hint: reported at every open and by verify, its "
          "key never answers an older value or not found, every other key its own",
          "[engine][corruption][recovery]") {
  // The large value just above the part size (the large-value path: a
  // segment of its own, sealed at birth), raw and compressible; the others
  // on both sides of the compression threshold, of 1 KiB and of the part
  // size (the last one written through Apply). (A damaged record header
  // costs a search of the whole value at every open: larger values only
  // make the test slower.)
  const size_t large_bytes = kPartBytes + 1;
  const bool compressible = GENERATE(false, true);
  TempDir dir;
  Options options;
  std::map<std::string, std::string> latest;
  std::vector<std::string> keys;
  {
    TestDb db(PosixEnv(), dir.path(), options);
    REQUIRE(db.Open().ok());
    for (uint64_t version = 1; version <= 2; ++version) {
      for (size_t bytes : {size_t{100}, size_t{255}, size_t{256}, size_t{1024}, size_t{1025}, size_t{kPartBytes}}) {
        const std::string k = "k" + std::to_string(bytes) + (compressible ? "z" : "r");
        if (version == 1) keys.push_back(k);
        latest[k] = MakeValue(k, version, bytes, compressible);
        REQUIRE(PutAsServer(db, k, latest[k], compressible).ok());
      }
      latest["big"] = MakeValue("big", version, large_bytes, compressible);
      REQUIRE(PutAsServer(db, "big", latest["big"], compressible).ok());
    }
    keys.push_back("big");
    // A key whose only record is a large value: damaged, it must not read as absent.
    keys.push_back("fresh");
    latest["fresh"] = MakeValue("fresh", 1, large_bytes, compressible);
    REQUIRE(PutAsServer(db, "fresh", latest["fresh"], compressible).ok());
    db.Close();
  }
  // The segments of the newest "big" and of "fresh": one record each.
  std::map<std::string, RecordAt> newest;
  for (const RecordAt& r : Records(dir.path()))
    if (!newest.count(r.key) || newest[r.key].seq < r.seq) newest[r.key] = r;
  std::vector<std::string> large_segments;
  for (const char* k : {"big", "fresh"}) {
    const RecordAt& r = newest.at(k);
    REQUIRE(r.begin == kSegmentHeaderBytes);
    REQUIRE(fs::file_size(dir.File(r.segment)) == r.end);
    large_segments.push_back(r.segment);
  }
  // Bytes of the segment header (the seed, the seq_floor, its checksum),
  // then of the record header (its checksum, the seq, the stored length, the
  // key length).
  const uint64_t where = GENERATE(20, 36, 44, kSegmentHeaderBytes + 2, kSegmentHeaderBytes + 18,
                                  kSegmentHeaderBytes + 25, kSegmentHeaderBytes + 33);
  const bool record_header = where >= kSegmentHeaderBytes;
  INFO("byte " << where << " of the large values' segments (" << large_bytes << " bytes"
               << (compressible ? ", compressible" : "") << "), their hints removed");
  TempDir work;
  CopyDir(dir.path(), work.path());
  for (const std::string& seg : large_segments) {
    FlipByte(work.File(seg), where);
    fs::remove(work.File(HintOf(seg)));
  }
  // A damaged segment header leaves its record whole: the key answers its
  // value; a damaged record header leaves the key unreadable: "damaged".
  const std::set<std::string> damaged =
      record_header ? std::set<std::string>{"big", "fresh"} : std::set<std::string>{};
  CheckDamageReportedTwice(work.path(), options, keys, latest, damaged);
}

TEST_CASE("after a crash, a damaged key byte in the active segment is filed under the key its hint names there, "
          "which the record's checksum proves",
          "[engine][corruption][recovery]") {
  // Every second-round record (values of 10 B to 1 MiB + 1, raw and
  // compressible) with its first or its last key byte damaged; each key's
  // first version is older, in the same segment or an earlier one.
  ClosedTwice fx;
  std::vector<RecordAt> in_last;
  const std::string last = fx.LastSegment(&in_last);
  for (bool first_byte : {true, false}) {
    INFO("the " << (first_byte ? "first" : "last") << " key byte of every record of " << last
                << " written in the second round");
    TempDir work;
    CopyDirSharingSealed(fx.dir.path(), work.path(), last);
    std::set<std::string> damaged;
    for (const RecordAt& r : in_last) {
      FlipByte(work.File(last), r.begin + kRecordHeaderBytes + (first_byte ? 0 : r.key.size() - 1));
      damaged.insert(r.key);
    }
    // Opened after a crash (the hint as the writer wrote it, unfinished),
    // twice: the second open's hint is the one the first wrote from its scan.
    // Before any open, verify names the real keys.
    REQUIRE(DropCloseTrailer(work.File(last)));
    uint64_t found = 0;
    const auto findings = VerifyFindings(work.path(), fx.options, &found);
    CHECK(found >= damaged.size());
    for (const std::string& k : damaged) {
      INFO("verify after a crash names " << k);
      CHECK(Names(findings, k));
    }
    for (int open = 0; open < 2; ++open) {
      if (open > 0) REQUIRE(DropCloseTrailer(work.File(last)));
      ReportingDb opened(work.path(), fx.options);
      REQUIRE(opened.db.Open().ok());
      CHECK(opened.db.writer().Stats().corruptions >= damaged.size());
      for (const std::string& k : fx.keys) {
        INFO("open " << open << " after a crash, key " << k);
        auto got = opened.db.Get(k);
        if (damaged.count(k) && !got.ok()) {
          CHECK(got.status().Is(Code::kCorruption));
        } else {
          REQUIRE(got.ok());
          CHECK(got.value() == fx.latest.at(k));
        }
      }
      opened.db.Close();
    }
    // Clean closes from here on; verify names each real key; written again, each answers its new value.
    fx.CheckReportedTwice(work.path(), damaged, /*rewrite=*/true);
  }
}
