// RequestIds: the X-Request-Id every response of a KvService carries.
//
// A request that brings a usable X-Request-Id (1..128 printable ASCII bytes,
// no space: it goes into a header and a log line) has it echoed; any other
// gets 32 lowercase hex digits drawn from the generator's seed and a counter:
// two 64-bit halves, each from its own sequence and its own mixing function,
// so within one generator neither half repeats (2^64 calls), and a half of
// one id equals a half of another only by chance, never by construction.
//
// Threading: one generator per KvService, used on that service's thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace kingx {

class RequestIds {
 public:
  // Room For needs in `out`.
  static constexpr size_t kMaxBytes = 128;

  explicit RequestIds(uint64_t seed);

  // Writes the id of a request whose X-Request-Id header is `client_id`
  // (empty when absent) into out (kMaxBytes bytes); returns its length.
  size_t For(std::string_view client_id, char* out);

 private:
  uint64_t high_start_;  // start of the first half's sequence
  uint64_t low_start_;   // start of the second half's sequence
  uint64_t counter_ = 0;
};

}  // namespace kingx
