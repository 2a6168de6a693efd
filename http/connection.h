// Connection: the HTTP/1.1 protocol core of one client connection.
//
// Bytes in, bytes out: the I/O layer (libuv worker or thread-pool worker)
// owns the socket and the clock; it feeds received bytes with Feed, writes
// what GatherOutput returns with one writev and reports it with
// ConsumeOutput, arms a timer at DeadlineMs and calls OnTimer when it fires.
// The Connection parses (llhttp, strict), enforces Limits, routes, answers
// protocol errors itself, and hands valid routed requests to a Handler one
// at a time, in order.
//
// Threading: a Connection and its Handler callbacks run on one thread at a
// time (the worker's loop thread, or the pool thread serving it). Every
// method, including Respond from a deferred completion, must be called on
// that thread. No method blocks, performs I/O, or throws.
//
// After any call (Feed, FeedEof, Respond, PauseBody, ResumeBody,
// ResumeOutput, ConsumeOutput, OnTimer) the I/O layer re-reads the
// observers HasOutput / WantsRead / ShouldClose / DeadlineMs (and Streaming,
// to tell a busy connection from an idle one) and acts on them.
//
// Request life cycle, as the Handler sees it:
//   OnRequest(head) → [OnBody(piece)]* → OnBodyEnd → ... → Respond
// Only PUT /v1/kv/{key} and POST /admin/compact receive their body; any other
// request that carries one has it read and dropped by the core before
// OnRequest. The handler may Respond at any point after OnRequest (inside a
// callback or later). If it answers before the whole body was received:
// when the client still waits for "100 Continue" (Expect, and OnRequest
// answered at once or paused the body) the core sends the answer with
// "Connection: close" and closes, so the client never sends the body (early
// 412/413, a held upload's 503); otherwise the
// rest of the body is read and dropped and the connection stays usable.
// OnAbort replaces everything that has not happened yet when the connection
// dies first.
#pragma once

#include <sys/uio.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "http/counters.h"
#include "http/http_limits.h"
#include "http/input_buffer.h"
#include "http/output_queue.h"
#include "http/request.h"
#include "http/response.h"

namespace kingx::http {

class Connection;
class Parser;
struct ParseError;

// What Handler::OnResponded reports: one per final response, whoever wrote
// it (the handler, or the core for a refused request). Views are valid
// during the call only.
struct ResponseRecord {
  // The request, or null when the core refused bytes it could not parse into
  // a head (framing errors, limits, header timeout).
  const Request* request = nullptr;
  // The response as it was queued (its headers, e.g. X-Request-Id).
  const Response* response = nullptr;
  // What is known of the request line, also without `request`: the method
  // token and the request-target as far as they were received ("" when
  // nothing was), and the protocol ("HTTP/1.1", "HTTP/1.0", "" unknown).
  std::string_view method;
  std::string_view target;
  std::string_view protocol;
  int status = 0;
  uint64_t body_bytes = 0;    // body bytes queued, or to be streamed (0 for HEAD/204/304)
  uint64_t latency_us = 0;    // head complete to response queued (0 without request)
  uint64_t queued_us = 0;     // when it was queued (MonotonicMicros)
  bool by_core = false;       // written by the core, not by Handler code
  bool head = false;          // answers a HEAD: sent without its body
  // by_core refusals: why (the problem detail); "" otherwise.
  std::string_view detail;
  // Bytes the handler appends here come back with its OnResponseEnd, once
  // the response ended; nothing appended: no OnResponseEnd. Kept in the
  // connection's recycled output buffers (output_queue.h): no allocation
  // once the thread is warm.
  std::string* end_note = nullptr;
};

// What Handler::OnResponseEnd reports: a response that got an end_note has
// ended, because its last byte was handed to the kernel or because the
// connection ended first (send timeout, peer gone, I/O error, close).
struct ResponseEnd {
  std::string_view note;        // what OnResponded appended to end_note; valid during the call
  uint64_t body_bytes_sent = 0; // bytes of its body handed to the kernel (headers excluded)
  uint64_t end_us = 0;          // when it ended (MonotonicMicros clock; the event's reading)
  bool complete = false;        // every byte of it was handed over
};

// Implemented by the server (src/). One Handler may serve many Connections.
// Callbacks are made from inside Connection methods; a callback may call
// Respond, PauseBody and ResumeBody on that Connection, but must not call
// Feed, FeedEof, ConsumeOutput, OnTimer, or destroy the Connection.
class Handler {
 public:
  virtual ~Handler() = default;

  // A request head arrived, valid and routed (route/method allowed, key
  // decoded and within limits, preconditions parsed, body length within
  // Limits::max_body_bytes when known). Called for request N+1 only after
  // request N was answered. `request` stays valid until the handler calls
  // Respond for it or gets OnAbort (see request.h). The handler may Respond
  // now (e.g. a GET, or 412 when a precondition already fails) or later;
  // answering inside OnRequest is what lets an Expect: 100-continue request
  // be refused without its body.
  virtual void OnRequest(Connection& conn, const Request& request) = 0;

  // A piece of the (de-chunked) body, 1..Limits::body_part_bytes bytes,
  // valid during the call only. Not called once the request was answered.
  // Call conn.PauseBody() to stop further pieces (e.g. the write queue is
  // full) and conn.ResumeBody() when ready again. now_ms: the clock reading
  // the I/O layer passed with the bytes (Feed, ResumeBody, ...).
  virtual void OnBody(Connection& conn, std::span<const char> piece, uint64_t now_ms) = 0;

  // The body is complete (called right after OnRequest for a request without
  // a body). Called for every request not answered by then, so a deferred
  // GET also sees it. Not called if the request was already answered.
  // now_ms: as for OnBody.
  virtual void OnBodyEnd(Connection& conn, uint64_t now_ms) = 0;

  // The connection is going away (peer closed, I/O error, timeout, body
  // framing error, destruction) while a dispatched request has not been
  // answered. After this call the handler must not touch `conn` again and
  // must drop every reference to it and to the Request (e.g. mark its queued
  // write as orphaned: the write may still complete, nobody is told).
  virtual void OnAbort(Connection& conn) = 0;

  // Every response the core writes itself (a refusal, 408, the answer to
  // "OPTIONS *"), before it is serialized: the handler may add headers to
  // `response` (within Response::kMaxExtraHeaders), e.g. the request id it
  // would give an answer of its own. `request` is null when the head was not
  // complete. Must not call back into `conn`. Default: echo the client's
  // X-Request-Id (it passed the field-value checks: no CR or LF).
  virtual void DecorateCoreResponse(Connection& conn, const Request* request, Response& response) {
    (void)conn;
    if (request != nullptr && !request->x_request_id.empty()) {
      response.AddHeader("X-Request-Id", request->x_request_id);
    }
  }

  // A hint, before OnRequest: the key of a GET or HEAD of /v1/kv/{key} that
  // is being parsed on `conn` (plain keys only: no '%' escapes), once when
  // its request-target was read and once when its whole head was (`stage`),
  // before the head is checked: the request may still be refused, and its
  // OnRequest may never come. For work that makes the coming read cheaper
  // and changes nothing anyone can see (e.g. fetching the key's index slot
  // and record into the CPU cache). `key` is valid during the call only.
  // Must not call back into `conn`. Default: nothing.
  virtual void OnKeyHint(Connection& conn, std::string_view key, KeyHintStage stage) {
    (void)conn;
    (void)key;
    (void)stage;
  }

  // Every final response queued on `conn` (access log, tracing). Called
  // from Respond and from the core's own refusals; must not call back into
  // `conn`. Default: nothing.
  virtual void OnResponded(Connection& conn, const ResponseRecord& record) {
    (void)conn;
    (void)record;
  }

  // A response given an end_note in OnResponded ended (ResponseEnd): for
  // what can only be known then (an access log's body bytes sent and
  // request time). Called once per such response, in the order they were
  // queued: from ConsumeOutput when its last byte was reported written, from
  // OnTimer when a send timeout abandons the output, and from the
  // destructor for those still pending. Must not call back into `conn`.
  // Default: nothing.
  virtual void OnResponseEnd(Connection& conn, const ResponseEnd& end) {
    (void)conn;
    (void)end;
  }
};

class Connection {
 public:
  // A body with a holder (response.h) up to this size is copied beside its
  // head rather than referenced: the response goes out as one contiguous
  // piece, and the kernel's copy of it reads the output block the head was
  // just written to instead of touching the holder's memory again (for a
  // value served from a large mapped segment, a page of its own per
  // response, which the send would have to translate anew).
  static constexpr size_t kCopyBodyMaxBytes = 1024;

  // `handler`, `limits` and `counters` (may be null) must outlive the
  // Connection. now_ms: monotonic milliseconds (the same clock for every
  // call); arms the header deadline of the first request.
  Connection(Handler& handler, const Limits& limits, Counters* counters, uint64_t now_ms);
  // Calls handler.OnAbort if a dispatched request is still unanswered.
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // --- input (I/O layer) ---

  // Bytes received from the peer, in order. Always takes all of them: what
  // cannot be parsed now (a request is being handled, body paused) is
  // buffered and never dropped; the I/O layer should stop reading while
  // WantsRead() is false, which bounds that buffer. May call Handler
  // callbacks and produce output. Ignored once ShouldClose() is true.
  void Feed(std::span<const char> bytes, uint64_t now_ms);

  // The peer closed its sending side (read returned 0). A request in the
  // middle of its head or body is dropped (handler: OnAbort) and the
  // connection closes; complete requests already received are still
  // answered, then the connection closes.
  void FeedEof(uint64_t now_ms);

  // --- the handler's side ---

  // Answers the current request (exactly once per OnRequest; a second call
  // or a call after OnAbort is a programmer error, asserted). Serializes the
  // status line and headers (Date, Content-Length, Connection/Keep-Alive,
  // ETag, ...) into the output; the body is copied or referenced, see
  // response.h. For HEAD the body is omitted. Counts the response and its
  // latency (from request.start_us). Then dispatches the next pipelined
  // request, if any is buffered, which may call the handler again. A
  // response with a BodyStream is sent piece by piece: the next piece is
  // pulled once the previous one was written whole, and the next pipelined
  // request waits until the last piece was pulled.
  void Respond(const Response& response, uint64_t now_ms);

  // The BodyStream being sent answered kAgain and may have a piece now:
  // pull it. No-op otherwise. Not from inside a Handler callback.
  void ResumeOutput(uint64_t now_ms);

  // Stop / restart delivering OnBody pieces of the current request. While
  // paused, incoming bytes are buffered up to Limits::max_buffered_input_bytes
  // (then WantsRead() turns false) and the body timeout is not armed.
  // ResumeBody delivers what is buffered (calling OnBody/OnBodyEnd) before
  // returning. Both are no-ops when no body is in progress. PauseBody inside
  // OnRequest holds the body before it was accepted: a client that sent
  // Expect: 100-continue gets "100 Continue" only at ResumeBody (and never
  // when the request is answered while held; that answer closes).
  void PauseBody();
  void ResumeBody(uint64_t now_ms);
  // Bytes received and not parsed yet. Inside OnRequest, and while the body
  // is paused, they are what arrived after the part of the current request
  // already handed over: the rest of its body (all of it when this is at
  // least the body's remaining length) and any pipelined requests behind.
  size_t BufferedInputBytes() const { return UnparsedBytes(); }

  // --- output (I/O layer) ---

  // Fills up to max_iov entries with the pending output, in order: several
  // pipelined responses batched, each response's head and body adjacent.
  // Returns the number of entries filled (0 when !HasOutput()).
  // The bytes pointed to stay valid and unchanged until ConsumeOutput
  // reports them written, or the Connection is destroyed: appending more
  // output (Respond, Feed producing an error or 100 Continue) never moves
  // them, so an asynchronous writev (uv_write) may use them while the loop
  // keeps feeding. While such a write is in flight do not gather again
  // (the same bytes would be returned); after ConsumeOutput, gather the rest.
  size_t GatherOutput(struct iovec* iov, size_t max_iov) const;
  // `bytes` of the gathered output were written (a short write is fine;
  // bytes <= OutputBytes()). Releases body holders that are fully sent;
  // when everything is sent and the connection is idle, frees its buffers.
  // May dispatch a pipelined request that waited for the output to drain
  // (Handler callbacks). After the output was abandoned (send timeout) it
  // only counts the bytes.
  void ConsumeOutput(size_t bytes, uint64_t now_ms);
  // Some of the gathered output left for the peer, though the write that
  // carries it has not completed (so ConsumeOutput cannot be told yet): the
  // send deadline counts from now_ms. For an I/O layer whose asynchronous
  // write reports only its end.
  void NoteSendProgress(uint64_t now_ms) {
    if (HasOutput()) send_progress_ms_ = now_ms;
  }
  // Of the output gathered for the write in flight, `bytes` have left for
  // the peer so far: counted in the body bytes sent of the responses the
  // connection ends before that write completes (ConsumeOutput, which
  // reports the whole write, resets it).
  void NoteInFlightSent(size_t bytes) { out_.NoteInFlightSent(bytes); }
  bool HasOutput() const { return !out_.empty() && !output_abandoned_; }
  // Total bytes pending (for the I/O layer's own accounting).
  size_t OutputBytes() const { return out_.size(); }

  // --- what the I/O layer must do next ---

  // True while reading more from the socket is useful and allowed; false
  // while input is backed up (buffer over its limit, body paused with a full
  // buffer, output backed up) or the connection is closing.
  bool WantsRead() const;
  // True once the connection must be closed as soon as the output is
  // flushed (HasOutput() false): after "Connection: close", a framing error,
  // a timeout, EOF; not before a streamed body was pulled whole (or failed).
  // Once true it stays true and Feed is ignored. Closing
  // while the peer may still be sending body bytes can make its kernel
  // reset the connection before it reads the response: the I/O layer should
  // shutdown(SHUT_WR) and drain reads briefly (nginx's lingering close).
  bool ShouldClose() const;
  // True while a response body is still being produced by its BodyStream:
  // the connection is busy even while HasOutput() is false (the stream
  // answered kAgain and waits for ResumeOutput).
  bool Streaming() const { return stream_ != nullptr; }
  // Absolute deadline (now_ms clock) of the armed timer, 0 = none: the
  // header deadline (waiting for/reading a head; a pipelined request's runs
  // from when it can be served: not while the output before it is over
  // pipeline_output_bytes or streamed), the body deadline (reading a
  // body, not paused), the keep-alive idle deadline, or the send deadline
  // (output pending without progress; not while a streamed body waits for
  // ResumeOutput with nothing pending: that wait is the producer's),
  // whichever is earliest.
  uint64_t DeadlineMs() const;
  // Call when DeadlineMs() passed (calling early is harmless: nothing
  // happens). Header/body deadline: the handler's request (if any) is
  // aborted, 408 is queued (unless that request was already answered),
  // ShouldClose(). Idle keep-alive: ShouldClose() without a response. Send
  // deadline: the pending output is abandoned (HasOutput() turns false; its
  // memory is kept until destruction, so an in-flight write stays valid)
  // and ShouldClose(): close now.
  void OnTimer(uint64_t now_ms);

  // --- misc ---

  // Which resources this connection's listener serves (default kMain). Set
  // it before the first Feed.
  void SetListener(Listener listener) { listener_ = listener; }
  Listener listener() const { return listener_; }

  // Opaque pointer for the I/O layer or handler (e.g. its per-connection
  // state). Not used by the core.
  void* user_data() const { return user_data_; }
  void set_user_data(void* p) { user_data_ = p; }
  // Requests (parsed heads) that got their final response so far.
  uint64_t requests_served() const { return requests_served_; }
  // True once the core answered 400 to bytes that were not HTTP before any
  // request of this connection was served (the connection then closes): what
  // a client sending garbage gets, as opposed to a timeout, a limit or an
  // error after requests.
  bool RefusedBeforeAnyRequest() const { return refused_first_; }
  // Bytes of heap and object memory this Connection holds now: sizeof plus
  // the parser, input buffer and output blocks it holds. Idle between
  // requests (answer sent, nothing buffered; with idle_trim_ms, after the
  // trim) it holds none of them: sizeof(Connection).
  size_t MemoryFootprint() const;

 private:
  // The connection's life: one state; connection.cc documents transitions.
  enum class State : uint8_t {
    kHead,         // reading (or waiting for) the next request head
    kBody,         // a head was handled; its body (maybe empty) is being read
    kAwaitAnswer,  // body complete, OnBodyEnd called: waiting for Respond
    kClosing,      // no more requests: flush the output, then close
  };
  void Drive(uint64_t now_ms);
  void OnHead(uint64_t now_ms);
  void OnMessageEnd(uint64_t now_ms);
  void OnParseError(uint64_t now_ms);
  void FinishRequest(uint64_t now_ms);
  void SendContinueIfAwaited();
  void CoreRespond(const ParseError& error, const Request* request, bool close, uint64_t now_ms);
  void QueueResponse(const Response& response, const Request* request, bool close, bool by_core,
                     std::string_view detail, uint64_t now_ms);
  void Close();
  void AbortHandler();
  void ReleaseIdleMemory();
  bool HoldsIdleMemory() const;
  bool TrimDue(uint64_t now_ms) const;
  void PullStream(uint64_t now_ms);
  static void KeyHint(void* self, std::string_view key, KeyHintStage stage);
  void EndStream(uint64_t now_ms);
  void EndResponses(bool all, uint64_t now_ms);
  const Request& request() const;
  // The bytes not parsed yet: the buffered rest of in_, else Feed's own bytes.
  std::span<const char> Unparsed() const { return in_.empty() ? feeding_ : in_.Unparsed(); }
  size_t UnparsedBytes() const { return in_.size() + feeding_.size(); }
  bool StreamWaiting() const { return stream_ && stream_->waiting; }
  // A pipelined request is held back (Drive) until the output before it
  // drains under its limit.
  bool PipelinedHeld() const {
    return state_ == State::kHead &&
           out_.size() > std::min(limits_.pipeline_output_bytes, limits_.max_buffered_output_bytes);
  }
  void ConsumeInput(size_t n);
  bool BodyPending() const;

  Handler& handler_;
  const Limits& limits_;
  Counters* counters_;
  void* user_data_ = nullptr;
  Listener listener_ = Listener::kMain;
  std::unique_ptr<Parser> parser_;  // owns the current Request; null while idle (saves ~700 B)
  State state_ = State::kHead;
  bool dispatched_ = false;        // the handler holds the current request, unanswered
  bool answered_ = false;          // the current request got its final response
  bool discard_body_ = false;      // read and drop the rest of the current body
  bool dispatch_at_end_ = false;   // bodyless method with a body: dispatch once it is skipped
  bool continue_sent_ = false;     // "100 Continue" queued for the current request
  bool body_paused_ = false;       // PauseBody in effect
  bool trimmed_ = false;        // idle memory already released in this idle period
  bool in_drive_ = false;          // re-entrancy guard: Drive runs one loop at a time
  bool eof_ = false;               // FeedEof was called
  bool output_abandoned_ = false;  // send timeout: pending output is dropped, close now
  bool refused_first_ = false;     // RefusedBeforeAnyRequest
  bool head_timer_armed_ = true;   // header deadline running (from head_start_ms_)
  uint64_t head_start_ms_ = 0;
  uint64_t body_last_ms_ = 0;      // last body progress (body deadline base)
  uint64_t idle_since_ms_ = 0;     // keep-alive idle deadline base
  uint64_t send_progress_ms_ = 0;  // last output progress (send deadline base)
  uint64_t requests_served_ = 0;
  InputBuffer in_;                 // unparsed input Feed could not parse in place
  std::span<const char> feeding_;  // Feed's own bytes while they are parsed in place
  OutputQueue out_;                // pending output (output_queue.h)
  // A response body being produced piece by piece, from Respond until its
  // last piece is pulled (or the connection gives up on it).
  struct OutgoingStream {
    std::shared_ptr<BodyStream> body;
    uint64_t left = 0;       // its bytes not pulled yet
    bool waiting = false;    // it answered kAgain: wait for ResumeOutput
    bool piece_out = false;  // its last piece is not written whole yet
  };
  std::unique_ptr<OutgoingStream> stream_;  // null when no body streams
};

}  // namespace kingx::http
