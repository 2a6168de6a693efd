// HoldDataDir: what the master (or the single-process driver) takes on the
// data directory before anything else runs on it, held for the server's life.
//
//  - First, the data directory rule (DataDirRule below): nothing is created,
//    locked or changed in a directory it refuses.
//  - Read-write (default): creates the directory when missing and takes the
//    read-write lock of engine/data_dir_lock.h (kBusy while another kingx or
//    kingx-tool holds it, read-write or read-only).
//  - --read-only: creates nothing in it and changes nothing (the directory
//    must exist: kNotFound). Takes the shared lock (kBusy while a read-write
//    server or tool holds it; other read-only servers share it). Makes a
//    scratch directory outside it (under $TMPDIR, else /tmp) for the sorted
//    key view, named by scratch_dir(); the DataDirHold removes it when
//    destroyed. It is named kingx-ro-keys-<master pid>-* and locked (flock,
//    exclusive) for the server's life; a master killed with SIGKILL leaves
//    it behind, and the next read-only start removes every such directory
//    whose master is gone and whose lock nobody holds.
//
// `attempt_lock` wraps the lock attempt (the master retries it while a
// previous instance is still stopping). Master thread only, before any fork.
// Error messages are ready to log (they name the directory and --read-only).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "engine/env.h"
#include "engine/status.h"

namespace kingx {

// The rule a start (and `kingx -t`) applies to --data before anything else,
// the same one kingx-tool applies (engine/data_dir_holds.h): read-write, the
// directory is missing (a start creates it), empty, or holds a database;
// --read-only, it holds a database. Else kNotFound, ready to log: "--data
// DIR: no database in DIR: ..." naming what is there. Reads the listing only.
engine::Status DataDirRule(engine::Env& env, const std::string& dir, bool read_only);

// Where a --read-only server makes its scratch directory: $TMPDIR, else /tmp
// (`kingx -t --read-only` checks that it takes one).
std::string ReadOnlyScratchParent();

class DataDirHold {
 public:
  DataDirHold() = default;
  DataDirHold(DataDirHold&& other) noexcept;
  DataDirHold& operator=(DataDirHold&& other) noexcept;
  ~DataDirHold();  // releases the lock, removes the scratch directory

  // The sorted key view's directory of a read-only server; empty otherwise.
  const std::string& scratch_dir() const { return scratch_; }

 private:
  friend engine::Result<DataDirHold> HoldDataDir(
      const std::string& dir, bool read_only,
      const std::function<engine::Result<std::unique_ptr<engine::FileLock>>(
          const std::function<engine::Result<std::unique_ptr<engine::FileLock>>()>&)>& attempt_lock);
  void Release();
  std::unique_ptr<engine::FileLock> lock_;
  std::unique_ptr<engine::FileLock> scratch_lock_;
  std::string scratch_;
};

engine::Result<DataDirHold> HoldDataDir(
    const std::string& dir, bool read_only,
    const std::function<engine::Result<std::unique_ptr<engine::FileLock>>(
        const std::function<engine::Result<std::unique_ptr<engine::FileLock>>()>&)>& attempt_lock = {});

}  // namespace kingx
