// MonotonicMicros: the clock the HTTP core measures request latency with.
//
// Timeouts run on the millisecond clock the I/O layer passes to every
// Connection call (tests drive it by hand); latency needs finer steps than
// that (a cached GET takes tens of microseconds), so it is read here, from
// CLOCK_MONOTONIC. Any thread; never fails.
#pragma once

#include <time.h>

#include <cstdint>

namespace kingx::http {

inline uint64_t MonotonicMicros() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

}  // namespace kingx::http
