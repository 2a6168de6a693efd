// The shared mapping: one mmap, carved into page-aligned parts (see shm.h).
#include "src/ipc/shm.h"

#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "src/conf/log.h"
#include "src/ipc/completion_ring.h"
#include "src/ipc/write_queue.h"

namespace kingx {
namespace {

size_t PageAlign(size_t n) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return (n + page - 1) / page * page;
}

}  // namespace

engine::Result<std::unique_ptr<SharedMemory>> SharedMemory::Create(const ShmSizes& sizes) {
  if (sizes.slot_count == 0 || sizes.slot_count > 65535 || sizes.write_queue_bytes % 8 != 0) {
    return engine::Status::InvalidArgument("shared memory: slot count in [1, 65535], queue bytes a multiple of 8");
  }
  std::unique_ptr<SharedMemory> shm(new SharedMemory());
  shm->sizes_ = sizes;
  size_t off = 0;
  shm->control_off_ = off;
  off += PageAlign(sizeof(ControlBlock) + sizeof(SlotInfo) * sizes.slot_count);
  shm->stats_off_ = off;
  off += PageAlign(sizeof(WriterMetrics));
  shm->backups_off_ = off;
  off += PageAlign(sizeof(BackupRegion));
  shm->index_off_ = off;
  shm->index_bytes_ = PageAlign(engine::SharedIndex::RegionBytesFor(sizes.index_max_keys, sizes.index_initial_capacity));
  off += shm->index_bytes_;
  shm->keyspace_off_ = off;
  shm->keyspace_bytes_ =
      PageAlign(engine::KeyspaceRegion::RegionBytes(sizes.keyspace_tail_entries, sizes.keyspace_tail_arena_bytes));
  off += shm->keyspace_bytes_;
  shm->queue_off_ = off;
  off += PageAlign(WriteQueue::RegionBytes(sizes.write_queue_bytes));
  shm->slots_off_ = off;
  shm->ring_bytes_ = PageAlign(CompletionRing::RegionBytes(sizes.completion_ring_entries));
  shm->slot_stride_ = shm->ring_bytes_ + PageAlign(size_t{kCounterStripes} * kCounterStripeBytes);
  off += shm->slot_stride_ * sizes.slot_count;
  shm->bytes_ = off;

  void* base = mmap(nullptr, off, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) {
    return engine::Status::IOError("shared memory: mmap of " + std::to_string(off) + " bytes: " + std::strerror(errno));
  }
  shm->base_ = static_cast<char*>(base);

  // Eventfds are inherited by every child (no CLOEXEC): the writer writes the
  // slots' fds, workers write the writer's.
  shm->writer_efd_ = eventfd(0, EFD_NONBLOCK);
  if (shm->writer_efd_ < 0) return engine::Status::IOError(std::string("eventfd: ") + std::strerror(errno));
  shm->slot_efds_.reset(new int[sizes.slot_count]);
  for (uint32_t i = 0; i < sizes.slot_count; ++i) shm->slot_efds_[i] = -1;
  for (uint32_t i = 0; i < sizes.slot_count; ++i) {
    shm->slot_efds_[i] = eventfd(0, EFD_NONBLOCK);
    if (shm->slot_efds_[i] < 0) return engine::Status::IOError(std::string("eventfd: ") + std::strerror(errno));
  }

  auto* control = new (shm->base_ + shm->control_off_) ControlBlock();
  control->slot_count = sizes.slot_count;
  for (uint32_t i = 0; i < sizes.slot_count; ++i) new (&shm->slot(i)) SlotInfo();
  new (shm->base_ + shm->stats_off_) WriterMetrics();
  new (shm->base_ + shm->backups_off_) BackupRegion();

  shm->index_base_ = shm->base_ + shm->index_off_;
  auto index = engine::SharedIndex::Create(shm->index_base_, shm->index_bytes_, sizes.index_initial_capacity);
  if (!index.ok()) return index.status();
  shm->index_ = std::make_unique<engine::SharedIndex>(std::move(index).value());
  auto keyspace = engine::KeyspaceRegion::Create(shm->base_ + shm->keyspace_off_, shm->keyspace_bytes_,
                                                 sizes.keyspace_tail_entries, sizes.keyspace_tail_arena_bytes);
  if (!keyspace.ok()) return keyspace.status();
  shm->keyspace_ = std::make_unique<engine::KeyspaceRegion>(keyspace.value());

  engine::Status st = WriteQueue::Format(shm->base_ + shm->queue_off_, sizes.write_queue_bytes, shm->writer_efd_);
  if (!st.ok()) return st;
  shm->queue_ = std::make_unique<WriteQueue>(shm->base_ + shm->queue_off_);

  shm->rings_.reset(new CompletionRing[sizes.slot_count]);
  for (uint32_t i = 0; i < sizes.slot_count; ++i) {
    void* ring = shm->base_ + shm->slots_off_ + shm->slot_stride_ * i;
    st = CompletionRing::Format(ring, sizes.completion_ring_entries);
    if (!st.ok()) return st;
    shm->rings_[i] = CompletionRing(ring);
  }
  return shm;
}

SharedMemory::~SharedMemory() {
  if (writer_efd_ >= 0) close(writer_efd_);
  if (slot_efds_) {
    for (uint32_t i = 0; i < sizes_.slot_count; ++i) {
      if (slot_efds_[i] >= 0) close(slot_efds_[i]);
    }
  }
  index_.reset();
  keyspace_.reset();
  queue_.reset();
  if (base_ != nullptr) munmap(base_, bytes_);
}

ControlBlock& SharedMemory::control() const {
  return *reinterpret_cast<ControlBlock*>(base_ + control_off_);
}

SlotInfo& SharedMemory::slot(uint32_t i) const {
  auto* first = reinterpret_cast<SlotInfo*>(base_ + control_off_ + sizeof(ControlBlock));
  return first[i];
}

bool SlotOccupantAlive(const SharedMemory& shm, uint32_t slot, uint32_t gen) {
  if (slot >= shm.slot_count()) return false;
  const SlotInfo& s = shm.slot(slot);
  return (s.generation.load(std::memory_order_acquire) & 0xFFFFFFu) == (gen & 0xFFFFFFu) &&
         s.state.load(std::memory_order_acquire) != static_cast<uint32_t>(SlotState::kFree);
}

BackupRegion& SharedMemory::backups() const { return *reinterpret_cast<BackupRegion*>(base_ + backups_off_); }

WriterMetrics& SharedMemory::writer_metrics() const { return *reinterpret_cast<WriterMetrics*>(base_ + stats_off_); }

CompletionRing& SharedMemory::completions(uint32_t slot) { return rings_[slot]; }

int SharedMemory::slot_eventfd(uint32_t slot) const { return slot_efds_[slot]; }

void SharedMemory::KeepOnlySlotEventFd(uint32_t slot) {
  for (uint32_t i = 0; i < sizes_.slot_count; ++i) {
    if (i == slot || slot_efds_[i] < 0) continue;
    close(slot_efds_[i]);
    slot_efds_[i] = -1;
  }
}

void* SharedMemory::CountersBytes(uint32_t slot, uint32_t stripe) const {
  return base_ + slots_off_ + slot_stride_ * slot + ring_bytes_ + size_t{stripe} * kCounterStripeBytes;
}

void SharedMemory::MarkCounterStripe(uint32_t slot, uint32_t stripe) const {
  std::atomic<uint64_t>& word = this->slot(slot).counter_stripes[stripe / 64];
  const uint64_t bit = uint64_t{1} << (stripe % 64);
  if ((word.load(std::memory_order_relaxed) & bit) == 0) word.fetch_or(bit, std::memory_order_release);
}

engine::Result<std::unique_ptr<SharedMemory>> CreateSharedMemory(const Config& config, uint32_t slot_count) {
  ShmSizes sizes;
  sizes.slot_count = slot_count;
  sizes.write_queue_bytes = config.write_queue_bytes / 8 * 8;
  engine::Status last;
  for (uint64_t max_keys : {256ull << 20, 64ull << 20, 16ull << 20}) {
    sizes.index_max_keys = max_keys;
    auto shm = SharedMemory::Create(sizes);
    if (shm.ok()) {
      if (max_keys != 256ull << 20) {
        KINGX_LOG_WARN("shared memory: the index is limited to %llu Mi keys (less address space was available)",
                       static_cast<unsigned long long>(max_keys >> 20));
      }
      return shm;
    }
    last = shm.status();
    if (!last.Is(engine::Code::kIOError)) break;  // not an mmap refusal: smaller will not help
  }
  return last;
}

void RecordBatch(WriterMetrics& stats, uint64_t ops, uint64_t bytes, uint64_t apply_us, uint64_t failed) {
  auto add = [](std::atomic<uint64_t>& a, uint64_t n) {
    a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  };
  add(stats.batches, 1);
  add(stats.records, ops);
  add(stats.bytes, bytes);
  add(stats.failed_records, failed);
  add(stats.batch_size_sum, ops);
  int b = 0;
  while (b < kBatchSizeBuckets - 1 && ops > (uint64_t{1} << b)) ++b;
  add(stats.batch_size_buckets[b], 1);
  add(stats.apply_us_sum, apply_us);
  add(stats.apply_count, 1);
  add(stats.apply_us_buckets[FsyncBucket(apply_us)], 1);
}

int FsyncBucket(uint64_t us) {
  int f = 0;
  while (f < kFsyncBuckets - 1 && us > kFsyncBucketUs[f]) ++f;
  return f;
}

void RecordSync(WriterMetrics& stats, uint64_t us) {
  stats.fsync_us_sum.fetch_add(us, std::memory_order_relaxed);
  stats.fsync_us_buckets[FsyncBucket(us)].fetch_add(1, std::memory_order_relaxed);
}

}  // namespace kingx
