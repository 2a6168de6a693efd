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

}  // namespace
}  // namespace kingx
