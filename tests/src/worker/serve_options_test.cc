// TuneListenSocket / ListenOptionsInherited: a listener tuned with a
// worker's configuration hands TCP_NODELAY and TCP_NOTSENT_LOWAT to the
// sockets it accepts, and a later configuration (a reload) replaces them,
// --send-lowat-bytes 0 included. MinimumDescriptorLimit: above it the
// reserve, the doorbells and the connection cap fit the limit.
#include "src/worker/serve_options.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>
#include <utility>

namespace kingx {
namespace {

int IntOption(int fd, int name) {
  int v = -1;
  socklen_t len = sizeof v;
  REQUIRE(getsockopt(fd, IPPROTO_TCP, name, &v, &len) == 0);
  return v;
}

// A loopback listener on an ephemeral port.
struct Listener {
  Listener() {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    REQUIRE(listen(fd, 8) == 0);
  }
  ~Listener() { close(fd); }

  // Connects a client and accepts it: {client, accepted}.
  std::pair<int, int> Connect() const {
    const int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(client >= 0);
    REQUIRE(connect(client, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
    const int accepted = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    REQUIRE(accepted >= 0);
    return {client, accepted};
  }

  int fd = -1;
  sockaddr_in addr{};
};

// {TCP_NODELAY, TCP_NOTSENT_LOWAT} of a socket the listener accepts now.
std::pair<int, int> AcceptedOptions(const Listener& l) {
  auto [client, accepted] = l.Connect();
  const std::pair<int, int> options{IntOption(accepted, TCP_NODELAY), IntOption(accepted, TCP_NOTSENT_LOWAT)};
  close(client);
  close(accepted);
  return options;
}

TEST_CASE("accepted sockets carry the options a tuned listener was given, and a new configuration replaces them",
          "[worker][serve_options]") {
  // Linux copies both options into accepted sockets; the check at startup
  // must see it (a false here would put the two setsockopt calls back on
  // every connection).
  REQUIRE(ListenOptionsInherited());
  Listener l;
  Config config;
  config.send_lowat_bytes = 16 << 10;
  REQUIRE(TuneListenSocket(l.fd, config));
  auto [nodelay, lowat] = AcceptedOptions(l);
  CHECK(nodelay != 0);
  CHECK(lowat == 16 << 10);

  config.send_lowat_bytes = 64 << 10;  // a reload with another value
  REQUIRE(TuneListenSocket(l.fd, config));
  CHECK(AcceptedOptions(l).second == 64 << 10);

  config.send_lowat_bytes = 0;  // a reload back to the kernel's default
  REQUIRE(TuneListenSocket(l.fd, config));
  CHECK(AcceptedOptions(l).second == 0);
}

TEST_CASE("a socket that is not a TCP listener is not taken as tuned", "[worker][serve_options]") {
  int fds[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
  Config config;
  CHECK_FALSE(TuneListenSocket(fds[0], config));
  close(fds[0]);
  close(fds[1]);
}

}  // namespace
TEST_CASE("at every descriptor limit a start accepts, the reserve, the pool's doorbells and the cap fit the limit",
          "[worker][serve_options]") {
  for (const Model model : {Model::kEvent, Model::kThreads}) {
    for (const uint32_t threads : {1u, 4u, 16u, 150u}) {
      Config c;
      c.model = model;
      c.threads = threads;
      c.max_connections = 100000;
      const uint64_t minimum = MinimumDescriptorLimit(c);
      INFO("model " << (model == Model::kEvent ? "event" : "threads") << ", " << threads << " threads, minimum "
                    << minimum);
      CHECK(DescriptorLimitTooLow(c, minimum - 1, "open file limit").find("is below the " +
                                                                          std::to_string(minimum)) !=
            std::string::npos);
      CHECK(DescriptorLimitTooLow(c, minimum, "open file limit").empty());
      for (uint64_t limit = minimum; limit <= 4096; ++limit) {
        const uint64_t cap = ConnectionCapAt(c, limit);
        const uint64_t doorbells = PoolDoorbellShareAt(c, limit);
        INFO("limit " << limit << ": reserve " << ReservedDescriptors(limit) << ", doorbells " << doorbells
                      << ", cap " << cap);
        REQUIRE(ReservedDescriptors(limit) + doorbells + cap <= limit);
        REQUIRE(cap >= kMinConnections);
        if (model == Model::kThreads) REQUIRE(doorbells >= std::min<uint64_t>(threads, kMinConnections));
      }
    }
  }
}

}  // namespace kingx
