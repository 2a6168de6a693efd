// A table of raw request vectors: smuggling (CL.TE, TE.CL, duplicate and
// malformed Content-Length, chunk sizes, obs-fold, Transfer-Encoding
// variants), malformed input, limits and compliance cases.
//
// Each vector is followed by a second, valid request on the same
// connection. The test asserts the vector's status, that the connection
// closes after a framing error (and the second request is then never
// answered), that it stays usable otherwise (the second request is answered
// 200), and that no vector produces two responses. Every vector runs with a
// handler that answers at once and with one that answers later, fed whole
// and fed one byte at a time.
#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

#include "tests/http/parser_trace.h"
#include "tests/http/test_support.h"

namespace kingx::http {
namespace {

using namespace std::string_literals;
using testing::FakeKvHandler;
using testing::Harness;
using testing::SplitResponses;

struct Vector {
  const char* name;
  std::string request;
  int status;       // the final status answering `request`
  bool closes;      // the connection closes after it
  bool head = false;  // `request` is a HEAD: its response has no body
  // Only meaningful with a handler that decides in OnRequest (a deferred
  // handler lets the core send 100 Continue first).
  bool sync_only = false;
};

// Limits of this table (small body limit so 413 is cheap to reach).
Limits VectorLimits() {
  Limits l;
  l.max_body_bytes = 1024;
  return l;
}

const std::string kFollowUp = "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n";
const std::string kKey1024(1024, 'k');
const std::string kKey1025(1025, 'k');

std::string Rep(const std::string& s, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += s;
  return out;
}

std::string ManyHeaders(size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += "X-H" + std::to_string(i) + ": v\r\n";
  return out;
}

const std::vector<Vector>& Vectors() {
  static const std::vector<Vector> v = {
      // ---- compliance: valid requests, keep-alive ----
      {"GET healthz", "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n", 200, false},
      {"HEAD healthz", "HEAD /healthz HTTP/1.1\r\nHost: h\r\n\r\n", 200, false, true},
      {"GET readyz", "GET /readyz HTTP/1.1\r\nHost: h\r\n\r\n", 200, false},
      {"HEAD readyz", "HEAD /readyz HTTP/1.1\r\nHost: h\r\n\r\n", 200, false, true},
      {"GET metrics", "GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n", 200, false},
      {"GET existing key", "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\n\r\n", 200, false},
      {"HEAD existing key", "HEAD /v1/kv/k HTTP/1.1\r\nHost: h\r\n\r\n", 200, false, true},
      {"GET missing key", "GET /v1/kv/nope HTTP/1.1\r\nHost: h\r\n\r\n", 404, false},
      {"HEAD missing key", "HEAD /v1/kv/nope HTTP/1.1\r\nHost: h\r\n\r\n", 404, false, true},
      {"PUT new key", "PUT /v1/kv/new HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc", 201, false},
      {"PUT overwrite", "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc", 204, false},
      {"PUT empty body", "PUT /v1/kv/e HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", 201, false},
      // A PUT must say how long its value is: one that lost its framing
      // header would otherwise store an empty value (nothing follows the
      // head, so the connection stays usable).
      {"PUT without length: 411", "PUT /v1/kv/e HTTP/1.1\r\nHost: h\r\n\r\n", 411, false},
      {"PUT without length, fast-head spelling: 411", "PUT /v1/kv/e HTTP/1.1\r\nHost: h\r\nUser-Agent: u\r\nContent-Type: a/b\r\n\r\n", 411, false},
      {"PUT without length over an existing key: 411", "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\n\r\n", 411, false},
      {"PUT without length with Expect: 411, kept", "PUT /v1/kv/e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n", 411, false},
      {"PUT without length and a content coding: 411 first", "PUT /v1/kv/e HTTP/1.1\r\nHost: h\r\nContent-Encoding: gzip\r\n\r\n", 411, false},
      {"HTTP/1.0 PUT without length: 411, closes", "PUT /v1/kv/e HTTP/1.0\r\n\r\n", 411, true},
      {"HTTP/1.0 PUT without length, keep-alive: 411, kept", "PUT /v1/kv/e HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 411, false},
      {"PUT without length on healthz: 405", "PUT /healthz HTTP/1.1\r\nHost: h\r\n\r\n", 405, false},
      {"PUT chunked", "PUT /v1/kv/c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 201, false},
      {"PUT chunked, uppercase hex", "PUT /v1/kv/c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n", 201, false},
      {"PUT chunked with an extension", "PUT /v1/kv/c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b\r\nabc\r\n0;z\r\n\r\n", 201, false},
      {"PUT chunked with a quoted extension", "PUT /v1/kv/c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;a=\"b c\"\r\nabc\r\n0\r\n\r\n", 201, false},
      {"PUT chunked with trailers", "PUT /v1/kv/c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\nY-T: 2\r\n\r\n", 201, false},
      {"PUT chunked, trailer Content-Length ignored", "PUT /v1/kv/c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nContent-Length: 50\r\n\r\n", 201, false},
      {"PUT chunked, trailer Host ignored", "PUT /v1/kv/c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nHost: other\r\n\r\n", 201, false},
      {"PUT chunked, many small chunks", "PUT /v1/kv/c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + Rep("1\r\nx\r\n", 50) + "0\r\n\r\n", 201, false},
      {"TE chunked uppercase", "PUT /v1/kv/c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: CHUNKED\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 201, false},
      {"TE chunked with trailing OWS", "PUT /v1/kv/c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked \r\n\r\n3\r\nabc\r\n0\r\n\r\n", 201, false},
      {"DELETE existing", "DELETE /v1/kv/k HTTP/1.1\r\nHost: h\r\n\r\n", 204, false},
      {"DELETE missing", "DELETE /v1/kv/nope HTTP/1.1\r\nHost: h\r\n\r\n", 404, false},
      {"escaped unreserved byte: 308 to the canonical spelling", "GET /v1/kv/%6B HTTP/1.1\r\nHost: h\r\n\r\n", 308, false},
      {"lowercase hex: 308 to the canonical spelling", "GET /v1/kv/%c3%a9 HTTP/1.1\r\nHost: h\r\n\r\n", 308, false},
      {"key with %00", "GET /v1/kv/a%00b HTTP/1.1\r\nHost: h\r\n\r\n", 404, false},
      {"key with slash", "GET /v1/kv/a/b/c HTTP/1.1\r\nHost: h\r\n\r\n", 404, false},
      {"key with encoded slash: 308", "GET /v1/kv/a%2Fb HTTP/1.1\r\nHost: h\r\n\r\n", 308, false},
      {"PUT to a non-canonical spelling: 308, body skipped", "PUT /v1/kv/a%2fb HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc", 308, false},
      {"PUT with Expect to a non-canonical spelling: 308 then close", "PUT /v1/kv/a+b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n", 308, true},
      {"query string not part of the key", "GET /v1/kv/k?x=1&y HTTP/1.1\r\nHost: h\r\n\r\n", 200, false},
      {"key of max length", "GET /v1/kv/" + kKey1024 + " HTTP/1.1\r\nHost: h\r\n\r\n", 404, false},
      {"absolute-form target", "GET http://h/v1/kv/k HTTP/1.1\r\nHost: h\r\n\r\n", 200, false},
      {"absolute-form with port", "GET http://h:8080/healthz HTTP/1.1\r\nHost: h:8080\r\n\r\n", 200, false},
      {"leading empty lines", "\r\n\r\nGET /healthz HTTP/1.1\r\nHost: h\r\n\r\n", 200, false},
      {"header names are case-insensitive", "GET /healthz HTTP/1.1\r\nhOsT: h\r\n\r\n", 200, false},
      {"tab in header value", "GET /healthz HTTP/1.1\r\nHost: h\r\nX-A: a\tb\r\n\r\n", 200, false},
      {"no space after colon", "GET /healthz HTTP/1.1\r\nHost:h\r\n\r\n", 200, false},
      {"empty header value", "GET /healthz HTTP/1.1\r\nHost: h\r\nX-Empty:\r\n\r\n", 200, false},
      {"empty Host value (nginx refuses it too)", "GET /healthz HTTP/1.1\r\nHost:\r\n\r\n", 400, true},
      {"8-bit bytes in a header value", "GET /healthz HTTP/1.1\r\nHost: h\r\nX-A: \xc3\xa9t\xc3\xa9\r\n\r\n", 200, false},
      {"Upgrade is ignored", "GET /healthz HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", 200, false},
      {"h2c upgrade is ignored", "GET /healthz HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n", 200, false},
      {"Connection: keep-alive on 1.1", "GET /healthz HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n", 200, false},
      {"HTTP/1.0 with keep-alive", "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 200, false},
      {"HTTP/1.0 with Host and keep-alive", "GET /healthz HTTP/1.0\r\nHost: h\r\nConnection: Keep-Alive\r\n\r\n", 200, false},
      {"X-Request-Id and X-Forwarded-For", "GET /healthz HTTP/1.1\r\nHost: h\r\nX-Request-Id: abc\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For: 5.6.7.8\r\n\r\n", 200, false},
      {"Content-Type stored", "PUT /v1/kv/ct HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", 201, false},
      {"Content-Length with leading zeros", "PUT /v1/kv/z HTTP/1.1\r\nHost: h\r\nContent-Length: 003\r\n\r\nabc", 201, false},
      {"Content-Length with trailing OWS", "PUT /v1/kv/z HTTP/1.1\r\nHost: h\r\nContent-Length: 3 \r\n\r\nabc", 201, false},
      {"Content-Length at the body limit", "PUT /v1/kv/z HTTP/1.1\r\nHost: h\r\nContent-Length: 1024\r\n\r\n" + std::string(1024, 'b'), 201, false},
      {"chunked body at the body limit", "PUT /v1/kv/z HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n" + std::string(1024, 'b') + "\r\n0\r\n\r\n", 201, false},
      {"GET with a body: body skipped", "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello", 200, false},
      {"HEAD with a body: body skipped (SMUG-HEAD-CL-BODY)", "HEAD /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello", 200, false, true},
      {"DELETE with a chunked body: body skipped", "DELETE /v1/kv/k HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 204, false},
      {"GET with CL 0 (SMUG-CL0-BODY-POISON shape)", "GET /healthz HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", 200, false},
      {"Transfer_Encoding is not Transfer-Encoding", "GET /healthz HTTP/1.1\r\nHost: h\r\nTransfer_Encoding: chunked\r\n\r\n", 200, false},
      {"Expect 100-continue with body", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc", 201, false},
      {"Expect 100-continue, case-insensitive", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\nabc", 201, false},
      {"Expect 100-continue without body", "GET /healthz HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n", 200, false},
      {"Expect ignored on HTTP/1.0", "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\nExpect: whatever\r\n\r\n", 200, false},
      {"If-None-Match matching: 304", "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"5\"\r\n\r\n", 304, false},
      {"If-None-Match weak matching: 304", "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nIf-None-Match: W/\"5\"\r\n\r\n", 304, false},
      {"If-None-Match *: 304", "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nIf-None-Match: *\r\n\r\n", 304, false},
      {"If-None-Match list: 304", "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"1\", \"5\"\r\n\r\n", 304, false},
      {"If-None-Match over two lines: 304", "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"1\"\r\nIf-None-Match: \"5\"\r\n\r\n", 304, false},
      {"If-None-Match not matching: 200", "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"4\"\r\n\r\n", 200, false},
      {"If-None-Match foreign tag: 200", "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"abc\"\r\n\r\n", 200, false},
      {"If-None-Match leading zero is not ours: 200", "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"05\"\r\n\r\n", 200, false},
      {"PUT If-None-Match * on existing: 412", "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\nIf-None-Match: *\r\nContent-Length: 3\r\n\r\nabc", 412, false},
      {"PUT If-None-Match * on new: 201", "PUT /v1/kv/n HTTP/1.1\r\nHost: h\r\nIf-None-Match: *\r\nContent-Length: 3\r\n\r\nabc", 201, false},
      {"PUT If-Match current: 204", "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\nIf-Match: \"5\"\r\nContent-Length: 3\r\n\r\nabc", 204, false},
      {"PUT If-Match stale: 412", "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\nIf-Match: \"4\"\r\nContent-Length: 3\r\n\r\nabc", 412, false},
      {"PUT If-Match weak never matches: 412", "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\nIf-Match: W/\"5\"\r\nContent-Length: 3\r\n\r\nabc", 412, false},
      {"PUT If-Match on missing key: 412", "PUT /v1/kv/n HTTP/1.1\r\nHost: h\r\nIf-Match: *\r\nContent-Length: 3\r\n\r\nabc", 412, false},
      {"DELETE If-Match stale: 412", "DELETE /v1/kv/k HTTP/1.1\r\nHost: h\r\nIf-Match: \"9\"\r\n\r\n", 412, false},
      {"DELETE If-Match current: 204", "DELETE /v1/kv/k HTTP/1.1\r\nHost: h\r\nIf-Match: \"5\"\r\n\r\n", 204, false},
      {"POST /admin/compact on the main listener: 404", "POST /admin/compact HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", 404, false},

      // ---- request-level refusals: answered by the core, connection kept ----
      {"unknown path", "GET /nope HTTP/1.1\r\nHost: h\r\n\r\n", 404, false},
      {"root path", "GET / HTTP/1.1\r\nHost: h\r\n\r\n", 404, false},
      {"kv prefix without slash", "GET /v1/kv HTTP/1.1\r\nHost: h\r\n\r\n", 404, false},
      {"path prefix lookalike", "GET /v1/kvx/a HTTP/1.1\r\nHost: h\r\n\r\n", 404, false},
      {"healthz with trailing slash", "GET /healthz/ HTTP/1.1\r\nHost: h\r\n\r\n", 404, false},
      {"OPTIONS * (asterisk-form): 200 with Allow", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", 200, false},
      {"asterisk-form with GET: 400", "GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400, false},
      {"asterisk-form with DELETE: 400", "DELETE * HTTP/1.1\r\nHost: h\r\n\r\n", 400, false},
      {"absolute-form without path", "GET http://h HTTP/1.1\r\nHost: h\r\n\r\n", 404, false},
      {"write to the collection (listing) path", "DELETE /v1/kv/ HTTP/1.1\r\nHost: h\r\n\r\n", 405, false},
      {"listing with a query reaches the handler", "GET /v1/kv/?a=b HTTP/1.1\r\nHost: h\r\n\r\n", 200, false},
      {"invalid percent escape", "GET /v1/kv/%zz HTTP/1.1\r\nHost: h\r\n\r\n", 400, false},
      {"truncated percent escape", "GET /v1/kv/a%4 HTTP/1.1\r\nHost: h\r\n\r\n", 400, false},
      {"percent at end", "GET /v1/kv/a% HTTP/1.1\r\nHost: h\r\n\r\n", 400, false},
      {"fragment in target", "GET /v1/kv/a#b HTTP/1.1\r\nHost: h\r\n\r\n", 400, false},
      {"key one byte too long", "GET /v1/kv/" + kKey1025 + " HTTP/1.1\r\nHost: h\r\n\r\n", 414, false},
      {"decoded key too long", "GET /v1/kv/" + Rep("%41", 1025) + " HTTP/1.1\r\nHost: h\r\n\r\n", 414, false},
      {"PUT key too long: body skipped", "PUT /v1/kv/" + kKey1025 + " HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc", 414, false},
      {"POST on kv: 405", "POST /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc", 405, false},
      {"PATCH (implemented nowhere): 501, body skipped", "PATCH /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc", 501, false},
      {"OPTIONS on kv: 405", "OPTIONS /v1/kv/k HTTP/1.1\r\nHost: h\r\n\r\n", 405, false},
      {"TRACE (implemented nowhere): 501", "TRACE /v1/kv/k HTTP/1.1\r\nHost: h\r\n\r\n", 501, false},
      {"PUT on healthz: 405", "PUT /healthz HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx", 405, false},
      {"DELETE on readyz: 405", "DELETE /readyz HTTP/1.1\r\nHost: h\r\n\r\n", 405, false},
      {"HEAD on metrics", "HEAD /metrics HTTP/1.1\r\nHost: h\r\n\r\n", 200, false, true},
      {"PUT on metrics: 405", "PUT /metrics HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx", 405, false},
      {"GET /admin/compact on the main listener: 404", "GET /admin/compact HTTP/1.1\r\nHost: h\r\n\r\n", 404, false},
      {"invalid If-Match: 400", "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\nIf-Match: 5\r\nContent-Length: 3\r\n\r\nabc", 400, false},
      {"If-Match * mixed with a tag: 400", "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\nIf-Match: *, \"5\"\r\nContent-Length: 3\r\n\r\nabc", 400, false},
      {"If-Match unterminated tag: 400", "DELETE /v1/kv/k HTTP/1.1\r\nHost: h\r\nIf-Match: \"5\r\n\r\n", 400, false},
      {"If-Match empty: 400", "DELETE /v1/kv/k HTTP/1.1\r\nHost: h\r\nIf-Match:\r\n\r\n", 400, false},
      {"If-None-Match garbage: 400", "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nIf-None-Match: W/5\r\n\r\n", 400, false},
      {"unsupported Expect: 417", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\nContent-Length: 3\r\n\r\nabc", 417, false},
      {"duplicate Content-Type: 400", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nContent-Type: a/b\r\nContent-Type: c/d\r\nContent-Length: 3\r\n\r\nabc", 400, false},
      {"refusal with Connection: close closes", "GET /nope HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 404, true},
      {"refused Expect request with body closes", "PUT /v1/kv/" + kKey1025 + " HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", 414, true},

      // ---- connection management ----
      {"Connection: close", "GET /healthz HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 200, true},
      {"Connection: close, mixed case", "GET /healthz HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n", 200, true},
      {"Connection: close followed by a tab", "GET /healthz HTTP/1.1\r\nHost: h\r\nConnection: close\t\r\n\r\n", 200, true},
      {"Connection: close followed by spaces", "GET /healthz HTTP/1.1\r\nHost: h\r\nConnection: close  \r\n\r\n", 200, true},
      {"Connection: close in a list", "GET /healthz HTTP/1.1\r\nHost: h\r\nConnection: te,\tclose\t,foo\r\n\r\n", 200, true},
      {"Connection: close on a second line", "GET /healthz HTTP/1.1\r\nHost: h\r\nConnection: te\r\nConnection: close\r\n\r\n", 200, true},
      {"Connection: closed is not close", "GET /healthz HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n", 200, false},
      {"HTTP/1.0 keep-alive followed by a tab", "GET /healthz HTTP/1.0\r\nConnection: keep-alive\t\r\n\r\n", 200, true},
      {"HTTP/1.0 keep-alive and close", "GET /healthz HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", 200, true},
      {"HTTP/1.0 closes by default", "GET /healthz HTTP/1.0\r\n\r\n", 200, true},
      {"HTTP/1.0 PUT closes by default", "PUT /v1/kv/x HTTP/1.0\r\nContent-Length: 1\r\n\r\nx", 201, true},
      {"precondition refused before 100 Continue closes", "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\nIf-None-Match: *\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", 412, true, false, true},

      // ---- smuggling: Content-Length / Transfer-Encoding ----
      {"CL.TE (SMUG-CL-TE-BOTH)", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", 400, true},
      {"TE.CL", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n", 400, true},
      {"CL.TE smuggled GET (SMUG-CLTE-SMUGGLED-GET)", "POST /admin/compact HTTP/1.1\r\nHost: h\r\nContent-Length: 35\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /v1/kv/k HTTP/1.1\r\nX: X", 400, true},
      {"CL + TE identity", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: identity\r\n\r\nabc", 400, true},
      {"duplicate Content-Length, same value (SMUG-DUPLICATE-CL)", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400, true},
      {"duplicate Content-Length, different values", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400, true},
      {"Content-Length list, same (SMUG-CL-COMMA-SAME)", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\nabc", 400, true},
      {"Content-Length list, different (SMUG-CL-COMMA-DIFFERENT)", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 4\r\n\r\nabcd", 400, true},
      {"Content-Length with plus sign", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\nabc", 400, true},
      {"negative Content-Length", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400, true},
      {"hex Content-Length", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nContent-Length: 0x3\r\n\r\nabc", 400, true},
      {"empty Content-Length", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", 400, true},
      {"Content-Length with letters", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nContent-Length: 3a\r\n\r\nabc", 400, true},
      {"Content-Length with inner space", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nContent-Length: 1 2\r\n\r\nabcdefghijkl", 400, true},
      {"Content-Length overflow (MAL-CL-OVERFLOW)", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400, true},
      {"Content-Length in exponent form", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nContent-Length: 1e3\r\n\r\n", 400, true},
      {"space before colon in Content-Length", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nContent-Length : 3\r\n\r\nabc", 400, true},
      {"TE on HTTP/1.0 (SMUG-TE-HTTP10)", "PUT /v1/kv/x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400, true},
      {"TE identity: 501", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\nabc", 501, true},
      {"TE gzip: 501", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\nabc", 501, true},
      {"TE gzip, chunked: 501", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 501, true},
      {"TE identity, chunked: 501", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 501, true},
      {"TE chunked, identity: 501", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 501, true},
      {"TE chunked, chunked: 501", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 501, true},
      {"TE xchunked (SMUG-TE-XCHUNKED)", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 501, true},
      {"TE chunkedx", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunkedx\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 501, true},
      {"TE quoted chunked", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \"chunked\"\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 501, true},
      {"two TE fields", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 501, true},
      {"two TE fields, identity first", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400, true},
      {"TE with space before colon (SMUG-TE-SP-BEFORE-COLON)", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400, true},
      {"TE with vertical tab (SMUG-TE-VTAB)", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\x0b" "chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400, true},
      {"TE with form feed (SMUG-TE-FORMFEED)", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\x0c" "chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400, true},
      {"TE with NUL (SMUG-TE-NULL)", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\0\r\n\r\n3\r\nabc\r\n0\r\n\r\n"s, 400, true},
      {"TE obs-fold (SMUG-TE-OBS-FOLD)", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400, true},
      {"obs-fold in another header", "GET /healthz HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n", 400, true},
      {"obs-fold with tab", "GET /healthz HTTP/1.1\r\nHost: h\r\nX-A: a\r\n\tb\r\n\r\n", 400, true},
      {"whitespace before the first header", "GET /healthz HTTP/1.1\r\n Host: h\r\n\r\n", 400, true},

      // ---- smuggling: chunked framing ----
      {"chunk size not hex", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400, true},
      {"chunk size with trailing space", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n", 400, true},
      {"chunk size with leading space", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n 3\r\nabc\r\n0\r\n\r\n", 400, true},
      {"chunk size 0x prefix", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n", 400, true},
      {"negative chunk size (SMUG-CHUNK-NEGATIVE)", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n", 400, true},
      {"chunk size overflow (MAL-CHUNK-SIZE-OVERFLOW)", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF\r\nabc\r\n0\r\n\r\n", 400, true},
      {"chunk size 16 F's is over the body limit", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFF\r\nabc\r\n0\r\n\r\n", 413, true},
      {"missing chunk size", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\r\nabc\r\n0\r\n\r\n", 400, true},
      {"chunk data longer than size (SMUG-CHUNK-SPILL)", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n", 400, true},
      {"missing CRLF after chunk data", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc0\r\n\r\n", 400, true},
      {"LF-only chunk lines (SMUG-CHUNK-LF-TERM)", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n", 400, true},
      {"bare semicolon chunk extension (SMUG-CHUNK-BARE-SEMICOLON)", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;\r\nabc\r\n0\r\n\r\n", 400, true},
      {"chunk extension too long (MAL-CHUNK-EXT-64K)", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;a=" + std::string(20000, 'b') + "\r\nabc\r\n0\r\n\r\n", 400, true},
      {"chunked sum over the body limit", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n200\r\n" + std::string(512, 'a') + "\r\n201\r\n", 413, true},
      {"trailer section too long", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: " + std::string(17000, 't') + "\r\n\r\n", 431, true},
      {"Transfer-Encoding in the trailer (SMUG-TRAILER-TE)", "PUT /v1/kv/c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, true},
      {"several chunk extensions (llhttp 8.1 refuses them)", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b;c=d\r\nabc\r\n0\r\n\r\n", 400, true},
      {"bare CR in trailer", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: a\rb\r\n\r\n", 400, true},

      // ---- Host, version, request line ----
      {"HTTP/1.1 without Host (RFC9112-7.1-MISSING-HOST)", "GET /healthz HTTP/1.1\r\n\r\n", 400, true},
      {"duplicate Host (RFC9110-5.4-DUPLICATE-HOST)", "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, true},
      {"duplicate Host, same value", "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400, true},
      {"duplicate Host, different case", "GET /healthz HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", 400, true},
      {"HTTP/0.9 request line (RFC9112-2.3-HTTP09-REQUEST)", "GET /healthz\r\n\r\n", 400, true},
      {"HTTP/0.9 version", "GET /healthz HTTP/0.9\r\n\r\n", 505, true},
      {"HTTP/1.2 is served as HTTP/1.1", "GET /healthz HTTP/1.2\r\nHost: h\r\n\r\n", 200, false},
      {"HTTP/1.9 is served as HTTP/1.1", "GET /healthz HTTP/1.9\r\nHost: h\r\n\r\n", 200, false},
      {"HTTP/1.2 needs Host like 1.1", "GET /healthz HTTP/1.2\r\n\r\n", 400, true},
      {"HTTP/1.2 with Connection: close", "GET /healthz HTTP/1.2\r\nHost: h\r\nConnection: close\r\n\r\n", 200, true},
      {"HTTP/0.0", "GET /healthz HTTP/0.0\r\n\r\n", 505, true},
      {"HTTP/9.1", "GET /healthz HTTP/9.1\r\nHost: h\r\n\r\n", 505, true},
      {"RTSP/1.0 protocol name", "GET /healthz RTSP/1.0\r\nHost: h\r\n\r\n", 400, true},
      {"RTSP/1.0 with keep-alive", "GET /healthz RTSP/1.0\r\nConnection: keep-alive\r\n\r\n", 400, true},
      {"ICE/1.0 protocol name", "GET /healthz ICE/1.0\r\nHost: h\r\n\r\n", 400, true},
      {"SOURCE with ICE/1.0", "SOURCE /healthz ICE/1.0\r\nHost: h\r\n\r\n", 400, true},
      {"HTTPS/1.1 protocol name", "GET /healthz HTTPS/1.1\r\nHost: h\r\n\r\n", 400, true},
      {"HTTP/2.0 request line", "GET /healthz HTTP/2.0\r\nHost: h\r\n\r\n", 505, true},
      {"HTTP/2 preface (MAL-H2-PREFACE)", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, true},
      {"HTTP/3.0", "GET /healthz HTTP/3.0\r\nHost: h\r\n\r\n", 505, true},
      {"lowercase http version", "GET /healthz http/1.1\r\nHost: h\r\n\r\n", 400, true},
      {"version without minor", "GET /healthz HTTP/1\r\nHost: h\r\n\r\n", 505, true},
      {"lowercase method", "get /healthz HTTP/1.1\r\nHost: h\r\n\r\n", 400, true},
      {"unknown method: 501, kept alive", "FOO /healthz HTTP/1.1\r\nHost: h\r\n\r\n", 501, false},
      {"unknown method with a body: 501, body skipped", "FOO /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello", 501, false},
      {"unknown method with a chunked body: 501, body skipped", "BREW /v1/kv/k HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 501, false},
      {"unknown method on HTTP/1.0: 501, closes", "FOO /healthz HTTP/1.0\r\n\r\n", 501, true},
      {"unknown method with a bad body framing: 400", "FOO /healthz HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400, true},
      {"WebDAV method: 501", "PROPFIND /v1/kv/k HTTP/1.1\r\nHost: h\r\n\r\n", 501, false},
      {"method with dash and underscore: 501", "X-MY_METHOD /healthz HTTP/1.1\r\nHost: h\r\n\r\n", 501, false},
      {"method token of 25 bytes: 400", std::string(25, 'M') + " /healthz HTTP/1.1\r\nHost: h\r\n\r\n", 400, true},
      {"method with a digit: 400", "GET2 /healthz HTTP/1.1\r\nHost: h\r\n\r\n", 400, true},
      {"space before the method: 400", " GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n", 400, true},
      {"CONNECT", "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", 501, true},
      // RFC 9112 §3: a recipient MAY split the request line on whitespace.
      {"two spaces after method", "GET  /healthz HTTP/1.1\r\nHost: h\r\n\r\n", 200, false},
      {"tab as separator", "GET\t/healthz HTTP/1.1\r\nHost: h\r\n\r\n", 400, true},
      {"space in target", "GET /v1/kv/a b HTTP/1.1\r\nHost: h\r\n\r\n", 400, true},
      {"control byte in target", "GET /v1/kv/a\x01" "b HTTP/1.1\r\nHost: h\r\n\r\n", 400, true},
      {"DEL in target", "GET /v1/kv/a\x7f" "b HTTP/1.1\r\nHost: h\r\n\r\n", 400, true},
      {"missing target", "GET HTTP/1.1\r\nHost: h\r\n\r\n", 400, true},
      // RFC 9112 §2.2: a recipient MAY accept a bare LF ending the request line (nginx does).
      {"request line with LF only", "GET /healthz HTTP/1.1\nHost: h\r\n\r\n", 200, false},
      {"bare LF header lines", "GET /healthz HTTP/1.1\r\nHost: h\nX: y\n\n", 400, true},
      {"TLS ClientHello bytes", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"s, 400, true},
      {"NUL at start", "\0GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n"s, 400, true},

      // ---- malformed header fields ----
      {"header without colon", "GET /healthz HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400, true},
      {"empty header name", "GET /healthz HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n", 400, true},
      {"space in header name", "GET /healthz HTTP/1.1\r\nHost: h\r\nX A: v\r\n\r\n", 400, true},
      {"non-token header name", "GET /healthz HTTP/1.1\r\nHost: h\r\nX(A): v\r\n\r\n", 400, true},
      {"NUL in header value", "GET /healthz HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n"s, 400, true},
      {"bare CR in header value", "GET /healthz HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n", 400, true},
      {"DEL in header value", "GET /healthz HTTP/1.1\r\nHost: h\r\nX-A: a\x7f" "b\r\n\r\n", 400, true},
      {"control byte in header value", "GET /healthz HTTP/1.1\r\nHost: h\r\nX-A: a\x01" "b\r\n\r\n", 400, true},
      {"8-bit byte in header name", "GET /healthz HTTP/1.1\r\nHost: h\r\nX-\xc3\xa9: v\r\n\r\n", 400, true},

      // ---- Host and request-target syntax (nginx's checks) ----
      {"Host with port", "GET /healthz HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", 200, false},
      {"Host IPv6 literal", "GET /healthz HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", 200, false},
      {"Host with a trailing dot", "GET /healthz HTTP/1.1\r\nHost: example.com.\r\n\r\n", 200, false},
      {"Host with underscore", "GET /healthz HTTP/1.1\r\nHost: my_host\r\n\r\n", 200, false},
      {"Host with a slash", "GET /healthz HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, true},
      {"Host with two dots in a row", "GET /healthz HTTP/1.1\r\nHost: a..b\r\n\r\n", 400, true},
      {"Host with a space", "GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n", 400, true},
      {"Host with a tab", "GET /healthz HTTP/1.1\r\nHost: a\tb\r\n\r\n", 400, true},
      {"Host only a port", "GET /healthz HTTP/1.1\r\nHost: :80\r\n\r\n", 400, true},
      {"Host only a dot", "GET /healthz HTTP/1.1\r\nHost: .\r\n\r\n", 400, true},
      {"Host on HTTP/1.0 is checked too", "GET /healthz HTTP/1.0\r\nHost: a/b\r\n\r\n", 400, true},
      {"tab inside the request target", "GET /healthz\t HTTP/1.1\r\nHost: h\r\n\r\n", 400, true},
      {"tab inside a key", "GET /v1/kv/a\tb HTTP/1.1\r\nHost: h\r\n\r\n", 400, true},
      {"form feed inside a key", "GET /v1/kv/a\x0c" "b HTTP/1.1\r\nHost: h\r\n\r\n", 400, true},
      {"8-bit bytes in the target: redirected to the canonical spelling", "GET /v1/kv/\xc3\xa9t\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", 308, false},

      // ---- stored representation: refused before the body ----
      {"PUT with Content-Encoding gzip: 415", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc", 415, false},
      {"PUT with Content-Encoding identity", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nContent-Encoding: identity\r\nContent-Length: 3\r\n\r\nabc", 201, false},
      {"PUT with an empty Content-Encoding: 415", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nContent-Encoding:\r\nContent-Length: 3\r\n\r\nabc", 415, false},
      {"PUT with Content-Encoding and Expect: 415, closes", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nContent-Encoding: br\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", 415, true},
      {"Content-Type of 255 bytes", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nContent-Type: a/" + std::string(253, 'b') + "\r\nContent-Length: 3\r\n\r\nabc", 201, false},
      {"Content-Type of 256 bytes: 431", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nContent-Type: a/" + std::string(254, 'b') + "\r\nContent-Length: 3\r\n\r\nabc", 431, false},
      {"GET with a long Content-Type is fine", "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Type: a/" + std::string(300, 'b') + "\r\n\r\n", 200, false},

      // ---- message boundaries llhttp 8.1 gets wrong (bare CR, unchecked CRLF) ----
      {"chunk-size ended by CR + byte", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\rXabc\r\n0\r\n\r\n", 400, true},
      {"chunk-size ended by CR CR", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\r;ABCD\r\n34\r\nE\r\n0\r\n\r\n", 400, true},
      {"chunk-ext ended by CR + byte", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b\rXabc\r\n0\r\n\r\n", 400, true},
      {"last-chunk ended by CR + byte", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\rX\r\n", 400, true},
      {"trailer section ended by CR + byte", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\rX", 400, true},
      {"chunk data followed by two other bytes", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n", 400, true},
      {"chunk data followed by LF only", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n\n0\r\n\r\n", 400, true},
      {"header section ended by CR + byte", "GET /healthz HTTP/1.1\r\nHost: h\r\n\rX", 400, true},
      {"empty field value then CR + byte", "GET /healthz HTTP/1.1\r\nHost: h\r\nX-A:\rZ\r\n\r\n", 400, true},
      {"request line ended by a bare CR", "GET /healthz HTTP/1.1\rHost: h\r\n\r\n", 400, true},
      {"HEAD refused before its head is complete", "HEAD /healthz HTTP/1.1\r\nHost: h\r\n\rX", 400, true, true},
      {"HEAD with a bad Host", "HEAD /healthz HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, true, true},
      {"HEAD on an unknown path: 404", "HEAD /nope HTTP/1.1\r\nHost: h\r\n\r\n", 404, false, true},

      // ---- limits ----
      {"request line over 8 KiB (MAL-LONG-URL)", "GET /healthz?" + std::string(8200, 'q') + " HTTP/1.1\r\nHost: h\r\n\r\n", 414, true},
      {"long method-less garbage line", std::string(9000, 'A'), 400, true},
      {"request line just under 8 KiB", "GET /healthz?" + std::string(8150, 'q') + " HTTP/1.1\r\nHost: h\r\n\r\n", 200, false},
      {"header section over 16 KiB", "GET /healthz HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(16400, 'x') + "\r\n\r\n", 431, true},
      {"header section under 16 KiB", "GET /healthz HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(8000, 'x') + "\r\nX-Big2: " + std::string(7900, 'x') + "\r\n\r\n", 200, false},
      {"header line of 8 KiB", "GET /healthz HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(8192 - 7, 'x') + "\r\n\r\n", 200, false},
      {"header line over 8 KiB (nginx: 400)", "GET /healthz HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(8192 - 6, 'x') + "\r\n\r\n", 431, true},
      {"101 header fields (MAL-MANY-HEADERS)", "GET /healthz HTTP/1.1\r\nHost: h\r\n" + ManyHeaders(100) + "\r\n", 431, true},
      {"100 header fields", "GET /healthz HTTP/1.1\r\nHost: h\r\n" + ManyHeaders(99) + "\r\n", 200, false},
      {"long header name", "GET /healthz HTTP/1.1\r\nHost: h\r\nX-" + std::string(17000, 'n') + ": v\r\n\r\n", 431, true},
      {"long whitespace padding", "GET /healthz HTTP/1.1\r\nHost: h\r\nX-A:" + std::string(17000, ' ') + "v\r\n\r\n", 431, true},
      {"Content-Length over the body limit", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nContent-Length: 1025\r\n\r\n", 413, true},
      {"huge Content-Length", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551615\r\n\r\n", 413, true},
      {"chunk over the body limit", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n401\r\n", 413, true},
      {"GET with a body over the limit", "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length: 5000\r\n\r\n", 413, true},
  };
  return v;
}

struct Outcome {
  std::vector<testing::ParsedResponse> responses;
  bool closed = false;
  int interim = 0;
};

Outcome Run(const Vector& vec, FakeKvHandler::Mode mode, bool byte_by_byte) {
  Harness h(mode, VectorLimits());
  h.handler.store["k"] = {5, "value", "text/plain"};
  std::string bytes = vec.request + kFollowUp;
  if (byte_by_byte) {
    h.FeedInSteps(bytes, 1);
  } else {
    h.Feed(bytes);
  }
  Outcome out;
  std::vector<size_t> head_at;
  if (vec.head) head_at.push_back(0);
  auto all = SplitResponses(h.wire, true, head_at);
  for (auto& r : all) {
    if (r.status >= 100 && r.status < 200) {
      ++out.interim;
    } else {
      out.responses.push_back(std::move(r));
    }
  }
  out.closed = h.conn->ShouldClose();
  return out;
}

TEST_CASE("the request vector table has at least 150 vectors with distinct names", "[http][vectors]") {
  CHECK(Vectors().size() >= 150);
  std::set<std::string> names;
  for (const Vector& v : Vectors()) names.insert(v.name);
  CHECK(names.size() == Vectors().size());
}

TEST_CASE("each request vector gets its status, closes only after framing errors, never answers twice",
          "[http][vectors]") {
  for (const Vector& vec : Vectors()) {
    for (auto mode : {FakeKvHandler::Mode::kSync, FakeKvHandler::Mode::kDeferred}) {
      if (vec.sync_only && mode == FakeKvHandler::Mode::kDeferred) continue;
      for (bool byte_by_byte : {false, true}) {
        INFO("vector: " << vec.name << (mode == FakeKvHandler::Mode::kSync ? " [sync]" : " [deferred]")
                        << (byte_by_byte ? " [byte by byte]" : " [whole]"));
        Outcome out = Run(vec, mode, byte_by_byte);
        CHECK_FALSE(out.responses.empty());
        if (out.responses.empty()) continue;
        bool well_formed = true;
        for (const auto& r : out.responses) well_formed = well_formed && r.status != -1;
        CHECK(well_formed);
        CHECK(out.responses[0].status == vec.status);
        CHECK(out.interim <= 1);
        if (vec.closes) {
          CHECK(out.responses.size() == 1);  // the follow-up is never answered
          CHECK(out.closed);
          CHECK(out.responses[0].Header("connection") == "close");
        } else {
          CHECK(out.responses.size() == 2);  // exactly one answer per request
          if (out.responses.size() == 2) {
            CHECK(out.responses[1].status == 200);
            CHECK(out.responses[1].body == "ok\n");
          }
          CHECK_FALSE(out.closed);
        }
        if (out.responses[0].status >= 400) {
          CHECK(out.responses[0].Header("content-type") == "application/problem+json");
        }
        if (out.responses[0].status == 405) CHECK(out.responses[0].Has("allow"));
      }
    }
  }
}

// The fast head recogniser (http/fast_head.h) must never change a reading:
// every vector, behind a canonical GET and before the follow-up, gives the
// same events, requests and errors with and without it, fed whole and in pieces.
TEST_CASE("each request vector reads the same with and without the fast head recogniser", "[http][vectors]") {
  const std::string canonical = "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\n\r\n";
  uint64_t taken_total = 0;
  for (const Vector& vec : Vectors()) {
    for (const std::string& input : {vec.request + kFollowUp, canonical + vec.request + kFollowUp}) {
      for (size_t piece : {SIZE_MAX, size_t{1}, size_t{5}}) {
        uint64_t taken = 0;
        const std::string fast = testing::ParserTrace(input, VectorLimits(), true, piece, &taken);
        const std::string full = testing::ParserTrace(input, VectorLimits(), false, piece);
        INFO("vector: " << vec.name << " piece " << piece << "\nfull parser:\n" << full << "with recogniser:\n" << fast);
        CHECK(fast == full);
        taken_total += taken;
      }
    }
  }
  CHECK(taken_total >= Vectors().size());
}

}  // namespace
}  // namespace kingx::http
