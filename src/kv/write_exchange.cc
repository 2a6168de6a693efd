// The write exchange state machine (see write_exchange.h).
//
// An Exchange walks Phase kBody -> kEnqueued through Advance, which calls
// Step until the queue is full (kBusy: parked in blocked_, body paused), the
// body runs out (wait for OnBody/OnBodyEnd), or the whole write is queued
// (wait for the completion). Every answer goes through Finish, which frees
// the Exchange: after Finish or a kGone from Advance, the pointer is dead.
#include "src/kv/write_exchange.h"

#include <time.h>

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <string>

#include "engine/compress.h"
#include "http/responses.h"
#include "src/conf/log.h"
#include "src/ipc/staging_budget.h"
#include "src/kv/body_spill.h"
#include "src/kv/kv_service.h"
#include "src/kv/offload.h"

namespace kingx {

// An upload's spill file and the one write or read-back of it in flight:
// shared by the Exchange and the offload's callbacks, so that the file and
// the buffer outlive an exchange freed meanwhile.
struct SpillJob {
  explicit SpillJob(ByteBudget* files) : files_budget(files) {}
  ~SpillJob() { files_budget->Release(1); }  // its file, open or not, leaves the count
  SpillJob(const SpillJob&) = delete;
  SpillJob& operator=(const SpillJob&) = delete;
  ByteBudget* files_budget;         // counts this job's file (WriteExchangeOptions::spill_files)
  std::unique_ptr<SpillFile> file;  // created by the first write
  std::string buffer;               // the bytes being written, or those read back
  uint64_t read_bytes = 0;          // a read-back: how many
  engine::Status status;            // the I/O's outcome
};

// What spilling knows of one upload (see write_exchange.h): its place in
// the resting list and its spilled bytes. Body bytes spilled to disk: the
// first `spilled` bytes of the body not yet shipped are in job->file, before
// the exchange's raw.
struct ExchangeSpill {
  std::shared_ptr<SpillJob> job;  // made by its first spill
  uint64_t spilled = 0;
  uint64_t reserved = 0;          // bytes held in the spill budget
  uint64_t op = 0;                // id of the I/O in flight (io)
  bool io = false;                // a spill write or read-back is in flight
  bool paused = false;            // its body is paused for that I/O
  bool failed = false;            // a spill failed: never spilled again
  bool resting = false;           // in the resting list (rest_head_)
  uint64_t last_body_ms = 0;      // when its last body bytes came
  Exchange* rest_prev = nullptr;
  Exchange* rest_next = nullptr;
};

// One PUT or DELETE between Start and its answer (or its orphaned
// completion).
struct Exchange {
  enum class Phase : uint8_t {
    kBody,      // receiving the body (parts may already be queued)
    kEnqueued,  // the whole write is queued; waiting for the completion
  };
  http::Connection* conn = nullptr;     // null once the connection died
  const http::Request* request = nullptr;
  WriteKind kind = WriteKind::kPut;
  Phase phase = Phase::kBody;
  WriteCondition condition = WriteCondition::kNone;
  uint64_t if_match_seq = 0;
  uint64_t token = 0;                   // valid while in the token table
  bool in_table = false;
  bool body_done = false;
  bool blocked = false;                 // parked in blocked_ (queue full)
  bool paused = false;                  // we paused the Connection's body
  bool large = false;                   // going through LargeBegin/Part/End
  bool begun = false;                   // LargeBegin is queued
  bool stored_ready = false;            // `stored` holds the next part to queue
  bool single_ready = false;            // `stored` holds the whole encoded value
  engine::Codec codec = engine::Codec::kRaw;
  uint64_t raw_total = 0;               // body bytes received
  uint64_t busy_since_ms = 0;           // first kBusy of the current wait, 0 = none
  uint64_t reserved = 0;                // bytes held in the body budget (see Recount)
  uint64_t whole = 0;                   // > 0: a whole reservation, also held in the whole share
  bool awaiting_budget = false;         // in budget_waiters_ or window_waiters_: body paused
  bool arrived = false;                 // read whole from the arrived bodies' room: `reserved` is held there
  bool arrival_refused = false;         // a window waiter whose body arrived, refused room (arrival_refused_)
  uint64_t waiting_counted = 0;         // as a window waiter, bytes counted in waiting_budget()
  uint64_t budget_since_ms = 0;         // when it started waiting for the budget
  bool waiting = false;                 // in the waiting list (answerable, whole write queued)
  uint64_t waiting_since_ms = 0;        // when the whole write was queued
  Exchange* wait_prev = nullptr;        // the waiting list's links
  Exchange* wait_next = nullptr;
  std::string raw;                      // received bytes not yet shipped: raw[raw_off..]
  size_t raw_off = 0;
  std::string stored;                   // encoded bytes waiting to be queued
  // A large value's room in the staging budget (see write_exchange.h).
  StagingBudget::Holder staging;        // bytes reserved
  uint64_t staged = 0;                  // of them, bytes already queued (prefix and parts)
  uint64_t staging_declared = 0;        // > 0 while held before any body byte is read: the whole reservation
  bool awaiting_staging = false;        // in staging_waiters_: held, body paused
  uint64_t staging_since_ms = 0;        // when the current hold began
  // Its spill state, made when its body first rests (one that did not
  // arrive with its head): a body that did costs no more than this null.
  std::unique_ptr<ExchangeSpill> spill;
};

namespace {

// Raw bytes an exchange may hold past one part: the Connection hands a body
// over in pieces of up to a read (or its buffered input) at a time.
constexpr uint64_t kBodyPieceSlack = 256 * 1024;
// What the I/O layer reads at once from a connection while uploads wait for
// room in the body budget: enough for request heads, little for the body
// bytes that arrive with them and must then wait in the connection.
constexpr size_t kLowReadBytes = 4096;
// Below this much window room, reads between requests are kLowReadBytes.
constexpr uint64_t kLowRoomBytes = 256 * 1024;
// The smallest read of a window: progress even at the edge of the room
// (what it takes past the room is counted, and the next read waits).
constexpr uint64_t kMinWindowReadBytes = 512;
// The free lists' bounds (WriteExchanges::spare_exchanges_, spare_bodies_):
// a group commit answers a few dozen writes of a service at once, and their
// connections' next writes take what those left.
constexpr size_t kSpareExchanges = 128;
constexpr size_t kSpareBodies = 128;
constexpr size_t kSpareBodyBytes = 1024;

// The reservation of a body longer than one part (or chunked): its raw
// bytes up to a part and a piece, and a part's encoded copy.
uint64_t LongBodyReservation(uint64_t part) { return (part + kBodyPieceSlack) + (part + part / 64 + 4096); }

// What a whole reservation of the longest kind holds (parts of part bytes,
// a budget of limit bytes); the windows leave this much of the budget (at
// most half of it) for one.
uint64_t WholeBytesOf(uint64_t part, uint64_t limit) { return std::min(LongBodyReservation(part), limit / 2); }

// What windows and whole reservations may hold between them: the budget
// less the arrived bodies' room (at most half of it).
uint64_t CeilingOf(uint64_t limit, uint64_t arrived_limit) { return limit - std::min(arrived_limit, limit / 2); }

KvConnState* State(http::Connection& conn) { return static_cast<KvConnState*>(conn.user_data()); }

// Some of e's body waits in its spill file.
bool Spilled(const Exchange* e) { return e->spill != nullptr && e->spill->spilled > 0; }
// A spill write or read-back of e is in flight.
bool SpillIo(const Exchange* e) { return e->spill != nullptr && e->spill->io; }

// When an upload was last fed, for the spill's idle rule: the coarse clock
// (the same base as MonotonicMs, a few ms behind it) costs no syscall.
uint64_t CoarseMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

// One spill I/O, on whatever thread runs it: a write appends job->buffer
// (creating the file first) once the backend granted it disk room outside
// the writer's reserve, a read-back fills job->buffer.
void RunSpillJob(SpillJob* job, bool read, KvBackend* backend, engine::Env* env, const std::string& dir) {
  if (read) {
    job->status = job->file != nullptr ? job->file->Read(0, job->read_bytes, &job->buffer)
                                       : engine::Status::IOError("no body spill file");
    return;
  }
  if (job->file == nullptr) {
    auto file = SpillFile::Create(*env, dir);
    if (!file.ok()) {
      job->status = file.status();
      return;
    }
    job->file = std::move(file.value());
  }
  const uint64_t n = job->buffer.size();
  job->status = backend->TakeSpillRoom(n, *env, dir);
  if (!job->status.ok()) return;
  job->status = job->file->Append(job->buffer);
  backend->GiveSpillRoom(n);
}

std::string_view ContentTypeOf(const http::Request& r) {
  return r.content_type.empty() ? std::string_view(http::kDefaultContentType) : std::string_view(r.content_type);
}

// 507: the writer refused a put for want of disk room, or the worker knew it
// would before the body was sent.
http::Response DiskFullResponse() {
  return http::ProblemResponse(507,
                               "the disk holding the data directory is full: the write was not stored (reads "
                               "are served; writes resume once deleted data is compacted away)");
}

// The answer to a write the writer completed (built in place: it is on
// every write's path).
http::Response CompletionResponse(const Completion& c, WriteKind kind) {
  switch (c.code) {
    case engine::Code::kOk:
      return kind == WriteKind::kPut ? http::PutResponse(!c.existed, c.seq) : http::DeleteResponse();
    case engine::Code::kNotFound:
      return http::NoSuchKeyResponse();
    case engine::Code::kPreconditionFailed:
      return http::ProblemResponse(412, "the precondition does not hold for the current value");
    case engine::Code::kNoSpace:
      return DiskFullResponse();
    case engine::Code::kOutcomeUnknown:
      return http::ErrorResponse(engine::Status::OutcomeUnknown(
          "outcome unknown: the write may or may not have been applied; read the key before retrying"));
    default:
      return http::ErrorResponse(engine::Status(c.code, "the write failed"));
  }
}

}  // namespace

WriteExchanges::WriteExchanges(KvBackend& backend, Responder& responder, const WriteExchangeOptions& options,
                               WakeFn wake, void* io)
    : backend_(backend),
      responder_(responder),
      options_(options),
      wake_(wake),
      io_(io),
      tokens_(options.token_prefix, options.token_generation),
      own_whole_(options.body_budget != nullptr ? options.body_budget->limit() - options.body_budget->limit() / 4
                                                : uint64_t{1} << 62),
      own_arrived_(std::max<uint64_t>(
          (options.body_budget != nullptr ? options.body_budget->limit() : uint64_t{1} << 62) / 8, 1)),
      own_waiting_(uint64_t{1} << 62),
      whole_bytes_(WholeBytesOf(options.part_bytes, body_budget().limit())),
      ceiling_(CeilingOf(body_budget().limit(), arrived_budget().limit())),
      spill_enabled_(options.spill_env != nullptr && !options.spill_dir.empty() && options.spill_budget != nullptr &&
                     options.spill_files != nullptr) {}

WriteExchanges::~WriteExchanges() {
  tokens_.ForEach([](Exchange* e) { delete e; });
  for (Exchange* e : spare_exchanges_) delete e;
}

Exchange* WriteExchanges::NewExchange() {
  if (spare_exchanges_.empty()) return new Exchange;
  Exchange* e = spare_exchanges_.back();
  spare_exchanges_.pop_back();
  return e;
}

// Every exchange goes here once it is out of every list and table.
void WriteExchanges::DeleteExchange(Exchange* e) {
  if (e->spill != nullptr) {
    Unrest(e);
    ReleaseSpill(e);
  }
  KeepBody(e->raw);
  std::string().swap(e->stored);
  if (spare_exchanges_.size() >= kSpareExchanges) {
    delete e;
    return;
  }
  *e = Exchange{};  // a reused one starts as a new one (its buffers were freed above)
  spare_exchanges_.push_back(e);
}

// Leaves `raw` empty and without memory; keeps its buffer for the next body
// when the free list has room and the buffer is small.
void WriteExchanges::KeepBody(std::string& raw) {
  if (raw.capacity() > std::string().capacity() && raw.capacity() <= kSpareBodyBytes &&
      spare_bodies_.size() < kSpareBodies) {
    raw.clear();
    spare_bodies_.push_back(std::move(raw));
  }
  // Not `raw = std::string()`: a move from an empty string keeps the
  // target's buffer, which a reused exchange would then hold uncounted.
  std::string().swap(raw);
}

void WriteExchanges::Start(http::Connection& conn, const http::Request& request, WriteKind kind,
                           WriteCondition cond, uint64_t if_match_seq) {
  KvConnState* st = State(conn);
  assert(st != nullptr && st->exchange == nullptr);
  if (kind == WriteKind::kPut && request.expect_continue && !request.chunked &&
      !backend_.DiskRoomFor(request.content_length)) {
    // The client waits to hear whether to send its body: on a disk reported
    // full without room for its declared length, the answer is 507 now.
    responder_.Answer(conn, request, DiskFullResponse(), request.start_ms);
    return;
  }
  Exchange* e = NewExchange();
  e->conn = &conn;
  e->request = &request;
  e->kind = kind;
  e->condition = cond;
  e->if_match_seq = if_match_seq;
  st->exchange = e;
  if (kind == WriteKind::kPut && !request.chunked && request.content_length > options_.part_bytes &&
      backend_.Staging() != nullptr) {
    // A large value with a length: its whole staging room is reserved before
    // any body byte is read. Past the share it is held here, body unread,
    // until Poke finds room (ServeStagingWaiters).
    e->staging_declared = StagingPrefixBytes(request.key.size(), ContentTypeOf(request).size()) +
                          request.content_length;
    if (!backend_.Staging()->TryReserve(&e->staging, e->staging_declared, true)) {
      StartStagingWait(e, request.start_ms);
      conn.PauseBody();
      return;
    }
    e->staging_declared = 0;
  }
  AdmitBody(e, conn, request.start_ms, false);
}

// An upload starts reading its body when its window has room (others
// waiting for window room go first); otherwise it waits, body paused and
// unread, until Poke finds room. Nothing is reserved yet: the body is counted
// as it arrives (OnBody). resume: the body was paused (held for staging
// room) and is resumed once admitted. The body (or OnBodyEnd right away)
// then follows through the Connection.
void WriteExchanges::AdmitBody(Exchange* e, http::Connection& conn, uint64_t since_ms, bool resume) {
  const http::Request& request = *e->request;
  if (e->kind != WriteKind::kPut || !(request.chunked || request.content_length > 0)) {
    if (resume) ResumeHeldBody(conn, MonotonicMs());
    return;
  }
  if (!window_waiters_.empty() || WindowRoom() == 0) {
    if (!TryArrived(e)) {
      WaitForBudget(e, false, since_ms, !resume);
      return;
    }
  } else if (!request.chunked && request.content_length <= kSpareBodyBytes && !spare_bodies_.empty()) {
    e->raw = std::move(spare_bodies_.back());
    spare_bodies_.pop_back();
    Recount(e);
  }
  if (resume) ResumeHeldBody(conn, MonotonicMs());
}

// Parks e, paused, among the uploads that wait for room: for a whole
// reservation (first come first served) or for their window. pause: the
// body is delivering (or about to be) and must stop.
void WriteExchanges::WaitForBudget(Exchange* e, bool whole, uint64_t now_ms, bool pause) {
  e->awaiting_budget = true;
  e->budget_since_ms = now_ms;
  (whole ? budget_waiters_ : window_waiters_).push_back(e);
  if (!whole && e->reserved != 0) {
    e->waiting_counted = e->reserved;
    waiting_budget().Charge(e->waiting_counted);
  }
  if (pause && e->conn != nullptr) e->conn->PauseBody();
  // A waiter rests: what it holds may be spilled (SpillDue).
  if (!e->raw.empty() && spill_enabled_) Rest(e, CoarseMs());
}

// ResumeBody delivers buffered pieces: OnBody may answer and free the
// connection's exchange before it returns.
void WriteExchanges::ResumeHeldBody(http::Connection& conn, uint64_t now_ms) {
  ++depth_;
  conn.ResumeBody(now_ms);
  --depth_;
  if (depth_ == 0 && wake_ != nullptr) wake_(io_, conn, now_ms);
}

// ---- the staging budget ----

void WriteExchanges::StartStagingWait(Exchange* e, uint64_t now_ms) {
  if (e->awaiting_staging) return;
  e->awaiting_staging = true;
  e->staging_since_ms = now_ms;
  staging_waiters_.push_back(e);
  backend_.Staging()->SetHeld(&e->staging, true);
}

void WriteExchanges::StopStagingWait(Exchange* e) {
  if (!e->awaiting_staging) return;
  e->awaiting_staging = false;
  auto it = std::find(staging_waiters_.begin(), staging_waiters_.end(), e);
  if (it != staging_waiters_.end()) staging_waiters_.erase(it);
  backend_.Staging()->SetHeld(&e->staging, false);
}

// Gives the exchange's staging room back: its outcome is known, or its
// LargeAbort is queued (or will be: aborts_).
void WriteExchanges::ReleaseStaging(Exchange* e) {
  StopStagingWait(e);
  if (backend_.Staging() != nullptr) backend_.Staging()->Release(&e->staging);
}

// Retries the held uploads, oldest first: one held before its body reserves
// its whole room and goes on to the body budget; one held at a part goes on
// through Advance. Those held storage_timeout_ms are answered 503 +
// Retry-After (nothing of theirs is stored; a begun one is aborted).
void WriteExchanges::ServeStagingWaiters(uint64_t now_ms) {
  if (staging_waiters_.empty()) return;
  // Advance and the body's resumption may add waiters (the connection's
  // next pipelined request): iterate over the current ones.
  std::vector<Exchange*> held(staging_waiters_.begin(), staging_waiters_.end());
  for (Exchange* e : held) {
    if (e->staging_declared != 0) {
      if (!backend_.Staging()->TryReserve(&e->staging, e->staging_declared, true)) continue;
      e->staging_declared = 0;
      StopStagingWait(e);
      AdmitBody(e, *e->conn, now_ms, true);
    } else {
      (void)Advance(e, now_ms);
    }
  }
  held.assign(staging_waiters_.begin(), staging_waiters_.end());
  for (Exchange* e : held) {
    if (now_ms < e->staging_since_ms || now_ms - e->staging_since_ms < options_.storage_timeout_ms) continue;
    http::Response r = http::ProblemResponse(
        503,
        "large uploads in progress already stage their share of the disk (an eighth of the live data, or one "
        "upload at a time on a small database) and not enough of it was freed within --storage-timeout-ms; "
        "nothing was stored; retry later",
        std::nullopt, true);
    r.close = true;  // its body is not read further
    Finish(e, std::move(r), now_ms);
  }
}

// The most memory an exchange's body holds at once, raw bytes received and
// not yet shipped plus their encoded copy: twice a body of at most one part;
// for a longer (or chunked) body, one part of raw bytes plus the slack of a
// body piece past it, and one encoded part (compressed frames can be a bit
// larger than their input).
uint64_t WriteExchanges::BodyReservation(const http::Request& r) const {
  const uint64_t part = options_.part_bytes;
  if (!r.chunked && r.content_length <= part) return 2 * r.content_length;
  return LongBodyReservation(part);
}

// An exchange's body bytes are counted in the arrived bodies' room once it
// was read from there, in the body budget otherwise.
ByteBudget& WriteExchanges::HomeBudget(const Exchange* e) { return e->arrived ? arrived_budget() : body_budget(); }

// A PUT whose body the arrived bodies' room may take once it is all in the
// Connection's input: a short Content-Length, still being received, and not
// already counted there.
bool WriteExchanges::ArrivalEligible(const Exchange* e) const {
  if (e->kind != WriteKind::kPut || e->request == nullptr || e->conn == nullptr) return false;
  const http::Request& r = *e->request;
  return !r.chunked && r.content_length <= kArrivedBodyBytes && e->whole == 0 && !e->arrived &&
         e->phase == Exchange::Phase::kBody && !e->body_done && !Spilled(e) && !SpillIo(e);
}

// The rest of an eligible body is in its Connection's input.
bool WriteExchanges::Arrived(const Exchange* e) const {
  if (!ArrivalEligible(e)) return false;
  const uint64_t rest = e->request->content_length - std::min(e->raw_total, e->request->content_length);
  return e->conn->BufferedInputBytes() >= rest;
}

// A window waiter whose short body is still on its way: its Connection reads
// on (AwaitsStorage false) so that the body can arrive whole.
bool WriteExchanges::WaitsForArrival(const Exchange* e) const {
  return e->awaiting_budget && ArrivalEligible(e) && !Arrived(e);
}

// Takes room in the arrived bodies' share for e when its whole body has
// arrived: twice its length (its bytes and their encoded copy), what its raw
// buffer holds moved over from the body budget. True: e no longer waits for
// room (its body may be delivered at once). On a refusal e is marked for
// ServeArrivedWaiters.
bool WriteExchanges::TryArrived(Exchange* e) {
  if (!Arrived(e)) return false;
  const uint64_t want = 2 * std::max<uint64_t>(e->request->content_length, e->raw.capacity());
  if (!arrived_budget().TryReserve(want)) {
    if (!e->arrival_refused) {
      e->arrival_refused = true;
      ++arrival_refused_;
    }
    return false;
  }
  if (e->arrival_refused) {
    e->arrival_refused = false;
    --arrival_refused_;
  }
  if (e->reserved != 0) body_budget().Release(e->reserved);
  e->reserved = want;
  e->arrived = true;
  e->raw.reserve(e->request->content_length);
  Recount(e);
  return true;
}

// Reads the waiters whose whole body arrived while the arrived bodies' room
// was full, oldest first, as far as the room now allows.
void WriteExchanges::ServeArrivedWaiters(uint64_t now_ms) {
  if (arrival_refused_ == 0) return;
  std::vector<Exchange*> refused;
  for (Exchange* e : window_waiters_) {
    if (e->arrival_refused) refused.push_back(e);
  }
  // Resuming one delivers only its own connection's input: the others stay
  // valid.
  for (Exchange* e : refused) {
    if (!e->awaiting_budget || !TryArrived(e)) continue;
    http::Connection* conn = e->conn;
    StopWaitingForBudget(e);
    ResumeHeldBody(*conn, now_ms);
  }
}

// Whether the oldest window waiter should read on alone (window_pass_):
// windows leave no room, only uploads waiting for window room hold it, and
// no whole reservation is held or awaited that would give some back.
bool WriteExchanges::PassDue() const {
  // Every byte held belongs to an upload waiting for window room (of any
  // service of the worker): nothing else will give room back.
  return window_pass_ == nullptr && !window_waiters_.empty() && budget_waiters_.empty() &&
         whole_budget().used() == 0 && WindowRoom() == 0 && waiting_budget().used() >= body_budget().used();
}

// Room the windows may still take: within the budget less the arrived
// bodies' room (Ceiling), and with the windows (what is held outside whole
// reservations) below that less WholeBytes().
uint64_t WriteExchanges::WindowRoom() const {
  // The limits first: the budgets' loads below are sequentially consistent
  // (byte_budget.h), and nothing read before them is read again.
  const uint64_t limit = Ceiling();
  const uint64_t windows_cap = limit - WholeBytes();
  const uint64_t used = body_budget().used();
  const uint64_t whole = std::min(whole_budget().used(), used);
  const uint64_t windows = used - whole;
  if (used >= limit || windows >= windows_cap) return 0;
  return std::min(limit - used, windows_cap - windows);
}

// A body that cannot finish within its window: more than kBodyWindowBytes
// arrived and more is announced (or it is chunked and not done).
bool WriteExchanges::NeedsWhole(const Exchange* e) const {
  const http::Request& r = *e->request;
  if (e->whole != 0 || e->body_done) return false;
  // A spilled body is read in windows, each spilled in turn, until it holds
  // more than a part: then it is read back and goes on as a large value.
  if (Spilled(e)) return e->raw_total > options_.part_bytes;
  if (e->raw_total < kBodyWindowBytes) return false;
  return r.chunked || e->raw_total < r.content_length;
}

// Whether TryWhole(e) would succeed now (the same rule, without reserving).
bool WriteExchanges::WouldGrantWhole(const Exchange* e) const {
  const uint64_t want = BodyReservation(*e->request);
  const uint64_t extra = want > e->reserved ? want - e->reserved : 0;
  const ByteBudget& w = whole_budget();
  const bool alone = w.used() == 0;
  if (!alone && w.used() + want > w.limit()) return false;
  return alone || body_budget().used() + extra <= Ceiling();
}

// Takes the whole reservation of e: want bytes in the whole share, and what
// it holds now topped up to want in the budget. Granted within both limits,
// or to the one upload that holds no other whole reservation, whatever its
// size (a body larger than the budget still proceeds, alone).
bool WriteExchanges::TryWhole(Exchange* e) {
  const http::Request& r = *e->request;
  const uint64_t want = BodyReservation(r);
  const uint64_t extra = want > e->reserved ? want - e->reserved : 0;
  ByteBudget& w = whole_budget();
  if (!w.TryReserve(want)) return false;
  if (!body_budget().TryReserveBelow(extra, Ceiling())) {
    if (w.used() != want) {  // others hold whole reservations: wait for them
      w.Release(want);
      return false;
    }
    body_budget().Charge(extra);
  }
  e->whole = want;
  e->reserved += extra;
  // What e held as a window now counts in the whole share: the windows'
  // room grew, which a waiter on another thread learns from the listener.
  w.NotifyListener();
  const uint64_t part = options_.part_bytes;
  e->raw.reserve(!r.chunked && r.content_length <= part ? r.content_length : part + kBodyPieceSlack);
  Recount(e);
  return true;
}

// Makes room in raw for `more` bytes: geometric growth following what
// arrives (a trickling body holds about what it sent), up to the announced
// length (or the window, before a whole reservation).
void WriteExchanges::GrowRaw(Exchange* e, size_t more) {
  const size_t need = e->raw.size() + more;
  if (need <= e->raw.capacity()) return;
  const http::Request& r = *e->request;
  uint64_t cap = std::max<uint64_t>(2 * e->raw.capacity(), 256);
  if (!r.chunked) cap = std::min<uint64_t>(cap, e->raw.size() + (r.content_length - std::min(e->raw_total, r.content_length)));
  if (e->whole == 0 && !e->arrived) {
    // Counted twice: grow by at most half the window room left (the read
    // was sized to fit it, ReadBytesHint).
    cap = std::min<uint64_t>({cap, kBodyWindowBytes, e->raw.capacity() + WindowRoom() / 2});
  }
  e->raw.reserve(std::max<uint64_t>(cap, need));
}

// Keeps the reservation at least what the buffers really hold: before a
// whole reservation, twice the raw buffer (its bytes and their encoded copy
// to come); with one, what the buffers hold past it (a piece that did not
// fit made the raw buffer grow). Bytes that arrived are always counted.
void WriteExchanges::Recount(Exchange* e) {
  const uint64_t held = e->whole != 0 ? e->raw.capacity() + e->stored.capacity()
                                      : e->raw.capacity() + std::max(e->raw.capacity(), e->stored.capacity());
  if (held > e->reserved) {
    HomeBudget(e).Charge(held - e->reserved);
    e->reserved = held;
  }
}

void WriteExchanges::ReleaseBody(Exchange* e) {
  if (window_pass_ == e) window_pass_ = nullptr;
  if (e->whole != 0) whole_budget().Release(e->whole);
  e->whole = 0;
  if (e->reserved == 0) return;
  HomeBudget(e).Release(e->reserved);
  e->reserved = 0;
}

// e leaves window_waiters_: its bytes no longer count as held by a waiter.
void WriteExchanges::UncountWaiting(Exchange* e) {
  if (e->waiting_counted == 0) return;
  waiting_budget().Release(e->waiting_counted);
  e->waiting_counted = 0;
}

void WriteExchanges::StopWaitingForBudget(Exchange* e) {
  UncountWaiting(e);
  if (e->arrival_refused) {
    e->arrival_refused = false;
    --arrival_refused_;
  }
  if (!e->awaiting_budget) return;
  e->awaiting_budget = false;
  auto it = std::find(budget_waiters_.begin(), budget_waiters_.end(), e);
  if (it != budget_waiters_.end()) {
    budget_waiters_.erase(it);
    return;
  }
  it = std::find(window_waiters_.begin(), window_waiters_.end(), e);
  if (it != window_waiters_.end()) window_waiters_.erase(it);
}

// Grants waiting uploads their whole reservations, oldest first, and lets
// those waiting for window room read again while there is room, oldest
// first; resumes their bodies. Answers 503 + Retry-After to those that
// waited longer than body_budget_give_up_ms (nothing of theirs is stored).
void WriteExchanges::ServeBudgetWaiters(uint64_t now_ms) {
  const auto resume = [this, now_ms](Exchange* e) {
    e->awaiting_budget = false;
    UncountWaiting(e);
    if (e->arrival_refused) {
      e->arrival_refused = false;
      --arrival_refused_;
    }
    http::Connection* conn = e->conn;
    // ResumeBody delivers buffered pieces: OnBody may answer and free `e`.
    ++depth_;
    conn->ResumeBody(now_ms);
    --depth_;
    if (depth_ == 0 && wake_ != nullptr) wake_(io_, *conn, now_ms);
  };
  // A waiter whose spill is in flight is served once it is done (SpillDone).
  while (!budget_waiters_.empty()) {
    Exchange* e = budget_waiters_.front();
    if (SpillIo(e) || !TryWhole(e)) break;
    budget_waiters_.pop_front();
    if (Spilled(e)) {
      // Its room is for the bytes it spilled: read them back first.
      e->awaiting_budget = false;
      UncountWaiting(e);
      StartReadBack(e, now_ms);
      continue;
    }
    resume(e);
  }
  while (!window_waiters_.empty() && WindowRoom() > 0 && !SpillIo(window_waiters_.front())) {
    Exchange* e = window_waiters_.front();
    window_waiters_.pop_front();
    resume(e);
  }
  if (PassDue() && !SpillIo(window_waiters_.front())) {
    // Windows hold their whole share and nobody holds or waits for a whole
    // reservation (reads past the room add up): the oldest waiter reads on
    // alone up to its window, then asks for its whole reservation.
    Exchange* e = window_waiters_.front();
    window_waiters_.pop_front();
    window_pass_ = e;
    resume(e);
  }
  for (std::deque<Exchange*>* waiters : {&budget_waiters_, &window_waiters_}) {
    while (!waiters->empty() && now_ms >= waiters->front()->budget_since_ms &&
           now_ms - waiters->front()->budget_since_ms >= options_.body_budget_give_up_ms) {
      Exchange* e = waiters->front();
      StopWaitingForBudget(e);
      http::Response r = http::ProblemResponse(
          503,
          "request bodies of other uploads hold all of this worker's body buffer (--body-buffer-bytes) and none "
          "was freed within --body-timeout-ms; nothing of this upload was stored; retry later",
          body_budget().limit(), true);
      r.close = true;  // the rest of its body is not read
      Finish(e, std::move(r), now_ms);
    }
  }
}

bool WriteExchanges::AddToTable(Exchange* e) {
  if (!tokens_.Insert(e, &e->token)) return false;
  e->in_table = true;
  return true;
}

void WriteExchanges::RemoveFromTable(Exchange* e) {
  if (!e->in_table) return;
  tokens_.Erase(e->token);
  e->in_table = false;
}

// Cuts the next n raw bytes into `stored` (compressed frame or raw copy).
void WriteExchanges::CutPart(Exchange* e, size_t n) {
  std::string_view part(e->raw.data() + e->raw_off, n);
  e->stored.clear();
  if (!e->begun && e->codec == engine::Codec::kRaw && !e->stored_ready) {
    // First part decides the codec of the whole value.
    std::string frame;
    e->codec = engine::EncodeValue(part, options_.compression_level, options_.compress_min_bytes, &frame);
    if (e->codec == engine::Codec::kZstd) e->stored = std::move(frame);
  } else if (e->codec == engine::Codec::kZstd) {
    if (!engine::CompressFrames(part, options_.compression_level, &e->stored).ok()) {
      // Cannot happen with valid levels; keep the value readable anyway.
      e->stored.clear();
    }
  }
  if (e->codec == engine::Codec::kRaw) e->stored.assign(part);
  e->raw_off += n;
  if (e->raw_off == e->raw.size()) {
    e->raw.clear();
    e->raw_off = 0;
  } else if (e->raw_off > e->raw.size() / 2) {
    e->raw.erase(0, e->raw_off);
    e->raw_off = 0;
  }
  e->stored_ready = true;
  Recount(e);
}

// One step of an Exchange's queue work. Returns the queue's status (kBusy:
// blocked, try again later) and whether something was queued or prepared.
engine::Status WriteExchanges::Step(Exchange* e, uint64_t now_ms, bool* progressed, bool* waiting_body, bool* held,
                                    uint64_t* stalled_ms) {
  *progressed = false;
  *waiting_body = false;
  *held = false;
  *stalled_ms = 0;
  const http::Request& req = *e->request;
  // The writer's stall may have become known after the request head was
  // checked (a long body): what would start or complete the write is not
  // queued then, so the write is known not applied. A head and body read at
  // the same tick were checked with the head.
  const auto writer_stalled = [&]() {
    if (now_ms == req.start_ms) return false;
    *stalled_ms = backend_.WriterNoProgressMs(now_ms);
    return *stalled_ms != 0;
  };
  const size_t part_bytes = options_.part_bytes;
  if (e->stored_ready) {
    // What the writer will have staged once this part is queued must be
    // reserved first: a chunked upload reserves here part by part; one with
    // a length already holds its declared size (this only tops it up when
    // its encoded parts came out larger).
    const uint64_t prefix = e->begun ? 0 : StagingPrefixBytes(req.key.size(), ContentTypeOf(req).size());
    const uint64_t need = e->staged + prefix + e->stored.size();
    if (backend_.Staging() != nullptr && need > e->staging.reserved &&
        !backend_.Staging()->TryReserve(&e->staging, need - e->staging.reserved, false)) {
      *held = true;
      return engine::Status::OK();
    }
    if (!e->begun) {
      if (writer_stalled()) return engine::Status::OK();
      WriteRequest h;
      h.kind = WriteKind::kPut;
      h.condition = e->condition;
      h.if_match_seq = e->if_match_seq;
      h.key = req.key;
      h.content_type = ContentTypeOf(req);
      h.codec = e->codec;
      engine::Status s = backend_.EnqueueLargeBegin(e->token, h);
      if (!s.ok()) return s;
      e->begun = true;
      e->staged += prefix;
    }
    engine::Status s = backend_.EnqueueLargePart(e->token, e->stored);
    if (!s.ok()) return s;
    e->staged += e->stored.size();
    e->stored_ready = false;
    e->stored.clear();
    *progressed = true;
    return engine::Status::OK();
  }
  const size_t avail = e->raw.size() - e->raw_off;
  if (avail > part_bytes || (e->large && avail > 0 && (e->body_done || avail == part_bytes))) {
    e->large = true;
    CutPart(e, std::min(avail, part_bytes));
    *progressed = true;
    return engine::Status::OK();
  }
  if (!e->body_done) {
    *waiting_body = true;
    return engine::Status::OK();
  }
  if (writer_stalled()) return engine::Status::OK();
  engine::Status s;
  if (e->large) {
    s = backend_.EnqueueLargeEnd(e->token, e->raw_total);
  } else {
    WriteRequest w;
    w.kind = e->kind;
    w.condition = e->condition;
    w.if_match_seq = e->if_match_seq;
    w.key = req.key;
    if (e->kind == WriteKind::kPut) {
      w.content_type = req.content_type.empty() ? http::kDefaultContentType : req.content_type;
      if (!e->single_ready) {
        std::string_view raw(e->raw.data() + e->raw_off, e->raw.size() - e->raw_off);
        e->codec = engine::EncodeValue(raw, options_.compression_level, options_.compress_min_bytes, &e->stored);
        if (e->codec == engine::Codec::kRaw) e->stored.clear();
        e->single_ready = true;
        Recount(e);
      }
      w.codec = e->codec;
      w.raw_len = e->raw_total;
      w.stored = e->codec == engine::Codec::kRaw
                     ? std::string_view(e->raw.data() + e->raw_off, e->raw.size() - e->raw_off)
                     : std::string_view(e->stored);
      if (w.key.size() + w.content_type.size() + w.stored.size() + 64 > backend_.MaxEntryBytes()) {
        // Does not fit one entry (tiny queue, huge key): go the large way.
        e->single_ready = false;
        e->stored.clear();
        e->codec = engine::Codec::kRaw;
        e->large = true;
        *progressed = true;
        return engine::Status::OK();
      }
    }
    s = backend_.Enqueue(e->token, w);
  }
  if (!s.ok()) return s;
  e->phase = Exchange::Phase::kEnqueued;
  KeepBody(e->raw);
  e->stored.clear();
  e->stored.shrink_to_fit();
  ReleaseBody(e);
  *progressed = true;
  return engine::Status::OK();
}

// Moves an Exchange as far as the queue allows. Answers it on a hard error;
// parks it (body paused) on kBusy. Returns kGone when `e` was freed (or may
// have been, through a re-entrant answer while resuming the body): the caller
// must not touch it again.
WriteExchanges::Progress WriteExchanges::Advance(Exchange* e, uint64_t now_ms) {
  if (e->staging_declared != 0) return Progress::kHeld;  // held before its body: ServeStagingWaiters
  if (!e->in_table && !AddToTable(e)) {
    Finish(e, http::ProblemResponse(503, "too many writes in flight", std::nullopt, true), now_ms);
    return Progress::kGone;
  }
  while (e->phase == Exchange::Phase::kBody) {
    bool progressed = false, waiting_body = false, held = false;
    uint64_t stalled_ms = 0;
    engine::Status s = Step(e, now_ms, &progressed, &waiting_body, &held, &stalled_ms);
    if (stalled_ms != 0) {
      // Refused before its write was queued (a begun large value is
      // aborted): not applied. A body not read to its end is not read on.
      http::Response r = StalledWriterResponse(stalled_ms, options_.storage_timeout_ms);
      r.close = !e->body_done;
      Finish(e, std::move(r), now_ms);
      return Progress::kGone;
    }
    if (held) {
      // No room in the staging share for its next part: held (body paused,
      // one part in memory) until ServeStagingWaiters finds room.
      if (e->blocked) Unblock(e);
      StartStagingWait(e, now_ms);
      if (!e->body_done && !e->paused && e->conn != nullptr) {
        e->paused = true;
        e->conn->PauseBody();
      }
      return Progress::kHeld;
    }
    if (s.Is(engine::Code::kBusy)) {
      if (e->busy_since_ms == 0) e->busy_since_ms = now_ms;
      if (!e->blocked) {
        e->blocked = true;
        blocked_.push_back(e);
      }
      if (!e->body_done && !e->paused && e->conn != nullptr) {
        e->paused = true;
        e->conn->PauseBody();
      }
      return Progress::kBlocked;
    }
    if (!s.ok()) {
      Finish(e, http::ErrorResponse(s), now_ms);
      return Progress::kGone;
    }
    e->busy_since_ms = 0;
    if (waiting_body || !progressed) break;
  }
  if (e->blocked) Unblock(e);
  StopStagingWait(e);
  if (e->phase == Exchange::Phase::kEnqueued && !e->waiting && e->conn != nullptr) StartWaiting(e, now_ms);
  if (e->paused && e->conn != nullptr && e->phase == Exchange::Phase::kBody) {
    e->paused = false;
    http::Connection* conn = e->conn;
    // ResumeBody delivers buffered pieces: OnBody → Advance may answer and
    // free `e` before it returns.
    ++depth_;
    conn->ResumeBody(now_ms);
    --depth_;
    if (depth_ == 0 && wake_ != nullptr) wake_(io_, *conn, now_ms);
    return Progress::kGone;
  }
  return Progress::kMoving;
}

// Appends e to the waiting list: its deadline is the latest so far.
void WriteExchanges::StartWaiting(Exchange* e, uint64_t now_ms) {
  e->waiting = true;
  e->waiting_since_ms = now_ms;
  e->wait_prev = waiting_tail_;
  e->wait_next = nullptr;
  (waiting_tail_ != nullptr ? waiting_tail_->wait_next : waiting_head_) = e;
  waiting_tail_ = e;
}

void WriteExchanges::StopWaiting(Exchange* e) {
  if (!e->waiting) return;
  (e->wait_prev != nullptr ? e->wait_prev->wait_next : waiting_head_) = e->wait_next;
  (e->wait_next != nullptr ? e->wait_next->wait_prev : waiting_tail_) = e->wait_prev;
  e->waiting = false;
  e->wait_prev = e->wait_next = nullptr;
}

// Answers the writes that waited storage_timeout_ms for their completion.
// Each stays in the token table, orphaned: the writer may still apply it,
// and its late completion must find the token taken (OnCompletion frees it).
// Only exchanges already waiting on entry are considered: an answer may
// start the connection's next pipelined write, which gets its own deadline.
void WriteExchanges::ExpireWaits(uint64_t now_ms) {
  const Exchange* const last = waiting_tail_;
  bool done = last == nullptr;
  while (!done && waiting_head_ != nullptr && now_ms >= waiting_head_->waiting_since_ms &&
         now_ms - waiting_head_->waiting_since_ms >= options_.storage_timeout_ms) {
    Exchange* e = waiting_head_;
    done = e == last;
    StopWaiting(e);
    http::Connection* conn = e->conn;
    const http::Request* request = e->request;
    e->conn = nullptr;
    e->request = nullptr;
    State(*conn)->exchange = nullptr;
    // Respond may dispatch the next pipelined request (a new Exchange, queued
    // at the tail of the list with a later deadline).
    responder_.Answer(*conn, *request,
                      http::ErrorResponse(engine::Status::OutcomeUnknown(
                          "the storage did not answer within --storage-timeout-ms: the write may or may not "
                          "be applied; read the key before retrying")),
                      now_ms);
    if (depth_ == 0 && wake_ != nullptr) wake_(io_, *conn, now_ms);
  }
}

void WriteExchanges::Unblock(Exchange* e) {
  e->blocked = false;
  auto it = std::find(blocked_.begin(), blocked_.end(), e);
  if (it != blocked_.end()) blocked_.erase(it);
}

// Answers the exchange's request and forgets the exchange. A large value
// already begun is abandoned with LargeAbort (retried by Poke when full).
void WriteExchanges::Finish(Exchange* e, http::Response&& response, uint64_t now_ms) {
  if (e->begun && e->phase == Exchange::Phase::kBody) {
    if (!backend_.EnqueueLargeAbort(e->token).ok()) aborts_.push_back(e->token);
  }
  if (e->blocked) Unblock(e);
  StopWaitingForBudget(e);
  ReleaseBody(e);
  ReleaseStaging(e);
  StopWaiting(e);
  RemoveFromTable(e);
  http::Connection* conn = e->conn;
  const http::Request* request = e->request;
  if (conn != nullptr) State(*conn)->exchange = nullptr;
  DeleteExchange(e);
  if (conn != nullptr) {
    // Respond may dispatch the next pipelined request (a new Exchange).
    responder_.Answer(*conn, *request, std::move(response), now_ms);
    if (depth_ == 0 && wake_ != nullptr) wake_(io_, *conn, now_ms);
  }
}

// The connection died: forget it. A queued write stays in the table until
// its completion; a large value being uploaded is aborted.
void WriteExchanges::Orphan(Exchange* e) {
  e->conn = nullptr;
  e->request = nullptr;
  if (e->blocked) Unblock(e);
  StopWaitingForBudget(e);
  StopStagingWait(e);
  StopWaiting(e);
  if (e->phase == Exchange::Phase::kEnqueued) {
    KeepBody(e->raw);
    e->stored = std::string();
    return;  // freed by OnCompletion
  }
  if (e->begun && !backend_.EnqueueLargeAbort(e->token).ok()) aborts_.push_back(e->token);
  Free(e);
}

void WriteExchanges::Free(Exchange* e) {
  if (e->blocked) Unblock(e);
  StopWaitingForBudget(e);
  ReleaseBody(e);
  ReleaseStaging(e);
  StopWaiting(e);
  RemoveFromTable(e);
  DeleteExchange(e);
}

void WriteExchanges::OnBody(http::Connection& conn, std::span<const char> piece, uint64_t now_ms) {
  KvConnState* st = State(conn);
  Exchange* e = st != nullptr ? st->exchange : nullptr;
  if (e == nullptr || e->kind != WriteKind::kPut) return;  // a DELETE's body is ignored
  GrowRaw(e, piece.size());
  e->raw.append(piece.data(), piece.size());
  e->raw_total += piece.size();
  Recount(e);
  if (e->whole == 0 && !e->awaiting_budget && !e->arrived) {
    // Past its window the upload needs a whole reservation (behind any
    // that wait for one); within it, room for more of its window (unless it
    // reads on alone: window_pass_).
    if (NeedsWhole(e)) {
      if (window_pass_ == e) window_pass_ = nullptr;
      if (!budget_waiters_.empty() || !TryWhole(e)) return WaitForBudget(e, true, now_ms, true);
      // A spilled body past a part: read back, then on as a large value.
      if (Spilled(e)) return StartReadBack(e, now_ms);
    } else if (e != window_pass_ && WindowRoom() == 0 &&
               (e->request->chunked || e->raw_total < e->request->content_length) && !TryArrived(e)) {
      return WaitForBudget(e, false, now_ms, true);
    }
  }
  if ((e->request->chunked || e->raw_total < e->request->content_length) && spill_enabled_ && !e->large &&
      !e->arrived && RestOnBody(e)) {
    return;
  }
  // Ship full parts as soon as more than one part is known to exist; a body
  // of at most one part waits for OnBodyEnd (it may go as one entry).
  if (!e->blocked && !e->awaiting_staging && e->raw.size() - e->raw_off > options_.part_bytes) {
    const CallbackScope scope(*this);
    (void)Advance(e, now_ms);
  }
}

void WriteExchanges::OnBodyEnd(http::Connection& conn, uint64_t now_ms) {
  KvConnState* st = State(conn);
  Exchange* e = st != nullptr ? st->exchange : nullptr;
  if (e == nullptr) return;
  e->body_done = true;
  if (e->spill != nullptr) Unrest(e);
  if (Spilled(e)) {
    // Read back under a whole reservation (first come first served), then
    // queued as any body.
    if (e->whole == 0 && (!budget_waiters_.empty() || !TryWhole(e))) return WaitForBudget(e, true, now_ms, false);
    const CallbackScope scope(*this);
    return StartReadBack(e, now_ms);
  }
  if (!e->blocked && !e->awaiting_staging) {
    const CallbackScope scope(*this);
    (void)Advance(e, now_ms);
  }
}

void WriteExchanges::OnAbort(http::Connection& conn) {
  KvConnState* st = State(conn);
  if (st == nullptr || st->exchange == nullptr) return;
  Exchange* e = st->exchange;
  st->exchange = nullptr;
  const CallbackScope scope(*this);
  Orphan(e);
}

void WriteExchanges::OnInput(http::Connection& conn, uint64_t now_ms) {
  KvConnState* st = State(conn);
  Exchange* e = st != nullptr ? st->exchange : nullptr;
  if (e == nullptr || !e->awaiting_budget || !TryArrived(e)) return;
  StopWaitingForBudget(e);
  ResumeHeldBody(conn, now_ms);
}

void WriteExchanges::OnCompletion(const Completion& c, uint64_t now_ms) {
  Exchange* e = tokens_.Find(c.token);
  if (e == nullptr) return;
  if (e->conn == nullptr) {  // orphaned: nobody to tell
    Free(e);
    return;
  }
  if (e->phase != Exchange::Phase::kEnqueued) {
    // The writer refused a large value early (e.g. NoSpace on a part):
    // answer now; the upload is abandoned.
    e->begun = false;  // the writer already dropped it
  }
  if (c.reason == CompletionReason::kStagingBudget) {
    // Refused before its body ended: do not read the rest of it.
    http::Response resp = http::ProblemResponse(
        503, "large uploads in progress already stage as much disk as --staging-bytes allows; retry later",
        options_.staging_bytes, true);
    resp.close = true;
    Finish(e, std::move(resp), now_ms);
    return;
  }
  if (c.reason == CompletionReason::kWriterRestarted) {
    Finish(e,
           http::ProblemResponse(503,
                                 "the writer process restarted during this upload: nothing of it was stored; "
                                 "send it again",
                                 std::nullopt, true),
           now_ms);
    return;
  }
  Finish(e, CompletionResponse(c, e->kind), now_ms);
}

void WriteExchanges::Poke(uint64_t now_ms) {
  SpillDue(now_ms);
  ServeStagingWaiters(now_ms);
  ServeArrivedWaiters(now_ms);
  ServeBudgetWaiters(now_ms);
  for (size_t i = 0; i < aborts_.size();) {
    if (backend_.EnqueueLargeAbort(aborts_[i]).Is(engine::Code::kBusy)) {
      ++i;
    } else {
      aborts_.erase(aborts_.begin() + static_cast<std::ptrdiff_t>(i));
    }
  }
  // Advance may re-park or free exchanges: iterate over the old list.
  std::vector<Exchange*> waiting;
  waiting.swap(blocked_);
  for (Exchange* e : waiting) e->blocked = false;
  for (Exchange* e : waiting) {
    const uint64_t since = e->busy_since_ms;
    if (Advance(e, now_ms) != Progress::kBlocked) continue;  // moving, answered, or held for staging room
    if (since != 0 && now_ms >= since && now_ms - since >= options_.busy_give_up_ms) {
      Finish(e, http::ProblemResponse(503, "the write queue stayed full", std::nullopt, true), now_ms);
    }
  }
  ExpireWaits(now_ms);
}

uint64_t WriteExchanges::NextExpiryMs() const {
  uint64_t next = waiting_head_ != nullptr ? waiting_head_->waiting_since_ms + options_.storage_timeout_ms : 0;
  for (const std::deque<Exchange*>* waiters : {&budget_waiters_, &window_waiters_}) {
    if (waiters->empty()) continue;
    const uint64_t at = waiters->front()->budget_since_ms + options_.body_budget_give_up_ms;
    if (next == 0 || at < next) next = at;
  }
  if (rest_head_ != nullptr && spill_enabled_) {
    const uint64_t at = rest_head_->spill->last_body_ms + kSpillIdleMs;
    if (next == 0 || at < next) next = at;
  }
  return next;
}

uint64_t WriteExchanges::NextRetryMs() const {
  // Uploads waiting for the body budget ask for a Poke only once room was
  // released for one of them; their give-up is in NextExpiryMs.
  const bool budget_room = (!budget_waiters_.empty() && WouldGrantWhole(budget_waiters_.front())) ||
                           (!window_waiters_.empty() && WindowRoom() > 0) ||
                           (arrival_refused_ > 0 && arrived_budget().WouldFit(2 * kArrivedBodyBytes)) || PassDue() ||
                           (rest_head_ != nullptr && spill_enabled_ && BudgetShort());
  if (blocked_.empty() && aborts_.empty() && staging_waiters_.empty() && !budget_room) return 0;
  return 1;  // as soon as possible: the I/O layer applies its own retry period
}

bool WriteExchanges::AwaitsStorage(const KvConnState& state) const {
  const Exchange* e = state.exchange;
  return e != nullptr && (e->blocked || (e->awaiting_budget && !WaitsForArrival(e)) || e->awaiting_staging ||
                          SpillIo(e) || e->phase == Exchange::Phase::kEnqueued);
}

bool WriteExchanges::AwaitsBodyBudget(const KvConnState& state) const {
  return state.exchange != nullptr && state.exchange->awaiting_budget;
}

bool WriteExchanges::AwaitsArrivedRoom(const KvConnState& state) const {
  return state.exchange != nullptr && state.exchange->awaiting_budget && state.exchange->arrival_refused;
}

size_t WriteExchanges::ReadBytesHint(const KvConnState& state) const {
  const uint64_t room = WindowRoom();
  const Exchange* e = state.exchange;
  if (e != nullptr && e->kind == WriteKind::kPut && e->phase == Exchange::Phase::kBody && e->whole == 0 &&
      e->request != nullptr) {
    // What fits the raw buffer, and past it growth counted twice (GrowRaw).
    const http::Request& r = *e->request;
    uint64_t left = !r.chunked && r.content_length <= kBodyWindowBytes
                        ? r.content_length - std::min(e->raw_total, r.content_length)
                        : kBodyWindowBytes - std::min(e->raw_total, kBodyWindowBytes);
    if (Spilled(e)) {
      // A spilled body reads a window at a time, each then spilled.
      left = kBodyWindowBytes - std::min<uint64_t>(e->raw.size() - e->raw_off, kBodyWindowBytes);
      if (!r.chunked) left = std::min(left, r.content_length - std::min(e->raw_total, r.content_length));
    }
    // Waiting for its short body to arrive: read what is missing of it (the
    // Connection buffers it until it is all there, then reading stops).
    if (e == window_pass_) return static_cast<size_t>(std::max<uint64_t>(left, kMinWindowReadBytes));
    if (WaitsForArrival(e)) {
      const uint64_t buffered = e->conn->BufferedInputBytes();
      return static_cast<size_t>(std::max<uint64_t>(left > buffered ? left - buffered : 0, kMinWindowReadBytes));
    }
    const uint64_t fits = (e->raw.capacity() - e->raw.size()) + room / 2;
    return static_cast<size_t>(std::max<uint64_t>(std::min(left, fits), kMinWindowReadBytes));
  }
  return !window_waiters_.empty() || room < kLowRoomBytes ? kLowReadBytes : SIZE_MAX;
}

// ---- spilling bodies to disk ----

// An upload whose unshipped body is all in raw (nothing of it queued or
// encoded), still being received, parked nowhere but the budget's waiters.
bool WriteExchanges::Spillable(const Exchange* e) const {
  if (!spill_enabled_ || e->conn == nullptr || e->request == nullptr || e->kind != WriteKind::kPut) return false;
  if (e->phase != Exchange::Phase::kBody || e->body_done || e->large || e->begun || e->stored_ready ||
      e->single_ready || e->arrived || e->blocked || e->awaiting_staging || e->staging_declared != 0 ||
      (e->spill != nullptr && (e->spill->io || e->spill->failed)) || e->raw_off != 0 || e->raw.empty()) {
    return false;
  }
  const http::Request& r = *e->request;
  return r.chunked || e->raw_total < r.content_length;
}

// Some upload waits, or would, for room: a window or a whole reservation
// of the longest kind would not fit now (of any service sharing the
// budgets), or one of this service waits.
bool WriteExchanges::BudgetShort() const {
  return !window_waiters_.empty() || !budget_waiters_.empty() || arrival_refused_ > 0 ||
         WindowRoom() < 2 * kBodyWindowBytes || !whole_budget().WouldFit(WholeBytes());
}

// e was fed at now_ms: it goes to the tail of the resting list (its spill
// state made on its first rest).
void WriteExchanges::Rest(Exchange* e, uint64_t now_ms) {
  Unrest(e);
  if (e->spill == nullptr) e->spill = std::make_unique<ExchangeSpill>();
  ExchangeSpill& s = *e->spill;
  s.resting = true;
  s.last_body_ms = now_ms;
  s.rest_prev = rest_tail_;
  s.rest_next = nullptr;
  (rest_tail_ != nullptr ? rest_tail_->spill->rest_next : rest_head_) = e;
  rest_tail_ = e;
}

void WriteExchanges::Unrest(Exchange* e) {
  if (e->spill == nullptr || !e->spill->resting) return;
  ExchangeSpill& s = *e->spill;
  (s.rest_prev != nullptr ? s.rest_prev->spill->rest_next : rest_head_) = s.rest_next;
  (s.rest_next != nullptr ? s.rest_next->spill->rest_prev : rest_tail_) = s.rest_prev;
  s.resting = false;
  s.rest_prev = s.rest_next = nullptr;
}

// Spills the resting uploads that are due: all of them while the budget is
// short, otherwise those fed no byte for kSpillIdleMs (the list is in feed
// order). An upload that cannot spill now leaves the list until its next
// bytes. Starts I/O only: nothing is answered or resumed here.
void WriteExchanges::SpillDue(uint64_t now_ms) {
  if (rest_head_ == nullptr || !spill_enabled_) return;
  const bool short_now = BudgetShort();
  for (Exchange* e = rest_head_; e != nullptr;) {
    Exchange* next = e->spill->rest_next;
    if (!Spillable(e)) {
      Unrest(e);
    } else if (short_now) {
      if (!StartSpill(e)) Unrest(e);
    } else if (now_ms >= e->spill->last_body_ms + kSpillIdleMs) {
      // Idle: spilled when it holds enough; either way off the list until
      // its next bytes.
      if (e->raw.size() < kMinIdleSpillBytes || !StartSpill(e)) Unrest(e);
    } else {
      break;
    }
    e = next;
  }
}

// Moves e's raw bytes to its spill file (within the spill budget and a disk
// not reported full). False: nothing done.
bool WriteExchanges::StartSpill(Exchange* e) {
  const uint64_t n = e->raw.size();
  ByteBudget& budget = *options_.spill_budget;
  if (n == 0 || !budget.TryReserveBelow(n, budget.limit())) return false;
  if (!backend_.DiskRoomFor(n)) {
    budget.Release(n);
    return false;
  }
  ExchangeSpill& s = *e->spill;  // Spillable: it rested
  if (s.job == nullptr) {
    // One more open file in the worker: within its share of descriptors.
    if (!options_.spill_files->TryReserveBelow(1, options_.spill_files->limit())) {
      budget.Release(n);
      return false;
    }
    s.job = std::make_shared<SpillJob>(options_.spill_files);
  }
  s.reserved += n;
  std::string().swap(s.job->buffer);
  s.job->buffer.swap(e->raw);  // raw is left without memory; still counted until the write is done
  Unrest(e);
  ++spills_;
  return RunSpillIo(e, false);
}

// Runs e's spill job, on the offload (the body paused meanwhile, unless it
// waits for room already) or here; then SpillDone / ReadBackDone.
bool WriteExchanges::RunSpillIo(Exchange* e, bool read) {
  const uint64_t op = ++next_spill_op_;
  ExchangeSpill& s = *e->spill;
  s.io = true;
  s.op = op;
  spill_ops_[op] = e;
  std::shared_ptr<SpillJob> job = s.job;
  engine::Env* env = options_.spill_env;
  KvBackend* backend = &backend_;
  if (options_.offload != nullptr) {
    std::weak_ptr<int> life = life_;
    const std::string dir = options_.spill_dir;
    if (options_.offload->Queue([job, read, backend, env, dir] { RunSpillJob(job.get(), read, backend, env, dir); },
                                [this, life, op, read] {
                                  if (life.expired()) return;
                                  if (read) {
                                    ReadBackDone(op, MonotonicMs(), true);
                                  } else {
                                    SpillDone(op, MonotonicMs(), true);
                                  }
                                })) {
      // Nothing of the body is delivered meanwhile (the work's thread
      // touches only the job).
      if (!e->body_done && !e->awaiting_budget && e->conn != nullptr) {
        e->conn->PauseBody();
        s.paused = true;
      }
      return true;
    }
  }
  // Here (no offload, or it refused the work: the rare blocking fallback).
  RunSpillJob(job.get(), read, backend, env, options_.spill_dir);
  if (read) {
    ReadBackDone(op, MonotonicMs(), false);
  } else {
    SpillDone(op, MonotonicMs(), false);
  }
  return true;
}

// A spill write ended. Written: its memory (and any whole reservation: a
// spilled body needs none until it is read back) is given back. Failed: the
// bytes return to raw and this upload is never spilled again.
void WriteExchanges::SpillDone(uint64_t op, uint64_t now_ms, bool offloaded) {
  auto it = spill_ops_.find(op);
  if (it == spill_ops_.end()) return;  // its exchange is gone
  Exchange* e = it->second;
  spill_ops_.erase(it);
  ExchangeSpill& s = *e->spill;
  s.io = false;
  SpillJob& job = *s.job;
  const uint64_t n = job.buffer.size();
  if (job.status.ok()) {
    s.spilled += n;
    std::string().swap(job.buffer);
    UncountWaiting(e);
    ReleaseBody(e);
    Recount(e);
    if (e->awaiting_budget && e->waiting_counted == 0 && e->reserved != 0 &&
        std::find(window_waiters_.begin(), window_waiters_.end(), e) != window_waiters_.end()) {
      e->waiting_counted = e->reserved;
      waiting_budget().Charge(e->waiting_counted);
    }
    if (e->awaiting_budget && !NeedsWhole(e)) {
      // It waited for a whole reservation it no longer needs: it waits for
      // window room instead, in its turn.
      const uint64_t since = e->budget_since_ms;
      StopWaitingForBudget(e);
      WaitForBudget(e, false, since, false);
    }
  } else {
    // No room (the disk near its reserve) is the writer's to report (its
    // disk-full state, /readyz, the log); anything else is logged here.
    if (!job.status.Is(engine::Code::kNoSpace)) {
      KINGX_LOG_WARN("a request body could not be spilled to disk (%s); it stays in memory",
                     job.status.ToString().c_str());
    }
    s.failed = true;
    options_.spill_budget->Release(n);
    s.reserved -= n;
    e->raw.swap(job.buffer);
  }
  const bool resume = s.paused;
  s.paused = false;
  http::Connection* conn = e->conn;
  // Here, inside Poke's pass or a Handler callback, nothing else is served
  // (Poke, or the next one NextRetryMs asks for, serves the waiters).
  if (!offloaded) return;
  ServeBudgetWaiters(now_ms);
  if (resume && conn != nullptr) ResumeHeldBody(*conn, now_ms);
}

// e holds its whole reservation: its spilled bytes come back in front of
// what it holds in raw.
void WriteExchanges::StartReadBack(Exchange* e, uint64_t now_ms) {
  (void)now_ms;
  e->spill->job->read_bytes = e->spill->spilled;
  (void)RunSpillIo(e, true);
}

// A read-back ended: raw holds the whole body received so far and the file
// is dropped; a finished body goes on to the queue. Failed: answered (the
// body is lost; nothing stored).
void WriteExchanges::ReadBackDone(uint64_t op, uint64_t now_ms, bool offloaded) {
  (void)offloaded;
  auto it = spill_ops_.find(op);
  if (it == spill_ops_.end()) return;
  Exchange* e = it->second;
  spill_ops_.erase(it);
  ExchangeSpill& s = *e->spill;
  s.io = false;
  SpillJob& job = *s.job;
  const bool resume = s.paused;
  s.paused = false;
  if (!job.status.ok() || job.buffer.size() != s.spilled) {
    KINGX_LOG_ERROR("a spilled request body could not be read back (%s); the upload is answered 500",
                    job.status.ToString().c_str());
    http::Response r = http::ProblemResponse(500, "the request body could not be read back from its spill file; "
                                                  "nothing was stored");
    r.close = !e->body_done;
    Finish(e, std::move(r), now_ms);
    return;
  }
  // Into raw, in front of what it holds: its whole reservation sized raw
  // for the body (or a part and a piece past it).
  e->raw.erase(0, e->raw_off);
  e->raw_off = 0;
  e->raw.insert(0, job.buffer);
  std::string().swap(job.buffer);
  ReleaseSpill(e);
  Recount(e);
  if (e->body_done) {
    (void)Advance(e, now_ms);
    return;
  }
  if (resume && e->conn != nullptr) ResumeHeldBody(*e->conn, now_ms);
}

// e was fed and more of its body is to come: it rests (the tail of the
// resting list), and a spilled body goes on to its file a window at a time.
// True when a spill write began (the body is paused for it). Apart from
// OnBody, whose bodies mostly arrive with their heads and never rest.
bool WriteExchanges::RestOnBody(Exchange* e) {
  Rest(e, CoarseMs());
  if (Spilled(e) && e->raw.size() - e->raw_off >= kBodyWindowBytes && Spillable(e)) {
    (void)StartSpill(e);
    return true;
  }
  return false;
}

// Drops e's spill file and its room in the spill budget (an I/O in flight
// finishes unseen: its callback finds no exchange).
void WriteExchanges::ReleaseSpill(Exchange* e) {
  ExchangeSpill& s = *e->spill;
  if (s.io) {
    spill_ops_.erase(s.op);
    s.io = false;
  }
  if (s.reserved != 0) options_.spill_budget->Release(s.reserved);
  s.reserved = 0;
  s.spilled = 0;
  s.paused = false;
  s.job.reset();
}

}  // namespace kingx
