// The key view's own files on a failing disk: a page of a key run or of
// keys/MANIFEST that cannot be read is an I/O error naming the file (the
// run's reader, a worker's lister) or a rebuild of the view (the MANIFEST),
// never a SIGBUS. Pages fail through FaultInjectionEnv::SetUnreadable (a
// mapped page raises SIGBUS, a read(2) fails with EIO), LoseMappedPages (pages
// already read that the kernel drops and cannot read back) or a file
// truncated under its mapping.
#include <unistd.h>

#include <catch2/catch.hpp>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "engine/compaction.h"
#include "engine/key_lister.h"
#include "engine/key_run.h"
#include "engine/keyspace.h"
#include "engine/keyspace_region.h"
#include "engine/mapping_guard.h"
#include "tests/engine/support/fault_env.h"
#include "tests/engine/support/keyspace_support.h"
#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;

namespace {

// A run of `count` keys "key%05d" at path (about 20 bytes an entry).
void WriteRun(const std::string& path, int count) {
  auto b = KeyRunBuilder::Create(PosixEnv(), path, 1, 5);
  REQUIRE(b.ok());
  for (int i = 0; i < count; ++i) {
    char k[16];
    std::snprintf(k, sizeof k, "key%05d", i);
    REQUIRE(b.value()->Add(KeyEntry{k, uint64_t(i + 1), 1, uint64_t(48 + i), 10, "t"}).ok());
  }
  REQUIRE(b.value()->Finish(true).ok());
}

bool NamesFile(const Status& s, const std::string& name) { return s.ToString().find(name) != std::string::npos; }

// The i-th key of a run with long keys: "long%05d" then `pad` bytes of 'x'.
std::string LongKey(int i, size_t pad) {
  char k[16];
  std::snprintf(k, sizeof k, "long%05d", i);
  return k + std::string(pad, 'x');
}


}  // namespace

TEST_CASE("a key run whose header, footer or tables cannot be read does not open: an I/O error naming the file",
          "[engine][keyspace][faults]") {
  TempDir dir;
  const std::string path = dir.File(KeyRunFileName(1));
  WriteRun(path, 2000);
  const uint64_t size = std::filesystem::file_size(path);
  REQUIRE(size > 3 * 4096);
  const uint64_t faults = GuardedFaults();
  for (uint64_t bad : {uint64_t{0}, size - 1}) {
    INFO("unreadable from " << bad);
    FaultInjectionEnv env;
    env.SetUnreadable(KeyRunFileName(1), bad);
    for (bool verify : {true, false}) {
      auto run = KeyRun::Open(env, path, 1, 5, verify);
      REQUIRE_FALSE(run.ok());
      CHECK(run.status().Is(Code::kIOError));
      CHECK(NamesFile(run.status(), KeyRunFileName(1)));
    }
  }
  // Only the entry area fails: the owner's checksum over the whole file
  // meets it.
  FaultInjectionEnv env;
  env.SetUnreadable(KeyRunFileName(1), 4096);
  CHECK(KeyRun::Open(env, path, 1, 5, true).status().Is(Code::kIOError));
  CHECK(GuardedFaults() > faults);
}

TEST_CASE("a key run whose entry pages fail under its mapping reads as an I/O error naming the file",
          "[engine][keyspace][faults]") {
  TempDir dir;
  const std::string path = dir.File(KeyRunFileName(1));
  WriteRun(path, 2000);
  auto run = KeyRun::Open(PosixEnv(), path, 1, 5, true);
  REQUIRE(run.ok());
  // Every page from the third on is gone under the mapping (SIGBUS on touch).
  REQUIRE(::truncate(path.c_str(), 2 * 4096) == 0);

  KeyRun::Iterator it(*run.value());
  it.SeekToFirst();
  uint64_t n = 0;
  while (it.Valid()) {
    ++n;
    it.Next();
  }
  CHECK(n > 0);
  CHECK(n < 2000);
  CHECK(it.status().Is(Code::kIOError));
  CHECK(NamesFile(it.status(), KeyRunFileName(1)));

  // The sparse index lies past the cut too.
  KeyRun::Iterator seek(*run.value());
  seek.Seek("key01000");
  CHECK_FALSE(seek.Valid());
  CHECK(seek.status().Is(Code::kIOError));
  CHECK(NamesFile(seek.status(), KeyRunFileName(1)));
}

TEST_CASE("a lister whose key runs cannot be read answers an I/O error naming the run; a readable view lists again",
          "[engine][keyspace][faults]") {
  TempDir dir;
  Options o;
  RegionMem mem(1024, 1 << 20);
  TestDb db(PosixEnv(), dir.path(), o);
  const KeyspaceOptions ko = SmallKeyspace(dir.path());
  REQUIRE(db.Open().ok());
  for (int i = 0; i < 300; ++i) REQUIRE(db.Put("k" + std::to_string(1000 + i), "v").status.ok());
  db.Close();  // the tail goes into a run
  REQUIRE(db.Open().ok());
  REQUIRE(db.writer().StartKeyspace(mem.region(), ko).ok());
  REQUIRE(db.writer().WaitKeyspaceReady(20000).ok());

  FaultInjectionEnv bad_disk;
  bad_disk.SetUnreadable("/keys/run-", 0);
  KeyLister lister(bad_disk, dir.path(), o, db.index(), mem.region());
  ListRequest req;
  req.limit = 100;
  auto page = lister.List(req);
  REQUIRE_FALSE(page.ok());
  CHECK(page.status().Is(Code::kIOError));
  CHECK(NamesFile(page.status(), "run-"));

  KeyLister healthy(PosixEnv(), dir.path(), o, db.index(), mem.region());
  CHECK(ListAll(healthy, "", 1000).size() == 300);
  db.Close();
}

TEST_CASE("a keys/MANIFEST that cannot be read makes the view rebuild from the segments and list every key",
          "[engine][keyspace][faults]") {
  TempDir dir;
  FaultInjectionEnv env;
  Options o;
  RegionMem mem(1024, 1 << 20);
  TestDb db(env, dir.path(), o);
  const KeyspaceOptions ko = SmallKeyspace(dir.path());
  REQUIRE(db.Open().ok());
  REQUIRE(db.writer().StartKeyspace(mem.region(), ko).ok());
  REQUIRE(db.writer().WaitKeyspaceReady(20000).ok());
  for (int i = 0; i < 300; ++i) REQUIRE(db.Put("k" + std::to_string(1000 + i), "v").status.ok());
  db.Close();  // checkpointed: keys/MANIFEST names the runs
  REQUIRE(std::filesystem::exists(dir.path() + "/keys/MANIFEST"));

  env.SetUnreadable("/keys/MANIFEST", 0);
  REQUIRE(db.Open().ok());
  REQUIRE(db.writer().StartKeyspace(mem.region(), ko).ok());
  REQUIRE(db.writer().WaitKeyspaceReady(20000).ok());
  CHECK(mem.region().counters().rebuilds.load() >= 1);
  KeyLister lister(PosixEnv(), dir.path(), o, db.index(), mem.region());
  CHECK(ListAll(lister, "", 1000).size() == 300);
  db.Close();
}

TEST_CASE("an entry read before its run's pages are lost keeps its key and content type; the next read is an I/O "
          "error naming the run",
          "[engine][keyspace][faults]") {
  TempDir dir;
  const std::string path = dir.File(KeyRunFileName(1));
  // Keys on both sides of the iterator's first key buffer and of a page:
  // short keys, and keys of 5,000 bytes (each spans a page boundary).
  const size_t pad = GENERATE(size_t{0}, size_t{5000});
  INFO("key padding " << pad);
  {
    auto b = KeyRunBuilder::Create(PosixEnv(), path, 1, 5);
    REQUIRE(b.ok());
    for (int i = 0; i < 200; ++i)
      REQUIRE(b.value()->Add(KeyEntry{LongKey(i, pad), uint64_t(i + 1), 1, uint64_t(48 + i), 10, "text/x-t"}).ok());
    REQUIRE(b.value()->Finish(true).ok());
  }
  FaultInjectionEnv env;
  auto run = KeyRun::Open(env, path, 1, 5, /*verify_checksum=*/true);
  REQUIRE(run.ok());
  KeyRun::Iterator it(*run.value());
  it.SeekToFirst();
  REQUIRE(it.Valid());
  it.Next();
  REQUIRE(it.Valid());
  const KeyEntry held = it.entry();

  REQUIRE(env.LoseMappedPages(KeyRunFileName(1), 0) == 1);
  const uint64_t faults = GuardedFaults();
  // Read from the iterator's copies, not from the lost pages.
  CHECK(held.key == LongKey(1, pad));
  CHECK(held.content_type == "text/x-t");
  CHECK(held.seq == 2);
  CHECK(GuardedFaults() == faults);
  it.Next();
  CHECK_FALSE(it.Valid());
  CHECK(it.status().Is(Code::kIOError));
  CHECK(NamesFile(it.status(), KeyRunFileName(1)));
  CHECK(GuardedFaults() > faults);
}

TEST_CASE("a listing whose run pages are lost while it resolves keys answers an I/O error naming the run",
          "[engine][keyspace][faults]") {
  TempDir dir;
  FaultInjectionEnv writer_env;
  Options o;
  o.segment_bytes = 4096;  // the keys fill sealed segments, which compaction moves
  RegionMem mem(1024, 1 << 20);
  TestDb db(writer_env, dir.path(), o);
  const KeyspaceOptions ko = SmallKeyspace(dir.path());
  REQUIRE(db.Open().ok());
  for (int i = 0; i < 300; ++i) REQUIRE(db.Put("k" + std::to_string(1000 + i), "v").status.ok());
  db.Close();  // the tail goes into a run
  REQUIRE(db.Open().ok());
  REQUIRE(db.writer().StartKeyspace(mem.region(), ko).ok());
  REQUIRE(db.writer().WaitKeyspaceReady(20000).ok());

  // From here on the keyspace thread writes no file (its creates in keys/
  // wait for the test), so the run stays published as it is: after the
  // compaction below its entries point at moved records, and the listing
  // reads each record (mapping its new segment) while it holds the keys it
  // decoded from the run.
  std::mutex hold_mu;
  std::condition_variable hold_cv;
  bool released = false;
  writer_env.SetCreateHook([&](const std::string& path) {
    if (path.find("/keys/") == std::string::npos) return;
    std::unique_lock lock(hold_mu);
    hold_cv.wait(lock, [&] { return released; });
  });
  auto release = [&] {
    {
      std::lock_guard lock(hold_mu);
      released = true;
    }
    hold_cv.notify_all();
    writer_env.SetCreateHook({});
  };
  CompactionOptions co;
  co.pick_all = true;
  co.rate_bytes_per_sec = 0;
  {
    Compactor c(db.writer(), co);
    if (!c.RunOnce().ok()) release();
  }

  // The lister's first map of a segment loses every page of its run
  // mappings: the keys of the batch it is resolving were decoded from them.
  FaultInjectionEnv lister_env;
  int lost = 0;
  lister_env.SetMapHook([&](const std::string& path) {
    if (path.find("/keys/") == std::string::npos && lost == 0) lost = lister_env.LoseMappedPages("/keys/run-", 0);
  });
  KeyLister lister(lister_env, dir.path(), o, db.index(), mem.region());
  ListRequest req;
  req.limit = 100;
  auto page = lister.List(req);
  release();
  CHECK(lost > 0);
  REQUIRE_FALSE(page.ok());
  CHECK(page.status().Is(Code::kIOError));
  CHECK(NamesFile(page.status(), "run-"));

  KeyLister healthy(PosixEnv(), dir.path(), o, db.index(), mem.region());
  CHECK(ListAll(healthy, "", 1000).size() == 300);
  db.Close();
}
