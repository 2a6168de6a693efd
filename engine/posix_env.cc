// PosixEnv: the real file seam. The only place where the engine's file
// syscalls and errno live; each failure becomes a Status here, once.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "engine/env.h"
#include "engine/kill_point.h"

namespace kingx::engine {
namespace {

Status ErrnoStatus(const char* call, const std::string& path, int err) {
  std::string msg = std::string(call) + " " + path + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) return Status::NoSpace(msg);
  if (err == ENOENT) return Status::NotFound(msg);
  if (err == EMFILE || err == ENFILE || err == ENOMEM) return Status::Busy(msg);
  return Status::IOError(msg);
}

// A file's size and identity, asked with statx for those fields only (0 or
// an errno). Never with stat(2): where the file system keeps fine-grained
// ("multigrain") timestamps (ext4 and others since Linux 6.13), a query that
// reports the change time makes the file's next write stamp a fine-grained
// time, so that write always dirties the inode, and a later fdatasync must
// write the inode's block too (a second synchronous I/O in a group commit,
// on ext4 without a journal). The engine asks sizes of the segment being
// appended to (readers of its newest records, the writer's cache), so a
// stat there would cost the next group commit that I/O. The device and inode
// numbers are always reported; the mask asks for nothing else.
struct FileFacts {
  uint64_t size = 0;
  FileIdentity identity;
};

int StatFacts(int dirfd, const char* path, FileFacts* out) {
  struct statx sx;
  const int flags = path[0] == '\0' ? AT_EMPTY_PATH : 0;
  if (::statx(dirfd, path, flags, STATX_SIZE | STATX_INO, &sx) != 0) return errno;
  out->size = sx.stx_size;
  out->identity = FileIdentity{static_cast<uint64_t>(makedev(sx.stx_dev_major, sx.stx_dev_minor)), sx.stx_ino};
  return 0;
}

class PosixFile final : public File {
 public:
  PosixFile(int fd, std::string path, uint64_t size) : fd_(fd), path_(std::move(path)), end_(size) {}
  ~PosixFile() override { ::close(fd_); }

  Status Append(std::string_view data) override {
    // Track the end ourselves (no O_APPEND: Linux ignores pwrite's offset
    // with it, and PWrite must work on the same descriptor).
    Status s = WriteAll(end_, data, /*advance_end=*/true);
    return s;
  }

  Status PWrite(uint64_t offset, std::string_view data) override {
    return WriteAll(offset, data, /*advance_end=*/false);
  }

  Status Read(uint64_t offset, size_t n, char* scratch, size_t* read) const override {
    size_t done = 0;
    if (const std::optional<uint64_t> bad = KINGX_FAIL_POINT_RANGE("read", path_, offset, n); bad.has_value()) {
      // A failing sector: what precedes it is read, then EIO.
      if (*bad > offset) {
        Status s = Read(offset, static_cast<size_t>(*bad - offset), scratch, &done);
        if (!s.ok() || done < *bad - offset) {
          *read = done;
          return s;
        }
      }
      *read = done;
      return ErrnoStatus("pread", path_, EIO);
    }
    while (done < n) {
      ssize_t r = ::pread(fd_, scratch + done, n - done, static_cast<off_t>(offset + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        *read = done;
        return ErrnoStatus("pread", path_, errno);
      }
      if (r == 0) break;  // end of file
      done += static_cast<size_t>(r);
    }
    *read = done;
    return Status::OK();
  }

  Status Sync() override {
    if (KINGX_FAIL_POINT("sync", path_)) return ErrnoStatus("fdatasync", path_, EIO);
    if (::fdatasync(fd_) != 0) return ErrnoStatus("fdatasync", path_, errno);
    return Status::OK();
  }

  Status Truncate(uint64_t size) override {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) return ErrnoStatus("ftruncate", path_, errno);
    end_ = size;
    return Status::OK();
  }

  Result<uint64_t> Size() const override {
    FileFacts f;
    if (int err = StatFacts(fd_, "", &f); err != 0) return ErrnoStatus("statx", path_, err);
    return f.size;
  }

 private:
  Status WriteAll(uint64_t offset, std::string_view data, bool advance_end) {
    size_t done = 0;
    while (done < data.size()) {
      ssize_t w = ::pwrite(fd_, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
      if (w < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        if (advance_end) end_ = offset + done;
        return ErrnoStatus("pwrite", path_, err);
      }
      done += static_cast<size_t>(w);  // a short write: go on with the rest
    }
    if (advance_end) end_ = offset + done;
    else if (offset + done > end_) end_ = offset + done;
    return Status::OK();
  }

  int fd_;
  std::string path_;
  uint64_t end_;  // where the next Append writes
};

class PosixMappedFile final : public MappedFile {
 public:
  PosixMappedFile(int fd, std::string path, const char* data, uint64_t bytes, FileIdentity identity)
      : fd_(fd), path_(std::move(path)), data_(data), bytes_(bytes), identity_(identity) {}
  ~PosixMappedFile() override {
    if (bytes_ > 0) ::munmap(const_cast<char*>(data_), bytes_);
    ::close(fd_);
  }
  const char* data() const override { return data_; }
  uint64_t mapped_bytes() const override { return bytes_; }
  Result<uint64_t> FileSize() const override {
    FileFacts f;
    if (int err = StatFacts(fd_, "", &f); err != 0) return ErrnoStatus("statx", path_, err);
    return f.size;
  }
  FileIdentity identity() const override { return identity_; }

 private:
  int fd_;
  std::string path_;
  const char* data_;
  uint64_t bytes_;
  FileIdentity identity_;
};

class PosixFileLock final : public FileLock {
 public:
  explicit PosixFileLock(int fd) : fd_(fd) {}
  ~PosixFileLock() override { ::close(fd_); }  // closing the description drops the flock

 private:
  int fd_;
};

class PosixEnvImpl final : public Env {
 public:
  Result<std::unique_ptr<File>> OpenFile(const std::string& path, OpenMode mode) override {
    int flags = O_CLOEXEC;
    switch (mode) {
      case OpenMode::kRead: flags |= O_RDONLY; break;
      case OpenMode::kReadWrite: flags |= O_RDWR; break;
      case OpenMode::kCreateExclusive: flags |= O_RDWR | O_CREAT | O_EXCL; break;
      case OpenMode::kCreateTruncate: flags |= O_RDWR | O_CREAT | O_TRUNC; break;
    }
    int fd;
    do fd = ::open(path.c_str(), flags, 0600);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return ErrnoStatus("open", path, errno);
    FileFacts f;
    if (int err = StatFacts(fd, "", &f); err != 0) {
      ::close(fd);
      return ErrnoStatus("statx", path, err);
    }
    return std::unique_ptr<File>(new PosixFile(fd, path, f.size));
  }

  Status SyncDir(const std::string& dir) override {
    if (KINGX_FAIL_POINT("syncdir", dir)) return ErrnoStatus("fsync dir", dir, EIO);
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("open dir", dir, errno);
    Status s;
    if (::fsync(fd) != 0) s = ErrnoStatus("fsync dir", dir, errno);
    ::close(fd);
    return s;
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (KINGX_FAIL_POINT("rename", from + " -> " + to)) return ErrnoStatus("rename", from + " -> " + to, EIO);
    if (::rename(from.c_str(), to.c_str()) != 0) return ErrnoStatus("rename", from + " -> " + to, errno);
    return Status::OK();
  }

  Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return ErrnoStatus("unlink", path, errno);
    return Status::OK();
  }

  Status Symlink(const std::string& target, const std::string& link_path) override {
    if (::symlink(target.c_str(), link_path.c_str()) != 0)
      return ErrnoStatus("symlink", link_path + " -> " + target, errno);
    return Status::OK();
  }

  Status CreateDir(const std::string& path) override {
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoStatus("mkdir", path, errno);
    return Status::OK();
  }

  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return ErrnoStatus("opendir", dir, errno);
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* e = ::readdir(d)) {
      std::string_view n = e->d_name;
      if (n != "." && n != "..") names.emplace_back(n);
    }
    int err = errno;
    ::closedir(d);
    if (err != 0) return ErrnoStatus("readdir", dir, err);
    return names;
  }

  Result<uint64_t> FileSize(const std::string& path) override {
    FileFacts f;
    if (int err = StatFacts(AT_FDCWD, path.c_str(), &f); err != 0) return ErrnoStatus("statx", path, err);
    return f.size;
  }

  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return ErrnoStatus("open", path, errno);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK) return Status::Busy("database " + path + " is locked by another process");
      return ErrnoStatus("flock", path, err);
    }
    return std::unique_ptr<FileLock>(new PosixFileLock(fd));
  }

  Result<std::unique_ptr<FileLock>> LockExisting(const std::string& path, bool shared) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("open", path, errno);
    if (::flock(fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
      int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK) return Status::Busy(path + " is locked by another process");
      return ErrnoStatus("flock", path, err);
    }
    return std::unique_ptr<FileLock>(new PosixFileLock(fd));
  }

  Result<std::unique_ptr<MappedFile>> MapReadOnly(const std::string& path, uint64_t map_bytes) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("open", path, errno);
    if (KINGX_FAIL_POINT("map", path)) {  // a file that exists, and cannot be read
      ::close(fd);
      return ErrnoStatus("mmap", path, EIO);
    }
    FileFacts f;
    if (int err = StatFacts(fd, "", &f); err != 0) {
      ::close(fd);
      return ErrnoStatus("statx", path, err);
    }
    uint64_t bytes = std::max<uint64_t>(map_bytes, f.size);
    const char* data = nullptr;
    if (bytes > 0) {
      void* p = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
      if (p == MAP_FAILED) {
        int err = errno;
        ::close(fd);
        return ErrnoStatus("mmap", path, err);
      }
      data = static_cast<const char*>(p);
    }
    return std::unique_ptr<MappedFile>(new PosixMappedFile(fd, path, data, bytes, f.identity));
  }

  Result<FileIdentity> Identify(const std::string& path) override {
    FileFacts f;
    if (int err = StatFacts(AT_FDCWD, path.c_str(), &f); err != 0) return ErrnoStatus("statx", path, err);
    return f.identity;
  }

  uint64_t OpenFileLimit() override {
    struct rlimit rl;
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return 0;
    return static_cast<uint64_t>(rl.rlim_cur);
  }

  Result<SpaceInfo> Space(const std::string& path) override {
    struct statvfs st;
    if (::statvfs(path.c_str(), &st) != 0) return ErrnoStatus("statvfs", path, errno);
    SpaceInfo info;
    info.total_bytes = static_cast<uint64_t>(st.f_blocks) * st.f_frsize;
    info.free_bytes = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
    return info;
  }
};

}  // namespace

Env& PosixEnv() {
  static PosixEnvImpl* env = new PosixEnvImpl();  // never destroyed: usable from exit paths
  return *env;
}

std::string JoinPath(const std::string& dir, std::string_view name) {
  std::string p = dir;
  if (!p.empty() && p.back() != '/') p += '/';
  p += name;
  return p;
}

}  // namespace kingx::engine
