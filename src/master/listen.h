// Listening sockets, created by the master before it forks and inherited by
// the workers.
//
// reuseport: one SO_REUSEPORT socket per (--listen address, worker index), so
// the kernel spreads connections over workers and, on HUP, the new worker of
// index i inherits the very socket (and its queued connections) of the old
// worker of index i. shared: one socket per address for every worker.
// The admin listener (--admin-listen) is always one shared socket.
//
// Sockets are non-blocking, CLOEXEC (fork keeps them; exec does not), with
// SO_REUSEADDR, IPV6_V6ONLY for IPv6, backlog 4096. Port 0 binds an ephemeral
// port, and every reuseport socket of that address then binds the same port.
// Master only (single-threaded); the workers receive plain fds in their
// WorkerContext and own their copies.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/status.h"
#include "src/conf/config.h"

namespace kingx {

struct ListenSockets {
  AcceptMode mode = AcceptMode::kReusePort;
  std::vector<ListenAddress> addresses;  // as bound (ephemeral ports resolved)
  // fds[a][i]: address a, worker index i (reuseport) or i == 0 (shared).
  std::vector<std::vector<int>> fds;
  int admin_fd = -1;
  ListenAddress admin_address;
};

// Opens the sockets for `config` with `worker_count` worker indices.
// Errors: kBusy when an address is in use (EADDRINUSE), kIOError for the
// rest, each naming the address and the failing call. On error nothing stays
// open.
engine::Result<ListenSockets> OpenListenSockets(const Config& config, uint32_t worker_count);

// reuseport: opens the sockets of worker indices [current, worker_count) of
// every address (used when a reload raises --workers). No-op for shared.
// Sockets are never closed before the server stops: closing a listener
// resets every connection waiting in its accept queue.
engine::Status GrowListenSockets(ListenSockets* sockets, uint32_t worker_count);

// The fds worker index `worker_index` (of `worker_count` workers) accepts on:
// per address, the shared socket, or (reuseport) its own socket and every
// socket of an index >= worker_count that index % worker_count maps to it
// (the sockets of workers a reload took away stay in the group, so their
// connections must still be accepted).
std::vector<int> WorkerListenFds(const ListenSockets& sockets, uint32_t worker_index, uint32_t worker_count);

// Every fd, for closing in processes that do not accept (the writer).
std::vector<int> AllListenFds(const ListenSockets& sockets);

void CloseListenSockets(ListenSockets* sockets);

}  // namespace kingx
