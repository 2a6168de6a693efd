// FramingCheck: an independent reading of the bytes that delimit a request
// (internal to http/), run by the Parser over exactly the bytes llhttp
// consumed, so that a message is refused whenever llhttp's idea of where it
// ends differs from RFC 9112's.
//
// Why a second reading: the llhttp that Debian 12 ships (8.1.0) takes a bare
// CR followed by any byte as the end of a chunk-size, chunk-extension,
// last-chunk or trailer line; it skips the two bytes after chunk data without
// looking at them; and it ends a header section at CR LF CR plus any byte
// (and, after an empty field value, swallows the byte that follows a bare
// CR). Each lets one request carry a second one that a front end reading the
// grammar strictly never sees. These checks re-derive every line end and the
// chunked message end from the grammar itself; the Parser fails the request
// (400, close) as soon as either reading objects, and at every event it
// cross-checks that both readings put body bytes and the message end at the
// same offsets.
//
// Both classes are plain state machines over byte spans fed in order (any
// split), with no allocation and no bound on how long they run: limits are
// the Parser's business. One thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace kingx::http {

// The request line and header section. Rules: every CR is followed by LF
// (RFC 9112 §2.2: a bare CR makes the element invalid); a line after the
// request line does not start with SP or HTAB (obs-fold, refused as nginx
// does); CR/LF before the request line are empty lines (allowed, §2.2). It
// also notes the protocol name of the request line: the last
// whitespace-separated token must start with "HTTP/" (llhttp 8.1 also
// accepts "RTSP/" and "ICE/").
class HeadCheck {
 public:
  // Feeds consumed head bytes. Returns false once the head is malformed
  // (then error() says why; further calls keep returning false).
  bool Scan(std::span<const char> bytes);
  bool failed() const { return !error_.empty(); }
  std::string_view error() const { return error_; }
  // True when the request line is complete and its protocol token starts
  // with "HTTP/".
  bool protocol_is_http() const { return protocol_http_; }
  // The longest header field line so far (bytes without its CRLF), the
  // line being read included; 0 until the request line is complete.
  size_t longest_field_line() const {
    return line_ == Line::kField && line_bytes_ > longest_field_line_ ? line_bytes_ : longest_field_line_;
  }
  void Reset() { *this = HeadCheck{}; }

 private:
  enum class Line : uint8_t {
    kBeforeRequest,  // only CR/LF so far (empty lines before the request line)
    kRequest,        // in the request line
    kField,          // in the header section
  };
  bool Refuse(std::string_view why);

  std::string_view error_;
  Line line_ = Line::kBeforeRequest;
  bool prev_cr_ = false;       // the previous byte was CR: the next must be LF
  bool at_line_start_ = true;  // the previous byte was LF (or nothing yet)
  bool protocol_http_ = false;
  size_t line_bytes_ = 0;          // bytes of the current line (without CR/LF)
  size_t longest_field_line_ = 0;
  uint8_t token_len_ = 0;      // bytes of the request line's current token
  char token_[5] = {};         // its first bytes
};

// A chunked body, from the first chunk-size byte to the LF that ends the
// trailer section (RFC 9112 §7.1):
//   chunked-body = *chunk last-chunk trailer-section CRLF
//   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
// chunk-ext bytes are not parsed here (llhttp does) but may hold no CR, LF
// or control byte other than HTAB, so the first CR ends the line; trailer
// field lines are checked for line structure only (llhttp checks their
// syntax), and a trailer line may not start with SP or HTAB.
class ChunkedCheck {
 public:
  // Feeds consumed body bytes. Returns false once the framing is malformed,
  // including any byte after the end of the chunked body (then error() says
  // why; further calls keep returning false). After each call,
  // trailing_data() is how many of the last bytes of `bytes` were
  // chunk-data.
  bool Scan(std::span<const char> bytes);
  bool failed() const { return !error_.empty(); }
  std::string_view error() const { return error_; }
  // The LF that ends the chunked body has been scanned.
  bool done() const { return state_ == State::kDone; }
  uint64_t data_bytes() const { return data_bytes_; }
  size_t trailing_data() const { return trailing_data_; }
  void Reset() { *this = ChunkedCheck{}; }

 private:
  enum class State : uint8_t {
    kSizeFirst,     // expecting the first hex digit of a chunk-size
    kSize,          // in the chunk-size
    kExt,           // in chunk-ext, up to the CR
    kSizeLf,        // CR seen at the end of the size line: LF must follow
    kData,          // in chunk-data, remaining_ bytes left
    kDataCr,        // chunk-data done: CR must follow
    kDataLf,        // then LF
    kTrailerStart,  // at the start of a trailer line (or the final CRLF)
    kTrailer,       // in a trailer field line, up to the CR
    kTrailerLf,     // CR seen at the end of a trailer line: LF must follow
    kEndLf,         // CR of the final empty line seen: LF must follow
    kDone,          // the chunked body ended
  };
  bool Refuse(std::string_view why);

  std::string_view error_;
  State state_ = State::kSizeFirst;
  uint64_t size_ = 0;        // chunk-size being read
  uint64_t remaining_ = 0;   // chunk-data bytes still expected
  uint64_t data_bytes_ = 0;  // chunk-data bytes so far
  size_t trailing_data_ = 0;
};

}  // namespace kingx::http
