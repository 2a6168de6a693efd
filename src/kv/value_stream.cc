// ValueStream and StreamWaiters (see value_stream.h).
#include "src/kv/value_stream.h"

#include <algorithm>
#include <cassert>

#include "src/conf/log.h"
#include "src/kv/kv_service.h"

namespace kingx {

// ---------------------------------------------------------------- StreamWaiters

struct StreamWait {
  StreamWaiters::Waiter waiter;
  StreamWait* prev = nullptr;
  StreamWait* next = nullptr;
};

StreamWaiters::~StreamWaiters() {
  for (StreamWait* e = head_; e != nullptr;) {
    StreamWait* next = e->next;
    delete e;
    e = next;
  }
}

void StreamWaiters::Park(Waiter w) {
  StreamWait* e = new StreamWait{std::move(w), tail_, nullptr};
  if (tail_ != nullptr) tail_->next = e;
  else head_ = e;
  tail_ = e;
  ++count_;
}

void StreamWaiters::Unlink(StreamWait* e) {
  if (e->prev != nullptr) e->prev->next = e->next;
  else head_ = e->next;
  if (e->next != nullptr) e->next->prev = e->prev;
  else tail_ = e->prev;
  --count_;
}

void StreamWaiters::Cancel(const http::Connection& conn) {
  for (StreamWait* e = tail_; e != nullptr; e = e->prev) {
    if (e->waiter.conn == &conn) {
      Unlink(e);
      delete e;
      return;
    }
  }
}

bool StreamWaiters::TakeFitting(Waiter* out) {
  if (head_ == nullptr || !head_->waiter.stream->TryReserve()) return false;
  StreamWait* e = head_;
  Unlink(e);
  *out = std::move(e->waiter);
  delete e;
  return true;
}

bool StreamWaiters::TakeExpired(uint64_t now_ms, uint64_t give_up_ms, Waiter* out) {
  if (head_ == nullptr || now_ms < head_->waiter.since_ms || now_ms - head_->waiter.since_ms < give_up_ms) {
    return false;
  }
  StreamWait* e = head_;
  Unlink(e);
  *out = std::move(e->waiter);
  delete e;
  return true;
}

bool StreamWaiters::HeadFits() const { return head_ != nullptr && head_->waiter.stream->WouldReserve(); }

uint64_t StreamWaiters::HeadNeed() const { return head_ == nullptr ? 0 : head_->waiter.stream->Needed(); }

uint64_t StreamWaiters::HeadSinceMs() const { return head_ == nullptr ? 0 : head_->waiter.since_ms; }

// ---------------------------------------------------------------- ValueStream

ValueStream::ValueStream(engine::Value value, KvBackend* backend, ByteBudget& budget)
    : value_(std::move(value)),
      decoder_(value_.codec, value_.stored, value_.raw_len),
      raw_len_(value_.raw_len),
      backend_(backend),
      budget_(budget) {}

ValueStream::~ValueStream() { budget_.Release(reserved_); }

uint64_t ValueStream::Needed() const { return std::max<uint64_t>(std::min<uint64_t>(raw_len_, engine::kFrameRawBytes), 1); }

bool ValueStream::TryReserve() {
  if (reserved_ > 0) return true;
  const uint64_t n = Needed();
  if (!budget_.TryReserve(n)) return false;
  reserved_ = n;
  return true;
}

bool ValueStream::WouldReserve() const { return reserved_ > 0 || budget_.WouldFit(Needed()); }

engine::Status ValueStream::Decode() {
  std::string_view piece;
  engine::Status s = decoder_.Next(engine::kFrameRawBytes, &buf_, &piece);
  if (s.ok() && piece.empty()) s = engine::Status::Corruption("the value ended before its recorded size");
  if (s.Is(engine::Code::kIOError) && backend_ != nullptr) backend_->ReportReadFault(value_);
  if (!s.ok()) return s;
  // A frame of older data larger than a piece needed a streaming context.
  const uint64_t held = Needed() + decoder_.ContextBytes();
  if (held > reserved_) {
    budget_.Charge(held - reserved_);
    reserved_ = held;
  }
  primed_ = piece;
  return s;
}

engine::Status ValueStream::Prime() {
  assert(reserved_ > 0 && "Prime before TryReserve");
  engine::Status s = Decode();
  has_primed_ = s.ok();
  return s;
}

http::BodyStream::Pull ValueStream::Next(std::string_view* piece) {
  if (!has_primed_) {
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
