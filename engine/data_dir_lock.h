// LockDataDir: keeps the processes that open one data directory apart.
//
//  - Read-write (a server, kingx-tool's writing commands): flock(LOCK_EX) on
//    the directory's LOCK file (created when missing) and on the directory
//    itself. kBusy while any other holder, read-write or read-only, is there.
//  - Read-only (kingx --read-only, kingx-tool's reading commands): flock
//    (LOCK_SH) on the directory, opened O_RDONLY, and on the LOCK file when
//    there is one. Nothing is created and no byte or time stamp changes, so
//    a backup or a snapshot stays exactly as it was. Read-only holders share
//    the directory with each other; kBusy while a read-write holder is there.
//
// The lock lasts as long as the returned FileLock (its destructor releases
// it). Any process or thread. Errors: kBusy (another holder; the message
// says which kind is needed), kNotFound (read-only: the directory does not
// exist), kIOError. The directory must exist (the caller creates it for a
// read-write open).
#pragma once

#include <memory>
#include <string>

#include "engine/env.h"
#include "engine/status.h"

namespace kingx::engine {

// The lock file's name in a data directory.
inline constexpr const char* kDataDirLockFile = "LOCK";

Result<std::unique_ptr<FileLock>> LockDataDir(Env& env, const std::string& dir, bool read_only);

}  // namespace kingx::engine
