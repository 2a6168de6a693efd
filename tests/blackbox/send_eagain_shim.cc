// Test shim, loaded with LD_PRELOAD into a kingx started by
// tests/blackbox/test_metrics.py: makes a TCP socket look full to the
// worker's own non-blocking sends, so that kingx_http_writes_blocked_total
// can be driven and counted from outside.
//
// While the environment names a file in KINGX_SEND_EAGAIN_COUNT, every
// send() and sendmsg() with MSG_DONTWAIT on a TCP socket takes no byte and
// fails with EAGAIN, and appends one byte to that file (O_APPEND: one
// write per failure, whichever process): the file's size is the number of
// sends refused. Everything else (blocking sends, Unix sockets, write and
// writev, which libuv's uv_write uses) goes to the C library untouched, so
// each refused response still goes out through uv_write.
//
// Any thread of any process that loads it; no state beside the C library's
// symbols, looked up once.
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace {

// True (and counted) when this send is to be refused.
bool Refuse(int fd, int flags) {
  if ((flags & MSG_DONTWAIT) == 0) return false;
  const char* count_path = std::getenv("KINGX_SEND_EAGAIN_COUNT");
  if (count_path == nullptr || *count_path == '\0') return false;
  int type = 0;
  socklen_t len = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) return false;
  sockaddr_storage addr{};
  len = sizeof addr;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return false;
  if (addr.ss_family != AF_INET && addr.ss_family != AF_INET6) return false;
  const int saved = errno;
  const int out = open(count_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (out >= 0) {
    if (write(out, "x", 1) != 1) {
      // The count is then short: the test's comparison fails, as it should.
    }
    close(out);
  }
  errno = saved;
  return true;
}

}  // namespace

extern "C" ssize_t send(int fd, const void* buf, size_t n, int flags) {
  static const auto real = reinterpret_cast<ssize_t (*)(int, const void*, size_t, int)>(dlsym(RTLD_NEXT, "send"));
  if (Refuse(fd, flags)) {
    errno = EAGAIN;
    return -1;
  }
  return real(fd, buf, n, flags);
}

extern "C" ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  static const auto real = reinterpret_cast<ssize_t (*)(int, const msghdr*, int)>(dlsym(RTLD_NEXT, "sendmsg"));
  if (Refuse(fd, flags)) {
    errno = EAGAIN;
    return -1;
  }
  return real(fd, msg, flags);
}
