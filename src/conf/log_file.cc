// Opening log files without waiting (log_file.h).
#include "src/conf/log_file.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

namespace kingx {

engine::Status OpenLogFile(const std::string& path, const char* what, int* fd) {
  int got;
  do {
    got = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0644);
  } while (got < 0 && errno == EINTR);
  if (got >= 0) {
    *fd = got;
    return engine::Status::OK();
  }
  // open(2): ENXIO for O_WRONLY | O_NONBLOCK on a FIFO nobody reads.
  if (errno == ENXIO && IsFifo(path)) {
    return engine::Status::IOError(std::string(what) + " " + path +
                                   " is a FIFO with no reader: start its reader first (kingx never waits for one)");
  }
  return engine::Status::IOError(std::string("cannot open ") + what + " " + path + ": " + std::strerror(errno));
}

engine::Status OpenLogFile(const std::string& path, const char* what, LogFd* fd) {
  fd->reset();
  if (path.empty()) return engine::Status::OK();
  int got = -1;
  if (engine::Status s = OpenLogFile(path, what, &got); !s.ok()) return s;
  fd->reset(got);
  return engine::Status::OK();
}

bool IsFifo(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISFIFO(st.st_mode);
}

}  // namespace kingx
