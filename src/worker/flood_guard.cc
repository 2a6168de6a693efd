// FloodGuard (see flood_guard.h).
#include "src/worker/flood_guard.h"

#include <algorithm>
#include <bit>

namespace kingx {

void FloodGuard::OnConnectionEnd(bool garbage, uint64_t now_ms) {
  static_assert(kWindow == 64, "the window is the bits of one uint64_t");
  endings_ = (endings_ << 1) | (garbage ? 1 : 0);
  if (ended_ < kWindow) ++ended_;
  if (garbage) last_garbage_ms_ = now_ms;
}

bool FloodGuard::Flooding(uint64_t now_ms) const {
  // Half of a full window: a few bad requests among a handful of
  // connections are a client's mistakes, not a flood.
  return ended_ == kWindow && static_cast<uint32_t>(std::popcount(endings_)) * 2 >= kWindow &&
         now_ms < last_garbage_ms_ + kQuietMs;
}

uint32_t FloodGuard::AcceptsAllowed(uint64_t now_ms, uint64_t requests_answered) {
  const bool keepalive_busy = last_keepalive_ms_ != 0 && now_ms < last_keepalive_ms_ + kKeepAliveBusyMs;
  if (!Flooding(now_ms) || !keepalive_busy) {
    // The tokens start full at the next flood, counted from now.
    metered_ = false;
    tokens_ = kBurst;
    refill_ms_ = now_ms;
    refill_requests_ = requests_answered;
    return kUnmetered;
  }
  metered_ = true;
  uint64_t earned = 0;
  if (now_ms > refill_ms_) {
    earned += (now_ms - refill_ms_) / kAcceptEveryMs;
    refill_ms_ += (now_ms - refill_ms_) / kAcceptEveryMs * kAcceptEveryMs;
  }
  if (requests_answered > refill_requests_) {
    earned += (requests_answered - refill_requests_) / kRequestsPerAccept;
    refill_requests_ += (requests_answered - refill_requests_) / kRequestsPerAccept * kRequestsPerAccept;
  } else if (requests_answered < refill_requests_) {
    refill_requests_ = requests_answered;  // a counter that went back (not expected): start again
  }
  tokens_ = static_cast<uint32_t>(std::min<uint64_t>(kBurst, tokens_ + earned));
  return tokens_;
}

void FloodGuard::OnAccepted() {
  if (metered_ && tokens_ > 0) --tokens_;
}

uint64_t FloodGuard::MsUntilNextAccept(uint64_t now_ms) const {
  const uint64_t next = refill_ms_ + kAcceptEveryMs;
  return next > now_ms ? next - now_ms : 1;
}

}  // namespace kingx
