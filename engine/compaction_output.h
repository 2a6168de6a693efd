// CompactionOutput: one output segment of a compaction pass, built under a
// temporary name and published whole. Internal to engine/ (compaction.cc).
//
// Life: Create ("compact-N.tmp" with a placeholder segment header, and the
// hint file "seg-N.hint") -> Add records (buffered, written in ~1 MiB appends)
// -> Finish (segment header with the real seq floor, fdatasync, hint trailer +
// fdatasync, rename to "seg-N.kxd", fsync of the directory) or Abandon
// (removes both files). Nothing in it is visible to recovery before the
// rename; after the directory fsync it is a complete, durable sealed segment.
//
// Kill points (KINGX_KILL_POINT): compact.before_write, compact.after_write,
// compact.before_sync, compact.after_sync, compact.before_hint,
// compact.after_hint, compact.before_rename, compact.after_rename,
// compact.before_dir_sync, compact.after_dir_sync.
//
// Thread-safety: one thread (the compaction thread) uses an output. It touches
// no writer state: the caller allocated its segment id under the writer's mutex.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "engine/env.h"
#include "engine/hint_file.h"
#include "engine/record.h"
#include "engine/status.h"

namespace kingx::engine {

class CompactionOutput {
 public:
  // Creates the temporary file and the hint for segment `id` of the database
  // with this seed in dir. Errors: kNoSpace / kIOError (nothing left behind).
  static Result<std::unique_ptr<CompactionOutput>> Create(Env& env, const std::string& dir, uint32_t id,
                                                          uint64_t seed);
  // Abandons (removes the files) unless Finish succeeded.
  ~CompactionOutput();

  // Appends the verified record bytes `record` (header..value, as found in an
  // input) whose header is h; returns its offset in this segment through
  // *offset. Written to the file when the buffer passes ~1 MiB (*written gets
  // the bytes written by this call, for pacing). On error the output is
  // unusable: destroy it (which removes the files).
  Status Add(std::string_view record, const RecordHeader& h, std::string_view key, uint64_t* offset,
             uint64_t* written);
  // Add in pieces, for a record too large to hold whole: BeginRecord takes
  // its header h, key and total bytes (its hint entry, its offset through
  // *offset); AddBytes then appends its bytes, header first, in pieces of
  // any size, until `total` were given (the caller's duty: a record left
  // short leaves the output unusable). The bytes are the caller's to verify
  // before Finish (an output is visible to nobody until then).
  void BeginRecord(const RecordHeader& h, std::string_view key, uint64_t total, uint64_t* offset);
  Status AddBytes(std::string_view bytes, uint64_t* written);

  // Publishes the segment (see the file comment). On error the files are
  // removed when that is still possible (before the rename; after a failed
  // directory fsync the renamed file is removed too: nothing points to it).
  Status Finish();

  uint32_t id() const { return id_; }
  uint64_t size() const { return size_; }      // bytes of the segment so far (header included)
  uint64_t records() const { return records_; }
  // Bytes of the hint file Finish wrote (header, entries, trailer); 0 before.
  uint64_t hint_bytes() const { return hint_bytes_; }
  // Bytes still buffered (written by the next Add that flushes, or by Finish).
  uint64_t buffered() const { return buf_.size(); }

 private:
  CompactionOutput(Env& env, std::string dir, uint32_t id, uint64_t seed);
  Status WriteBuffer();
  void Abandon();

  Env& env_;
  const std::string dir_;
  const uint32_t id_;
  const uint64_t seed_;
  std::string tmp_path_, seg_path_, hint_path_;
  std::unique_ptr<File> file_;
  std::unique_ptr<HintWriter> hint_;
  uint64_t hint_bytes_ = 0;  // set by Finish, which releases hint_
  std::string buf_;
  uint64_t size_ = kSegmentHeaderBytes;  // including buf_
  uint64_t records_ = 0;
  uint64_t min_seq_ = UINT64_MAX;
  bool renamed_ = false;
  bool done_ = false;
};

}  // namespace kingx::engine
