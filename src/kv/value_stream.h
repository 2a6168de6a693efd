// ValueStream: the body of a GET whose value is stored compressed, decoded
// one piece (one zstd frame, at most engine::kFrameRawBytes) at a time while
// the response is sent (http::BodyStream), so that neither the decoded value
// nor the work of decoding it is ever held or done at once.
//
// Memory: the stream reserves its piece buffer (and, for frames of older
// data larger than a piece, the decoder's streaming context) in the worker's
// response budget (--response-buffer-bytes) before it decodes anything, and
// gives it back when it is destroyed. When the budget has no room, Next
// answers kAgain and the stream waits in its StreamWaiters list; the owner
// calls StreamWaiters::Resume (KvService::Poke) and the first waiters that
// fit get their reservation and are resumed (Connection::ResumeOutput),
// first come first served. StreamWaiters::HeadFits tells the owner when a
// Resume would resume one (room was released), so that nothing polls while
// the budget stays full.
//
// Lifetime: the Connection owns the stream (through the Response); the
// stream unlinks itself from the waiters on destruction. The Value's holder
// (the segment mapping) lives as long as the stream.
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
#include "http/response.h"
#include "src/kv/byte_budget.h"

namespace kingx {

class KvBackend;
class ValueStream;

// The streams of one KvService waiting for room in the response budget.
class StreamWaiters {
 public:
  using WakeFn = void (*)(void* io, http::Connection& conn);

  StreamWaiters() = default;
  StreamWaiters(const StreamWaiters&) = delete;
  StreamWaiters& operator=(const StreamWaiters&) = delete;
  // The streams still waiting are forgotten (they unlink themselves later).
  ~StreamWaiters();

  // Gives waiting streams their reservation, oldest first, while the budget
  // has room, and resumes their connections (then wake(io, conn) when wake
  // is set). Returns how many were resumed.
  size_t Resume(uint64_t now_ms, WakeFn wake, void* io);
  // True when the oldest waiter would get its reservation now: Resume would
  // resume at least one. Waiters behind it wait for it (first come first
  // served), so nothing else needs asking.
  bool HeadFits() const;
  // The bytes the oldest waiter reserves once it gets room (0: none waits).
  uint64_t HeadNeed() const;
  bool empty() const { return head_ == nullptr; }
  size_t size() const { return count_; }

 private:
  friend class ValueStream;
  void Park(ValueStream* s);
  void Unlink(ValueStream* s);
  ValueStream* head_ = nullptr;
  ValueStream* tail_ = nullptr;
  size_t count_ = 0;
};

class ValueStream final : public http::BodyStream {
 public:
  // value: from Reader::Get(kStored) (codec, stored, raw_len, holder).
  // conn: the connection the response goes to (ResumeOutput target).
  // backend: where a read fault is reported (null: nowhere). backend,
  // budget and waiters must outlive the stream.
  ValueStream(engine::Value value, KvBackend* backend, ByteBudget& budget, StreamWaiters& waiters,
              http::Connection& conn);
  ~ValueStream() override;
  ValueStream(const ValueStream&) = delete;
  ValueStream& operator=(const ValueStream&) = delete;

  // Decodes the first piece now, if the budget has room, so that a value
  // that cannot be decoded is answered 500 before any byte is sent. OK also
  // when there was no room (the first Next waits instead); the decoder's
  // error otherwise.
  engine::Status Prime();

  Pull Next(std::string_view* piece) override;

  uint64_t length() const { return raw_len_; }

 private:
  friend class StreamWaiters;
  uint64_t Needed() const;
  bool Reserve();
  bool WouldReserve() const;  // Reserve() would succeed now
  engine::Status Decode();

  engine::Value value_;  // keeps the stored bytes' mapping alive
  engine::ValueDecoder decoder_;
  const uint64_t raw_len_;
  KvBackend* backend_;
  ByteBudget& budget_;
  StreamWaiters& waiters_;
  http::Connection& conn_;
  uint64_t reserved_ = 0;
  std::string buf_;
  std::string_view primed_;  // a piece decoded by Prime, not handed out yet
  bool has_primed_ = false;
  bool parked_ = false;
  ValueStream* prev_ = nullptr;  // StreamWaiters links
  ValueStream* next_ = nullptr;
};

}  // namespace kingx
