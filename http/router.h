// Router: maps a request-target and method to a Route, and decodes the key
// (internal to http/; used by the Parser once a head is complete).
//
// Pure functions; any thread.
#pragma once

#include <string>
#include <string_view>

#include "http/http_limits.h"
#include "http/parser.h"
#include "http/request.h"

namespace kingx::http {

// What "OPTIONS *" advertises: every method some resource implements.
inline constexpr std::string_view kServerMethods = "GET, HEAD, PUT, DELETE, POST, OPTIONS";

// Routes `target` (origin-form "/path?query" or absolute-form
// "http://host/path?query"; the query is ignored) for `method`.
// On success returns true, sets *route and, for kKv, appends the
// percent-decoded key to *key_out (binary-safe). On failure returns false
// and fills *error: 404 unknown path, 405 known path with another method
// (error->allow set), 400 empty key / invalid %-escape / fragment or
// malformed target, 414 key longer than limits.max_key_bytes, 308 a key not
// in its canonical spelling (key_spelling.h): error->location is
// "/v1/kv/<canonical spelling>" followed by the target's query, if any.
// `listener` decides which routes exist at all (see Listener).
bool RouteRequest(std::string_view target, Method method, const Limits& limits, Route* route,
                  std::string* key_out, ParseError* error, Listener listener = Listener::kMain);

// The problem detail of every 404 for a path no route serves.
inline constexpr std::string_view kNoResourceDetail = "No resource at this path.";

// Percent-decodes `in` (no '+' rule: this is a path) and appends to *out.
// Returns false on an invalid escape ('%' not followed by two hex digits).
bool PercentDecode(std::string_view in, std::string* out);

// The Allow header value of a route ("GET, HEAD, PUT, DELETE", ...).
std::string_view AllowedMethods(Route route);

}  // namespace kingx::http
