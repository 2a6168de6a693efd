// ObservedEnv: the engine::Env the server hands to the engine (the writer's
// Writer, the workers' Reader). It forwards every call to a base Env
// (PosixEnv) and watches two things on the way:
//   - every failing file call (ENOSPC, EIO, ...): logged at error level,
//     rate-limited (at most one line per interval, the next line says how
//     many were left out), so a full disk is in the error log, not only in a
//     counter, and cannot flood it;
//   - the duration of every fdatasync (File::Sync) and directory fsync
//     (SyncDir), reported to a SyncSink (the writer's fsync histogram).
// kNotFound is not a failure (the engine asks for files that may not exist).
//
// Ownership: the base Env and the sink must outlive the ObservedEnv and every
// File it returned. Thread-safety: as the base Env (any thread); the sink is
// called on the thread that synced.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/env.h"
#include "src/conf/log.h"

namespace kingx {

class SyncSink {
 public:
  virtual ~SyncSink() = default;
  // One fdatasync/fsync took `micros` microseconds (also when it failed).
  virtual void OnSync(uint64_t micros) = 0;
};

class ObservedEnv final : public engine::Env {
 public:
  // `who` prefixes the log lines ("writer", "worker 2"). `sink` may be null.
  ObservedEnv(engine::Env& base, std::string who, SyncSink* sink, uint64_t log_interval_ms = 10'000);

  engine::Result<std::unique_ptr<engine::File>> OpenFile(const std::string& path, engine::OpenMode mode) override;
  engine::Status SyncDir(const std::string& dir) override;
  engine::Status Rename(const std::string& from, const std::string& to) override;
  engine::Status RemoveFile(const std::string& path) override;
  engine::Status CreateDir(const std::string& path) override;
  engine::Status Symlink(const std::string& target, const std::string& link_path) override;
  engine::Result<std::vector<std::string>> ListDir(const std::string& dir) override;
  engine::Result<uint64_t> FileSize(const std::string& path) override;
  engine::Result<std::unique_ptr<engine::FileLock>> LockFile(const std::string& path) override;
  engine::Result<std::unique_ptr<engine::FileLock>> LockExisting(const std::string& path, bool shared) override;
  engine::Result<engine::SpaceInfo> Space(const std::string& path) override;
  engine::Result<std::unique_ptr<engine::MappedFile>> MapReadOnly(const std::string& path,
                                                                 uint64_t map_bytes) override;
  engine::Result<engine::FileIdentity> Identify(const std::string& path) override;
  uint64_t OpenFileLimit() override;

  // Passes `s` through; logs it when it is a failure (see the file comment).
  // Public for the File wrapper.
  const engine::Status& Watch(const engine::Status& s);
  void Synced(uint64_t micros);

 private:
  engine::Env& base_;
  std::string who_;
  SyncSink* sink_;
  LogLimiter limiter_;
};

}  // namespace kingx
