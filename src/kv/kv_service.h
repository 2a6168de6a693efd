// KvService: the http::Handler of the key-value API, shared unchanged by the
// libuv worker (src/worker/worker_uv.cc) and the thread-pool worker
// (src/worker/worker_threads.cc).
//
//   GET/HEAD /v1/kv/{key}  Reader::Get → 200 (a raw value: zero-copy view,
//                          kept alive by its holder; a compressed value:
//                          decoded frame by frame while it is sent, within
//                          the response budget, src/kv/value_stream.h: a GET
//                          that finds it full waits, unanswered, and past
//                          response_budget_give_up_ms is answered 503 +
//                          Retry-After naming --response-buffer-bytes) |
//                          304 (If-None-Match) | 404 | 503 + Retry-After
//                          (kBusy) | 500 (corruption)
//   PUT /v1/kv/{key}       body accumulated (compressed part by part in this
//                          thread), enqueued on the shared write queue with the
//                          request's precondition, answered 201/204 + ETag when
//                          the writer's completion arrives (OnCompletion);
//                          412, 507 (NoSpace), 503 (ReadOnly; the queue stayed
//                          full past KvServiceOptions::busy_give_up_ms; or
//                          outcome unknown, + Retry-After: the writer died
//                          after taking the write, or did not answer within
//                          --storage-timeout-ms; or, + Retry-After, refused
//                          before it was queued, not applied, while the writer
//                          has made no progress for longer than that:
//                          KvBackend::WriterNoProgressMs)
//   DELETE /v1/kv/{key}    204 | 404 | 412, on completion like PUT
//   GET/HEAD /v1/kv/?...   listing (http/list_api.h): 200 application/json |
//                          400 naming the query parameter | 503 + Retry-After
//                          while the sorted key view is not ready
//   /healthz /readyz /metrics, POST /admin/compact (admin listener only: 202)
//   GET /admin/backup      (admin listener only) asks the writer for a cut
//                          (src/kv/backup_stream.h), answered when its
//                          completion comes: 200 application/x-tar streamed
//                          within the response budget | 503 + Retry-After
//                          (kMaxBackups in progress, no room in
//                          --response-buffer-bytes, no cut within
//                          --storage-timeout-ms, the cut failed)
//
// PUT and DELETE go through the write exchange state machine
// (src/kv/write_exchange.h): bodies up to part_bytes() go to the queue as one
// entry, longer bodies part by part. Every response, also those the HTTP core
// writes itself (400, 404 outside the API, 405, 408, 411, 413, 414, 417, 431, 501,
// 505...), echoes X-Request-Id (or carries a generated one,
// src/kv/request_id.h) and is logged to the access log (when enabled) as it
// is queued. A response the core writes with status >= 400 (a client the
// server refused) also gets an error-log line at info (nginx's level for
// client errors), at most kClientErrorBurst per second per process; the next
// line let through says how many were left out.
//
// Threading: one KvService per thread that runs Connections (the worker's loop
// thread; each pool thread of the thread model). All methods, including the
// Handler callbacks, run on that thread. Not thread-safe.
//
// Responses decided outside a Connection call (OnCompletion, Poke) are made
// with Connection::Respond / ResumeBody, after which the service calls
// `wake(io, conn)` so the I/O layer re-reads the Connection's observers
// (flush output, resume reading, close).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/env.h"
#include "engine/key_lister.h"
#include "engine/reader.h"
#include "engine/status.h"
#include "http/connection.h"
#include "http/counters.h"
#include "src/conf/config.h"
#include "src/ipc/completion_ring.h"
#include "src/ipc/write_queue.h"
#include "src/kv/byte_budget.h"

namespace kingx {

class AccessLog;
class BackupClient;
class Offload;
class StagingBudget;

// What KvService needs from its process: the storage (reads and the write
// queue) and the process-wide state. The production implementation over a
// WorkerContext is in src/kv/kv_backend.h; unit tests use a fake. Calls come from
// the KvService's thread; an implementation shared by several KvServices
// (thread model) must be thread-safe.
class KvBackend {
 public:
  virtual ~KvBackend() = default;

  // engine::Reader::Get semantics (kNotFound, kBusy, kCorruption, kIOError).
  virtual engine::Result<engine::Value> Get(std::string_view key, engine::ReadMode mode) = 0;
  // engine::Reader::Get with a hint: the same answer as Get, sooner when
  // the hint still holds. Default: Get.
  virtual engine::Result<engine::Value> Get(std::string_view key, engine::ReadMode mode,
                                            const engine::KeyProbe& hint) {
    (void)hint;
    return Get(key, mode);
  }
  // engine::Reader::Get with a RecordCopy: a small record copied whole into
  // *copy by one guarded read and answered from it (v.copied). hint may be
  // null. Default: Get with the hint, nothing copied.
  virtual engine::Result<engine::Value> Get(std::string_view key, engine::ReadMode mode,
                                            const engine::KeyProbe* hint, engine::RecordCopy* copy) {
    (void)copy;
    return hint != nullptr ? Get(key, mode, *hint) : Get(key, mode);
  }
  // engine::Reader::PrefetchIndex / PrefetchRecord with a hint: for a
  // Get(key, mode, *hint) soon after on this thread; no effect anyone can
  // see. Default: nothing (the hint stays as it is).
  virtual void PrefetchIndex(std::string_view key, engine::KeyProbe* hint) {
    (void)key;
    (void)hint;
  }
  virtual void PrefetchRecord(std::string_view key, engine::KeyProbe* hint) {
    (void)key;
    (void)hint;
  }

  // engine::Reader::ReportReadFault: a read of v's stored bytes after Get
  // (a stream decoding them) met a page that could not be read. Default:
  // nothing.
  virtual void ReportReadFault(const engine::Value& v) { (void)v; }

  // WriteQueue::TryEnqueue* semantics: OK (copied), kBusy (no room now: retry
  // later, nothing was queued), kTooLarge / kInvalidArgument (never fits).
  virtual engine::Status Enqueue(uint64_t token, const WriteRequest& request) = 0;
  virtual engine::Status EnqueueLargeBegin(uint64_t token, const WriteRequest& header) = 0;
  virtual engine::Status EnqueueLargePart(uint64_t token, std::string_view stored_part) = 0;
  virtual engine::Status EnqueueLargeEnd(uint64_t token, uint64_t raw_len) = 0;
  virtual engine::Status EnqueueLargeAbort(uint64_t token) = 0;
  // WriteQueue::max_entry_bytes().
  virtual size_t MaxEntryBytes() const = 0;

  // Whether a put of `bytes` may find room on the disk: false only while the
  // writer reports the disk full and the free space it last measured, less
  // its reserve, is below `bytes` (the writer still decides every write; this
  // lets a request be refused before its body). Default: true.
  virtual bool DiskRoomFor(uint64_t bytes) const {
    (void)bytes;
    return true;
  }
  // Before a body spill appends n scratch bytes to a file in `dir` (the
  // data directory): takes room for them on its disk outside the writer's
  // reserve, counting every worker's spill writes in flight
  // (src/ipc/spill_room.h); give it back with GiveSpillRoom(n) once the
  // write ended. kNoSpace: no room (nothing taken). Any thread. Default:
  // room always (no reserve to keep).
  virtual engine::Status TakeSpillRoom(uint64_t n, engine::Env& env, const std::string& dir) {
    (void)n;
    (void)env;
    (void)dir;
    return engine::Status::OK();
  }
  virtual void GiveSpillRoom(uint64_t n) { (void)n; }
  // How long the writer has made no progress by now_ms (MonotonicMs()) when
  // that is longer than --storage-timeout-ms: it is stopped, or stuck in a
  // write or an fdatasync, and a write queued now would wait that whole
  // timeout for an "outcome unknown". 0 otherwise. While it is non-zero
  // KvService refuses new PUTs and DELETEs before they are queued (503, not
  // applied). Any thread. Default: 0 (never stalled).
  virtual uint64_t WriterNoProgressMs(uint64_t now_ms) const {
    (void)now_ms;
    return 0;
  }
  // /readyz: storage recovered and writable, and the server is not draining.
  virtual bool Ready() const = 0;
  // Why Ready() is false, in a sentence for the /readyz problem body; empty
  // when ready.
  virtual std::string NotReadyReason() const { return Ready() ? std::string() : "storage is not ready"; }
  // Prometheus text of every worker's counters plus engine and writer figures.
  virtual std::string RenderMetrics() = 0;
  // Asks the writer to compact now (/admin/compact). kInvalidArgument-free:
  // OK or an error explaining why it cannot (answered 503).
  virtual engine::Status RequestCompaction() = 0;
  // The listing over the sorted key view (GET /v1/kv/?...), thread-safe; null
  // when this process has none (listing answers 503).
  virtual engine::KeyLister* Lister() { return nullptr; }
  // The backup slots (GET /admin/backup, src/kv/backup_stream.h),
  // thread-safe; null when this process has none (answered 503).
  virtual BackupClient* Backups() { return nullptr; }
  // The server's staging budget for large uploads (src/ipc/staging_budget.h),
  // thread-safe; null: no limit but --staging-bytes (tests).
  virtual StagingBudget* Staging() { return nullptr; }
};

// Per-connection state KvService keeps. The I/O layer owns it (its
// per-connection struct contains one) and must make Connection::user_data()
// point at it before the first Feed. Small on purpose: it lives as long as
// the connection, idle or not.
struct KvConnState {
  struct Exchange* exchange = nullptr;  // a PUT/DELETE in progress (write_exchange.h)
  int16_t backup_slot = -1;             // GET /admin/backup waiting for the writer's cut in this slot
  bool admin = false;                   // accepted on the --admin-listen socket
  bool response_wait = false;           // a GET waiting for response budget room (value_stream.h)
  uint8_t peer_family = 0;              // AF_INET / AF_INET6; 0 = unknown
  uint16_t peer_port = 0;               // host order
  uint8_t peer_addr[16] = {};           // network order (4 bytes used for IPv4)

  // Records the peer address (from accept/getpeername); other families are
  // stored as unknown.
  void SetPeer(const struct sockaddr* addr);
  // Numeric text of the peer ("127.0.0.1", "::1", "-" when unknown) into
  // out (>= 46 bytes); returns its length.
  size_t PeerText(char* out) const;
};

struct KvServiceOptions {
  int compression_level = 1;        // engine::EncodeValue level (0 = off)
  uint32_t compress_min_bytes = 256;
  // How long a write may wait for room in the queue before 503 + Retry-After.
  uint64_t busy_give_up_ms = 5000;
  // How long a queued write may wait for its completion before 503 outcome
  // unknown + Retry-After (the writer is stalled or far behind).
  uint64_t storage_timeout_ms = 30000;
  // Raw bytes per part of a large value (also the largest body sent as one
  // queue entry). Clamped to what one queue entry can carry.
  size_t part_bytes = 1 << 20;
  // Local-id prefix of this service's write tokens, 0..4095: the thread model
  // gives each pool thread its own so the dispatcher can route completions.
  uint32_t token_prefix = 0;
  uint32_t token_generation = 0;    // the slot generation (MakeToken)
  const std::vector<TrustedProxy>* trusted_proxies = nullptr;  // may be null
  // The worker's budgets (shared by its services; must outlive them). Null:
  // no limit (tests). body_budget: request bodies held before they reach
  // the queue (--body-buffer-bytes); response_budget: decoded pieces of
  // compressed values being sent (--response-buffer-bytes).
  // body_whole_budget: the share of body_budget whole reservations may
  // hold (3/4 of its limit; null: the service's own). body_arrived_budget:
  // the room kept out of body_budget for short bodies that arrived whole (an
  // eighth of its limit; null: the service's own).
  ByteBudget* body_budget = nullptr;
  ByteBudget* body_whole_budget = nullptr;
  ByteBudget* body_arrived_budget = nullptr;
  // body_waiting_budget: a counter of body_budget's bytes held by uploads
  // waiting for room (null: the service's own).
  ByteBudget* body_waiting_budget = nullptr;
  ByteBudget* response_budget = nullptr;
  // How long an upload may wait for room in the body budget before 503 +
  // Retry-After (the worker's --body-timeout-ms: it read nothing that long).
  uint64_t body_budget_give_up_ms = 60000;
  // How long a GET of a compressed value may wait for room in the response
  // budget, before any byte of its response is sent, until 503 +
  // Retry-After (the worker's --send-timeout-ms: the longest a response may
  // make no progress).
  uint64_t response_budget_give_up_ms = 60000;
  // --staging-bytes, named in the answer to an upload the writer refused
  // because staged uploads would pass it.
  uint64_t staging_bytes = 0;
  // --read-only: PUT and DELETE of keys answer 405 (Allow: GET, HEAD) with a
  // problem body naming the setting, before any body is read; /admin/compact 409.
  bool read_only = false;
  // --compaction off: the writer runs no pass, so /admin/compact answers 409
  // naming the setting instead of accepting a request nothing would serve.
  bool compaction = true;
  // Where blocking file reads of online backups run (src/kv/offload.h; must
  // outlive the service): the event loop's thread pool. Null: inline (the
  // thread model, tests).
  Offload* offload = nullptr;
  // Request bodies spilled to disk (WriteExchangeOptions::spill_*; also
  // written and read on `offload`). Any unset: nothing is spilled.
  engine::Env* body_spill_env = nullptr;
  std::string body_spill_dir;
  ByteBudget* body_spill_budget = nullptr;
  ByteBudget* body_spill_files = nullptr;
};

// The clock of every now_ms the serving code passes around: CLOCK_MONOTONIC
// in milliseconds, read by http::ReadClockMs, so that a request whose head a
// Connection call given this reading completes starts its latency there
// (http/clock.h). Any thread.
uint64_t MonotonicMs();

// The answer to a PUT or DELETE refused before it was queued while the
// writer makes no progress (KvBackend::WriterNoProgressMs): 503 +
// Retry-After, a problem body naming the state and --storage-timeout-ms,
// saying the write was not applied.
http::Response StalledWriterResponse(uint64_t stalled_ms, uint64_t storage_timeout_ms);

class KvService final : public http::Handler {
 public:
  using WakeFn = void (*)(void* io, http::Connection& conn, uint64_t now_ms);

  // backend (and access_log, may be null = no access log) must outlive the
  // service. wake/io: see the file comment (wake may be null for tests that
  // poll the Connection themselves).
  KvService(KvBackend& backend, AccessLog* access_log, const KvServiceOptions& options, WakeFn wake,
            void* io);
  ~KvService() override;
  KvService(const KvService&) = delete;
  KvService& operator=(const KvService&) = delete;

  // ---- http::Handler (called by the Connection) ----
  void OnRequest(http::Connection& conn, const http::Request& request) override;
  void OnBody(http::Connection& conn, std::span<const char> piece, uint64_t now_ms) override;
  void OnBodyEnd(http::Connection& conn, uint64_t now_ms) override;
  void OnAbort(http::Connection& conn) override;
  // Starts fetching the key's index slot (target read) and record (head
  // read) into the CPU cache, so that the GET's misses overlap the parsing.
  void OnKeyHint(http::Connection& conn, std::string_view key, http::KeyHintStage stage) override;
  // Both hints of conn's next request are done already, for key: *probe is
  // what they would learn (engine::Reader::PrefetchKeys, for a caller that
  // hinted many connections' keys at once). While the offer stands, a hint
  // of conn for the same key only takes *probe (no backend call), and the
  // request's read starts from it as from its own hints' probe (a probe
  // that no longer holds costs a check: the read looks the key up afresh);
  // a hint of another key or connection is given to the backend as usual.
  // *probe must stay unchanged until the offer is withdrawn (conn null) or
  // replaced. This service's thread; does not call the backend.
  void OfferKeyProbe(const http::Connection* conn, std::string_view key, const engine::KeyProbe* probe);
  // Adds the request id to a response the core writes itself.
  void DecorateCoreResponse(http::Connection& conn, const http::Request* request,
                            http::Response& response) override;
  // The info line of core refusals; the access-log record of every
  // response, kept (packed in the record's end note) until it ends.
  void OnResponded(http::Connection& conn, const http::ResponseRecord& record) override;
  // The access-log line of a response that ended (sent whole, or cut short
  // by a timeout, the peer, an error or a close): nginx's log phase, with
  // the body bytes sent and the request time to that moment.
  void OnResponseEnd(http::Connection& conn, const http::ResponseEnd& end) override;

  // Error-log lines about refused clients let through per second, per process.
  static constexpr uint32_t kClientErrorBurst = 10;

  // ---- the I/O layer ----

  // A completion drained from this slot's ring whose token this service
  // issued (TokenPrefix(c.token) == token_prefix, src/kv/token_table.h). Answers the waiting
  // request (or forgets an orphaned one). Unknown tokens are ignored.
  void OnCompletion(const Completion& c, uint64_t now_ms);

  // Retries every write that found the queue full; answers 503 + Retry-After
  // to those that waited longer than busy_give_up_ms, and 503 outcome
  // unknown + Retry-After to queued writes that waited storage_timeout_ms
  // for their completion. Call after each completion drain, at NextRetryMs()
  // and once NextExpiryMs() has passed.
  void Poke(uint64_t now_ms);
  // Call after each Feed of conn (a connection of this service): an upload
  // waiting for room whose short body has now arrived whole is read from the
  // room kept for such bodies (src/kv/write_exchange.h).
  void OnInput(http::Connection& conn, uint64_t now_ms);
  // When Poke should run next (0 = nothing is waiting for queue room, and
  // no upload waiting for the body budget nor compressed response waiting
  // for the response budget would get room now).
  uint64_t NextRetryMs() const;
  // When the oldest queued write passes storage_timeout_ms (0 = no write
  // waits for its completion).
  uint64_t NextExpiryMs() const;

  // Writes enqueued and not completed yet (orphans included).
  size_t InFlight() const;

  // True while the request of the connection that owns `state` waits for
  // the storage (its completion, or room in the queue) or for room in the
  // worker's body budget, rather than for socket input (an upload whose short
  // body has yet to arrive whole waits for input: OnInput): the I/O layer stops
  // reading that socket (backpressure; the event loop once bytes arrive
  // during the wait, so at most one small read is buffered), and a blocking
  // one waits for completions and calls Poke.
  bool AwaitsStorage(const KvConnState& state) const;
  // True while that request waits for room in the body budget. NextRetryMs
  // asks for a Poke once this service sees room released; a blocking I/O
  // layer whose budgets other threads share sleeps until another thread's
  // release (src/worker/room_waiters.h) of the body budget or its whole
  // share, or of its arrived share while AwaitsArrivedRoom, and looks again.
  bool AwaitsBodyBudget(const KvConnState& state) const;
  // True while that wait is also for room in the share kept for short
  // bodies that arrived whole (their releases concern only such waits).
  bool AwaitsArrivedRoom(const KvConnState& state) const;
  // Request bodies moved to spill files so far (WriteExchanges::spills).
  uint64_t BodySpills() const;
  // True while a GET of this service waits for room in the response budget
  // (--response-buffer-bytes) for its compressed value, unanswered.
  // NextRetryMs asks for a Poke once room for the oldest is released, and
  // NextExpiryMs for its give-up; a blocking I/O layer whose budget
  // other threads share sleeps until another thread's release makes room
  // for ResponseBudgetNeed() (src/worker/room_waiters.h).
  bool AwaitsResponseBudget() const;
  // The bytes of the response budget the oldest of those waits for (0 when
  // none waits).
  uint64_t ResponseBudgetNeed() const;

  // The most bytes the I/O layer should read at once now from the socket of
  // the connection that owns `state`: an upload reading the first window of
  // its body, what its window may still take (src/kv/write_exchange.h);
  // otherwise unlimited, or a few KiB while the body budget has little room
  // left, so that what arrives with a request head stays small.
  size_t ReadBytesHint(const KvConnState& state) const;

  // From now on every response carries Connection: close and /readyz is 503
  // (graceful stop).
  void SetDraining() { draining_ = true; }
  bool draining() const { return draining_; }

  // Raw bytes per part actually used (options.part_bytes clamped).
  size_t part_bytes() const { return part_bytes_; }

 private:
  struct Impl;
  size_t part_bytes_ = 0;
  bool draining_ = false;
  std::unique_ptr<Impl> impl_;
  friend struct Impl;
};

}  // namespace kingx
