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
// ConsumeOutput, OnTimer) the I/O layer re-reads the four observers
// HasOutput / WantsRead / ShouldClose / DeadlineMs and acts on them.
//
// Request life cycle, as the Handler sees it:
//   OnRequest(head) → [OnBody(piece)]* → OnBodyEnd → ... → Respond
// The handler may Respond at any point after OnRequest (inside a callback or
// later). If it answers before the whole body has been received, the core
// stops reading, sends the response with "Connection: close" and closes
// (this is how an early 412/413 on an Expect: 100-continue request works:
// the client never sends the body). OnAbort replaces everything that has not
// happened yet when the connection dies first.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "http/counters.h"
#include "http/limits.h"
#include "http/parser.h"
#include "http/request.h"
#include "http/response.h"

namespace kingx::http {

class Connection;

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
  // request N was answered. `request` stays valid until this request is
  // answered or aborted. The handler may Respond now (e.g. a GET, or 412
  // when a precondition already fails) or later.
  virtual void OnRequest(Connection& conn, const Request& request) = 0;

  // A piece of the (de-chunked) body, 1..Limits::body_part_bytes bytes,
  // valid during the call only. Not called once the request was answered.
  // Call conn.PauseBody() to stop further pieces (e.g. the write queue is
  // full) and conn.ResumeBody() when ready again.
  virtual void OnBody(Connection& conn, std::span<const char> piece) = 0;

  // The body is complete (called right after OnRequest for a request without
  // a body). Not called if the request was already answered.
  virtual void OnBodyEnd(Connection& conn) = 0;

  // The connection is going away (peer closed, I/O error, timeout, body
  // framing error, destruction) while a dispatched request has not been
  // answered. After this call the handler must not touch `conn` again and
  // must drop every reference to it and to the Request (e.g. mark its queued
  // write as orphaned: the write may still complete, nobody is told).
  virtual void OnAbort(Connection& conn) = 0;
};

class Connection {
 public:
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
  // latency (now_ms - request.start_ms). Then dispatches the next pipelined
  // request, if any is buffered, which may call the handler again.
  void Respond(const Response& response, uint64_t now_ms);

  // Stop / restart delivering OnBody pieces of the current request. While
  // paused, incoming bytes are buffered up to Limits::max_buffered_input_bytes
  // (then WantsRead() turns false) and the body timeout is not armed.
  // ResumeBody delivers what is buffered (calling OnBody/OnBodyEnd) before
  // returning. Both are no-ops when no body is in progress.
  void PauseBody();
  void ResumeBody(uint64_t now_ms);

  // --- output (I/O layer) ---

  // Fills up to max_iov entries with the pending output, in order: several
  // pipelined responses batched, each response's head and body adjacent.
  // Returns the number of entries filled (0 when !HasOutput()). The
  // pointed-to bytes stay valid and unchanged until the next ConsumeOutput,
  // Respond or destruction.
  size_t GatherOutput(struct iovec* iov, size_t max_iov) const;
  // `bytes` of the gathered output were written (a short write is fine;
  // bytes <= total pending). Releases body holders that are fully sent;
  // when everything is sent and the connection is idle, shrinks buffers.
  // May dispatch a pipelined request that waited for the output to drain.
  void ConsumeOutput(size_t bytes, uint64_t now_ms);
  bool HasOutput() const;
  // Total bytes pending (for the I/O layer's own accounting).
  size_t OutputBytes() const { return output_bytes_; }

  // --- what the I/O layer must do next ---

  // True while reading more from the socket is useful and allowed; false
  // while input is backed up (buffer over its limit, body paused with a full
  // buffer, output backed up) or the connection is closing.
  bool WantsRead() const;
  // True once the connection must be closed as soon as the output is
  // flushed (HasOutput() false): after "Connection: close", a framing error,
  // a timeout, EOF. Once true it stays true and Feed is ignored. Closing
  // while the peer may still be sending body bytes can make its kernel
  // reset the connection before it reads the response: the I/O layer should
  // shutdown(SHUT_WR) and drain reads briefly (nginx's lingering close).
  bool ShouldClose() const;
  // Absolute deadline (now_ms clock) of the armed timer, 0 = none: the
  // header deadline (waiting for/reading a head), the body deadline (reading
  // a body, not paused), the keep-alive idle deadline, or the send deadline
  // (output pending without progress), whichever is earliest.
  uint64_t DeadlineMs() const;
  // Call when DeadlineMs() passed (calling early is harmless: nothing
  // happens). Header/body deadline: the handler's request (if any) is
  // aborted, 408 is queued, ShouldClose(). Idle keep-alive or send deadline:
  // ShouldClose() without a response.
  void OnTimer(uint64_t now_ms);

  // --- misc ---

  // Opaque pointer for the I/O layer or handler (e.g. its per-connection
  // state). Not used by the core.
  void* user_data() const { return user_data_; }
  void set_user_data(void* p) { user_data_ = p; }
  // Requests fully answered on this connection so far.
  uint64_t requests_served() const { return requests_served_; }
  // Bytes of heap and object memory this Connection holds now (sizeof plus
  // buffer capacities). Idle keep-alive target: about 1 KiB or less.
  size_t MemoryFootprint() const;

 private:
  // The connection's life: one state, see connection.cc for transitions.
  enum class State : uint8_t {
    kHead,         // reading (or waiting for) the next request head
    kBody,         // request dispatched; its body is being read and delivered
    kAwaitAnswer,  // body complete (OnBodyEnd called); waiting for Respond
    kClosing,      // no more requests: flush output, then close
  };
  struct OutChunk {
    const char* ext = nullptr;  // external bytes (zero-copy body), or null
    size_t off = 0;             // offset into out_ when ext is null
    size_t len = 0;
    std::shared_ptr<const void> holder;
  };

  void Drive(uint64_t now_ms);
  bool StepHead(uint64_t now_ms);
  bool StepBody(uint64_t now_ms);
  void Dispatch(uint64_t now_ms);
  void Reject(int status, std::string_view detail, uint64_t limit_value, bool has_limit, uint64_t now_ms);
  void AbortHandler();
  void BecomeIdleOrNext(uint64_t now_ms);
  void AppendOutput(std::string_view bytes);
  void AppendExternal(std::string_view bytes, std::shared_ptr<const void> holder);
  void ReleaseIdleMemory();
  std::span<const char> Unparsed() const;
  void ConsumeInput(size_t n);

  Handler& handler_;
  const Limits& limits_;
  Counters* counters_;
  void* user_data_ = nullptr;
  Parser parser_;  // owns the current Request
  State state_ = State::kHead;
  bool dispatched_ = false;     // request_ is with the handler, unanswered
  bool body_paused_ = false;
  bool in_drive_ = false;       // re-entrancy guard: Drive runs one loop at a time
  bool close_after_output_ = false;
  bool eof_ = false;
  bool head_started_ = false;   // some byte of the current head was received
  uint64_t phase_deadline_ms_ = 0;  // header / body / idle deadline, 0 = none
  uint8_t phase_kind_ = 0;          // which of them (see connection.cc)
  uint64_t send_progress_ms_ = 0;   // last time output was created or consumed
  uint64_t requests_served_ = 0;
  std::string in_;        // buffered unparsed input is in_[in_pos_, end)
  size_t in_pos_ = 0;
  std::span<const char> feeding_;  // Feed's bytes while parsing them in place
  std::string out_;       // serialized heads and copied bodies
  std::vector<OutChunk> chunks_;
  size_t chunk_sent_ = 0;       // bytes of chunks_.front() already consumed
  size_t output_bytes_ = 0;
};

}  // namespace kingx::http
