// The listing API's query parser and page renderer (see list_api.h).
#include "http/list_api.h"

#include <cstring>

#include "http/etag.h"
#include "http/json_text.h"
#include "http/key_spelling.h"
#include "http/router.h"
#include "http/wire.h"

namespace kingx::http {
namespace {

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int B64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

// True when the 8 bytes at p are all ASCII.
bool AsciiWord(const char* p) {
  uint64_t word;
  std::memcpy(&word, p, sizeof word);
  return (word & 0x8080808080808080ULL) == 0;
}

bool Fail(ListQueryError* e, std::string_view parameter, std::string detail) {
  e->parameter = std::string(parameter);
  e->detail = std::move(detail);
  return false;
}

}  // namespace

std::string Base64UrlEncode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) | uint8_t(bytes[i + 2]);
    out.push_back(kB64[v >> 18]);
    out.push_back(kB64[(v >> 12) & 63]);
    out.push_back(kB64[(v >> 6) & 63]);
    out.push_back(kB64[v & 63]);
  }
  if (bytes.size() - i == 1) {
    const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    out.push_back(kB64[v >> 18]);
    out.push_back(kB64[(v >> 12) & 63]);
  } else if (bytes.size() - i == 2) {
    const uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8);
    out.push_back(kB64[v >> 18]);
    out.push_back(kB64[(v >> 12) & 63]);
    out.push_back(kB64[(v >> 6) & 63]);
  }
  return out;
}

bool Base64UrlDecode(std::string_view text, std::string* out) {
  out->clear();
  if (text.size() % 4 == 1) return false;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    const int v = B64Value(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  // Leftover bits must be zero, so that every token has one spelling.
  return (acc & ((1u << bits) - 1)) == 0;
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    while (i + 8 <= s.size() && AsciiWord(s.data() + i)) i += 8;  // keys and content types mostly are
    if (i == s.size()) break;
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) n = 1, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) n = 2, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) n = 3, cp = c & 0x07;
    else return false;
    if (i + n >= s.size()) return false;  // the continuation bytes i+1..i+n must exist
    for (size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
}

bool ParseListQuery(std::string_view target, size_t max_key_bytes, ListQuery* out, ListQueryError* error) {
  *out = ListQuery{};
  const size_t q = target.find('?');
  if (q == std::string_view::npos) return true;
  std::string_view query = target.substr(q + 1);
  bool seen_prefix = false, seen_after = false, seen_limit = false, seen_cursor = false, seen_encoding = false;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;  // "a=1&&b=2", a trailing '&'
    const size_t eq = pair.find('=');
    const std::string_view name = pair.substr(0, eq);
    const std::string_view raw = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    bool* seen;
    if (name == "prefix") seen = &seen_prefix;
    else if (name == "start_after") seen = &seen_after;
    else if (name == "limit") seen = &seen_limit;
    else if (name == "cursor") seen = &seen_cursor;
    else if (name == "encoding") seen = &seen_encoding;
    else {
      std::string shown;
      if (!PercentDecode(name, &shown) || !IsValidUtf8(shown) || shown.size() > 64) shown = "(unprintable)";
      return Fail(error, shown, "unknown query parameter; known: prefix, start_after, limit, cursor, encoding");
    }
    if (*seen) return Fail(error, name, "the parameter is given more than once");
    *seen = true;
    std::string value;
    if (!PercentDecode(raw, &value)) return Fail(error, name, "the value contains an invalid percent-escape");
    if (name == "prefix" || name == "start_after") {
      if (value.size() > max_key_bytes)
        return Fail(error, name, "longer than the maximum key size (" + std::to_string(max_key_bytes) + " bytes)");
      (name == "prefix" ? out->prefix : out->start_after) = std::move(value);
    } else if (name == "limit") {
      size_t n = 0;
      bool ok = !value.empty() && value.size() <= 4;
      for (char c : value) {
        if (c < '0' || c > '9') ok = false;
        else n = n * 10 + static_cast<size_t>(c - '0');
      }
      if (!ok || n < 1 || n > kListMaxLimit)
        return Fail(error, name, "must be an integer from 1 to " + std::to_string(kListMaxLimit));
      out->limit = n;
    } else if (name == "cursor") {
      if (value.empty() || !Base64UrlDecode(value, &out->cursor))
        return Fail(error, name, "malformed cursor (pass back the cursor of the previous page unchanged)");
      out->has_cursor = true;
    } else {  // encoding
      if (value != "url") return Fail(error, name, "the only encoding is 'url'");
      out->url_encoding = true;
    }
  }
  if (seen_cursor && seen_after) return Fail(error, "cursor", "cursor and start_after cannot be combined");
  return true;
}

namespace {

// A listed key's JSON object up to the value of "content_type".
void AppendListedKeyHead(const engine::ListedKey& k, bool url_encoding, std::string* out) {
  char etag[kMaxEtagChars];
  out->append("{\"key\":");
  if (url_encoding || !IsValidUtf8(k.key)) {
    out->push_back('"');
    AppendCanonicalKey(k.key, out);
    out->push_back('"');
    if (!url_encoding) out->append(",\"key_encoding\":\"url\"");
  } else {
    AppendJsonString(out, k.key, JsonBytes::kUtf8);
  }
  out->append(",\"etag\":");
  const size_t n = FormatEtag(k.seq, etag);  // "\"<seq>\"": its quotes are escaped in JSON
  out->append("\"\\\"");
  out->append(etag + 1, n - 2);
  out->append("\\\"\",\"size\":");
  AppendDecimal(out, k.size);
  out->append(",\"content_type\":");
}

void AppendContentTypeJson(std::string_view content_type, std::string* out) {
  // A Content-Type field may hold obs-text: its bytes are Latin-1 then.
  AppendJsonString(out, content_type, IsValidUtf8(content_type) ? JsonBytes::kUtf8 : JsonBytes::kLatin1);
}

}  // namespace

void AppendListedKeyJson(const engine::ListedKey& k, bool url_encoding, std::string* out) {
  AppendListedKeyHead(k, url_encoding, out);
  AppendContentTypeJson(k.content_type, out);
  out->push_back('}');
}

std::string RenderListPage(const engine::ListPage& page, bool url_encoding, std::string_view cursor_text) {
  std::string out;
  size_t estimate = 64 + cursor_text.size();
  for (const auto& k : page.keys) estimate += 72 + k.key.size() * (url_encoding ? 3 : 1) + k.content_type.size();
  out.reserve(estimate);
  out.append("{\"keys\":[");
  // Neighbouring keys mostly share a content type: its JSON is written once per run of them.
  std::string_view type;
  std::string type_json;
  for (size_t i = 0; i < page.keys.size(); ++i) {
    const engine::ListedKey& k = page.keys[i];
    if (i > 0) out.push_back(',');
    AppendListedKeyHead(k, url_encoding, &out);
    if (i == 0 || k.content_type != type) {
      type = k.content_type;
      type_json.clear();
      AppendContentTypeJson(type, &type_json);
    }
    out.append(type_json);
    out.push_back('}');
  }
  out.append("],\"list_complete\":");
  out.append(page.complete ? "true" : "false");
  if (!page.complete) {
    out.append(",\"cursor\":\"");
    out.append(cursor_text);
    out.push_back('"');
  }
  out.append("}\n");
  return out;
}

}  // namespace kingx::http
