// RequestIds: a usable client id is echoed, anything else gets a generated
// 32-hex-digit id that differs on every call.
#include "src/kv/request_id.h"

#include <catch2/catch.hpp>

#include <set>
#include <string>

namespace kingx {
namespace {

std::string IdFor(RequestIds& ids, std::string_view client_id) {
  char out[RequestIds::kMaxBytes];
  return std::string(out, ids.For(client_id, out));
}

bool IsHex32(const std::string& s) {
  if (s.size() != 32) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

TEST_CASE("a printable client X-Request-Id of up to 128 bytes is echoed", "[src][kv][request_id]") {
  RequestIds ids(1);
  CHECK(IdFor(ids, "abc-123") == "abc-123");
  const std::string longest(128, 'x');
  CHECK(IdFor(ids, longest) == longest);
}

TEST_CASE("an absent, too long or unprintable client id is replaced", "[src][kv][request_id]") {
  RequestIds ids(2);
  CHECK(IsHex32(IdFor(ids, "")));
  CHECK(IsHex32(IdFor(ids, std::string(129, 'x'))));
  CHECK(IsHex32(IdFor(ids, "has space")));
  CHECK(IsHex32(IdFor(ids, std::string("nul\0byte", 8))));
  CHECK(IsHex32(IdFor(ids, "caf\xc3\xa9")));
}

TEST_CASE("generated ids differ on every call", "[src][kv][request_id]") {
  RequestIds ids(3);
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(IdFor(ids, ""));
  CHECK(seen.size() == 1000);
}

TEST_CASE("no 64-bit half of a generated id is ever reused, in either position", "[src][kv][request_id]") {
  // Seeds with every pattern of low bits that mattered to the old mixing
  // (0x6a: the first half of id 7 was the second half of id 1), and a few
  // arbitrary ones.
  for (uint64_t seed : {uint64_t{0}, uint64_t{1}, uint64_t{0x6a}, uint64_t{0xff}, ~uint64_t{0},
                        uint64_t{0x8000000000000000}, uint64_t{0x123456789abcdef0}, uint64_t{0xdeadbeefcafef00d}}) {
    RequestIds ids(seed);
    std::set<std::string> halves;
    constexpr int kIds = 20000;
    for (int i = 0; i < kIds; ++i) {
      const std::string id = IdFor(ids, "");
      REQUIRE(IsHex32(id));
      halves.insert(id.substr(0, 16));
      halves.insert(id.substr(16));
    }
    INFO("seed " << seed);
    CHECK(halves.size() == 2 * size_t{kIds});
  }
}

}  // namespace
}  // namespace kingx
