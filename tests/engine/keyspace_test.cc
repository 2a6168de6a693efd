// The keyspace (sorted key view) and the lister: key runs seek like
// lower_bound and survive damage; listings agree with a std::map model over
// random binary keys and prefixes, across pages, reopens (catch-up from the
// MANIFEST, rebuild without it), compaction and a view that fell behind;
// concurrent writers never make a stable key disappear or appear twice; a
// new view's cursor secret is on disk before it answers a listing.
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <tuple>

#include "engine/coding.h"
#include "engine/compaction.h"
#include "engine/key_lister.h"
#include "engine/key_run.h"
#include "engine/keyspace.h"
#include "engine/keyspace_region.h"
#include "engine/segment_window.h"
#include "tests/engine/support/fault_env.h"
#include "tests/engine/support/keyspace_support.h"
#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;

TEST_CASE("a key run keeps each entry's content type among many distinct ones", "[engine][keyspace]") {
  // More distinct types than the builder finds by its scan, interleaved.
  TempDir dir;
  const std::string path = dir.File(KeyRunFileName(7));
  auto b = KeyRunBuilder::Create(PosixEnv(), path, 7, 99);
  REQUIRE(b.ok());
  auto type_of = [](int i) { return "type/" + std::to_string((i * 7) % 23) + std::string(i % 2 ? 20 : 0, 'x'); };
  std::vector<std::string> keys;
  for (int i = 0; i < 500; ++i) keys.push_back("k" + std::to_string(1000 + i));
  for (int i = 0; i < 500; ++i) {
    const std::string t = type_of(i);
    REQUIRE(b.value()->Add(KeyEntry{keys[i], uint64_t(i + 1), 1, uint64_t(i) * 64, 10, t}).ok());
  }
  REQUIRE(b.value()->Finish(true).ok());
  auto run = KeyRun::Open(PosixEnv(), path, 7, 99, true);
  REQUIRE(run.ok());
  KeyRun::Iterator it(*run.value());
  it.Seek("");
  for (int i = 0; i < 500; ++i, it.Next()) {
    REQUIRE(it.Valid());
    REQUIRE(it.entry().key == keys[i]);
    REQUIRE(it.entry().content_type == type_of(i));
  }
  REQUIRE(!it.Valid());
}

TEST_CASE("a key run seeks like lower_bound over random binary keys", "[engine][keyspace]") {
  TempDir dir;
  std::mt19937_64 rng(7);
  std::set<std::string> keys;
  while (keys.size() < 3000) keys.insert(RandomBinaryKey(rng) + RandomBinaryKey(rng));
  const std::string path = dir.File(KeyRunFileName(42));
  auto b = KeyRunBuilder::Create(PosixEnv(), path, 42, 99);
  REQUIRE(b.ok());
  uint64_t seq = 1;
  for (const std::string& k : keys) {
    REQUIRE(b.value()->Add(KeyEntry{k, seq, seq % 7, seq * 3, seq * 11, seq % 3 == 0 ? "a/b" : "c/d"}).ok());
    ++seq;
  }
  REQUIRE(b.value()->Finish(true).ok());
  auto run = KeyRun::Open(PosixEnv(), path, 42, 99, true);
  REQUIRE(run.ok());
  REQUIRE(run.value()->entries() == keys.size());
  REQUIRE(KeyRun::Open(PosixEnv(), path, 43, 99, true).status().Is(Code::kCorruption));  // another id
  REQUIRE(KeyRun::Open(PosixEnv(), path, 42, 98, true).status().Is(Code::kCorruption));  // another database
  std::vector<std::string> sorted(keys.begin(), keys.end());
  for (int i = 0; i < 2000; ++i) {
    std::string target = i == 0 ? std::string() : RandomBinaryKey(rng);
    KeyRun::Iterator it(*run.value());
    it.Seek(target);
    auto want = std::lower_bound(sorted.begin(), sorted.end(), target);
    if (want == sorted.end()) {
      REQUIRE(!it.Valid());
      REQUIRE(it.status().ok());
      continue;
    }
    REQUIRE(it.Valid());
    REQUIRE(it.entry().key == *want);
    const uint64_t s = static_cast<uint64_t>(want - sorted.begin()) + 1;
    REQUIRE(it.entry().seq == s);
    REQUIRE(it.entry().segment == s % 7);
    REQUIRE(it.entry().offset == s * 3);
    REQUIRE(it.entry().raw_len == s * 11);
    REQUIRE(it.entry().content_type == (s % 3 == 0 ? "a/b" : "c/d"));
    // Walk a few on.
    for (int step = 0; step < 20 && it.Valid(); ++step, ++want) {
      REQUIRE(it.entry().key == *want);
      it.Next();
    }
  }
}

TEST_CASE("a damaged key run is refused or read as corruption, never as other keys", "[engine][keyspace]") {
  TempDir dir;
  const std::string path = dir.File(KeyRunFileName(1));
  {
    auto b = KeyRunBuilder::Create(PosixEnv(), path, 1, 5);
    REQUIRE(b.ok());
    for (int i = 0; i < 40; ++i) {
      char k[16];
      std::snprintf(k, sizeof k, "key%03d", i);
      REQUIRE(b.value()->Add(KeyEntry{k, uint64_t(i + 1), 1, uint64_t(48 + i), 10, "t"}).ok());
    }
    REQUIRE(b.value()->Finish(true).ok());
  }
  const std::string good = ReadFileBytes(path);
  for (size_t off = 0; off < good.size(); ++off) {
    std::string bad = good;
    bad[off] = static_cast<char>(bad[off] ^ 0x5a);
    WriteFileBytes(path, bad);
    INFO("offset " << off);
    // With the checksum, every flipped byte is caught at open.
    REQUIRE(KeyRun::Open(PosixEnv(), path, 1, 5, true).status().Is(Code::kCorruption));
    // Without it (a reader in a worker), reading is bounded: whatever it
    // returns stays inside the file, in order, or stops with kCorruption.
    auto run = KeyRun::Open(PosixEnv(), path, 1, 5, false);
    if (!run.ok()) continue;
    KeyRun::Iterator it(*run.value());
    it.SeekToFirst();
    size_t n = 0;
    std::string prev;
    while (it.Valid()) {
      REQUIRE(n < 41);
      if (n > 0) REQUIRE(prev < it.entry().key);
      prev = std::string(it.entry().key);
      ++n;
      it.Next();
    }
    it.Seek("key020");
  }
}

TEST_CASE("listing agrees with a std::map model across pages, reopens, compaction and a lost view",
          "[engine][keyspace][model]") {
  TempDir dir;
  Options o;
  o.segment_bytes = 64 << 10;  // rotations, so compaction has sealed segments
  o.compression_level = 0;
  // Tiny tails: flushes, merges and (below) a lost view happen often.
  RegionMem mem(16, (64 << 10) + 256);  // outlives the writer that uses it
  TestDb db(PosixEnv(), dir.path(), o);
  KeyspaceOptions ko = SmallKeyspace(dir.path());
  auto open = [&] {
    REQUIRE(db.Open().ok());
    REQUIRE(db.writer().StartKeyspace(mem.region(), ko).ok());
    REQUIRE(db.writer().WaitKeyspaceReady(20000).ok());
  };
  open();
  KeyLister lister(PosixEnv(), dir.path(), o, db.index(), mem.region());
  std::mt19937_64 rng(99);
  std::map<std::string, ModelValue> model;
  auto apply = [&](int ops) {
    for (int i = 0; i < ops; ++i) {
      std::string k = RandomBinaryKey(rng);
      if (rng() % 4 == 0) {
        WriteResult r = db.Delete(k);
        if (r.status.ok()) model.erase(k);
        else REQUIRE(r.status.Is(Code::kNotFound));
      } else {
        PutModelled(db, &model, k, rng() % 300, i);
      }
    }
  };
  auto check = [&] {
    // Bursts of single writes can outrun 16-entry tails: wait for the rebuild.
    REQUIRE(db.writer().WaitKeyspaceReady(20000).ok());
    for (size_t limit : {size_t{1}, size_t{7}, size_t{1000}}) CheckAgainstModel(lister, model, "", limit);
    for (int p = 0; p < 12; ++p) {
      std::string prefix = RandomBinaryKey(rng);
      prefix.resize(1 + rng() % 2);
      CheckAgainstModel(lister, model, prefix, 1 + rng() % 5);
    }
  };

  apply(1500);
  check();
  SECTION("reopen after a clean close") {
    apply(300);
    db.Close();
    open();
    check();
    apply(800);
    check();
  }
  SECTION("reopen after a crash: catch-up from the last MANIFEST") {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a checkpoint
    apply(300);
    ko.checkpoint_at_close = false;  // the close leaves what a kill -9 would
    db.Close();
    ko.checkpoint_at_close = true;
    open();
    check();
    apply(800);
    check();
  }
  SECTION("reopen without keys/: rebuild from the segments") {
    db.Close();
    std::filesystem::remove_all(dir.path() + "/keys");
    open();
    check();
  }
  SECTION("reopen with a damaged run: rebuild") {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    db.Close();
    for (const auto& e : std::filesystem::directory_iterator(dir.path() + "/keys")) {
      uint64_t id;
      if (!ParseKeyRunFileName(e.path().filename().string(), &id)) continue;
      std::string bytes = ReadFileBytes(e.path().string());
      bytes[bytes.size() / 2] ^= 1;
      WriteFileBytes(e.path().string(), bytes);
    }
    open();
    check();
  }
  SECTION("compaction moves records under the view") {
    CompactionOptions co;
    co.pick_all = true;
    co.rate_bytes_per_sec = 0;
    Compactor c(db.writer(), co);
    REQUIRE(c.RunOnce().ok());
    check();
    apply(500);
    REQUIRE(c.RunOnce().ok());
    check();
    std::this_thread::sleep_for(std::chrono::milliseconds(400));  // stale runs rewritten
    check();
  }
  SECTION("a view that fell behind is caught up from the segments, not rebuilt") {
    // Many keys in one batch: the 16-entry tails overflow before the thread
    // can flush them (a writer is held back only between batches).
    const uint64_t rebuilds = mem.region().counters().rebuilds.load();
    const uint64_t catch_ups = mem.region().counters().catch_ups.load();
    std::vector<std::string> keys;
    for (int i = 0; i < 200; ++i) keys.push_back("bulk" + std::to_string(i));
    PutBatchModelled(db, &model, keys, 10, 1);
    REQUIRE(mem.region().counters().lost.load() >= 1);
    REQUIRE(db.writer().WaitKeyspaceReady(20000).ok());
    check();
    CHECK(mem.region().counters().rebuilds.load() == rebuilds);
    CHECK(mem.region().counters().catch_ups.load() > catch_ups);
  }
}

TEST_CASE("a lister that outlives the writer reads the new owner's runs after keys/ is rebuilt from scratch",
          "[engine][keyspace]") {
  // The server's workers keep their KeyLister across writer restarts. A
  // rebuilt keys/ directory numbers its runs from 1 again: a lister must not
  // take the new run-1 for the one it mapped before.
  TempDir dir;
  Options o;
  RegionMem mem(1024, 1 << 20);  // every key of a pass fits in the tail: one run per close
  TestDb db(PosixEnv(), dir.path(), o);
  const KeyspaceOptions ko = SmallKeyspace(dir.path());
  auto open_with_view = [&] {
    REQUIRE(db.Open().ok());
    REQUIRE(db.writer().StartKeyspace(mem.region(), ko).ok());
    REQUIRE(db.writer().WaitKeyspaceReady(20000).ok());
  };
  auto list_all = [&](KeyLister& lister) {
    std::vector<std::string> keys;
    for (const ListedKey& k : ListAll(lister, "", 1000)) keys.push_back(k.key);
    return keys;
  };
  std::vector<std::string> old_keys, new_keys;
  for (int i = 0; i < 100; ++i) {
    old_keys.push_back("old" + std::to_string(1000 + i));
    new_keys.push_back("new" + std::to_string(1000 + i));
  }
  open_with_view();
  for (const std::string& k : old_keys) REQUIRE(db.Put(k, "v").status.ok());
  db.Close();  // the tails go into runs (a checkpoint at close)
  open_with_view();
  KeyLister lister(PosixEnv(), dir.path(), o, db.index(), mem.region());
  REQUIRE(list_all(lister) == old_keys);  // its runs are mapped now
  db.Close();

  // keys/ is lost; the database changes while no view is kept.
  std::filesystem::remove_all(dir.path() + "/keys");
  REQUIRE(db.Open().ok());
  for (const std::string& k : old_keys) REQUIRE(db.Delete(k).status.ok());
  for (const std::string& k : new_keys) REQUIRE(db.Put(k, "v").status.ok());
  db.Close();

  open_with_view();  // rebuilt from the segments: run ids start again
  REQUIRE(list_all(lister) == new_keys);
  KeyLister fresh(PosixEnv(), dir.path(), o, db.index(), mem.region());
  REQUIRE(list_all(fresh) == new_keys);
}

TEST_CASE("a paginated listing under concurrent writers shows every stable key exactly once, in order",
          "[engine][keyspace][concurrency]") {
  TempDir dir;
  Options o;
  o.segment_bytes = 128 << 10;
  RegionMem mem(64, (64 << 10) + 256);
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  REQUIRE(db.writer().StartKeyspace(mem.region(), SmallKeyspace(dir.path())).ok());
  REQUIRE(db.writer().WaitKeyspaceReady(20000).ok());
  // Stable keys: written once before the listings, never touched again.
  std::set<std::string> stable;
  for (int i = 0; i < 600; ++i) {
    std::string k = "s" + std::to_string(i * 7919 % 1000);
    stable.insert(k);
    REQUIRE(db.Put(k, "stable").status.ok());
  }
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    std::mt19937_64 rng(3);
    CompactionOptions co;
    co.pick_all = true;
    co.rate_bytes_per_sec = 0;
    Compactor c(db.writer(), co);
    for (int i = 0; !stop.load(); ++i) {
      // Churn around and between the stable keys: creates, overwrites, deletes.
      std::string k = (rng() % 2 ? "s" : "t") + std::to_string(rng() % 1000) + "x";
      if (rng() % 3 == 0) (void)db.Delete(k);
      else (void)db.Put(k, std::string(rng() % 100, 'v'));
      if (i % 500 == 0) (void)c.RunOnce();
    }
  });
  KeyLister lister(PosixEnv(), dir.path(), o, db.index(), mem.region());
  for (int round = 0; round < 30; ++round) {
    auto listed = ListAll(lister, round % 2 ? "s" : "", 1 + round % 13);
    std::set<std::string> seen;
    for (size_t i = 0; i < listed.size(); ++i) {
      if (i > 0) REQUIRE(listed[i - 1].key < listed[i].key);
      seen.insert(listed[i].key);
    }
    for (const std::string& k : stable) {
      INFO("round " << round << " key " << k);
      REQUIRE(seen.count(k) == 1);
    }
  }
  stop = true;
  writer.join();
}


TEST_CASE("a view of more runs than the region publishes at once still lists every key",
          "[engine][keyspace][regression]") {
  // Regression: the shared region names at most kMaxKeyRuns runs, and
  // publishing a longer run set silently left the rest out, so every key of
  // those runs vanished from listings. A rebuild writes one run per chunk of
  // keys (and the tails keep being flushed into runs meanwhile), which under
  // a write load easily passed the bound: stable keys went missing.
  TempDir dir;
  Options o;
  RegionMem mem(64, (64 << 10) + 256);
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  std::vector<std::string> keys;
  for (int i = 0; i < 1000; ++i) {
    keys.push_back("k" + std::to_string(10000 + i * 7919 % 1000));
    REQUIRE(db.Put(keys.back(), "v").status.ok());
  }
  std::sort(keys.begin(), keys.end());
  db.Close();
  KeyspaceOptions ko = SmallKeyspace(dir.path());
  ko.chunk_entries = 10;  // the rebuild (no keys/ yet) writes 100 runs
  ko.settle_ms = 1ull << 40;  // no merge would bring them down before the listing
  REQUIRE(db.Open().ok());
  REQUIRE(db.writer().StartKeyspace(mem.region(), ko).ok());
  REQUIRE(db.writer().WaitKeyspaceReady(20000).ok());
  KeyLister lister(PosixEnv(), dir.path(), o, db.index(), mem.region());
  std::vector<std::string> listed;
  for (const ListedKey& k : ListAll(lister, "", 1000)) listed.push_back(k.key);
  REQUIRE(listed.size() == keys.size());
  REQUIRE(listed == keys);
}

namespace {

// (bytes, mtime, ctime) of every entry of dir, by name.
std::map<std::string, std::tuple<std::string, int64_t, int64_t>> DirState(const std::string& dir) {
  std::map<std::string, std::tuple<std::string, int64_t, int64_t>> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    struct stat st{};
    REQUIRE(lstat(e.path().c_str(), &st) == 0);
    out[e.path().filename().string()] = {ReadFileBytes(e.path().string()),
                                         int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
                                         int64_t(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec};
  }
  return out;
}

}  // namespace

TEST_CASE("a read-only open starts from the database's own keys/ without changing it and catches up the rest",
          "[engine][keyspace][read_only]") {
  TempDir dir, scratch;
  Options o;
  o.segment_bytes = 64 << 10;
  o.compression_level = 0;
  std::mt19937_64 rng(5);
  std::map<std::string, ModelValue> model;
  auto apply = [&](TestDb& db, int ops) {
    for (int i = 0; i < ops; ++i) {
      std::string k = RandomBinaryKey(rng);
      if (rng() % 5 == 0) {
        WriteResult r = db.Delete(k);
        if (r.status.ok()) model.erase(k);
        continue;
      }
      PutModelled(db, &model, k, rng() % 200, i);
    }
  };
  {
    RegionMem mem(1024, 1 << 20);
    TestDb db(PosixEnv(), dir.path(), o);
    KeyspaceOptions ko = SmallKeyspace(dir.path());
    REQUIRE(db.Open().ok());
    REQUIRE(db.writer().StartKeyspace(mem.region(), ko).ok());
    REQUIRE(db.writer().WaitKeyspaceReady(20000).ok());
    apply(db, 1500);
    db.Close();  // checkpoint: keys/MANIFEST covers every put so far
    // A second session whose view is never checkpointed (as after kill -9):
    // the MANIFEST does not cover its puts and deletes.
    ko.checkpoint_interval_ms = 3600 * 1000;
    ko.checkpoint_at_close = false;
    REQUIRE(db.Open().ok());
    REQUIRE(db.writer().StartKeyspace(mem.region(), ko).ok());
    REQUIRE(db.writer().WaitKeyspaceReady(20000).ok());
    apply(db, 400);
    db.Close();
  }
  const std::string keys_dir = dir.path() + "/keys";
  const auto before = DirState(keys_dir);
  Options ro = o;
  ro.read_only = true;
  auto serve_read_only = [&](const std::string& seed_dir) {
    RegionMem mem(1024, 1 << 20);
    TestDb db(PosixEnv(), dir.path(), ro);
    REQUIRE(db.Open().ok());
    KeyspaceOptions ko = SmallKeyspace(dir.path());
    ko.dir = scratch.path() + "/view";
    ko.persist = false;
    ko.seed_dir = seed_dir;
    REQUIRE(db.writer().StartKeyspace(mem.region(), ko).ok());
    REQUIRE(db.writer().WaitKeyspaceReady(20000).ok());
    KeyLister lister(PosixEnv(), dir.path(), ro, db.index(), mem.region());
    for (size_t limit : {size_t{1}, size_t{7}, size_t{1000}}) CheckAgainstModel(lister, model, "", limit);
    CheckAgainstModel(lister, model, std::string(1, 'a'), 3);
    const uint64_t rebuilds = mem.region().counters().rebuilds.load();
    db.Close();
    std::filesystem::remove_all(ko.dir);
    return rebuilds;
  };
  SECTION("a valid keys/ is read where it is: no rebuild, nothing of it changes") {
    REQUIRE(serve_read_only(keys_dir) == 0);
    REQUIRE(DirState(keys_dir) == before);
  }
  SECTION("without the seed the view is rebuilt from the segments") {
    REQUIRE(serve_read_only("") == 1);
  }
  SECTION("a damaged run of keys/ is found and the view rebuilt from the segments") {
    auto names = DirState(keys_dir);
    std::string run;
    for (auto& [name, st] : names)  // the lowest id: a run the MANIFEST names (later ones are the second session's)
      if (run.empty() && name.starts_with("run-") && std::get<0>(st).size() > 200) run = name;
    REQUIRE(!run.empty());
    std::string bytes = ReadFileBytes(keys_dir + "/" + run);
    bytes[bytes.size() / 2] ^= 0x20;
    WriteFileBytes(keys_dir + "/" + run, bytes);
    const auto damaged = DirState(keys_dir);
    REQUIRE(serve_read_only(keys_dir) == 1);
    REQUIRE(DirState(keys_dir) == damaged);
  }
}

namespace {

// How many runs keys/MANIFEST names (0 when there is none).
uint32_t ManifestRuns(const std::string& keys_dir) {
  if (!std::filesystem::exists(keys_dir + "/MANIFEST")) return 0;
  const std::string m = ReadFileBytes(keys_dir + "/MANIFEST");
  REQUIRE(m.size() >= 56);
  return GetFixed32(m.data() + 48);
}

}  // namespace

TEST_CASE("a view reopened after a crash under compaction merges its stale runs and checkpoints the merge",
          "[engine][keyspace][regression]") {
  // Regression: after a restart, compaction had left every run pointing into
  // deleted segments; the runs were rewritten one per turn of the keyspace
  // thread (each to a run of its own), and the merges that then brought the
  // count down were checkpointed only after checkpoint_interval_ms. A server
  // killed every few seconds reopened the same runs plus its catch-up run
  // each time: keys/ filled up to the region's 64 runs of a few entries.
  TempDir dir;
  Options o;
  o.segment_bytes = 64 << 10;  // sealed segments for compaction
  o.compression_level = 0;
  RegionMem mem(64, (64 << 10) + 256);
  TestDb db(PosixEnv(), dir.path(), o);
  const std::string keys_dir = dir.path() + "/keys";
  KeyspaceOptions ko = SmallKeyspace(dir.path());
  ko.settle_ms = 1ull << 40;  // no merge: one run per tail flush
  ko.merge_width = 1000;
  REQUIRE(db.Open().ok());
  REQUIRE(db.writer().StartKeyspace(mem.region(), ko).ok());
  REQUIRE(db.writer().WaitKeyspaceReady(20000).ok());
  std::map<std::string, ModelValue> model;
  for (int i = 0; i < 64 * 18; ++i) PutModelled(db, &model, "k" + std::to_string(100000 + i), 200, 1);
  for (int waited = 0; ManifestRuns(keys_dir) < 12 && waited < 200; ++waited)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const uint32_t before = ManifestRuns(keys_dir);
  REQUIRE(before >= 12);
  {
    CompactionOptions co;
    co.pick_all = true;
    co.rate_bytes_per_sec = 0;
    Compactor c(db.writer(), co);
    REQUIRE(c.RunOnce().ok());
    REQUIRE(c.stats().records_moved > 0);  // the runs now point into deleted segments
  }
  ko = SmallKeyspace(dir.path());
  ko.checkpoint_interval_ms = 3600 * 1000;  // only what makes a checkpoint due at once writes one
  ko.checkpoint_at_close = false;           // each close leaves what a kill -9 would
  db.Close();
  const KeyspaceCounters& counters = mem.region().counters();
  const uint64_t merges_before = counters.merges.load();

  REQUIRE(db.Open().ok());
  REQUIRE(db.writer().StartKeyspace(mem.region(), ko).ok());
  REQUIRE(db.writer().WaitKeyspaceReady(20000).ok());
  for (int waited = 0; ManifestRuns(keys_dir) > 4 && waited < 200; ++waited)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  INFO("the MANIFEST named " << before << " runs before the restart");
  CHECK(ManifestRuns(keys_dir) <= 4);  // merge_width: fewer need no checkpoint of their own
  // The stale runs went through one merge together: one merge per stale run
  // (each to a run of its own) would also end under 4 runs here, by the
  // ordinary merges that follow, but only after as many merges as runs.
  const uint64_t merges = counters.merges.load();
  REQUIRE(merges >= merges_before);
  CHECK(merges - merges_before < before / 2);
  db.Close();
  REQUIRE(db.Open().ok());
  REQUIRE(db.writer().StartKeyspace(mem.region(), ko).ok());
  REQUIRE(db.writer().WaitKeyspaceReady(20000).ok());
  KeyLister lister(PosixEnv(), dir.path(), o, db.index(), mem.region());
  CheckAgainstModel(lister, model, "", 1000);
}

TEST_CASE("a rebuild whose segment bytes cannot be read leaves listing unavailable, never wrong, and writes go on",
          "[engine][keyspace][faults]") {
  TempDir dir;
  FaultInjectionEnv env;
  Options o;
  o.compression_level = 0;
  RegionMem mem(1024, 1 << 20);
  TestDb db(env, dir.path(), o);
  KeyspaceOptions ko = SmallKeyspace(dir.path());
  std::map<std::string, ModelValue> model;
  REQUIRE(db.Open().ok());
  for (int i = 0; i < 1000; ++i) PutModelled(db, &model, "k" + std::to_string(10000 + i), 100, 1);
  db.Close();
  // No view on disk: the next open rebuilds it from the active segment (no hint).
  std::filesystem::remove_all(dir.path() + "/keys");
  const auto segments = SegmentFiles(dir.path());
  REQUIRE(segments.size() == 1);
  REQUIRE(db.Open().ok());
  // From the middle of the segment on, its bytes cannot be read (nor mapped).
  const uint64_t bad = std::filesystem::file_size(segments[0]) / 2;
  env.SetUnreadable(segments[0], bad);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> failures;  // the keyspace's "background work failed" lines
  ko.log = [&](const std::string& line) {
    if (line.find("background work failed") == std::string::npos) return;
    std::lock_guard lock(mu);
    failures.push_back(line);
    cv.notify_all();
  };
  REQUIRE(db.writer().StartKeyspace(mem.region(), ko).ok());
  // The job fails (or, wrongly, completes the view): bounded, generously.
  bool ready = false;
  for (int i = 0; i < 3000 && !ready; ++i) {
    std::unique_lock lock(mu);
    if (cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return !failures.empty(); })) break;
    lock.unlock();
    ready = db.writer().WaitKeyspaceReady(0).ok();
  }
  REQUIRE_FALSE(ready);
  {
    std::lock_guard lock(mu);
    REQUIRE_FALSE(failures.empty());
    INFO(failures[0]);
    // An I/O error naming the file and where reading stopped: not damage.
    CHECK(failures[0].find("cannot read " + segments[0] + " at offset " + std::to_string(bad)) != std::string::npos);
  }
  CHECK_FALSE(db.writer().WaitKeyspaceReady(300).ok());
  KeyLister lister(PosixEnv(), dir.path(), o, db.index(), mem.region());
  ListRequest req;
  req.limit = 100;
  CHECK(lister.List(req).status().Is(Code::kBusy));  // 503, not a listing missing the keys
  PutModelled(db, &model, "new", 100, 1);
  // Once the bytes read again, the job's retry completes the view, every key in it.
  env.ClearUnreadable();
  REQUIRE(db.writer().WaitKeyspaceReady(300000).ok());
  uint64_t version = 0;
  CHECK(CheckValue("new", db.Get("new").value(), &version));
  CheckAgainstModel(lister, model, "", 1000);
  ko.log = {};
  db.Close();
}

TEST_CASE("a rebuild reads a segment without a hint through a bounded window: it maps none of it and holds at "
          "most a window",
          "[engine][keyspace]") {
  TempDir dir;
  Options o;
  o.segment_bytes = 64 << 20;
  o.room_bytes = 0;
  o.compression_level = 0;
  std::map<std::string, ModelValue> model;
  {
    TestDb db(PosixEnv(), dir.path(), o);
    REQUIRE(db.Open().ok());
    for (int i = 0; i < 12000; ++i) PutModelled(db, &model, "key" + std::to_string(100000 + i), 4096, 1);
    db.Close();
  }
  std::filesystem::remove_all(dir.path() + "/keys");  // no view on disk: the next start rebuilds it
  // The writer seals its active segment once it holds a quarter of the live
  // data: the last one holds more than a window of records. Its hint goes, as
  // after a crash (or once a server appended room after it).
  const std::vector<std::string> segments = SegmentFiles(dir.path());
  const std::string active = segments.back();
  std::filesystem::remove(active.substr(0, active.size() - 4) + ".hint");
  const uint64_t active_bytes = std::filesystem::file_size(active);
  REQUIRE(active_bytes > kScanWindowBytes + (3 << 20));

  FaultInjectionEnv env;  // fresh: it has seen no mapping yet
  RegionMem mem(1024, 1 << 20);
  TestDb db(env, dir.path(), o);
  REQUIRE(db.Open().ok());
  ReadFootprint reads(env, [&](const std::string& path) { return path == active; });
  REQUIRE(db.writer().StartKeyspace(mem.region(), SmallKeyspace(dir.path())).ok());
  REQUIRE(db.writer().WaitKeyspaceReady(300000).ok());
  reads.Stop();
  const uint64_t read_bytes = reads.read_bytes(), largest_read = reads.largest_read(), held = reads.held_bytes();
  INFO("active segment of " << active_bytes << " bytes; the rebuild read " << read_bytes << ", filled " << held
                            << " bytes of memory, mapped " << env.LastMappedBytes(active));
  CHECK(env.LastMappedBytes(active) == 0);
  // Its records once through the window, their first bytes once more for
  // their sizes (at most a span of 1 MiB at a time, engine/keyspace_build.cc).
  CHECK(read_bytes > 0);
  CHECK(read_bytes <= 2 * active_bytes + 2 * kScanWindowBytes);
  CHECK(largest_read <= kScanWindowBytes);
#if !defined(__SANITIZE_ADDRESS__)
  // The window is one buffer for the segment, the size reads one span
  // (1 MiB and a record's first bytes) per chunk of entries, freed before
  // the next: allow two places for it. Under ASan each allocation gets a
  // fresh address, so the union says nothing there.
  CHECK(held <= kScanWindowBytes + 2 * ((1 << 20) + (128 << 10)));
  CHECK(held < active_bytes);
#endif
  KeyLister lister(env, dir.path(), o, db.index(), mem.region());
  CheckAgainstModel(lister, model, "", 1000);
}

TEST_CASE("a rebuild reads its live records' sizes and content types in file order, each byte at most once, "
          "and maps no segment",
          "[engine][keyspace]") {
  TempDir dir;
  Options o;
  o.segment_bytes = 64 << 10;
  o.room_bytes = 0;
  o.compression_level = 0;
  std::map<std::string, ModelValue> model;
  {
    TestDb db(PosixEnv(), dir.path(), o);
    REQUIRE(db.Open().ok());
    for (int i = 0; i < 3000; ++i) PutModelled(db, &model, "key" + std::to_string(100000 + i), 200, 1);
    db.Close();
  }
  std::filesystem::remove_all(dir.path() + "/keys");  // no view on disk: the next start rebuilds it
  const std::vector<std::string> segments = SegmentFiles(dir.path());
  const std::set<std::string> sealed(segments.begin(), segments.end() - 1);
  REQUIRE(sealed.size() >= 8);
  uint64_t sealed_bytes = 0;
  for (const std::string& path : sealed) sealed_bytes += std::filesystem::file_size(path);

  FaultInjectionEnv env;  // fresh: it has seen no mapping yet
  RegionMem mem(1024, 1 << 20);
  TestDb db(env, dir.path(), o);
  REQUIRE(db.Open().ok());
  std::atomic<uint64_t> read_bytes{0};
  env.SetReadHook([&](const std::string& path, uint64_t, size_t n, const char*) {
    if (sealed.count(path) != 0) read_bytes += n;
  });
  REQUIRE(db.writer().StartKeyspace(mem.region(), SmallKeyspace(dir.path())).ok());
  REQUIRE(db.writer().WaitKeyspaceReady(120000).ok());
  env.SetReadHook({});
  uint64_t mapped_bytes = 0;
  for (const std::string& path : sealed) mapped_bytes += env.LastMappedBytes(path);
  INFO("sealed segments " << sealed.size() << " of " << sealed_bytes << " bytes; the rebuild read " << read_bytes
                          << ", mapped " << mapped_bytes);
  CHECK(mapped_bytes == 0);
  CHECK(read_bytes > 0);
  CHECK(read_bytes <= sealed_bytes);
  KeyLister lister(env, dir.path(), o, db.index(), mem.region());
  CheckAgainstModel(lister, model, "", 1000);
}

TEST_CASE("a new view is ready only once its cursor secret is on disk: a cursor survives a crash right after",
          "[engine][keyspace]") {
  // A view built without a MANIFEST signs cursors with a new secret. If it
  // answered listings before a MANIFEST held that secret, a kill -9 in
  // between would make the next open pick another and refuse every cursor
  // handed out. The first MANIFEST write is held here until the test has
  // looked at the view's state.
  TempDir dir;
  FaultInjectionEnv env;
  Options o;
  RegionMem mem(1024, 1 << 20);
  TestDb db(env, dir.path(), o);
  KeyspaceOptions ko = SmallKeyspace(dir.path());
  ko.checkpoint_at_close = false;  // each close leaves what a kill -9 would
  std::mutex m;
  std::condition_variable cv;
  bool held = false, release = false;
  env.SetCreateHook([&](const std::string& path) {
    if (path.find("/keys/MANIFEST") == std::string::npos) return;
    std::unique_lock lock(m);
    held = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
  });
  REQUIRE(db.Open().ok());
  for (int i = 0; i < 300; ++i) REQUIRE(db.Put("k" + std::to_string(1000 + i), "v").status.ok());
  REQUIRE(db.writer().StartKeyspace(mem.region(), ko).ok());
  bool ready = false;
  {
    std::unique_lock lock(m);
    // Bounded only against a hang: either event comes once the rebuild of
    // 300 keys is done.
    const auto last = std::chrono::steady_clock::now() + std::chrono::minutes(10);
    auto is_ready = [&] { return mem.region().state() == KeyspaceState::kReady; };
    while (!held && !is_ready() && std::chrono::steady_clock::now() < last)
      cv.wait_for(lock, std::chrono::milliseconds(5));
    ready = is_ready();
    REQUIRE((held || ready));
  }
  // Ready means the MANIFEST (with the secret) is already on disk; with its
  // first write held, the view must not be ready yet.
  CHECK_FALSE((ready && !std::filesystem::exists(dir.path() + "/keys/MANIFEST")));
  {
    std::lock_guard lock(m);
    release = true;
  }
  cv.notify_all();
  REQUIRE(db.writer().WaitKeyspaceReady(600000).ok());
  env.SetCreateHook({});
  std::string cursor;
  {
    KeyLister lister(PosixEnv(), dir.path(), o, db.index(), mem.region());
    ListRequest first;
    first.limit = 100;
    auto page = lister.List(first);
    REQUIRE(page.ok());
    REQUIRE(page.value().keys.size() == 100);
    auto made = lister.MakeCursor(page.value().keys.back().key, "");
    REQUIRE(made.ok());
    cursor = made.value();
  }
  db.Close();  // no checkpoint at close: what a kill -9 leaves
  REQUIRE(db.Open().ok());
  REQUIRE(db.writer().StartKeyspace(mem.region(), ko).ok());
  REQUIRE(db.writer().WaitKeyspaceReady(600000).ok());
  KeyLister lister(PosixEnv(), dir.path(), o, db.index(), mem.region());
  auto after = lister.ParseCursor(cursor, "");
  REQUIRE(after.ok());
  CHECK(after.value() == "k1099");
  db.Close();
}
