// The engine against a std::map model: random puts, deletes, conditional
// writes, batches, large values in parts and reopens, with compression on and
// off; every read must match the model.
#include "engine/writer.h"

#include <catch2/catch.hpp>

#include <map>
#include <random>

#include "engine/compress.h"
#include "tests/engine/support/fault_env.h"
#include "tests/engine/support/model.h"
#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;

namespace {

std::string RandomKey(std::mt19937_64& rng) {
  static const std::vector<std::string> kFixed = {"a", std::string("nul\0key", 7), std::string("\0", 1),
                                                  std::string(1024, 'K'), "\xff\xfe binary"};
  if (rng() % 8 == 0) return kFixed[rng() % kFixed.size()];
  return "key-" + std::to_string(rng() % 200);
}

size_t RandomValueLen(std::mt19937_64& rng) {
  switch (rng() % 20) {
    case 0: return 0;
    case 1: return 1 + rng() % 16;
    case 2: return 256 + rng() % 4096;
    case 3: if (rng() % 10 == 0) return (1 << 20) + rng() % (2 << 20); [[fallthrough]];
    default: return 20 + rng() % 200;
  }
}

}  // namespace

TEST_CASE("the engine agrees with a std::map model over random puts, deletes, conditions and reopens",
          "[engine][writer][model]") {
  const int level = GENERATE(0, 1);
  TempDir dir;
  Options o;
  o.compression_level = level;
  o.segment_bytes = 256 << 10;  // many rotations
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  std::mt19937_64 rng(1234 + level);
  Model model;
  std::vector<std::string> all_keys;
  uint64_t last_seq = 0;
  auto remember = [&](const std::string& k) {
    if (std::find(all_keys.begin(), all_keys.end(), k) == all_keys.end()) all_keys.push_back(k);
  };

  for (int step = 0; step < 3000; ++step) {
    const int what = static_cast<int>(rng() % 100);
    const std::string key = RandomKey(rng);
    remember(key);
    auto it = model.find(key);
    if (what < 45) {  // put, sometimes conditional
      std::string value = MakeValue(key, step, RandomValueLen(rng), rng() % 2 == 0);
      Condition c;
      bool should_pass = true;
      const int cond = static_cast<int>(rng() % 6);
      if (cond == 0) {
        c.kind = Condition::Kind::kIfAbsent;
        should_pass = it == model.end();
      } else if (cond == 1) {
        c.kind = Condition::Kind::kIfMatch;
        c.seq = it != model.end() ? it->second.seq : 12345;
        should_pass = it != model.end();
      } else if (cond == 2) {
        c.kind = Condition::Kind::kIfMatch;
        c.seq = it != model.end() ? it->second.seq + 1 : 0;
        should_pass = false;
      }
      WriteResult r = db.Put(key, value, c);
      if (should_pass) {
        REQUIRE(r.status.ok());
        REQUIRE(r.existed == (it != model.end()));
        REQUIRE(r.seq > last_seq);
        last_seq = r.seq;
        model[key] = ModelEntry{value, r.seq};
      } else {
        REQUIRE(r.status.Is(Code::kPreconditionFailed));
      }
    } else if (what < 60) {  // delete
      WriteResult r = db.Delete(key);
      if (it == model.end()) {
        REQUIRE(r.status.Is(Code::kNotFound));
      } else {
        REQUIRE(r.status.ok());
        REQUIRE(r.existed);
        REQUIRE(r.seq > last_seq);
        last_seq = r.seq;
        model.erase(it);
      }
    } else if (what < 80) {  // get
      CheckKey(db, model, key);
      if (it != model.end()) {
        auto meta = db.reader().Get(key, ReadMode::kMetadata);
        REQUIRE(meta.ok());
        REQUIRE(meta->raw_len == it->second.value.size());
        REQUIRE(meta->data.empty());
      }
    } else if (what < 92) {  // a batch in which later ops see earlier ones
      std::vector<std::string> keys, values, stored;
      std::vector<WriteOp> ops;
      // Up to three of the writer's lookup windows (Writer::Impl::kLookupWindow).
      const int n = 1 + static_cast<int>(rng() % 40);
      for (int i = 0; i < n; ++i) {
        keys.push_back(rng() % 3 == 0 ? key : RandomKey(rng));
        values.push_back(MakeValue(keys.back(), step * 100 + i, RandomValueLen(rng) % 5000, true));
        stored.emplace_back();
      }
      for (int i = 0; i < n; ++i) {
        remember(keys[i]);
        WriteOp op;
        op.key = keys[i];
        if (rng() % 4 == 0) {
          op.type = OpType::kDelete;
        } else {
          op.content_type = "text/plain";
          op.codec = EncodeValue(values[i], level, o.compress_min_bytes, &stored[i]);
          op.stored = op.codec == Codec::kZstd ? std::string_view(stored[i]) : std::string_view(values[i]);
          op.raw_len = values[i].size();
          const int cond = static_cast<int>(rng() % 10);
          if (cond < 2) {
            op.condition.kind = Condition::Kind::kIfAbsent;
          } else if (cond < 4) {
            // The version before the batch: an earlier op of the batch on
            // the same key makes it stale.
            auto mit = model.find(keys[i]);
            op.condition.kind = Condition::Kind::kIfMatch;
            op.condition.seq = mit != model.end() ? mit->second.seq + (cond == 3 ? 1 : 0) : 7;
          }
        }
        ops.push_back(op);
      }
      std::vector<WriteResult> results(ops.size());
      // The write stall's forecast looks the keys up first; the batch then
      // decides from what it found.
      if (rng() % 2 == 0) (void)db.writer().Forecast(ops);
      db.writer().Apply(ops, results);
      CheckCounters(db);
      for (int i = 0; i < n; ++i) {
        auto mit = model.find(keys[i]);
        const bool exists = mit != model.end();
        if (ops[i].type == OpType::kDelete) {
          if (!exists) {
            REQUIRE(results[i].status.Is(Code::kNotFound));
            continue;
          }
          REQUIRE(results[i].status.ok());
          model.erase(mit);
        } else {
          if (ops[i].condition.kind == Condition::Kind::kIfAbsent && exists) {
            REQUIRE(results[i].status.Is(Code::kPreconditionFailed));
            continue;
          }
          if (ops[i].condition.kind == Condition::Kind::kIfMatch &&
              (!exists || mit->second.seq != ops[i].condition.seq)) {
            REQUIRE(results[i].status.Is(Code::kPreconditionFailed));
            continue;
          }
          REQUIRE(results[i].status.ok());
          REQUIRE(results[i].existed == exists);
          model[keys[i]] = ModelEntry{values[i], results[i].seq};
        }
        REQUIRE(results[i].seq > last_seq);
        last_seq = results[i].seq;
      }
    } else if (what < 96) {  // a large value written in parts
      std::string value = MakeValue(key, step, 100000 + rng() % 300000, rng() % 2 == 0);
      WriteOp head;
      head.key = key;
      head.content_type = "text/plain";
      head.codec = level > 0 ? Codec::kZstd : Codec::kRaw;
      auto id = db.writer().BeginLarge(head);
      REQUIRE(id.ok());
      for (size_t off = 0; off < value.size(); off += 65536) {
        std::string part = value.substr(off, 65536);
        std::string frame;
        if (head.codec == Codec::kZstd) REQUIRE(CompressFrame(part, level, &frame).ok());
        REQUIRE(db.writer().AppendLarge(id.value(), head.codec == Codec::kZstd ? frame : part).ok());
      }
      WriteResult r;
      db.writer().FinishLarge(id.value(), value.size(), &r);
      REQUIRE(r.status.ok());
      CheckCounters(db);
      REQUIRE(r.existed == (it != model.end()));
      REQUIRE(r.seq > last_seq);
      last_seq = r.seq;
      model[key] = ModelEntry{value, r.seq};
    } else {  // reopen
      REQUIRE(db.Open().ok());
      CheckModel(db, model, all_keys);
    }
  }
  CheckModel(db, model, all_keys);
  REQUIRE(db.Open().ok());
  CheckModel(db, model, all_keys);
  // Sequence numbers never go back after a reopen.
  WriteResult r = db.Put("after-reopen", "x");
  REQUIRE(r.status.ok());
  REQUIRE(r.seq > last_seq);
}

TEST_CASE("a second writer cannot open a locked database", "[engine][writer]") {
  TempDir dir;
  TestDb a(PosixEnv(), dir.path(), Options{});
  REQUIRE(a.Open().ok());
  TestDb b(PosixEnv(), dir.path(), Options{});
  CHECK(b.Open().Is(Code::kBusy));
  a.Close();
  CHECK(b.Open().ok());
}

TEST_CASE("invalid ops fail alone and the rest of the batch commits", "[engine][writer]") {
  TempDir dir;
  Options o;
  o.max_value_bytes = 1000;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  std::string big(1001, 'x');
  std::string long_ct(256, 'c');
  WriteOp ops[5];
  ops[0].key = "ok1";
  ops[0].stored = "v";
  ops[0].raw_len = 1;
  ops[1].key = "";  // empty key
  ops[2].key = "big";
  ops[2].stored = big;
  ops[2].raw_len = big.size();
  ops[3].key = "ct";
  ops[3].content_type = long_ct;
  ops[4].key = "ok2";
  ops[4].stored = "w";
  ops[4].raw_len = 1;
  WriteResult r[5];
  db.writer().Apply(ops, r);
  CHECK(r[0].status.ok());
  CHECK(r[1].status.Is(Code::kInvalidArgument));
  CHECK(r[2].status.Is(Code::kTooLarge));
  CHECK(r[3].status.Is(Code::kInvalidArgument));
  CHECK(r[4].status.ok());
  CHECK(r[4].seq == r[0].seq + 1);
  CHECK(db.Get("ok2").value() == "w");
  CHECK(db.Get("big").status().Is(Code::kNotFound));
}

TEST_CASE("live and dead bytes follow overwrites and deletes", "[engine][writer][stats]") {
  TempDir dir;
  TestDb db(PosixEnv(), dir.path(), Options{});
  REQUIRE(db.Open().ok());
  REQUIRE(db.Put("k", std::string(100, 'a')).status.ok());
  const uint64_t rec = RecordBytes(1, 10, 100);
  WriterStats s = db.writer().Stats();
  CHECK(s.live_bytes == rec);
  CHECK(s.dead_bytes == 0);
  REQUIRE(db.Put("k", std::string(100, 'b')).status.ok());
  s = db.writer().Stats();
  CHECK(s.live_bytes == rec);
  CHECK(s.dead_bytes == rec);
  REQUIRE(db.Delete("k").status.ok());
  s = db.writer().Stats();
  CHECK(s.live_bytes == 0);
  CHECK(s.dead_bytes == 2 * rec + RecordBytes(1, 0, 0));
  CHECK(s.keys == 0);
  // Recovery counts the same.
  REQUIRE(db.Open().ok());
  WriterStats t = db.writer().Stats();
  CHECK(t.live_bytes == s.live_bytes);
  CHECK(t.dead_bytes == s.dead_bytes);
}

TEST_CASE("FlushHint writes the active segment's buffered hint entries, and nothing when none are buffered",
          "[engine][hint]") {
  TempDir dir;
  FaultInjectionEnv env;
  TestDb db(env, dir.path(), Options{});
  REQUIRE(db.Open().ok());
  REQUIRE(db.Put("k1", "v1").status.ok());
  REQUIRE(db.Put("k2", std::string(300, 'v')).status.ok());
  const std::string segment = SegmentFiles(dir.path()).back();
  const std::string hint = segment.substr(0, segment.size() - 4) + ".hint";
  const std::string before = ReadFileBytes(hint);
  const uint64_t writes = env.Calls(FaultOp::kWrite, ".hint");
  db.writer().FlushHint();
  CHECK(env.Calls(FaultOp::kWrite, ".hint") == writes + 1);
  const std::string after = ReadFileBytes(hint);
  REQUIRE(after.size() > before.size());
  CHECK(after.compare(0, before.size(), before) == 0);
  CHECK(after.find("k1") != std::string::npos);  // each entry holds its key
  CHECK(after.find("k2") != std::string::npos);
  db.writer().FlushHint();  // nothing buffered: no write
  CHECK(env.Calls(FaultOp::kWrite, ".hint") == writes + 1);
}

TEST_CASE("a batch that rotates for the active segment's share measures the share of the new active segment "
          "after it",
          "[engine][writer][rotation]") {
  // The live data 40 MiB, so a quarter is 10 MiB: a batch of 3 MiB that
  // pushes the active segment past its quarter rotates once, and its
  // records after that go into the new segment (not a segment per MiB, as
  // when the sealed one's share was taken for the new one's).
  TempDir dir;
  Options o;
  o.compression_level = 0;
  o.segment_bytes = 256 << 20;
  o.sync = SyncMode::kNone;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  const std::string value(128 << 10, 'v');
  int next = 0;
  const auto put = [&] { REQUIRE(db.Put("k" + std::to_string(next++), value).status.ok()); };
  while (db.writer().Stats().live_bytes < (40u << 20)) put();
  // The active segment within 1 MiB of its quarter.
  const auto room = [&] {
    const uint64_t quarter = db.writer().Stats().live_bytes / 4;
    const uint64_t live = ActiveSegment(db.writer()).live_bytes;
    return live < quarter ? quarter - live : 0;
  };
  for (int i = 0; i < 1000 && room() > (1u << 20); ++i) put();
  REQUIRE(room() <= (1u << 20));
  REQUIRE(room() > value.size());
  const uint64_t segments = db.writer().Stats().segments;
  std::vector<std::string> keys;
  for (int i = 0; i < 24; ++i) keys.push_back("b" + std::to_string(i));
  std::vector<WriteOp> ops(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    ops[i].key = keys[i];
    ops[i].stored = value;
    ops[i].raw_len = value.size();
  }
  std::vector<WriteResult> results(ops.size());
  db.writer().Apply(ops, results);
  for (const WriteResult& r : results) REQUIRE(r.status.ok());
  CHECK(db.writer().Stats().segments == segments + 1);
  CHECK(ActiveSegment(db.writer()).live_bytes >= 2 * value.size());
}

TEST_CASE("a batch that kills records in many segments takes each record's bytes from its own segment",
          "[engine][writer]") {
  // More segments than the publication's cache of segment stats has places
  // (ids 16 apart share one): each segment's live bytes after the batch
  // are what an open counts from the records themselves.
  TempDir dir;
  Options o;
  o.compression_level = 0;
  o.segment_bytes = 64 << 10;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  const std::string value(8 << 10, 'v');
  std::vector<std::string> keys;
  for (int i = 0; i < 180; ++i) {
    keys.push_back("k" + std::to_string(i));
    REQUIRE(db.Put(keys.back(), value).status.ok());
  }
  REQUIRE(db.writer().Stats().segments > 20);
  std::vector<WriteOp> ops;
  for (size_t i = 0; i < keys.size(); i += 3) {
    WriteOp op;
    op.key = keys[i];
    op.stored = "new";
    op.raw_len = 3;
    ops.push_back(op);
  }
  std::vector<WriteResult> results(ops.size());
  db.writer().Apply(ops, results);
  for (const WriteResult& r : results) REQUIRE(r.status.ok());
  std::map<uint32_t, uint64_t> live;
  for (const SegmentStats& s : db.writer().Stats().per_segment) live[s.id] = s.live_bytes;
  REQUIRE(db.Open().ok());
  std::map<uint32_t, uint64_t> reopened;
  for (const SegmentStats& s : db.writer().Stats().per_segment) reopened[s.id] = s.live_bytes;
  CHECK(live == reopened);
}

TEST_CASE("SyncIfDue says when the next interval sync is due: the last sync plus the interval, not a wait "
          "after the write",
          "[engine][sync]") {
  TempDir dir;
  FaultInjectionEnv env;
  Options o;
  o.sync = SyncMode::kInterval;
  o.sync_interval_ms = 200;
  TestDb db(env, dir.path(), o);
  REQUIRE(db.Open().ok());
  uint64_t due = 0;
  // Nothing unsynced: what is written next is due an interval from now.
  REQUIRE(db.writer().SyncIfDue(1000, &due).ok());
  CHECK(due == 1200);
  REQUIRE(db.Put("k1", "v1").status.ok());
  const uint64_t syncs = env.Calls(FaultOp::kSync);
  // A write just before the deadline does not move it.
  REQUIRE(db.writer().SyncIfDue(1199, &due).ok());
  REQUIRE(db.Put("k2", "v2").status.ok());
  CHECK(env.Calls(FaultOp::kSync) == syncs);
  CHECK(due == 1200);
  // At the deadline the data is synced, and the next deadline counts from then.
  REQUIRE(db.writer().SyncIfDue(1200, &due).ok());
  CHECK(env.Calls(FaultOp::kSync) == syncs + 1);
  CHECK(due == 1400);
  // Other modes: nothing is ever due.
  Options always;
  TempDir dir2;
  TestDb db2(env, dir2.path(), always);
  REQUIRE(db2.Open().ok());
  REQUIRE(db2.writer().SyncIfDue(1000, &due).ok());
  CHECK(due == UINT64_MAX);
}
