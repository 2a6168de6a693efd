// SpillFile: where an upload's body bytes wait on disk instead of in the
// worker's body budget (--body-spill-bytes; nginx's client body temp file).
//
// A file is created in `dir` under a name of its own and unlinked at once, so
// it holds disk only while it is open, and nothing is left behind by a crash
// or a kill: the bytes are scratch, never data (not durable, never synced,
// not in engine/FORMAT.md). Appends go at the end; Read gives back a range.
// Every call may block on the disk: the serving code makes them on its
// Offload (src/kv/offload.h), never on an event loop. Errors come back as
// engine::Status from the engine's file layer (kNoSpace, kIOError); after a
// failed Append the file's size is unknown and it must not be used again.
//
// Threading: one thread at a time (the upload's, or the offload thread it
// handed the file to).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "engine/env.h"
#include "engine/status.h"

namespace kingx {

class SpillFile {
 public:
  // Creates and unlinks a scratch file in dir (through env, which must
  // outlive the file).
  static engine::Result<std::unique_ptr<SpillFile>> Create(engine::Env& env, const std::string& dir);

  // Appends all of data. On failure the file must not be used again.
  engine::Status Append(std::string_view data);
  // Replaces *out with the n bytes at offset (kIOError when fewer exist).
  engine::Status Read(uint64_t offset, uint64_t n, std::string* out) const;
  // Bytes appended so far.
  uint64_t size() const { return size_; }

 private:
  explicit SpillFile(std::unique_ptr<engine::File> file) : file_(std::move(file)) {}
  std::unique_ptr<engine::File> file_;
  uint64_t size_ = 0;
};

}  // namespace kingx
