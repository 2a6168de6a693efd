// Opening a log file (error log, access log) so that no process that serves
// or supervises ever waits on it.
//
// A log path may name a regular file, a terminal, or a FIFO read by a log
// shipper. A plain open(2) for writing of a FIFO that has no reader waits
// until one comes: in the master (start, reload) or a worker (USR1) that is a
// hang. Log files are therefore opened with O_NONBLOCK, which makes that open
// fail at once (ENXIO), reported here as an error naming the setting; and the
// flag stays on the descriptor, so a write to a pipe whose reader stalls
// returns EAGAIN instead of stopping the process: the writers
// (src/conf/log.h, src/conf/access_log.h) drop or hold lines, they never
// wait. On a regular file O_NONBLOCK changes nothing.
//
// Any thread; one open(2) (and fstat(2) in IsFifo); no allocation but the
// error's text.
#pragma once

#include <unistd.h>

#include <string>
#include <utility>

#include "engine/status.h"

namespace kingx {

// Opens `path` for appending (created 0644 if missing; O_CLOEXEC |
// O_NONBLOCK). `what` names the log and its setting for the error
// ("access log (--access-log)"). On success *fd is the caller's. Errors
// (kIOError, *fd untouched): "<what> <path> is a FIFO with no reader: ..." or
// "cannot open <what> <path>: <strerror>".
engine::Status OpenLogFile(const std::string& path, const char* what, int* fd);

// Whether `path` names an existing FIFO (false when it is anything else or
// cannot be examined).
bool IsFifo(const std::string& path);

// The names OpenLogFile's callers give the two logs.
inline constexpr const char* kErrorLogWhat = "error log (--error-log)";
inline constexpr const char* kAccessLogWhat = "access log (--access-log)";

// An open log file's descriptor, closed when dropped or replaced (the master
// keeps the access log's for the workers it forks). -1 = none.
class LogFd {
 public:
  LogFd() = default;
  explicit LogFd(int fd) : fd_(fd) {}
  ~LogFd() { reset(); }
  LogFd(LogFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  LogFd& operator=(LogFd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  LogFd(const LogFd&) = delete;
  LogFd& operator=(const LogFd&) = delete;

  int get() const { return fd_; }
  // Gives the descriptor up to the caller.
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// OpenLogFile into a LogFd; an empty `path` (the log off, or stderr) opens
// nothing and succeeds.
engine::Status OpenLogFile(const std::string& path, const char* what, LogFd* fd);

}  // namespace kingx
