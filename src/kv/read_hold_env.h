// ReadHoldEnv: a fault seam on the read path of online backups. It forwards
// every call to a base Env; File::Read first waits while a hold file exists,
// so a test can hold a backup's read as long as it wants (a disk that does
// not answer) and release it by removing the file. While a read waits, the
// file `<hold>.held` exists (created by the first held read), so the test
// knows a read is being held without guessing at times.
//
// The server wraps the Env of its backups' reads in it only when the
// environment variable KINGX_BACKUP_READ_HOLD names the hold file (tests);
// otherwise backups read through the base Env directly.
//
// Bounds: a read waits at most kMaxHoldMs, polling the hold file every
// kPollMs, then reads anyway. Ownership: the base Env outlives this one and
// every File it returned. Thread-safety: as the base Env (any thread).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/env.h"

namespace kingx {

class ReadHoldEnv final : public engine::Env {
 public:
  static constexpr uint64_t kPollMs = 10;
  static constexpr uint64_t kMaxHoldMs = 120'000;
  // The environment variable that names the hold file.
  static constexpr const char* kVariable = "KINGX_BACKUP_READ_HOLD";

  ReadHoldEnv(engine::Env& base, std::string hold_path);

  // Waits while the hold file exists (see the file comment).
  void WaitWhileHeld();

  engine::Result<std::unique_ptr<engine::File>> OpenFile(const std::string& path, engine::OpenMode mode) override;
  engine::Status SyncDir(const std::string& dir) override { return base_.SyncDir(dir); }
  engine::Status Rename(const std::string& from, const std::string& to) override { return base_.Rename(from, to); }
  engine::Status RemoveFile(const std::string& path) override { return base_.RemoveFile(path); }
  engine::Status CreateDir(const std::string& path) override { return base_.CreateDir(path); }
  engine::Status Symlink(const std::string& target, const std::string& link_path) override {
    return base_.Symlink(target, link_path);
  }
  engine::Result<std::vector<std::string>> ListDir(const std::string& dir) override { return base_.ListDir(dir); }
  engine::Result<uint64_t> FileSize(const std::string& path) override { return base_.FileSize(path); }
  engine::Result<std::unique_ptr<engine::FileLock>> LockFile(const std::string& path) override {
    return base_.LockFile(path);
  }
  engine::Result<std::unique_ptr<engine::FileLock>> LockExisting(const std::string& path, bool shared) override {
    return base_.LockExisting(path, shared);
  }
  engine::Result<std::unique_ptr<engine::MappedFile>> MapReadOnly(const std::string& path,
                                                                  uint64_t map_bytes) override {
    return base_.MapReadOnly(path, map_bytes);
  }
  engine::Result<engine::FileIdentity> Identify(const std::string& path) override { return base_.Identify(path); }
  uint64_t OpenFileLimit() override { return base_.OpenFileLimit(); }
  engine::Result<engine::SpaceInfo> Space(const std::string& path) override { return base_.Space(path); }

 private:
  engine::Env& base_;
  const std::string hold_path_;
};

}  // namespace kingx
