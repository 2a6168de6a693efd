// Entity-tag parsing (RFC 9110 §8.8.3 and §13.1.1):
//   If-Match = "*" / #entity-tag
//   entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE
//   etagc = %x21 / %x23-7E / obs-text
// List elements are separated by commas with optional whitespace; empty
// elements are allowed by the #rule and skipped.
#include "http/etag.h"

#include <charconv>

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

size_t FormatEtag(uint64_t seq, char* out) {
  out[0] = '"';
  auto [end, ec] = std::to_chars(out + 1, out + kMaxEtagChars - 1, seq);
  (void)ec;  // 20 digits always fit
  *end = '"';
  return static_cast<size_t>(end + 1 - out);
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
