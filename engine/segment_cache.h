// SegmentCache: one process's read-only mappings of segment files, keyed by
// segment id, shared by the Reader (any thread) and the Writer (recovery,
// key comparisons, compaction). Internal to engine/.
//
// Bounds (leveldb's TableCache): at most max_open() mappings stay cached; each
// holds one descriptor and one mapping. Mapping another segment past the bound
// drops a cached one that was not used recently (second-chance clock). A
// mapping lives on while a caller holds a span or record of it (shared_ptr),
// so descriptors in use at once are the bound plus the spans callers hold.
// The bound is min(the requested max_open, a quarter of the process's
// descriptor limit), and at least kMinOpen.
//
// Mapping size: a segment is mapped at its size when mapped, plus room to
// grow while it is smaller than segment_bytes (the active segment; at most
// segment_bytes or size + max(size / 4, 1 MiB), whichever is smaller), so
// sealed segments take their size in address space. Bytes are only touched
// below the file size last seen (fstat again when a record lies beyond it;
// remap, larger, when the file outgrew the mapping).
//
// Identity: segment ids are reused once free (engine/FORMAT.md), so a cached
// mapping may name a file that was deleted and replaced. Revalidate() drops
// every mapping whose path is gone or names another file (st_dev, st_ino);
// the Reader calls it whenever the index's segment epoch moved (the writer
// bumps it after every deletion, before the id can be used again).
//
// A page that cannot be read: reading a mapped page the kernel cannot fill
// (a failing disk, a file truncated under its mapping) raises SIGBUS.
// ReadRecord reads the header under MappingGuard, and callers that read
// further bytes of a span do the same and report a fault with MarkFaulted.
// A faulted mapping stays cached and marked: every later Read of its
// segment answers kIOError at once, without touching it, until the mapping
// is dropped (Revalidate finds the file removed or replaced: compaction, a
// writer's recovery; Forget; eviction under the bound). A new mapping of the
// same file is read again, and marked again if it faults again.
//
// Errors: kNotFound when the segment file does not exist; kCorruption when a
// read lies past its end or a record header fails its checks; kBusy when the
// process is out of descriptors or mappings (EMFILE, ENFILE, ENOMEM: transient);
// kIOError when the mapping faulted (now or before) and for other failures.
// A failed call leaves the cache as it was (apart from a fault's mark).
//
// Thread-safety: every method is safe from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/env.h"
#include "engine/location.h"
#include "engine/record.h"
#include "engine/status.h"

namespace kingx::engine {

// Bytes of one segment, readable while `holder` lives.
struct SegmentSpan {
  const char* data = nullptr;  // at the requested offset
  uint64_t available = 0;      // readable bytes from data on (>= the requested length)
  std::shared_ptr<const void> holder;
};

// A record whose header checksum was checked (key and body not verified).
struct RecordRef {
  RecordHeader header;
  const char* record = nullptr;  // the header's first byte in the mapping; header.total_bytes() readable
  // The whole record copied into the caller's buffer (ReadRecord with a
  // copy), or null: then its bytes are read from the mapping under the guard.
  const char* copy = nullptr;
  std::string_view key;  // in copy when there is one, else in the mapping
  std::shared_ptr<const void> holder;
};

class SegmentCache {
 public:
  static constexpr size_t kMinOpen = 4;

  // max_open: the wanted bound on cached mappings (see above).
  SegmentCache(Env& env, std::string dir, uint64_t segment_bytes, size_t max_open);

  // At least n readable bytes of segment `id` from offset.
  Result<SegmentSpan> Read(uint32_t id, uint64_t offset, uint64_t n);

  // Reads and checks the header of the record at loc, and makes its whole
  // record readable. Errors as Read, plus kCorruption for a bad header.
  // With copy (copy_bytes of memory the caller owns): a record of at most
  // copy_bytes, readable below the size known for its segment, is copied
  // there whole by the same guarded read as its header (one guarded call),
  // and ref.copy and ref.key point into it; any other record is read as
  // without copy (ref.copy null). The copy's bytes are not verified beyond
  // the header checksum.
  Result<RecordRef> ReadRecord(Location loc, const RecordLimits& limits, char* copy = nullptr,
                               size_t copy_bytes = 0);

  // The checked header of the record at loc (into *header) and whether its
  // key is `key` (*same_key): ReadRecord and KeyIs in one, for a caller that
  // needs no more of the record (the writer telling whether an index
  // candidate is its key's record). When the segment is mapped and the
  // header and key.size() bytes after it lie below its known size, they are
  // read by one guarded call under the cache's shared lock, with no hold on
  // the mapping taken or dropped; otherwise as ReadRecord then KeyIs. Errors,
  // and the state after a fault, as ReadRecord's and KeyIs's. A page the
  // kernel must read from disk keeps the shared lock held meanwhile: in this
  // process, mapping, forgetting or evicting a segment waits for that read.
  // With `hold`, the shared lock is taken into it (unless it holds it
  // already) and kept there after the call, so that a thread reading the
  // heads of many records in a row takes the lock once per run of calls; a
  // call that must take the general way, or report a fault, lets it go
  // first.
  class HeadHold;
  Status ReadHead(Location loc, std::string_view key, const RecordLimits& limits, RecordHeader* header,
                  bool* same_key, HeadHold* hold = nullptr);
  // A hold of the cache's shared lock kept across ReadHead calls of one
  // thread. While it holds the lock, that thread calls no other method of
  // the cache (each takes the lock itself) and, in this process, mapping,
  // forgetting and evicting a segment wait: Release it before anything
  // else. The destructor releases it.
  class HeadHold {
   public:
    explicit HeadHold(SegmentCache& cache) : cache_(cache), lock_(cache.mu_, std::defer_lock) {}
    void Release() {
      if (lock_.owns_lock()) lock_.unlock();
    }

   private:
    friend class SegmentCache;
    SegmentCache& cache_;
    std::shared_lock<std::shared_mutex> lock_;
  };

  // Marks the mapping that `holder` (a SegmentSpan's or RecordRef's of this
  // cache) keeps alive as faulted: a read of its bytes raised SIGBUS. Later
  // reads of its segment fail fast (see above); the fault reporter is told
  // the first time. Returns the segment's id.
  uint32_t MarkFaulted(const std::shared_ptr<const void>& holder);
  // Copies n bytes at p, which lie in the mapping `holder` (a SegmentSpan's
  // or RecordRef's of this cache) keeps alive, into out[0, n) under
  // MappingGuard. A page that faults marks the mapping (as MarkFaulted) and
  // answers FaultedError; out then holds an unknown prefix. For code that
  // reads mapped bytes beyond a record's header: it works on the copy.
  Status CopyMapped(const std::shared_ptr<const void>& holder, const char* p, size_t n, char* out);
  // Whether ref's key (mapped) is `key`, compared under MappingGuard;
  // FaultedError, the mapping marked, when a page of it faulted.
  Result<bool> KeyIs(const RecordRef& ref, std::string_view key);
  // Whether ref's body checksum matches (RecordBodyMatches), read under
  // MappingGuard; FaultedError, the mapping marked, when a page faulted.
  Result<bool> BodyMatches(const RecordRef& ref);
  // Called with the segment's id when a mapping is first marked faulted
  // (from the faulting thread). Set before the cache is used.
  void SetFaultReporter(std::function<void(uint32_t id)> report) { report_fault_ = std::move(report); }
  // The kIOError a faulted read of segment id answers.
  static Status FaultedError(uint32_t id);

  // Starts fetching up to `bytes` from loc into the CPU cache (prefetch
  // instructions, no wait) when that segment is mapped already and the bytes
  // lie below its known size; otherwise does nothing. No I/O, no error, no
  // effect on what the cache holds: a hint for a ReadRecord(loc) soon after.
  void Prefetch(Location loc, uint64_t bytes) const;
  // Prefetch of every location in locs, under one shared lock: a locked
  // instruction between two prefetches would wait for the first one's page
  // walk, and the point of many is that their walks overlap.
  void PrefetchMany(std::span<const Location> locs, uint64_t bytes) const;

  // Forgets segment id's mapping (held spans stay valid).
  void Forget(uint32_t id);
  // Forgets every mapping whose file is gone or was replaced by another file
  // under the same name (and, when the path cannot be checked, that mapping too).
  void Revalidate();
  // Forgets everything.
  void Clear();

  // The bound in force, and what is cached now (for tests and stats).
  size_t max_open() const { return max_open_; }
  size_t cached() const;
  // Mappings dropped to stay within the bound, since construction.
  uint64_t evictions() const { return evictions_.load(std::memory_order_relaxed); }

 private:
  void PrefetchLocked(Location loc, uint64_t bytes) const;  // mu_ held (shared)
  struct Mapping;
  // ReadHead's one guarded read when the mapping is cached and the bytes are
  // known to exist: true with *status its outcome, false when ReadHead must
  // take the general way (not mapped, past the known size, a header that
  // does not decode within it).
  // With `hold`, the lock is its and stays taken after a true return
  // without a fault; it is let go otherwise.
  bool ReadHeadMapped(Location loc, std::string_view key, const RecordLimits& limits, RecordHeader* header,
                      bool* same_key, Status* status, HeadHold* hold);
  // Marks m faulted (see MarkFaulted); returns whether this call marked it.
  static bool MarkMappingFaulted(Mapping& m);
  Result<std::shared_ptr<Mapping>> MapSegment(uint32_t id, uint64_t min_bytes);
  // Drops cached mappings until one more fits the bound. Caller holds mu_ exclusively.
  void MakeRoomLocked();

  Env& env_;
  const std::string dir_;
  const uint64_t segment_bytes_;
  const size_t max_open_;
  mutable std::shared_mutex mu_;
  std::unordered_map<uint32_t, std::shared_ptr<Mapping>> maps_;
  std::vector<uint32_t> clock_;  // ids in the order they were mapped (may hold forgotten ones)
  size_t hand_ = 0;
  std::atomic<uint64_t> evictions_{0};
  std::function<void(uint32_t id)> report_fault_;
};

}  // namespace kingx::engine
