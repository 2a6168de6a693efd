// The error log's sink (log_sink.h).
#include "src/conf/log_sink.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace kingx {

LogSink OpenStderrSink() {
  struct stat st;
  if (fstat(STDERR_FILENO, &st) != 0) return LogSink{STDERR_FILENO, SinkWrite::kPollFirst};
  if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) return LogSink{STDERR_FILENO, SinkWrite::kWrite};
  if (S_ISSOCK(st.st_mode)) return LogSink{STDERR_FILENO, SinkWrite::kSend};
  // A terminal, a pipe, a FIFO, a character device: opening the object again
  // gives a description of our own (O_NOCTTY: a session leader must not
  // acquire the terminal as its controlling one). A pipe whose reader left
  // refuses it (ENXIO): its writes fail at once anyway.
  int fd;
  do {
    fd = open("/proc/self/fd/2", O_WRONLY | O_APPEND | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd >= 0) return LogSink{fd, SinkWrite::kWrite};
  return LogSink{STDERR_FILENO, SinkWrite::kPollFirst};
}

bool WriteToSink(const LogSink& sink, std::string_view line) {
  if (sink.how == SinkWrite::kPollFirst) {
    pollfd p{sink.fd, POLLOUT, 0};
    int r;
    do {
      r = poll(&p, 1, 0);
    } while (r < 0 && errno == EINTR);
    if (r != 1 || (p.revents & POLLOUT) == 0) return false;
  }
  ssize_t w;
  do {
    w = sink.how == SinkWrite::kSend ? send(sink.fd, line.data(), line.size(), MSG_DONTWAIT | MSG_NOSIGNAL)
                                     : write(sink.fd, line.data(), line.size());
  } while (w < 0 && errno == EINTR);
  return w == static_cast<ssize_t>(line.size());
}

}  // namespace kingx
