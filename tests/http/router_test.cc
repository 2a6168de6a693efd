// Router: routes, methods (405 + Allow), key decoding and key limits.
#include "http/router.h"

#include <catch2/catch.hpp>
#include <string>
#include <utility>
#include <vector>

namespace kingx::http {
namespace {

struct Routed {
  bool ok;
  Route route;
  std::string key;
  ParseError error;
};

Routed Run(std::string_view target, Method method, size_t max_key = 1024, Listener listener = Listener::kMain) {
  Limits limits;
  limits.max_key_bytes = max_key;
  Routed r{};
  r.ok = RouteRequest(target, method, limits, &r.route, &r.key, &r.error, listener);
  return r;
}

Routed Admin(std::string_view target, Method method) { return Run(target, method, 1024, Listener::kAdmin); }

TEST_CASE("the router maps each known path and method", "[http][router]") {
  CHECK(Run("/healthz", Method::kGet).route == Route::kHealthz);
  CHECK(Run("/healthz", Method::kHead).ok);
  CHECK(Run("/readyz", Method::kHead).route == Route::kReadyz);
  CHECK(Run("/metrics", Method::kGet).route == Route::kMetrics);
  CHECK(Admin("/admin/compact", Method::kPost).route == Route::kAdminCompact);
  CHECK(Admin("/admin/backup", Method::kGet).route == Route::kAdminBackup);
  for (Method m : {Method::kGet, Method::kHead, Method::kPut, Method::kDelete}) {
    Routed r = Run("/v1/kv/abc", m);
    CHECK(r.ok);
    CHECK(r.route == Route::kKv);
    CHECK(r.key == "abc");
  }
}

TEST_CASE("the collection path /v1/kv/ is the listing, GET and HEAD only", "[http][router]") {
  for (std::string_view t : {"/v1/kv/", "/v1/kv/?prefix=a&limit=3", "http://h/v1/kv/?cursor=x"}) {
    for (Method m : {Method::kGet, Method::kHead}) {
      Routed r = Run(t, m);
      CHECK(r.ok);
      CHECK(r.route == Route::kKvList);
      CHECK(r.key.empty());
    }
    for (Method m : {Method::kPut, Method::kDelete, Method::kPost}) {
      Routed r = Run(t, m);
      CHECK_FALSE(r.ok);
      CHECK(r.error.status == 405);
      CHECK(r.error.allow == "GET, HEAD");
    }
  }
  CHECK(Run("/v1/kv", Method::kGet).error.status == 404);
}

TEST_CASE("a known path with another method is 405 with the route's Allow", "[http][router]") {
  Routed r = Run("/v1/kv/a", Method::kPost);
  CHECK_FALSE(r.ok);
  CHECK(r.error.status == 405);
  CHECK(r.error.allow == "GET, HEAD, PUT, DELETE");
  CHECK(Run("/metrics", Method::kHead).ok);  // HEAD /metrics, as for any GET resource
  CHECK(Run("/metrics", Method::kPut).error.allow == "GET, HEAD");
  CHECK(Admin("/admin/compact", Method::kGet).error.allow == "POST");
  CHECK(Run("/healthz", Method::kOther).error.allow == "GET, HEAD");
}

TEST_CASE("unknown paths are 404 with one wording, whatever the method and the target's form", "[http][router]") {
  for (const char* path : {"/", "/v1", "/v1/kv", "/v1/kvx", "/healthz/", "/HEALTHZ", "*", "host:443",
                           "http://host", "http://host/", "http://host/nope"}) {
    Routed r = Run(path, Method::kGet);
    INFO(path);
    CHECK_FALSE(r.ok);
    CHECK(r.error.status == 404);
    CHECK(r.error.detail == kNoResourceDetail);
  }
  CHECK(Run("/nope", Method::kPost).error.status == 404);
}

TEST_CASE("each listener serves its own paths; the other's are 404 whatever the method", "[http][router]") {
  for (Method m : {Method::kGet, Method::kHead, Method::kPost, Method::kPut, Method::kDelete, Method::kOptions}) {
    INFO(static_cast<int>(m));
    // The main listener has no /admin/*: the same 404 as an unknown path.
    Routed main_admin = Run("/admin/compact", m);
    CHECK(main_admin.error.status == 404);
    CHECK(main_admin.error.detail == Run("/nope", m).error.detail);
    CHECK(main_admin.error.allow.empty());
    // The admin listener has no key-value API: no key, no listing.
    for (const char* path : {"/v1/kv/a", "/v1/kv/", "/v1/kv/?limit=1"}) {
      Routed admin_kv = Admin(path, m);
      CHECK(admin_kv.error.status == 404);
      CHECK(admin_kv.error.detail == kNoResourceDetail);
    }
    CHECK(Admin("/admin/nope", m).error.status == 404);
  }
  // Both serve the probes and the metrics.
  for (const char* path : {"/healthz", "/readyz", "/metrics"}) {
    CHECK(Run(path, Method::kGet).ok);
    CHECK(Admin(path, Method::kGet).ok);
  }
  CHECK(Admin("/admin/compact", Method::kPost).ok);
  CHECK(Admin("/admin/compact", Method::kGet).error.status == 405);
}

TEST_CASE("keys are percent-decoded and binary-safe; the query is not part of the key", "[http][router]") {
  CHECK(Run("/v1/kv/a%00b", Method::kGet).key == std::string("a\0b", 3));
  CHECK(Run("/v1/kv/%FF%FE", Method::kGet).key == "\xff\xfe");
  CHECK(Run("/v1/kv/a/b/c", Method::kGet).key == "a/b/c");
  CHECK(Run("/v1/kv/a%2Bb", Method::kGet).key == "a+b");
  // Other spellings of a key are redirected to the canonical one (key_spelling_test.cc).
  CHECK(Run("/v1/kv/a+b", Method::kGet).error.status == 308);  // no form decoding in paths
  CHECK(Run("/v1/kv/a+b", Method::kGet).error.location == "/v1/kv/a%2Bb");
  CHECK(Run("/v1/kv/k?x=%zz", Method::kGet).key == "k");
  CHECK(Run("http://host:80/v1/kv/k", Method::kGet).key == "k");
  CHECK(Run("https://host/v1/kv/k?q", Method::kGet).key == "k");
}

TEST_CASE("bad keys are refused with the right status", "[http][router]") {
  // "/v1/kv/" (with or without a query) is the listing, not an empty key.
  CHECK(Run("/v1/kv/", Method::kPut).error.status == 405);
  CHECK(Run("/v1/kv/%", Method::kGet).error.status == 400);
  CHECK(Run("/v1/kv/%4", Method::kGet).error.status == 400);
  CHECK(Run("/v1/kv/%g0", Method::kGet).error.status == 400);
  CHECK(Run("/v1/kv/a#frag", Method::kGet).error.status == 400);
  CHECK(Run("/v1/kv/12345", Method::kGet, 5).ok);
  Routed long_key = Run("/v1/kv/123456", Method::kGet, 5);
  CHECK(long_key.error.status == 414);
  CHECK(long_key.error.has_limit);
  CHECK(long_key.error.limit == 5);
  CHECK(Run("/v1/kv/%C3%C3%C3%C3%C3", Method::kGet, 5).ok);  // 15 characters, 5 bytes
  CHECK(Run("/v1/kv/%C3%C3%C3%C3%C3%C3", Method::kGet, 5).error.status == 414);
  CHECK(Run("/v1/kv/" + std::string(16, 'a'), Method::kGet, 5).error.status == 414);  // refused before decoding
}

TEST_CASE("PercentDecode appends and reports invalid escapes", "[http][router]") {
  std::string out = "x";
  CHECK(PercentDecode("a%20b", &out));
  CHECK(out == "xa b");
  CHECK_FALSE(PercentDecode("%2", &out));
  CHECK_FALSE(PercentDecode("%%", &out));
  // Plain runs before, between and after escapes, and none at all.
  for (const auto& [in, decoded] : std::vector<std::pair<std::string, std::string>>{
           {"plain", "plain"}, {"%41bc%42", "AbcB"}, {"a%2Fb%2fc", "a/b/c"}, {"%41%42", "AB"}, {"", ""}}) {
    out.clear();
    CHECK(PercentDecode(in, &out));
    CHECK(out == decoded);
  }
  for (std::string_view bad : {"ab%4", "ab%", "a%zzb", "a%4g"}) {
    out.clear();
    CHECK_FALSE(PercentDecode(bad, &out));
  }
}

TEST_CASE("/admin/backup is GET and HEAD on the admin listener only", "[http][router]") {
  CHECK(Run("/admin/backup", Method::kGet).error.status == 404);
  CHECK(Run("/admin/backup", Method::kHead).error.status == 404);
  CHECK(Admin("/admin/backup", Method::kHead).route == Route::kAdminBackup);
  Routed put = Admin("/admin/backup", Method::kPut);
  CHECK_FALSE(put.ok);
  CHECK(put.error.status == 405);
  CHECK(put.error.allow == "GET, HEAD");
}

}  // namespace
}  // namespace kingx::http
