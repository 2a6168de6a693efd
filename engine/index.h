// SharedIndex: the engine's hash index (key hash -> Location), placed in a
// memory region the caller provides so that several processes can share it.
//
// The master maps one region MAP_SHARED|MAP_ANONYMOUS|MAP_NORESERVE before it
// forks, calls Create() on it once, and every process then uses the same
// bytes (through the SharedIndex copied by fork, or one made with Attach()).
// Single-process tests may pass heap memory instead.
//
// Roles:
//  - ONE writer thread (in the writer process) mutates: Insert, Replace,
//    Remove, RemoveIf, Clear, Reserve, BeginBatch/EndBatch, LookupForWriter,
//    ForEach. Mutators are not thread-safe among themselves: if another thread
//    of the writer process (compaction) needs to mutate, the engine serializes
//    it with the writer thread.
//  - Any number of readers, in any process and any thread, call Lookup()
//    concurrently with the writer, without locks: a seqlock (a version in the
//    region header, odd while the writer is inside a write section) tells them
//    to retry; after a bounded number of retries they get kBusy. A reader never
//    crashes or loops forever on torn data.
//
// Keys are not stored. An entry is {hash, location}; Lookup returns every
// location stored under a 64-bit hash (its "candidates") and the caller reads
// each candidate's key on disk and compares. Distinct keys with the same full
// 64-bit hash therefore coexist as separate entries; at most kMaxCandidates
// entries may share one hash (Insert refuses the next one with kInvalidArgument;
// with a seeded 64-bit hash this is unreachable without memory corruption).
//
// Layout: a header (magic, layout version, seqlock version, table descriptor,
// IndexCounters) then an arena holding the one live table, Robin Hood linear
// probing with backward-shift deletion, capacity any integer >= kMinCapacity.
// The table grows x1.5 when an insert would pass 0.85 load: the new table is
// built in the arena while readers keep using the old one, published in a
// short write section, and the old table's pages are released
// (madvise MADV_REMOVE, or MADV_DONTNEED). RAM per live key stays <= 32 bytes
// (16 B per entry / 0.85 * 1.5 = 28.2 B right after a growth). The table never
// shrinks (Clear() returns to the initial capacity).
//
// A writer that dies inside a write section leaves the version odd: readers
// then return kBusy (bounded retries, never a hang) until the replacement
// writer calls Clear() (recovery always starts with it), which also repairs a
// table descriptor torn by a death during a growth.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "engine/location.h"
#include "engine/status.h"

namespace kingx::engine {

// What other processes need to know about the database, in the shared header.
// Plain atomics; each field names the only process(es) that store into it.
// Readers load them with memory_order_acquire (ready) or relaxed (the rest).
struct IndexCounters {
  // Writer: 1 once recovery finished and the index is complete; 0 before
  // (workers answer 503 while it is 0). Cleared by the writer before Clear().
  std::atomic<uint32_t> ready{0};
  // Writer: the database's hash seed (from the segment headers), stored before
  // ready is set. Readers compute KeyHash(seed, key) for Lookup.
  std::atomic<uint64_t> seed{0};
  // Writer: live keys, bytes of live records, bytes of dead (overwritten or
  // deleted) records, number of segment files.
  std::atomic<uint64_t> keys{0};
  std::atomic<uint64_t> live_bytes{0};
  std::atomic<uint64_t> dead_bytes{0};
  std::atomic<uint64_t> segments{0};
  // Writer: incremented (release) after a segment file is deleted; a reader
  // that sees a new value drops its cached mappings of deleted segments.
  std::atomic<uint64_t> segment_epoch{0};
  // Any process (writer and readers): records that failed a checksum.
  alignas(64) std::atomic<uint64_t> corruptions{0};
};

// One table entry: hash 0 = empty (KeyHash never returns 0).
struct IndexEntry {
  std::atomic<uint64_t> hash;
  std::atomic<uint64_t> loc;
};
static_assert(sizeof(IndexEntry) == 16);

// The locations stored under one hash, copied out of the index.
inline constexpr uint32_t kMaxCandidates = 16;
struct Candidates {
  uint32_t count = 0;
  Location locations[kMaxCandidates];
};

struct IndexRegionHeader;  // defined in index.cc

class SharedIndex {
 public:
  // Bytes of the region header; the table arena starts after it.
  static constexpr size_t kHeaderBytes = 4096;
  static constexpr uint64_t kMinCapacity = 16;
  // Load factor above which an insert grows the table (x1.5): an insert
  // grows first when size + 1 would exceed capacity * 85 / 100.
  static constexpr double kMaxLoad = 0.85;

  // Formats the region [base, base + bytes) (called once, by the master,
  // before fork). `base` must be 64-byte aligned (page-aligned for the page
  // release to work); the region must stay mapped as long as any SharedIndex
  // on it is used. initial_capacity is rounded up to kMinCapacity.
  // Errors: kInvalidArgument (misaligned base, region too small for the
  // header plus the initial table). The counters start at 0, ready = 0.
  static Result<SharedIndex> Create(void* base, size_t bytes, uint64_t initial_capacity);

  // A handle on a region formatted by Create (any process). Validates the
  // magic, layout version, region size and table descriptor.
  // Errors: kInvalidArgument (not formatted / other layout / other size).
  static Result<SharedIndex> Attach(void* base, size_t bytes);

  // Region size that lets the table grow, from initial_capacity, until it
  // holds max_keys keys (accounts for the old and new table coexisting
  // during a growth). Only virtual size: pages are touched as tables use them.
  static size_t RegionBytesFor(uint64_t max_keys, uint64_t initial_capacity = kMinCapacity);

  SharedIndex(SharedIndex&& other) noexcept;
  SharedIndex& operator=(SharedIndex&& other) noexcept;
  SharedIndex(const SharedIndex&) = delete;
  SharedIndex& operator=(const SharedIndex&) = delete;
  ~SharedIndex() = default;  // the region is the caller's

  // ---- any process, any thread ----

  // Copies into *out every location stored under `hash` (out->count may be
  // 0: not found is an OK status with no candidates). Lock-free; retries while
  // the writer is inside a write section or the table changed under it.
  // Errors: kBusy after 1000 spins and 50 sched_yield()s (writer busy or
  // dead mid-section: retry later); kCorruption if more than kMaxCandidates
  // entries hold `hash` (only after memory corruption). *out is unspecified on
  // error. Tombstoned locations are returned as stored (never present once
  // ready is set, see location.h).
  Status Lookup(uint64_t hash, Candidates* out) const;

  IndexCounters& counters() const;
  uint64_t size() const;        // entries in use (live keys + recovery tombstones)
  uint64_t capacity() const;    // entries of the current table
  size_t TableBytes() const;    // RAM of the current table (capacity * 16)

  // ---- writer thread only ----

  // Adds an entry (hash, loc); does not look for an existing entry of the same
  // key (the caller decides insert vs Replace after comparing keys on disk).
  // May grow the table first. Errors: kInvalidArgument (hash 0, or
  // kMaxCandidates entries already hold this hash), kNoSpace (the region cannot
  // hold the grown table: size the region with RegionBytesFor). On error the
  // index is unchanged.
  Status Insert(uint64_t hash, Location loc);

  // Points the entry (hash, old_loc) at new_loc with one atomic store (no write
  // section: readers see either location; allowed inside or outside a batch).
  // false if no such entry.
  bool Replace(uint64_t hash, Location old_loc, Location new_loc);

  // Removes the entry (hash, loc) (exact match, tombstone bit included).
  // false if no such entry.
  bool Remove(uint64_t hash, Location loc);

  // Removes every entry for which pred(hash, loc) is true; returns how many.
  // pred may be called more than once for one entry and must be pure.
  template <class Pred>
  uint64_t RemoveIf(Pred pred);

  // Calls fn(hash, loc) for every entry, in table order. fn must not mutate
  // the index.
  template <class Fn>
  void ForEach(Fn fn) const;

  // Lookup for the writer thread itself: no seqlock (nothing moves under it),
  // so it works inside a batch. Same results and errors as Lookup minus kBusy.
  Status LookupForWriter(uint64_t hash, Candidates* out) const;

  // Brackets many updates in one write section so readers see them at once
  // (group commit). Nestable. Readers retry (and may get kBusy) while a batch
  // is open, so keep it short: no I/O inside. If an Insert grows the table
  // during a batch, the updates made so far are published first (every state
  // readers can see is a consistent index).
  void BeginBatch();
  void EndBatch();

  // Grows the table now so that it holds `keys` keys without growing again
  // (recovery uses it when it knows the key count). kNoSpace as for Insert.
  Status Reserve(uint64_t keys);

  // Empties the index and returns to the initial capacity, releasing the
  // arena's pages; repairs a region left inconsistent by a writer that died
  // inside a write section. Counters are left alone (the engine resets them).
  // Must not be called inside a batch.
  void Clear();

 private:
  explicit SharedIndex(void* base, size_t bytes);

  IndexEntry* Table() const;
  uint64_t Capacity() const;
  void EnterSection();
  void LeaveSection();
  void EraseAt(uint64_t pos);  // inside a section; backward shift
  Status GrowTo(uint64_t new_capacity);

  IndexRegionHeader* header_ = nullptr;
  size_t bytes_ = 0;        // this process's idea of the region size (bounds every access)
  int batch_depth_ = 0;     // writer only
};

template <class Fn>
void SharedIndex::ForEach(Fn fn) const {
  IndexEntry* table = Table();
  const uint64_t cap = Capacity();
  for (uint64_t i = 0; i < cap; ++i) {
    const uint64_t h = table[i].hash.load(std::memory_order_relaxed);
    if (h != 0) fn(h, static_cast<Location>(table[i].loc.load(std::memory_order_relaxed)));
  }
}

template <class Pred>
uint64_t SharedIndex::RemoveIf(Pred pred) {
  IndexEntry* table = Table();
  const uint64_t cap = Capacity();
  uint64_t removed = 0;
  BeginBatch();
  // Backward shift moves later entries one step back, so re-examine entry i after
  // a removal; an entry that wraps from the start to the end is examined twice,
  // which a pure pred makes harmless. Bounded: each removal empties an entry.
  for (uint64_t i = 0; i < cap;) {
    const uint64_t h = table[i].hash.load(std::memory_order_relaxed);
    if (h != 0 && pred(h, static_cast<Location>(table[i].loc.load(std::memory_order_relaxed)))) {
      EraseAt(i);
      ++removed;
    } else {
      ++i;
    }
  }
  EndBatch();
  return removed;
}

}  // namespace kingx::engine
