// ValueStream and StreamWaiters (see value_stream.h).
#include "src/kv/value_stream.h"

#include <algorithm>
#include <cassert>

#include "src/conf/log.h"
#include "src/kv/kv_service.h"

namespace kingx {

// ---------------------------------------------------------------- StreamWaiters

StreamWaiters::~StreamWaiters() {
  for (ValueStream* s = head_; s != nullptr;) {
    ValueStream* next = s->next_;
    s->parked_ = false;
    s->prev_ = s->next_ = nullptr;
    s = next;
  }
}

void StreamWaiters::Park(ValueStream* s) {
  assert(!s->parked_);
  s->parked_ = true;
  s->prev_ = tail_;
  s->next_ = nullptr;
  if (tail_ != nullptr) tail_->next_ = s;
  else head_ = s;
  tail_ = s;
  ++count_;
}

void StreamWaiters::Unlink(ValueStream* s) {
  if (!s->parked_) return;
  if (s->prev_ != nullptr) s->prev_->next_ = s->next_;
  else head_ = s->next_;
  if (s->next_ != nullptr) s->next_->prev_ = s->prev_;
  else tail_ = s->prev_;
  s->prev_ = s->next_ = nullptr;
  s->parked_ = false;
  --count_;
}

size_t StreamWaiters::Resume(uint64_t now_ms, WakeFn wake, void* io) {
  size_t resumed = 0;
  while (head_ != nullptr) {
    ValueStream* s = head_;
    if (!s->Reserve()) break;  // first come, first served: the others wait behind it
    Unlink(s);
    http::Connection& conn = s->conn_;
    // Pulls the next piece, which may finish (and free) the stream.
    conn.ResumeOutput(now_ms);
    if (wake != nullptr) wake(io, conn);
    ++resumed;
  }
  return resumed;
}

bool StreamWaiters::HeadFits() const { return head_ != nullptr && head_->WouldReserve(); }

uint64_t StreamWaiters::HeadNeed() const { return head_ == nullptr ? 0 : std::max<uint64_t>(head_->Needed(), 1); }

// ---------------------------------------------------------------- ValueStream

ValueStream::ValueStream(engine::Value value, KvBackend* backend, ByteBudget& budget, StreamWaiters& waiters,
                         http::Connection& conn)
    : value_(std::move(value)),
      decoder_(value_.codec, value_.stored, value_.raw_len),
      raw_len_(value_.raw_len),
      backend_(backend),
      budget_(budget),
      waiters_(waiters),
      conn_(conn) {}

ValueStream::~ValueStream() {
  waiters_.Unlink(this);
  budget_.Release(reserved_);
}

uint64_t ValueStream::Needed() const { return std::min<uint64_t>(raw_len_, engine::kFrameRawBytes); }

// The piece buffer's reservation, taken once and kept until destruction.
bool ValueStream::Reserve() {
  if (reserved_ > 0) return true;
  const uint64_t n = std::max<uint64_t>(Needed(), 1);
  if (!budget_.TryReserve(n)) return false;
  reserved_ = n;
  return true;
}

bool ValueStream::WouldReserve() const { return reserved_ > 0 || budget_.WouldFit(std::max<uint64_t>(Needed(), 1)); }

engine::Status ValueStream::Decode() {
  std::string_view piece;
  engine::Status s = decoder_.Next(engine::kFrameRawBytes, &buf_, &piece);
  if (s.ok() && piece.empty()) s = engine::Status::Corruption("the value ended before its recorded size");
  if (s.Is(engine::Code::kIOError) && backend_ != nullptr) backend_->ReportReadFault(value_);
  if (!s.ok()) return s;
  // A frame of older data larger than a piece needed a streaming context.
  const uint64_t held = std::max<uint64_t>(Needed(), 1) + decoder_.ContextBytes();
  if (held > reserved_) {
    budget_.Charge(held - reserved_);
    reserved_ = held;
  }
  primed_ = piece;
  return s;
}

engine::Status ValueStream::Prime() {
  if (!Reserve()) return engine::Status::OK();
  engine::Status s = Decode();
  has_primed_ = s.ok();
  return s;
}

http::BodyStream::Pull ValueStream::Next(std::string_view* piece) {
  if (!has_primed_) {
    if (!Reserve()) {
      waiters_.Park(this);
      return Pull::kAgain;
    }
    engine::Status s = Decode();
    if (!s.ok()) {
      KINGX_LOG_ERROR("a stored value could not be read or decoded after %llu of its %llu bytes were sent: %s",
                      static_cast<unsigned long long>(decoder_.produced()),
                      static_cast<unsigned long long>(raw_len_), s.ToString().c_str());
      return Pull::kError;
    }
  }
  has_primed_ = false;
  *piece = primed_;
  return Pull::kPiece;
}

}  // namespace kingx
