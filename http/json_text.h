// JSON string literals (RFC 8259 §7) for the bodies the HTTP layer writes
// itself: problem details and listing pages. Pure functions, any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace kingx::http {

// How the bytes of a string are to be read.
enum class JsonBytes : uint8_t {
  kUtf8,    // UTF-8 text (the caller checked it, e.g. IsValidUtf8): bytes
            // >= 0x80 are copied as they are
  kLatin1,  // one character per byte, ISO-8859-1 (an HTTP field's obs-text,
            // or bytes of unknown encoding): bytes >= 0x80 are written
            // \u00XX, so the output is ASCII and valid JSON whatever the input
};

// Appends `s` as a JSON string, quotes included: '"' and '\\' are escaped
// with a backslash, control characters (below 0x20, and DEL) as \u00XX.
// Never fails; appends at most 2 + 6 * s.size() bytes.
void AppendJsonString(std::string* out, std::string_view s, JsonBytes bytes);

}  // namespace kingx::http
