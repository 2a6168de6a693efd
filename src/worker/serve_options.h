// The settings both serving models derive from a worker's configuration:
// the HTTP core's limits, KvService's options, and the options of every
// accepted socket. Any thread.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "engine/options.h"
#include "http/http_limits.h"
#include "src/kv/byte_budget.h"
#include "src/kv/kv_service.h"
#include "src/worker/worker_context.h"

namespace kingx {

// Behaviour both serving models share, so that the event loop and the thread
// pool differ only in how they do I/O.
inline constexpr size_t kReadBufferBytes = 64 * 1024;  // one read's buffer
inline constexpr size_t kMaxIov = 64;                   // iovecs per gather write
// A lingering close (after the last response: shutdown(SHUT_WR), then read
// and drop what the client still sends, so that its kernel does not reset
// the connection before it read that response) ends at the client's EOF,
// after kLingerMs, or as soon as the client sent more than kLingerMaxBytes:
// then the close resets the connection. A client that sent one bad request
// and stops gets its response and a clean close; one that keeps sending
// (a flood of garbage) costs at most kLingerMaxBytes of reads.
inline constexpr uint64_t kLingerMs = 2000;
inline constexpr uint32_t kLingerMaxBytes = 16 * 1024;
inline constexpr uint64_t kDrainGraceMs = 1000;         // idle keep-alive connections survive this long after QUIT
inline constexpr uint64_t kDrainHardMs = 30000;         // then everything still open is closed
inline constexpr uint64_t kBusyRetryMs = 2;             // retry of a write that found the queue full
// A keep-alive connection that has sent nothing for this long, with no
// request in progress, is closed to make room when new clients wait for a
// connection slot (the cap) or a pool thread.
inline constexpr uint64_t kDrainIdleAfterMs = 1000;
// During a garbage flood (FloodGuard), and while any connection refused in
// one is parked, a connection refused before any request is parked after its
// 400 instead of closed: the worker keeps its descriptor and reads nothing
// more from it for kFloodParkMs, then closes it (CloseParkedSocket).
// A flood client that reconnects when closed then stops coming back, and so
// stops costing an accept, a read, a 400 and a close (whose reset frees all
// the junk queued on both ends) several hundred times a second. A parked
// socket is made cheap to hold first (QuietParkedSocket: a minimal receive
// buffer, its queued junk dropped), so that a worker can park as many
// connections as a flood brings: at most kFloodParkMax (and at most an
// eighth of its connection cap); one more closes the oldest parked; parked
// descriptors count against the cap, and a new client at the cap closes the
// oldest too.
inline constexpr uint64_t kFloodParkMs = 10000;
inline constexpr size_t kFloodParkMax = 1024;

// http::Limits from --max-key-bytes, --max-value-bytes and the timeouts; the
// rest keep the core's defaults.
http::Limits LimitsFor(const Config& config);

// The most body spill files a worker keeps open: its share of the
// descriptors kept from its connections (ReservedDescriptors).
uint64_t SpillFileCap();

// A worker's memory budgets (--body-buffer-bytes, --response-buffer-bytes),
// shared by all its services (thread-safe). Owned by the worker.
struct WorkerBudgets {
  explicit WorkerBudgets(const Config& config)
      : body(config.body_buffer_bytes),
        body_whole(config.body_buffer_bytes - config.body_buffer_bytes / 4),
        body_arrived(config.body_buffer_bytes / 8),
        body_waiting(uint64_t{1} << 62),
        body_spill(std::max<uint64_t>(config.body_spill_bytes, 1)),
        body_spill_files(SpillFileCap()),
        response(config.response_buffer_bytes) {}
  ByteBudget body;
  ByteBudget body_whole;  // the share of `body` whole reservations may hold (src/kv/write_exchange.h)
  ByteBudget body_arrived;  // the room kept out of `body` for short bodies that arrived whole (idem)
  ByteBudget body_waiting;  // a counter: bytes of `body` held by uploads waiting for room (idem)
  ByteBudget body_spill;    // body bytes in spill files (--body-spill-bytes; unused when it is 0)
  ByteBudget body_spill_files;  // spill files open: at most half the descriptors kept from connections
  ByteBudget response;
};

// KvService options for one service of this worker: compression settings,
// trusted proxies (a view into ctx.config: ctx must outlive the service),
// the slot generation, `token_prefix` (0..4095; one per pool thread in the
// thread model) and the worker's budgets (must outlive the service).
KvServiceOptions ServiceOptionsFor(const WorkerContext& ctx, uint32_t token_prefix, WorkerBudgets& budgets);

// Options of an accepted client socket, for both models: TCP_NODELAY (one
// writev per response is the whole response), and TCP_NOTSENT_LOWAT from
// --send-lowat-bytes, so a peer that reads slowly holds at most that many
// unsent bytes of kernel memory instead of a send buffer that autotuning
// grows to megabytes (thousands of slow readers would otherwise push the
// whole machine into TCP memory pressure and stall every other client).
// Failures are ignored: the socket works without them.
void TuneClientSocket(int fd, const Config& config);

// Makes a refused connection's socket cheap to park (kFloodParkMs): its
// receive buffer is set to the kernel's minimum, so that the client can
// queue no more than a few KiB on it, then what it had queued is dropped
// (MSG_TRUNC: the kernel copies nothing into `scratch`, which only sizes
// each of a few calls; the caller's own buffer, at least 16 KiB). The socket
// is left open and unread. Failures are ignored (the socket is parked as it
// is). Any thread; fd: a connected TCP socket, blocking or not.
void QuietParkedSocket(int fd, std::span<char> scratch);

// Closes a parked socket: what arrived since it was parked is dropped
// first, so that the close sends a FIN rather than a reset (a reset makes
// the peer free all it had queued to send at once, and on loopback that
// work is done in the closing thread). scratch as for QuietParkedSocket.
// Any thread; fd is closed whatever happens.
void CloseParkedSocket(int fd, std::span<char> scratch);

// Sets the same two options on a listening socket, so that the sockets it
// accepts start with them (Linux copies a listener's TCP options into each
// accepted socket), and returns true when the worker may then skip
// TuneClientSocket for that listener's sockets: both setsockopt calls
// succeeded and ListenOptionsInherited(). TCP_NOTSENT_LOWAT is always set,
// 0 included (the kernel's default), so that a reload which lowers or clears
// --send-lowat-bytes replaces what an earlier worker set on a socket it
// shared. A listener serves whoever accepts on it, and the kernel copies
// its options into a connection as it completes it, before any accept:
// called by the master with the configuration of the workers it is about to
// start (at start and at each reload), and by each worker with its own,
// before its first accept (for the answer). Any thread.
bool TuneListenSocket(int fd, const Config& config);

// True when this kernel copies TCP_NODELAY and TCP_NOTSENT_LOWAT from a
// listening socket into the sockets it accepts: checked once per process on a
// loopback listener and connection of its own (three descriptors, closed
// before it returns), the answer kept for later calls. False when the check
// cannot run (no loopback, no descriptors). Thread-safe.
bool ListenOptionsInherited();

// A worker's descriptors beside its client connections, at a descriptor
// limit L (RLIMIT_NOFILE), each share bounded by its holder:
// - segment files: its Reader's and its KeyLister's segment caches, at most
//   SegmentCacheBound(L) each (the worker passes it as max_open_segments);
// - body spill files: SpillFileCap (L / 8);
// - kOwnDescriptors: standard streams, the logs (two more while a log is
//   reopened), the data directory and its LOCK, listeners, eventfds, the
//   event loop's epoll and pipes, an online backup's segment file each, and
//   the key view's mapped runs (engine::kMaxKeyRuns);
// - thread model: its pool threads' doorbell eventfds (PoolDoorbellShare).
inline constexpr uint64_t kOwnDescriptors = 96;
uint64_t SegmentCacheBound(uint64_t descriptor_limit);
uint64_t ReservedDescriptors(uint64_t descriptor_limit);

// --single-process: the writer thread's descriptors, held in the worker's
// own process and so counted against the same limit:
// - its two segment caches (the writer's key lookups, the key view's), at
//   most SegmentCacheBound(L) each (RunWriter passes it as max_open_segments
//   there);
// - kWriterOwnDescriptors: the active segment and the sync thread's spare
//   descriptors (up to --sync-depth), the MANIFEST, a compaction's output
//   segment and hint, a key run or cut hint being written.
// 0 for a worker of a master (its writer is another process).
inline constexpr uint64_t kWriterOwnDescriptors = 16 + engine::kMaxSyncDepth;
uint64_t WriterShare(const Config& config, uint64_t descriptor_limit);

// ReservedDescriptors plus WriterShare: all a worker keeps beside its
// connections and, thread model, its pool's doorbells.
uint64_t KeptDescriptors(const Config& config, uint64_t descriptor_limit);

// The descriptors a thread-model worker keeps for its pool's doorbell
// eventfds (a pool thread makes one the first time it polls its socket with
// a write in flight, and keeps it for its life): --threads, or half of what
// the limit leaves beside ReservedDescriptors if less; the worker starts at
// most this many pool threads. 0 in the event model.
uint64_t PoolDoorbellShare(const Config& config);

// The connections one worker accepts at most: --max-connections, lowered so
// that the connections never take the descriptors the worker needs for its
// storage and its pool (RLIMIT_NOFILE minus ReservedDescriptors and
// PoolDoorbellShare). A flood of connections then waits in the kernel's
// backlog instead of running the worker into EMFILE, where it could no
// longer open a segment to answer a GET. At a limit of at least
// MinimumDescriptorLimit that leaves kMinConnections or more; below it (a
// start refuses it: only a limit lowered under a running master gets here)
// what is left, at least 1.
uint32_t ConnectionCap(const Config& config);

// The fewest connections, and in the thread model the fewest pool threads
// (or --threads if fewer), a worker is started with.
inline constexpr uint64_t kMinConnections = 16;

// The lowest open-file limit at and above which a worker keeps all of
// ReservedDescriptors and still has room for kMinConnections connections
// and, thread model, min(--threads, kMinConnections) doorbells. A start
// (the master, --single-process) and -t refuse a lower limit, naming both
// (DescriptorLimitTooLow): no cap there keeps the worker within it.
uint64_t MinimumDescriptorLimit(const Config& config);

// "" when `descriptor_limit` (0: none) is at least MinimumDescriptorLimit;
// otherwise the refusal's text, naming `what` ("open file limit", "hard open
// file limit"), the limit, the minimum and what the worker keeps.
std::string DescriptorLimitTooLow(const Config& config, uint64_t descriptor_limit, const char* what);

// ConnectionCap and PoolDoorbellShare under a given open-file limit
// (RLIM_INFINITY or 0: no limit), for the start-up check that warns when
// the hard limit would lower --max-connections.
uint64_t PoolDoorbellShareAt(const Config& config, uint64_t descriptor_limit);
uint32_t ConnectionCapAt(const Config& config, uint64_t descriptor_limit);

}  // namespace kingx
