// Key runs: immutable files of key entries sorted by key, the on-disk half of
// the keyspace's sorted view (engine/keyspace.h). FORMAT.md "Key runs"
// describes every byte. Internal to engine/.
//
// A run holds at most one entry per key, in strictly ascending byte-wise
// order (memcmp, a prefix before its extensions). An entry says where a put
// of the key lives (segment id, offset), its seq and what a listing shows
// (value size, content type). A run may be stale: the hash index decides
// whether an entry is still the key's live record.
//
// Thread-safety: a KeyRunBuilder belongs to one thread. A KeyRun is immutable
// and readable from any number of threads; an Iterator belongs to one thread.
// Reading never trusts the file: every length and varint is checked against
// the run's bounds, so a damaged run yields kCorruption, never a crash; and
// every read of the mapping is guarded (engine/mapping_guard.h), so a page
// the disk cannot read yields kIOError naming the file, never a SIGBUS. No
// caller ever reads the mapping: an entry's key is copied out under the
// guard while the entry is decoded, and its content type views the run's
// copy of the content-type table, so a page the kernel drops after the
// decode and cannot read back costs nothing until the next decode, which
// meets it as kIOError.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/env.h"
#include "engine/hash.h"
#include "engine/status.h"

namespace kingx::engine {

// One key as the sorted view knows it.
struct KeyEntry {
  std::string_view key;
  uint64_t seq = 0;
  uint64_t segment = 0;  // segment id of the put record
  uint64_t offset = 0;   // the record's offset in that segment
  uint64_t raw_len = 0;  // the value's size
  std::string_view content_type;
};

// raw_len of an entry whose size and content type are not known (its record
// could not be read when the entry was made): a reader reads the record.
inline constexpr uint64_t kKeyEntryUnknownSize = ~uint64_t{0};

// Bytes of the fixed parts (FORMAT.md).
inline constexpr size_t kKeyRunHeaderBytes = 32;
inline constexpr size_t kKeyRunFooterBytes = 56;
// One sparse-index offset every this many entries.
inline constexpr uint64_t kKeyRunSparseEvery = 16;

// "run-<16 hex digits>.kxr" for run id.
std::string KeyRunFileName(uint64_t run_id);
// Parses a run file name; false for anything else.
bool ParseKeyRunFileName(std::string_view name, uint64_t* run_id);

// Writes one run file, entry by entry.
class KeyRunBuilder {
 public:
  // Creates (truncating) path and writes the header.
  static Result<std::unique_ptr<KeyRunBuilder>> Create(Env& env, const std::string& path, uint64_t run_id,
                                                       uint64_t seed);

  // Entries must come in strictly ascending key order (asserted); keys
  // 1..65535 bytes, content types 0..255 bytes. Buffers; writes every ~1 MiB.
  Status Add(const KeyEntry& e);
  // Writes the tables and the footer; fdatasyncs when sync is true.
  Status Finish(bool sync);

  uint64_t entries() const { return count_; }
  uint64_t bytes() const { return written_ + buf_.size(); }
  uint64_t max_seq() const { return max_seq_; }

 private:
  explicit KeyRunBuilder(std::unique_ptr<File> file) : file_(std::move(file)) {}
  Status FlushBuffer();

  std::unique_ptr<File> file_;
  std::string buf_;
  Checksum64Stream checksum_;
  uint64_t written_ = 0;  // bytes already handed to the file
  uint64_t count_ = 0;
  uint64_t max_seq_ = 0;
  std::string last_key_;  // kept where assertions are compiled in (the order check)
  std::vector<uint64_t> sparse_;
  std::unordered_map<std::string, uint64_t> types_;  // content type -> index
  std::vector<std::string> type_list_;
  std::unordered_map<uint64_t, uint64_t> segments_;  // segment id -> entries
  uint64_t last_segment_ = 0;                // the segment of the last entry added ...
  uint64_t* last_segment_count_ = nullptr;   // ... and its count in segments_ (stable: node-based map)
};

// A mapped run.
class KeyRun {
 public:
  // Maps path and checks its header (magic, version, run id, seed) and
  // footer (every table inside the file). verify_checksum also checks the
  // checksum of the whole file (the owner does it once; readers rely on
  // the bounds checks). kNotFound when the file does not exist, kCorruption
  // when it cannot be trusted.
  static Result<std::shared_ptr<const KeyRun>> Open(Env& env, const std::string& path, uint64_t run_id,
                                                    uint64_t seed, bool verify_checksum);

  uint64_t id() const { return id_; }
  uint64_t entries() const { return count_; }
  uint64_t file_bytes() const { return size_; }
  uint64_t max_seq() const { return max_seq_; }
  // Entries per segment id, as recorded by the builder.
  const std::vector<std::pair<uint64_t, uint64_t>>& segment_counts() const { return segment_counts_; }
  // Blocks of kKeyRunSparseEvery entries (the last one may hold fewer): the
  // sparse index's slots, each reachable by Iterator::SeekToBlock.
  uint64_t blocks() const { return sparse_count_; }

  // Walks the entries in key order.
  class Iterator {
   public:
    explicit Iterator(const KeyRun& run) : run_(run) {}
    // Movable (the entry's views move with the buffers they point into),
    // not copyable.
    Iterator(Iterator&&) = default;
    Iterator(const Iterator&) = delete;
    // Positions at the first entry whose key is >= target (Valid() false
    // past the end or on corruption; status() tells which).
    void Seek(std::string_view target);
    void SeekToFirst();
    // Positions at the first entry of block i (entry i * kKeyRunSparseEvery),
    // through the sparse index, reading no other entry (Valid() false when
    // i >= blocks() or on corruption; status() tells which).
    void SeekToBlock(uint64_t i);
    bool Valid() const { return valid_; }
    void Next();
    // The current entry. Its key views a copy the iterator owns, valid
    // until the second decode after this one (Next, Seek or SeekToFirst
    // that finds an entry twice; one decode later the previous entry's key
    // is still readable, which Next's order check relies on); its content
    // type views the run's table (live as long as the run).
    const KeyEntry& entry() const { return entry_; }
    const Status& status() const { return status_; }

   private:
    // Decodes the entry at pos_ into entry_; false (and status_) on damage
    // or a page that cannot be read.
    bool DecodeAt(uint64_t pos);
    // The i-th sparse-index offset; false (and status_) when unreadable.
    bool SparseAt(uint64_t i, uint64_t* offset);
    // Whether the key of the entry the i-th sparse-index offset names is <=
    // target, compared in place under the guard (a probe of Seek's binary
    // search copies nothing out and leaves entry_ as it was); false (and
    // status_, valid_ false) on damage or a page that cannot be read.
    bool SparseKeyAtMost(uint64_t i, std::string_view target, bool* at_most);
    const KeyRun& run_;
    uint64_t pos_ = 0;   // offset of the current entry
    uint64_t next_ = 0;  // offset of the entry after it
    uint64_t index_ = 0; // ordinal of the current entry
    bool valid_ = false;
    KeyEntry entry_;
    Status status_;
    // The keys of the current and the previous entry, copied out of the
    // mapping under the guard (grown outside it, never shrunk).
    std::vector<char> keys_[2];
    int cur_ = 0;  // keys_[cur_] holds entry_.key
  };

 private:
  KeyRun() = default;
  friend class Iterator;
  // kIOError naming the file and the byte range a guarded read could not read.
  Status Unreadable(uint64_t from, uint64_t to) const;
  // Copies bytes [from, to) of the mapping to out under the guard.
  Status CopyOut(uint64_t from, uint64_t to, char* out) const;

  std::unique_ptr<MappedFile> map_;
  const char* data_ = nullptr;
  uint64_t size_ = 0;
  uint64_t id_ = 0;
  uint64_t count_ = 0;
  uint64_t entries_end_ = 0;
  uint64_t sparse_off_ = 0;  // == entries_end_
  uint64_t sparse_count_ = 0;
  uint64_t max_seq_ = 0;
  std::string path_;
  std::string types_bytes_;  // the content-type table, copied out of the mapping
  std::vector<std::string_view> types_;  // views into types_bytes_
  std::vector<std::pair<uint64_t, uint64_t>> segment_counts_;
};

}  // namespace kingx::engine
