// KvService: the key-value API on top of http::Connection (see kv_service.h).
//
// Reads are answered here, inside OnRequest. A PUT or DELETE has its
// preconditions turned into one writer condition here, then lives in the
// write exchange state machine (write_exchange.h) until its completion.
// Every response leaves through Impl::Answer.
#include "src/kv/kv_service.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <time.h>

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>

#include "engine/mapping_guard.h"
#include "engine/options.h"
#include "http/clock.h"
#include "http/list_api.h"
#include "http/responses.h"
#include "http/router.h"
#include "src/conf/access_log.h"
#include "src/conf/log.h"
#include "src/kv/backup_stream.h"
#include "src/kv/request_id.h"
#include "src/kv/token_table.h"
#include "src/kv/value_stream.h"
#include "src/kv/write_exchange.h"

namespace kingx {

namespace {

constexpr std::string_view kReadOnlyDetail =
    "This server is read-only (--read-only): it serves GET, HEAD and listing, and refuses PUT and DELETE.";

int64_t WallMs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

http::Response StalledWriterResponse(uint64_t stalled_ms, uint64_t storage_timeout_ms) {
  return http::ProblemResponse(
      503,
      "the writer has made no progress for " + std::to_string(stalled_ms) + " ms, longer than --storage-timeout-ms (" +
          std::to_string(storage_timeout_ms) +
          " ms): this write was refused before it was queued and was not applied; retry once /readyz answers 200",
      storage_timeout_ms, true, "--storage-timeout-ms");
}

uint64_t MonotonicMs() { return http::ReadClockMs(); }

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

// ---------------------------------------------------------------- Impl

struct KvService::Impl final : WriteExchanges::Responder {
  Impl(KvService& s, KvBackend& b, AccessLog* log, const KvServiceOptions& o, WakeFn w, void* i)
      : self(s), backend(b), access_log(log), options(o), request_ids(RequestIdSeed(o)),
        writes(b, *this, ExchangeOptions(o, s.part_bytes_), w, i), wake(w), io(i) {}

  static uint64_t RequestIdSeed(const KvServiceOptions& o) {
    std::random_device rd;
    return (uint64_t{rd()} << 32) ^ rd() ^ (uint64_t{o.token_prefix} << 48);
  }
  static WriteExchangeOptions ExchangeOptions(const KvServiceOptions& o, size_t part_bytes) {
    WriteExchangeOptions w;
    w.compression_level = o.compression_level;
    w.compress_min_bytes = o.compress_min_bytes;
    w.busy_give_up_ms = o.busy_give_up_ms;
    w.storage_timeout_ms = o.storage_timeout_ms;
    w.part_bytes = part_bytes;
    w.token_prefix = o.token_prefix;
    w.token_generation = o.token_generation;
    w.body_budget = o.body_budget;
    w.body_whole_budget = o.body_whole_budget;
    w.body_arrived_budget = o.body_arrived_budget;
    w.body_waiting_budget = o.body_waiting_budget;
    w.body_budget_give_up_ms = o.body_budget_give_up_ms;
    w.staging_bytes = o.staging_bytes;
    w.spill_env = o.body_spill_env;
    w.spill_dir = o.body_spill_dir;
    w.spill_budget = o.body_spill_budget;
    w.spill_files = o.body_spill_files;
    w.offload = o.offload;
    return w;
  }

  KvService& self;
  KvBackend& backend;
  AccessLog* access_log;
  KvServiceOptions options;
  RequestIds request_ids;
  WriteExchanges writes;
  // The response budget when the options give none (tests): never refuses.
  ByteBudget unlimited_response{uint64_t{1} << 62};
  ByteBudget& response_budget() { return options.response_budget ? *options.response_budget : unlimited_response; }
  StreamWaiters stream_waiters;  // GETs of compressed values waiting for room in the response budget
  WakeFn wake;
  void* io;
  // The id DecorateCoreResponse adds: the core serializes the response right
  // after the call, on this thread, before it could call again.
  char core_id[RequestIds::kMaxBytes];
  // What the key hints of the request being parsed on hint_conn learnt, for
  // its read (one for the whole service: a request's hints and its dispatch
  // come from one Drive, and a hint of another request only costs a check).
  engine::KeyProbe hint;
  const http::Connection* hint_conn = nullptr;
  // hint is the offer's, taken by hint_conn's request at its target hint:
  // that request's head hint (same key, Handler::OnKeyHint) learns nothing.
  bool hint_offered = false;
  // OfferKeyProbe's standing offer (offer_conn null: none).
  const http::Connection* offer_conn = nullptr;
  std::string_view offer_key;
  const engine::KeyProbe* offer_probe = nullptr;
  // The hint of conn's request, at most once; null if its hints were not
  // the last ones given.
  const engine::KeyProbe* TakeHint(const http::Connection& conn) {
    if (hint_conn != &conn) return nullptr;
    hint_conn = nullptr;
    return &hint;
  }
  engine::Result<engine::Value> Read(std::string_view key, engine::ReadMode mode, const engine::KeyProbe* h) {
    return h != nullptr ? backend.Get(key, mode, *h) : backend.Get(key, mode);
  }
  // A read whose small record is copied whole into this thread's copy, for
  // a response serialized before the next read on this thread (AnswerValue).
  engine::Result<engine::Value> ReadCopied(std::string_view key, const engine::KeyProbe* h) {
    // Every value a copy holds is one the response copies beside its head.
    static_assert(engine::RecordCopy::kBytes - engine::kRecordHeaderBytes <= http::Connection::kCopyBodyMaxBytes);
    thread_local engine::RecordCopy copy;
    return backend.Get(key, engine::ReadMode::kStored, h, &copy);
  }

  static KvConnState* State(http::Connection& conn) { return static_cast<KvConnState*>(conn.user_data()); }

  void Answer(http::Connection& conn, const http::Request& request, http::Response&& response,
              uint64_t now_ms) override;
  void LogResponse(http::Connection& conn, const http::ResponseRecord& record);
  void LogResponseEnd(const http::ResponseEnd& end);
  void HandleKvRead(http::Connection& conn, const http::Request& request, uint64_t now_ms);
  void AnswerValue(http::Connection& conn, const http::Request& request, engine::Value& v, uint64_t now_ms);
  void AnswerStream(http::Connection& conn, const http::Request& request, std::shared_ptr<ValueStream> stream,
                    uint64_t seq, std::string_view content_type, uint64_t now_ms);
  void ServeStreamWaiters(uint64_t now_ms);
  bool CopyOutOfMapping(engine::Value& v, bool with_body);
  void HandleList(http::Connection& conn, const http::Request& request, uint64_t now_ms);
  void HandleKvWrite(http::Connection& conn, const http::Request& request, uint64_t now_ms);

  // GET /admin/backup requests waiting for the writer's cut.
  struct BackupWait {
    http::Connection* conn = nullptr;
    const http::Request* request = nullptr;  // valid until answered (request.h)
    uint32_t slot = 0;
    uint64_t since_ms = 0;
    uint64_t serial = 0;       // names this wait to the hint's preparation (slots are reused)
    bool preparing = false;    // the cut's hints are being built on the Offload
    bool prepared = false;     // built (or none to build): `hint` is what the archive carries
    std::shared_ptr<PreparedHints> hint;
  };
  std::vector<BackupWait> backup_waits;
  uint64_t backup_serial = 0;
  // Expires with the service: a hint build that ends after it answers nobody.
  std::shared_ptr<int> backup_life = std::make_shared<int>(0);
  void PrepareBackupHint(size_t wait_index);
  void HandleBackup(http::Connection& conn, const http::Request& request, uint64_t now_ms);
  void OnBackupCut(const Completion& c, uint64_t now_ms);
  void AnswerBackup(size_t wait_index, uint64_t now_ms);
  void ExpireBackupWaits(uint64_t now_ms);
  void AbortBackupWait(http::Connection& conn);
};

// Every response of the service goes through here: X-Request-Id, drain-time
// Connection: close, then Respond (which logs it through OnResponded).
void KvService::Impl::Answer(http::Connection& conn, const http::Request& request, http::Response&& response,
                             uint64_t now_ms) {
  char id[RequestIds::kMaxBytes];
  const size_t id_len = request_ids.For(request.x_request_id, id);
  response.AddHeader("X-Request-Id", std::string_view(id, id_len));
  if (self.draining_) response.close = true;
  conn.Respond(response, now_ms);
}

namespace {

std::string_view RequestIdOf(const http::Response& response) {
  for (size_t i = 0; i < response.extra_count; ++i) {
    if (response.extra[i].name == "X-Request-Id") return response.extra[i].value;
  }
  return {};
}

// One limiter for the whole process: pool threads share it.
LogLimiter& ClientErrorLimiter() {
  static LogLimiter limiter(1000, KvService::kClientErrorBurst);
  return limiter;
}

// The longest request-target quoted in an error-log line.
constexpr size_t kMaxLoggedTarget = 512;

}  // namespace

// Called for every final response, by the service (Respond from Answer) or
// by the core (refusals): both keep their access-log record here, with the
// same request id the client saw, for the line written when the response
// ends (LogResponseEnd).
void KvService::Impl::LogResponse(http::Connection& conn, const http::ResponseRecord& record) {
  const bool log_access = access_log != nullptr && access_log->enabled();
  const bool log_refusal = record.by_core && record.status >= 400 && ErrorLogEnabled(LogLevel::kInfo);
  if (!log_access && !log_refusal) return;
  char peer[INET6_ADDRSTRLEN + 2];
  const KvConnState* st = State(conn);
  const size_t peer_len = st != nullptr ? st->PeerText(peer) : (peer[0] = '-', 1);
  static const std::vector<TrustedProxy> kNone;
  const http::Request* request = record.request;
  const std::string_view client =
      ClientAddress(std::string_view(peer, peer_len), request != nullptr ? request->x_forwarded_for : "",
                    options.trusted_proxies != nullptr ? *options.trusted_proxies : kNone);
  const std::string_view id = RequestIdOf(*record.response);
  if (log_access) {
    AccessRecord r;
    r.remote_addr = client;
    r.method = record.method;
    r.target = record.target;
    r.protocol = record.protocol;
    r.status = record.status;
    r.body_bytes_sent = record.body_bytes;
    if (request != nullptr) {
      r.referer = request->referer;
      r.user_agent = request->user_agent;
    }
    r.request_id = id;
    // The note: when the request time started (MonotonicMicros), then the
    // record, whose request time so far (to the queueing) is the least the
    // line will give (LogResponseEnd).
    r.request_time_us = record.latency_us;
    const uint64_t start_us = record.queued_us - record.latency_us;
    record.end_note->append(reinterpret_cast<const char*>(&start_us), sizeof start_us);
    PackAccessRecord(r, record.end_note);
  }
  uint64_t left_out = 0;
  if (log_refusal && ClientErrorLimiter().Allow(&left_out)) {
    const std::string_view target = record.target.substr(0, kMaxLoggedTarget);
    char more[64] = "";
    if (left_out > 0) std::snprintf(more, sizeof more, " (%llu more refused clients not logged)",
                                    static_cast<unsigned long long>(left_out));
    KINGX_LOG_INFO("client refused with %d: %.*s; client: %.*s, request: \"%.*s %.*s%s%s%.*s\", request id: %.*s%s",
                   record.status, int(record.detail.size()), record.detail.data(), int(client.size()), client.data(),
                   int(record.method.size()), record.method.data(), int(target.size()), target.data(),
                   target.size() < record.target.size() ? "..." : "", record.protocol.empty() ? "" : " ",
                   int(record.protocol.size()), record.protocol.data(), int(id.size()), id.data(), more);
  }
}

// The line of a response that ended: its body bytes sent, its request time
// from the head to the end (at least the time to queue it), and the wall
// clock of the end, as nginx's log phase writes them.
void KvService::Impl::LogResponseEnd(const http::ResponseEnd& end) {
  uint64_t start_us = 0;
  AccessRecord r;
  if (access_log == nullptr || end.note.size() < sizeof start_us ||
      UnpackAccessRecord(end.note.substr(sizeof start_us), &r) == 0) {
    return;
  }
  std::memcpy(&start_us, end.note.data(), sizeof start_us);
  if (end.end_us > start_us) r.request_time_us = std::max(r.request_time_us, end.end_us - start_us);
  r.body_bytes_sent = end.body_bytes_sent;
  r.time_unix_ms = WallMs();
  access_log->Append(r);
}

// ---------------------------------------------------------------- reads

namespace {

// A page of the value's segment went between the Get and the response.
engine::Status UnreadableAfterGet() {
  return engine::Status::IOError("a page of the value's segment could not be read");
}

}  // namespace

void KvService::Impl::HandleKvRead(http::Connection& conn, const http::Request& request, uint64_t now_ms) {
  const bool conditional = request.if_match.present() || request.if_none_match.present();
  const engine::KeyProbe* h = TakeHint(conn);
  if (request.method == http::Method::kGet && !conditional) {
    // The hot path: one lookup; a small record copied whole by one guarded
    // read, a larger raw value sent as a view of its segment.
    auto r = ReadCopied(request.key, h);
    if (!r.ok()) return Answer(conn, request, http::ErrorResponse(r.status()), now_ms);
    return AnswerValue(conn, request, r.value(), now_ms);
  }
  auto meta = Read(request.key, engine::ReadMode::kMetadata, h);
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
    if (!CopyOutOfMapping(meta.value(), false)) {
      return Answer(conn, request, http::ErrorResponse(UnreadableAfterGet()), now_ms);
    }
    http::Response resp = http::ValueResponse(std::string_view(), nullptr, meta->seq, meta->content_type);
    resp.head_content_length = meta->raw_len;
    return Answer(conn, request, std::move(resp), now_ms);
  }
  auto r = ReadCopied(request.key, nullptr);
  if (!r.ok()) return Answer(conn, request, http::ErrorResponse(r.status()), now_ms);
  AnswerValue(conn, request, r.value(), now_ms);
}

// A value read with ReadMode::kStored: a raw one is sent from the copy the
// read made, or copied beside the head, or as a view of its segment; a
// compressed one is decoded one frame at a time while it is sent
// (ValueStream), never whole, and never more than a frame per write on this
// thread. Its piece buffer is reserved in the response budget before
// anything is answered: without room the GET waits, unanswered, in
// stream_waiters (ServeStreamWaiters answers it).
void KvService::Impl::AnswerValue(http::Connection& conn, const http::Request& request, engine::Value& v,
                                  uint64_t now_ms) {
  const bool copied_body = v.codec == engine::Codec::kRaw && v.stored.size() <= http::Connection::kCopyBodyMaxBytes;
  if (!v.copied && !CopyOutOfMapping(v, copied_body)) {
    return Answer(conn, request, http::ErrorResponse(UnreadableAfterGet()), now_ms);
  }
  if (v.codec == engine::Codec::kRaw) {
    return Answer(conn, request, http::ValueResponse(v.stored, std::move(v.holder), v.seq, v.content_type), now_ms);
  }
  const uint64_t seq = v.seq;
  const std::string_view content_type = v.content_type;  // valid until this call returns (CopyOutOfMapping)
  auto stream = std::make_shared<ValueStream>(std::move(v), &backend, response_budget());
  if (!stream->TryReserve()) {
    StreamWaiters::Waiter w;
    w.stream = std::move(stream);
    w.conn = &conn;
    w.request = &request;
    w.seq = seq;
    w.content_type.assign(content_type);
    w.since_ms = now_ms;
    stream_waiters.Park(std::move(w));
    State(conn)->response_wait = true;
    return;
  }
  AnswerStream(conn, request, std::move(stream), seq, content_type, now_ms);
}

// A stream holding its reservation: its first frame is decoded here, so a
// value that cannot be decoded is answered 500 before anything of it is
// sent.
void KvService::Impl::AnswerStream(http::Connection& conn, const http::Request& request,
                                   std::shared_ptr<ValueStream> stream, uint64_t seq, std::string_view content_type,
                                   uint64_t now_ms) {
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

// GETs waiting for the response budget: the oldest ones that now get their
// reservation are answered, first come first served; then those that waited
// response_budget_give_up_ms get 503 + Retry-After. Each answer may start
// its connection's next pipelined request, which may wait in turn (at the
// tail, with a later give-up).
void KvService::Impl::ServeStreamWaiters(uint64_t now_ms) {
  StreamWaiters::Waiter w;
  while (stream_waiters.TakeFitting(&w)) {
    State(*w.conn)->response_wait = false;
    AnswerStream(*w.conn, *w.request, std::move(w.stream), w.seq, w.content_type, now_ms);
    if (wake != nullptr) wake(io, *w.conn, now_ms);
  }
  while (stream_waiters.TakeExpired(now_ms, options.response_budget_give_up_ms, &w)) {
    State(*w.conn)->response_wait = false;
    w.stream.reset();  // its mapping goes before the answer
    Answer(*w.conn, *w.request,
           http::ProblemResponse(503,
                                 "compressed values being sent to other clients hold all of this worker's response "
                                 "buffer (--response-buffer-bytes) and none was freed within --send-timeout-ms; "
                                 "retry later",
                                 response_budget().limit(), true, "--response-buffer-bytes"),
           now_ms);
    if (wake != nullptr) wake(io, *w.conn, now_ms);
  }
}

// The bytes of v's mapping that the response copies on this thread (the
// content type into the head; with_body, a raw value small enough to be
// copied beside it) are copied out under the mapping guard first, into this
// thread's scratch, and v is pointed at the copies: a page that went since
// the Get (a file cut under the server) answers 500 instead of raising
// SIGBUS while the head is written. The scratch lives until the next call
// on this thread; Answer serializes the response before that.
bool KvService::Impl::CopyOutOfMapping(engine::Value& v, bool with_body) {
  // A content type is at most 255 bytes (one length byte in the record).
  thread_local char scratch[255 + http::Connection::kCopyBodyMaxBytes];
  const size_t type_len = v.content_type.size();
  const size_t body_len = with_body ? v.stored.size() : 0;
  assert(type_len <= 255 && body_len <= http::Connection::kCopyBodyMaxBytes);
  // In a record the value follows its content type: one copy for both.
  const bool adjacent = body_len == 0 || v.content_type.data() + type_len == v.stored.data();
  if (!engine::GuardedCopy(scratch, v.content_type.data(), adjacent ? type_len + body_len : type_len) ||
      (!adjacent && !engine::GuardedCopy(scratch + type_len, v.stored.data(), body_len))) {
    backend.ReportReadFault(v);
    return false;
  }
  v.content_type = std::string_view(scratch, type_len);
  if (with_body) v.stored = std::string_view(scratch + type_len, body_len);
  return true;
}

// ---------------------------------------------------------------- listing

// GET/HEAD /v1/kv/?prefix=&start_after=&limit=&cursor=&encoding= (list_api.h).
// The cursor is the last key of the page, signed and bound to the prefix by
// the lister; the next page starts strictly after it.
void KvService::Impl::HandleList(http::Connection& conn, const http::Request& request, uint64_t now_ms) {
  engine::KeyLister* lister = backend.Lister();
  if (lister == nullptr) {
    return Answer(conn, request, http::ProblemResponse(503, "listing is not available in this process", std::nullopt, true),
                  now_ms);
  }
  http::ListQuery q;
  http::ListQueryError err;
  if (!http::ParseListQuery(request.target, engine::kLargestKeyBytes, &q, &err)) {
    return Answer(conn, request,
                  http::ProblemResponse(400, "query parameter '" + err.parameter + "': " + err.detail, std::nullopt,
                                        false, err.parameter),
                  now_ms);
  }
  std::string after = std::move(q.start_after);
  if (q.has_cursor) {
    auto key = lister->ParseCursor(q.cursor, q.prefix);
    if (!key.ok()) {
      if (key.status().Is(engine::Code::kBusy)) return Answer(conn, request, http::ErrorResponse(key.status()), now_ms);
      return Answer(conn, request,
                    http::ProblemResponse(400, "query parameter 'cursor': " + std::string(key.status().message()),
                                          std::nullopt, false, "cursor"),
                    now_ms);
    }
    after = std::move(key.value());
  }
  engine::ListRequest lr;
  lr.prefix = q.prefix;
  lr.start_after = after;
  lr.limit = q.limit;
  auto page = lister->List(lr);
  if (!page.ok()) return Answer(conn, request, http::ErrorResponse(page.status()), now_ms);
  std::string cursor_text;
  if (!page->complete) {
    auto token = lister->MakeCursor(page->keys.back().key, q.prefix);
    if (!token.ok()) return Answer(conn, request, http::ErrorResponse(token.status()), now_ms);
    cursor_text = http::Base64UrlEncode(token.value());
  }
  Answer(conn, request,
         http::TextResponse(200, "application/json", http::RenderListPage(page.value(), q.url_encoding, cursor_text)),
         now_ms);
}

// ---------------------------------------------------------------- backups

namespace {

// Content-Disposition of a backup answered at wall_s (seconds since the epoch).
std::string BackupDisposition(uint64_t wall_s) {
  const time_t t = static_cast<time_t>(wall_s);
  struct tm tm;
  gmtime_r(&t, &tm);
  char name[64];
  std::strftime(name, sizeof name, "attachment; filename=\"kingx-%Y%m%d-%H%M%S.tar\"", &tm);
  return name;
}

}  // namespace

// HEAD /admin/backup: the head without a cut (below).
// GET /admin/backup: claim a backup slot and wait for the writer's cut (its
// completion, OnBackupCut); the connection stops reading meanwhile
// (AwaitsStorage).
void KvService::Impl::HandleBackup(http::Connection& conn, const http::Request& request, uint64_t now_ms) {
  KvConnState* st = State(conn);
  BackupClient* client = backend.Backups();
  if (st == nullptr || client == nullptr) {
    return Answer(conn, request, http::ProblemResponse(503, "backups are not available in this process", std::nullopt, true),
                  now_ms);
  }
  if (request.method == http::Method::kHead) {
    // The head a GET would send, less what only the cut knows (its length,
    // Kingx-Backup-Next-Seq): no slot is taken and nothing is pinned.
    http::Response head;
    head.content_type = "application/x-tar";
    const std::string disposition = BackupDisposition(static_cast<uint64_t>(WallMs() / 1000));
    head.AddHeader("Content-Disposition", disposition);
    head.head_without_length = true;
    return Answer(conn, request, std::move(head), now_ms);
  }
  auto slot = client->Request(options.token_prefix);
  if (!slot.ok()) {
    return Answer(conn, request, http::ProblemResponse(503, slot.status().message(), kMaxBackups, true), now_ms);
  }
  st->backup_slot = static_cast<int16_t>(slot.value());
  backup_waits.push_back(BackupWait{&conn, &request, slot.value(), now_ms, ++backup_serial, false, false, nullptr});
}

void KvService::Impl::OnBackupCut(const Completion& c, uint64_t now_ms) {
  const uint32_t slot = TableTokenSerial(c.token);
  for (size_t i = 0; i < backup_waits.size(); ++i) {
    if (backup_waits[i].slot == slot) return AnswerBackup(i, now_ms);
  }
  // Nobody waits (the connection closed and released the slot): nothing to do.
}

// The writer answered backup_waits[wait_index]: stream the archive of its
// cut, or say why there is none.
void KvService::Impl::AnswerBackup(size_t wait_index, uint64_t now_ms) {
  BackupClient* client = backend.Backups();
  const BackupState state = client->State(backup_waits[wait_index].slot);
  if (state == BackupState::kRequested || state == BackupState::kClaimed) return;  // not cut yet
  if (backup_waits[wait_index].preparing) return;                                 // answered once it is built
  if (state == BackupState::kCut && !backup_waits[wait_index].prepared) return PrepareBackupHint(wait_index);
  const BackupWait w = backup_waits[wait_index];
  backup_waits.erase(backup_waits.begin() + static_cast<std::ptrdiff_t>(wait_index));
  State(*w.conn)->backup_slot = -1;
  http::Response resp;
  std::shared_ptr<TarBackupStream> stream;
  std::string disposition, next_seq;
  if (state != BackupState::kCut) {
    const engine::Status failure = client->Failure(w.slot);
    client->Release(w.slot);
    client->region().failed.fetch_add(1, std::memory_order_relaxed);
    resp = http::ProblemResponse(503, "the backup's cut failed: " + failure.ToString(), std::nullopt, true);
  } else {
    const auto wall_s = static_cast<uint64_t>(WallMs() / 1000);
    next_seq = std::to_string(client->Cut(w.slot).next_seq);  // before the stream owns the slot
    // A read done on the offload's thread resumes the connection, then the I/O layer flushes it.
    http::Connection* conn = w.conn;
    auto resume = [conn, wake = wake, io = io] {
      const uint64_t now = MonotonicMs();
      conn->ResumeOutput(now);
      if (wake != nullptr) wake(io, *conn, now);
    };
    stream = std::make_shared<TarBackupStream>(*client, w.slot, response_budget(), wall_s, options.offload,
                                               std::move(resume), w.hint);
    if (!stream->Prime()) {
      stream.reset();  // releases the slot
      resp = http::ProblemResponse(503, "no room for a backup's buffer in --response-buffer-bytes; retry later",
                                   response_budget().limit(), true);
    } else {
      client->region().started.fetch_add(1, std::memory_order_relaxed);
      disposition = BackupDisposition(wall_s);
      resp.status = 200;
      resp.content_type = "application/x-tar";
      resp.AddHeader("Content-Disposition", disposition);
      resp.AddHeader("Kingx-Backup-Next-Seq", next_seq);
      resp.stream_length = stream->length();
      resp.stream = std::move(stream);
    }
  }
  Answer(*w.conn, *w.request, std::move(resp), now_ms);
  if (wake != nullptr) wake(io, *w.conn, now_ms);
}

// Builds the finished hints the cut needs (PrepareCutHints) on
// the Offload's thread, or inline without one (the thread model), then
// answers the wait. A wait aborted meanwhile (the client closed) is gone when
// the build ends: its hint is dropped. A build that fails (a file of the
// cut cannot be read, the scratch file cannot be written) answers 500.
void KvService::Impl::PrepareBackupHint(size_t wait_index) {
  BackupClient* client = backend.Backups();
  BackupWait& w = backup_waits[wait_index];
  struct Job {
    engine::Env* env = nullptr;
    std::string data_dir, scratch_dir, tag;
    engine::DatabaseCut cut;
    engine::Status status = engine::Status::IOError("the backup's hint was not built");
    std::shared_ptr<PreparedHints> hint;
  };
  auto job = std::make_shared<Job>();
  job->env = &client->env();
  job->data_dir = client->data_dir();
  const char* tmp = std::getenv("TMPDIR");
  job->scratch_dir = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  job->tag = std::to_string(options.token_prefix) + "-" + std::to_string(w.serial);
  job->cut = client->Cut(w.slot);
  auto work = [job] {
    auto r = PrepareCutHints(*job->env, job->data_dir, job->cut, job->scratch_dir, job->tag);
    job->status = r.status();
    if (r.ok()) job->hint = std::move(r.value());
  };
  const uint64_t serial = w.serial;
  auto done = [this, job, serial, life = std::weak_ptr<int>(backup_life)] {
    if (life.expired()) return;
    for (size_t i = 0; i < backup_waits.size(); ++i) {
      BackupWait& b = backup_waits[i];
      if (b.serial != serial) continue;
      b.preparing = false;
      b.prepared = true;
      b.hint = job->hint;
      if (!job->status.ok()) {
        KINGX_LOG_ERROR("backup: the hints of the cut cannot be built: %s", job->status.ToString().c_str());
        const BackupWait gone = b;
        backup_waits.erase(backup_waits.begin() + static_cast<std::ptrdiff_t>(i));
        State(*gone.conn)->backup_slot = -1;
        backend.Backups()->Release(gone.slot);
        backend.Backups()->region().failed.fetch_add(1, std::memory_order_relaxed);
        const uint64_t now_ms = MonotonicMs();
        Answer(*gone.conn, *gone.request,
               http::ProblemResponse(500, "the backup's segment hints cannot be built: " +
                                              job->status.ToString()),
               now_ms);
        if (wake != nullptr) wake(io, *gone.conn, now_ms);
        return;
      }
      return AnswerBackup(i, MonotonicMs());
    }
  };
  if (options.offload != nullptr) {
    w.preparing = true;
    if (options.offload->Queue(work, done)) return;
    w.preparing = false;
  }
  work();  // the thread model's pool thread may wait for the disk
  done();
}

void KvService::Impl::ExpireBackupWaits(uint64_t now_ms) {
  BackupClient* client = backend.Backups();
  for (size_t i = 0; i < backup_waits.size();) {
    BackupWait& w = backup_waits[i];
    if (w.preparing) {  // cut: answered when the hint is built
      ++i;
      continue;
    }
    const BackupState state = client->State(w.slot);
    if (state != BackupState::kRequested && state != BackupState::kClaimed) {
      AnswerBackup(i, now_ms);  // cut, its completion not drained yet
      continue;
    }
    if (now_ms < w.since_ms + options.storage_timeout_ms) {
      ++i;
      continue;
    }
    const BackupWait gone = w;
    backup_waits.erase(backup_waits.begin() + static_cast<std::ptrdiff_t>(i));
    State(*gone.conn)->backup_slot = -1;
    client->Release(gone.slot);
    client->region().failed.fetch_add(1, std::memory_order_relaxed);
    Answer(*gone.conn, *gone.request,
           http::ProblemResponse(503, "the writer did not take the backup's cut within --storage-timeout-ms",
                                 options.storage_timeout_ms, true),
           now_ms);
    if (wake != nullptr) wake(io, *gone.conn, now_ms);
  }
}

void KvService::Impl::AbortBackupWait(http::Connection& conn) {
  KvConnState* st = State(conn);
  if (st == nullptr || st->backup_slot < 0) return;
  const auto slot = static_cast<uint32_t>(st->backup_slot);
  st->backup_slot = -1;
  for (size_t i = 0; i < backup_waits.size(); ++i) {
    if (backup_waits[i].conn == &conn) {
      backup_waits.erase(backup_waits.begin() + static_cast<std::ptrdiff_t>(i));
      break;
    }
  }
  backend.Backups()->Release(slot);  // the writer unpins at once if it had cut
}

// ---------------------------------------------------------------- writes

// Turns the request's preconditions into one writer condition. The common
// cases need no read: If-Match with one strong tag (compare-and-set) and
// If-None-Match: * (create only). Anything else is evaluated against the
// current value, then pinned to that value (If-Match its seq, or absent), so
// the writer still decides atomically: if the key changed in between, the
// answer is 412.
void KvService::Impl::HandleKvWrite(http::Connection& conn, const http::Request& request, uint64_t now_ms) {
  if (options.read_only) {
    http::Response r = http::ProblemResponse(405, kReadOnlyDetail);
    r.allow = "GET, HEAD";
    return Answer(conn, request, std::move(r), now_ms);
  }
  if (const uint64_t stalled_ms = backend.WriterNoProgressMs(now_ms); stalled_ms != 0) {
    // Queued now, the write would wait the whole storage timeout for an
    // "outcome unknown"; refused before it is queued, it is known not applied.
    return Answer(conn, request, StalledWriterResponse(stalled_ms, options.storage_timeout_ms), now_ms);
  }
  const WriteKind kind = request.method == http::Method::kPut ? WriteKind::kPut : WriteKind::kDelete;
  const auto& im = request.if_match;
  const auto& inm = request.if_none_match;
  const bool simple_cas = im.kind == http::Precondition::Kind::kList && im.tags.size() == 1 &&
                          !im.tags[0].weak && !im.tags[0].foreign && !inm.present();
  const bool simple_create = kind == WriteKind::kPut && inm.kind == http::Precondition::Kind::kAny &&
                             !im.present();
  if (!im.present() && !inm.present()) {
    return writes.Start(conn, request, kind, WriteCondition::kNone, 0);
  }
  if ((simple_cas || simple_create) && !request.expect_continue) {
    if (simple_cas) return writes.Start(conn, request, kind, WriteCondition::kIfMatch, im.tags[0].seq);
    return writes.Start(conn, request, kind, WriteCondition::kIfAbsent, 0);
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
  if (simple_cas) return writes.Start(conn, request, kind, WriteCondition::kIfMatch, im.tags[0].seq);
  if (simple_create) return writes.Start(conn, request, kind, WriteCondition::kIfAbsent, 0);
  if (current != 0) return writes.Start(conn, request, kind, WriteCondition::kIfMatch, current);
  if (kind == WriteKind::kDelete) {
    return Answer(conn, request, http::NoSuchKeyResponse(), now_ms);
  }
  writes.Start(conn, request, kind, WriteCondition::kIfAbsent, 0);
}

// ---------------------------------------------------------------- KvService

namespace {

// A part must fit one queue entry even when zstd inflates it slightly.
size_t ClampPartBytes(size_t part_bytes, size_t max_entry_bytes) {
  const size_t cap = max_entry_bytes > 4096 ? max_entry_bytes - max_entry_bytes / 64 - 1024 : 1024;
  return std::max<size_t>(1024, std::min(part_bytes, cap));
}

}  // namespace

KvService::KvService(KvBackend& backend, AccessLog* access_log, const KvServiceOptions& options, WakeFn wake,
                     void* io)
    : part_bytes_(ClampPartBytes(options.part_bytes, backend.MaxEntryBytes())),
      impl_(std::make_unique<Impl>(*this, backend, access_log, options, wake, io)) {}

KvService::~KvService() = default;

void KvService::OnRequest(http::Connection& conn, const http::Request& request) {
  const uint64_t now_ms = request.start_ms;
  Impl& m = *impl_;
  const WriteExchanges::CallbackScope scope(m.writes);
  switch (request.route) {
    case http::Route::kKv:
      if (request.method == http::Method::kGet || request.method == http::Method::kHead) {
        return m.HandleKvRead(conn, request, now_ms);
      }
      return m.HandleKvWrite(conn, request, now_ms);
    case http::Route::kKvList:
      return m.HandleList(conn, request, now_ms);
    case http::Route::kHealthz:
      return m.Answer(conn, request, http::TextResponse(200, "text/plain", "ok\n"), now_ms);
    case http::Route::kReadyz: {
      const std::string reason = draining_ ? std::string("the server is stopping") : m.backend.NotReadyReason();
      if (reason.empty()) return m.Answer(conn, request, http::TextResponse(200, "text/plain", "ready\n"), now_ms);
      return m.Answer(conn, request, http::ProblemResponse(503, reason, std::nullopt, true), now_ms);
    }
    case http::Route::kMetrics:
      return m.Answer(conn, request, http::TextResponse(200, "text/plain; version=0.0.4", m.backend.RenderMetrics()),
                      now_ms);
    case http::Route::kAdminBackup: {
      const KvConnState* st = Impl::State(conn);
      if (st == nullptr || !st->admin) {
        return m.Answer(conn, request, http::ProblemResponse(404, http::kNoResourceDetail), now_ms);
      }
      return m.HandleBackup(conn, request, now_ms);
    }
    case http::Route::kAdminCompact: {
      const KvConnState* st = Impl::State(conn);
      if (st == nullptr || !st->admin) {
        // The router already refuses /admin/* on the main listener.
        return m.Answer(conn, request, http::ProblemResponse(404, http::kNoResourceDetail), now_ms);
      }
      if (m.options.read_only)
        return m.Answer(conn, request,
                        http::ProblemResponse(409, "This server is read-only (--read-only): compaction never runs."),
                        now_ms);
      if (!m.options.compaction)
        return m.Answer(conn, request,
                        http::ProblemResponse(409, "Compaction is off (--compaction off): no pass runs."), now_ms);
      engine::Status s = m.backend.RequestCompaction();
      if (!s.ok()) return m.Answer(conn, request, http::ProblemResponse(503, s.message(), std::nullopt, true), now_ms);
      return m.Answer(conn, request, http::TextResponse(202, "text/plain", "compaction requested\n"), now_ms);
    }
  }
}

void KvService::OnBody(http::Connection& conn, std::span<const char> piece, uint64_t now_ms) {
  impl_->writes.OnBody(conn, piece, now_ms);
}

void KvService::OnBodyEnd(http::Connection& conn, uint64_t now_ms) { impl_->writes.OnBodyEnd(conn, now_ms); }

void KvService::OnAbort(http::Connection& conn) {
  if (KvConnState* st = Impl::State(conn); st != nullptr && st->response_wait) {
    impl_->stream_waiters.Cancel(conn);
    st->response_wait = false;
  }
  impl_->AbortBackupWait(conn);
  impl_->writes.OnAbort(conn);
}

void KvService::OnKeyHint(http::Connection& conn, std::string_view key, http::KeyHintStage stage) {
  Impl& m = *impl_;
  if (stage == http::KeyHintStage::kHead && m.hint_offered && m.hint_conn == &conn) return;
  m.hint_offered = false;
  if (m.offer_conn == &conn && key == m.offer_key) {
    m.hint = *m.offer_probe;
    m.hint_conn = &conn;
    m.hint_offered = stage == http::KeyHintStage::kTarget;
    return;
  }
  if (stage == http::KeyHintStage::kTarget || m.hint_conn != &conn) m.hint = engine::KeyProbe{};
  m.hint_conn = &conn;
  if (stage == http::KeyHintStage::kTarget) {
    m.backend.PrefetchIndex(key, &m.hint);
  } else {
    m.backend.PrefetchRecord(key, &m.hint);
  }
}

void KvService::OfferKeyProbe(const http::Connection* conn, std::string_view key, const engine::KeyProbe* probe) {
  Impl& m = *impl_;
  m.offer_conn = conn;
  m.offer_key = key;
  m.offer_probe = probe;
}

void KvService::DecorateCoreResponse(http::Connection& conn, const http::Request* request,
                                     http::Response& response) {
  (void)conn;
  Impl& m = *impl_;
  const size_t n = m.request_ids.For(request != nullptr ? request->x_request_id : std::string_view(), m.core_id);
  response.AddHeader("X-Request-Id", std::string_view(m.core_id, n));
}

void KvService::OnResponded(http::Connection& conn, const http::ResponseRecord& record) {
  impl_->LogResponse(conn, record);
}

void KvService::OnResponseEnd(http::Connection& conn, const http::ResponseEnd& end) {
  (void)conn;
  impl_->LogResponseEnd(end);
}

void KvService::OnCompletion(const Completion& c, uint64_t now_ms) {
  if (c.reason == CompletionReason::kBackupCut) return impl_->OnBackupCut(c, now_ms);
  impl_->writes.OnCompletion(c, now_ms);
}

void KvService::OnInput(http::Connection& conn, uint64_t now_ms) { impl_->writes.OnInput(conn, now_ms); }

void KvService::Poke(uint64_t now_ms) {
  Impl& m = *impl_;
  m.ServeStreamWaiters(now_ms);
  m.writes.Poke(now_ms);
  if (!m.backup_waits.empty()) m.ExpireBackupWaits(now_ms);
}

uint64_t KvService::NextRetryMs() const {
  const Impl& m = *impl_;
  // Compressed responses waiting for the response budget ask for a Poke
  // only once room was released for the oldest of them.
  if (m.stream_waiters.HeadFits()) return 1;  // as soon as possible, like the writes' retries
  return m.writes.NextRetryMs();
}

uint64_t KvService::NextExpiryMs() const {
  const Impl& m = *impl_;
  uint64_t next = m.writes.NextExpiryMs();
  if (!m.stream_waiters.empty()) {
    const uint64_t at = m.stream_waiters.HeadSinceMs() + m.options.response_budget_give_up_ms;
    if (next == 0 || at < next) next = at;
  }
  for (const Impl::BackupWait& w : m.backup_waits) {
    const uint64_t at = w.since_ms + m.options.storage_timeout_ms;
    if (next == 0 || at < next) next = at;
  }
  return next;
}

size_t KvService::InFlight() const { return impl_->writes.InFlight(); }

bool KvService::AwaitsStorage(const KvConnState& state) const {
  return state.backup_slot >= 0 || impl_->writes.AwaitsStorage(state);
}

bool KvService::AwaitsBodyBudget(const KvConnState& state) const { return impl_->writes.AwaitsBodyBudget(state); }
uint64_t KvService::BodySpills() const { return impl_->writes.spills(); }

bool KvService::AwaitsArrivedRoom(const KvConnState& state) const { return impl_->writes.AwaitsArrivedRoom(state); }

bool KvService::AwaitsResponseBudget() const { return !impl_->stream_waiters.empty(); }

uint64_t KvService::ResponseBudgetNeed() const { return impl_->stream_waiters.HeadNeed(); }

size_t KvService::ReadBytesHint(const KvConnState& state) const { return impl_->writes.ReadBytesHint(state); }

}  // namespace kingx
