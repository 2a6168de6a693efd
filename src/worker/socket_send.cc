// SendGathered (see socket_send.h).
#include "src/worker/socket_send.h"

#include <sys/socket.h>

namespace kingx {

ssize_t SendGathered(int fd, const iovec* iov, size_t n, bool dontwait) {
  const int flags = MSG_NOSIGNAL | (dontwait ? MSG_DONTWAIT : 0);
  for (;;) {
    ssize_t r;
    if (n == 1) {
      r = send(fd, iov[0].iov_base, iov[0].iov_len, flags);
    } else {
      msghdr msg{};
      msg.msg_iov = const_cast<iovec*>(iov);
      msg.msg_iovlen = n;
      r = sendmsg(fd, &msg, flags);
    }
    if (r >= 0) return r;
    if (errno != EINTR) return -errno;
  }
}

}  // namespace kingx
