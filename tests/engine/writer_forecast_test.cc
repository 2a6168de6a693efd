// Writer::Forecast beside the pipelined group commit: the forecast neither
// waits for the fdatasync in flight nor finishes the batch it covers, and it
// counts that batch's records, which the index does not show yet. The sync
// thread is held at its fdatasync through the fault env's sync hook.
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <future>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "engine/compaction.h"
#include "engine/record.h"
#include "tests/engine/support/fault_env.h"
#include "tests/engine/support/model.h"
#include "tests/engine/support/pipeline.h"
#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;

TEST_CASE("a forecast neither waits for the fdatasync in flight nor finishes its batch, and counts that batch",
          "[engine][pipeline][forecast]") {
  // Or once that fdatasync returned, before its batch is taken (the writer
  // loop's turnaround): a lock that drains would publish the batch.
  const bool after_a_synced = GENERATE(false, true);
  TempDir dir;
  FaultInjectionEnv env;
  TestDb db(env, dir.path(), Options{});
  REQUIRE(db.Open().ok());
  REQUIRE(db.Put("old", "v0").status.ok());
  const uint64_t old_record = RecordBytes(3, 10, 2);  // TestDb::Put's content type: text/plain
  SyncGate gate(env);
  Batch a = Puts({"a1", "old"}, "va");    // in flight: kills "old"'s v0
  Batch b = Puts({"a1", "new"}, "vbb");   // forecast: kills a's a1
  db.writer().Submit(a.ops);
  REQUIRE(gate.WaitEntered(1));
  Writer::BatchForecast f;
  if (after_a_synced) {
    gate.Release();
    for (int i = 0; i < 120000 && !db.writer().SyncIdle(); ++i) usleep(1000);
    REQUIRE(db.writer().SyncIdle());
    f = db.writer().Forecast(b.ops);
  } else {
    // On a thread of its own, so that a forecast that waits for the sync
    // fails the test instead of hanging it (the wait is bounded).
    std::promise<void> done;
    std::future<void> finished = done.get_future();
    std::thread forecaster([&] {
      f = db.writer().Forecast(b.ops);
      done.set_value();
    });
    const bool returned = finished.wait_for(std::chrono::seconds(120)) == std::future_status::ready;
    CHECK(returned);  // while A's fdatasync is held
    if (!returned) gate.Release();
    forecaster.join();
    if (returned) CHECK_FALSE(db.writer().SyncIdle());  // A's sync is still held
  }
  // A is not published by the forecast (nor finished, while its sync is held).
  CHECK(db.Get("a1").status().Is(Code::kNotFound));
  CHECK(db.Get("old").value() == "v0");
  if (!after_a_synced) CHECK_FALSE(Take(db, false).got);

  // Relative to the published counters, which do not show A yet.
  CHECK(f.index_live_bytes == old_record);
  CHECK(f.put_bytes == RecordBytes(2, 0, 2) + RecordBytes(3, 0, 2) + RecordBytes(2, 0, 3) + RecordBytes(3, 0, 3));
  CHECK(f.killed_live_bytes == old_record + RecordBytes(2, 0, 2));  // v0 by A, A's a1 by this batch
  CHECK(f.dead_bytes == f.killed_live_bytes);

  gate.Open();
  Taken ta = Take(db, true);
  REQUIRE(ta.got);
  CHECK(AllOk(ta));
  CHECK(db.Get("old").value() == "va");
}

TEST_CASE("a forecast counts a tombstone only for a key that exists, and a key written twice in the batch once live",
          "[engine][forecast]") {
  TempDir dir;
  FaultInjectionEnv env;
  TestDb db(env, dir.path(), Options{});
  REQUIRE(db.Open().ok());
  REQUIRE(db.Put("k", "12345").status.ok());  // with TestDb::Put's content type, text/plain
  std::vector<WriteOp> ops(4);
  ops[0].type = OpType::kDelete;
  ops[0].key = "missing";  // writes nothing
  ops[1].key = "k";        // kills the 5-byte put
  ops[1].stored = "ab";
  ops[2].key = "k";        // kills ops[1]
  ops[2].stored = "abc";
  ops[3].type = OpType::kDelete;
  ops[3].key = "k";        // kills ops[2], writes a tombstone
  const Writer::BatchForecast f = db.writer().Forecast(ops);
  CHECK(f.index_live_bytes == RecordBytes(1, 10, 5));
  CHECK(f.put_bytes == RecordBytes(1, 0, 2) + RecordBytes(1, 0, 3));
  CHECK(f.killed_live_bytes == RecordBytes(1, 10, 5) + RecordBytes(1, 0, 2) + RecordBytes(1, 0, 3));
  CHECK(f.dead_bytes == f.killed_live_bytes + RecordBytes(1, 0, 0));
}

namespace {

// The live bytes the writer counts, over all segments.
uint64_t LiveBytes(TestDb& db) { return db.writer().Stats().live_bytes; }

// Submits `ops` and waits for their batch: every op OK.
void SubmitAndTake(TestDb& db, std::span<const WriteOp> ops) {
  db.writer().Submit(ops);
  Taken t = Take(db, true);
  REQUIRE(t.got);
  CHECK(AllOk(t));
}

}  // namespace

TEST_CASE("a batch decided after its forecast sees what compaction moved in between", "[engine][forecast]") {
  // DecideBatch takes the forecast's lookups instead of looking the keys up
  // again, unless something changed the index since (here: an install).
  TempDir dir;
  Options o;
  o.compression_level = 0;
  o.segment_bytes = 64 << 10;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  for (int i = 0; i < 600; ++i) REQUIRE(db.Put("k" + std::to_string(i), std::string(200, 'a')).status.ok());
  Batch b = Puts({"k1"}, "new");
  db.writer().Forecast(b.ops);
  CompactionOptions all = UnthrottledCompaction(7);
  all.pick_all = true;
  Compactor c(db.writer(), all);
  PassReport report;
  REQUIRE(c.RunOnce(&report).ok());
  REQUIRE(report.deleted > 0);  // k1's record moved
  const uint64_t live = LiveBytes(db);
  const uint64_t segments = db.writer().Stats().segments;
  SubmitAndTake(db, b.ops);
  CHECK(LiveBytes(db) == live - RecordBytes(2, 10, 200) + RecordBytes(2, 0, 3));
  CHECK(db.writer().Stats().segments == segments);
  CHECK(db.Get("k1").value() == "new");
  REQUIRE(db.Open().ok());
  CHECK(db.Get("k1").value() == "new");
  CHECK(LiveBytes(db) == live - RecordBytes(2, 10, 200) + RecordBytes(2, 0, 3));
}

TEST_CASE("a batch that rotates the active segment between two ops of one key after its forecast decides the "
          "second against the first",
          "[engine][forecast]") {
  TempDir dir;
  Options o;
  o.compression_level = 0;
  o.segment_bytes = 64 << 10;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  REQUIRE(db.Put("k", std::string(200, 'o')).status.ok());
  const uint64_t rec = RecordBytes(1, 0, 200);
  const auto active_bytes = [&] { return ActiveSegment(db.writer()).bytes; };
  // Room for one of the batch's records, not two.
  for (int i = 0; i < 5000 && active_bytes() + 2 * rec <= o.segment_bytes; ++i)
    REQUIRE(db.Put("f" + std::to_string(i), "x").status.ok());
  REQUIRE(active_bytes() + rec <= o.segment_bytes);
  Batch b1 = Puts({"k"}, std::string(200, '1'));
  Batch b2 = Puts({"k"}, std::string(200, '2'));
  std::vector<WriteOp> ops = {b1.ops[0], b2.ops[0]};
  const uint64_t live = LiveBytes(db);
  db.writer().Forecast(ops);
  SubmitAndTake(db, ops);
  CHECK(LiveBytes(db) == live - RecordBytes(1, 10, 200) + rec);
  CHECK(db.Get("k").value() == std::string(200, '2'));
  REQUIRE(db.Open().ok());
  CHECK(db.Get("k").value() == std::string(200, '2'));
  CHECK(LiveBytes(db) == live - RecordBytes(1, 10, 200) + rec);
}

namespace {

// One random op over keys k0..k9: puts and deletes, unconditional or
// conditioned on the key's absence or on a seq (one given out before, or 0).
WriteOp RandomOp(std::mt19937_64& rng, const std::vector<std::string>& keys, const std::vector<uint64_t>& seqs,
                 const std::string& value) {
  WriteOp op;
  op.key = keys[rng() % keys.size()];
  const bool put = rng() % 3 != 0;
  op.type = put ? OpType::kPut : OpType::kDelete;
  if (put) {
    op.stored = std::string_view(value).substr(0, 1 + rng() % value.size());
    op.raw_len = op.stored.size();
  }
  switch (rng() % 4) {
    case 0:
      if (put) op.condition.kind = Condition::Kind::kIfAbsent;
      break;
    case 1:
      op.condition.kind = Condition::Kind::kIfMatch;
      op.condition.seq = seqs.empty() || rng() % 5 == 0 ? 0 : seqs[seqs.size() - 1 - rng() % std::min<size_t>(seqs.size(), 12)];
      break;
    default: break;
  }
  return op;
}

}  // namespace

TEST_CASE("a batch decided with its forecast's lookups gets the verdicts of one decided without a forecast",
          "[engine][forecast]") {
  // Two databases take the same batches: the first forecasts each second
  // batch (sometimes a forecast of other ops: reordered, cut short, a key
  // changed) while the first is in flight, the second decides without any
  // forecast. Conditions, deletes of missing keys and keys written by the
  // batch in flight or twice in one batch must get the same answers, seqs
  // and byte counts in both.
  TempDir dir_f, dir_n;
  TestDb with(PosixEnv(), dir_f.path(), Options{});
  TestDb without(PosixEnv(), dir_n.path(), Options{});
  REQUIRE(with.Open().ok());
  REQUIRE(without.Open().ok());
  std::vector<std::string> keys;
  for (int i = 0; i < 10; ++i) keys.push_back("k" + std::to_string(i));
  for (int i = 0; i < 6; ++i) {
    REQUIRE(with.Put(keys[i], "first").status.ok());
    REQUIRE(without.Put(keys[i], "first").status.ok());
  }
  const std::string value(40, 'v');
  std::mt19937_64 rng(29);
  std::vector<uint64_t> seqs;
  uint64_t mismatched_forecasts = 0, forecast_ops = 0;
  for (int round = 0; round < 150; ++round) {
    std::vector<WriteOp> a, b;
    for (size_t i = 0, n = 1 + rng() % 4; i < n; ++i) a.push_back(RandomOp(rng, keys, seqs, value));
    for (size_t i = 0, n = 1 + rng() % 8; i < n; ++i) b.push_back(RandomOp(rng, keys, seqs, value));
    std::vector<WriteOp> forecast = b;
    switch (rng() % 6) {
      case 0: std::reverse(forecast.begin(), forecast.end()); break;
      case 1: forecast.resize(rng() % forecast.size()); break;
      case 2: forecast[rng() % forecast.size()].key = keys[rng() % keys.size()]; break;
      default: break;
    }
    for (size_t i = 0; i < forecast.size(); ++i) mismatched_forecasts += forecast[i].key != b[i].key;
    forecast_ops += forecast.size();
    std::vector<WriteResult> results[2][2];
    for (int d = 0; d < 2; ++d) {
      TestDb& db = d == 0 ? with : without;
      db.writer().Submit(a);  // in flight while b is forecast and decided
      if (d == 0) (void)db.writer().Forecast(forecast);
      db.writer().Submit(b);
      for (int t = 0; t < 2; ++t) {
        Taken taken = Take(db, true);
        REQUIRE(taken.got);
        results[d][t] = taken.results;
      }
    }
    for (int t = 0; t < 2; ++t) {
      REQUIRE(results[0][t].size() == results[1][t].size());
      for (size_t i = 0; i < results[0][t].size(); ++i) {
        INFO("round " << round << " batch " << t << " op " << i);
        CHECK(results[0][t][i].status.code() == results[1][t][i].status.code());
        CHECK(results[0][t][i].seq == results[1][t][i].seq);
        CHECK(results[0][t][i].existed == results[1][t][i].existed);
        if (results[0][t][i].status.ok()) seqs.push_back(results[0][t][i].seq);
      }
    }
    const WriterStats sf = with.writer().Stats(), sn = without.writer().Stats();
    CHECK(sf.keys == sn.keys);
    CHECK(sf.live_bytes == sn.live_bytes);
    CHECK(sf.dead_bytes == sn.dead_bytes);
  }
  CHECK(mismatched_forecasts > 0);
  CHECK(forecast_ops > 0);
  for (const std::string& k : keys) {
    const auto f = with.Get(k), n = without.Get(k);
    CHECK(f.ok() == n.ok());
    if (f.ok() && n.ok()) CHECK(f.value() == n.value());
  }
}
