// The per-connection state machine.
//
// States (see connection.h):
//   kHead --head parsed--> kBody --body done--> kAwaitAnswer --Respond--> kHead
//   kBody --Respond early--> kBody (the rest of the body is discarded) or kClosing
//   any --framing error / timeout / "Connection: close" / EOF--> kClosing
// Only one request is with the handler at a time: the parser is not run past
// the end of request N until N is answered, so request N+1's bytes wait in
// in_ (bounded by Limits::max_buffered_input_bytes through WantsRead).
//
// Re-entrancy: handler callbacks run inside Drive and may call Respond,
// PauseBody, ResumeBody. Those only change state (and queue output); the one
// running Drive loop picks the change up. Drive is entered again only from
// the outside (Feed, Respond of a deferred answer, ResumeBody, ConsumeOutput).
#include "http/connection.h"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "http/clock.h"
#include "http/parser.h"
#include "http/responses.h"
#include "http/wire.h"

namespace kingx::http {
namespace {

constexpr std::string_view k100Continue = "HTTP/1.1 100 Continue\r\n\r\n";

// Requests whose body means something: everything else has its body (if a
// client sends one) read and dropped by the core before dispatch.
bool TakesBody(const Request& r) {
  return (r.route == Route::kKv && r.method == Method::kPut) ||
         (r.route == Route::kAdminCompact && r.method == Method::kPost);
}

bool HasBody(const Request& r) { return r.chunked || r.content_length > 0; }

}  // namespace

Connection::Connection(Handler& handler, const Limits& limits, Counters* counters, uint64_t now_ms)
    : handler_(handler),
      limits_(limits),
      counters_(counters),
      head_start_ms_(now_ms),
      body_last_ms_(now_ms),
      idle_since_ms_(now_ms),
      send_progress_ms_(now_ms) {
  assert(InvalidLimit(limits).empty() && "Connection built from invalid Limits");
  if (counters_) Bump(counters_->connections_opened);
}

Connection::~Connection() {
  AbortHandler();
  EndResponses(true, 0);
  // A connection that ends between requests leaves its parser and output
  // block to the thread's next request (spare_list.h) instead of the heap.
  if (parser_ && !parser_->InHead() && !parser_->InBody()) Parser::GiveBack(std::move(parser_));
  out_.ReleaseIdle();
  if (counters_) Bump(counters_->connections_closed);
}

const Request& Connection::request() const { return parser_->request(); }

// ---------------------------------------------------------------- input

// Only advances: the step's body piece still points into in_ and is handed
// to OnBody after this call, so in_ must not be cleared here (clearing writes
// a NUL over its first byte). Feed compacts in_ before appending, and
// ReleaseIdleMemory frees it between requests.
void Connection::ConsumeInput(size_t n) {
  if (n == 0) return;
  if (!in_.empty()) {
    in_.Consume(n);
  } else {
    feeding_ = feeding_.subspan(n);
  }
}

void Connection::Feed(std::span<const char> bytes, uint64_t now_ms) {
  assert(!in_drive_ && "Feed called from inside a Handler callback");
  if (counters_) Bump(counters_->bytes_in, bytes.size());
  if (state_ == State::kClosing || bytes.empty()) return;
  if (state_ == State::kBody) body_last_ms_ = now_ms;
  if (UnparsedBytes() == 0) {
    // Common case: parse straight from the caller's buffer, keep only what
    // is left over (a partial head, or a pipelined request that must wait).
    in_.Clear();
    feeding_ = bytes;
    Drive(now_ms);
    if (!feeding_.empty() && state_ != State::kClosing) in_.Assign(feeding_);
    feeding_ = {};
  } else {
    in_.Append(bytes);
    Drive(now_ms);
  }
  if (state_ == State::kClosing) in_.Clear();
}

void Connection::FeedEof(uint64_t now_ms) {
  assert(!in_drive_);
  if (state_ == State::kClosing || eof_) return;
  eof_ = true;
  Drive(now_ms);
}

// ---------------------------------------------------------------- driving

void Connection::Drive(uint64_t now_ms) {
  if (in_drive_) return;  // the running loop will see the new state
  in_drive_ = true;
  for (;;) {
    if (state_ == State::kClosing || state_ == State::kAwaitAnswer) break;
    if (PipelinedHeld()) break;
    if (state_ == State::kHead && stream_) break;  // the next request waits for the streamed body
    if (state_ == State::kBody && body_paused_ && dispatched_ && !discard_body_) break;
    std::span<const char> data = Unparsed();
    if (state_ == State::kHead) {
      if (data.empty() && !eof_) break;  // nothing to parse: stay idle
      if (data.empty() && !parser_) {
        Close();  // EOF between requests: the normal end, no parser needed
        break;
      }
      if (!parser_) {
        parser_ = Parser::Take(limits_, listener_);
        parser_->SetKeyHints(&Connection::KeyHint, this);
      }
      if (!data.empty() && !head_timer_armed_) {
        head_timer_armed_ = true;
        head_start_ms_ = now_ms;
      }
    }
    // One body piece per event, so a PauseBody in OnBody leaves nothing
    // undelivered behind.
    if (state_ == State::kBody && data.size() > limits_.body_part_bytes) data = data.first(limits_.body_part_bytes);
    Parser::Step step = parser_->Execute(data);
    ConsumeInput(step.consumed);
    switch (step.event) {
      case Parser::Event::kNeedMore:
        // A body slice (body_part_bytes) may end inside framing bytes (a
        // chunk-size line) with more input buffered behind it: go on.
        if (step.consumed > 0 && UnparsedBytes() > 0) continue;
        if (eof_) {
          // Nothing more will come: a partial head or body is dropped
          // silently; between requests this is the normal end.
          Close();
        }
        in_drive_ = false;
        return;
      case Parser::Event::kHead:
        OnHead(now_ms);
        break;
      case Parser::Event::kBody:
        body_last_ms_ = now_ms;
        if (dispatched_ && !discard_body_ && !step.body.empty()) handler_.OnBody(*this, step.body, now_ms);
        break;
      case Parser::Event::kMessageEnd:
        OnMessageEnd(now_ms);
        break;
      case Parser::Event::kError:
        OnParseError(now_ms);
        break;
    }
  }
  in_drive_ = false;
}

void Connection::KeyHint(void* self, std::string_view key, KeyHintStage stage) {
  auto* conn = static_cast<Connection*>(self);
  conn->handler_.OnKeyHint(*conn, key, stage);
}

void Connection::OnHead(uint64_t now_ms) {
  Request& req = parser_->mutable_request();
  req.start_ms = now_ms;
  req.start_us = LatencyStartMicros(now_ms);
  state_ = State::kBody;
  head_timer_armed_ = false;
  body_last_ms_ = now_ms;
  answered_ = dispatched_ = discard_body_ = dispatch_at_end_ = continue_sent_ = body_paused_ = false;
  if (counters_) Bump(counters_->requests_by_method[static_cast<size_t>(req.method)]);

  if (parser_->rejected()) {
    // Refused at request level: answer now and skip the body. A client that
    // waits for 100 Continue will not send the body we would have to skip,
    // and might send it later anyway: close instead.
    discard_body_ = true;
    CoreRespond(parser_->error(), &req, HasBody(req) && req.expect_continue, now_ms);
    return;
  }
  if (HasBody(req) && !TakesBody(req)) {
    // GET/HEAD/DELETE/... with a body: skip it, then dispatch, so the
    // handler never sees a body it has no use for.
    discard_body_ = true;
    dispatch_at_end_ = true;
  } else {
    dispatched_ = true;
    handler_.OnRequest(*this, req);
    if (!dispatched_ || state_ != State::kBody) return;  // answered (or closed) already
  }
  // A handler that paused the body in OnRequest (held until it has room for
  // it) has not accepted it yet: the 100 waits for ResumeBody.
  if (!body_paused_) SendContinueIfAwaited();
}

// "100 Continue" tells a client that sent Expect: 100-continue to send its
// body (RFC 9110 §10.1.1): queued once per request, when the body is first
// wanted, never after the request was answered.
void Connection::SendContinueIfAwaited() {
  if (state_ != State::kBody || continue_sent_ || answered_) return;
  const Request& req = parser_->request();
  if (!req.expect_continue || !HasBody(req)) return;
  out_.Copy(k100Continue);
  continue_sent_ = true;
  if (counters_) CountResponse(*counters_, 100, kNoLatency);
}

void Connection::OnMessageEnd(uint64_t now_ms) {
  if (dispatch_at_end_) {
    dispatch_at_end_ = false;
    discard_body_ = false;
    state_ = State::kAwaitAnswer;
    dispatched_ = true;
    handler_.OnRequest(*this, parser_->request());
    if (dispatched_ && state_ == State::kAwaitAnswer) handler_.OnBodyEnd(*this, now_ms);
    return;
  }
  if (dispatched_) {
    state_ = State::kAwaitAnswer;
    handler_.OnBodyEnd(*this, now_ms);
    return;
  }
  FinishRequest(now_ms);  // answered before its body ended; the body is now skipped
}

void Connection::OnParseError(uint64_t now_ms) {
  const bool have_request = state_ == State::kBody;
  AbortHandler();
  if (answered_) {
    Close();  // one request never gets two responses
    return;
  }
  refused_first_ = !have_request && requests_served_ == 0 && parser_->error().status == 400;
  CoreRespond(parser_->error(), have_request ? &parser_->request() : nullptr, true, now_ms);
}

void Connection::FinishRequest(uint64_t now_ms) {
  state_ = State::kHead;
  answered_ = dispatched_ = discard_body_ = dispatch_at_end_ = continue_sent_ = body_paused_ = false;
  idle_since_ms_ = now_ms;
  trimmed_ = false;
  head_timer_armed_ = UnparsedBytes() > 0;
  if (head_timer_armed_) head_start_ms_ = now_ms;
  // With idle_trim_ms 0 (the default) the parser goes back to the thread's
  // spares now and the output block once it is sent; otherwise they stay
  // for the next request until the trim deadline (DeadlineMs).
  if (limits_.idle_trim_ms == 0) ReleaseIdleMemory();
}

void Connection::AbortHandler() {
  if (!dispatched_) return;
  dispatched_ = false;
  handler_.OnAbort(*this);
}

void Connection::Close() {
  AbortHandler();
  state_ = State::kClosing;
  body_paused_ = false;
  in_.Clear();
  feeding_ = {};
}

bool Connection::BodyPending() const {
  return state_ == State::kBody && HasBody(parser_->request()) && parser_->InBody();
}

// ---------------------------------------------------------------- answers

void Connection::Respond(const Response& response, uint64_t now_ms) {
  assert(dispatched_ && "Respond without an unanswered request (twice, or after OnAbort)");
  if (!dispatched_) return;
  dispatched_ = false;
  const Request& req = parser_->request();
  bool close = response.close || !req.keep_alive;
  if (BodyPending()) {
    // Answered before the body ended. If the client still waits for
    // 100 Continue it may never send the body, or send it much later:
    // close. Otherwise skip the rest of the body and keep the connection.
    if (req.expect_continue && !continue_sent_) close = true;
    discard_body_ = true;
    body_paused_ = false;
  }
  QueueResponse(response, &req, close, false, {}, now_ms);
  answered_ = true;
  if (close) {
    Close();
    return;
  }
  if (state_ == State::kAwaitAnswer) FinishRequest(now_ms);
  Drive(now_ms);  // next pipelined request, or the rest of a skipped body
}

void Connection::CoreRespond(const ParseError& error, const Request* request, bool close, uint64_t now_ms) {
  Response r;
  if (error.status == 200) {
    r.status = 200;  // "OPTIONS *": no content, Content-Length: 0
  } else {
    r = ProblemResponse(error.status, error.detail,
                        error.has_limit ? std::optional<uint64_t>(error.limit) : std::nullopt);
  }
  if (counters_ && error.status >= 400) Bump(counters_->protocol_errors);
  r.allow = error.allow;
  r.location = error.location;
  // RFC 9110 §12.5.3: a 415 for a content coding names the acceptable ones.
  if (error.status == 415) r.AddHeader("Accept-Encoding", "identity");
  handler_.DecorateCoreResponse(*this, request, r);
  if (request && !request->keep_alive) close = true;
  QueueResponse(r, request, close, true, error.status == 200 ? std::string_view() : error.detail, now_ms);
  answered_ = true;
  if (close) Close();
}

void Connection::QueueResponse(const Response& r, const Request* request, bool close, bool by_core,
                               std::string_view detail, uint64_t now_ms) {
  // A HEAD is answered without a body, also when the core refuses it before
  // its head is complete.
  const bool head_request =
      request ? request->method == Method::kHead : (parser_ != nullptr && parser_->head_method());
  const bool bodiless_status = r.status < 200 || r.status == 204 || r.status == 304;
  HeadFraming framing;
  framing.keep_alive = !close;
  framing.http10 = request && request->http_minor == 0;
  framing.keepalive_timeout_s = limits_.keepalive_timeout_ms / 1000;
  // RFC 9110 §8.6: no Content-Length on 1xx and 204; on 304 it would have
  // to be the 200's length, which we do not know here: omitted.
  framing.send_length = !bodiless_status && !(head_request && r.head_without_length);
  const uint64_t body_length = r.stream ? r.stream_length : r.body.size();
  framing.content_length = (head_request && r.head_content_length) ? *r.head_content_length : body_length;
  // The one clock reading of a response: its latency's end and its Date's
  // monotonic time (the wall clock is read once per second, wire.h).
  const uint64_t now_us = MonotonicMicros();
  framing.now_us = now_us;

  const bool was_empty = !HasOutput();
  const size_t head_bound = ResponseHeadBound(r);
  if (head_bound <= OutputQueue::kBlockBytes) {
    // Written straight into the output block.
    out_.Commit(WriteResponseHead(out_.Reserve(head_bound), r, framing));
  } else {
    thread_local std::string head;
    head.clear();
    AppendResponseHead(&head, r, framing);
    out_.Copy(head);
  }
  const uint64_t body_begin = out_.Queued();
  uint64_t body_bytes = 0;
  if (!head_request && !bodiless_status && r.stream) {
    assert(!stream_ && "a streamed body is queued only after the previous one was pulled whole");
    if (r.stream_length > 0) stream_ = std::make_unique<OutgoingStream>(OutgoingStream{r.stream, r.stream_length});
    body_bytes = r.stream_length;
  } else if (!head_request && !bodiless_status && !r.body.empty()) {
    if (r.body_holder && r.body.size() > kCopyBodyMaxBytes) {
      out_.Reference(r.body, r.body_holder);  // zero-copy
    } else {
      out_.Copy(r.body);
    }
    body_bytes = r.body.size();
  }
  if (was_empty) send_progress_ms_ = now_ms;
  if (request) ++requests_served_;

  const uint64_t latency_us = (request && now_us >= request->start_us) ? now_us - request->start_us : 0;
  if (counters_) CountResponse(*counters_, r.status, request ? latency_us : kNoLatency);
  ResponseRecord record;
  record.request = request;
  record.response = &r;
  if (request) {
    record.method = request->method_name;
    record.target = request->target;
    record.protocol = request->http_minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
  } else if (parser_) {
    record.method = parser_->method_token();
    record.target = parser_->target_so_far();
    record.protocol = parser_->protocol_so_far();
  }
  record.status = r.status;
  record.body_bytes = body_bytes;
  record.latency_us = latency_us;
  record.by_core = by_core;
  record.head = head_request;
  record.detail = detail;
  record.queued_us = now_us;
  std::string* notes = out_.MarkNotes();
  const size_t note_begin = notes->size();
  record.end_note = notes;
  handler_.OnResponded(*this, record);
  if (notes->size() > note_begin) out_.AddMark(body_begin, body_begin + body_bytes, note_begin);
  PullStream(now_ms);  // the first piece goes out with the head
}

// ---------------------------------------------------------------- output

// Pulls the next piece of the streamed body when the previous one was
// written whole. The piece is referenced, not copied; its chunk holds the
// stream, so the piece stays valid even after the stream is done.
void Connection::PullStream(uint64_t now_ms) {
  if (!stream_ || stream_->waiting || stream_->piece_out || output_abandoned_) return;
  std::string_view piece;
  switch (stream_->body->Next(&piece)) {
    case BodyStream::Pull::kPiece:
      assert(!piece.empty() && piece.size() <= stream_->left && "BodyStream broke its length");
      if (piece.empty() || piece.size() > stream_->left) break;  // treated as an error below
      if (!HasOutput()) send_progress_ms_ = now_ms;
      out_.Reference(piece, stream_->body);
      stream_->piece_out = true;
      stream_->left -= piece.size();
      if (stream_->left == 0) EndStream(now_ms);
      return;
    case BodyStream::Pull::kAgain:
      stream_->waiting = true;
      return;
    case BodyStream::Pull::kError:
      break;
  }
  // The body cannot be completed: what was queued goes out, then the
  // connection closes, so the client sees a body shorter than announced.
  EndStream(now_ms);
  Close();
}

void Connection::EndStream(uint64_t now_ms) {
  stream_.reset();
  // A pipelined request's header deadline starts once it can be served.
  if (head_timer_armed_) head_start_ms_ = now_ms;
}

// Reports the marked responses whose last byte was sent (all: every one
// still pending, with what of it was sent), oldest first. now_ms 0: the
// connection is being destroyed, read the clock.
void Connection::EndResponses(bool all, uint64_t now_ms) {
  OutputQueue::MarkView m;
  uint64_t end_us = 0;
  while (out_.FrontMark(&m)) {
    const uint64_t sent = out_.Sent() + out_.InFlightSent();
    if (!all && sent < m.end) return;
    if (end_us == 0) end_us = now_ms != 0 ? LatencyStartMicros(now_ms) : MonotonicMicros();
    ResponseEnd end;
    end.note = m.note;
    end.body_bytes_sent = sent <= m.body_begin ? 0 : std::min(sent, m.end) - m.body_begin;
    end.end_us = end_us;
    end.complete = sent >= m.end;
    handler_.OnResponseEnd(*this, end);
    out_.PopMark();
  }
}

void Connection::ResumeOutput(uint64_t now_ms) {
  if (!StreamWaiting()) return;
  stream_->waiting = false;
  PullStream(now_ms);
}

size_t Connection::GatherOutput(struct iovec* iov, size_t max_iov) const {
  if (output_abandoned_) return 0;
  return out_.Gather(iov, max_iov);
}

void Connection::ConsumeOutput(size_t bytes, uint64_t now_ms) {
  assert(!in_drive_ && "ConsumeOutput called from inside a Handler callback");
  if (counters_) Bump(counters_->bytes_out, bytes);
  if (output_abandoned_) return;
  assert(bytes <= out_.size());
  bytes = std::min(bytes, out_.size());
  if (bytes > 0) send_progress_ms_ = now_ms;
  const bool held = PipelinedHeld();
  out_.Consume(bytes);
  if (out_.HasMarks()) EndResponses(false, now_ms);
  // A pipelined request's header deadline starts once it can be served.
  if (held && !PipelinedHeld()) head_start_ms_ = now_ms;
  if (out_.empty() && state_ == State::kHead) {
    idle_since_ms_ = now_ms;
    trimmed_ = false;
  }
  // A stream's piece is always the last output chunk: once nothing is
  // pending, it was written whole and the next one may be produced.
  if (out_.empty() && stream_) stream_->piece_out = false;
  PullStream(now_ms);
  if (state_ == State::kHead) {
    if (limits_.idle_trim_ms == 0) ReleaseIdleMemory();
    Drive(now_ms);  // a pipelined request may have waited for the output to drain
  }
}

// ---------------------------------------------------------------- observers

bool Connection::WantsRead() const {
  if (state_ == State::kClosing || eof_) return false;
  if (out_.size() > limits_.max_buffered_output_bytes) return false;
  return UnparsedBytes() < limits_.max_buffered_input_bytes;
}

bool Connection::ShouldClose() const { return state_ == State::kClosing && !stream_; }

uint64_t Connection::DeadlineMs() const {
  uint64_t phase = 0;
  switch (state_) {
    case State::kHead:
      if (stream_ || PipelinedHeld()) break;  // still answering: only the send deadline runs
      if (head_timer_armed_) {
        phase = head_start_ms_ + limits_.header_timeout_ms;
      } else if (!HasOutput()) {
        phase = idle_since_ms_ + limits_.keepalive_timeout_ms;
        if (!trimmed_ && HoldsIdleMemory()) phase = std::min(phase, idle_since_ms_ + limits_.idle_trim_ms);
      }
      break;
    case State::kBody:
      if (!(body_paused_ && dispatched_ && !discard_body_)) phase = body_last_ms_ + limits_.body_timeout_ms;
      break;
    case State::kAwaitAnswer:
    case State::kClosing:
      break;
  }
  // A stream waiting for its producer with nothing pending waits for the
  // server, not the client (a piece is asked for only once the previous one
  // was written whole): no send deadline then (response.h, kAgain).
  uint64_t send = HasOutput() ? send_progress_ms_ + limits_.send_timeout_ms : 0;
  if (phase == 0) return send;
  if (send == 0) return phase;
  return std::min(phase, send);
}

void Connection::OnTimer(uint64_t now_ms) {
  assert(!in_drive_);
  uint64_t deadline = DeadlineMs();
  if (deadline == 0 || now_ms < deadline) return;
  if (TrimDue(now_ms) && now_ms < idle_since_ms_ + limits_.keepalive_timeout_ms) {
    ReleaseIdleMemory();  // idle a while: give the memory back, keep the connection
    trimmed_ = true;      // once per idle period, whatever could be freed
    return;
  }
  if (counters_) Bump(counters_->timeouts);
  if (HasOutput() && now_ms >= send_progress_ms_ + limits_.send_timeout_ms) {
    // The peer does not read. Keep the bytes (a write may still reference
    // them) but stop offering them, and close now.
    output_abandoned_ = true;
    stream_.reset();
    EndResponses(true, now_ms);
    Close();
    return;
  }
  if (stream_) return;  // only the send deadline runs while a body streams
  // A 408 names the setting that ran out and its value ("limit"), as the
  // limits' refusals do.
  ParseError timeout;
  timeout.status = 408;
  timeout.has_limit = true;
  switch (state_) {
    case State::kHead:
      if (head_timer_armed_) {
        timeout.detail = "The request head did not arrive within --header-timeout-ms.";
        timeout.limit = limits_.header_timeout_ms;
        CoreRespond(timeout, nullptr, true, now_ms);
      } else {
        Close();  // idle keep-alive expired: silent
      }
      break;
    case State::kBody: {
      AbortHandler();
      if (answered_) {
        Close();
      } else {
        timeout.detail = "No body bytes of the request arrived within --body-timeout-ms.";
        timeout.limit = limits_.body_timeout_ms;
        CoreRespond(timeout, &parser_->request(), true, now_ms);
      }
      break;
    }
    case State::kAwaitAnswer:
    case State::kClosing:
      break;
  }
}

// ---------------------------------------------------------------- memory

void Connection::PauseBody() {
  if (state_ == State::kBody && dispatched_) body_paused_ = true;
}

void Connection::ResumeBody(uint64_t now_ms) {
  if (!body_paused_) return;
  body_paused_ = false;
  body_last_ms_ = now_ms;
  SendContinueIfAwaited();  // a body held since its head is wanted now
  Drive(now_ms);
}

bool Connection::HoldsIdleMemory() const {
  return parser_ != nullptr || in_.HoldsMemory() || out_.HoldsIdleMemory();
}

// Idle between requests, nothing to send, and holding memory it could free.
bool Connection::TrimDue(uint64_t now_ms) const {
  return state_ == State::kHead && !stream_ && !head_timer_armed_ && !HasOutput() && !trimmed_ &&
         HoldsIdleMemory() &&
         now_ms >= idle_since_ms_ + limits_.idle_trim_ms;
}

void Connection::ReleaseIdleMemory() {
  if (state_ != State::kHead || UnparsedBytes() > 0 || stream_) return;
  if (parser_ && !parser_->InHead() && !parser_->InBody()) Parser::GiveBack(std::move(parser_));
  in_.Release();
  out_.ReleaseIdle();
}

size_t Connection::MemoryFootprint() const {
  size_t bytes = sizeof(*this);
  if (parser_) bytes += sizeof(Parser) + parser_->HeapBytes();
  bytes += in_.HeapBytes();
  bytes += out_.HeapBytes();
  return bytes;
}

}  // namespace kingx::http
