// Entity-tag parsing (RFC 9110 §8.8.3 and §13.1.1):
//   If-Match = "*" / #entity-tag
//   entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE
//   etagc = %x21 / %x23-7E / obs-text
// List elements are separated by commas with optional whitespace; empty
// elements are allowed by the #rule and skipped.
#include "http/etag.h"

#include <charconv>
#include <cstring>

namespace kingx::http {
namespace {

bool IsOws(char c) { return c == ' ' || c == '\t'; }

bool IsEtagc(unsigned char c) { return c == 0x21 || (c >= 0x23 && c != 0x7f); }

// A tag's opaque part is ours when it is a canonical decimal uint64 (no
// leading zeros, no sign): exactly what FormatEtag produces.
bool ParseOurSeq(std::string_view opaque, uint64_t* seq) {
  if (opaque.empty() || opaque.size() > 20) return false;
  if (opaque.size() > 1 && opaque.front() == '0') return false;
  auto [end, ec] = std::from_chars(opaque.data(), opaque.data() + opaque.size(), *seq);
  return ec == std::errc() && end == opaque.data() + opaque.size();
}

}  // namespace

// Every response to a read carries one: the digits are written two per
// step backwards into scratch room, then copied out in one fixed-size move
// (what it copies past the digits lands within out's kMaxEtagChars, the
// first byte under the closing quote).
size_t FormatEtag(uint64_t seq, char* out) {
  static constexpr char kPairs[201] =
      "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
      "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
      "8081828384858687888990919293949596979899";
  constexpr size_t kDigits = kMaxEtagChars - 2;  // a uint64 has at most 20
  char scratch[2 * kDigits] = {};
  char* const end = scratch + kDigits;  // the digits end here; room for a full copy behind them
  char* p = end;
  while (seq >= 100) {
    p -= 2;
    std::memcpy(p, kPairs + 2 * (seq % 100), 2);
    seq /= 100;
  }
  if (seq >= 10) {
    p -= 2;
    std::memcpy(p, kPairs + 2 * seq, 2);
  } else {
    *--p = static_cast<char>('0' + seq);
  }
  const size_t n = static_cast<size_t>(end - p);
  out[0] = '"';
  std::memcpy(out + 1, p, kDigits);  // p >= scratch, so p + kDigits lies within scratch
  out[n + 1] = '"';
  return n + 2;
}

bool ParseEntityTags(std::string_view value, Precondition* pre) {
  size_t i = 0;
  const size_t n = value.size();
  while (i < n && IsOws(value[i])) ++i;
  size_t end = n;
  while (end > i && IsOws(value[end - 1])) --end;
  std::string_view v = value.substr(i, end - i);
  if (v == "*") {
    if (pre->kind == Precondition::Kind::kList) return false;  // "*" mixed with tags
    if (pre->kind == Precondition::Kind::kAny) return false;   // "*" twice: not a valid list either
    pre->kind = Precondition::Kind::kAny;
    return true;
  }
  if (pre->kind == Precondition::Kind::kAny) return false;
  bool any_tag = false;
  size_t p = 0;
  while (p < v.size()) {
    // element start: skip empty elements ", ,"
    if (v[p] == ',' || IsOws(v[p])) {
      ++p;
      continue;
    }
    EntityTag tag;
    if (v.size() - p >= 2 && v[p] == 'W' && v[p + 1] == '/') {
      tag.weak = true;
      p += 2;
    }
    if (p >= v.size() || v[p] != '"') return false;
    size_t open = ++p;
    while (p < v.size() && v[p] != '"') {
      if (!IsEtagc(static_cast<unsigned char>(v[p]))) return false;
      ++p;
    }
    if (p >= v.size()) return false;  // unterminated
    std::string_view opaque = v.substr(open, p - open);
    ++p;  // closing quote
    tag.foreign = !ParseOurSeq(opaque, &tag.seq);
    pre->tags.push_back(tag);
    any_tag = true;
    // after an element: OWS then ',' or end
    while (p < v.size() && IsOws(v[p])) ++p;
    if (p < v.size() && v[p] != ',') return false;
  }
  if (!any_tag) return false;  // empty field value or only commas
  pre->kind = Precondition::Kind::kList;
  return true;
}

}  // namespace kingx::http
