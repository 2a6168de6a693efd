// Routing table and key decoding. The table is tiny and fixed, so it is a
// chain of comparisons rather than a data structure.
#include "http/router.h"

#include <algorithm>

#include "http/key_spelling.h"

namespace kingx::http {
namespace {

constexpr std::string_view kKvPrefix = "/v1/kv/";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool Allowed(Route route, Method method) {
  switch (route) {
    case Route::kKv:
      return method == Method::kGet || method == Method::kHead || method == Method::kPut ||
             method == Method::kDelete;
    case Route::kKvList:
    case Route::kHealthz:
    case Route::kReadyz:
    case Route::kMetrics:
    case Route::kAdminBackup:
      return method == Method::kGet || method == Method::kHead;
    case Route::kAdminCompact:
      return method == Method::kPost;
  }
  return false;
}

bool Fail(ParseError* error, int status, std::string_view detail) {
  *error = ParseError{};
  error->status = status;
  error->detail = detail;
  return false;
}

}  // namespace

std::string_view AllowedMethods(Route route) {
  switch (route) {
    case Route::kKv: return "GET, HEAD, PUT, DELETE";
    case Route::kKvList:
    case Route::kHealthz:
    case Route::kReadyz:
    case Route::kMetrics:
    case Route::kAdminBackup: return "GET, HEAD";
    case Route::kAdminCompact: return "POST";
  }
  return "";
}

// The bytes between escapes are appended a run at once (most keys have no
// escape at all: one append).
bool PercentDecode(std::string_view in, std::string* out) {
  size_t i = 0;
  while (i < in.size()) {
    const size_t escape = std::min(in.find('%', i), in.size());
    out->append(in.data() + i, escape - i);
    if (escape == in.size()) break;
    i = escape;
    if (i + 2 >= in.size()) return false;  // fewer than two characters after '%'
    int hi = HexValue(in[i + 1]);
    int lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
    i += 3;
  }
  return true;
}

bool RouteRequest(std::string_view target, Method method, const Limits& limits, Route* route,
                  std::string* key_out, ParseError* error, Listener listener) {
  // absolute-form (RFC 9112 §3.2.2): drop "scheme://authority".
  if (!target.empty() && target.front() != '/') {
    size_t scheme_end = target.find("://");
    if (scheme_end == std::string_view::npos) {
      // asterisk-form ("*") or authority-form (CONNECT): no resource of ours.
      return Fail(error, 404, kNoResourceDetail);
    }
    size_t path_start = target.find('/', scheme_end + 3);
    // An empty path is "/" (RFC 9112 §3.2.2), which is no resource of ours.
    if (path_start == std::string_view::npos) return Fail(error, 404, kNoResourceDetail);
    target.remove_prefix(path_start);
  }
  if (target.find('#') != std::string_view::npos) {
    return Fail(error, 400, "A request target must not contain a fragment ('#').");
  }
  const size_t query_start = target.find('?');
  std::string_view path = target.substr(0, query_start);

  if (path == kKvPrefix) {
    *route = Route::kKvList;  // the collection: listing (query parsed by the handler, list_api.h)
  } else if (path.substr(0, kKvPrefix.size()) == kKvPrefix) {
    *route = Route::kKv;
  } else if (path == "/healthz") {
    *route = Route::kHealthz;
  } else if (path == "/readyz") {
    *route = Route::kReadyz;
  } else if (path == "/metrics") {
    *route = Route::kMetrics;
  } else if (path == "/admin/compact") {
    *route = Route::kAdminCompact;
  } else if (path == "/admin/backup") {
    *route = Route::kAdminBackup;
  } else {
    return Fail(error, 404, kNoResourceDetail);
  }
  // The admin listener serves /admin/* and the probes, the main one all but
  // /admin/*: a path of the other listener does not exist here. The key-value
  // API (keys and their listing) belongs to the main listener alone.
  const bool admin_route = *route == Route::kAdminCompact || *route == Route::kAdminBackup;
  const bool kv_route = *route == Route::kKv || *route == Route::kKvList;
  if ((listener == Listener::kMain && admin_route) || (listener == Listener::kAdmin && kv_route)) {
    return Fail(error, 404, kNoResourceDetail);
  }
  if (!Allowed(*route, method)) {
    Fail(error, 405, "This method is not allowed on this resource.");
    error->allow = AllowedMethods(*route);
    return false;
  }
  if (*route != Route::kKv) return true;

  std::string_view raw_key = path.substr(kKvPrefix.size());
  if (raw_key.empty()) return Fail(error, 400, "The key is empty.");
  // A decoded byte takes 1 to 3 characters: reject hopeless lengths before decoding.
  if (raw_key.size() > 3 * limits.max_key_bytes) {
    Fail(error, 414, "The key is longer than the maximum key size.");
    error->limit = limits.max_key_bytes;
    error->has_limit = true;
    return false;
  }
  size_t before = key_out->size();
  if (!PercentDecode(raw_key, key_out)) {
    key_out->resize(before);
    return Fail(error, 400, "The key contains an invalid percent-escape.");
  }
  size_t key_bytes = key_out->size() - before;
  if (key_bytes > limits.max_key_bytes) {
    key_out->resize(before);
    Fail(error, 414, "The key is longer than the maximum key size.");
    error->limit = limits.max_key_bytes;
    error->has_limit = true;
    return false;
  }
  if (!IsCanonicalKeySpelling(raw_key)) {
    // One spelling per key, so that a proxy hashing the path routes every
    // request for a key to the same shard: send the client to it.
    std::string_view key(key_out->data() + before, key_bytes);
    Fail(error, 308, "The key is not in its canonical spelling (bytes other than A-Z a-z 0-9 - . _ ~ / "
                     "written %XX with uppercase hex); the same request belongs at the URL in Location.");
    error->location.reserve(kKvPrefix.size() + CanonicalKeyLength(key) +
                            (query_start == std::string_view::npos ? 0 : target.size() - query_start));
    error->location.append(kKvPrefix);
    AppendCanonicalKey(key, &error->location);
    if (query_start != std::string_view::npos) error->location.append(target.substr(query_start));
    key_out->resize(before);
    return false;
  }
  return true;
}

}  // namespace kingx::http
