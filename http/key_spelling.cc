// Canonical key spelling. A byte-at-a-time loop is enough: keys are at most a
// few KiB and the check runs once per request, next to the decoding.
#include "http/key_spelling.h"

namespace kingx::http {
namespace {

constexpr char kUpperHex[] = "0123456789ABCDEF";

int UpperHexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;  // lowercase hex is a valid escape but not a canonical one
}

}  // namespace

void AppendCanonicalKey(std::string_view key, std::string* out) {
  out->reserve(out->size() + CanonicalKeyLength(key));
  for (char ch : key) {
    const auto c = static_cast<unsigned char>(ch);
    if (IsLiteralKeyByte(c)) {
      out->push_back(ch);
    } else {
      const char escape[3] = {'%', kUpperHex[c >> 4], kUpperHex[c & 0xF]};
      out->append(escape, 3);
    }
  }
}

std::string CanonicalKey(std::string_view key) {
  std::string out;
  AppendCanonicalKey(key, &out);
  return out;
}

size_t CanonicalKeyLength(std::string_view key) {
  size_t n = 0;
  for (char ch : key) n += IsLiteralKeyByte(static_cast<unsigned char>(ch)) ? 1 : 3;
  return n;
}

bool IsCanonicalKeySpelling(std::string_view spelling) {
  for (size_t i = 0; i < spelling.size(); ++i) {
    const auto c = static_cast<unsigned char>(spelling[i]);
    if (IsLiteralKeyByte(c)) continue;
    if (c != '%' || i + 2 >= spelling.size()) return false;
    const int hi = UpperHexValue(spelling[i + 1]);
    const int lo = UpperHexValue(spelling[i + 2]);
    if (hi < 0 || lo < 0) return false;
    // An escaped literal byte ("%41" for 'A', "%2F" for '/') has a shorter
    // spelling, so it is not the canonical one.
    if (IsLiteralKeyByte(static_cast<unsigned char>(hi * 16 + lo))) return false;
    i += 2;
  }
  return true;
}

}  // namespace kingx::http
