// Request syntax helpers (see syntax.h).
#include "http/syntax.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace kingx::http {
namespace {

// Byte classes, looked up once per byte on the request path.
constexpr bool TcharRule(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}
// A Host byte that needs no further look: not a separator ValidHost tracks
// ('.', ':', '[', ']') and not one it refuses ('/', controls, SP, DEL).
constexpr bool HostPlainRule(unsigned char c) {
  return c > 0x20 && c != 0x7f && c != '/' && c != '.' && c != ':' && c != '[' && c != ']';
}
template <bool (*Rule)(unsigned char)>
constexpr std::array<bool, 256> Table() {
  std::array<bool, 256> t{};
  for (int c = 0; c < 256; ++c) t[static_cast<size_t>(c)] = Rule(static_cast<unsigned char>(c));
  return t;
}
constexpr std::array<bool, 256> kTchar = Table<TcharRule>();
constexpr std::array<bool, 256> kHostPlain = Table<HostPlainRule>();

}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

bool IsTchar(unsigned char c) { return kTchar[c]; }

bool IsMethodChar(char c) { return (c >= 'A' && c <= 'Z') || c == '_' || c == '-'; }

// (x - n * kOnes) & ~x & kHighs is non-zero exactly when a byte of x is
// below n (n <= 0x80): the lowest such byte borrows into its own high bit,
// and a byte of 0x80 or more is masked by ~x. A borrow can mark a byte above
// a hit wrongly, which does not change whether there is one. DEL is found as
// a zero byte of x ^ (0x7f * kOnes), the same way with n = 1. From eight
// bytes on, the last step reads the last eight bytes (overlapping the step
// before it) instead of walking the tail byte by byte.
bool HasSpaceOrControl(std::string_view s) {
  constexpr uint64_t kOnes = 0x0101010101010101u;
  constexpr uint64_t kHighs = 0x8080808080808080u;
  const auto any = [](const char* at) {
    uint64_t x;
    std::memcpy(&x, at, 8);
    const uint64_t del = x ^ (kOnes * 0x7f);
    return ((((x - kOnes * 0x21) & ~x) | ((del - kOnes) & ~del)) & kHighs) != 0;
  };
  const char* p = s.data();
  const char* const end = p + s.size();
  if (s.size() >= 8) {
    for (; end - p > 8; p += 8) {
      if (any(p)) return true;
    }
    return any(end - 8);
  }
  for (; p < end; ++p) {
    const auto c = static_cast<unsigned char>(*p);
    if (c <= 0x20 || c == 0x7f) return true;
  }
  return false;
}

std::string_view TrimOws(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

bool ValidHost(std::string_view h) {
  enum { kUsual, kLiteral, kRest } state = kUsual;
  size_t dot_pos = h.size();   // no dot yet
  size_t host_len = h.size();  // the host without ":port"
  for (size_t i = 0; i < h.size(); ++i) {
    const auto c = static_cast<unsigned char>(h[i]);
    if (kHostPlain[c]) continue;
    switch (c) {
      case '.':
        if (i > 0 && dot_pos == i - 1) return false;
        dot_pos = i;
        break;
      case ':':
        if (state == kUsual) {
          host_len = i;
          state = kRest;
        }
        break;
      case '[':
        if (i == 0) state = kLiteral;
        break;
      case ']':
        if (state == kLiteral) {
          host_len = i + 1;
          state = kRest;
        }
        break;
      default:
        if (c == '/' || c <= 0x20 || c == 0x7f) return false;
        break;
    }
  }
  if (host_len > 0 && dot_pos == host_len - 1) --host_len;  // one trailing dot
  return host_len > 0;
}

ConnectionOptions ParseConnection(std::string_view v) {
  ConnectionOptions o;
  while (!v.empty()) {
    const size_t comma = v.find(',');
    const std::string_view token = TrimOws(v.substr(0, comma));
    v = comma == std::string_view::npos ? std::string_view() : v.substr(comma + 1);
    if (EqualsIgnoreCase(token, "close")) o.close = true;
    if (EqualsIgnoreCase(token, "keep-alive")) o.keep_alive = true;
  }
  return o;
}

}  // namespace kingx::http
