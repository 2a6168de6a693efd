// FastHead: a strict recogniser for the canonical GET/HEAD/PUT request head
// (internal to http/, used by the Parser only).
//
// It accepts only a head that lies whole in the input and is spelled in a
// narrow grammar that llhttp plus the Parser's own checks read one way only:
//
//   ("GET" / "HEAD" / "PUT") SP "/" target-chars SP "HTTP/1.1" CRLF
//   *( known-name ":" *SP value CRLF )
//   CRLF
//
// where target-chars are ALPHA DIGIT and "-._~!$&'()*+,;=:@/%?"; a name is
// one of a fixed list (matched without regard to case: Host, User-Agent,
// Referer, X-Request-Id, X-Forwarded-For, Connection and Content-Type, whose
// values the Parser keeps, and Accept, Accept-Encoding, Accept-Language,
// Cache-Control and Pragma, which it ignores); a value is 1 or more bytes of
// 0x20-0x7E that neither start nor end with SP; each kept name appears at
// most once; and a Connection value is "keep-alive" (any case). A PUT head
// carries exactly one Content-Length, "0" or 1 to kMaxLengthDigits digits
// without a leading zero, and GET and HEAD heads none: the body that follows
// a PUT head is framed by that length alone. Anything else (another method
// or version, an empty line before the request line, any other header that
// bears on framing or meaning such as Transfer-Encoding, Expect, Upgrade,
// If-Match, If-None-Match, Content-Encoding, a repeated kept field, HTAB,
// obs-fold, a bare CR or LF, a byte outside the grammar, a head longer than
// `max_bytes` or with more than `max_fields` field lines, a head not yet
// complete) is not recognised and is left to the full parser, which then
// reads the same bytes from the start. So every recognised head is one the
// full parser accepts with the same reading, and its connection stays
// persistent.
//
// Pure function of its arguments; any thread; no allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace kingx::http {

struct FastHead {
  // The header fields whose values a Request carries.
  enum class Field : uint8_t { kHost, kUserAgent, kReferer, kXRequestId, kXForwardedFor, kConnection, kContentType };
  static constexpr size_t kFieldKinds = 7;
  enum class Verb : uint8_t { kGet, kHead, kPut };
  // Longest Content-Length value recognised: its number fits 64 bits with
  // room to spare (a longer one, or one with a leading zero, goes to the
  // full parser).
  static constexpr size_t kMaxLengthDigits = 18;
  // Most field lines a recognised head has.
  static constexpr size_t kMaxFieldLines = 16;
  struct Value {
    Field field = Field::kHost;
    uint32_t off = 0;  // offsets into the input, value without surrounding SP
    uint32_t len = 0;
  };

  Verb verb = Verb::kGet;
  uint64_t content_length = 0;  // PUT: the body's length (GET, HEAD: 0, no body)
  uint32_t target_off = 0;
  uint32_t target_len = 0;
  Value values[kFieldKinds];
  size_t value_count = 0;
  size_t field_lines = 0;    // header field lines, kept or ignored
  size_t head_bytes = 0;     // the whole head, through its empty line
};

// True when `input` begins with a whole head of the grammar above of at most
// `max_bytes` bytes and at most `max_fields` field lines; then *out describes
// it. False otherwise (*out is then unspecified).
bool RecogniseFastHead(std::string_view input, size_t max_bytes, size_t max_fields, FastHead* out);

}  // namespace kingx::http
