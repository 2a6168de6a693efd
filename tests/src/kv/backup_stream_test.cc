// TarBackupStream: the archive of a cut, piece by piece. Inline reads (no
// Offload) and reads queued on an Offload give the same bytes; with an
// Offload a file piece is never read on the caller's thread (Next answers
// kAgain, one read in flight, `resume` once it is done); a stream destroyed
// while its read is in flight leaves the piece buffer and its reservation to
// the read until it ends.
#include "src/kv/backup_stream.h"

#include <catch2/catch.hpp>

#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "engine/cut_hint.h"
#include "engine/options.h"
#include "engine/record.h"
#include "http/connection.h"
#include "tests/engine/support/fault_env.h"
#include "tests/src/support/test_util.h"

namespace kingx {
namespace {

// An Offload whose work runs only when the test says so.
class ManualOffload final : public Offload {
 public:
  bool Queue(std::function<void()> work, std::function<void()> done) override {
    jobs.push_back({std::move(work), std::move(done)});
    return true;
  }
  // Runs the oldest job: its work, then `between` (what the loop does
  // before it sees the work's end: a timer sweep), then its done.
  void RunOne(const std::function<void()>& between = {}) {
    REQUIRE(!jobs.empty());
    Job j = std::move(jobs.front());
    jobs.erase(jobs.begin());
    j.work();
    if (between) between();
    j.done();
  }
  struct Job {
    std::function<void()> work, done;
  };
  std::vector<Job> jobs;
};

// One cut in backup slot 0 of a region: one sealed segment file of `bytes`
// random bytes in dir (no hint), and the MANIFEST made for it.
struct CutFixture {
  explicit CutFixture(size_t bytes, engine::Env& env = engine::PosixEnv()) : region(std::make_unique<BackupRegion>()) {
    std::mt19937 rng(7);
    segment.resize(bytes);
    for (char& c : segment) c = static_cast<char>(rng());
    std::ofstream(engine::JoinPath(dir.path, engine::SegmentFileName(3)), std::ios::binary) << segment;
    BackupSlot& b = region->slots[0];
    b.files[0].id = 3;
    b.files[0].bytes = bytes;
    b.files[0].birth = 1;
    b.file_count = 1;
    b.seed = 42;
    b.next_seq = 100;
    b.seq_high_water = 200;
    b.state = static_cast<uint32_t>(BackupState::kCut);
    client = std::make_unique<BackupClient>(*region, env, nullptr, dir.path, 0, 1);
  }
  test::TempDir dir;
  std::unique_ptr<BackupRegion> region;
  std::string segment;
  std::unique_ptr<BackupClient> client;
};

// The bytes of the segment member in a whole archive.
std::string SegmentMember(const std::string& tar) {
  const std::string name = engine::SegmentFileName(3);
  for (size_t at = 0; at + 512 <= tar.size();) {
    const std::string member(tar.data() + at, name.size());
    const uint64_t size = std::stoull(std::string(tar.data() + at + 124, 11), nullptr, 8);
    if (member == name) return tar.substr(at + 512, size);
    at += 512 + (size + 511) / 512 * 512;
  }
  return {};
}

// Every member of a whole archive, in order: name and bytes.
std::vector<std::pair<std::string, std::string>> Members(const std::string& tar) {
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t at = 0; at + 512 <= tar.size() && tar[at] != '\0';) {
    const std::string name(tar.data() + at);
    const uint64_t size = std::stoull(std::string(tar.data() + at + 124, 11), nullptr, 8);
    out.emplace_back(name, tar.substr(at + 512, size));
    at += 512 + (size + 511) / 512 * 512;
  }
  return out;
}

// A valid segment of `records` records with id 3 (the CutFixture's, unless
// told), then `tail` bytes the cut leaves out.
std::string ValidSegment(int records, size_t tail, uint32_t id = 3) {
  std::string seg(engine::kSegmentHeaderBytes, '\0');
  engine::SegmentHeader h;
  h.seed = 42;
  h.segment_id = id;
  h.seq_floor = 1;
  engine::EncodeSegmentHeader(h, seg.data());
  for (int i = 0; i < records; ++i) {
    const std::string key = "k" + std::to_string(i);
    const std::string value(static_cast<size_t>(100 + 40 * i), static_cast<char>('a' + i % 26));
    engine::EncodeRecord(static_cast<uint64_t>(1 + i), engine::RecordType::kPut, engine::Codec::kRaw, key, "", value,
                         value.size(), &seg);
  }
  return seg + std::string(tail, 'z');
}

std::string WholeArchive(TarBackupStream& s, ManualOffload* offload) {
  REQUIRE(s.Prime());
  std::string tar;
  std::string_view piece;
  for (int i = 0; i < 1000 && tar.size() < s.length(); ++i) {
    const auto pull = s.Next(&piece);
    if (pull == http::BodyStream::Pull::kAgain && offload != nullptr) {
      offload->RunOne();
      continue;
    }
    REQUIRE(pull == http::BodyStream::Pull::kPiece);
    tar.append(piece);
  }
  REQUIRE(tar.size() == s.length());
  return tar;
}

}  // namespace

TEST_CASE("a backup carries the finished hint of its active segment at the cut, before the segment's data, "
          "and leaves no scratch file",
          "[kv][backup]") {
  CutFixture f(10);
  const std::string seg = ValidSegment(30, 5000);
  const uint64_t cut = seg.size() - 5000;
  std::ofstream(engine::JoinPath(f.dir.path, engine::SegmentFileName(3)), std::ios::binary | std::ios::trunc) << seg;
  f.region->slots[0].files[0].bytes = cut;
  f.region->slots[0].files[0].flags = kBackupFileActive;
  // A stale hint of the writer's beside it: never what the archive carries.
  std::ofstream(engine::JoinPath(f.dir.path, engine::HintFileName(3)), std::ios::binary) << "unfinished";
  test::TempDir scratch;
  auto hint = PrepareCutHints(engine::PosixEnv(), f.dir.path, f.client->Cut(0), scratch.path, "t");
  REQUIRE(hint.ok());
  REQUIRE(hint.value()->hints.size() == 1);
  REQUIRE(engine::PosixEnv().ListDir(scratch.path).value().empty());  // unlinked once open
  // The hint a clean close would write for the segment at the cut.
  const std::string expected_path = engine::JoinPath(scratch.path, "expected");
  REQUIRE(engine::WriteCutHint(engine::PosixEnv(), engine::JoinPath(f.dir.path, engine::SegmentFileName(3)), 3, cut,
                               engine::RecordLimits{}, expected_path)
              .ok());
  std::string expected;
  {
    std::ifstream in(expected_path, std::ios::binary);
    expected.assign(std::istreambuf_iterator<char>(in), {});
  }
  ByteBudget budget(1 << 20);
  ManualOffload offload;
  const bool with_offload = GENERATE(false, true);
  TarBackupStream s(*f.client, 0, budget, 0, with_offload ? &offload : nullptr, [] {}, hint.value());
  const auto members = Members(WholeArchive(s, with_offload ? &offload : nullptr));
  REQUIRE(members.size() == 3);
  CHECK(members[0].first == "MANIFEST");
  CHECK(members[1].first == engine::HintFileName(3));
  CHECK(members[1].second == expected);
  CHECK(members[2].first == engine::SegmentFileName(3));
  CHECK(members[2].second == seg.substr(0, cut));
}

// The file at path, whole.
std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST_CASE("a backup carries every segment's hint before any segment's data: sealed segments' own, the active "
          "segment's and one built for a segment without a hint file",
          "[kv][backup]") {
  CutFixture f(10);
  engine::Env& env = engine::PosixEnv();
  BackupSlot& b = f.region->slots[0];
  // 1 sealed with its hint; 2 missing, its hint kept; 3 active (cut); 4
  // sealed without a hint file; 5 sealed, born after the active one (a
  // compaction output), with its hint.
  const std::string seg1 = ValidSegment(4, 0, 1), seg3 = ValidSegment(30, 5000, 3), seg4 = ValidSegment(6, 0, 4),
                    seg5 = ValidSegment(3, 0, 5);
  const uint64_t cut3 = seg3.size() - 5000;
  std::ofstream(engine::JoinPath(f.dir.path, engine::SegmentFileName(1)), std::ios::binary) << seg1;
  std::ofstream(engine::JoinPath(f.dir.path, engine::SegmentFileName(3)), std::ios::binary | std::ios::trunc) << seg3;
  std::ofstream(engine::JoinPath(f.dir.path, engine::SegmentFileName(4)), std::ios::binary) << seg4;
  std::ofstream(engine::JoinPath(f.dir.path, engine::SegmentFileName(5)), std::ios::binary) << seg5;
  std::ofstream(engine::JoinPath(f.dir.path, engine::HintFileName(1)), std::ios::binary) << "hint of 1";
  std::ofstream(engine::JoinPath(f.dir.path, engine::HintFileName(2)), std::ios::binary) << "hint of 2";
  std::ofstream(engine::JoinPath(f.dir.path, engine::HintFileName(3)), std::ios::binary) << "unfinished";
  std::ofstream(engine::JoinPath(f.dir.path, engine::HintFileName(5)), std::ios::binary) << "hint of 5";
  const struct {
    uint32_t id;
    uint32_t flags;
    uint64_t bytes, birth;
  } files[] = {{1, 0, seg1.size(), 1}, {2, kBackupFileMissing, 0, 2}, {3, kBackupFileActive, cut3, 3},
               {4, 0, seg4.size(), 4}, {5, 0, seg5.size(), 5}};
  uint32_t n = 0;
  for (const auto& file : files) {
    b.files[n].id = file.id;
    b.files[n].flags = file.flags;
    b.files[n].bytes = file.bytes;
    b.files[n].birth = file.birth;
    ++n;
  }
  b.file_count = n;
  test::TempDir scratch;
  auto hints = PrepareCutHints(env, f.dir.path, f.client->Cut(0), scratch.path, "o");
  REQUIRE(hints.ok());
  REQUIRE(hints.value()->hints.size() == 2);  // 3's and 4's
  CHECK(env.ListDir(scratch.path).value().empty());
  std::string expected3, expected4;
  for (const auto& [id, bytes, out] : {std::tuple{3u, cut3, &expected3}, std::tuple{4u, seg4.size(), &expected4}}) {
    const std::string path = engine::JoinPath(scratch.path, "expected");
    REQUIRE(engine::WriteCutHint(env, engine::JoinPath(f.dir.path, engine::SegmentFileName(id)), id, bytes,
                                 engine::RecordLimits{}, path)
                .ok());
    *out = Slurp(path);
  }
  ByteBudget budget(1 << 20);
  TarBackupStream s(*f.client, 0, budget, 0, nullptr, [] {}, hints.value());
  const auto members = Members(WholeArchive(s, nullptr));
  std::vector<std::string> names;
  for (const auto& m : members) names.push_back(m.first);
  using engine::HintFileName, engine::SegmentFileName;
  REQUIRE(names == std::vector<std::string>{"MANIFEST", HintFileName(1), HintFileName(2), HintFileName(3),
                                            HintFileName(4), HintFileName(5), SegmentFileName(1),
                                            SegmentFileName(3), SegmentFileName(4), SegmentFileName(5)});
  CHECK(members[1].second == "hint of 1");
  CHECK(members[2].second == "hint of 2");
  CHECK(members[3].second == expected3);
  CHECK(members[4].second == expected4);
  CHECK(members[5].second == "hint of 5");
  CHECK(members[6].second == seg1);
  CHECK(members[7].second == seg3.substr(0, cut3));
  CHECK(members[8].second == seg4);
  CHECK(members[9].second == seg5);
}

TEST_CASE("a backup ships no hint for an active segment that is missing, header-only-short or damaged below the cut",
          "[kv][backup]") {
  CutFixture f(10);
  test::TempDir scratch;
  BackupSlot& b = f.region->slots[0];
  // No active segment: a sealed one only.
  auto none = PrepareCutHints(engine::PosixEnv(), f.dir.path, f.client->Cut(0), scratch.path, "a");
  REQUIRE(none.ok());
  CHECK(none.value()->hints.empty());
  // Active but shorter than a segment header.
  b.files[0].flags = kBackupFileActive;
  none = PrepareCutHints(engine::PosixEnv(), f.dir.path, f.client->Cut(0), scratch.path, "b");
  REQUIRE(none.ok());
  CHECK(none.value()->hints.empty());
  // Active, missing.
  b.files[0].flags = kBackupFileActive | kBackupFileMissing;
  b.files[0].bytes = 0;
  none = PrepareCutHints(engine::PosixEnv(), f.dir.path, f.client->Cut(0), scratch.path, "c");
  REQUIRE(none.ok());
  CHECK(none.value()->hints.empty());
  // Active, a damaged byte below the cut: the copy's scan reports it.
  std::string seg = ValidSegment(5, 0);
  seg[seg.size() - 3] ^= 1;
  std::ofstream(engine::JoinPath(f.dir.path, engine::SegmentFileName(3)), std::ios::binary | std::ios::trunc) << seg;
  b.files[0].flags = kBackupFileActive;
  b.files[0].bytes = seg.size();
  none = PrepareCutHints(engine::PosixEnv(), f.dir.path, f.client->Cut(0), scratch.path, "d");
  REQUIRE(none.ok());
  CHECK(none.value()->hints.empty());
  // An empty active segment (its header only): a hint of no entries.
  seg = ValidSegment(0, 0);
  std::ofstream(engine::JoinPath(f.dir.path, engine::SegmentFileName(3)), std::ios::binary | std::ios::trunc) << seg;
  b.files[0].bytes = seg.size();
  auto empty = PrepareCutHints(engine::PosixEnv(), f.dir.path, f.client->Cut(0), scratch.path, "e");
  REQUIRE(empty.ok());
  REQUIRE(empty.value()->hints.size() == 1);
  CHECK(empty.value()->hints[0].bytes == 24 + 24);  // the hint's header and trailer
  CHECK(engine::PosixEnv().ListDir(scratch.path).value().empty());
}

TEST_CASE("a backup stream reads its files inline without an offload", "[kv][backup]") {
  CutFixture f(200'000);
  ByteBudget budget(1 << 20);
  TarBackupStream s(*f.client, 0, budget, 0);
  REQUIRE(s.Prime());
  std::string tar;
  std::string_view piece;
  for (int i = 0; i < 100 && tar.size() < s.length(); ++i) {
    REQUIRE(s.Next(&piece) == http::BodyStream::Pull::kPiece);
    tar.append(piece);
  }
  REQUIRE(tar.size() == s.length());
  REQUIRE(SegmentMember(tar) == f.segment);
}

TEST_CASE("with an offload, a backup stream never reads a file on the caller's thread", "[kv][backup]") {
  CutFixture f(200'000);
  ByteBudget budget(1 << 20);
  ManualOffload offload;
  int resumed = 0;
  TarBackupStream s(*f.client, 0, budget, 0, &offload, [&] { ++resumed; });
  REQUIRE(s.Prime());
  std::string tar;
  std::string_view piece;
  size_t waits = 0;
  for (int i = 0; i < 100 && tar.size() < s.length(); ++i) {
    const auto pull = s.Next(&piece);
    if (pull == http::BodyStream::Pull::kAgain) {
      ++waits;
      // One read in flight, however often the stream is asked meanwhile.
      REQUIRE(offload.jobs.size() == 1);
      REQUIRE(s.Next(&piece) == http::BodyStream::Pull::kAgain);
      REQUIRE(offload.jobs.size() == 1);
      const int before = resumed;
      offload.RunOne();
      REQUIRE(resumed == before + 1);
      continue;
    }
    REQUIRE(pull == http::BodyStream::Pull::kPiece);
    REQUIRE(offload.jobs.empty());
    tar.append(piece);
  }
  REQUIRE(tar.size() == s.length());
  REQUIRE(SegmentMember(tar) == f.segment);
  REQUIRE(waits == (f.segment.size() + TarBackupStream::kPieceBytes - 1) / TarBackupStream::kPieceBytes);
}

TEST_CASE("a backup stream destroyed during its read leaves the buffer to the read until it ends",
          "[kv][backup]") {
  CutFixture f(200'000);
  ByteBudget budget(1 << 20);
  ManualOffload offload;
  int resumed = 0;
  {
    TarBackupStream s(*f.client, 0, budget, 0, &offload, [&] { ++resumed; });
    REQUIRE(s.Prime());
    std::string_view piece;
    for (int i = 0; i < 10 && offload.jobs.empty(); ++i) s.Next(&piece);
    REQUIRE(offload.jobs.size() == 1);
    REQUIRE(budget.used() == TarBackupStream::kPieceBytes);
  }
  // The stream is gone (slot released); its read has not run yet.
  REQUIRE(f.client->State(0) == BackupState::kReleased);
  REQUIRE(budget.used() == TarBackupStream::kPieceBytes);
  offload.RunOne();
  REQUIRE(resumed == 0);
  REQUIRE(budget.used() == 0);
}

TEST_CASE("a read that ends after the pin was dropped ends the stream", "[kv][backup]") {
  CutFixture f(200'000);
  ByteBudget budget(1 << 20);
  ManualOffload offload;
  TarBackupStream s(*f.client, 0, budget, 0, &offload, [] {});
  REQUIRE(s.Prime());
  std::string_view piece;
  for (int i = 0; i < 10; ++i) {
    const auto pull = s.Next(&piece);
    if (pull == http::BodyStream::Pull::kAgain) break;
    REQUIRE(pull == http::BodyStream::Pull::kPiece);
  }
  REQUIRE(offload.jobs.size() == 1);
  f.region->slots[0].state = static_cast<uint32_t>(BackupState::kExpired);  // the writer dropped the pin
  offload.RunOne();
  REQUIRE(s.Next(&piece) == http::BodyStream::Pull::kError);
}

namespace {

// GET /admin/backup answered with the stream the test made.
class BackupHandler final : public http::Handler {
 public:
  std::shared_ptr<TarBackupStream> stream;
  const uint64_t* now = nullptr;
  void OnRequest(http::Connection& conn, const http::Request&) override {
    http::Response r;
    r.status = 200;
    r.content_type = "application/x-tar";
    r.stream_length = stream->length();
    r.stream = std::move(stream);
    conn.Respond(r, *now);
  }
  void OnBody(http::Connection&, std::span<const char>, uint64_t) override {}
  void OnBodyEnd(http::Connection&, uint64_t) override {}
  void OnAbort(http::Connection&) override {}
};

}  // namespace

TEST_CASE("a backup whose client reads promptly is never cut by the send deadline while its disk reads are slow",
          "[kv][backup]") {
  // Every read of the segment takes two send timeouts on the test's clock
  // (the file seam's read hook: a slow disk); the loop's timer sweep runs
  // when the read ends, before its piece is resumed. The client takes every
  // byte at once: the archive must come whole, the connection kept.
  engine::test::FaultInjectionEnv env;
  CutFixture f(300'000, env);
  http::Limits limits;
  uint64_t now = 1000;
  int slow_reads = 0;
  env.SetReadHook([&](const std::string& path, uint64_t, size_t, const char*) {
    if (path.ends_with(engine::SegmentFileName(3))) {
      now += 2 * limits.send_timeout_ms;
      ++slow_reads;
    }
  });
  ByteBudget budget(1 << 20);
  ManualOffload offload;
  BackupHandler handler;
  handler.now = &now;
  auto conn = std::make_unique<http::Connection>(handler, limits, nullptr, now);
  conn->SetListener(http::Listener::kAdmin);
  handler.stream = std::make_shared<TarBackupStream>(*f.client, 0, budget, 0, &offload,
                                                     [&] { conn->ResumeOutput(now); });
  REQUIRE(handler.stream->Prime());
  const uint64_t length = handler.stream->length();
  const std::string request = "GET /admin/backup HTTP/1.1\r\nHost: h\r\n\r\n";
  conn->Feed(std::span<const char>(request.data(), request.size()), now);
  std::string wire;
  for (int i = 0; i < 10'000 && !conn->ShouldClose(); ++i) {
    if (conn->HasOutput()) {  // the client reads everything sent, at once
      struct iovec iov[64];
      const size_t n = conn->GatherOutput(iov, 64);
      size_t bytes = 0;
      for (size_t k = 0; k < n; ++k) {
        wire.append(static_cast<const char*>(iov[k].iov_base), iov[k].iov_len);
        bytes += iov[k].iov_len;
      }
      conn->ConsumeOutput(bytes, now);
      continue;
    }
    if (offload.jobs.empty()) break;  // nothing pending, nothing read: done
    offload.RunOne([&] { conn->OnTimer(now); });
  }
  CHECK(slow_reads >= 4);
  CHECK_FALSE(conn->ShouldClose());
  CHECK_FALSE(conn->Streaming());
  const size_t head_end = wire.find("\r\n\r\n");
  REQUIRE(head_end != std::string::npos);
  const std::string body = wire.substr(head_end + 4);
  REQUIRE(body.size() == length);
  CHECK(SegmentMember(body) == f.segment);
}

}  // namespace kingx
