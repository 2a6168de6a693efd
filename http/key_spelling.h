// The canonical spelling of a key: the one way a key is written in a URL.
//
// A key is any byte string. In a request target it is percent-encoded, and
// many spellings decode to the same bytes ("a/b", "a%2Fb", "a%2fb"). A
// proxy that shards by hashing the path (nginx `hash ... consistent`,
// HAProxy `balance uri`) sees those spellings as different keys and can send
// them to different shards, so kingx serves a key under one spelling only
// and redirects the others to it (308, see router.h).
//
// The rule (the one AWS SigV4 uses for object keys, and what Python's
// urllib.parse.quote(key) produces):
//   - the RFC 3986 unreserved bytes A-Z a-z 0-9 '-' '.' '_' '~' and '/' are
//     written as themselves;
//   - every other byte is written "%XX" with two UPPERCASE hex digits.
// So each key has exactly one canonical spelling, and decoding it
// (PercentDecode) gives the key back.
//
// Everything in this file is a pure function: no allocation beyond the
// output string, any thread. The listing API, the tools and the resharding
// code call these; nobody writes a second encoder.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace kingx::http {

// True for the bytes written as themselves (unreserved and '/').
constexpr bool IsLiteralKeyByte(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~' || c == '/';
}

// Appends the canonical spelling of `key` (any bytes, empty allowed) to *out.
void AppendCanonicalKey(std::string_view key, std::string* out);

// The canonical spelling of `key`.
std::string CanonicalKey(std::string_view key);

// Length of CanonicalKey(key) without building it.
size_t CanonicalKeyLength(std::string_view key);

// True when `spelling` (the raw characters after "/v1/kv/", before any '?')
// is the canonical spelling of some key: only literal bytes and "%XX"
// escapes with uppercase hex of bytes that are not literal. A spelling with
// an invalid escape is not canonical either.
bool IsCanonicalKeySpelling(std::string_view spelling);

}  // namespace kingx::http
