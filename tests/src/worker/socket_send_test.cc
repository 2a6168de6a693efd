// SendGathered: the bytes of a gather list arrive whole and in order (one
// piece and several), a full socket answers "would block" at once after a
// partial send, and a peer that closed gives an error, not SIGPIPE.
#include "src/worker/socket_send.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sys/time.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cerrno>
#include <string>

namespace kingx {
namespace {

// A connected stream pair: [0] sends, [1] is the peer. Neither is
// non-blocking: MSG_DONTWAIT alone must keep a send from blocking.
struct Pair {
  Pair() { REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fd) == 0); }
  ~Pair() {
    for (int f : fd) {
      if (f >= 0) close(f);
    }
  }
  std::string Receive(size_t bytes) {
    std::string got;
    char buf[4096];
    while (got.size() < bytes) {
      const ssize_t r = recv(fd[1], buf, std::min(sizeof buf, bytes - got.size()), 0);
      REQUIRE(r > 0);
      got.append(buf, static_cast<size_t>(r));
    }
    return got;
  }
  int fd[2] = {-1, -1};
};

iovec Piece(const std::string& s) { return iovec{const_cast<char*>(s.data()), s.size()}; }

TEST_CASE("SendGathered sends one piece, and several pieces in order", "[worker][socket_send]") {
  Pair p;
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
  const std::string body = "hello";
  const iovec one[1] = {Piece(head)};
  CHECK(SendGathered(p.fd[0], one, 1, true) == static_cast<ssize_t>(head.size()));
  CHECK(p.Receive(head.size()) == head);

  const std::string tail = "!";
  const iovec three[3] = {Piece(head), Piece(body), Piece(tail)};
  CHECK(SendGathered(p.fd[0], three, 3, false) == static_cast<ssize_t>(head.size() + body.size() + tail.size()));
  CHECK(p.Receive(head.size() + body.size() + tail.size()) == head + body + tail);
}

TEST_CASE("SendGathered on a full socket takes what fits, then answers would-block without blocking",
          "[worker][socket_send]") {
  Pair p;
  const int small = 4096;
  REQUIRE(setsockopt(p.fd[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
  // A send that blocked would wait this long, then give up (-EAGAIN).
  const timeval patience{2, 0};
  REQUIRE(setsockopt(p.fd[0], SOL_SOCKET, SO_SNDTIMEO, &patience, sizeof patience) == 0);
  const std::string big(4 << 20, 'x');  // far more than the socket holds
  const iovec pieces[2] = {Piece(big), Piece(big)};
  size_t sent = 0;
  ssize_t r = 0;
  int sends = 0;
  // The peer reads nothing: the socket fills. No send may wait for room.
  const auto start = std::chrono::steady_clock::now();
  while ((r = SendGathered(p.fd[0], pieces, 2, true)) > 0 && sends < 1000) {
    CHECK(static_cast<size_t>(r) < 2 * big.size());  // a partial send: what had room
    sent += static_cast<size_t>(r);
    ++sends;
  }
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(patience.tv_sec));
  CHECK(sends >= 1);
  CHECK(sent > 0);
  CHECK(SendWouldBlock(r));
  // What was taken arrives, in order.
  const std::string got = p.Receive(sent);
  CHECK(got == std::string(sent, 'x'));
}

TEST_CASE("SendGathered to a peer that closed gives -EPIPE, not SIGPIPE", "[worker][socket_send]") {
  // The default disposition would end this process if the send raised it.
  struct sigaction dfl {}, old{};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  REQUIRE(sigaction(SIGPIPE, &dfl, &old) == 0);
  Pair p;
  close(p.fd[1]);
  p.fd[1] = -1;
  const std::string s = "late answer";
  const iovec one[1] = {Piece(s)};
  const ssize_t r = SendGathered(p.fd[0], one, 1, true);
  CHECK(r == -EPIPE);
  CHECK_FALSE(SendWouldBlock(r));
  const iovec two[2] = {Piece(s), Piece(s)};
  CHECK(SendGathered(p.fd[0], two, 2, false) == -EPIPE);
  sigaction(SIGPIPE, &old, nullptr);
}

}  // namespace
}  // namespace kingx
