// WriteExchanges: every PUT and DELETE of one KvService between its request
// head and its answer, each an Exchange moved by one small state machine.
//
// An Exchange ships its body to the write queue part by part (a large value:
// LargeBegin, LargePart per part, LargeEnd, each part compressed on its own,
// so no buffer ever holds more than one part) or as one entry at the end (a
// body of at most part_bytes), then waits for the writer's completion, found
// by its token (TokenTable). When the queue is full (kBusy) the Exchange is
// parked with its body paused and Poke retries it; past busy_give_up_ms it is
// answered 503 + Retry-After.
//
// Memory (the worker's body budget, ByteBudget, shared by the worker's
// services; L = its limit): an upload holds what has arrived, never what it
// announced. Its first kBodyWindowBytes (64 KiB, the whole body of most
// PUTs) are read as they come and counted as they arrive (twice: the raw
// bytes and room for their encoded copy); the I/O layer reads at most what
// ReadBytesHint allows, so these windows together stay within L minus room
// kept for one whole reservation (WholeBytes, at most L/2). A body longer
// than its window then needs a whole reservation (what it can hold at once:
// twice a body of at most one part, about two parts for a longer or chunked
// one), granted first come first served from at most 3/4 of L (or alone,
// whatever its size, when no other upload holds one), so that a quarter of
// the budget always stays for windows: an upload that trickles its body
// holds only the bytes it sent, and however many do, a small body is read
// and written on its merits. An upload that must wait (no room for its
// window, or behind others for a whole reservation) is paused with what it
// already holds and its socket is not read (AwaitsStorage: after at most one
// small read the I/O layer stops reading, so the kernel's flow control
// pushes back on the client); Poke resumes it as room is released
// (NextRetryMs asks for a Poke only when a waiter would get room). Past
// body_budget_give_up_ms of waiting it is answered 503 + Retry-After naming
// --body-buffer-bytes and its connection is closed (nothing of it stored).
// Deadlock-free: whole reservations never wait for more room once granted,
// and the windows leave room for one of them. Bytes that arrived are always
// counted; a window read may pass the room by at most one read of
// kMinWindowReadBytes (the event model; in the thread model pool threads
// racing for the same room, one read each), and the raw buffer grows by
// doubling, so many windows together may pass their share: when they hold
// it all and no whole reservation is held or awaited, the oldest window
// waiter reads on alone up to its window (at most one such upload per
// service; "all" means all held bytes belong to uploads waiting for window
// room, body_waiting_budget), then asks for its whole reservation.
//
// Bodies that have arrived whole (body_arrived_budget; A = its limit, an
// eighth of L): windows and whole reservations stay within L - A, and the
// last A is for a PUT whose Content-Length is at most kArrivedBodyBytes and
// whose whole body is already in its Connection's input when it would
// otherwise wait for room (at its head, or later). Such a body cannot stall
// with memory held: it is read, encoded and queued at once, so uploads that
// stall, however many and however large, never keep it waiting (it waits
// only when A is held by other arrived bodies that wait for queue room, and
// is retried as A frees). While it waits for its bytes to arrive, its
// Connection reads on as it reads a request head (AwaitsStorage false;
// bytes buffered up to the Connection's input limit, uncounted here like a
// head's); the I/O layer calls OnInput after each Feed.
//
// Spilling (nginx's client body temp files; options spill_*): an upload
// whose unshipped body is all still in raw (nothing of it queued: at most
// one part received) moves those bytes to a scratch file of its own
// (SpillFile, in the data directory, unlinked at once) and gives back its
// memory, whole reservation included, when it received nothing for
// kSpillIdleMs holding at least kMinIdleSpillBytes, or at once when it
// rests while the budget is short (a
// window or a whole reservation of the longest kind would not fit, or an
// upload of this service waits for room: BudgetShort). A spilled upload
// reads on a window at a time, each window spilled as it fills or rests;
// once its body is complete (or passes a part) it waits, first come first
// served, for a whole reservation and its bytes are read back in front of
// what it holds, then it goes on as any body. So uploads that stall hold
// disk, not memory, and a write is read on its merits however many stall.
// Disk: spilled bytes stay within spill_budget (--body-spill-bytes per
// worker), open spill files within spill_files, and are not taken while
// the backend reports the disk full
// (DiskRoomFor); past either, an upload keeps its memory and the rules
// above apply. A spill's file is dropped when its bytes are read back or
// the upload ends (answered, given up, or its connection gone: the body
// timeout still bounds a stalled upload). The writes and reads run on
// options.offload (an event loop's thread pool: the loop never waits for
// the disk; the body is paused meanwhile) or, without one, on the calling
// thread (a pool thread of the thread model). A failed spill write leaves
// the bytes in memory (that upload is not spilled again); a failed
// read-back answers the upload 500, nothing stored.

// Staged bytes (src/ipc/staging_budget.h, the backend's Staging(); none:
// no limit here): a large value's staging room is reserved before the
// writer sees it. With a Content-Length, the whole of it in Start, before
// any body byte is read; without room the upload is held (AwaitsStorage,
// body unread) and reserves nothing of the body budget meanwhile. A chunked
// upload (or one whose encoded parts outgrow what it reserved) reserves
// each part before queuing it; without room it is held with that one part
// in memory, body paused. Poke retries the held uploads oldest first; one
// held storage_timeout_ms is answered 503 + Retry-After and its connection
// closed (nothing stored: a begun upload is aborted). The room is given
// back with the answer (or, for an orphaned exchange whose LargeEnd is
// queued, with its completion). --staging-bytes itself is the writer's
// refusal (503 naming it, CompletionReason::kStagingBudget).
//
// An Exchange whose connection died while its write was queued stays in the
// token table, orphaned, until the completion arrives; it is then freed
// without an answer. An Exchange whose whole write is queued and that waited
// storage_timeout_ms for its completion (a stalled or far-behind writer) is
// answered 503 "outcome unknown" + Retry-After (the writer may still apply
// it) and stays in the table, orphaned, the same way. The writer's known
// stall (KvBackend::WriterNoProgressMs, checked by KvService at the head) is
// checked again where a write would be started or completed in the queue
// (its single entry, LargeBegin, LargeEnd) unless the body came in the same
// millisecond as the head: a write whose body ends after the stall is known
// is refused there, 503 + Retry-After "not applied" (StalledWriterResponse;
// a begun large value aborted, a body not read to its end not read on).
//
// Answers go through the owner's Responder (the service's one response path);
// after an answer made outside a Handler callback (a completion, Poke) the
// machine calls wake(io, conn) so the I/O layer re-reads the Connection.
//
// Threading: owned by one KvService and used on its thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/status.h"
#include "http/connection.h"
#include "http/request.h"
#include "http/response.h"
#include "src/ipc/completion_ring.h"
#include "src/ipc/write_queue.h"
#include "src/kv/byte_budget.h"
#include "src/kv/token_table.h"

namespace kingx::engine {
class Env;
}

namespace kingx {

class KvBackend;
class Offload;
struct KvConnState;
struct Exchange;  // write_exchange.cc
struct SpillJob;  // write_exchange.cc

struct WriteExchangeOptions {
  int compression_level = 1;        // engine::EncodeValue level (0 = off)
  uint32_t compress_min_bytes = 256;
  uint64_t busy_give_up_ms = 5000;  // longest wait for queue room before 503
  uint64_t storage_timeout_ms = 30000;  // longest wait for a completion before 503 outcome unknown
  size_t part_bytes = 1 << 20;      // raw bytes per part; must fit one queue entry
  uint32_t token_prefix = 0;        // TokenTable prefix
  uint32_t token_generation = 0;    // the worker slot generation (MakeToken)
  // Request bodies held before they reach the queue (--body-buffer-bytes;
  // shared by the worker's services, must outlive the machine). Null: no
  // limit (tests).
  ByteBudget* body_budget = nullptr;
  // The share of body_budget that whole reservations may hold (3/4 of its
  // limit, shared like it; see above). Null: one of this machine's own.
  ByteBudget* body_whole_budget = nullptr;
  // Room for bodies that arrived whole (an eighth of body_budget's limit,
  // carved out of it, shared like it; see above). Null: one of this
  // machine's own.
  ByteBudget* body_arrived_budget = nullptr;
  // A counter (no limit used) of the body budget's bytes held by uploads
  // waiting for window room, shared like it: when they hold all of it, the
  // oldest reads on alone (see above). Null: one of this machine's own.
  ByteBudget* body_waiting_budget = nullptr;
  // Longest wait for room in the body budget before 503 + Retry-After (the
  // worker's --body-timeout-ms: the upload read nothing that long).
  uint64_t body_budget_give_up_ms = 60000;
  // --staging-bytes, named in the answer to an upload the writer refused
  // because staged uploads would pass it.
  uint64_t staging_bytes = 0;
  // Spilling bodies to disk (see above): scratch files are made in spill_dir
  // through spill_env, and hold at most spill_budget's limit (the worker's
  // --body-spill-bytes, shared like body_budget), and at most
  // spill_files's limit of them are open at once (a share of the worker's
  // descriptors, kept from the storage's reserve). Any unset: nothing is
  // spilled.
  engine::Env* spill_env = nullptr;
  std::string spill_dir;
  ByteBudget* spill_budget = nullptr;
  ByteBudget* spill_files = nullptr;
  // Where spill files are written and read (an event loop's thread pool);
  // null: on the calling thread (the thread model's pool threads, tests).
  Offload* offload = nullptr;
};

class WriteExchanges {
 public:
  // The owner's single response path: adds the headers every response
  // carries, logs, then Connection::Respond.
  class Responder {
   public:
    virtual void Answer(http::Connection& conn, const http::Request& request, http::Response&& response,
                        uint64_t now_ms) = 0;

   protected:
    ~Responder() = default;
  };
  using WakeFn = void (*)(void* io, http::Connection& conn, uint64_t now_ms);

  // backend and responder must outlive the machine; wake may be null.
  WriteExchanges(KvBackend& backend, Responder& responder, const WriteExchangeOptions& options, WakeFn wake,
                 void* io);
  ~WriteExchanges();  // frees the exchanges still in the token table
  WriteExchanges(const WriteExchanges&) = delete;
  WriteExchanges& operator=(const WriteExchanges&) = delete;

  // Marks a Handler callback in progress: no wake() until it ends (the
  // Connection re-reads its own state when the callback returns).
  class CallbackScope {
   public:
    explicit CallbackScope(WriteExchanges& w) : w_(w) { ++w_.depth_; }
    ~CallbackScope() { --w_.depth_; }
    CallbackScope(const CallbackScope&) = delete;
    CallbackScope& operator=(const CallbackScope&) = delete;

   private:
    WriteExchanges& w_;
  };

  // Starts the exchange of conn's current request (its KvConnState, from
  // Connection::user_data(), has no exchange). The writer decides `cond`
  // atomically with the write. The body follows through OnBody/OnBodyEnd.
  // A PUT whose client waits for "100 Continue" and whose declared length
  // has no room on a disk reported full (KvBackend::DiskRoomFor) is
  // answered 507 at once, without an exchange.
  void Start(http::Connection& conn, const http::Request& request, WriteKind kind, WriteCondition cond,
             uint64_t if_match_seq);

  // Handler callbacks of a connection whose KvConnState may hold an
  // exchange (no-ops without one). OnBody ignores a DELETE's body.
  void OnBody(http::Connection& conn, std::span<const char> piece, uint64_t now_ms);
  void OnBodyEnd(http::Connection& conn, uint64_t now_ms);
  void OnAbort(http::Connection& conn);
  // After the I/O layer fed conn input (outside Handler callbacks): an
  // upload waiting for room whose whole small body has now arrived is read
  // from the arrived bodies' room when it has some. No-op otherwise.
  void OnInput(http::Connection& conn, uint64_t now_ms);

  // A completion whose token this machine issued: answers the waiting
  // request (or frees an orphaned exchange). Unknown tokens are ignored.
  void OnCompletion(const Completion& c, uint64_t now_ms);

  // Retries uploads held for staging room, grants waiting bodies their room
  // in the body budget, retries every
  // exchange that found the queue full and every LargeAbort that could not
  // be queued; answers 503 + Retry-After to exchanges that waited longer
  // than busy_give_up_ms for queue room, body_budget_give_up_ms for body
  // budget room or storage_timeout_ms for staging room, and 503 outcome
  // unknown + Retry-After to those that waited
  // storage_timeout_ms for their completion. The I/O layer calls it at
  // NextRetryMs() and once NextExpiryMs() has passed.
  void Poke(uint64_t now_ms);
  // When Poke should run next (0 = nothing is waiting for queue, budget or
  // staging room).
  uint64_t NextRetryMs() const;
  // The first time at which a queued write passes storage_timeout_ms (0 =
  // none is waiting for its completion).
  uint64_t NextExpiryMs() const;

  // Writes enqueued and not completed yet (orphans included).
  size_t InFlight() const { return tokens_.size(); }

  // True while the exchange of `state` waits for the storage (its
  // completion, or room in the queue or the staging share) or for room in
  // the body budget, rather than for socket input.
  bool AwaitsStorage(const KvConnState& state) const;
  // True while the exchange of `state` waits for room in the body budget.
  bool AwaitsBodyBudget(const KvConnState& state) const;
  // True while that wait is also for room in the arrived bodies' share (its
  // whole short body has arrived and that share was full).
  bool AwaitsArrivedRoom(const KvConnState& state) const;

  // The most bytes the I/O layer should read at once now from the
  // connection that owns `state`: what its upload's window may still take
  // (at least a few hundred bytes) while it reads its first
  // kBodyWindowBytes; otherwise unlimited, or a few KiB while windows have
  // little room left, so that what arrives with a request head stays small.
  size_t ReadBytesHint(const KvConnState& state) const;

  // Body bytes an upload reads before it needs a whole reservation.
  static constexpr uint64_t kBodyWindowBytes = 64 * 1024;
  // The longest Content-Length read from the arrived bodies' room (what
  // nginx keeps of a body in memory, client_body_buffer_size, on 64-bit).
  static constexpr uint64_t kArrivedBodyBytes = 16 * 1024;
  // An upload that received no body byte for this long moves what it holds
  // to its spill file, however much room the budget has.
  static constexpr uint64_t kSpillIdleMs = 1000;
  // ...when it holds at least this much (a trickle of a few bytes is not
  // worth a file); while the budget is short, any amount.
  static constexpr uint64_t kMinIdleSpillBytes = 16 * 1024;
  // Spills done (writes to spill files), for tests and metrics.
  uint64_t spills() const { return spills_; }

 private:
  enum class Progress : uint8_t {
    kMoving,   // waiting for more body or for the completion
    kBlocked,  // parked in blocked_: the queue is full
    kHeld,     // parked in staging_waiters_: no room in the staging share
    kGone,     // answered/freed, or possibly so: do not touch the Exchange
  };
  Progress Advance(Exchange* e, uint64_t now_ms);
  engine::Status Step(Exchange* e, uint64_t now_ms, bool* progressed, bool* waiting_body, bool* held,
                      uint64_t* stalled_ms);
  void CutPart(Exchange* e, size_t n);
  ByteBudget& body_budget() { return options_.body_budget != nullptr ? *options_.body_budget : unlimited_body_; }
  const ByteBudget& body_budget() const {
    return options_.body_budget != nullptr ? *options_.body_budget : unlimited_body_;
  }
  ByteBudget& whole_budget() {
    return options_.body_whole_budget != nullptr ? *options_.body_whole_budget : own_whole_;
  }
  const ByteBudget& whole_budget() const {
    return options_.body_whole_budget != nullptr ? *options_.body_whole_budget : own_whole_;
  }
  ByteBudget& arrived_budget() {
    return options_.body_arrived_budget != nullptr ? *options_.body_arrived_budget : own_arrived_;
  }
  const ByteBudget& arrived_budget() const {
    return options_.body_arrived_budget != nullptr ? *options_.body_arrived_budget : own_arrived_;
  }
  ByteBudget& waiting_budget() {
    return options_.body_waiting_budget != nullptr ? *options_.body_waiting_budget : own_waiting_;
  }
  const ByteBudget& waiting_budget() const {
    return options_.body_waiting_budget != nullptr ? *options_.body_waiting_budget : own_waiting_;
  }
  void UncountWaiting(Exchange* e);
  ByteBudget& HomeBudget(const Exchange* e);
  uint64_t Ceiling() const { return ceiling_; }
  bool ArrivalEligible(const Exchange* e) const;
  bool Arrived(const Exchange* e) const;
  bool WaitsForArrival(const Exchange* e) const;
  bool TryArrived(Exchange* e);
  void ServeArrivedWaiters(uint64_t now_ms);
  bool PassDue() const;
  uint64_t BodyReservation(const http::Request& r) const;
  uint64_t WholeBytes() const { return whole_bytes_; }
  uint64_t WindowRoom() const;
  bool NeedsWhole(const Exchange* e) const;
  bool WouldGrantWhole(const Exchange* e) const;
  bool TryWhole(Exchange* e);
  void GrowRaw(Exchange* e, size_t more);
  void WaitForBudget(Exchange* e, bool whole, uint64_t now_ms, bool pause);
  void AdmitBody(Exchange* e, http::Connection& conn, uint64_t since_ms, bool resume);
  void ResumeHeldBody(http::Connection& conn, uint64_t now_ms);
  void StartStagingWait(Exchange* e, uint64_t now_ms);
  void StopStagingWait(Exchange* e);
  void ReleaseStaging(Exchange* e);
  void ServeStagingWaiters(uint64_t now_ms);
  void Recount(Exchange* e);
  void ReleaseBody(Exchange* e);
  void StopWaitingForBudget(Exchange* e);
  void ServeBudgetWaiters(uint64_t now_ms);
  bool AddToTable(Exchange* e);
  void RemoveFromTable(Exchange* e);
  void Unblock(Exchange* e);
  void Finish(Exchange* e, http::Response&& response, uint64_t now_ms);
  void Orphan(Exchange* e);
  void Free(Exchange* e);
  Exchange* NewExchange();
  void DeleteExchange(Exchange* e);
  void KeepBody(std::string& raw);
  void StartWaiting(Exchange* e, uint64_t now_ms);
  void StopWaiting(Exchange* e);
  void ExpireWaits(uint64_t now_ms);
  bool Spillable(const Exchange* e) const;
  bool BudgetShort() const;
  void Rest(Exchange* e, uint64_t now_ms);
  [[gnu::cold]] bool RestOnBody(Exchange* e);
  void Unrest(Exchange* e);
  void SpillDue(uint64_t now_ms);
  bool StartSpill(Exchange* e);
  void SpillDone(uint64_t op, uint64_t now_ms, bool offloaded);
  void StartReadBack(Exchange* e, uint64_t now_ms);
  void ReadBackDone(uint64_t op, uint64_t now_ms, bool offloaded);
  bool RunSpillIo(Exchange* e, bool read);
  void ReleaseSpill(Exchange* e);

  KvBackend& backend_;
  Responder& responder_;
  const WriteExchangeOptions options_;
  WakeFn wake_;
  void* io_;
  TokenTable<Exchange> tokens_;
  std::vector<Exchange*> blocked_;  // waiting for queue room
  std::vector<uint64_t> aborts_;    // LargeAbort tokens that found the queue full
  std::deque<Exchange*> budget_waiters_;  // waiting for a whole reservation, oldest first
  std::deque<Exchange*> window_waiters_;  // waiting for room for their window, oldest first
  std::deque<Exchange*> staging_waiters_;  // held for room in the staging share, oldest first
  ByteBudget unlimited_body_{uint64_t{1} << 62};  // body_budget() when the options give none
  ByteBudget own_whole_;  // whole_budget() when the options give none
  ByteBudget own_arrived_;  // arrived_budget() when the options give none
  ByteBudget own_waiting_;  // waiting_budget() when the options give none
  // Constants of the options and the budgets' limits, made once: what a
  // whole reservation of the longest kind holds (WholeBytes) and what
  // windows and whole reservations may hold between them (Ceiling). Every
  // read's ReadBytesHint asks WindowRoom, which needs both.
  const uint64_t whole_bytes_;
  const uint64_t ceiling_;
  // Every spill_* option is set (see WriteExchangeOptions): bodies may be
  // spilled.
  const bool spill_enabled_;
  // Window waiters whose whole body arrived while the arrived room was full
  // (Exchange::arrival_refused): Poke retries them as the room frees.
  size_t arrival_refused_ = 0;
  // The window waiter reading on alone, past the windows' room, while no
  // whole reservation is held (PassDue), or null.
  Exchange* window_pass_ = nullptr;
  // Answerable exchanges waiting for their completion, oldest first (all
  // share one timeout, so this is also deadline order): an intrusive list.
  Exchange* waiting_head_ = nullptr;
  Exchange* waiting_tail_ = nullptr;
  int depth_ = 0;                   // > 0 inside a Handler callback: no wake()
  // Reused instead of a new/delete and a body buffer's malloc/free per write:
  // at most kSpareExchanges exchanges (reset, holding no memory) and
  // kSpareBodies empty body buffers of at most kSpareBodyBytes capacity
  // each, so what an idle service keeps is bounded. A buffer is charged to
  // the body budget only while an exchange holds it.
  std::vector<Exchange*> spare_exchanges_;
  std::vector<std::string> spare_bodies_;
  // Uploads holding body bytes in memory that a spill could take, least
  // recently fed first (an intrusive list; Exchange::last_body_ms).
  Exchange* rest_head_ = nullptr;
  Exchange* rest_tail_ = nullptr;
  // Spill writes and read-backs in flight on the offload, by id: a done
  // callback whose exchange is gone finds nothing.
  std::unordered_map<uint64_t, Exchange*> spill_ops_;
  uint64_t next_spill_op_ = 0;
  uint64_t spills_ = 0;
  // Done callbacks hold a weak reference: after the machine is gone they do
  // nothing.
  std::shared_ptr<int> life_ = std::make_shared<int>(0);
};

}  // namespace kingx
