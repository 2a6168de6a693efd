// Response: what a Handler gives to Connection::Respond.
//
// Respond serializes the status line and headers at once, so every
// string_view in a Response need only be valid during the Respond call. The
// body is either copied (body_holder empty, or a body of at most
// Connection::kCopyBodyMaxBytes) or, when body_holder is set, referenced
// without copying: the Connection keeps a copy of the shared_ptr (and thus
// the bytes behind `body`) alive until those bytes were consumed by
// ConsumeOutput or the Connection is destroyed. Use the holder for values
// served from an mmap'ed segment or a large owned buffer, and a BodyStream
// for a body that should not be produced all at once.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

namespace kingx::http {

// A response body produced piece by piece while it is sent (a stored value
// decoded frame by frame), so that neither the whole body nor the work of
// producing it is needed at once. The Connection keeps it (through the
// Response's shared_ptr) until its last piece was written or the connection
// is destroyed, and calls it on the Connection's thread only.
class BodyStream {
 public:
  virtual ~BodyStream() = default;
  enum class Pull : uint8_t {
    kPiece,  // *piece holds the next 1.. bytes of the body
    kAgain,  // nothing now (e.g. a disk read in flight): the producer calls
             // Connection::ResumeOutput later, then the I/O layer re-reads
             // the Connection's observers. Once the client has taken every
             // byte sent so far, the wait is the server's, not the client's:
             // it does not count against the send deadline (which runs again
             // from the piece's arrival), so the producer bounds it: its own
             // I/O only. A producer that may wait longer than that (for room
             // other responses hold) must get what it needs before its
             // response is begun.
    kError,  // the body cannot be completed: the connection is closed after
             // what was already queued (the client sees a short body)
  };
  // The next piece. It stays valid and unchanged until the next call to Next
  // or the stream's destruction; the Connection calls Next again only once
  // the previous piece was written whole (ConsumeOutput), and never after
  // the pieces added up to Response::stream_length.
  virtual Pull Next(std::string_view* piece) = 0;
};

struct Header {
  std::string_view name;
  std::string_view value;  // must not contain CR or LF (asserted)
};

struct Response {
  // Any 2xx..5xx status. 1xx are produced by the core only (100 Continue).
  int status = 200;
  // Well-known headers with typed fields (empty / nullopt = not sent).
  std::string_view content_type;          // Content-Type
  std::optional<uint64_t> etag_seq;       // ETag: "<seq>" (strong)
  std::optional<uint32_t> retry_after_s;  // Retry-After: <seconds>
  std::string_view location;              // Location
  std::string_view allow;                 // Allow (e.g. "GET, HEAD")
  // Any other header; at most kMaxExtraHeaders. The core writes Date,
  // Content-Length, Connection and Keep-Alive itself: do not add those.
  static constexpr size_t kMaxExtraHeaders = 6;
  std::array<Header, kMaxExtraHeaders> extra{};
  size_t extra_count = 0;
  // Adds an extra header; returns false (and adds nothing) when full.
  bool AddHeader(std::string_view name, std::string_view value) {
    if (extra_count == kMaxExtraHeaders) return false;
    extra[extra_count++] = Header{name, value};
    return true;
  }

  // The body. For a HEAD request the core sends the headers only, with
  // Content-Length = head_content_length if set, else body.size(); so a
  // handler may answer GET and HEAD with the same Response. 204 and 304
  // never carry a body (and, per RFC 9110 §8.6, 204 never a Content-Length).
  std::string_view body;
  std::shared_ptr<const void> body_holder;  // non-null: zero-copy, see above
  std::optional<uint64_t> head_content_length;
  // For a HEAD whose GET's length is known only once its content is made (a
  // backup's, at its cut): no Content-Length is sent (RFC 9110 §9.3.2, §8.6).
  bool head_without_length = false;
  // Instead of `body`: a body of stream_length bytes produced while it is
  // sent (Content-Length: stream_length). Dropped, unread, for HEAD, 204 and
  // 304. While it is being sent, the next pipelined request waits.
  std::shared_ptr<BodyStream> stream;
  uint64_t stream_length = 0;

  // Close the connection after this response even if the request asked for
  // keep-alive ("Connection: close" is sent).
  bool close = false;
};

}  // namespace kingx::http
