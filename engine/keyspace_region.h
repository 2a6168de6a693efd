// KeyspaceRegion: the shared-memory half of the keyspace's sorted view
// (engine/keyspace.h), placed in a region the caller provides, like the
// SharedIndex: the master maps it before fork, every process uses the same
// bytes.
//
// It holds:
//  - the published run set: the ids of the key runs (files in keys_dir) that,
//    together with the tails, hold an entry for every live key;
//  - two tail buffers of recent entries, not yet in any run: append-only
//    arrays (at most tail_entries entries and tail_arena_bytes of key and
//    content-type bytes each). One is active (the writer thread appends to
//    it); the other is free or frozen (full, being written into a run by the
//    keyspace thread);
//  - a readiness state and the path of keys_dir, so that workers know where
//    the runs are.
//
// Roles:
//  - the owner (the writer process, or kingx-tool): one thread appends to the
//    active tail (Append) and freezes it (Freeze); the keyspace thread
//    publishes run sets and frees tails (Publish). The owner serializes those
//    two threads itself (engine/keyspace.cc); the region only orders them
//    for readers.
//  - readers, in any process and thread, take a Snapshot without locks: a
//    seqlock version (odd while the run set changes or a tail is freed)
//    tells them to retry; tail entries are published by a release store of
//    their count and never change until their tail is freed (which bumps the
//    version). Every field is an atomic stored with release and loaded with
//    acquire (no fences: see keyspace_region.cc), so a reader racing a reused
//    tail reads stale words, never tears the process; the version check then
//    discards the snapshot. Every length read back is bounds-checked.
//
// An owner that dies leaves the region as it was (possibly mid-update); the
// next owner calls Reset, which bumps the version past any state readers saw.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/status.h"

namespace kingx::engine {

struct KeyEntry;  // engine/key_run.h (owner side only)

inline constexpr uint32_t kMaxKeyRuns = 64;

// Why the view is or is not usable (KeyspaceRegion::state()).
enum class KeyspaceState : uint32_t {
  kNoOwner = 0,   // no writer has opened the keyspace (starting, or restarting)
  kBuilding = 1,  // the owner is completing the view (catch-up or rebuild after open)
  kReady = 2,     // every live key is in the runs or the tails
  kLost = 3,      // the owner could not keep up (a run could not be written): rebuilding
};

// A tail entry copied out of the region by a reader.
struct OwnedKeyEntry {
  std::string key;
  std::string content_type;
  uint64_t seq = 0;
  uint64_t segment = 0;
  uint64_t offset = 0;
  uint64_t raw_len = 0;
};

// A frozen tail copied out by its owner (KeyspaceRegion::ReadTail): the
// tail's key and content-type bytes in one string, and per entry where its
// key and content type are in it.
struct TailCopy {
  struct Entry {
    uint32_t key_off = 0, key_len = 0;
    uint32_t ct_off = 0, ct_len = 0;
    uint64_t seq = 0, segment = 0, offset = 0, raw_len = 0;
  };
  std::string bytes;
  std::vector<Entry> entries;  // in the order they were appended
  std::string_view Key(const Entry& e) const { return std::string_view(bytes).substr(e.key_off, e.key_len); }
  std::string_view ContentType(const Entry& e) const {
    return std::string_view(bytes).substr(e.ct_off, e.ct_len);
  }
};

// What a reader needs for one page: a consistent view as of one version.
struct KeyspaceSnapshot {
  uint64_t version = 0;
  std::string keys_dir;
  std::vector<uint64_t> run_ids;
  // Tail entries whose key starts with the prefix and is >= from, unsorted,
  // possibly several per key.
  std::vector<OwnedKeyEntry> tail;
};

// Counters the owner publishes (relaxed) for /metrics.
struct KeyspaceCounters {
  std::atomic<uint64_t> runs_written{0};    // run files made (tail flushes, merges, rebuild chunks)
  std::atomic<uint64_t> run_bytes_written{0};  // bytes of those files
  std::atomic<uint64_t> merges{0};
  std::atomic<uint64_t> entries_merged{0};  // entries read by merges
  std::atomic<uint64_t> entries_repaired{0};  // stale entries pointed at the key's current record
  std::atomic<uint64_t> overwrites_unrecorded{0};  // puts of live keys that needed no entry (Keyspace::Add)
  std::atomic<uint64_t> rebuilds{0};        // full rebuilds from the segments
  std::atomic<uint64_t> checkpoints{0};     // MANIFEST writes
  std::atomic<uint64_t> lost{0};            // times the view fell behind and had to be caught up
  std::atomic<uint64_t> catch_ups{0};       // catch-ups from the segments (after a loss, at open)
  std::atomic<uint64_t> writer_waits{0};    // writer batches held back until a tail flush (Pace)
  std::atomic<uint64_t> run_entries{0};     // entries in the published runs
};

struct KeyspaceRegionHeader;  // keyspace_region.cc

class KeyspaceRegion {
 public:
  // Bytes a region with these tail sizes needs. tail_arena_bytes is rounded
  // up to a multiple of 8.
  static size_t RegionBytes(uint32_t tail_entries, uint64_t tail_arena_bytes);

  // Formats [base, base + bytes) (once, before the processes share it).
  // kInvalidArgument for a misaligned base (8 bytes), too small a region,
  // tail_entries < 16 or tail_arena_bytes < 64 KiB + 256 (one largest key
  // plus one content type must fit).
  static Result<KeyspaceRegion> Create(void* base, size_t bytes, uint32_t tail_entries, uint64_t tail_arena_bytes);
  // A handle on a formatted region (any process). kInvalidArgument when not formatted.
  static Result<KeyspaceRegion> Attach(void* base, size_t bytes);

  KeyspaceRegion(const KeyspaceRegion&) = default;
  KeyspaceRegion& operator=(const KeyspaceRegion&) = default;

  // ---- any process, any thread ----
  KeyspaceState state() const;
  KeyspaceCounters& counters() const;
  uint32_t tail_entries() const;
  uint64_t tail_arena_bytes() const;

  // Copies a consistent view: the run set, and the tail entries whose key
  // starts with `prefix` and is >= `from`. kBusy when the owner kept
  // changing the view for a while (retry later), or when the state is not
  // kReady (the message says why). kCorruption if the region's words make no
  // sense (only after memory corruption or an owner that died mid-Reset).
  Status Snapshot(std::string_view prefix, std::string_view from, KeyspaceSnapshot* out) const;
  // The version now (acquire); equal to a snapshot's version when nothing
  // that would change it happened since.
  uint64_t version() const;
  // The secret that signs this view's listing cursors (0 until an owner set it).
  uint64_t cursor_secret() const;

  // ---- the owner ----

  // A new owner takes over: empty run set, empty tails (tail 0 active),
  // state kNoOwner, keys_dir recorded (at most 1023 bytes).
  Status Reset(std::string_view keys_dir);
  void SetState(KeyspaceState state);
  void SetCursorSecret(uint64_t secret);

  // The writer thread: appends to the active tail. false when it is full
  // (entries or arena): call Freeze (and, if that fails, handle the lag).
  bool Append(const KeyEntry& e);
  // The writer thread: the active tail becomes frozen and the free one
  // active. Returns the frozen tail's index, or -1 when the other tail is not
  // free yet (its flush is not published).
  int Freeze();
  // The owner (frozen tails only): copies tail i out into *out (replacing
  // what it held; its buffers are reused). Entries whose words are out of
  // bounds are left out.
  void ReadTail(int i, TailCopy* out) const;
  // Index of a frozen tail, or -1.
  int FrozenTail() const;
  // Number of entries in the active tail (owner; for checkpoint decisions).
  uint32_t ActiveCount() const;
  // The active tail holds at least half its entries or arena bytes (false
  // when no tail is active).
  bool ActiveHalfFull() const;

  // The keyspace thread: replaces the published run set with `runs`
  // (<= kMaxKeyRuns) and, when free_tail >= 0, frees that (frozen) tail, as
  // one change readers see at once.
  void Publish(const std::vector<std::pair<uint64_t, uint64_t>>& runs /* (id, entries) */, int free_tail);
  // Drops both tails' entries (used when the view was lost and a rebuild
  // covers them): the active tail restarts empty, the other becomes free.
  void ClearTails();

 private:
  explicit KeyspaceRegion(KeyspaceRegionHeader* h) : h_(h) {}
  KeyspaceRegionHeader* h_ = nullptr;
};

}  // namespace kingx::engine
