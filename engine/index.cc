// SharedIndex: Robin Hood hash table in a shared region, read under a seqlock.
//
// Invariants (hold whenever the version is even):
//  - The live table is [base + table_offset, + capacity * 16), inside the
//    arena, 4096-aligned; every other arena byte is unused (released or stale).
//  - Robin Hood order: walking from an entry's home bucket, its probe distance
//    never exceeds that of the entry before it in the same run, so the entries of
//    one home bucket are contiguous and a lookup may stop at the first entry
//    whose distance is smaller than its own.
//  - size == number of non-empty entries <= MaxKeysFor(capacity).
//
// Seqlock protocol, without fences (GCC's ThreadSanitizer does not support
// atomic_thread_fence, and --single-process runs under TSan): the writer
// stores version+1 (odd), then stores entries and the table descriptor with
// release (each one orders the odd version before it), then version+2 with
// release. A reader loads the version, the descriptor and the entries with
// acquire (so its final version load cannot move before them) and reloads
// the version; equal and even => the copy is consistent. If the reader saw
// any store made inside a section, the acquire/release pair makes that
// section's odd version visible to its final load. On x86 these orders cost
// nothing; elsewhere they cost a little on the writer's stores.
// Everything a reader does between the two version loads is bounded and
// bounds-checked against its own idea of the region size, because torn data
// (or a table being overwritten after a growth) may be arbitrary.
#include "engine/index.h"

#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <new>
#include <utility>

namespace kingx::engine {

namespace {

constexpr uint64_t kMagic = 0x5844494b474e494bULL;  // "KINGKIDX" little-endian-ish
constexpr uint32_t kLayoutVersion = 1;
constexpr uint64_t kTableAlign = 4096;
constexpr int kSpinAttempts = 1000;
constexpr int kYieldAttempts = 50;

__extension__ typedef unsigned __int128 U128;

uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// Bytes the arena gives a table of `cap` entries.
uint64_t TableBytesFor(uint64_t cap) { return AlignUp(cap * sizeof(IndexEntry), kTableAlign); }

// Keys a table of `cap` entries holds before an insert grows it.
uint64_t MaxKeysFor(uint64_t cap) { return cap * 85 / 100; }

uint64_t Grown(uint64_t cap) { return cap + std::max<uint64_t>(cap / 2, 1); }

uint64_t HomeOf(uint64_t hash, uint64_t cap) {
  return static_cast<uint64_t>((static_cast<U128>(hash) * cap) >> 64);
}

uint64_t Distance(uint64_t pos, uint64_t home, uint64_t cap) {
  return pos >= home ? pos - home : pos + cap - home;
}

// Where the next table goes: at the arena start when it fits before the
// current table (only one table is live, so older ones are free), else right
// after the current table. Returns false when neither fits in the region.
bool PlaceTable(uint64_t cur_offset, uint64_t cur_bytes, uint64_t new_bytes, uint64_t region_bytes,
                uint64_t* new_offset) {
  const uint64_t start = SharedIndex::kHeaderBytes;
  if (start + new_bytes <= cur_offset) {
    *new_offset = start;
    return true;
  }
  const uint64_t after = cur_offset + cur_bytes;
  if (after + new_bytes <= region_bytes && after + new_bytes >= after) {
    *new_offset = after;
    return true;
  }
  return false;
}

void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Empties a table's entries with atomic stores: a reader holding a stale table
// descriptor may be reading these bytes (it will retry), and atomics keep that
// a benign race rather than undefined behaviour.
void ZeroEntries(IndexEntry* table, uint64_t cap) {
  for (uint64_t i = 0; i < cap; ++i) {
    table[i].hash.store(0, std::memory_order_release);
    table[i].loc.store(0, std::memory_order_release);
  }
}

// Robin Hood insert into `table` (writer only; caller handles the section).
void InsertInto(IndexEntry* table, uint64_t cap, uint64_t hash, uint64_t loc) {
  uint64_t pos = HomeOf(hash, cap);
  uint64_t dist = 0;
  for (uint64_t probe = 0; probe < cap; ++probe) {
    const uint64_t resident = table[pos].hash.load(std::memory_order_relaxed);
    if (resident == 0) {
      table[pos].loc.store(loc, std::memory_order_release);
      table[pos].hash.store(hash, std::memory_order_release);
      return;
    }
    const uint64_t resident_dist = Distance(pos, HomeOf(resident, cap), cap);
    if (resident_dist < dist) {  // the richer resident moves on, we take its place
      const uint64_t resident_loc = table[pos].loc.load(std::memory_order_relaxed);
      table[pos].hash.store(hash, std::memory_order_release);
      table[pos].loc.store(loc, std::memory_order_release);
      hash = resident;
      loc = resident_loc;
      dist = resident_dist;
    }
    pos = pos + 1 == cap ? 0 : pos + 1;
    ++dist;
  }
  assert(false && "InsertInto: table full (load factor invariant broken)");
}

// Copies the locations stored under `hash`. Safe on torn data: at most `cap`
// probes, every index < cap. Sets *overflow if more than kMaxCandidates match.
void Probe(const IndexEntry* table, uint64_t cap, uint64_t hash, Candidates* out, bool* overflow) {
  out->count = 0;
  *overflow = false;
  uint64_t pos = HomeOf(hash, cap);
  for (uint64_t probe = 0; probe < cap; ++probe) {
    const uint64_t resident = table[pos].hash.load(std::memory_order_acquire);
    if (resident == 0) return;
    if (Distance(pos, HomeOf(resident, cap), cap) < probe) return;
    if (resident == hash) {
      if (out->count == kMaxCandidates) {
        *overflow = true;
        return;
      }
      out->locations[out->count++] = table[pos].loc.load(std::memory_order_acquire);
    }
    pos = pos + 1 == cap ? 0 : pos + 1;
  }
}

// Gives the pages inside [addr, addr + len) back to the kernel. Shared memory
// needs MADV_REMOVE (DONTNEED only unmaps it from this process); private
// memory accepts DONTNEED. Failure only costs RAM, so it is ignored. A slow
// reader still probing the old table may fault a few of its pages back in
// (shared memory has no zero page); they stay until the arena reuses and
// releases that range again, or until Clear().
void ReleasePages(char* addr, uint64_t len) {
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = AlignUp(reinterpret_cast<uintptr_t>(addr), page);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(addr) + len) / page * page;
  if (begin >= end) return;
  void* p = reinterpret_cast<void*>(begin);
  if (madvise(p, end - begin, MADV_REMOVE) != 0) (void)madvise(p, end - begin, MADV_DONTNEED);
}

}  // namespace

// The region's first kHeaderBytes. Fields the readers poll (version,
// descriptor) share a cache line; counters that readers write live apart.
struct IndexRegionHeader {
  std::atomic<uint64_t> magic;
  std::atomic<uint32_t> layout_version;
  std::atomic<uint64_t> region_bytes;
  std::atomic<uint64_t> initial_capacity;
  alignas(64) std::atomic<uint64_t> version;  // seqlock: odd = writer inside a section
  std::atomic<uint64_t> table_offset;        // from the region base
  std::atomic<uint64_t> table_capacity;
  std::atomic<uint64_t> size;
  alignas(64) IndexCounters counters;
};
static_assert(sizeof(IndexRegionHeader) <= SharedIndex::kHeaderBytes);
static_assert(std::atomic<uint64_t>::is_always_lock_free, "cross-process atomics need lock-free u64");

SharedIndex::SharedIndex(void* base, size_t bytes)
    : header_(static_cast<IndexRegionHeader*>(base)), bytes_(bytes) {}

SharedIndex::SharedIndex(SharedIndex&& other) noexcept
    : header_(std::exchange(other.header_, nullptr)),
      bytes_(std::exchange(other.bytes_, 0)),
      batch_depth_(std::exchange(other.batch_depth_, 0)) {}

SharedIndex& SharedIndex::operator=(SharedIndex&& other) noexcept {
  header_ = std::exchange(other.header_, nullptr);
  bytes_ = std::exchange(other.bytes_, 0);
  batch_depth_ = std::exchange(other.batch_depth_, 0);
  return *this;
}

Result<SharedIndex> SharedIndex::Create(void* base, size_t bytes, uint64_t initial_capacity) {
  if (base == nullptr || reinterpret_cast<uintptr_t>(base) % 64 != 0) {
    return Status::InvalidArgument("index region must be 64-byte aligned");
  }
  const uint64_t cap = std::max(initial_capacity, kMinCapacity);
  if (cap > (uint64_t{1} << 56) || bytes < kHeaderBytes + TableBytesFor(cap)) {
    return Status::InvalidArgument("index region too small for its initial table");
  }
  auto* h = new (base) IndexRegionHeader{};
  h->layout_version.store(kLayoutVersion, std::memory_order_relaxed);
  h->region_bytes.store(bytes, std::memory_order_relaxed);
  h->initial_capacity.store(cap, std::memory_order_relaxed);
  h->version.store(0, std::memory_order_relaxed);
  h->table_offset.store(kHeaderBytes, std::memory_order_relaxed);
  h->table_capacity.store(cap, std::memory_order_relaxed);
  h->size.store(0, std::memory_order_relaxed);
  ZeroEntries(reinterpret_cast<IndexEntry*>(static_cast<char*>(base) + kHeaderBytes), cap);
  h->magic.store(kMagic, std::memory_order_release);
  return SharedIndex(base, bytes);
}

Result<SharedIndex> SharedIndex::Attach(void* base, size_t bytes) {
  if (base == nullptr || reinterpret_cast<uintptr_t>(base) % 64 != 0 || bytes < kHeaderBytes) {
    return Status::InvalidArgument("index region misaligned or smaller than its header");
  }
  auto* h = static_cast<IndexRegionHeader*>(base);
  if (h->magic.load(std::memory_order_acquire) != kMagic) {
    return Status::InvalidArgument("index region not formatted (bad magic)");
  }
  if (h->layout_version.load(std::memory_order_relaxed) != kLayoutVersion) {
    return Status::InvalidArgument("index region has another layout version");
  }
  if (h->region_bytes.load(std::memory_order_relaxed) != bytes) {
    return Status::InvalidArgument("index region size differs from the formatted size");
  }
  return SharedIndex(base, bytes);
}

size_t SharedIndex::RegionBytesFor(uint64_t max_keys, uint64_t initial_capacity) {
  uint64_t cap = std::max(initial_capacity, kMinCapacity);
  uint64_t offset = kHeaderBytes;
  uint64_t bytes = TableBytesFor(cap);
  uint64_t max_end = offset + bytes;
  while (MaxKeysFor(cap) < max_keys) {
    const uint64_t next = Grown(cap);
    const uint64_t next_bytes = TableBytesFor(next);
    offset = kHeaderBytes + next_bytes <= offset ? kHeaderBytes : offset + bytes;
    cap = next;
    bytes = next_bytes;
    max_end = std::max(max_end, offset + bytes);
  }
  // Reserve() may jump from any table straight to the final one, placed after
  // the current table: leave room for that too.
  return max_end + bytes;
}

IndexCounters& SharedIndex::counters() const { return header_->counters; }
uint64_t SharedIndex::size() const { return header_->size.load(std::memory_order_relaxed); }
uint64_t SharedIndex::capacity() const { return header_->table_capacity.load(std::memory_order_relaxed); }
size_t SharedIndex::TableBytes() const { return TableBytesFor(capacity()); }

IndexEntry* SharedIndex::Table() const {
  return reinterpret_cast<IndexEntry*>(reinterpret_cast<char*>(header_) +
                                      header_->table_offset.load(std::memory_order_relaxed));
}
uint64_t SharedIndex::Capacity() const { return header_->table_capacity.load(std::memory_order_relaxed); }

Status SharedIndex::Lookup(uint64_t hash, Candidates* out) const {
  for (int attempt = 0; attempt < kSpinAttempts + kYieldAttempts; ++attempt) {
    if (attempt > 0) {
      if (attempt < kSpinAttempts) {
        CpuRelax();
      } else {
        sched_yield();
      }
    }
    const uint64_t v1 = header_->version.load(std::memory_order_acquire);
    if (v1 & 1) continue;
    const uint64_t offset = header_->table_offset.load(std::memory_order_acquire);
    const uint64_t cap = header_->table_capacity.load(std::memory_order_acquire);
    // A torn descriptor could point anywhere: check it against our own size.
    const bool sane = offset >= kHeaderBytes && offset < bytes_ && offset % kTableAlign == 0 && cap >= 1 &&
                      cap <= (bytes_ - offset) / sizeof(IndexEntry);
    bool overflow = false;
    if (sane) {
      const auto* table = reinterpret_cast<const IndexEntry*>(reinterpret_cast<const char*>(header_) + offset);
      Probe(table, cap, hash, out, &overflow);
    }
    if (header_->version.load(std::memory_order_acquire) != v1) continue;
    if (!sane) return Status::Corruption("index table descriptor out of bounds");
    if (overflow) return Status::Corruption("more than kMaxCandidates index entries share one hash");
    return Status::OK();
  }
  return Status::Busy("index writer busy; retry the lookup");
}

Status SharedIndex::LookupForWriter(uint64_t hash, Candidates* out) const {
  bool overflow = false;
  Probe(Table(), Capacity(), hash, out, &overflow);
  if (overflow) return Status::Corruption("more than kMaxCandidates index entries share one hash");
  return Status::OK();
}

void SharedIndex::EnterSection() {
  if (batch_depth_++ > 0) return;
  const uint64_t v = header_->version.load(std::memory_order_relaxed);
  assert((v & 1) == 0);
  header_->version.store(v + 1, std::memory_order_relaxed);
}

void SharedIndex::LeaveSection() {
  assert(batch_depth_ > 0);
  if (--batch_depth_ > 0) return;
  const uint64_t v = header_->version.load(std::memory_order_relaxed);
  header_->version.store(v + 1, std::memory_order_release);
}

void SharedIndex::BeginBatch() { EnterSection(); }
void SharedIndex::EndBatch() { LeaveSection(); }

Status SharedIndex::GrowTo(uint64_t new_capacity) {
  const uint64_t old_offset = header_->table_offset.load(std::memory_order_relaxed);
  const uint64_t old_cap = Capacity();
  const uint64_t old_bytes = TableBytesFor(old_cap);
  if (new_capacity > (uint64_t{1} << 56)) return Status::NoSpace("index capacity limit reached");
  const uint64_t new_bytes = TableBytesFor(new_capacity);
  uint64_t new_offset = 0;
  if (!PlaceTable(old_offset, old_bytes, new_bytes, bytes_, &new_offset)) {
    return Status::NoSpace("index region full: size it with SharedIndex::RegionBytesFor");
  }
  char* base = reinterpret_cast<char*>(header_);
  auto* fresh = reinterpret_cast<IndexEntry*>(base + new_offset);
  ZeroEntries(fresh, new_capacity);

  // Rehash outside any section so readers keep using the old table meanwhile.
  // Inside a batch, publish what the batch did so far first.
  const int depth = batch_depth_;
  if (depth > 0) {
    batch_depth_ = 1;
    LeaveSection();
  }
  const IndexEntry* old = Table();
  for (uint64_t i = 0; i < old_cap; ++i) {
    const uint64_t h = old[i].hash.load(std::memory_order_relaxed);
    if (h != 0) InsertInto(fresh, new_capacity, h, old[i].loc.load(std::memory_order_relaxed));
  }
  EnterSection();
  header_->table_offset.store(new_offset, std::memory_order_release);
  header_->table_capacity.store(new_capacity, std::memory_order_release);
  if (depth > 0) {
    batch_depth_ = depth;  // the batch continues in this new section
  } else {
    LeaveSection();
  }
  // Readers still inside the old table read zeros once the pages go; the
  // version store above precedes the madvise system call (a full barrier on
  // this CPU, and the kernel's TLB shootdown reaches the readers' CPUs after
  // it), so such a reader's final version load sees the change and retries.
  ReleasePages(base + old_offset, old_bytes);
  return Status::OK();
}

Status SharedIndex::Reserve(uint64_t keys) {
  uint64_t cap = Capacity();
  const uint64_t old_cap = cap;
  while (MaxKeysFor(cap) < keys) cap = Grown(cap);
  return cap == old_cap ? Status::OK() : GrowTo(cap);
}

Status SharedIndex::Insert(uint64_t hash, Location loc) {
  if (hash == 0) return Status::InvalidArgument("index hash 0 is reserved for empty entries");
  Candidates existing;
  bool overflow = false;
  Probe(Table(), Capacity(), hash, &existing, &overflow);
  if (overflow || existing.count >= kMaxCandidates) {
    return Status::InvalidArgument("too many keys share one 64-bit hash");
  }
  const uint64_t n = size();
  if (n + 1 > MaxKeysFor(Capacity())) {
    Status s = GrowTo(Grown(Capacity()));
    if (!s.ok()) return s;
  }
  EnterSection();
  InsertInto(Table(), Capacity(), hash, loc);
  header_->size.store(n + 1, std::memory_order_relaxed);
  LeaveSection();
  return Status::OK();
}

bool SharedIndex::Replace(uint64_t hash, Location old_loc, Location new_loc) {
  IndexEntry* table = Table();
  const uint64_t cap = Capacity();
  uint64_t pos = HomeOf(hash, cap);
  for (uint64_t probe = 0; probe < cap; ++probe) {
    const uint64_t resident = table[pos].hash.load(std::memory_order_relaxed);
    if (resident == 0 || Distance(pos, HomeOf(resident, cap), cap) < probe) return false;
    if (resident == hash && table[pos].loc.load(std::memory_order_relaxed) == old_loc) {
      table[pos].loc.store(new_loc, std::memory_order_release);
      return true;
    }
    pos = pos + 1 == cap ? 0 : pos + 1;
  }
  return false;
}

bool SharedIndex::Remove(uint64_t hash, Location loc) {
  IndexEntry* table = Table();
  const uint64_t cap = Capacity();
  uint64_t pos = HomeOf(hash, cap);
  for (uint64_t probe = 0; probe < cap; ++probe) {
    const uint64_t resident = table[pos].hash.load(std::memory_order_relaxed);
    if (resident == 0 || Distance(pos, HomeOf(resident, cap), cap) < probe) return false;
    if (resident == hash && table[pos].loc.load(std::memory_order_relaxed) == loc) {
      EnterSection();
      EraseAt(pos);
      LeaveSection();
      return true;
    }
    pos = pos + 1 == cap ? 0 : pos + 1;
  }
  return false;
}

// Backward-shift deletion: pull the following entries of the run one step back
// until an empty entry or an entry already at its home bucket.
void SharedIndex::EraseAt(uint64_t pos) {
  assert(batch_depth_ > 0);
  IndexEntry* table = Table();
  const uint64_t cap = Capacity();
  for (uint64_t step = 0; step < cap; ++step) {
    const uint64_t next = pos + 1 == cap ? 0 : pos + 1;
    const uint64_t h = table[next].hash.load(std::memory_order_relaxed);
    if (h == 0 || HomeOf(h, cap) == next) break;
    table[pos].hash.store(h, std::memory_order_release);
    table[pos].loc.store(table[next].loc.load(std::memory_order_relaxed), std::memory_order_release);
    pos = next;
  }
  table[pos].hash.store(0, std::memory_order_release);
  table[pos].loc.store(0, std::memory_order_release);
  header_->size.store(size() - 1, std::memory_order_relaxed);
}

void SharedIndex::Clear() {
  assert(batch_depth_ == 0);
  // A writer that died inside a section left the version odd: stay odd.
  const uint64_t v = header_->version.load(std::memory_order_relaxed);
  const uint64_t odd = v | 1;
  header_->version.store(odd, std::memory_order_relaxed);
  const uint64_t cap = header_->initial_capacity.load(std::memory_order_relaxed);
  const uint64_t table_bytes = TableBytesFor(cap);
  char* base = reinterpret_cast<char*>(header_);
  header_->table_offset.store(kHeaderBytes, std::memory_order_release);
  header_->table_capacity.store(cap, std::memory_order_release);
  header_->size.store(0, std::memory_order_relaxed);
  ZeroEntries(reinterpret_cast<IndexEntry*>(base + kHeaderBytes), cap);
  ReleasePages(base + kHeaderBytes + table_bytes, bytes_ - kHeaderBytes - table_bytes);
  header_->version.store(odd + 1, std::memory_order_release);
}

}  // namespace kingx::engine
