// The counters README's metric table names, rendered by value: each
// kingx_keyspace_* and kingx_index_* sample of /metrics is the shared
// counter its row describes (the engine tests count the events themselves:
// keyspace_lag_test the lost views and writer waits, keyspace_test and
// promises_keyspace_test the merges and repaired entries, index_test the
// growths).
#include <catch2/catch.hpp>
#include <memory>
#include <regex>
#include <string>

#include "src/kv/kv_backend.h"
#include "tests/src/support/test_util.h"

namespace kingx {
namespace {

// The value of the unlabelled sample `name` in a /metrics text, or -1.
double Sample(const std::string& text, const std::string& name) {
  const std::regex line("(^|\n)" + name + " ([^\n]+)");
  std::smatch m;
  if (!std::regex_search(text, m, line)) return -1;
  return std::stod(m[2].str());
}

TEST_CASE("each keyspace and index counter is the sample its metric names", "[src][kv_backend][metrics]") {
  auto created = SharedMemory::Create(test::SmallShmSizes(2, 64));
  REQUIRE(created.ok());
  SharedMemory* shm = created->get();
  WorkerContext ctx;
  ctx.shm = shm;
  ctx.queue = &shm->queue();
  ctx.slot = 0;
  ctx.generation = 1;
  ShmKvBackend backend(ctx);

  // Distinct values, so that a sample rendered from another counter shows.
  engine::KeyspaceCounters& kc = shm->keyspace().counters();
  kc.run_entries.store(101);
  kc.runs_written.store(102);
  kc.run_bytes_written.store(103);
  kc.merges.store(104);
  kc.entries_repaired.store(105);
  kc.rebuilds.store(106);
  kc.lost.store(107);
  kc.catch_ups.store(108);
  kc.writer_waits.store(109);
  shm->index().counters().growths.store(110);
  kc.overwrites_unrecorded.store(111);

  const std::string text = backend.RenderMetrics();
  CHECK(Sample(text, "kingx_keyspace_run_entries") == 101);
  CHECK(Sample(text, "kingx_keyspace_runs_written_total") == 102);
  CHECK(Sample(text, "kingx_keyspace_run_bytes_written_total") == 103);
  CHECK(Sample(text, "kingx_keyspace_merges_total") == 104);
  CHECK(Sample(text, "kingx_keyspace_entries_repaired_total") == 105);
  CHECK(Sample(text, "kingx_keyspace_rebuilds_total") == 106);
  CHECK(Sample(text, "kingx_keyspace_lost_total") == 107);
  CHECK(Sample(text, "kingx_keyspace_catch_ups_total") == 108);
  CHECK(Sample(text, "kingx_keyspace_writer_waits_total") == 109);
  CHECK(Sample(text, "kingx_index_growths_total") == 110);
  CHECK(Sample(text, "kingx_keyspace_overwrites_unrecorded_total") == 111);
}

}  // namespace
}  // namespace kingx
