// ShmKvBackend's reading of the shared mapping: what /readyz says (each
// reason the README lists), whether a put may find disk room, from the
// writer's published state, and the counters a scrape sums (and the pages it touches).
#include "src/kv/kv_backend.h"

#include <sys/mman.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "tests/src/support/test_util.h"

namespace kingx {
namespace {

struct Fixture {
  // A worker of generation 1 in slot 0 of a mapping whose writer is ready.
  Fixture() : created(SharedMemory::Create(test::SmallShmSizes(2, 64))) {
    REQUIRE(created.ok());
    shm = created->get();
    test::OccupySlot(*shm, 0, 1);
    ctx.shm = shm;
    ctx.queue = &shm->queue();
    ctx.slot = 0;
    ctx.generation = 1;
    ctx.config.storage_timeout_ms = 30'000;
    shm->control().writer_ready.store(1);
    shm->index().counters().ready.store(1);
    backend = std::make_unique<ShmKvBackend>(ctx);
  }
  WriterMetrics& writer() { return shm->writer_metrics(); }

  engine::Result<std::unique_ptr<SharedMemory>> created;
  SharedMemory* shm = nullptr;
  WorkerContext ctx;
  std::unique_ptr<ShmKvBackend> backend;
};

TEST_CASE("readyz names each reason the writer publishes", "[src][kv_backend]") {
  Fixture f;
  CHECK(f.backend->Ready());
  CHECK(f.backend->NotReadyReason().empty());

  f.writer().read_only.store(1);
  CHECK_FALSE(f.backend->Ready());
  CHECK(f.backend->NotReadyReason().find("failed fdatasync") != std::string::npos);
  f.writer().read_only.store(0);

  f.writer().disk_full.store(1);
  f.writer().disk_free_bytes.store(1000);
  f.writer().disk_reserve_bytes.store(500);
  CHECK_FALSE(f.backend->Ready());
  const std::string full = f.backend->NotReadyReason();
  CHECK(full.find("disk") != std::string::npos);
  CHECK(full.find("1000 bytes free") != std::string::npos);
  f.writer().disk_full.store(0);

  f.shm->control().writer_ready.store(0);
  CHECK(f.backend->NotReadyReason().find("recovering") != std::string::npos);
  f.shm->control().writer_ready.store(1);

  f.shm->control().draining.store(1);
  CHECK(f.backend->NotReadyReason().find("stopping") != std::string::npos);
}

TEST_CASE("readyz names why the writer's latest open failed until an open succeeds", "[src][kv_backend]") {
  Fixture f;
  f.shm->control().writer_ready.store(0);
  f.writer().open_failure.Publish("IO error: recovery: segment 7: its records cannot be read (offset 4096)");
  const std::string reason = f.backend->NotReadyReason();
  CHECK(reason.find("latest open of the database failed") != std::string::npos);
  CHECK(reason.find("segment 7: its records cannot be read (offset 4096)") != std::string::npos);
  const std::string metrics = f.backend->RenderMetrics();
  CHECK(metrics.find("kingx_writer_open_failing 1\n") != std::string::npos);
  CHECK(metrics.find("kingx_writer_open_failures_total 1\n") != std::string::npos);

  f.writer().open_failure.Clear();  // the next open succeeded
  CHECK(f.backend->NotReadyReason() == "storage is not ready: the writer is recovering the database");
  f.shm->control().writer_ready.store(1);
  CHECK(f.backend->Ready());
  CHECK(f.backend->RenderMetrics().find("kingx_writer_open_failing 0\n") != std::string::npos);
  CHECK(f.backend->RenderMetrics().find("kingx_writer_open_failures_total 1\n") != std::string::npos);
}

TEST_CASE("readyz names the failed fdatasync for the whole recovery it causes", "[src][kv_backend]") {
  Fixture f;
  // The writer set the flag and exited: the master has not yet respawned it.
  f.writer().read_only.store(1);
  f.shm->control().writer_ready.store(0);
  CHECK(f.backend->NotReadyReason().find("failed fdatasync") != std::string::npos);
  // The next writer's open failed meanwhile: both are named.
  f.writer().open_failure.Publish("IO error: recovery: segment 3: its records cannot be read (offset 512)");
  std::string reason = f.backend->NotReadyReason();
  CHECK(reason.find("failed fdatasync") != std::string::npos);
  CHECK(reason.find("segment 3: its records cannot be read (offset 512)") != std::string::npos);
  // An open succeeded: the flag is cleared before the writer says it is ready.
  f.writer().open_failure.Clear();
  f.writer().read_only.store(0);
  CHECK(f.backend->NotReadyReason() == "storage is not ready: the writer is recovering the database");
  f.shm->control().writer_ready.store(1);
  CHECK(f.backend->Ready());
  // Between the failed sync and the writer's exit the writer is still marked ready.
  f.writer().read_only.store(1);
  CHECK_FALSE(f.backend->Ready());
  CHECK(f.backend->NotReadyReason().find("failed fdatasync") != std::string::npos);
}

TEST_CASE("a put finds disk room unless the disk is reported full without room for it", "[src][kv_backend]") {
  Fixture f;
  f.writer().disk_free_bytes.store(1000);
  f.writer().disk_reserve_bytes.store(600);
  CHECK(f.backend->DiskRoomFor(1 << 30));  // not reported full: the writer decides
  f.writer().disk_full.store(1);
  CHECK(f.backend->DiskRoomFor(400));  // free less the reserve
  CHECK_FALSE(f.backend->DiskRoomFor(401));
  f.writer().disk_free_bytes.store(500);  // below the reserve: nothing fits
  CHECK_FALSE(f.backend->DiskRoomFor(1));
}

TEST_CASE("metrics sum the counter stripes a slot's threads marked, and only those", "[src][kv_backend]") {
  Fixture f;
  // A stripe no thread marked is not summed (no thread counted in it).
  http::Bump(f.shm->counters<http::Counters>(1, 3)->bytes_in, 100);
  CHECK(SumSlotCounters(*f.shm).bytes_in == 0);
  f.shm->MarkCounterStripe(0, 0);
  http::Bump(f.shm->counters<http::Counters>(0, 0)->bytes_in, 1);
  CHECK(SumSlotCounters(*f.shm).bytes_in == 1);
  // Marks are per stripe, in any order, idempotent, and never cleared: what
  // an earlier occupant of the slot counted stays summed.
  f.shm->MarkCounterStripe(1, 3);
  f.shm->MarkCounterStripe(1, 3);
  f.shm->MarkCounterStripe(1, kCounterStripes - 1);
  http::Bump(f.shm->counters<http::Counters>(1, kCounterStripes - 1)->bytes_in, 10);
  CHECK(SumSlotCounters(*f.shm).bytes_in == 111);
  std::vector<uint32_t> marked;
  f.shm->ForEachCounterStripe(1, [&](uint32_t s) { marked.push_back(s); });
  CHECK(marked == std::vector<uint32_t>{3, kCounterStripes - 1});
}

// The pages of slot `slot`'s counter stripes that are resident (mincore: a
// page of the anonymous shared mapping is allocated when first touched).
size_t ResidentStripePages(const SharedMemory& shm, uint32_t slot) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t bytes = size_t{kCounterStripes} * kCounterStripeBytes;
  std::vector<unsigned char> vec((bytes + page - 1) / page);
  REQUIRE(mincore(shm.CountersBytes(slot, 0), bytes, vec.data()) == 0);
  size_t n = 0;
  for (unsigned char v : vec) n += v & 1;
  return n;
}

TEST_CASE("a scrape touches the pages of marked counter stripes only, whatever the pool's size",
          "[src][kv_backend]") {
  // A thread-pool worker of the largest pool (4,096 threads) of which one
  // thread, the last, served: one page of its stripes in memory before the
  // scrape and after it. A scrape that read every stripe the pool could use
  // would touch kCounterStripes / 4 pages.
  Fixture f;
  const uint32_t last = kCounterStripes - 1;
  f.shm->MarkCounterStripe(1, last);
  http::Bump(f.shm->counters<http::Counters>(1, last)->bytes_in, 7);
  for (uint32_t slot = 0; slot < f.shm->slot_count(); ++slot) {
    CHECK(ResidentStripePages(*f.shm, slot) == (slot == 1 ? 1u : 0u));
  }
  CHECK(SumSlotCounters(*f.shm).bytes_in == 7);
  for (uint32_t slot = 0; slot < f.shm->slot_count(); ++slot) {
    CHECK(ResidentStripePages(*f.shm, slot) == (slot == 1 ? 1u : 0u));
  }
}

}  // namespace
}  // namespace kingx
