// The clock of the HTTP core and of the I/O layers that drive it.
//
// MonotonicMicros: CLOCK_MONOTONIC in microseconds, what request latency is
// measured with (a cached GET takes microseconds; deadlines need only
// milliseconds).
//
// ReadClockMs: the same clock in milliseconds, the now_ms an I/O layer
// passes to every Connection call (tests drive now_ms by hand instead). It
// keeps its reading, in microseconds, as the calling thread's latest, so
// that LatencyStartMicros can start a request's latency there instead of
// reading the clock again: one reading per event (a poll phase's reads, a
// thread's recv) serves the deadlines and the latency of every request whose
// head that event completes, as libuv's uv_now and nginx's cached time serve
// a loop pass.
//
// LatencyStartMicros(now_ms): where the latency of a request whose head was
// completed by a Connection call given now_ms starts: the thread's latest
// ReadClockMs reading when now_ms is its millisecond (that reading, or an
// earlier one of the same millisecond, is where now_ms came from: the
// request's bytes were being handled from then on), else a new reading (a
// now_ms driven by hand, or from another clock). Never later than the call.
//
// Any thread (the latest reading is per thread); never fail; no allocation.
#pragma once

#include <time.h>

#include <cstdint>

namespace kingx::http {

namespace clock_detail {
// The calling thread's latest ReadClockMs reading, microseconds (0: none).
inline thread_local uint64_t latest_us = 0;
}  // namespace clock_detail

inline uint64_t MonotonicMicros() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

inline uint64_t ReadClockMs() {
  const uint64_t us = MonotonicMicros();
  clock_detail::latest_us = us;
  return us / 1000;
}

inline uint64_t LatencyStartMicros(uint64_t now_ms) {
  const uint64_t us = clock_detail::latest_us;
  return us != 0 && us / 1000 == now_ms ? us : MonotonicMicros();
}

}  // namespace kingx::http
