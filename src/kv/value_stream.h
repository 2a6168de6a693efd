// ValueStream: the body of a GET whose value is stored compressed, decoded
// one piece (one zstd frame, at most engine::kFrameRawBytes) at a time while
// the response is sent (http::BodyStream), so that neither the decoded value
// nor the work of decoding it is ever held or done at once.
//
// Memory: the stream reserves its piece buffer (and, for frames of older
// data larger than a piece, the decoder's streaming context) in the worker's
// response budget (--response-buffer-bytes) before anything of its response
// is sent (TryReserve), and gives it back when it is destroyed. When the
// budget has no room, the GET waits in its service's StreamWaiters,
// unanswered: no byte of its response is sent until its stream has its
// reservation, so the wait is the server's (bounded by the service's own
// give-up, answered 503), never counted against the client's send deadline,
// and a response once begun is never cut short for want of room. Once
// reserved, Next never waits.
//
// Lifetime: the Connection owns the stream (through the Response); a
// waiting one is owned by its StreamWaiters entry. The Value's holder (the
// segment mapping) lives as long as the stream.
//
// A page of the stored value that cannot be read (a failing disk or a
// segment truncated under its mapping: ValueDecoder answers kIOError) is
// reported to the backend (KvBackend::ReportReadFault: counted, logged, the
// segment marked): from Prime, before the head is sent (the caller answers
// 500); from Next, as an error that closes the connection, so that the
// client sees a short body, never wrong bytes.
//
// Threading: the thread of its KvService only; the budget may be shared.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "engine/compress.h"
#include "engine/reader.h"
#include "engine/status.h"
#include "http/connection.h"
#include "http/request.h"
#include "http/response.h"
#include "src/kv/byte_budget.h"

namespace kingx {

class KvBackend;
class ValueStream;
struct StreamWait;  // a parked waiter (value_stream.cc)

// The GETs of one KvService whose stream found no room in the response
// budget, oldest first: each waits unanswered (its Connection has nothing
// to send, so no send deadline runs) until its stream gets its reservation,
// first come first served, or its owner gives up on it.
class StreamWaiters {
 public:
  // A waiting GET: its stream (no reservation yet), the connection and the
  // request it answers (valid until answered or aborted: request.h), what
  // its response head carries (copied: the caller's views may not outlive
  // the wait), and since when it waits.
  struct Waiter {
    std::shared_ptr<ValueStream> stream;
    http::Connection* conn = nullptr;
    const http::Request* request = nullptr;
    uint64_t seq = 0;
    std::string content_type;
    uint64_t since_ms = 0;
  };

  StreamWaiters() = default;
  StreamWaiters(const StreamWaiters&) = delete;
  StreamWaiters& operator=(const StreamWaiters&) = delete;
  ~StreamWaiters();  // drops the waiters still parked (nobody is answered)

  // Parks w at the tail.
  void Park(Waiter w);
  // Drops the waiter of conn unanswered (its connection went away): a walk
  // from the newest, for connections known to wait.
  void Cancel(const http::Connection& conn);
  // The oldest waiter, removed into *out, when its stream got its
  // reservation now (ValueStream::TryReserve); false when none is parked or
  // the oldest finds no room (those behind it wait for it).
  bool TakeFitting(Waiter* out);
  // The oldest waiter, removed into *out, when it has waited at least
  // give_up_ms by now_ms; false otherwise.
  bool TakeExpired(uint64_t now_ms, uint64_t give_up_ms, Waiter* out);
  // True when the oldest waiter would get its reservation now: TakeFitting
  // would take it. Nothing else needs asking (first come first served).
  bool HeadFits() const;
  // The bytes the oldest waiter reserves once it gets room (0: none waits).
  uint64_t HeadNeed() const;
  // When the oldest began waiting (meaningless when empty()).
  uint64_t HeadSinceMs() const;
  bool empty() const { return head_ == nullptr; }
  size_t size() const { return count_; }

 private:
  void Unlink(StreamWait* e);
  StreamWait* head_ = nullptr;
  StreamWait* tail_ = nullptr;
  size_t count_ = 0;
};

class ValueStream final : public http::BodyStream {
 public:
  // value: from Reader::Get(kStored) (codec, stored, raw_len, holder).
  // backend: where a read fault is reported (null: nowhere). backend and
  // budget must outlive the stream.
  ValueStream(engine::Value value, KvBackend* backend, ByteBudget& budget);
  ~ValueStream() override;
  ValueStream(const ValueStream&) = delete;
  ValueStream& operator=(const ValueStream&) = delete;

  // Takes the piece buffer's reservation (kept until destruction) when the
  // budget has room for it; false (nothing reserved) otherwise. True at once
  // when it is held already.
  bool TryReserve();
  // TryReserve() would succeed now.
  bool WouldReserve() const;
  // The bytes TryReserve takes (at least 1).
  uint64_t Needed() const;

  // After TryReserve: decodes the first piece, so that a value that cannot
  // be decoded is answered 500 before any byte is sent. OK, or the
  // decoder's error.
  engine::Status Prime();

  Pull Next(std::string_view* piece) override;

  uint64_t length() const { return raw_len_; }

 private:
  engine::Status Decode();

  engine::Value value_;  // keeps the stored bytes' mapping alive
  engine::ValueDecoder decoder_;
  const uint64_t raw_len_;
  KvBackend* backend_;
  ByteBudget& budget_;
  uint64_t reserved_ = 0;
  std::string buf_;
  std::string_view primed_;  // a piece decoded by Prime, not handed out yet
  bool has_primed_ = false;
};

}  // namespace kingx
