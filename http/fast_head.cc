// The strict head recogniser. One forward pass, table lookups per byte;
// it gives up at the first byte outside its grammar, having changed
// nothing, so the full parser's reading is the only one that counts then.
#include "http/fast_head.h"

#include <array>
#include <cstring>

namespace kingx::http {
namespace {

constexpr std::array<bool, 256> TargetChars() {
  std::array<bool, 256> t{};
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (char c : std::string_view("-._~!$&'()*+,;=:@/%?")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
constexpr std::array<bool, 256> NameChars() {
  std::array<bool, 256> t{};
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  t['-'] = true;
  return t;
}
constexpr std::array<bool, 256> ValueChars() {
  std::array<bool, 256> t{};
  for (int c = 0x20; c <= 0x7e; ++c) t[c] = true;
  return t;
}
constexpr std::array<bool, 256> kTarget = TargetChars();
constexpr std::array<bool, 256> kName = NameChars();
constexpr std::array<bool, 256> kValue = ValueChars();

// The K (1 to 8) bytes at p as one word (the rest 0), each with bit 0x20
// set: a letter lower-cased, '-' unchanged, and no byte 0. K is a constant,
// so that the copy is a plain load.
template <size_t K>
uint64_t LowerWord(const char* p) {
  static_assert(K >= 1 && K <= 8);
  uint64_t w = 0;
  std::memcpy(&w, p, K);
  constexpr uint64_t kOnes = K == 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * K)) - 1;
  return w | (0x2020202020202020ull & kOnes);
}

// `name` (letters and '-' only) equals the lower-case literal `lower` (at
// most 16 bytes) without regard to case: setting bit 0x20 lower-cases a
// letter and leaves '-' as it is. Compared a word at a time.
template <size_t N>
bool NameIs(std::string_view name, const char (&lower)[N]) {
  constexpr size_t kLen = N - 1;
  static_assert(kLen >= 1 && kLen <= 16);
  if (name.size() != kLen) return false;
  constexpr size_t kHead = kLen < 8 ? kLen : 8;
  if (LowerWord<kHead>(name.data()) != LowerWord<kHead>(lower)) return false;
  if constexpr (kLen > 8) return LowerWord<kLen - 8>(name.data() + 8) == LowerWord<kLen - 8>(lower + 8);
  return true;
}

// Whether every byte of the 8 at p is in 0x20-0x7E (kValue): none below
// 0x20 and none above 0x7E, each tested for all bytes at once (the
// "hasless" and "hasmore" word tests, exact for these bounds).
bool AllValueBytes(const char* p) {
  uint64_t x;
  std::memcpy(&x, p, 8);
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kHigh = 0x8080808080808080ull;
  const uint64_t below = (x - kOnes * 0x20) & ~x & kHigh;
  const uint64_t above = ((x + kOnes * (127 - 0x7e)) | x) & kHigh;
  return (below | above) == 0;
}

enum class Kind : uint8_t { kUnknown, kIgnored, kKept, kLength };

Kind Classify(std::string_view name, FastHead::Field* field) {
  switch (name.size()) {
    case 4:
      if (NameIs(name, "host")) return *field = FastHead::Field::kHost, Kind::kKept;
      break;
    case 6:
      if (NameIs(name, "accept") || NameIs(name, "pragma")) return Kind::kIgnored;
      break;
    case 7:
      if (NameIs(name, "referer")) return *field = FastHead::Field::kReferer, Kind::kKept;
      break;
    case 10:
      if (NameIs(name, "user-agent")) return *field = FastHead::Field::kUserAgent, Kind::kKept;
      if (NameIs(name, "connection")) return *field = FastHead::Field::kConnection, Kind::kKept;
      break;
    case 12:
      if (NameIs(name, "x-request-id")) return *field = FastHead::Field::kXRequestId, Kind::kKept;
      if (NameIs(name, "content-type")) return *field = FastHead::Field::kContentType, Kind::kKept;
      break;
    case 13:
      if (NameIs(name, "cache-control")) return Kind::kIgnored;
      break;
    case 14:
      if (NameIs(name, "content-length")) return Kind::kLength;
      break;
    case 15:
      if (NameIs(name, "x-forwarded-for")) return *field = FastHead::Field::kXForwardedFor, Kind::kKept;
      if (NameIs(name, "accept-encoding") || NameIs(name, "accept-language")) return Kind::kIgnored;
      break;
    default:
      break;
  }
  return Kind::kUnknown;
}

bool IsKeepAlive(std::string_view v) {
  constexpr std::string_view kKeepAlive = "keep-alive";
  if (v.size() != kKeepAlive.size()) return false;
  for (size_t i = 0; i < v.size(); ++i) {
    const char c = (v[i] >= 'A' && v[i] <= 'Z') ? static_cast<char>(v[i] | 0x20) : v[i];
    if (c != kKeepAlive[i]) return false;
  }
  return true;
}

// A Content-Length value in the recogniser's narrow form ("0", or digits
// without a leading zero, at most kMaxLengthDigits): its number in *n.
bool ParseLength(std::string_view v, uint64_t* n) {
  if (v.empty() || v.size() > FastHead::kMaxLengthDigits || (v[0] == '0' && v.size() > 1)) return false;
  uint64_t x = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    x = x * 10 + static_cast<uint64_t>(c - '0');
  }
  *n = x;
  return true;
}

}  // namespace

bool RecogniseFastHead(std::string_view input, size_t max_bytes, size_t max_fields, FastHead* out) {
  if (input.size() > max_bytes) input = input.substr(0, max_bytes);
  const char* s = input.data();
  const size_t n = input.size();
  const auto byte = [s](size_t i) { return static_cast<unsigned char>(s[i]); };
  size_t p = 0;
  if (n >= 5 && std::memcmp(s, "GET /", 5) == 0) {
    out->verb = FastHead::Verb::kGet;
    p = 4;
  } else if (n >= 6 && std::memcmp(s, "HEAD /", 6) == 0) {
    out->verb = FastHead::Verb::kHead;
    p = 5;
  } else if (n >= 5 && std::memcmp(s, "PUT /", 5) == 0) {
    out->verb = FastHead::Verb::kPut;
    p = 4;
  } else {
    return false;
  }
  out->target_off = static_cast<uint32_t>(p);
  while (p < n && kTarget[byte(p)]) ++p;
  if (p == n || s[p] != ' ') return false;
  out->target_len = static_cast<uint32_t>(p - out->target_off);
  ++p;
  constexpr std::string_view kVersion = "HTTP/1.1\r\n";
  if (n - p < kVersion.size() || std::memcmp(s + p, kVersion.data(), kVersion.size()) != 0) return false;
  p += kVersion.size();

  unsigned seen = 0;  // bit per FastHead::Field
  bool has_length = false;
  out->content_length = 0;
  out->value_count = 0;
  out->field_lines = 0;
  for (;;) {
    if (n - p < 2) return false;  // incomplete
    if (s[p] == '\r' && s[p + 1] == '\n') {
      p += 2;
      break;
    }
    const size_t name_off = p;
    while (p < n && kName[byte(p)]) ++p;
    if (p == n || s[p] != ':' || p == name_off) return false;
    FastHead::Field field = FastHead::Field::kHost;
    const Kind kind = Classify(std::string_view(s + name_off, p - name_off), &field);
    if (kind == Kind::kUnknown) return false;
    ++p;
    while (p < n && s[p] == ' ') ++p;
    const size_t value_off = p;
    while (n - p >= 8 && AllValueBytes(s + p)) p += 8;
    while (p < n && kValue[byte(p)]) ++p;
    if (n - p < 2 || s[p] != '\r' || s[p + 1] != '\n') return false;
    if (p == value_off || s[p - 1] == ' ') return false;
    if (++out->field_lines > max_fields || out->field_lines > FastHead::kMaxFieldLines) return false;
    if (kind == Kind::kLength) {
      // Only a PUT's head frames a body here; one length, in narrow form.
      if (out->verb != FastHead::Verb::kPut || has_length) return false;
      if (!ParseLength(std::string_view(s + value_off, p - value_off), &out->content_length)) return false;
      has_length = true;
    } else if (kind == Kind::kKept) {
      const unsigned bit = 1u << static_cast<unsigned>(field);
      if (seen & bit) return false;
      seen |= bit;
      const std::string_view value(s + value_off, p - value_off);
      if (field == FastHead::Field::kConnection && !IsKeepAlive(value)) return false;
      out->values[out->value_count++] =
          FastHead::Value{field, static_cast<uint32_t>(value_off), static_cast<uint32_t>(value.size())};
    }
    p += 2;
  }
  if (out->verb == FastHead::Verb::kPut && !has_length) return false;
  out->head_bytes = p;
  return true;
}

}  // namespace kingx::http
