// Entity tags: parsing If-Match / If-None-Match and formatting our ETags.
//
// Our ETags are strong and carry the record's sequence number: "<seq>".
// Pure functions; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http/request.h"

namespace kingx::http {

// Longest formatted ETag: quotes + 20 digits.
inline constexpr size_t kMaxEtagChars = 22;

// Writes "\"<seq>\"" into out (at least kMaxEtagChars bytes); returns its length.
size_t FormatEtag(uint64_t seq, char* out);

// Parses one field value of If-Match / If-None-Match (RFC 9110 §13.1.1:
// "*" / #entity-tag) and appends to *pre (several header lines combine into
// one list; "*" combined with anything else is invalid). Tags not of the
// form "<decimal uint64>" are kept as foreign (they match nothing of ours).
// Returns false on a syntax error (*pre is then unspecified); the core
// answers 400.
bool ParseEntityTags(std::string_view value, Precondition* pre);

}  // namespace kingx::http
