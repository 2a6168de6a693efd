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
//    Remove, RemoveIf, Reserve, BeginRebuild/PublishRebuild, Clear,
//    LookupForWriter, ForEach. Mutators are not thread-safe among themselves:
//    if another thread of the writer process (compaction) needs to mutate,
//    the engine serializes it with the writer thread. A later writer (a new
//    process after the previous one died) may take over at any moment.
//  - Any number of readers, in any process and any thread, call Lookup() /
//    LookupKey() concurrently with the writer, without locks and without ever
//    waiting for the writer (see "Readers never wait" below).
//
// Keys are not stored. An entry is {hash, location}; Lookup returns every
// location stored under a 64-bit hash (its "candidates") and the caller reads
// each candidate's key on disk and compares. Distinct keys with the same full
// 64-bit hash therefore coexist as separate entries; at most kMaxCandidates
// entries may share one hash (Insert refuses the next one with kInvalidArgument;
// with a seeded 64-bit hash this is unreachable without memory corruption).
//
// Layout: a header (magic, layout version, the published table's descriptor
// and seed, a change counter, the writer's own descriptor, IndexCounters),
// then two equal areas. The published table (the one readers use) lives in
// one area; it grows x1.5 inside its area when an insert would pass 0.85
// load: the new table is built beside the old one while readers keep using
// the old one, published with one atomic store of the descriptor, and the old
// table's pages are released (madvise MADV_REMOVE, or MADV_DONTNEED). RAM per
// live key stays <= 32 bytes (16 B per entry / 0.85 * 1.5 = 28.2 B right after
// a growth). A table never shrinks.
//
// Rebuild (recovery): BeginRebuild() starts a new table in the OTHER area;
// from then on the writer's mutators work on that table, which no reader can
// see, while readers keep answering from the published one. PublishRebuild()
// makes it the published table in one atomic store (its seed with it) and
// releases the old area. A writer that dies during a rebuild leaves the
// published table as it was; the next BeginRebuild discards the abandoned
// one. So a writer restart never takes reads down and never shows a half
// rebuilt index: readers see the last complete index until the next one is
// complete. (RAM: both tables are resident during a rebuild.)
//
// Readers never wait. Every mutation of the published table is ordered so
// that each intermediate state, frozen at any store, is a correct index: an
// insert shifts its Robin Hood run right by one entry starting from the far
// end (one entry is duplicated, none is missing) and writes the new entry last;
// Replace is one atomic store; a delete's backward shift copies each entry one
// step back (again one duplicate, none missing) and empties the run's last
// entry last. An insert is also safe for a reader that walks the run while it
// moves (entries only move away from the reader, towards the end it has not
// read yet). A delete's steps, a growth and a publish are not: before each of
// those the writer bumps a change counter, and a reader that saw it move
// during its probe probes again. The counter is never "held": a writer that
// dies or is stopped (SIGSTOP, a debugger) at any store leaves a frozen,
// correct table that readers keep using without delay. An entry is two words
// (hash, location); overwriting one marks it kChangingHash first, so a reader
// never pairs a hash with another entry's location (see index.cc). A reader only ever
// retries a probe that a live writer's delete, growth or publish overlapped;
// kBusy comes back only after kLookupPatienceMs of such retries in a row
// (a writer changing the table continuously, faster than one probe).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "engine/key_probe.h"
#include "engine/location.h"
#include "engine/status.h"

namespace kingx::engine {

// What other processes need to know about the database, in the shared header.
// Plain atomics; each field names the only process(es) that store into it.
// Readers load them with memory_order_acquire (ready) or relaxed (the rest).
struct IndexCounters {
  // Writer: 1 once the first recovery published a complete index; stays 1
  // across writer restarts (readers keep using the published index while the
  // next writer rebuilds). Workers answer 503 to reads while it is 0.
  std::atomic<uint32_t> ready{0};
  // Writer: the database's hash seed (from the segment headers), stored when
  // an index is published. For display; readers use SharedIndex::LookupKey,
  // which takes the seed published with the table.
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
  // Writer: table growths (each one a rehash of every entry), those of a
  // rebuild included. Recovery sizes the rebuilt table beforehand, so a
  // restart should add none.
  std::atomic<uint64_t> growths{0};
  // Any process (writer and readers): records that failed a checksum.
  alignas(64) std::atomic<uint64_t> corruptions{0};
  // Readers: record reads that failed because the segment could not be read
  // (an I/O error, out of descriptors or mappings), not for damage; the Get
  // answers that error.
  std::atomic<uint64_t> read_failures{0};
};

// One table entry: hash 0 = empty, hash 1 = being overwritten (KeyHash never
// returns either).
inline constexpr uint64_t kEmptyHash = 0;
inline constexpr uint64_t kChangingHash = 1;
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
  // Bytes of the region header; the areas start after it.
  static constexpr size_t kHeaderBytes = 4096;
  static constexpr uint64_t kMinCapacity = 16;
  // Largest table (entries): the descriptor packs the capacity in 32 bits.
  static constexpr uint64_t kMaxCapacity = (uint64_t{1} << 32) - 1;
  // Load factor above which an insert grows the table (x1.5): an insert
  // grows first when size + 1 would exceed capacity * 85 / 100.
  static constexpr double kMaxLoad = 0.85;
  // How long Lookup keeps retrying probes that the writer keeps overlapping.
  static constexpr int kLookupPatienceMs = 2000;

  // Formats the region [base, base + bytes) (called once, by the master,
  // before fork). `base` must be 64-byte aligned (page-aligned for the page
  // release to work); the region must stay mapped as long as any SharedIndex
  // on it is used. initial_capacity is rounded up to kMinCapacity.
  // Errors: kInvalidArgument (misaligned base, region too small for the
  // header plus the initial table in each area, or larger than 16 TiB). The
  // counters start at 0, ready = 0; an empty table is published. The areas
  // are advised MADV_HUGEPAGE (the advice is inherited by fork; whether huge
  // pages come is the kernel's policy: for MAP_SHARED anonymous memory,
  // /sys/kernel/mm/transparent_hugepage/shmem_enabled must be "advise" or
  // more); refused advice is ignored.
  static Result<SharedIndex> Create(void* base, size_t bytes, uint64_t initial_capacity);

  // A handle on a region formatted by Create (any process). Validates the
  // magic, layout version, region size and table descriptors.
  // Errors: kInvalidArgument (not formatted / other layout / other size).
  static Result<SharedIndex> Attach(void* base, size_t bytes);

  // Region size that lets a table grow, from initial_capacity, until it
  // holds max_keys keys, in each of the two areas (a growth needs the old
  // and the new table side by side). Only virtual size: pages are touched
  // as tables use them.
  static size_t RegionBytesFor(uint64_t max_keys, uint64_t initial_capacity = kMinCapacity);

  SharedIndex(SharedIndex&& other) noexcept;
  SharedIndex& operator=(SharedIndex&& other) noexcept;
  SharedIndex(const SharedIndex&) = delete;
  SharedIndex& operator=(const SharedIndex&) = delete;
  ~SharedIndex() = default;  // the region is the caller's

  // ---- any process, any thread ----

  // Copies into *out every location stored under `hash` in the published
  // table (out->count may be 0: not found is an OK status with no
  // candidates). Lock-free, never waits for the writer (see above).
  // Errors: kBusy only after kLookupPatienceMs of probes that the writer kept
  // overlapping; kCorruption if more than kMaxCandidates entries hold `hash`
  // or the descriptor is out of bounds (only after memory corruption).
  // *out is unspecified on error. Tombstoned locations are returned as
  // stored (never present once ready is set, see location.h).
  Status Lookup(uint64_t hash, Candidates* out) const;

  // Lookup of every hashes[i] into out[i] (spans of equal size), for a
  // caller with many hashes at hand (a listing page): the entries each probe
  // starts at are fetched into the CPU cache first, all of them (prefetches:
  // no effect on the index, no fault), so the cache and TLB misses of a batch
  // of a large table overlap instead of following one another. A few dozen
  // hashes per call is enough; more buys nothing. Each out[i] is exactly what
  // Lookup(hashes[i]) gives (the probes are separate: a batch is not one
  // snapshot of the table). Errors: the first error of those lookups, as for
  // Lookup; out[i] from that one on is then unspecified.
  Status LookupBatch(std::span<const uint64_t> hashes, std::span<Candidates> out) const;

  // Lookup of KeyHash(seed, key) where seed is the one published with the
  // table the probe reads, so a rebuild published under another seed never
  // pairs a hash with the wrong table. Same errors as Lookup.
  Status LookupKey(std::string_view key, Candidates* out) const;
  // The same, with what an earlier PrefetchKey / LookupKey of the SAME key
  // left in *probe: its hash is reused when the probed table has the seed it
  // was computed with. Afterwards *probe holds this lookup's hash and, when
  // it found exactly one candidate that is not a tombstone, that candidate's
  // entry and the table and change counter it was found under (for
  // StillFound); otherwise no candidate (view 0). A hash of another key
  // makes this lookup return that key's candidates: callers that cannot
  // promise the key pass a fresh KeyProbe.
  Status LookupKey(std::string_view key, Candidates* out, KeyProbe* probe) const;

  // True when probe's candidate is still stored under its hash in the
  // published table and no reader-unsafe step (delete, growth, publish) has
  // happened since it was found: a LookupKey of the key now would return
  // probe.loc among its candidates. Replace and Insert take no step, so
  // this checks the entry itself: a replaced location or an entry moved by
  // an insert reads as changed (locations are never reused). Lock-free, a
  // handful of loads; false whenever anything differs.
  bool StillFound(const KeyProbe& probe) const;

  // Starts fetching the memory LookupKey(key) reads first (the home slot in
  // the published table), without waiting for it: a CPU prefetch, no effect
  // on the index, never a fault (a descriptor out of bounds prefetches
  // nothing). A reader that knows a key some time before it looks it up
  // (an HTTP server that has read the request-target but not yet the rest of
  // the head) lets the cache and TLB misses of a large table overlap that
  // work.
  void PrefetchKey(std::string_view key) const;
  // The same, leaving the key's hash and its seed in *probe (no candidate),
  // for the LookupKey(key, out, probe) that follows.
  void PrefetchKey(std::string_view key, KeyProbe* probe) const;

  // The seed published with the current table (0 before any publish).
  uint64_t seed() const;

  IndexCounters& counters() const;
  uint64_t size() const;        // entries in use in the writer's table (live keys + recovery tombstones)
  uint64_t capacity() const;    // entries of the writer's table
  size_t TableBytes() const;    // RAM of the writer's table (capacity * 16)

  // ---- writer thread only ----
  // Every mutator works on the writer's table: the published one, or during
  // a rebuild the table being built (invisible to readers).

  // Adds an entry (hash, loc); does not look for an existing entry of the same
  // key (the caller decides insert vs Replace after comparing keys on disk).
  // May grow the table first. Errors: kInvalidArgument (hash 0 or 1, or
  // kMaxCandidates entries already hold this hash), kNoSpace (the area cannot
  // hold the grown table: size the region with RegionBytesFor). On error the
  // index is unchanged.
  Status Insert(uint64_t hash, Location loc);
  // The same, for a caller that has just called LookupForWriter(hash) and
  // found `known` (nothing mutated since): skips probing for them again.
  Status Insert(uint64_t hash, Location loc, const Candidates& known);

  // Points the entry (hash, old_loc) at new_loc with one atomic store (readers
  // see either location). false if no such entry.
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

  // Lookup in the writer's table (during a rebuild: the one being built).
  // Nothing moves under the writer, so it never retries. Same results and
  // errors as Lookup minus kBusy.
  Status LookupForWriter(uint64_t hash, Candidates* out) const;

  // Starts fetching the memory a LookupForWriter(hash) reads first, without
  // waiting for it (a CPU prefetch: no effect on the index, no fault). A
  // caller with many hashes at hand (recovery) issues these for a batch so
  // that the cache and TLB misses of a large table overlap.
  void PrefetchForWriter(uint64_t hash) const;

  // Grows the writer's table now so that it holds `keys` keys without
  // growing again. kNoSpace as for Insert.
  Status Reserve(uint64_t keys);

  // Starts building a new table in the area readers do not use, sized for
  // expected_keys (0: the initial capacity), and points the mutators at it.
  // The new table's pages are faulted in at once (one system call rather
  // than a fault per page during the replay; where the kernel cannot, they
  // come in as they are touched).
  // Whatever a previous writer left there (an abandoned rebuild, released
  // tables) is discarded. Readers keep the published table. Calling it again
  // before PublishRebuild starts over. Errors: kNoSpace (the area cannot
  // hold a table for expected_keys; nothing changed).
  Status BeginRebuild(uint64_t expected_keys);

  // Publishes the table being built, with the hash seed its entries were
  // computed with, in one step; releases the previous table's area. Must
  // follow BeginRebuild.
  void PublishRebuild(uint64_t seed);

  // True between BeginRebuild and PublishRebuild (also when a writer that
  // died left a rebuild unfinished).
  bool rebuilding() const;

  // Publishes an empty table at the initial capacity (keeping the published
  // seed) and releases the other pages: BeginRebuild(0) + PublishRebuild.
  void Clear();

 private:
  explicit SharedIndex(void* base, size_t bytes);

  IndexEntry* Table() const;
  uint64_t Capacity() const;
  bool Visible() const;          // the writer's table is the published one
  void Step() const;             // before a reader-unsafe store on a visible table
  void EraseAt(uint64_t pos);    // backward shift
  Status GrowTo(uint64_t new_capacity);
  // The published table for prefetches (offset and capacity in *offset,
  // *cap), or null when its descriptor is out of bounds.
  const IndexEntry* TableToPrefetch(uint64_t* offset, uint64_t* cap) const;
  // The probe loop of Lookup (key == nullptr) and LookupKey.
  // probe (key lookups only, may be null): hash to reuse, and what was found.
  Status ProbeFor(uint64_t hash, const std::string_view* key, Candidates* out, KeyProbe* probe) const;

  IndexRegionHeader* header_ = nullptr;
  size_t bytes_ = 0;  // this process's idea of the region size (bounds every access)
};

template <class Fn>
void SharedIndex::ForEach(Fn fn) const {
  IndexEntry* table = Table();
  const uint64_t cap = Capacity();
  for (uint64_t i = 0; i < cap; ++i) {
    const uint64_t h = table[i].hash.load(std::memory_order_relaxed);
    if (h > kChangingHash) fn(h, static_cast<Location>(table[i].loc.load(std::memory_order_relaxed)));
  }
}

template <class Pred>
uint64_t SharedIndex::RemoveIf(Pred pred) {
  IndexEntry* table = Table();
  const uint64_t cap = Capacity();
  uint64_t removed = 0;
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
  return removed;
}

}  // namespace kingx::engine
