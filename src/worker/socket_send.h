// SendGathered: one send of a gather list on a connected stream socket, by
// the socket calls (send for one piece, sendmsg for more), the way both
// serving models write responses.
//
// Why the socket calls and not write/writev: on a socket, write and writev
// go through the VFS layer first (the file's position and permission checks,
// the inode's notification masks) and reach the same sock_sendmsg; send and
// sendmsg go to it directly. With a thousand connections the socket's inode
// is a cold line per response (bench/socket_cost measures the difference).
//
// MSG_NOSIGNAL always: a peer that closed gives -EPIPE, never SIGPIPE.
// dontwait: MSG_DONTWAIT, for a caller whose socket may be blocking or that
// must not block; otherwise the socket's own mode (and SO_SNDTIMEO) applies.
// Returns the bytes the socket took (> 0; fewer than gathered when it had
// room for only part), or -errno: -EAGAIN / -EWOULDBLOCK / -ENOBUFS when it
// had room for nothing (the caller waits for writability), anything else a
// failed connection. EINTR is retried. Any thread; no state.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstddef>

namespace kingx {

// iov[0..n) with n >= 1 and at least one byte in all.
ssize_t SendGathered(int fd, const iovec* iov, size_t n, bool dontwait);

// True for SendGathered's "no room now, wait for the socket" results.
inline bool SendWouldBlock(ssize_t r) { return r == -EAGAIN || r == -EWOULDBLOCK || r == -ENOBUFS; }

}  // namespace kingx
