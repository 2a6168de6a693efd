#include "engine/hash.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <vector>

using namespace kingx::engine;

namespace {

// Bytes that are not a repetition (a long input exercises every lane).
std::vector<unsigned char> Pattern(size_t n) {
  std::vector<unsigned char> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<unsigned char>((i * 2654435761u) >> 24);
  return v;
}

}  // namespace

TEST_CASE("checksums are XXH3-64 on both sides of the long-input threshold, whichever vector unit computes them",
          "[engine][hash]") {
  // XXH3-64 (seed 0) of Pattern's first n bytes, from the xxHash reference
  // code built for the baseline CPU: records on disk carry these values, so
  // the CPU-dispatched long-input path must give exactly them.
  const struct {
    size_t n;
    uint64_t xxh3;
  } kCases[] = {{0, 0x2d06800538d394c2ull},    {1, 0xc44bdff4074eecdbull},    {240, 0x5eb2467c8c9e3969ull},
                {241, 0x2d431e984c441f15ull},  {1024, 0xe99def1145f12936ull}, {(1 << 20) + 7, 0x5fd8fb33bee063b1ull}};
  const std::vector<unsigned char> bytes = Pattern((1 << 20) + 7);
  for (const auto& c : kCases) {
    INFO("length " << c.n);
    CHECK(Checksum64(bytes.data(), c.n) == c.xxh3);
  }
}

TEST_CASE("a checksum stream fed pieces short and long gives the one-shot checksum", "[engine][hash]") {
  // Short pieces are buffered by the inlined update, long ones go through the
  // dispatched one: both work on the same state.
  const std::vector<unsigned char> bytes = Pattern((1 << 20) + 7);
  const size_t pieces[] = {1, 239, 240, 241, 4096, 3, 65536, 17};
  Checksum64Stream s;
  size_t at = 0;
  for (size_t i = 0; at < bytes.size(); ++i) {
    const size_t n = std::min(pieces[i % (sizeof pieces / sizeof pieces[0])], bytes.size() - at);
    s.Update(bytes.data() + at, n);
    at += n;
  }
  CHECK(s.Digest() == 0x5fd8fb33bee063b1ull);
  CHECK(s.Digest() == Checksum64(bytes.data(), bytes.size()));
}
