// Listening sockets: one reuseport socket per worker index on one port, one
// shared socket, growth and shrink on reload, refusal of a port in use.
#include "src/master/listen.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <set>

namespace kingx {
namespace {

uint16_t PortOf(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof(a);
  REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  return ntohs(a.sin_port);
}

Config Ephemeral(AcceptMode mode) {
  Config c;
  c.listen = {ListenAddress{"127.0.0.1", 0}};
  c.accept = mode;
  return c;
}

// Connects to 127.0.0.1:port; returns the fd (the test closes it).
int Connect(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  return fd;
}

}  // namespace

TEST_CASE("reuseport gives each worker index its own socket on one port", "[src][listen]") {
  auto s = OpenListenSockets(Ephemeral(AcceptMode::kReusePort), 3);
  REQUIRE(s.ok());
  REQUIRE(s->fds.size() == 1);
  REQUIRE(s->fds[0].size() == 3);
  const uint16_t port = s->addresses[0].port;
  CHECK(port != 0);
  std::set<int> fds;
  for (uint32_t i = 0; i < 3; ++i) {
    const auto mine = WorkerListenFds(*s, i, 3);
    REQUIRE(mine.size() == 1);
    CHECK(PortOf(mine[0]) == port);
    fds.insert(mine[0]);
  }
  CHECK(fds.size() == 3);

  // A reload to 5 workers adds two sockets to the same group; back to 2, the
  // five stay open (closing one would reset its queued connections) and the
  // two workers accept on all of them: 0, 2, 4 and 1, 3.
  REQUIRE(GrowListenSockets(&*s, 5).ok());
  CHECK(s->fds[0].size() == 5);
  CHECK(PortOf(WorkerListenFds(*s, 4, 5)[0]) == port);
  REQUIRE(GrowListenSockets(&*s, 2).ok());
  CHECK(AllListenFds(*s).size() == 5);
  const auto& all = s->fds[0];
  CHECK(WorkerListenFds(*s, 0, 2) == std::vector<int>{all[0], all[2], all[4]});
  CHECK(WorkerListenFds(*s, 1, 2) == std::vector<int>{all[1], all[3]});

  // The group accepts connections (the kernel spreads them over the sockets).
  const int client = Connect(port);
  close(client);
  CloseListenSockets(&*s);
  CHECK(AllListenFds(*s).empty());
}

TEST_CASE("shared accept gives every worker the same socket", "[src][listen]") {
  Config c = Ephemeral(AcceptMode::kShared);
  c.admin_listen = ListenAddress{"127.0.0.1", 0};
  auto s = OpenListenSockets(c, 4);
  REQUIRE(s.ok());
  REQUIRE(s->fds[0].size() == 1);
  CHECK(WorkerListenFds(*s, 0, 4) == WorkerListenFds(*s, 3, 4));
  CHECK(s->admin_fd >= 0);
  CHECK(s->admin_address.port != 0);
  CHECK(s->admin_address.port != s->addresses[0].port);
  CHECK(AllListenFds(*s).size() == 2);
  CloseListenSockets(&*s);
}

TEST_CASE("a port another process listens on is refused, even with SO_REUSEPORT", "[src][listen]") {
  // Someone else's reuseport listener on a port: joining its group would
  // silently take a share of its connections.
  auto other = OpenListenSockets(Ephemeral(AcceptMode::kReusePort), 1);
  REQUIRE(other.ok());
  Config c;
  c.listen = {other->addresses[0]};
  c.accept = AcceptMode::kReusePort;
  auto mine = OpenListenSockets(c, 2);
  REQUIRE_FALSE(mine.ok());
  CHECK(mine.status().Is(engine::Code::kBusy));  // the master waits a bounded time on kBusy
  CHECK(std::string(mine.status().message()).find("in use") != std::string::npos);
  c.accept = AcceptMode::kShared;
  CHECK_FALSE(OpenListenSockets(c, 1).ok());
  CloseListenSockets(&*other);
}

}  // namespace kingx
