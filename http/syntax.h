// Syntax of the request pieces the Parser checks itself (internal to http/):
// tokens, the method charset, Host, Connection options. Pure functions of
// their arguments; any thread.
#pragma once

#include <string_view>

namespace kingx::http {

// ASCII case-insensitive equality.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// RFC 9110 §5.6.2 tchar (header field names). llhttp 8.1 lets a space and
// an empty name through.
bool IsTchar(unsigned char c);

// A byte of a method token as nginx accepts it: 'A'-'Z', '_' or '-'.
bool IsMethodChar(char c);

// True when `s` holds a byte a request-target may not: a space, a control
// character (0x00-0x1f) or DEL. Eight bytes per step.
bool HasSpaceOrControl(std::string_view s);

// `v` without leading and trailing SP/HTAB (RFC 9110 OWS).
std::string_view TrimOws(std::string_view v);

// nginx's Host check (ngx_http_validate_host): no "..", no '/', no space or
// control character, and not empty once a ":port" and one trailing dot are
// removed ("[v6]" literals allowed).
bool ValidHost(std::string_view host);

// The options of a Connection field value (all occurrences joined by ", "):
// comma-separated tokens, OWS around each ignored, case-insensitive.
struct ConnectionOptions {
  bool close = false;       // "close"
  bool keep_alive = false;  // "keep-alive"
};
ConnectionOptions ParseConnection(std::string_view value);

}  // namespace kingx::http
