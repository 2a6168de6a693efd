// socket_cost: what the kernel alone charges a server per request on N
// loopback TCP connections, with no server code around it, so that a
// server's CPU per request at 100 and at 1,000 connections can be split into
// the kernel's part and its own.
//
// Usage: socket_cost --conns N [--rounds R] [--iters I] [--request-bytes B] [--response-bytes B]
// One process, one thread. N client sockets each send one request of B
// bytes; then the "server" side, timed with CLOCK_THREAD_CPUTIME_ID, takes
// them and answers each, in one of these ways per round (the ways rotate,
// so each is measured beside the others on the same sockets):
//   read+write         the calls libuv makes (uv__read, uv__try_write)
//   read+send          libuv's read, the socket call to answer (kingx's worker)
//   recv+send          the socket calls (no VFS layer)
//   epoll-lt           epoll_wait (level-triggered, as libuv registers) + read + write
//   epoll-et           epoll_wait (edge-triggered, as nginx registers) + read + write
// The clients then read their answers (untimed). The loopback delivery of an
// answer to its client socket runs inside the server's write, as it does for
// a real server. Prints, per way, the server's CPU ns per request.
// Timed figures: preliminary on a busy machine; compare ways within one run.
// Exit 0, or 1 with a message (a socket call failed).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "socket_cost: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

double ThreadCpuNs() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) * 1e9 + double(t.tv_nsec);
}

enum Way { kReadWrite, kReadSend, kRecvSend, kEpollLt, kEpollEt, kWays };
const char* const kNames[kWays] = {"read+write", "read+send", "recv+send", "epoll-lt", "epoll-et"};

struct Pairs {
  std::vector<int> client, server;
  int epoll[2] = {-1, -1};  // level-triggered, edge-triggered
};

Pairs Connect(int n) {
  Pairs p;
  const int l = socket(AF_INET, SOCK_STREAM, 0);
  if (l < 0) Die("socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(l, 4096) != 0 ||
      getsockname(l, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    Die("listen");
  }
  const int one = 1;
  for (int i = 0; i < n; ++i) {
    const int c = socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0 || connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) Die("connect");
    const int s = accept4(l, nullptr, nullptr, SOCK_NONBLOCK);
    if (s < 0) Die("accept4");
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    p.client.push_back(c);
    p.server.push_back(s);
  }
  close(l);
  for (int m = 0; m < 2; ++m) {
    p.epoll[m] = epoll_create1(0);
    if (p.epoll[m] < 0) Die("epoll_create1");
    for (int i = 0; i < n; ++i) {
      epoll_event e{};
      e.events = EPOLLIN | (m == 1 ? EPOLLET : 0u);
      e.data.u32 = static_cast<uint32_t>(i);
      if (epoll_ctl(p.epoll[m], EPOLL_CTL_ADD, p.server[static_cast<size_t>(i)], &e) != 0) Die("epoll_ctl");
    }
  }
  return p;
}

// Answers the request waiting on server socket s (read+write, read+send or
// recv+send).
void Answer(int s, Way way, char* buf, size_t buf_bytes, const std::string& response, size_t request_bytes) {
  const ssize_t got = way == kRecvSend ? recv(s, buf, buf_bytes, 0) : read(s, buf, buf_bytes);
  if (got != static_cast<ssize_t>(request_bytes)) Die("server read");
  const ssize_t put = way == kReadWrite ? write(s, response.data(), response.size())
                                        : send(s, response.data(), response.size(), MSG_NOSIGNAL);
  if (put != static_cast<ssize_t>(response.size())) Die("server write");
}

}  // namespace

int main(int argc, char** argv) {
  int conns = 0, rounds = 6, iters = 0;
  size_t request_bytes = 100, response_bytes = 200;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const long v = std::strtol(argv[i + 1], nullptr, 10);
    if (k == "--conns") conns = static_cast<int>(v);
    else if (k == "--rounds") rounds = static_cast<int>(v);
    else if (k == "--iters") iters = static_cast<int>(v);
    else if (k == "--request-bytes") request_bytes = static_cast<size_t>(v);
    else if (k == "--response-bytes") response_bytes = static_cast<size_t>(v);
    else { std::fprintf(stderr, "socket_cost: unknown option %s\n", k.c_str()); return 1; }
  }
  if (conns <= 0 || rounds <= 0 || request_bytes == 0 || request_bytes > 4096 || response_bytes == 0) {
    std::fprintf(stderr, "usage: socket_cost --conns N [--rounds R] [--iters I] [--request-bytes 1..4096] "
                         "[--response-bytes B]\n");
    return 1;
  }
  if (iters <= 0) iters = std::max(1, 20000 / conns);  // ~20,000 requests per way and round
  Pairs p = Connect(conns);
  const std::string request(request_bytes, 'q');
  const std::string response(response_bytes, 'r');
  std::vector<char> buf(65536);
  std::vector<epoll_event> events(1024);
  double ns[kWays] = {};
  long requests[kWays] = {};
  for (int r = 0; r < rounds; ++r) {
    for (int w0 = 0; w0 < kWays; ++w0) {
      const Way way = static_cast<Way>((w0 + r) % kWays);
      for (int it = 0; it < iters; ++it) {
        for (int c : p.client) {
          if (write(c, request.data(), request.size()) != static_cast<ssize_t>(request.size())) Die("client write");
        }
        const double t0 = ThreadCpuNs();
        if (way == kReadWrite || way == kReadSend || way == kRecvSend) {
          for (int s : p.server) Answer(s, way, buf.data(), buf.size(), response, request.size());
        } else {
          const int ep = p.epoll[way == kEpollEt ? 1 : 0];
          int answered = 0;
          while (answered < conns) {
            const int k = epoll_wait(ep, events.data(), static_cast<int>(events.size()), -1);
            if (k < 0 && errno != EINTR) Die("epoll_wait");
            for (int j = 0; j < k; ++j) {
              const int s = p.server[events[static_cast<size_t>(j)].data.u32];
              // (Level-triggered, the kernel re-checks at the next wait each
              // socket it reported: that cost is inside epoll_wait.)
              const ssize_t got = read(s, buf.data(), buf.size());
              if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) continue;
              if (got != static_cast<ssize_t>(request.size())) Die("server read");
              if (write(s, response.data(), response.size()) != static_cast<ssize_t>(response.size())) {
                Die("server write");
              }
              ++answered;
            }
          }
        }
        ns[way] += ThreadCpuNs() - t0;
        requests[way] += conns;
        for (int c : p.client) {
          size_t got = 0;
          while (got < response.size()) {
            const ssize_t k = read(c, buf.data(), response.size() - got);
            if (k <= 0) Die("client read");
            got += static_cast<size_t>(k);
          }
        }
      }
    }
  }
  for (int w = 0; w < kWays; ++w) {
    std::printf("conns %d %s %.0f ns/request (%ld requests)\n", conns, kNames[w], ns[w] / double(requests[w]),
                requests[w]);
  }
  return 0;
}
