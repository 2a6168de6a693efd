// KvService: the key-value API on top of http::Connection (see kv_service.h).
//
// A PUT or DELETE lives in an Exchange from OnRequest until its completion.
// The Exchange walks one small state machine (Advance): ship the body to the
// queue part by part (large values) or as one entry at the end, then wait for
// the writer's completion. When the queue is full (kBusy) the Exchange is
// parked in blocked_ with the body paused, and Poke retries it; past
// busy_give_up_ms it is answered 503 + Retry-After.
//
// Tokens: local id = prefix (12 bits) | tag (8 bits) | table index (20 bits).
// The table maps an index to its Exchange; the tag (bumped on reuse) makes a
// completion for a previous user of the index harmless. An Exchange whose
// connection died while its write was queued stays in the table, orphaned,
// until the completion arrives (then it is freed without an answer).
#include "src/kv/kv_service.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <time.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <deque>
#include <random>

#include "engine/compress.h"
#include "http/responses.h"
#include "src/conf/access_log.h"
#include "src/conf/log.h"
#include "src/kv/value_stream.h"

namespace kingx {

namespace {

// Raw bytes an exchange may hold past one part: the Connection hands a body
// over in pieces of up to a read (or its buffered input) at a time.
constexpr uint64_t kBodyPieceSlack = 256 * 1024;
// What the I/O layer reads at once from a connection while uploads wait for
// room in the body budget: enough for request heads, little for the body
// bytes that arrive with them and must then wait in the connection.
constexpr size_t kLowReadBytes = 4096;

constexpr int kIndexBits = 20;
constexpr int kTagBits = 8;
constexpr uint64_t kIndexMask = (uint64_t{1} << kIndexBits) - 1;
constexpr uint64_t kTagMask = (uint64_t{1} << kTagBits) - 1;
constexpr int kPrefixShift = kIndexBits + kTagBits;  // 28; prefix uses the 12 bits above

int64_t WallMs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// An echoed X-Request-Id must be short and printable (it goes into a header
// and a log line).
bool UsableRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (unsigned char c : id) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace

uint64_t MonotonicMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

uint32_t TokenPrefix(uint64_t token) {
  return static_cast<uint32_t>((TokenLocalId(token) >> kPrefixShift) & 0xFFF);
}

// ---------------------------------------------------------------- KvConnState

void KvConnState::SetPeer(const sockaddr* addr) {
  peer_family = 0;
  if (addr == nullptr) return;
  if (addr->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(addr);
    peer_family = AF_INET;
    peer_port = ntohs(in->sin_port);
    std::memcpy(peer_addr, &in->sin_addr, 4);
  } else if (addr->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
    peer_family = AF_INET6;
    peer_port = ntohs(in6->sin6_port);
    std::memcpy(peer_addr, &in6->sin6_addr, 16);
  }
}

size_t KvConnState::PeerText(char* out) const {
  if (peer_family == 0 || inet_ntop(peer_family, peer_addr, out, INET6_ADDRSTRLEN) == nullptr) {
    out[0] = '-';
    out[1] = '\0';
    return 1;
  }
  return std::strlen(out);
}

// ---------------------------------------------------------------- Exchange

// One PUT or DELETE between OnRequest and its answer (or its orphaned
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
  uint32_t index = 0;                   // table index, valid while in the table
  uint64_t token = 0;
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
  uint64_t reserved = 0;                // bytes held in the body budget (>= raw + stored capacity)
  bool awaiting_budget = false;         // in budget_waiters: body paused and unread
  uint64_t budget_since_ms = 0;         // when it started waiting for the budget
  std::string raw;                      // received bytes not yet shipped: raw[raw_off..]
  size_t raw_off = 0;
  std::string stored;                   // encoded bytes waiting to be queued
};

// ---------------------------------------------------------------- Impl

struct KvService::Impl {
  Impl(KvService& s, KvBackend& b, AccessLog* log, const KvServiceOptions& o, WakeFn w, void* i)
      : self(s), backend(b), access_log(log), options(o), wake(w), io(i) {
    std::random_device rd;
    id_seed = (uint64_t{rd()} << 32) ^ rd() ^ (uint64_t{o.token_prefix} << 48);
  }

  KvService& self;
  KvBackend& backend;
  AccessLog* access_log;
  KvServiceOptions options;
  WakeFn wake;
  void* io;
  // Budgets used when the options give none (tests): large enough to never refuse.
  ByteBudget unlimited_body{uint64_t{1} << 62};
  ByteBudget unlimited_response{uint64_t{1} << 62};
  ByteBudget& body_budget() { return options.body_budget ? *options.body_budget : unlimited_body; }
  ByteBudget& response_budget() { return options.response_budget ? *options.response_budget : unlimited_response; }
  StreamWaiters stream_waiters;  // compressed responses waiting for room in the response budget

  struct Slot {
    Exchange* exchange = nullptr;
    uint8_t tag = 0;
  };
  std::vector<Slot> table;
  std::vector<uint32_t> free_slots;
  size_t in_flight = 0;            // exchanges in the table
  std::vector<Exchange*> blocked;  // waiting for queue room
  std::deque<Exchange*> budget_waiters;  // waiting for room in the body budget, oldest first
  std::vector<uint64_t> aborts;    // LargeAbort tokens that found the queue full
  uint64_t id_seed = 0;
  uint64_t id_counter = 0;
  int depth = 0;                   // > 0 inside a Handler callback: no wake()

  // Marks a Handler callback in progress (see wake's rules).
  struct Depth {
    explicit Depth(Impl& i) : impl(i) { ++impl.depth; }
    ~Depth() { --impl.depth; }
    Impl& impl;
  };

  // ---- helpers ----
  static KvConnState* State(http::Connection& conn) { return static_cast<KvConnState*>(conn.user_data()); }

  void Answer(http::Connection& conn, const http::Request& request, http::Response response, uint64_t now_ms);
  void HandleKvRead(http::Connection& conn, const http::Request& request, uint64_t now_ms);
  void AnswerValue(http::Connection& conn, const http::Request& request, engine::Value& v, uint64_t now_ms);
  void HandleKvWrite(http::Connection& conn, const http::Request& request, uint64_t now_ms);
  void StartExchange(http::Connection& conn, const http::Request& request, WriteKind kind,
                     WriteCondition cond, uint64_t if_match_seq);
  enum class Progress : uint8_t {
    kMoving,   // waiting for more body or for the completion
    kBlocked,  // parked in blocked_: the queue is full
    kGone,     // answered/freed, or possibly so: do not touch the Exchange
  };
  Progress Advance(Exchange* e, uint64_t now_ms);
  engine::Status Step(Exchange* e, bool* progressed, bool* waiting_body);
  void CutPart(Exchange* e, size_t n);
  uint64_t BodyReservation(const http::Request& r) const;
  void GrantBody(Exchange* e, uint64_t reservation);
  void Recount(Exchange* e);
  void ReleaseBody(Exchange* e);
  void StopWaitingForBudget(Exchange* e);
  void ServeBudgetWaiters(uint64_t now_ms);
  bool AddToTable(Exchange* e);
  void RemoveFromTable(Exchange* e);
  void Unblock(Exchange* e);
  void Finish(Exchange* e, http::Response response, uint64_t now_ms);
  void Orphan(Exchange* e);
  void Free(Exchange* e);
  size_t RequestId(const http::Request& request, char* out);
};

size_t KvService::Impl::RequestId(const http::Request& request, char* out) {
  if (UsableRequestId(request.x_request_id)) {
    std::memcpy(out, request.x_request_id.data(), request.x_request_id.size());
    return request.x_request_id.size();
  }
  static constexpr char kHex[] = "0123456789abcdef";
  const uint64_t n = ++id_counter;
  const uint64_t words[2] = {SplitMix(id_seed ^ n), SplitMix(id_seed + (n << 1) + 1)};
  for (int w = 0; w < 2; ++w) {
    for (int i = 0; i < 16; ++i) out[w * 16 + i] = kHex[(words[w] >> (60 - 4 * i)) & 0xF];
  }
  return 32;
}

// Every response of the service goes through here: X-Request-Id, drain-time
// Connection: close, the access log line, then Respond (after which `request`
// may already be the next pipelined request's storage: log first).
void KvService::Impl::Answer(http::Connection& conn, const http::Request& request, http::Response response,
                             uint64_t now_ms) {
  char id[128];
  const size_t id_len = RequestId(request, id);
  response.AddHeader("X-Request-Id", std::string_view(id, id_len));
  if (self.draining_) response.close = true;
  if (access_log != nullptr && access_log->enabled()) {
    char peer[INET6_ADDRSTRLEN + 2];
    const KvConnState* st = State(conn);
    const size_t peer_len = st != nullptr ? st->PeerText(peer) : (peer[0] = '-', 1);
    AccessRecord r;
    static const std::vector<TrustedProxy> kNone;
    r.remote_addr = ClientAddress(std::string_view(peer, peer_len), request.x_forwarded_for,
                                  options.trusted_proxies != nullptr ? *options.trusted_proxies : kNone);
    r.method = http::MethodName(request.method);
    r.target = request.target;
    r.protocol = request.http_minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
    r.status = response.status;
    const bool no_body = request.method == http::Method::kHead || response.status == 204 || response.status == 304;
    r.body_bytes_sent = no_body ? 0 : (response.stream ? response.stream_length : response.body.size());
    r.referer = request.referer;
    r.user_agent = request.user_agent;
    r.request_id = std::string_view(id, id_len);
    r.time_unix_ms = WallMs();
    r.request_time_us = (now_ms > request.start_ms ? now_ms - request.start_ms : 0) * 1000;
    access_log->Append(r);
  }
  conn.Respond(response, now_ms);
}

// ---------------------------------------------------------------- reads

void KvService::Impl::HandleKvRead(http::Connection& conn, const http::Request& request, uint64_t now_ms) {
  const bool conditional = request.if_match.present() || request.if_none_match.present();
  if (request.method == http::Method::kGet && !conditional) {
    // The hot path: one lookup, a zero-copy view of a raw value.
    auto r = backend.Get(request.key, engine::ReadMode::kStored);
    if (!r.ok()) return Answer(conn, request, http::ErrorResponse(r.status()), now_ms);
    return AnswerValue(conn, request, r.value(), now_ms);
  }
  auto meta = backend.Get(request.key, engine::ReadMode::kMetadata);
  if (!meta.ok() && !meta.status().Is(engine::Code::kNotFound)) {
    return Answer(conn, request, http::ErrorResponse(meta.status()), now_ms);
  }
  const uint64_t current = meta.ok() ? meta->seq : 0;
  // RFC 9110 §13.2.2: If-Match first, then If-None-Match.
  if (request.if_match.present() && !request.if_match.MatchesStrong(current)) {
    return Answer(conn, request, http::ProblemResponse(412, "If-Match does not match the current value"), now_ms);
  }
  if (current != 0 && http::IsNotModified(request, current)) {
    return Answer(conn, request, http::NotModifiedResponse(current), now_ms);
  }
  if (!meta.ok()) return Answer(conn, request, http::ErrorResponse(meta.status()), now_ms);
  if (request.method == http::Method::kHead) {
    http::Response resp = http::ValueResponse(std::string_view(), nullptr, meta->seq, meta->content_type);
    resp.head_content_length = meta->raw_len;
    return Answer(conn, request, std::move(resp), now_ms);
  }
  auto r = backend.Get(request.key, engine::ReadMode::kStored);
  if (!r.ok()) return Answer(conn, request, http::ErrorResponse(r.status()), now_ms);
  AnswerValue(conn, request, r.value(), now_ms);
}

// A value read with ReadMode::kStored: a raw one is sent as a view of its
// segment; a compressed one is decoded one frame at a time while it is sent
// (ValueStream), never whole, and never more than a frame per write on this
// thread. Its first frame is decoded here, so a value that cannot be decoded
// is answered 500 before anything of it is sent.
void KvService::Impl::AnswerValue(http::Connection& conn, const http::Request& request, engine::Value& v,
                                  uint64_t now_ms) {
  if (v.codec == engine::Codec::kRaw) {
    return Answer(conn, request, http::ValueResponse(v.stored, std::move(v.holder), v.seq, v.content_type), now_ms);
  }
  const uint64_t seq = v.seq;
  const std::string_view content_type = v.content_type;  // in the mapping the stream keeps alive
  auto stream = std::make_shared<ValueStream>(std::move(v), response_budget(), stream_waiters, conn);
  if (engine::Status s = stream->Prime(); !s.ok()) {
    KINGX_LOG_ERROR("GET of a %zu-byte key: its stored value (seq %llu) does not decode: %s", request.key.size(),
                    static_cast<unsigned long long>(seq), s.ToString().c_str());
    return Answer(conn, request, http::ErrorResponse(s), now_ms);
  }
  http::Response resp = http::ValueResponse(std::string_view(), nullptr, seq, content_type);
  resp.stream_length = stream->length();
  resp.stream = std::move(stream);
  Answer(conn, request, std::move(resp), now_ms);
}

// ---------------------------------------------------------------- writes

// Turns the request's preconditions into one writer condition. The common
// cases need no read: If-Match with one strong tag (compare-and-set) and
// If-None-Match: * (create only). Anything else is evaluated against the
// current value, then pinned to that value (If-Match its seq, or absent), so
// the writer still decides atomically: if the key changed in between, the
// answer is 412.
void KvService::Impl::HandleKvWrite(http::Connection& conn, const http::Request& request, uint64_t now_ms) {
  const WriteKind kind = request.method == http::Method::kPut ? WriteKind::kPut : WriteKind::kDelete;
  const auto& im = request.if_match;
  const auto& inm = request.if_none_match;
  const bool simple_cas = im.kind == http::Precondition::Kind::kList && im.tags.size() == 1 &&
                          !im.tags[0].weak && !im.tags[0].foreign && !inm.present();
  const bool simple_create = kind == WriteKind::kPut && inm.kind == http::Precondition::Kind::kAny &&
                             !im.present();
  if (!im.present() && !inm.present()) {
    return StartExchange(conn, request, kind, WriteCondition::kNone, 0);
  }
  if ((simple_cas || simple_create) && !request.expect_continue) {
    if (simple_cas) return StartExchange(conn, request, kind, WriteCondition::kIfMatch, im.tags[0].seq);
    return StartExchange(conn, request, kind, WriteCondition::kIfAbsent, 0);
  }
  auto meta = backend.Get(request.key, engine::ReadMode::kMetadata);
  if (!meta.ok() && !meta.status().Is(engine::Code::kNotFound)) {
    return Answer(conn, request, http::ErrorResponse(meta.status()), now_ms);
  }
  const uint64_t current = meta.ok() ? meta->seq : 0;
  if (im.present() && !im.MatchesStrong(current)) {
    return Answer(conn, request, http::ProblemResponse(412, "If-Match does not match the current value"), now_ms);
  }
  if (inm.present() && inm.MatchesWeak(current)) {
    return Answer(conn, request, http::ProblemResponse(412, "If-None-Match matches the current value"), now_ms);
  }
  if (simple_cas) return StartExchange(conn, request, kind, WriteCondition::kIfMatch, im.tags[0].seq);
  if (simple_create) return StartExchange(conn, request, kind, WriteCondition::kIfAbsent, 0);
  if (current != 0) return StartExchange(conn, request, kind, WriteCondition::kIfMatch, current);
  if (kind == WriteKind::kDelete) {
    return Answer(conn, request, http::ProblemResponse(404, "no such key"), now_ms);
  }
  StartExchange(conn, request, kind, WriteCondition::kIfAbsent, 0);
}

void KvService::Impl::StartExchange(http::Connection& conn, const http::Request& request, WriteKind kind,
                                    WriteCondition cond, uint64_t if_match_seq) {
  KvConnState* st = State(conn);
  assert(st != nullptr && st->exchange == nullptr);
  auto* e = new Exchange;
  e->conn = &conn;
  e->request = &request;
  e->kind = kind;
  e->condition = cond;
  e->if_match_seq = if_match_seq;
  st->exchange = e;
  if (kind == WriteKind::kPut && (request.chunked || request.content_length > 0)) {
    // Memory for the body comes from the worker's budget before any body
    // byte is read. Without room (or behind others already waiting: first
    // come, first served) the body stays unread: paused here, and the I/O
    // layer stops reading (AwaitsStorage) until Poke grants the room.
    const uint64_t want = BodyReservation(request);
    if (!budget_waiters.empty() || !body_budget().TryReserve(want)) {
      e->awaiting_budget = true;
      e->budget_since_ms = request.start_ms;
      budget_waiters.push_back(e);
      conn.PauseBody();
      return;
    }
    GrantBody(e, want);
  }
  // The body (or OnBodyEnd right away) follows through the Connection.
}

// The most memory an exchange's body holds at once, raw bytes received and
// not yet shipped plus their encoded copy: twice a body of at most one part;
// for a longer (or chunked) body, one part of raw bytes plus the slack of a
// body piece past it, and one encoded part (compressed frames can be a bit
// larger than their input).
uint64_t KvService::Impl::BodyReservation(const http::Request& r) const {
  const uint64_t part = self.part_bytes_;
  if (!r.chunked && r.content_length <= part) return 2 * r.content_length;
  return (part + kBodyPieceSlack) + (part + part / 64 + 4096);
}

void KvService::Impl::GrantBody(Exchange* e, uint64_t reservation) {
  e->reserved = reservation;
  const http::Request& r = *e->request;
  const uint64_t part = self.part_bytes_;
  e->raw.reserve(!r.chunked && r.content_length <= part ? r.content_length : part + kBodyPieceSlack);
  Recount(e);
}

// Keeps the reservation at least what the buffers really hold: a piece that
// did not fit the raw buffer made it grow, and that memory is counted too.
void KvService::Impl::Recount(Exchange* e) {
  const uint64_t held = e->raw.capacity() + e->stored.capacity();
  if (held > e->reserved) {
    body_budget().Charge(held - e->reserved);
    e->reserved = held;
  }
}

void KvService::Impl::ReleaseBody(Exchange* e) {
  if (e->reserved == 0) return;
  body_budget().Release(e->reserved);
  e->reserved = 0;
}

void KvService::Impl::StopWaitingForBudget(Exchange* e) {
  if (!e->awaiting_budget) return;
  e->awaiting_budget = false;
  auto it = std::find(budget_waiters.begin(), budget_waiters.end(), e);
  if (it != budget_waiters.end()) budget_waiters.erase(it);
}

// Grants waiting uploads their room in the body budget, oldest first, and
// resumes their bodies; answers 503 + Retry-After to those that waited
// longer than body_budget_give_up_ms (they read nothing all that time).
void KvService::Impl::ServeBudgetWaiters(uint64_t now_ms) {
  while (!budget_waiters.empty()) {
    Exchange* e = budget_waiters.front();
    const uint64_t want = BodyReservation(*e->request);
    if (!body_budget().TryReserve(want)) break;
    budget_waiters.pop_front();
    e->awaiting_budget = false;
    GrantBody(e, want);
    http::Connection* conn = e->conn;
    // ResumeBody delivers buffered pieces: OnBody may answer and free `e`.
    ++depth;
    conn->ResumeBody(now_ms);
    --depth;
    if (depth == 0 && wake != nullptr) wake(io, *conn);
  }
  while (!budget_waiters.empty() && now_ms >= budget_waiters.front()->budget_since_ms &&
         now_ms - budget_waiters.front()->budget_since_ms >= options.body_budget_give_up_ms) {
    Exchange* e = budget_waiters.front();
    StopWaitingForBudget(e);
    http::Response r = http::ProblemResponse(
        503,
        "request bodies of other uploads hold all of this worker's body buffer (--body-buffer-bytes) and none "
        "was freed within --body-timeout-ms; retry later",
        body_budget().limit(), true);
    r.close = true;  // its body was never read: do not read it now
    Finish(e, std::move(r), now_ms);
  }
}

bool KvService::Impl::AddToTable(Exchange* e) {
  uint32_t index;
  if (!free_slots.empty()) {
    index = free_slots.back();
    free_slots.pop_back();
  } else {
    if (table.size() > kIndexMask) return false;
    index = static_cast<uint32_t>(table.size());
    table.emplace_back();
  }
  Slot& s = table[index];
  s.tag = static_cast<uint8_t>((s.tag + 1) & kTagMask);
  s.exchange = e;
  e->index = index;
  e->in_table = true;
  const uint64_t local = (uint64_t{options.token_prefix & 0xFFF} << kPrefixShift) |
                         (uint64_t{s.tag} << kIndexBits) | index;
  e->token = MakeToken(options.token_generation, local);
  ++in_flight;
  return true;
}

void KvService::Impl::RemoveFromTable(Exchange* e) {
  if (!e->in_table) return;
  table[e->index].exchange = nullptr;
  free_slots.push_back(e->index);
  e->in_table = false;
  --in_flight;
}

// Cuts the next n raw bytes into `stored` (compressed frame or raw copy).
void KvService::Impl::CutPart(Exchange* e, size_t n) {
  std::string_view part(e->raw.data() + e->raw_off, n);
  e->stored.clear();
  if (!e->begun && e->codec == engine::Codec::kRaw && !e->stored_ready) {
    // First part decides the codec of the whole value.
    std::string frame;
    e->codec = engine::EncodeValue(part, options.compression_level, options.compress_min_bytes, &frame);
    if (e->codec == engine::Codec::kZstd) e->stored = std::move(frame);
  } else if (e->codec == engine::Codec::kZstd) {
    if (!engine::CompressFrames(part, options.compression_level, &e->stored).ok()) {
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
engine::Status KvService::Impl::Step(Exchange* e, bool* progressed, bool* waiting_body) {
  *progressed = false;
  *waiting_body = false;
  const http::Request& req = *e->request;
  if (e->stored_ready) {
    if (!e->begun) {
      WriteRequest h;
      h.kind = WriteKind::kPut;
      h.condition = e->condition;
      h.if_match_seq = e->if_match_seq;
      h.key = req.key;
      h.content_type = req.content_type.empty() ? http::kDefaultContentType : req.content_type;
      h.codec = e->codec;
      engine::Status s = backend.EnqueueLargeBegin(e->token, h);
      if (!s.ok()) return s;
      e->begun = true;
    }
    engine::Status s = backend.EnqueueLargePart(e->token, e->stored);
    if (!s.ok()) return s;
    e->stored_ready = false;
    e->stored.clear();
    *progressed = true;
    return engine::Status::OK();
  }
  const size_t avail = e->raw.size() - e->raw_off;
  if (avail > self.part_bytes_ || (e->large && avail > 0 && (e->body_done || avail == self.part_bytes_))) {
    e->large = true;
    CutPart(e, std::min(avail, self.part_bytes_));
    *progressed = true;
    return engine::Status::OK();
  }
  if (!e->body_done) {
    *waiting_body = true;
    return engine::Status::OK();
  }
  engine::Status s;
  if (e->large) {
    s = backend.EnqueueLargeEnd(e->token, e->raw_total);
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
        e->codec = engine::EncodeValue(raw, options.compression_level, options.compress_min_bytes, &e->stored);
        if (e->codec == engine::Codec::kRaw) e->stored.clear();
        e->single_ready = true;
        Recount(e);
      }
      w.codec = e->codec;
      w.raw_len = e->raw_total;
      w.stored = e->codec == engine::Codec::kRaw
                     ? std::string_view(e->raw.data() + e->raw_off, e->raw.size() - e->raw_off)
                     : std::string_view(e->stored);
      if (w.key.size() + w.content_type.size() + w.stored.size() + 64 > backend.MaxEntryBytes()) {
        // Does not fit one entry (tiny queue, huge key): go the large way.
        e->single_ready = false;
        e->stored.clear();
        e->codec = engine::Codec::kRaw;
        e->large = true;
        *progressed = true;
        return engine::Status::OK();
      }
    }
    s = backend.Enqueue(e->token, w);
  }
  if (!s.ok()) return s;
  e->phase = Exchange::Phase::kEnqueued;
  e->raw.clear();
  e->raw.shrink_to_fit();
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
KvService::Impl::Progress KvService::Impl::Advance(Exchange* e, uint64_t now_ms) {
  if (!e->in_table && !AddToTable(e)) {
    Finish(e, http::ProblemResponse(503, "too many writes in flight", std::nullopt, true), now_ms);
    return Progress::kGone;
  }
  while (e->phase == Exchange::Phase::kBody) {
    bool progressed = false, waiting_body = false;
    engine::Status s = Step(e, &progressed, &waiting_body);
    if (s.Is(engine::Code::kBusy)) {
      if (e->busy_since_ms == 0) e->busy_since_ms = now_ms;
      if (!e->blocked) {
        e->blocked = true;
        blocked.push_back(e);
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
  if (e->paused && e->conn != nullptr && e->phase == Exchange::Phase::kBody) {
    e->paused = false;
    http::Connection* conn = e->conn;
    // ResumeBody delivers buffered pieces: OnBody → Advance may answer and
    // free `e` before it returns.
    ++depth;
    conn->ResumeBody(now_ms);
    --depth;
    if (depth == 0 && wake != nullptr) wake(io, *conn);
    return Progress::kGone;
  }
  return Progress::kMoving;
}

void KvService::Impl::Unblock(Exchange* e) {
  e->blocked = false;
  auto it = std::find(blocked.begin(), blocked.end(), e);
  if (it != blocked.end()) blocked.erase(it);
}

// Answers the exchange's request and forgets the exchange. A large value
// already begun is abandoned with LargeAbort (retried by Poke when full).
void KvService::Impl::Finish(Exchange* e, http::Response response, uint64_t now_ms) {
  if (e->begun && e->phase == Exchange::Phase::kBody) {
    if (!backend.EnqueueLargeAbort(e->token).ok()) aborts.push_back(e->token);
  }
  if (e->blocked) Unblock(e);
  StopWaitingForBudget(e);
  ReleaseBody(e);
  RemoveFromTable(e);
  http::Connection* conn = e->conn;
  const http::Request* request = e->request;
  if (conn != nullptr) State(*conn)->exchange = nullptr;
  delete e;
  if (conn != nullptr) {
    // Respond may dispatch the next pipelined request (a new Exchange).
    Answer(*conn, *request, std::move(response), now_ms);
    if (depth == 0 && wake != nullptr) wake(io, *conn);
  }
}

// The connection died: forget it. A queued write stays in the table until
// its completion; a large value being uploaded is aborted.
void KvService::Impl::Orphan(Exchange* e) {
  e->conn = nullptr;
  e->request = nullptr;
  if (e->blocked) Unblock(e);
  StopWaitingForBudget(e);
  if (e->phase == Exchange::Phase::kEnqueued) {
    e->raw = std::string();
    e->stored = std::string();
    return;  // freed by OnCompletion
  }
  if (e->begun && !backend.EnqueueLargeAbort(e->token).ok()) aborts.push_back(e->token);
  Free(e);
}

void KvService::Impl::Free(Exchange* e) {
  if (e->blocked) Unblock(e);
  StopWaitingForBudget(e);
  ReleaseBody(e);
  RemoveFromTable(e);
  delete e;
}

// ---------------------------------------------------------------- KvService

KvService::KvService(KvBackend& backend, AccessLog* access_log, const KvServiceOptions& options, WakeFn wake,
                     void* io)
    : impl_(std::make_unique<Impl>(*this, backend, access_log, options, wake, io)) {
  // A part must fit one queue entry even when zstd inflates it slightly.
  const size_t entry = backend.MaxEntryBytes();
  size_t cap = entry > 4096 ? entry - entry / 64 - 1024 : 1024;
  part_bytes_ = std::max<size_t>(1024, std::min(options.part_bytes, cap));
}

KvService::~KvService() {
  for (auto& s : impl_->table) delete s.exchange;
}

void KvService::OnRequest(http::Connection& conn, const http::Request& request) {
  const uint64_t now_ms = request.start_ms;
  Impl& m = *impl_;
  const Impl::Depth guard(m);
  switch (request.route) {
    case http::Route::kKv:
      if (request.method == http::Method::kGet || request.method == http::Method::kHead) {
        return m.HandleKvRead(conn, request, now_ms);
      }
      return m.HandleKvWrite(conn, request, now_ms);
    case http::Route::kHealthz:
      return m.Answer(conn, request, http::TextResponse(200, "text/plain", "ok\n"), now_ms);
    case http::Route::kReadyz:
      if (!draining_ && m.backend.Ready()) {
        return m.Answer(conn, request, http::TextResponse(200, "text/plain", "ready\n"), now_ms);
      }
      return m.Answer(conn, request,
                      http::ProblemResponse(503, draining_ ? "the server is stopping" : "storage is not ready",
                                            std::nullopt, true),
                      now_ms);
    case http::Route::kMetrics:
      return m.Answer(conn, request, http::TextResponse(200, "text/plain; version=0.0.4", m.backend.RenderMetrics()),
                      now_ms);
    case http::Route::kAdminCompact: {
      const KvConnState* st = Impl::State(conn);
      if (st == nullptr || !st->admin) {
        return m.Answer(conn, request, http::ProblemResponse(404, "not found"), now_ms);
      }
      engine::Status s = m.backend.RequestCompaction();
      if (!s.ok()) return m.Answer(conn, request, http::ProblemResponse(503, s.message(), std::nullopt, true), now_ms);
      return m.Answer(conn, request, http::TextResponse(202, "text/plain", "compaction requested\n"), now_ms);
    }
  }
}

void KvService::OnBody(http::Connection& conn, std::span<const char> piece) {
  KvConnState* st = Impl::State(conn);
  Exchange* e = st != nullptr ? st->exchange : nullptr;
  if (e == nullptr || e->kind != WriteKind::kPut) return;  // a DELETE's body is ignored
  e->raw.append(piece.data(), piece.size());
  e->raw_total += piece.size();
  impl_->Recount(e);
  // Ship full parts as soon as more than one part is known to exist; a body
  // of at most one part waits for OnBodyEnd (it may go as one entry).
  if (!e->blocked && e->raw.size() - e->raw_off > part_bytes_) {
    const Impl::Depth guard(*impl_);
    (void)impl_->Advance(e, MonotonicMs());
  }
}

void KvService::OnBodyEnd(http::Connection& conn) {
  KvConnState* st = Impl::State(conn);
  Exchange* e = st != nullptr ? st->exchange : nullptr;
  if (e == nullptr) return;
  e->body_done = true;
  if (!e->blocked) {
    const Impl::Depth guard(*impl_);
    (void)impl_->Advance(e, MonotonicMs());
  }
}

void KvService::OnAbort(http::Connection& conn) {
  KvConnState* st = Impl::State(conn);
  if (st == nullptr || st->exchange == nullptr) return;
  Exchange* e = st->exchange;
  st->exchange = nullptr;
  const Impl::Depth guard(*impl_);
  impl_->Orphan(e);
}

void KvService::OnCompletion(const Completion& c, uint64_t now_ms) {
  Impl& m = *impl_;
  const uint64_t local = TokenLocalId(c.token);
  const uint64_t index = local & kIndexMask;
  const uint8_t tag = static_cast<uint8_t>((local >> kIndexBits) & kTagMask);
  if (index >= m.table.size() || m.table[index].exchange == nullptr || m.table[index].tag != tag) return;
  Exchange* e = m.table[index].exchange;
  if (e->token != c.token) return;
  if (e->conn == nullptr) {  // orphaned: nobody to tell
    m.Free(e);
    return;
  }
  if (e->phase != Exchange::Phase::kEnqueued) {
    // The writer refused a large value early (e.g. NoSpace on a part):
    // answer now; the upload is abandoned.
    e->begun = false;  // the writer already dropped it
  }
  http::Response resp;
  if (c.reason == CompletionReason::kStagingBudget) {
    // Refused before its body ended: do not read the rest of it.
    resp = http::ProblemResponse(503,
                                 "large uploads in progress already stage as much disk as --staging-bytes allows; "
                                 "retry later",
                                 m.options.staging_bytes, true);
    resp.close = true;
    m.Finish(e, std::move(resp), now_ms);
    return;
  }
  switch (c.code) {
    case engine::Code::kOk:
      resp = e->kind == WriteKind::kPut ? http::PutResponse(!c.existed, c.seq) : http::DeleteResponse();
      break;
    case engine::Code::kNotFound:
      resp = http::ProblemResponse(404, "no such key");
      break;
    case engine::Code::kPreconditionFailed:
      resp = http::ProblemResponse(412, "the precondition does not hold for the current value");
      break;
    default:
      resp = http::ErrorResponse(engine::Status(c.code, "the write failed"));
      break;
  }
  m.Finish(e, std::move(resp), now_ms);
}

void KvService::Poke(uint64_t now_ms) {
  Impl& m = *impl_;
  m.stream_waiters.Resume(now_ms, m.wake, m.io);
  m.ServeBudgetWaiters(now_ms);
  for (size_t i = 0; i < m.aborts.size();) {
    if (m.backend.EnqueueLargeAbort(m.aborts[i]).Is(engine::Code::kBusy)) {
      ++i;
    } else {
      m.aborts.erase(m.aborts.begin() + static_cast<std::ptrdiff_t>(i));
    }
  }
  // Advance may re-park or free exchanges: iterate over the old list.
  std::vector<Exchange*> waiting;
  waiting.swap(m.blocked);
  for (Exchange* e : waiting) e->blocked = false;
  for (Exchange* e : waiting) {
    const uint64_t since = e->busy_since_ms;
    if (m.Advance(e, now_ms) != Impl::Progress::kBlocked) continue;
    if (since != 0 && now_ms >= since && now_ms - since >= m.options.busy_give_up_ms) {
      m.Finish(e, http::ProblemResponse(503, "the write queue stayed full", std::nullopt, true), now_ms);
    }
  }
}

uint64_t KvService::NextRetryMs() const {
  const Impl& m = *impl_;
  if (m.blocked.empty() && m.aborts.empty() && m.stream_waiters.empty() && m.budget_waiters.empty()) return 0;
  return 1;  // as soon as possible: the I/O layer applies its own retry period
}

size_t KvService::InFlight() const { return impl_->in_flight; }

bool KvService::AwaitsStorage(const KvConnState& state) const {
  const Exchange* e = state.exchange;
  return e != nullptr && (e->blocked || e->awaiting_budget || e->phase == Exchange::Phase::kEnqueued);
}

size_t KvService::ReadBytesHint() const {
  const Impl& m = *impl_;
  const ByteBudget& b = m.options.body_budget ? *m.options.body_budget : m.unlimited_body;
  return !m.budget_waiters.empty() || b.used() >= b.limit() ? kLowReadBytes : SIZE_MAX;
}

}  // namespace kingx
