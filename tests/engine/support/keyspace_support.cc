// Helpers for the keyspace tests: see keyspace_support.h.
#include "tests/engine/support/keyspace_support.h"

#include <sys/mman.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <thread>

#include "engine/env.h"
#include "engine/key_run.h"

namespace kingx::engine::test {

RegionMem::RegionMem(uint32_t tail_entries, uint64_t arena_bytes) {
  bytes_ = KeyspaceRegion::RegionBytes(tail_entries, arena_bytes);
  base_ = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  REQUIRE(base_ != MAP_FAILED);
  auto r = KeyspaceRegion::Create(base_, bytes_, tail_entries, arena_bytes);
  REQUIRE(r.ok());
  region_ = std::make_unique<KeyspaceRegion>(r.value());
}

RegionMem::~RegionMem() { munmap(base_, bytes_); }

std::string RandomBinaryKey(std::mt19937_64& rng) {
  static const char kAlphabet[] = {'\0', '\x01', 'a', 'b', '/', '\x7f', '\x80', '\xff'};
  const size_t len = 1 + rng() % 6;
  std::string k;
  for (size_t i = 0; i < len; ++i) k.push_back(kAlphabet[rng() % sizeof kAlphabet]);
  return k;
}

std::vector<ListedKey> ListAll(KeyLister& lister, std::string_view prefix, size_t limit, size_t* pages) {
  std::vector<ListedKey> all;
  std::string after;
  size_t n = 0;
  for (;;) {
    ListRequest req;
    req.prefix = prefix;
    req.start_after = after;
    req.limit = limit;
    auto page = lister.List(req);
    // A view being rebuilt answers kBusy (HTTP 503 + Retry-After): retry the page.
    for (int busy = 0; page.status().Is(Code::kBusy) && busy < 3000; ++busy) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      page = lister.List(req);
    }
    INFO("List: " << page.status().ToString());
    REQUIRE(page.ok());
    ++n;
    REQUIRE(page->keys.size() <= limit);
    for (auto& k : page->keys) all.push_back(k);
    if (page->complete) break;
    REQUIRE(!page->keys.empty());
    after = page->keys.back().key;
    REQUIRE(n < 100000);
  }
  if (pages != nullptr) *pages = n;
  return all;
}

Status TryPutModelled(TestDb& db, std::map<std::string, ModelValue>* model, const std::string& key, size_t len,
                      uint64_t version) {
  const std::string v = MakeValue(key, version, len, false);
  WriteOp op;
  op.key = key;
  op.content_type = "text/x-test";
  op.stored = v;
  op.raw_len = v.size();
  WriteResult r;
  db.writer().Apply(std::span<const WriteOp>(&op, 1), std::span<WriteResult>(&r, 1));
  if (r.status.ok()) (*model)[key] = ModelValue{r.seq, v.size()};
  return r.status;
}

void PutModelled(TestDb& db, std::map<std::string, ModelValue>* model, const std::string& key, size_t len,
                 uint64_t version) {
  REQUIRE(TryPutModelled(db, model, key, len, version).ok());
}

void PutBatchModelled(TestDb& db, std::map<std::string, ModelValue>* model, const std::vector<std::string>& keys,
                      size_t len, uint64_t version) {
  std::vector<std::string> values;
  for (const std::string& k : keys) values.push_back(MakeValue(k, version, len, false));
  std::vector<WriteOp> ops(keys.size());  // views into keys and values: both complete now
  for (size_t i = 0; i < keys.size(); ++i) {
    ops[i].key = keys[i];
    ops[i].content_type = "text/x-test";
    ops[i].stored = values[i];
    ops[i].raw_len = values[i].size();
  }
  std::vector<WriteResult> rs(ops.size());
  db.writer().Apply(ops, rs);
  for (size_t i = 0; i < keys.size(); ++i) {
    REQUIRE(rs[i].status.ok());
    (*model)[keys[i]] = ModelValue{rs[i].seq, values[i].size()};
  }
}

void OpenWithKeyspace(TestDb& db, KeyspaceRegion& region, const KeyspaceOptions& ko) {
  REQUIRE(db.Open().ok());
  REQUIRE(db.writer().StartKeyspace(region, ko).ok());
  REQUIRE(db.writer().WaitKeyspaceReady(20000).ok());
}

void PutLargeModelled(TestDb& db, std::map<std::string, ModelValue>* model, const std::string& key, size_t len) {
  const std::string v = MakeValue(key, 1, len, false);
  WriteOp head;
  head.key = key;
  head.content_type = "text/x-test";
  head.codec = Codec::kRaw;
  auto id = db.writer().BeginLarge(head);
  REQUIRE(id.ok());
  for (size_t off = 0; off < v.size(); off += 65536)
    REQUIRE(db.writer().AppendLarge(id.value(), std::string_view(v).substr(off, 65536)).ok());
  WriteResult r;
  db.writer().FinishLarge(id.value(), v.size(), &r);
  REQUIRE(r.status.ok());
  (*model)[key] = ModelValue{r.seq, v.size()};
}

void CheckAgainstModel(KeyLister& lister, const std::map<std::string, ModelValue>& model, std::string_view prefix,
                       size_t limit) {
  auto listed = ListAll(lister, prefix, limit);
  std::vector<std::pair<std::string, ModelValue>> want;
  for (auto it = model.lower_bound(std::string(prefix)); it != model.end(); ++it) {
    if (it->first.compare(0, prefix.size(), prefix) != 0) break;
    want.emplace_back(it->first, it->second);
  }
  INFO("prefix size " << prefix.size() << " limit " << limit);
  if (listed.size() != want.size()) {
    std::set<std::string> got;
    for (auto& k : listed) got.insert(k.key);
    int shown = 0;
    for (auto& [k, v] : want)
      if (!got.count(k) && shown++ < 5) UNSCOPED_INFO("missing key " << k << " seq " << v.seq);
  }
  REQUIRE(listed.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    REQUIRE(listed[i].key == want[i].first);
    REQUIRE(listed[i].seq == want[i].second.seq);
    REQUIRE(listed[i].size == want[i].second.size);
    REQUIRE(listed[i].content_type == "text/x-test");
  }
}

RunStaleness StaleRunEntries(KeyspaceRegion& region, const SharedIndex& index) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    KeyspaceSnapshot snap;
    REQUIRE(region.Snapshot("", "", &snap).ok());
    RunStaleness out;
    bool replaced = false;
    for (uint64_t id : snap.run_ids) {
      auto run = KeyRun::Open(PosixEnv(), JoinPath(snap.keys_dir, KeyRunFileName(id)), id, index.seed(),
                              /*verify_checksum=*/false);
      if (run.status().Is(Code::kNotFound)) {
        replaced = true;
        break;
      }
      REQUIRE(run.ok());
      KeyRun::Iterator it(*run.value());
      for (it.SeekToFirst(); it.Valid(); it.Next()) {
        const KeyEntry& e = it.entry();
        Candidates c;
        REQUIRE(index.LookupKey(e.key, &c).ok());
        bool current = false;
        for (uint32_t i = 0; i < c.count; ++i) current = current || c.locations[i] == MakeLocation(e.segment, e.offset);
        ++out.entries;
        if (!current) ++out.stale;
      }
      REQUIRE(it.status().ok());
    }
    if (!replaced) return out;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  FAIL("the published runs kept being replaced");
  return {};
}

KeyspaceOptions SmallKeyspace(const std::string& dir) {
  KeyspaceOptions o;
  if (getenv("KS_LOG")) o.log = [](const std::string& l) { fprintf(stderr, "%s\n", l.c_str()); };
  o.dir = dir + "/keys";
  o.checkpoint_interval_ms = 50;
  o.settle_ms = 100;
  o.chunk_entries = 300;  // rebuilds write several runs
  return o;
}

}  // namespace kingx::engine::test
