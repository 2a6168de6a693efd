// Listening sockets (see listen.h).
#include "src/master/listen.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>

namespace kingx {
namespace {

constexpr int kBacklog = 4096;

engine::Result<int> OpenOne(const ListenAddress& addr, bool reuseport, ListenAddress* bound) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  const bool v6 = addr.host.find(':') != std::string::npos;
  if (v6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(addr.port);
    if (inet_pton(AF_INET6, addr.host.c_str(), &s6->sin6_addr) != 1) {
      return engine::Status::InvalidArgument("listen " + addr.ToString() + ": not a numeric IPv6 address");
    }
    len = sizeof(*s6);
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    s4->sin_family = AF_INET;
    s4->sin_port = htons(addr.port);
    if (inet_pton(AF_INET, addr.host.c_str(), &s4->sin_addr) != 1) {
      return engine::Status::InvalidArgument("listen " + addr.ToString() + ": not a numeric IPv4 address");
    }
    len = sizeof(*s4);
  }
  const int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return engine::Status::IOError("listen " + addr.ToString() + ": socket: " + std::strerror(errno));
  auto fail = [&](const char* what) {
    const int err = errno;
    close(fd);
    const std::string msg = "listen " + addr.ToString() + ": " + what + ": " + std::strerror(err);
    // In use: someone else listens there (maybe a previous instance still exiting).
    return err == EADDRINUSE ? engine::Status::Busy(msg) : engine::Status::IOError(msg);
  };
  const int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) return fail("SO_REUSEADDR");
  if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) return fail("SO_REUSEPORT");
  if (v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) return fail("IPV6_V6ONLY");
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) return fail("bind");
  if (listen(fd, kBacklog) != 0) return fail("listen");
  sockaddr_storage got{};
  socklen_t got_len = sizeof(got);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&got), &got_len) != 0) return fail("getsockname");
  *bound = addr;
  bound->port = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&got)->sin6_port
                         : reinterpret_cast<sockaddr_in*>(&got)->sin_port);
  return fd;
}

}  // namespace

engine::Result<ListenSockets> OpenListenSockets(const Config& config, uint32_t worker_count) {
  ListenSockets out;
  out.mode = config.accept;
  for (const ListenAddress& addr : config.listen) {
    if (config.accept == AcceptMode::kReusePort && addr.port != 0) {
      // SO_REUSEPORT lets any process of the same user join a port's group
      // and silently take a share of its connections. A plain bind first
      // fails with EADDRINUSE when someone (another kingx) already listens.
      ListenAddress ignored;
      auto probe = OpenOne(addr, false, &ignored);
      if (!probe.ok()) {
        CloseListenSockets(&out);
        return probe.status();
      }
      close(*probe);
    }
    ListenAddress bound;
    auto fd = OpenOne(addr, config.accept == AcceptMode::kReusePort, &bound);
    if (!fd.ok()) {
      CloseListenSockets(&out);
      return fd.status();
    }
    out.addresses.push_back(bound);
    out.fds.push_back({*fd});
  }
  if (config.admin_listen) {
    auto fd = OpenOne(*config.admin_listen, false, &out.admin_address);
    if (!fd.ok()) {
      CloseListenSockets(&out);
      return fd.status();
    }
    out.admin_fd = *fd;
  }
  engine::Status st = GrowListenSockets(&out, worker_count);
  if (!st.ok()) {
    CloseListenSockets(&out);
    return st;
  }
  return out;
}

engine::Status GrowListenSockets(ListenSockets* sockets, uint32_t worker_count) {
  if (sockets->mode != AcceptMode::kReusePort) return engine::Status::OK();
  for (size_t a = 0; a < sockets->addresses.size(); ++a) {
    // The first socket resolved an ephemeral port; the others join its group.
    while (sockets->fds[a].size() < worker_count) {
      ListenAddress bound;
      auto fd = OpenOne(sockets->addresses[a], true, &bound);
      if (!fd.ok()) return fd.status();
      sockets->fds[a].push_back(*fd);
    }
  }
  return engine::Status::OK();
}

std::vector<int> WorkerListenFds(const ListenSockets& sockets, uint32_t worker_index, uint32_t worker_count) {
  std::vector<int> out;
  const uint32_t stride = std::max<uint32_t>(worker_count, 1);
  for (const auto& per_address : sockets.fds) {
    if (per_address.empty()) continue;
    if (sockets.mode != AcceptMode::kReusePort || worker_index >= per_address.size()) {
      out.push_back(per_address[0]);
      continue;
    }
    for (size_t i = worker_index; i < per_address.size(); i += stride) out.push_back(per_address[i]);
  }
  return out;
}

std::vector<int> AllListenFds(const ListenSockets& sockets) {
  std::vector<int> out;
  for (const auto& per_address : sockets.fds) out.insert(out.end(), per_address.begin(), per_address.end());
  if (sockets.admin_fd >= 0) out.push_back(sockets.admin_fd);
  return out;
}

void CloseListenSockets(ListenSockets* sockets) {
  for (int fd : AllListenFds(*sockets)) close(fd);
  sockets->fds.clear();
  sockets->addresses.clear();
  sockets->admin_fd = -1;
}

}  // namespace kingx
