// Env and File: the file seam. Every file syscall the engine makes goes
// through these interfaces, so tests can substitute a FaultInjectionEnv
// (tests/engine/support/fault_env.h) that injects EIO, ENOSPC, short writes
// and power loss.
//
// errno is converted to a Status here, once: ENOSPC and EDQUOT become
// kNoSpace; ENOENT kNotFound; EMFILE, ENFILE and ENOMEM (out of descriptors,
// or of mappings: vm.max_map_count) kBusy, a transient shortage; every other
// failure kIOError. The message names the call, the path and strerror(). EINTR and short writes are retried inside
// (Append/PWrite either write every byte or return an error; after an error
// an unknown prefix of the bytes may be in the file).
//
// Thread-safety: an Env is safe to use from any thread. A File may be used
// by one thread at a time, except Read, which is safe concurrently.
// All files are opened O_CLOEXEC, created with mode 0600.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/status.h"

namespace kingx::engine {

// An open file. Closed by the destructor (errors on close are ignored there:
// data that matters is made durable with Sync before).
class File {
 public:
  virtual ~File() = default;
  // Writes all of data at the current end of file (O_APPEND semantics for the
  // files the engine appends to). kNoSpace / kIOError on failure.
  virtual Status Append(std::string_view data) = 0;
  // Writes all of data at offset (the end of file is not moved back).
  virtual Status PWrite(uint64_t offset, std::string_view data) = 0;
  // Reads up to n bytes at offset into scratch; *read < n only at end of file.
  virtual Status Read(uint64_t offset, size_t n, char* scratch, size_t* read) const = 0;
  // fdatasync. After a failure the file's durable contents are unknown: the
  // caller must not retry and report success (see Writer).
  virtual Status Sync() = 0;
  // ftruncate to size bytes (the new size is not durable until Sync).
  virtual Status Truncate(uint64_t size) = 0;
  // Current size (fstat).
  virtual Result<uint64_t> Size() const = 0;
};

// Which file a path named when it was opened (st_dev, st_ino): tells a file
// from another one created later under the same name.
struct FileIdentity {
  uint64_t device = 0;
  uint64_t inode = 0;
  bool operator==(const FileIdentity&) const = default;
};

// A read-only shared mapping of a file (mmap PROT_READ, MAP_SHARED) of
// mapped_bytes() bytes, which may extend past the end of the file so that a
// growing file need not be remapped. Only bytes below the file's size may be
// touched (past it the kernel raises SIGBUS): ask FileSize() when a record
// lies beyond the size known so far. Unmapped by the destructor. Safe to read
// from any number of threads.
class MappedFile {
 public:
  virtual ~MappedFile() = default;
  virtual const char* data() const = 0;
  virtual uint64_t mapped_bytes() const = 0;
  // The file's current size (fstat on the descriptor kept open with the mapping,
  // so it works after the file was unlinked).
  virtual Result<uint64_t> FileSize() const = 0;
  // The mapped file's identity (taken when it was mapped).
  virtual FileIdentity identity() const = 0;
};

// Space in the file system holding a directory (statvfs).
struct SpaceInfo {
  uint64_t total_bytes = 0;  // size of the file system
  uint64_t free_bytes = 0;   // bytes an unprivileged process may still allocate (f_bavail)
};

// A held flock (LockFile, LockExisting); released by the destructor.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

enum class OpenMode : uint8_t {
  kRead,             // existing file, read only
  kReadWrite,        // existing file, read and write
  kCreateExclusive,  // new file, read and write; kIOError if it already exists
  kCreateTruncate,   // create or truncate to 0, read and write
};

class Env {
 public:
  virtual ~Env() = default;
  // Opens path as mode says. kNotFound when it does not exist (kRead, kReadWrite).
  virtual Result<std::unique_ptr<File>> OpenFile(const std::string& path, OpenMode mode) = 0;
  // fsync of a directory, so that entries created, renamed or removed in it are durable.
  virtual Status SyncDir(const std::string& dir) = 0;
  // rename(2); atomic; durable after SyncDir of the directory.
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  // unlink(2). kNotFound when path does not exist.
  virtual Status RemoveFile(const std::string& path) = 0;
  // mkdir(path, 0700) when it does not exist yet (OK when it does).
  virtual Status CreateDir(const std::string& path) = 0;
  // symlink(2): makes link_path a symbolic link to target. Nothing about
  // target changes (it need not exist). kIOError naming link_path on
  // failure (it exists already, no permission, ...).
  virtual Status Symlink(const std::string& target, const std::string& link_path) = 0;
  // Names (not paths) of the entries of dir, without "." and "..", unsorted.
  virtual Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  // Size of the file at path. kNotFound when it does not exist.
  virtual Result<uint64_t> FileSize(const std::string& path) = 0;
  // Takes flock(LOCK_EX | LOCK_NB) on path (created if missing). kBusy when
  // another open file description (another process) holds it.
  virtual Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) = 0;
  // Takes flock(LOCK_SH | LOCK_NB) (shared) or flock(LOCK_EX | LOCK_NB) on
  // an existing file or directory opened O_RDONLY: nothing is created and no
  // byte or time stamp changes. kNotFound when path does not exist; kBusy
  // when another open file description holds a conflicting lock.
  virtual Result<std::unique_ptr<FileLock>> LockExisting(const std::string& path, bool shared) = 0;
  // Maps path read-only with at least map_bytes bytes of address space (at
  // least the file's size). kNotFound when the file does not exist.
  virtual Result<std::unique_ptr<MappedFile>> MapReadOnly(const std::string& path, uint64_t map_bytes) = 0;
  // The identity of the file at path now. kNotFound when there is none.
  virtual Result<FileIdentity> Identify(const std::string& path) = 0;
  // The process's limit on open descriptors (RLIMIT_NOFILE, soft); 0 when unlimited.
  virtual uint64_t OpenFileLimit() = 0;
  // Size and free space of the file system holding path (a directory or a
  // file). kNotFound when path does not exist, kIOError otherwise.
  virtual Result<SpaceInfo> Space(const std::string& path) = 0;
};

// The real Env over POSIX syscalls. A process-wide singleton, never destroyed.
Env& PosixEnv();

// Joins a directory and a file name with one '/'.
std::string JoinPath(const std::string& dir, std::string_view name);

}  // namespace kingx::engine
