// SharedIndex: Robin Hood hash table in a shared region, two areas, readers
// that never wait for the writer.
//
// Invariants of a table (the published one whenever no mutation is under
// way; see below for what holds in between):
//  - A table is [base + offset, + capacity * 16) inside one area, 4096-aligned.
//  - Robin Hood order: for every entry X at position p with home h, every
//    position q in [h, p) holds an entry whose probe distance is >= q - h. A
//    lookup may therefore stop at an empty entry or at the first entry whose
//    distance is smaller than its own probe count.
//  - size == number of non-empty entries <= MaxKeysFor(capacity).
//
// Mutations of the published table, and why readers need not wait for them:
//  - Insert of N into the run [p0, pk) (p0 = where N belongs, pk = the first
//    empty entry after it): copy pk-1 into pk, pk-2 into pk-1, ..., p0 into
//    p0+1, then write N at p0. Frozen after any copy, positions up to j hold
//    the old table and positions after j the new one, with the entry at j
//    present twice: every entry is present and the order above holds (each
//    moved entry's distance grew by one, as did its predecessors'). A reader
//    walking forward while this happens sees an old prefix and a new suffix
//    (the copies move backwards, against it), which is one of those frozen
//    states; entries only move forward, so none can jump behind it.
//  - Replace: one atomic store of the location.
//  - Delete at p: copy p+1 into p, p+2 into p+1, ... then empty the last
//    entry of the run. Frozen at any point, one entry is present twice and the
//    order holds. But the copies move forward, with a reader, which could see
//    an entry's old position after it left and its new one before it arrived:
//    each copy is a "step" that bumps the change counter first.
//  - Growth: the new table is filled while readers use the old one, then
//    the descriptor (offset and capacity packed in one word) is stored, the
//    change counter bumped, and only then are the old pages released.
//  - PublishRebuild: the seed of the new area, then the descriptor, then the
//    change counter, then the old area's pages.
// Within one entry, hash and location are two words that a reader cannot load
// at once. Filling an empty entry stores the location, then the hash.
// Overwriting an occupied one stores kChangingHash, the location, then the
// hash. Emptying one stores hash 0 (the location stays). A reader loads the
// hash; skips a changing entry without stopping (its old and its new content
// each sit in a neighbouring entry meanwhile, so both frozen states it stands
// between agree with skipping it); on a match loads the location and the hash
// again, and probes again if the hash changed in between. So a candidate is
// always a location that was stored under that hash.
//
// Memory order, without fences (GCC's ThreadSanitizer does not support
// atomic_thread_fence, and --single-process runs under TSan): the writer
// stores the counter (relaxed), then entries and descriptors with release (each
// orders the counter before it). A reader loads the counter, the descriptor
// and the entries with acquire and reloads the counter: if it saw any store of
// a step, the acquire/release pair makes that step's counter visible to its
// final load. On x86 these orders cost nothing.
// Everything a reader does between the two counter loads is bounded and
// bounds-checked against its own idea of the region size, because a stale
// descriptor may point at a table being overwritten (it will retry).
#include "engine/index.h"

#include <sched.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <new>
#include <utility>

#include "engine/hash.h"
#include "engine/kill_point.h"

namespace kingx::engine {

namespace {

constexpr uint64_t kMagic = 0x5844494b474e494bULL;  // "KINGKIDX" little-endian-ish
constexpr uint32_t kLayoutVersion = 4;
constexpr uint64_t kTableAlign = 4096;
constexpr uint64_t kMaxRegionBytes = uint64_t{1} << 44;  // descriptor packs offset / 4096 in 32 bits
constexpr int kSpinAttempts = 64;

__extension__ typedef unsigned __int128 U128;

uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// Bytes an area gives a table of `cap` entries.
uint64_t TableBytesFor(uint64_t cap) { return AlignUp(cap * sizeof(IndexEntry), kTableAlign); }

// Keys a table of `cap` entries holds before an insert grows it.
uint64_t MaxKeysFor(uint64_t cap) { return cap * 85 / 100; }

uint64_t Grown(uint64_t cap) { return cap + std::max<uint64_t>(cap / 2, 1); }

// Smallest capacity reached from `cap` by growth steps that holds `keys`.
uint64_t CapacityFor(uint64_t cap, uint64_t keys) {
  while (MaxKeysFor(cap) < keys && cap <= SharedIndex::kMaxCapacity) cap = Grown(cap);
  return cap;
}

uint64_t HomeOf(uint64_t hash, uint64_t cap) {
  return static_cast<uint64_t>((static_cast<U128>(hash) * cap) >> 64);
}

uint64_t Distance(uint64_t pos, uint64_t home, uint64_t cap) {
  return pos >= home ? pos - home : pos + cap - home;
}

uint64_t Next(uint64_t pos, uint64_t cap) { return pos + 1 == cap ? 0 : pos + 1; }
uint64_t Prev(uint64_t pos, uint64_t cap) { return pos == 0 ? cap - 1 : pos - 1; }

// A table descriptor in one word: offset / 4096 (low 32 bits), capacity.
uint64_t Pack(uint64_t offset, uint64_t cap) { return (offset / kTableAlign) | (cap << 32); }
uint64_t OffsetOf(uint64_t desc) { return (desc & 0xFFFFFFFFu) * kTableAlign; }
uint64_t CapOf(uint64_t desc) { return desc >> 32; }

// Area geometry: two equal areas after the header.
uint64_t AreaBytesOf(uint64_t region_bytes) {
  return (region_bytes - SharedIndex::kHeaderBytes) / 2 / kTableAlign * kTableAlign;
}
uint64_t AreaStart(uint64_t area, uint64_t area_bytes) { return SharedIndex::kHeaderBytes + area * area_bytes; }
uint64_t AreaOf(uint64_t offset, uint64_t area_bytes) {
  return offset >= SharedIndex::kHeaderBytes + area_bytes ? 1 : 0;
}

// Where the next table goes inside the area [start, end) that holds the
// current table: at the area start when it fits before the current table
// (only one table of an area is live), else right after the current table.
// false when neither fits.
bool PlaceTable(uint64_t start, uint64_t end, uint64_t cur_offset, uint64_t cur_bytes, uint64_t new_bytes,
                uint64_t* new_offset) {
  if (start + new_bytes <= cur_offset) {
    *new_offset = start;
    return true;
  }
  const uint64_t after = cur_offset + cur_bytes;
  if (after + new_bytes <= end && after + new_bytes >= after) {
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

uint64_t MonotonicMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
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

// Entry stores in the orders the header comment relies on.
void FillEntry(IndexEntry& s, uint64_t hash, uint64_t loc) {
  if (s.hash.load(std::memory_order_relaxed) != kEmptyHash) s.hash.store(kChangingHash, std::memory_order_release);
  s.loc.store(loc, std::memory_order_release);
  s.hash.store(hash, std::memory_order_release);
}
void EmptyEntry(IndexEntry& s) { s.hash.store(kEmptyHash, std::memory_order_release); }
void CopyEntry(IndexEntry& to, const IndexEntry& from) {
  FillEntry(to, from.hash.load(std::memory_order_relaxed), from.loc.load(std::memory_order_relaxed));
}

// Robin Hood insert into `table` by shifting the run right from its far end
// (writer only). `visible`: the table is published (a kill point per store,
// for the crash tests of frozen states).
void InsertInto(IndexEntry* table, uint64_t cap, uint64_t hash, uint64_t loc, bool visible) {
  uint64_t pos = HomeOf(hash, cap);
  uint64_t dist = 0;
  // Bounded by cap: the load factor invariant guarantees an empty entry.
  for (uint64_t probe = 0; probe < cap; ++probe) {
    const uint64_t resident = table[pos].hash.load(std::memory_order_relaxed);
    if (resident == 0) {
      FillEntry(table[pos], hash, loc);
      return;
    }
    if (Distance(pos, HomeOf(resident, cap), cap) < dist) break;  // the richer resident moves on
    pos = Next(pos, cap);
    ++dist;
  }
  const uint64_t p0 = pos;
  uint64_t end = Next(p0, cap);
  for (uint64_t n = 0; n < cap && table[end].hash.load(std::memory_order_relaxed) != 0; ++n) end = Next(end, cap);
  assert(table[end].hash.load(std::memory_order_relaxed) == 0 && "InsertInto: table full");
  for (uint64_t q = end; q != p0; q = Prev(q, cap)) {
    if (visible) KINGX_KILL_POINT("index.step");
    CopyEntry(table[q], table[Prev(q, cap)]);
  }
  if (visible) KINGX_KILL_POINT("index.step");
  FillEntry(table[p0], hash, loc);
}

// What a probe found.
enum class ProbeResult { kDone, kOverflow, kEntryChanged };

// Copies the locations stored under `hash`. Safe on torn data: at most `cap`
// probes, every index < cap. An entry seen twice (a move under way) is kept
// once. kOverflow if more than kMaxCandidates distinct locations match;
// kEntryChanged if a matching entry changed while it was read (probe again).
// *at (if given) is the entry of the last candidate copied.
ProbeResult Probe(const IndexEntry* table, uint64_t cap, uint64_t hash, Candidates* out, uint64_t* at = nullptr) {
  out->count = 0;
  uint64_t pos = HomeOf(hash, cap);
  for (uint64_t probe = 0; probe < cap; ++probe, pos = Next(pos, cap)) {
    const uint64_t resident = table[pos].hash.load(std::memory_order_acquire);
    if (resident == kEmptyHash) return ProbeResult::kDone;
    if (resident == kChangingHash) continue;
    if (Distance(pos, HomeOf(resident, cap), cap) < probe) return ProbeResult::kDone;
    if (resident == hash) {
      const Location loc = table[pos].loc.load(std::memory_order_acquire);
      if (table[pos].hash.load(std::memory_order_acquire) != resident) return ProbeResult::kEntryChanged;
      bool dup = false;
      for (uint32_t i = 0; i < out->count && !dup; ++i) dup = out->locations[i] == loc;
      if (!dup) {
        if (out->count == kMaxCandidates) return ProbeResult::kOverflow;
        out->locations[out->count++] = loc;
        if (at != nullptr) *at = pos;
      }
    }
  }
  return ProbeResult::kDone;
}

// Gives the pages inside [addr, addr + len) back to the kernel; true when
// they now read as zeros. Shared memory needs MADV_REMOVE (DONTNEED only
// unmaps it from this process); private memory accepts DONTNEED. A slow
// reader still probing a released table may fault a few of its pages back in
// (shared memory has no zero page); they stay until that range is released
// again.
bool ReleasePages(char* addr, uint64_t len) {
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = AlignUp(reinterpret_cast<uintptr_t>(addr), page);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(addr) + len) / page * page;
  if (begin >= end) return true;
  void* p = reinterpret_cast<void*>(begin);
  if (madvise(p, end - begin, MADV_REMOVE) == 0) return true;
  // DONTNEED zero-fills private anonymous memory only; for anything else the
  // caller zeroes what it will use.
  (void)madvise(p, end - begin, MADV_DONTNEED);
  return false;
}


// Asks for transparent huge pages over the page-aligned part of [addr, addr +
// len). Lookups land on random entries of a table of tens of megabytes, so on
// 4 KiB pages nearly every one also misses the TLB; on 2 MiB pages a whole
// table is a few dozen TLB entries. The kernel grants them where its policy
// allows (shared memory: transparent_hugepage/shmem_enabled "advise",
// "within_size" or "always"); anywhere else the advice is kept or refused and
// changes nothing, so the result is ignored.
void AdviseHugePages(char* addr, uint64_t len) {
#ifdef MADV_HUGEPAGE
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = AlignUp(reinterpret_cast<uintptr_t>(addr), page);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(addr) + len) / page * page;
  if (begin < end) (void)madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)addr;
  (void)len;
#endif
}
}  // namespace

// The region's first kHeaderBytes. Fields the readers poll (counter,
// descriptor, seeds) share a cache line; the writer's own state and the
// counters that readers write live apart.
struct IndexRegionHeader {
  std::atomic<uint64_t> magic;
  std::atomic<uint32_t> layout_version;
  std::atomic<uint64_t> region_bytes;
  std::atomic<uint64_t> initial_capacity;
  alignas(64) std::atomic<uint64_t> changes;  // bumped before each reader-unsafe step
  std::atomic<uint64_t> view;                 // the published table (Pack)
  std::atomic<uint64_t> seed[2];              // the seed of each area's table
  // Writer only (shared so that a later writer process takes over):
  alignas(64) std::atomic<uint64_t> work;     // the table the mutators use (== view unless rebuilding)
  std::atomic<uint64_t> size;                 // entries in use in `work`
  alignas(64) IndexCounters counters;
};
static_assert(sizeof(IndexRegionHeader) <= SharedIndex::kHeaderBytes);
static_assert(std::atomic<uint64_t>::is_always_lock_free, "cross-process atomics need lock-free u64");

SharedIndex::SharedIndex(void* base, size_t bytes)
    : header_(static_cast<IndexRegionHeader*>(base)), bytes_(bytes) {}

SharedIndex::SharedIndex(SharedIndex&& other) noexcept
    : header_(std::exchange(other.header_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

SharedIndex& SharedIndex::operator=(SharedIndex&& other) noexcept {
  header_ = std::exchange(other.header_, nullptr);
  bytes_ = std::exchange(other.bytes_, 0);
  return *this;
}

Result<SharedIndex> SharedIndex::Create(void* base, size_t bytes, uint64_t initial_capacity) {
  if (base == nullptr || reinterpret_cast<uintptr_t>(base) % 64 != 0) {
    return Status::InvalidArgument("index region must be 64-byte aligned");
  }
  const uint64_t cap = std::max(initial_capacity, kMinCapacity);
  if (cap > kMaxCapacity || bytes < kHeaderBytes || bytes > kMaxRegionBytes ||
      AreaBytesOf(bytes) < TableBytesFor(cap)) {
    return Status::InvalidArgument("index region too small for its initial table, or larger than 16 TiB");
  }
  auto* h = new (base) IndexRegionHeader{};
  h->layout_version.store(kLayoutVersion, std::memory_order_relaxed);
  h->region_bytes.store(bytes, std::memory_order_relaxed);
  h->initial_capacity.store(cap, std::memory_order_relaxed);
  h->changes.store(0, std::memory_order_relaxed);
  const uint64_t desc = Pack(kHeaderBytes, cap);
  h->view.store(desc, std::memory_order_relaxed);
  h->work.store(desc, std::memory_order_relaxed);
  h->size.store(0, std::memory_order_relaxed);
  // Before the first table is touched: pages faulted in earlier stay small.
  AdviseHugePages(static_cast<char*>(base) + kHeaderBytes, bytes - kHeaderBytes);
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
  for (uint64_t desc : {h->view.load(std::memory_order_acquire), h->work.load(std::memory_order_relaxed)}) {
    if (OffsetOf(desc) < kHeaderBytes || CapOf(desc) == 0 ||
        OffsetOf(desc) + CapOf(desc) * sizeof(IndexEntry) > bytes) {
      return Status::InvalidArgument("index region table descriptor out of bounds");
    }
  }
  return SharedIndex(base, bytes);
}

size_t SharedIndex::RegionBytesFor(uint64_t max_keys, uint64_t initial_capacity) {
  uint64_t cap = std::max(initial_capacity, kMinCapacity);
  uint64_t offset = 0;  // inside one area
  uint64_t bytes = TableBytesFor(cap);
  uint64_t max_end = offset + bytes;
  while (MaxKeysFor(cap) < max_keys && cap <= kMaxCapacity) {
    const uint64_t next = Grown(cap);
    const uint64_t next_bytes = TableBytesFor(next);
    offset = next_bytes <= offset ? 0 : offset + bytes;
    cap = next;
    bytes = next_bytes;
    max_end = std::max(max_end, offset + bytes);
  }
  // Reserve() and BeginRebuild() may jump from any table straight to the
  // final one, placed after the current table: leave room for that too.
  const uint64_t area = AlignUp(max_end + bytes, kTableAlign);
  return kHeaderBytes + 2 * area;
}

IndexCounters& SharedIndex::counters() const { return header_->counters; }
uint64_t SharedIndex::size() const { return header_->size.load(std::memory_order_relaxed); }
uint64_t SharedIndex::capacity() const { return Capacity(); }
size_t SharedIndex::TableBytes() const { return TableBytesFor(capacity()); }

uint64_t SharedIndex::seed() const {
  const uint64_t view = header_->view.load(std::memory_order_acquire);
  const uint64_t area_bytes = AreaBytesOf(bytes_);
  return header_->seed[AreaOf(OffsetOf(view), area_bytes)].load(std::memory_order_acquire);
}

bool SharedIndex::rebuilding() const {
  return header_->work.load(std::memory_order_relaxed) != header_->view.load(std::memory_order_relaxed);
}

IndexEntry* SharedIndex::Table() const {
  return reinterpret_cast<IndexEntry*>(reinterpret_cast<char*>(header_) +
                                      OffsetOf(header_->work.load(std::memory_order_relaxed)));
}
uint64_t SharedIndex::Capacity() const { return CapOf(header_->work.load(std::memory_order_relaxed)); }
bool SharedIndex::Visible() const { return !rebuilding(); }

void SharedIndex::Step() const {
  KINGX_KILL_POINT("index.step");
  header_->changes.store(header_->changes.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

// The probe loop shared by Lookup and LookupKey (key != nullptr: hash it with
// the seed of the table being probed). Retries while the change counter
// moves under the probe, with growing politeness, for at most
// kLookupPatienceMs.
Status SharedIndex::ProbeFor(uint64_t hash, const std::string_view* key, Candidates* out, KeyProbe* probe) const {
  const uint64_t area_bytes = AreaBytesOf(bytes_);
  uint64_t hashed_seed = 0;
  bool hashed = false;
  if (probe != nullptr && probe->hash != 0) {
    hash = probe->hash;
    hashed_seed = probe->seed;
    hashed = true;
  }
  uint64_t at = 0;
  uint64_t started_ms = 0;
  int overflows = 0;
  for (uint64_t attempt = 0;; ++attempt) {
    if (attempt > 0) {
      if (attempt < kSpinAttempts) {
        CpuRelax();
      } else {
        sched_yield();
        if (attempt % 64 == 0) {
          const uint64_t now = MonotonicMs();
          if (started_ms == 0) started_ms = now;
          else if (now - started_ms >= static_cast<uint64_t>(kLookupPatienceMs))
            return Status::Busy("the index kept changing under the lookup; retry later");
        }
      }
    }
    const uint64_t v1 = header_->changes.load(std::memory_order_acquire);
    const uint64_t desc = header_->view.load(std::memory_order_acquire);
    const uint64_t offset = OffsetOf(desc);
    const uint64_t cap = CapOf(desc);
    if (key != nullptr) {
      const uint64_t seed = header_->seed[AreaOf(offset, area_bytes)].load(std::memory_order_acquire);
      if (seed != hashed_seed || !hashed) {
        hash = KeyHash(seed, *key);
        hashed_seed = seed;
        hashed = true;
      }
    }
    // A stale or damaged descriptor could point anywhere: check it against our own size.
    const bool sane = offset >= kHeaderBytes && offset < bytes_ && cap >= 1 &&
                      cap <= (bytes_ - offset) / sizeof(IndexEntry);
    ProbeResult result = ProbeResult::kDone;
    if (sane) {
      const auto* table = reinterpret_cast<const IndexEntry*>(reinterpret_cast<const char*>(header_) + offset);
      result = Probe(table, cap, hash, out, &at);
    }
    if (header_->changes.load(std::memory_order_acquire) != v1 || result == ProbeResult::kEntryChanged) continue;
    const bool overflow = result == ProbeResult::kOverflow;
    if (!sane) return Status::Corruption("index table descriptor out of bounds");
    // A probe that collected the old and new locations of entries an insert
    // shifted while replaces overtook it can overflow without any damage:
    // only an overflow that repeats is one.
    if (overflow && ++overflows < 3) continue;
    if (overflow) return Status::Corruption("more than kMaxCandidates index entries share one hash");
    if (probe != nullptr) {
      *probe = KeyProbe{};
      probe->seed = hashed_seed;
      probe->hash = hash;
      if (out->count == 1 && !IsTombstone(out->locations[0])) {
        probe->view = desc;
        probe->changes = v1;
        probe->pos = at;
        probe->loc = out->locations[0];
      }
    }
    return Status::OK();
  }
}

// An entry that still holds (hash, loc), read as a probe reads it, between
// two loads of the change counter that agree with the one the candidate was
// found under, in the table it was found in: every step since would have
// moved the counter, and a Replace or an insert's shift would have changed
// the entry's location (locations are unique), so the candidate is where a
// probe now would find it. pos < cap: the descriptor was checked when found.
bool SharedIndex::StillFound(const KeyProbe& probe) const {
  if (probe.view == 0) return false;
  if (header_->changes.load(std::memory_order_acquire) != probe.changes) return false;
  if (header_->view.load(std::memory_order_acquire) != probe.view) return false;
  const auto* table = reinterpret_cast<const IndexEntry*>(reinterpret_cast<const char*>(header_) +
                                                          OffsetOf(probe.view));
  const IndexEntry& e = table[probe.pos];
  if (e.hash.load(std::memory_order_acquire) != probe.hash) return false;
  if (e.loc.load(std::memory_order_acquire) != probe.loc) return false;
  if (e.hash.load(std::memory_order_acquire) != probe.hash) return false;
  return header_->changes.load(std::memory_order_acquire) == probe.changes;
}

Status SharedIndex::Lookup(uint64_t hash, Candidates* out) const { return ProbeFor(hash, nullptr, out, nullptr); }

// The prefetches read the descriptor once, without the change counter: a
// stale table only makes them useless, and every probe checks for itself.
// Bounds as in ProbeFor, so no address outside the region is named.
const IndexEntry* SharedIndex::TableToPrefetch(uint64_t* offset, uint64_t* cap) const {
  const uint64_t desc = header_->view.load(std::memory_order_acquire);
  *offset = OffsetOf(desc);
  *cap = CapOf(desc);
  if (*offset < kHeaderBytes || *offset >= bytes_ || *cap < 1 || *cap > (bytes_ - *offset) / sizeof(IndexEntry)) {
    return nullptr;
  }
  return reinterpret_cast<const IndexEntry*>(reinterpret_cast<const char*>(header_) + *offset);
}

Status SharedIndex::LookupBatch(std::span<const uint64_t> hashes, std::span<Candidates> out) const {
  assert(hashes.size() == out.size());
  uint64_t offset = 0, cap = 0;
  if (const IndexEntry* table = TableToPrefetch(&offset, &cap)) {
    for (uint64_t h : hashes) __builtin_prefetch(table + HomeOf(h, cap), 0, 3);
  }
  for (size_t i = 0; i < hashes.size(); ++i) {
    if (Status s = ProbeFor(hashes[i], nullptr, &out[i], nullptr); !s.ok()) return s;
  }
  return Status::OK();
}

Status SharedIndex::LookupKey(std::string_view key, Candidates* out) const {
  return ProbeFor(0, &key, out, nullptr);
}

Status SharedIndex::LookupKey(std::string_view key, Candidates* out, KeyProbe* probe) const {
  return ProbeFor(0, &key, out, probe);
}

Status SharedIndex::LookupForWriter(uint64_t hash, Candidates* out) const {
  if (Probe(Table(), Capacity(), hash, out) == ProbeResult::kOverflow) {
    return Status::Corruption("more than kMaxCandidates index entries share one hash");
  }
  return Status::OK();
}

void SharedIndex::PrefetchKey(std::string_view key) const {
  KeyProbe probe;
  PrefetchKey(key, &probe);
}

void SharedIndex::PrefetchKey(std::string_view key, KeyProbe* probe) const {
  *probe = KeyProbe{};
  uint64_t offset = 0, cap = 0;
  const IndexEntry* table = TableToPrefetch(&offset, &cap);
  if (table == nullptr) return;
  probe->seed = header_->seed[AreaOf(offset, AreaBytesOf(bytes_))].load(std::memory_order_acquire);
  probe->hash = KeyHash(probe->seed, key);
  __builtin_prefetch(table + HomeOf(probe->hash, cap), 0, 3);
}

void SharedIndex::PrefetchForWriter(uint64_t hash) const {
  __builtin_prefetch(Table() + HomeOf(hash, Capacity()), 0, 3);
}

Status SharedIndex::GrowTo(uint64_t new_capacity) {
  const uint64_t work = header_->work.load(std::memory_order_relaxed);
  const uint64_t old_offset = OffsetOf(work);
  const uint64_t old_cap = CapOf(work);
  const uint64_t old_bytes = TableBytesFor(old_cap);
  if (new_capacity > kMaxCapacity) return Status::NoSpace("index capacity limit reached");
  const uint64_t new_bytes = TableBytesFor(new_capacity);
  const uint64_t area_bytes = AreaBytesOf(bytes_);
  const uint64_t area = AreaOf(old_offset, area_bytes);
  uint64_t new_offset = 0;
  if (!PlaceTable(AreaStart(area, area_bytes), AreaStart(area, area_bytes) + area_bytes, old_offset, old_bytes,
                  new_bytes, &new_offset)) {
    return Status::NoSpace("index region full: size it with SharedIndex::RegionBytesFor");
  }
  char* base = reinterpret_cast<char*>(header_);
  auto* fresh = reinterpret_cast<IndexEntry*>(base + new_offset);
  ZeroEntries(fresh, new_capacity);

  // Rehash while readers keep using the old table.
  const IndexEntry* old = Table();
  for (uint64_t i = 0; i < old_cap; ++i) {
    const uint64_t h = old[i].hash.load(std::memory_order_relaxed);
    if (h > kChangingHash) InsertInto(fresh, new_capacity, h, old[i].loc.load(std::memory_order_relaxed), false);
  }
  const bool visible = Visible();
  const uint64_t desc = Pack(new_offset, new_capacity);
  header_->work.store(desc, std::memory_order_release);
  if (visible) {
    header_->view.store(desc, std::memory_order_release);
    // Readers that may still probe the old table see this before its pages
    // go: the store precedes the madvise system call (a full barrier on this
    // CPU, and the kernel's TLB shootdown reaches the readers' CPUs after
    // it), so such a reader's final counter load sees the change and retries.
    Step();
  }
  ReleasePages(base + old_offset, old_bytes);
  counters().growths.fetch_add(1, std::memory_order_relaxed);
  return Status::OK();
}

Status SharedIndex::Reserve(uint64_t keys) {
  const uint64_t old_cap = Capacity();
  const uint64_t cap = CapacityFor(old_cap, keys);
  return cap == old_cap ? Status::OK() : GrowTo(cap);
}

Status SharedIndex::Insert(uint64_t hash, Location loc) {
  if (hash == kEmptyHash || hash == kChangingHash) {
    return Status::InvalidArgument("index hashes 0 and 1 are reserved for empty and changing entries");
  }
  Candidates existing;
  if (Probe(Table(), Capacity(), hash, &existing) == ProbeResult::kOverflow) {
    return Status::InvalidArgument("too many keys share one 64-bit hash");
  }
  return Insert(hash, loc, existing);
}

Status SharedIndex::Insert(uint64_t hash, Location loc, const Candidates& known) {
  if (hash == kEmptyHash || hash == kChangingHash) {
    return Status::InvalidArgument("index hashes 0 and 1 are reserved for empty and changing entries");
  }
  if (known.count >= kMaxCandidates) return Status::InvalidArgument("too many keys share one 64-bit hash");
  const uint64_t n = size();
  if (n + 1 > MaxKeysFor(Capacity())) {
    Status s = GrowTo(Grown(Capacity()));
    if (!s.ok()) return s;
  }
  InsertInto(Table(), Capacity(), hash, loc, Visible());
  header_->size.store(n + 1, std::memory_order_relaxed);
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
    pos = Next(pos, cap);
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
      EraseAt(pos);
      return true;
    }
    pos = Next(pos, cap);
  }
  return false;
}

// Backward-shift deletion: pull the following entries of the run one step back
// until an empty entry or an entry already at its home bucket, then empty the
// last one. On the published table each store is a step (see the top).
void SharedIndex::EraseAt(uint64_t pos) {
  IndexEntry* table = Table();
  const uint64_t cap = Capacity();
  const bool visible = Visible();
  for (uint64_t step = 0; step < cap; ++step) {
    const uint64_t next = Next(pos, cap);
    const uint64_t h = table[next].hash.load(std::memory_order_relaxed);
    if (h == 0 || HomeOf(h, cap) == next) break;
    if (visible) Step();
    FillEntry(table[pos], h, table[next].loc.load(std::memory_order_relaxed));
    pos = next;
  }
  if (visible) Step();
  EmptyEntry(table[pos]);
  header_->size.store(size() - 1, std::memory_order_relaxed);
}

Status SharedIndex::BeginRebuild(uint64_t expected_keys) {
  const uint64_t area_bytes = AreaBytesOf(bytes_);
  const uint64_t view = header_->view.load(std::memory_order_relaxed);
  const uint64_t other = 1 - AreaOf(OffsetOf(view), area_bytes);
  const uint64_t cap = CapacityFor(header_->initial_capacity.load(std::memory_order_relaxed), expected_keys);
  if (cap > kMaxCapacity || TableBytesFor(cap) > area_bytes) {
    return Status::NoSpace("index region cannot hold a table for " + std::to_string(expected_keys) + " keys");
  }
  char* base = reinterpret_cast<char*>(header_);
  const uint64_t start = AreaStart(other, area_bytes);
  // The other area may hold an abandoned rebuild, released tables, or pages a
  // stale reader faulted back in: give it all back. Readers of the published
  // table never look there; a stale one retries (the counter moved since).
  header_->work.store(view, std::memory_order_relaxed);  // not rebuilding while the area is reset
  if (!ReleasePages(base + start, area_bytes)) {
    ZeroEntries(reinterpret_cast<IndexEntry*>(base + start), cap);
  }
#ifdef MADV_POPULATE_WRITE
  // The replay touches every page of the table (keys hash uniformly); a
  // refusal (an older kernel, no memory yet) leaves them to fault in one by one.
  (void)madvise(base + start, TableBytesFor(cap), MADV_POPULATE_WRITE);
#endif
  header_->size.store(0, std::memory_order_relaxed);
  header_->work.store(Pack(start, cap), std::memory_order_release);
  return Status::OK();
}

void SharedIndex::PublishRebuild(uint64_t seed) {
  assert(rebuilding());
  const uint64_t area_bytes = AreaBytesOf(bytes_);
  const uint64_t work = header_->work.load(std::memory_order_relaxed);
  const uint64_t old_view = header_->view.load(std::memory_order_relaxed);
  header_->seed[AreaOf(OffsetOf(work), area_bytes)].store(seed, std::memory_order_release);
  header_->view.store(work, std::memory_order_release);
  Step();  // before the old area's pages go (see GrowTo)
  const uint64_t old_area = AreaOf(OffsetOf(old_view), area_bytes);
  ReleasePages(reinterpret_cast<char*>(header_) + AreaStart(old_area, area_bytes), area_bytes);
  header_->counters.seed.store(seed, std::memory_order_relaxed);
}

void SharedIndex::Clear() {
  const uint64_t seed_now = seed();
  Status s = BeginRebuild(0);
  assert(s.ok());  // Create guarantees room for the initial table in each area
  (void)s;
  PublishRebuild(seed_now);
}

}  // namespace kingx::engine
