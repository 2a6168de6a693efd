// Limits and KvService options from a worker's configuration.
#include "src/worker/serve_options.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

namespace kingx {

http::Limits LimitsFor(const Config& config) {
  http::Limits limits;
  limits.max_key_bytes = config.max_key_bytes;
  limits.max_request_line_bytes = config.max_request_line_bytes;
  limits.max_header_line_bytes = config.max_header_line_bytes;
  limits.max_header_bytes = config.max_header_bytes;
  limits.max_header_fields = config.max_header_fields;
  limits.max_body_bytes = config.max_value_bytes;
  limits.header_timeout_ms = config.header_timeout_ms;
  limits.body_timeout_ms = config.body_timeout_ms;
  limits.send_timeout_ms = config.send_timeout_ms;
  limits.keepalive_timeout_ms = config.keepalive_timeout_ms;
  return limits;
}

KvServiceOptions ServiceOptionsFor(const WorkerContext& ctx, uint32_t token_prefix, WorkerBudgets& budgets) {
  const engine::Options engine_options = ctx.config.EngineOptions();
  KvServiceOptions o;
  o.compression_level = engine_options.compression_level;
  o.compress_min_bytes = engine_options.compress_min_bytes;
  o.part_bytes = http::Limits().body_part_bytes;
  o.storage_timeout_ms = ctx.config.storage_timeout_ms;
  o.token_prefix = token_prefix;
  o.token_generation = ctx.generation;
  o.trusted_proxies = &ctx.config.trusted_proxies;
  o.body_budget = &budgets.body;
  o.body_whole_budget = &budgets.body_whole;
  o.body_arrived_budget = &budgets.body_arrived;
  o.body_waiting_budget = &budgets.body_waiting;
  o.response_budget = &budgets.response;
  o.body_budget_give_up_ms = ctx.config.body_timeout_ms;
  o.response_budget_give_up_ms = ctx.config.send_timeout_ms;
  o.staging_bytes = ctx.config.staging_bytes;
  if (ctx.config.body_spill_bytes != 0 && !ctx.config.read_only) {
    o.body_spill_env = &engine::PosixEnv();
    o.body_spill_dir = ctx.config.data_dir;
    o.body_spill_budget = &budgets.body_spill;
    o.body_spill_files = &budgets.body_spill_files;
  }
  o.read_only = ctx.config.read_only;
  o.compaction = ctx.config.compaction;
  return o;
}

void TuneClientSocket(int fd, const Config& config) {
  const int one = 1;
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (config.send_lowat_bytes > 0) {
    const int lowat = static_cast<int>(std::min<uint64_t>(config.send_lowat_bytes, 1u << 30));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof lowat);
  }
}

namespace {

// Drops what the socket has received and not read, without copying it
// (MSG_TRUNC on a TCP socket discards; the buffer passed only sizes each
// call, and is one the caller may lend, so that sanitizers see no wild
// pointer); bounded in calls, since a client may keep sending meanwhile.
void DiscardReceived(int fd, std::span<char> scratch) {
  constexpr int kCalls = 8;
  for (int i = 0; i < kCalls; ++i) {
    if (recv(fd, scratch.data(), scratch.size(), MSG_TRUNC | MSG_DONTWAIT) <= 0) return;
  }
}

}  // namespace

void QuietParkedSocket(int fd, std::span<char> scratch) {
  const int smallest = 1;  // the kernel rounds it up to its minimum
  (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &smallest, sizeof smallest);
  DiscardReceived(fd, scratch);
}

void CloseParkedSocket(int fd, std::span<char> scratch) {
  DiscardReceived(fd, scratch);
  close(fd);
}

bool TuneListenSocket(int fd, const Config& config) {
  const int one = 1;
  const int lowat = static_cast<int>(std::min<uint64_t>(config.send_lowat_bytes, 1u << 30));
  const bool set = setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0 &&
                   setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof lowat) == 0;
  return set && ListenOptionsInherited();
}

namespace {

int IntOption(int fd, int name) {
  int v = -1;
  socklen_t len = sizeof v;
  return getsockopt(fd, IPPROTO_TCP, name, &v, &len) == 0 ? v : -1;
}

// Listener, connection and accepted socket on 127.0.0.1: does the accepted
// one carry the listener's options? The connect completes in the kernel
// (the backlog holds it), so no call here waits.
bool ProbeInheritance() {
  constexpr int kProbeLowat = 12345;  // not a value any socket starts with
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int accepted = -1;
  bool inherited = false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  const int one = 1;
  if (listener >= 0 && client >= 0 && bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0 && listen(listener, 1) == 0 &&
      setsockopt(listener, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0 &&
      setsockopt(listener, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &kProbeLowat, sizeof kProbeLowat) == 0 &&
      connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    accepted = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    inherited = accepted >= 0 && IntOption(accepted, TCP_NODELAY) > 0 &&
                IntOption(accepted, TCP_NOTSENT_LOWAT) == kProbeLowat;
  }
  for (int fd : {accepted, client, listener}) {
    if (fd >= 0) close(fd);
  }
  return inherited;
}

}  // namespace

bool ListenOptionsInherited() {
  static const bool inherited = ProbeInheritance();
  return inherited;
}

namespace {

// RLIMIT_NOFILE's soft limit; 0 when unlimited or unknown.
uint64_t DescriptorLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return 0;
  return rl.rlim_cur;
}

uint64_t SpillShare(uint64_t descriptor_limit) { return std::max<uint64_t>(descriptor_limit / 8, 1); }

// What the limit leaves beside KeptDescriptors (0 when nothing).
uint64_t RoomBesideReserve(const Config& config, uint64_t descriptor_limit) {
  const uint64_t reserved = KeptDescriptors(config, descriptor_limit);
  return descriptor_limit > reserved ? descriptor_limit - reserved : 0;
}

}  // namespace

uint64_t SegmentCacheBound(uint64_t descriptor_limit) { return std::max<uint64_t>(descriptor_limit / 8, 4); }

uint64_t ReservedDescriptors(uint64_t descriptor_limit) {
  return 2 * SegmentCacheBound(descriptor_limit) + SpillShare(descriptor_limit) + kOwnDescriptors;
}

uint64_t WriterShare(const Config& config, uint64_t descriptor_limit) {
  if (!config.single_process) return 0;
  return 2 * SegmentCacheBound(descriptor_limit) + kWriterOwnDescriptors;
}

uint64_t KeptDescriptors(const Config& config, uint64_t descriptor_limit) {
  return ReservedDescriptors(descriptor_limit) + WriterShare(config, descriptor_limit);
}

uint64_t SpillFileCap() {
  const uint64_t limit = DescriptorLimit();
  return limit == 0 ? 4096 : SpillShare(limit);
}

uint64_t PoolDoorbellShareAt(const Config& config, uint64_t descriptor_limit) {
  if (config.model != Model::kThreads) return 0;
  if (descriptor_limit == 0) return config.threads;
  return std::min<uint64_t>(config.threads, RoomBesideReserve(config, descriptor_limit) / 2);
}

uint64_t PoolDoorbellShare(const Config& config) { return PoolDoorbellShareAt(config, DescriptorLimit()); }

uint32_t ConnectionCapAt(const Config& config, uint64_t descriptor_limit) {
  if (descriptor_limit == 0) return config.max_connections;
  const uint64_t room = RoomBesideReserve(config, descriptor_limit);
  const uint64_t share = PoolDoorbellShareAt(config, descriptor_limit);
  const uint64_t cap = room > share ? room - share : 1;
  return static_cast<uint32_t>(std::min<uint64_t>(config.max_connections, cap));
}

namespace {

// The room beside ReservedDescriptors a worker needs at the least.
uint64_t MinimumRoom(const Config& config) {
  return kMinConnections +
         (config.model == Model::kThreads ? std::min<uint64_t>(config.threads, kMinConnections) : 0);
}

}  // namespace

uint64_t MinimumDescriptorLimit(const Config& config) {
  // The room is not monotonic in the limit (an eighth more for each share
  // at every multiple of 8): the minimum is one past the last limit that
  // falls short. Above 2^16 the room exceeds any MinimumRoom.
  const uint64_t need = MinimumRoom(config);
  uint64_t last_short = 0;
  for (uint64_t limit = 1; limit <= (uint64_t{1} << 16); ++limit) {
    if (RoomBesideReserve(config, limit) < need) last_short = limit;
  }
  return last_short + 1;
}

std::string DescriptorLimitTooLow(const Config& config, uint64_t descriptor_limit, const char* what) {
  if (descriptor_limit == 0) return "";
  const uint64_t minimum = MinimumDescriptorLimit(config);
  if (descriptor_limit >= minimum) return "";
  const bool threads = config.model == Model::kThreads;
  return std::string("the ") + what + " " + std::to_string(descriptor_limit) + " (RLIMIT_NOFILE) is below the " +
         std::to_string(minimum) + " a worker needs: at " + std::to_string(descriptor_limit) + " it keeps " +
         std::to_string(KeptDescriptors(config, descriptor_limit)) +
         " descriptors for segment files, spill files and its own" +
         (config.single_process ? std::string(" (the writer thread's among them)") : std::string()) +
         ", and it needs at least " +
         std::to_string(kMinConnections) + " more for connections" +
         (threads ? " and " + std::to_string(std::min<uint64_t>(config.threads, kMinConnections)) +
                        " for its pool threads"
                  : std::string()) +
         ": raise the limit (ulimit -n, systemd LimitNOFILE=)";
}

uint32_t ConnectionCap(const Config& config) { return ConnectionCapAt(config, DescriptorLimit()); }

}  // namespace kingx
