// Reader: values are verified before they are returned; readers in other
// processes share the writer's index and keep reading while it writes and
// rotates segments.
#include "engine/reader.h"

#include <catch2/catch.hpp>

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <thread>

#include "engine/compaction.h"
#include "engine/compress.h"
#include "engine/kill_point.h"
#include "engine/mapping_guard.h"
#include "tests/engine/support/fault_env.h"
#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;
namespace fs = std::filesystem;

TEST_CASE("a reader reports busy until recovery has made the index ready", "[engine][reader]") {
  TempDir dir;
  IndexRegion region;
  Reader reader(PosixEnv(), dir.path(), Options{}, region.index());
  CHECK(reader.Get("k").status().Is(Code::kBusy));
  CHECK(reader.Get("").status().Is(Code::kInvalidArgument));
}

TEST_CASE("a value whose bytes rot after it was written is reported as corruption, never returned",
          "[engine][reader][corruption]") {
  TempDir dir;
  Options o;
  o.compression_level = GENERATE(0, 1);
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  const std::string value = MakeValue("k", 1, 3000, true);
  REQUIRE(db.Put("k", value).status.ok());
  REQUIRE(db.Put("other", "fine").status.ok());
  REQUIRE(db.Get("k").value() == value);
  // Flip a byte in the value's stored bytes, under the running reader.
  const std::string seg = SegmentFiles(dir.path()).back();
  std::string bytes = ReadFileBytes(seg);
  const size_t pos = bytes.find(o.compression_level == 0 ? value.substr(100, 50) : std::string("text/plain")) + 20;
  bytes[pos] ^= 0x40;
  {
    // Rewrite in place (same inode, so the reader's mapping sees it).
    FILE* f = fopen(seg.c_str(), "r+b");
    REQUIRE(f != nullptr);
    fseek(f, static_cast<long>(pos), SEEK_SET);
    fputc(bytes[pos], f);
    fclose(f);
  }
  const uint64_t before = db.index().counters().corruptions.load();
  auto got = db.Get("k");
  CHECK(got.status().Is(Code::kCorruption));
  CHECK(db.index().counters().corruptions.load() == before + 1);
  CHECK(db.Get("other").value() == "fine");
}

TEST_CASE("many threads share one reader while the writer appends", "[engine][reader]") {
  TempDir dir;
  Options o;
  o.segment_bytes = 64 << 10;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  for (int i = 0; i < 50; ++i) REQUIRE(db.Put("k" + std::to_string(i), MakeValue("k" + std::to_string(i), 0, 300, true)).status.ok());
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int n = 0; n < 200000 && !stop.load(); ++n) {
        std::string k = "k" + std::to_string(rng() % 50);
        auto v = db.reader().Get(k);
        uint64_t ver;
        if (!v.ok() || !CheckValue(k, v->data, &ver)) ++bad;
      }
    });
  }
  for (int round = 1; round <= 100; ++round)
    for (int i = 0; i < 50; ++i) {
      std::string k = "k" + std::to_string(i);
      REQUIRE(db.Put(k, MakeValue(k, round, 100 + (round * i) % 900, round % 2 == 0)).status.ok());
    }
  stop = true;
  for (auto& t : threads) t.join();
  CHECK(bad.load() == 0);
}

namespace {

constexpr int kKeys = 64;

// Shared between the test's processes (MAP_SHARED, created before fork).
struct Shared {
  std::atomic<int> writer_done{0};
  pid_t parent = getpid();  // the test process, which forks the readers
  std::atomic<uint64_t> acked[kKeys];  // highest acknowledged version per key (0 = none yet)
};

std::string KeyName(int i) { return "mp-key-" + std::to_string(i); }

// Writes batches of new versions, continuing from the versions acknowledged
// so far. With kill_point set, dies there (exit 137) part way.
int WriterProcess(const std::string& dir, const Options& o, SharedIndex& index, Shared& shared,
                  const char* kill_point = "", bool mark_done = true) {
  auto w = Writer::Open(PosixEnv(), dir, o, index);
  if (!w.ok()) return 10;
  ArmKillPoint(kill_point);
  std::mt19937_64 rng(7);
  uint64_t version[kKeys] = {};
  for (int i = 0; i < kKeys; ++i) version[i] = shared.acked[i].load(std::memory_order_acquire) + 1;
  for (int batch = 0; batch < 1500; ++batch) {
    std::vector<std::string> keys, values, stored;
    std::vector<int> ids;
    const int n = 1 + static_cast<int>(rng() % 8);
    for (int i = 0; i < n; ++i) {
      int id = static_cast<int>(rng() % kKeys);
      if (std::find(ids.begin(), ids.end(), id) != ids.end()) continue;
      ids.push_back(id);
      keys.push_back(KeyName(id));
      const size_t len = rng() % 50 == 0 ? 200000 : 30 + rng() % 2000;
      values.push_back(MakeValue(keys.back(), version[id] + 1, len, rng() % 2 == 0));
      stored.emplace_back();
    }
    std::vector<WriteOp> ops(keys.size());
    for (size_t i = 0; i < keys.size(); ++i) {
      ops[i].key = keys[i];
      ops[i].content_type = "application/test";
      ops[i].codec = EncodeValue(values[i], o.compression_level, o.compress_min_bytes, &stored[i]);
      ops[i].stored = ops[i].codec == Codec::kZstd ? std::string_view(stored[i]) : std::string_view(values[i]);
      ops[i].raw_len = values[i].size();
    }
    std::vector<WriteResult> results(ops.size());
    w.value()->Apply(ops, results);
    for (size_t i = 0; i < ops.size(); ++i) {
      if (!results[i].status.ok()) return 11;
      version[ids[i]] += 1;
      shared.acked[ids[i]].store(version[ids[i]], std::memory_order_release);
    }
  }
  if (mark_done) shared.writer_done.store(1, std::memory_order_release);
  return 0;
}

int ReaderProcess(const std::string& dir, const Options& o, SharedIndex& index, Shared& shared, int seed) {
  Reader reader(PosixEnv(), dir, o, index);
  std::mt19937 rng(seed);
  uint64_t seen[kKeys] = {};
  uint64_t reads = 0;
  // A reader stops when the last writer is done or the test process is gone;
  // the time bound only keeps a reader whose test hangs from spinning past any
  // timeout the suite runs under (sanitizers at the lowest priority make the
  // writers minutes long, so it is no measure of the writers' progress).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(40);
  for (uint64_t n = 0; n < 50'000'000; ++n) {
    if (shared.writer_done.load(std::memory_order_acquire) && reads > 0) break;
    if ((n & 1023) == 0 && getppid() != shared.parent) return 28;
    if ((n & 1023) == 0 && std::chrono::steady_clock::now() > deadline) return 20;
    const int id = static_cast<int>(rng() % kKeys);
    const uint64_t floor = shared.acked[id].load(std::memory_order_acquire);
    auto v = reader.Get(KeyName(id));
    if (v.status().Is(Code::kBusy)) {
      // Only before the first recovery published an index; never after
      // (through a writer's crash and the next one's recovery included).
      if (reads > 0) return 27;
      continue;
    }
    if (v.status().Is(Code::kNotFound)) {
      if (floor != 0) return 21;  // an acknowledged key vanished
      continue;
    }
    if (!v.ok()) return 22;
    uint64_t version = 0;
    if (!CheckValue(KeyName(id), v->data, &version)) return 23;  // torn or someone else's bytes
    if (version < floor || version < seen[id]) return 24;        // went back in time
    if (v->content_type != "application/test") return 25;
    seen[id] = version;
    ++reads;
  }
  return reads > 0 ? 0 : 26;
}

}  // namespace

TEST_CASE("reader processes never see a torn, wrong or stale value while a writer process writes",
          "[engine][reader][multiprocess]") {
  TempDir dir;
  IndexRegion region(1 << 12);
  void* mem = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  REQUIRE(mem != MAP_FAILED);
  Shared* shared = new (mem) Shared();
  Options o;
  o.segment_bytes = 256 << 10;  // rotations while readers read

  std::vector<pid_t> pids;
  for (int r = 0; r < 2; ++r) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) _exit(ReaderProcess(dir.path(), o, region.index(), *shared, r + 1));
    pids.push_back(pid);
  }
  pid_t writer = fork();
  REQUIRE(writer >= 0);
  if (writer == 0) _exit(WriterProcess(dir.path(), o, region.index(), *shared));
  pids.insert(pids.begin(), writer);

  for (pid_t pid : pids) {
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    INFO("process " << pid << " (the first is the writer) exit status " << WEXITSTATUS(status));
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  CHECK(SegmentFiles(dir.path()).size() > 3);
  munmap(mem, sizeof(Shared));
}

TEST_CASE("reader processes keep reading through a writer crash and the next writer's recovery",
          "[engine][reader][multiprocess][crash]") {
  TempDir dir;
  IndexRegion region(1 << 12);
  void* mem = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  REQUIRE(mem != MAP_FAILED);
  Shared* shared = new (mem) Shared();
  Options o;
  o.segment_bytes = 256 << 10;
  std::vector<pid_t> readers;
  for (int r = 0; r < 2; ++r) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) _exit(ReaderProcess(dir.path(), o, region.index(), *shared, r + 11));
    readers.push_back(pid);
  }
  // The first writer dies between a batch's write and its sync, with readers attached.
  pid_t first = fork();
  REQUIRE(first >= 0);
  if (first == 0) _exit(WriterProcess(dir.path(), o, region.index(), *shared, "append.after_write:700", false));
  int status = 0;
  REQUIRE(waitpid(first, &status, 0) == first);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 137);
  // The next one recovers beside the published index (readers keep reading it) and goes on.
  pid_t second = fork();
  REQUIRE(second >= 0);
  if (second == 0) _exit(WriterProcess(dir.path(), o, region.index(), *shared));
  REQUIRE(waitpid(second, &status, 0) == second);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  for (pid_t pid : readers) {
    REQUIRE(waitpid(pid, &status, 0) == pid);
    INFO("reader " << pid << " exit status " << WEXITSTATUS(status));
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  munmap(mem, sizeof(Shared));
}

namespace {

// Mappings of this process onto deleted files under dir (/proc/self/maps).
int DeletedMappings(const std::string& dir) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  int n = 0;
  while (std::getline(maps, line))
    if (line.find(dir) != std::string::npos && line.find("(deleted)") != std::string::npos) ++n;
  return n;
}

}  // namespace

TEST_CASE("a reader lets go of deleted segments without waiting for a read", "[engine][reader][regression]") {
  // Regression: deleted segments stayed mapped in every reader process until
  // a GET passed through it, so a write-only load never got the space back.
  TempDir dir;
  Options o;
  o.segment_bytes = 4096;
  o.compression_level = 0;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  for (int i = 0; i < 200; ++i) REQUIRE(db.Put("k" + std::to_string(i % 20), std::string(300, 'a')).status.ok());
  for (int i = 0; i < 20; ++i) REQUIRE(db.Get("k" + std::to_string(i)).ok());  // maps the live segments
  for (int i = 0; i < 200; ++i) REQUIRE(db.Put("k" + std::to_string(i % 20), std::string(300, 'b')).status.ok());
  CompactionOptions co;
  co.rate_bytes_per_sec = 0;
  co.pick_all = true;
  Compactor c(db.writer(), co);
  PassReport r;
  REQUIRE(c.RunOnce(&r).ok());
  REQUIRE(r.deleted > 0);
  CHECK(DeletedMappings(dir.path()) > 0);  // the reader still maps what it read
  db.reader().ReleaseDeletedSegments();     // a worker's timer, no Get
  CHECK(DeletedMappings(dir.path()) == 0);
  for (int i = 0; i < 20; ++i) CHECK(db.Get("k" + std::to_string(i)).value() == std::string(300, 'b'));
}

namespace {

// PosixEnv, with a hook called on every segment file the writer sizes or
// maps (recovery does both for every segment), to look at the index while a
// recovery is part way; and an optional failure of the Nth mapping.
class RecoveryProbeEnv final : public Env {
 public:
  explicit RecoveryProbeEnv(std::function<void()> hook) : hook_(std::move(hook)) {}
  int calls = 0;
  int maps = 0;
  int fail_map_at = 0;  // the nth mapping fails, out of mappings (kBusy: the open fails); 0: never

  Result<std::unique_ptr<File>> OpenFile(const std::string& path, OpenMode mode) override {
    return base_.OpenFile(path, mode);
  }
  Status SyncDir(const std::string& dir) override { return base_.SyncDir(dir); }
  Status Rename(const std::string& from, const std::string& to) override { return base_.Rename(from, to); }
  Status RemoveFile(const std::string& path) override { return base_.RemoveFile(path); }
  Status CreateDir(const std::string& path) override { return base_.CreateDir(path); }
  Status Symlink(const std::string& target, const std::string& link_path) override {
    return base_.Symlink(target, link_path);
  }
  Result<std::vector<std::string>> ListDir(const std::string& dir) override { return base_.ListDir(dir); }
  Result<uint64_t> FileSize(const std::string& path) override {
    Hook();
    return base_.FileSize(path);
  }
  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override { return base_.LockFile(path); }
  Result<std::unique_ptr<FileLock>> LockExisting(const std::string& path, bool shared) override {
    return base_.LockExisting(path, shared);
  }
  Result<SpaceInfo> Space(const std::string& path) override { return base_.Space(path); }
  Result<std::unique_ptr<MappedFile>> MapReadOnly(const std::string& path, uint64_t map_bytes) override {
    Hook();
    if (++maps == fail_map_at) return Status::Busy("injected: out of mappings");
    return base_.MapReadOnly(path, map_bytes);
  }
  Result<FileIdentity> Identify(const std::string& path) override { return base_.Identify(path); }
  uint64_t OpenFileLimit() override { return base_.OpenFileLimit(); }

 private:
  void Hook() {
    ++calls;
    hook_();
  }
  Env& base_ = PosixEnv();
  std::function<void()> hook_;
};

}  // namespace

TEST_CASE("readers answer from the last complete index while the next writer recovers, and after it "
          "fails", "[engine][reader][recovery]") {
  TempDir dir;
  Options o;
  o.segment_bytes = 32 << 10;  // many segments: the recovery below has many steps
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  // Versions 1..3 of 200 keys (overwrites across segments), then every
  // seventh key deleted: a half-rebuilt index would answer old versions and
  // resurrect deleted keys, an empty one 404s.
  std::map<std::string, uint64_t> want;  // 0 = deleted
  for (uint64_t version = 1; version <= 3; ++version) {
    for (int i = 0; i < 200; ++i) {
      const std::string k = "key-" + std::to_string(i);
      REQUIRE(db.Put(k, MakeValue(k, version, 100 + (i * 37) % 700, i % 2 == 0)).status.ok());
      want[k] = version;
    }
  }
  for (int i = 0; i < 200; i += 7) {
    const std::string k = "key-" + std::to_string(i);
    REQUIRE(db.Delete(k).status.ok());
    want[k] = 0;
  }
  REQUIRE(SegmentFiles(dir.path()).size() >= 8);
  db.Close();  // the writer stops; the index it published stays
  Reader reader(PosixEnv(), dir.path(), o, db.index());

  int wrong = 0, checks = 0;
  auto check_all = [&] {
    for (const auto& [k, version] : want) {
      auto v = reader.Get(k);
      ++checks;
      uint64_t got = 0;
      if (version == 0) {
        wrong += v.status().Is(Code::kNotFound) ? 0 : 1;
      } else {
        wrong += v.ok() && CheckValue(k, v->data, &got) && got == version ? 0 : 1;
      }
    }
  };
  check_all();
  REQUIRE(wrong == 0);

  SECTION("a recovery that completes") {
    RecoveryProbeEnv env(check_all);
    auto w = Writer::Open(env, dir.path(), o, db.index());
    REQUIRE(w.ok());
    INFO("checks made while the next writer recovered: " << checks);
    REQUIRE(env.calls >= 8);
    CHECK(wrong == 0);
    check_all();
    CHECK(wrong == 0);
  }
  SECTION("a recovery that fails half way") {
    RecoveryProbeEnv env(check_all);
    env.fail_map_at = 4;
    auto w = Writer::Open(env, dir.path(), o, db.index());
    REQUIRE_FALSE(w.ok());
    CHECK(env.maps >= 4);
    CHECK(wrong == 0);
    check_all();
    CHECK(wrong == 0);
    // The writer after it rebuilds from scratch and publishes.
    auto again = Writer::Open(PosixEnv(), dir.path(), o, db.index());
    REQUIRE(again.ok());
    check_all();
    CHECK(wrong == 0);
  }
}

TEST_CASE("ReadMode::kStored hands out verified stored bytes that decode piece by piece, old frames included",
          "[engine][reader][compress]") {
  TempDir dir;
  Options o;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  // "new": bounded frames (EncodeValue); "old-one-frame": one frame for the
  // whole value, as a single queue entry was stored before frames were
  // bounded; "old-large": one frame per 1 MiB part through the large path.
  const std::string small_value = MakeValue("new", 1, 700000, true);
  const std::string one_frame_value = MakeValue("old-one-frame", 1, 900000, true);
  const std::string large_value = MakeValue("old-large", 1, 3 * (1 << 20) + 12345, true);
  std::string stored_new, stored_old;
  REQUIRE(EncodeValue(small_value, 1, 256, &stored_new) == Codec::kZstd);
  REQUIRE(CompressFrame(one_frame_value, 1, &stored_old).ok());
  WriteOp ops[2];
  ops[0].key = "new";
  ops[0].codec = Codec::kZstd;
  ops[0].stored = stored_new;
  ops[0].raw_len = small_value.size();
  ops[1].key = "old-one-frame";
  ops[1].codec = Codec::kZstd;
  ops[1].stored = stored_old;
  ops[1].raw_len = one_frame_value.size();
  WriteResult results[2];
  db.writer().Apply(ops, results);
  REQUIRE(results[0].status.ok());
  REQUIRE(results[1].status.ok());
  WriteOp head;
  head.key = "old-large";
  head.codec = Codec::kZstd;
  auto id = db.writer().BeginLarge(head);
  REQUIRE(id.ok());
  for (size_t pos = 0; pos < large_value.size(); pos += 1 << 20) {
    std::string frame;
    REQUIRE(CompressFrame(std::string_view(large_value).substr(pos, 1 << 20), 1, &frame).ok());
    REQUIRE(db.writer().AppendLarge(*id, frame).ok());
  }
  WriteResult r;
  db.writer().FinishLarge(*id, large_value.size(), &r);
  REQUIRE(r.status.ok());

  for (const auto& [key, value] : {std::pair<std::string, const std::string*>{"new", &small_value},
                                   {"old-one-frame", &one_frame_value},
                                   {"old-large", &large_value}}) {
    INFO(key);
    auto full = db.reader().Get(key, ReadMode::kFull);
    REQUIRE(full.ok());
    CHECK(full->data == *value);
    auto stored = db.reader().Get(key, ReadMode::kStored);
    REQUIRE(stored.ok());
    CHECK(stored->data.empty());
    CHECK(stored->codec == Codec::kZstd);
    CHECK(stored->raw_len == value->size());
    CHECK(stored->seq == full->seq);
    ValueDecoder decoder(stored->codec, stored->stored, stored->raw_len);
    std::string buf, out;
    for (int i = 0; i < 100000 && !decoder.Done(); ++i) {
      std::string_view piece;
      REQUIRE(decoder.Next(kFrameRawBytes, &buf, &piece).ok());
      REQUIRE(piece.size() <= kFrameRawBytes);
      out.append(piece);
    }
    CHECK(out == *value);
    if (key == "new") CHECK(decoder.ContextBytes() == 0);
  }
  // Raw values come back as their own bytes.
  REQUIRE(db.Put("raw", "abc").status.ok());
  auto raw = db.reader().Get("raw", ReadMode::kStored);
  REQUIRE(raw.ok());
  CHECK(raw->codec == Codec::kRaw);
  CHECK(raw->stored == "abc");
}

TEST_CASE("prefetch hints change nothing a Get sees and never fail, before recovery, for absent, long and empty keys",
          "[engine][reader]") {
  {
    TempDir dir;
    IndexRegion region;
    Reader reader(PosixEnv(), dir.path(), Options{}, region.index());
    reader.PrefetchIndex("k");  // the index is not ready: nothing to fetch
    reader.PrefetchRecord("k");
    CHECK(reader.Get("k").status().Is(Code::kBusy));
  }
  TempDir dir;
  FaultInjectionEnv env;
  TestDb db(env, dir.path(), Options{});
  REQUIRE(db.Open().ok());
  REQUIRE(db.Put("k", "v1").status.ok());
  REQUIRE(db.Put("gone", "v0").status.ok());
  REQUIRE(db.Delete("gone").status.ok());
  const uint64_t mappings = env.LiveMappings();
  const std::string too_long(db.options().max_key_bytes + 1, 'x');
  for (std::string_view key : {std::string_view("k"), std::string_view("gone"), std::string_view("absent"),
                               std::string_view(), std::string_view(too_long)}) {
    db.reader().PrefetchIndex(key);
    db.reader().PrefetchRecord(key);
  }
  CHECK(env.LiveMappings() == mappings);
  CHECK(db.Get("k").value() == "v1");
  CHECK(db.Get("gone").status().Is(Code::kNotFound));
  CHECK(db.Get("absent").status().Is(Code::kNotFound));
}

TEST_CASE("hints for many keys at once change nothing a Get sees, before recovery, for absent, deleted, "
          "long and empty keys",
          "[engine][reader]") {
  {
    TempDir dir;
    IndexRegion region;
    Reader reader(PosixEnv(), dir.path(), Options{}, region.index());
    const std::string_view k[] = {"k"};
    KeyProbe p[1];
    p[0].hash = 1;
    reader.PrefetchKeys(k, p);  // the index is not ready: nothing to fetch
    CHECK(p[0].hash == 0);
    CHECK(reader.Get("k").status().Is(Code::kBusy));
  }
  TempDir dir;
  FaultInjectionEnv env;
  TestDb db(env, dir.path(), Options{});
  REQUIRE(db.Open().ok());
  std::vector<std::string> names;
  for (size_t i = 0; i < Reader::kMaxPrefetchKeys - 3; ++i) {
    names.push_back("key" + std::to_string(i));
    REQUIRE(db.Put(names.back(), "v" + std::to_string(i)).status.ok());
  }
  REQUIRE(db.Delete("key3").status.ok());
  const uint64_t mappings = env.LiveMappings();
  const std::string too_long(db.options().max_key_bytes + 1, 'x');
  std::vector<std::string_view> keys = {"absent", "", too_long};
  for (const std::string& n : names) keys.push_back(n);
  std::vector<KeyProbe> probes(keys.size());
  db.reader().PrefetchKeys(keys, probes);
  db.reader().PrefetchKeys({}, {});
  CHECK(probes[0].loc == 0);  // absent
  CHECK(probes[1].hash == 0);  // empty
  CHECK(probes[2].hash == 0);  // too long
  CHECK(env.LiveMappings() == mappings);
  for (size_t i = 0; i < names.size(); ++i) {
    auto v = db.Get(names[i]);
    if (i == 3) {
      CHECK(v.status().Is(Code::kNotFound));
    } else {
      REQUIRE(v.ok());
      CHECK(v.value() == "v" + std::to_string(i));
    }
  }
  CHECK(db.Get("absent").status().Is(Code::kNotFound));
}

namespace {

// The hints a server gives for a GET of key, in order.
KeyProbe HintsFor(Reader& reader, std::string_view key) {
  KeyProbe hint;
  reader.PrefetchIndex(key, &hint);
  reader.PrefetchRecord(key, &hint);
  return hint;
}

std::string HintedGet(Reader& reader, std::string_view key, const KeyProbe& hint) {
  auto v = reader.Get(key, ReadMode::kFull, hint);
  return v.ok() ? std::string(v->data) : v.status().ToString();
}

}  // namespace

TEST_CASE("a Get given a key's hint answers what a fresh lookup answers after an overwrite, delete or insert",
          "[engine][reader]") {
  TempDir dir;
  Options o;
  o.compression_level = 0;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  REQUIRE(db.Put("k", "v1").status.ok());
  REQUIRE(db.Put("other", "o1").status.ok());
  const std::string absent = db.Get("absent").status().ToString();

  KeyProbe hint = HintsFor(db.reader(), "k");
  REQUIRE(hint.loc != 0);
  CHECK(HintedGet(db.reader(), "k", hint) == "v1");  // still current: served from the hint
  // Overwritten after the hint: the old record is still on disk and must not be served.
  REQUIRE(db.Put("k", "v2").status.ok());
  CHECK(HintedGet(db.reader(), "k", hint) == "v2");
  // Deleted after the hint.
  hint = HintsFor(db.reader(), "k");
  REQUIRE(db.Delete("k").status.ok());
  CHECK(HintedGet(db.reader(), "k", hint) == absent);
  // Absent when hinted, written before the Get.
  hint = HintsFor(db.reader(), "k");
  CHECK(hint.loc == 0);
  REQUIRE(db.Put("k", "v3").status.ok());
  CHECK(HintedGet(db.reader(), "k", hint) == "v3");
  // Deleted and written again after the hint.
  hint = HintsFor(db.reader(), "k");
  REQUIRE(db.Delete("k").status.ok());
  REQUIRE(db.Put("k", "v4").status.ok());
  CHECK(HintedGet(db.reader(), "k", hint) == "v4");
  // A hint of another key, or an empty one, changes nothing.
  CHECK(HintedGet(db.reader(), "k", HintsFor(db.reader(), "other")) == "v4");
  CHECK(HintedGet(db.reader(), "other", HintsFor(db.reader(), "k")) == "o1");
  CHECK(HintedGet(db.reader(), "k", KeyProbe{}) == "v4");
  CHECK(HintedGet(db.reader(), "absent", HintsFor(db.reader(), "k")) == absent);
}

TEST_CASE("a Get given a key's hint answers from the record's new place after compaction moved it",
          "[engine][reader]") {
  TempDir dir;
  Options o;
  o.segment_bytes = 4096;
  o.compression_level = 0;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  for (int i = 0; i < 20; ++i) REQUIRE(db.Put("k" + std::to_string(i), "v" + std::to_string(i)).status.ok());
  for (int i = 0; i < 200; ++i) REQUIRE(db.Put("f" + std::to_string(i % 20), std::string(300, 'a')).status.ok());
  std::vector<KeyProbe> hints;
  for (int i = 0; i < 20; ++i) hints.push_back(HintsFor(db.reader(), "k" + std::to_string(i)));
  CompactionOptions co;
  co.rate_bytes_per_sec = 0;
  co.pick_all = true;
  Compactor c(db.writer(), co);
  PassReport r;
  REQUIRE(c.RunOnce(&r).ok());
  REQUIRE(r.deleted > 0);
  int moved = 0;
  for (int i = 0; i < 20; ++i) {
    if (!db.index().StillFound(hints[i])) ++moved;
    CHECK(HintedGet(db.reader(), "k" + std::to_string(i), hints[i]) == "v" + std::to_string(i));
  }
  CHECK(moved > 0);
}

TEST_CASE("a batch's hints are the request's own hints, and a Get given one answers what a fresh lookup answers "
          "after the index grew or the writer restarted between hint and read",
          "[engine][reader]") {
  TempDir dir;
  Options o;
  o.compression_level = 0;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  // A worker's reader: it stays while the writer restarts.
  Reader reader(PosixEnv(), dir.path(), o, db.index());
  std::vector<std::string> names;
  for (int i = 0; i < 16; ++i) {
    names.push_back("k" + std::to_string(i));
    REQUIRE(db.Put(names.back(), "v" + std::to_string(i)).status.ok());
  }
  const std::vector<std::string_view> keys(names.begin(), names.end());
  std::vector<KeyProbe> probes(keys.size());
  reader.PrefetchKeys(keys, probes);
  for (size_t i = 0; i < keys.size(); ++i) {
    const KeyProbe own = HintsFor(reader, keys[i]);
    REQUIRE(probes[i].loc != 0);
    CHECK(probes[i].loc == own.loc);
    CHECK(probes[i].hash == own.hash);
    CHECK(probes[i].seed == own.seed);
    CHECK(probes[i].view == own.view);
    CHECK(probes[i].pos == own.pos);
    CHECK(probes[i].changes == own.changes);
    CHECK(HintedGet(reader, keys[i], probes[i]) == "v" + std::to_string(i));
  }

  SECTION("the index grew") {
    const uint64_t capacity = db.index().capacity();
    for (int i = 0; db.index().capacity() == capacity; ++i) {
      REQUIRE(i < 100000);
      REQUIRE(db.Put("fill" + std::to_string(i), "x").status.ok());
    }
  }
  SECTION("the writer restarted") { REQUIRE(db.Open().ok()); }
  for (const KeyProbe& p : probes) CHECK_FALSE(db.index().StillFound(p));
  // Changes after the hints, before the reads, as a write from another
  // worker can land between a batch's hints and its requests.
  REQUIRE(db.Put("k1", "new").status.ok());
  REQUIRE(db.Delete("k2").status.ok());
  const std::string absent = db.Get("absent").status().ToString();
  for (size_t i = 0; i < keys.size(); ++i) {
    const std::string want = i == 1 ? "new" : i == 2 ? absent : "v" + std::to_string(i);
    CHECK(HintedGet(reader, keys[i], probes[i]) == want);
  }
}

TEST_CASE("a Get whose segment cannot be read answers the error, counts it, never not-found or another value, "
          "and reads the value once the fault is gone",
          "[engine][reader][faults]") {
  TempDir dir;
  Options o;
  o.compression_level = 0;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  REQUIRE(db.Put("k", "one").status.ok());
  REQUIRE(db.Put("k", "two").status.ok());
  IndexCounters& counters = db.index().counters();
  // A reader of its own (a worker's): it has mapped nothing yet.
  Reader reader(PosixEnv(), dir.path(), o, db.index());

  SECTION("a fault that passes: the next Get maps the segment again") {
    REQUIRE(ArmFailPoint("map@seg-:1"));
    auto failed = reader.Get("k");
    REQUIRE_FALSE(failed.ok());
    CHECK(failed.status().Is(Code::kIOError));
    CHECK(counters.read_failures.load() == 1);
    auto v = reader.Get("k");
    REQUIRE(v.ok());
    CHECK(v->data == "two");
  }
  SECTION("a persistent fault: every mode answers the error") {
    REQUIRE(ArmFailPoint("map@seg-:1+"));
    for (ReadMode mode : {ReadMode::kFull, ReadMode::kMetadata, ReadMode::kStored})
      CHECK(reader.Get("k", mode).status().Is(Code::kIOError));
    CHECK(counters.read_failures.load() == 3);
    CHECK(reader.Get("absent").status().Is(Code::kNotFound));  // no record to read
  }
  REQUIRE(ArmFailPoint(""));
  CHECK(counters.corruptions.load() == 0);
  CHECK(reader.Get("k").value().data == "two");
}

namespace {

// A database of 64 KiB segments whose key k holds `value` in a sealed
// segment behind fillers (three segment files), then later = "fine".
struct SealedKeyDb {
  TempDir dir;
  Options o;
  TestDb db;
  SealedKeyDb(int compression_level, const std::string& value)
      : o(SmallSegments(compression_level)), db(PosixEnv(), dir.path(), o) {
    REQUIRE(db.Open().ok());
    REQUIRE(db.Put("k", value).status.ok());
    for (int i = 0; db.Put("fill" + std::to_string(i), MakeValue("fill", i, 3000, false)).status.ok() &&
                    SegmentFiles(dir.path()).size() < 3;
         ++i) {
    }
    REQUIRE(db.Put("later", "fine").status.ok());
  }
  static Options SmallSegments(int compression_level) {
    Options o;
    o.segment_bytes = 64 << 10;
    o.compression_level = compression_level;
    return o;
  }
};

}  // namespace

TEST_CASE("a Get of a record on pages cut under the reader's mapping answers an I/O error, counts it, and fails "
          "fast after; other segments read on",
          "[engine][reader][faults]") {
  const std::string value = MakeValue("k", 1, 20000, true);
  SealedKeyDb s(GENERATE(0, 1), value);
  TempDir& dir = s.dir;
  const Options& o = s.o;
  TestDb& db = s.db;
  IndexCounters& counters = db.index().counters();
  // A reader of its own (a worker's), which maps k's segment whole.
  Reader reader(PosixEnv(), dir.path(), o, db.index());
  REQUIRE(reader.Get("k").value().data == value);
  auto stored = reader.Get("k", ReadMode::kStored);
  REQUIRE(stored.ok());
  const std::string first = SegmentFiles(dir.path()).front();
  REQUIRE(ReadFileBytes(first).find("later") == std::string::npos);
  REQUIRE(::truncate(first.c_str(), 0) == 0);

  SECTION("the Get meets the fault") {
    const uint64_t faults = GuardedFaults();
    for (ReadMode mode : {ReadMode::kFull, ReadMode::kMetadata, ReadMode::kStored})
      CHECK(reader.Get("k", mode).status().Is(Code::kIOError));
    CHECK(counters.read_failures.load() == 3);
    CHECK(GuardedFaults() == faults + 1);  // the segment was marked at the first
  }
  SECTION("a value decoded after its Get meets the fault and reports it") {
    ValueDecoder decoder(stored->codec, stored->stored, stored->raw_len);
    std::string buf;
    std::string_view piece;
    const Status s = decoder.Next(64 << 10, &buf, &piece);
    if (stored->codec == Codec::kRaw) {
      CHECK(s.ok());  // a raw value's piece is a view: the decoder reads nothing
    } else {
      CHECK(s.Is(Code::kIOError));
      CHECK(decoder.Next(64 << 10, &buf, &piece).Is(Code::kIOError));
    }
    reader.ReportReadFault(*stored);
    CHECK(counters.read_failures.load() == 1);
    const uint64_t faults = GuardedFaults();
    CHECK(reader.Get("k").status().Is(Code::kIOError));  // marked: not touched again
    CHECK(GuardedFaults() == faults);
  }
  CHECK(reader.Get("later").value().data == "fine");
  CHECK(reader.Get("absent").status().Is(Code::kNotFound));
  CHECK(counters.corruptions.load() == 0);
  // Another reader maps the file as it is now: the record lies past its end.
  Reader fresh(PosixEnv(), dir.path(), o, db.index());
  CHECK(fresh.Get("k").status().Is(Code::kCorruption));
}

TEST_CASE("a Get given a record copy answers a record that fits from the copy, a larger one from the mapping, "
          "both as Get does",
          "[engine][reader]") {
  TempDir dir;
  Options o;
  o.compression_level = 0;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  REQUIRE(db.Put("probe", "x").status.ok());
  Reader reader(PosixEnv(), dir.path(), o, db.index());
  const size_t meta_len = reader.Get("probe").value().content_type.size();
  // The longest value whose record (header, 1-byte key, content type) fits.
  const size_t fits = RecordCopy::kBytes - kRecordHeaderBytes - 1 - meta_len;
  RecordCopy copy;
  const auto in_copy = [&](std::string_view s) {
    return s.data() >= copy.bytes && s.data() + s.size() <= copy.bytes + RecordCopy::kBytes;
  };
  for (size_t len : {size_t{1}, size_t{100}, fits - 1, fits, fits + 1, size_t{5000}}) {
    INFO("value of " << len << " bytes");
    const std::string value = MakeValue("k", static_cast<int>(len), len, false);
    REQUIRE(db.Put("k", value).status.ok());
    const bool fits_copy = len <= fits;
    for (ReadMode mode : {ReadMode::kFull, ReadMode::kMetadata, ReadMode::kStored}) {
      auto plain = reader.Get("k", mode);
      auto got = reader.Get("k", mode, nullptr, &copy);
      REQUIRE(got.ok());
      CHECK(got->copied == fits_copy);
      CHECK(got->seq == plain->seq);
      CHECK(got->raw_len == len);
      CHECK(got->content_type == plain->content_type);
      CHECK(in_copy(got->content_type) == fits_copy);
      CHECK(got->data == plain->data);
      CHECK(got->stored == plain->stored);
      if (mode == ReadMode::kFull) CHECK(got->data == value);
      if (mode == ReadMode::kStored) CHECK(in_copy(got->stored) == fits_copy);
    }
  }
  CHECK(reader.Get("absent", ReadMode::kStored, nullptr, &copy).status().Is(Code::kNotFound));
  REQUIRE(db.Delete("k").status.ok());
  CHECK(reader.Get("k", ReadMode::kStored, nullptr, &copy).status().Is(Code::kNotFound));
  CHECK(db.index().counters().corruptions.load() == 0);
}

TEST_CASE("a Get given a record copy verifies the copy: a rotten byte is corruption, a cut page an I/O error "
          "counted once and failed fast after, and a copy taken before the cut stays readable",
          "[engine][reader][faults][corruption]") {
  const std::string value = MakeValue("k", 1, 600, true);
  SealedKeyDb s(GENERATE(0, 1), value);
  TempDir& dir = s.dir;
  const Options& o = s.o;
  TestDb& db = s.db;
  IndexCounters& counters = db.index().counters();
  Reader reader(PosixEnv(), dir.path(), o, db.index());
  RecordCopy before_cut;
  auto kept = reader.Get("k", ReadMode::kFull, nullptr, &before_cut);
  REQUIRE(kept.ok());
  REQUIRE(kept->copied);
  REQUIRE(kept->data == value);
  const std::string first = SegmentFiles(dir.path()).front();
  RecordCopy copy;

  SECTION("a rotten byte of the value") {
    const std::string bytes = ReadFileBytes(first);
    // The last byte of k's record: the value's (raw or compressed) end.
    auto stored = reader.Get("k", ReadMode::kStored);
    REQUIRE(stored.ok());
    const size_t pos = bytes.find(std::string(stored->stored)) + stored->stored.size() - 1;
    FILE* f = fopen(first.c_str(), "r+b");
    REQUIRE(f != nullptr);
    fseek(f, static_cast<long>(pos), SEEK_SET);
    fputc(bytes[pos] ^ 0x40, f);
    fclose(f);
    for (ReadMode mode : {ReadMode::kFull, ReadMode::kMetadata, ReadMode::kStored})
      CHECK(reader.Get("k", mode, nullptr, &copy).status().Is(Code::kCorruption));
    CHECK(counters.corruptions.load() == 3);
    CHECK(counters.read_failures.load() == 0);
  }
  SECTION("a page cut under the mapping") {
    REQUIRE(::truncate(first.c_str(), 0) == 0);
    const uint64_t faults = GuardedFaults();
    for (ReadMode mode : {ReadMode::kFull, ReadMode::kMetadata, ReadMode::kStored})
      CHECK(reader.Get("k", mode, nullptr, &copy).status().Is(Code::kIOError));
    CHECK(counters.read_failures.load() == 3);
    CHECK(GuardedFaults() == faults + 1);  // the segment was marked at the first
    CHECK(counters.corruptions.load() == 0);
  }
  CHECK(kept->data == value);  // in before_cut, not in the mapping
  CHECK(reader.Get("later", ReadMode::kStored, nullptr, &copy).value().stored == "fine");
}
