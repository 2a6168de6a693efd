// The listing API's text: the query of `GET /v1/kv/?...` in, the JSON page
// out (README "Listing keys"). Pure functions, any thread.
//
// Query parameters (all optional, each at most once, values percent-decoded
// with no '+' rule, so a '+' is a plus):
//   prefix=P       only keys that start with the bytes P (at most max_key_bytes)
//   start_after=K  only keys after K (byte-wise); cannot be combined with cursor
//   limit=N        keys per page, 1..1000 (default 1000)
//   cursor=C       continue after the page that returned C (opaque, base64url)
//   encoding=url   every key in its canonical percent-encoded spelling
// Anything else (an unknown name, a repeated name, an invalid escape or
// value) is an error naming the parameter (400 problem+json).
//
// The page: {"keys":[{"key":"...","etag":"\"<seq>\"","size":N,
// "content_type":"..."},...],"list_complete":true|false,"cursor":"..."}.
// Without encoding=url a key that is valid UTF-8 is a JSON string of its
// characters; a key that is not valid UTF-8 is written in its canonical
// percent-encoded spelling with "key_encoding":"url" beside it, so every
// key comes back unambiguously.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/key_lister.h"

namespace kingx::http {

inline constexpr size_t kListDefaultLimit = 1000;
inline constexpr size_t kListMaxLimit = 1000;

struct ListQuery {
  std::string prefix;
  std::string start_after;
  std::string cursor;       // the token's bytes (base64url-decoded)
  bool has_cursor = false;
  size_t limit = kListDefaultLimit;
  bool url_encoding = false;
};

struct ListQueryError {
  std::string parameter;  // the query parameter at fault
  std::string detail;     // what is wrong, for the problem body
};

// Parses the query part of `target` (after the first '?'; no '?' gives the
// defaults). On failure returns false and fills *error.
bool ParseListQuery(std::string_view target, size_t max_key_bytes, ListQuery* out, ListQueryError* error);

// RFC 4648 §5 base64url without padding, and back (false on any character
// outside the alphabet, padding, or an impossible length).
std::string Base64UrlEncode(std::string_view bytes);
bool Base64UrlDecode(std::string_view text, std::string* out);

// True when `bytes` is well-formed UTF-8 (no overlong forms, surrogates or
// code points above U+10FFFF).
bool IsValidUtf8(std::string_view bytes);

// One entry of a page's "keys" array (the JSON object, no separator), as
// RenderListPage writes it; kingx-tool list prints these one per line.
void AppendListedKeyJson(const engine::ListedKey& key, bool url_encoding, std::string* out);

// The JSON body of a page. cursor_text: the next page's cursor (base64url),
// written when the page is not complete.
std::string RenderListPage(const engine::ListPage& page, bool url_encoding, std::string_view cursor_text);

}  // namespace kingx::http
