// Limits: every bound the HTTP core enforces on one connection.
// (Named http_limits.h, not limits.h: a file called limits.h next to the
// sources would shadow the C library header for includes that use <...>.)
//
// All values are configurable (the server's config fills them); the defaults
// are the ones a user of nginx would recognise. A Limits object is a plain
// value: copy it into each Connection's owner, or share one const instance
// per worker. The Connection keeps a reference, so the object must outlive
// every Connection built from it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace kingx::http {

struct Limits {
  // Request line (method SP target SP version, without its CRLF) longer
  // than this → 414. nginx: large_client_header_buffers 4 8k.
  size_t max_request_line_bytes = 8192;
  // Whole head (request line, header fields and the empty line that ends
  // them) longer than this → 431. (nginx allows up to four 8 KiB buffers.)
  size_t max_header_bytes = 16384;
  // One header field line (name, colon, value) longer than this → 431.
  // nginx: large_client_header_buffers 4 8k (it answers 400).
  size_t max_header_line_bytes = 8192;
  // More header fields than this → 431.
  size_t max_header_fields = 100;
  // Percent-decoded key of /v1/kv/{key} longer than this → 414; empty → 400.
  size_t max_key_bytes = 1024;
  // Content-Type of a PUT longer than this → 431 before the body is read
  // (the storage engine keeps at most 255 bytes of it).
  size_t max_content_type_bytes = 255;
  // Body larger than this → 413: decided from Content-Length before any body
  // byte is read, and for chunked bodies as soon as the running count passes
  // it. nginx: client_max_body_size.
  uint64_t max_body_bytes = 64ull << 20;
  // While a request is being handled (or the handler paused the body), the
  // connection buffers at most this many unparsed input bytes; past it
  // WantsRead() turns false so the I/O layer stops reading the socket.
  size_t max_buffered_input_bytes = 64 * 1024;
  // While more than this many response bytes wait to be written, the next
  // pipelined request is not dispatched and WantsRead() turns false (a client
  // that pipelines without reading cannot make us buffer without bound).
  size_t max_buffered_output_bytes = 1 << 20;
  // While more than this many response bytes (or max_buffered_output_bytes,
  // if smaller) wait to be written, the next pipelined request is not
  // dispatched either: answered before the bytes ahead of it are sent, it
  // would gain nothing (nginx starts a pipelined request once the answer
  // before it is sent), and a client that asks for large values and reads
  // them slowly would have each looked up and verified long before it can
  // take any of it. Small answers still go out together, many per write.
  size_t pipeline_output_bytes = 64 * 1024;
  // Largest body piece handed to Handler::OnBody at once.
  size_t body_part_bytes = 1 << 20;
  // Total time allowed for a request's header section, from its first byte
  // (or from the connection's start for the first request) → 408 + close.
  // A total deadline, not an idle one, so slowloris cannot stretch it.
  uint64_t header_timeout_ms = 10'000;
  // Longest gap between two reads of body bytes → 408 + close. Not armed
  // while the handler has paused the body.
  uint64_t body_timeout_ms = 60'000;
  // Idle keep-alive connection (no request in progress, nothing to send) →
  // silent close. Advertised as "Keep-Alive: timeout=<seconds>". Longer than
  // nginx's 60 s upstream keepalive_timeout so nginx closes first.
  uint64_t keepalive_timeout_ms = 75'000;
  // Longest time pending output may make no progress (the peer does not
  // read) → silent close. nginx: send_timeout 60s.
  uint64_t send_timeout_ms = 60'000;
  // How long a keep-alive connection keeps its parser and output block after
  // a response (its answer sent, nothing buffered) before giving them back to
  // its thread's spares (spare_list.h), where the next request on any
  // connection of the thread takes them without an allocation; an idle
  // connection then holds sizeof(Connection). 0 = at once (nginx frees a
  // request's buffers at keep-alive), the default: taking them back costs a
  // pop, and memory then follows the requests in progress, not the
  // connections held.
  uint64_t idle_trim_ms = 0;
};

// The name of the first field of `limits` that is out of range (every field
// must be > 0; max_request_line_bytes <= max_header_bytes), or "" when all
// are valid. For configuration checks (kingx -t); a Connection built from
// invalid Limits is a programmer error (asserted).
inline std::string_view InvalidLimit(const Limits& l) {
  if (l.max_request_line_bytes == 0) return "max_request_line_bytes";
  if (l.max_header_bytes < l.max_request_line_bytes) return "max_header_bytes";
  if (l.max_header_line_bytes == 0) return "max_header_line_bytes";
  if (l.max_header_fields == 0) return "max_header_fields";
  if (l.max_key_bytes == 0) return "max_key_bytes";
  if (l.max_body_bytes == 0) return "max_body_bytes";
  if (l.max_buffered_input_bytes == 0) return "max_buffered_input_bytes";
  if (l.max_buffered_output_bytes == 0) return "max_buffered_output_bytes";
  if (l.pipeline_output_bytes == 0) return "pipeline_output_bytes";
  if (l.body_part_bytes == 0) return "body_part_bytes";
  if (l.header_timeout_ms == 0) return "header_timeout_ms";
  if (l.body_timeout_ms == 0) return "body_timeout_ms";
  if (l.keepalive_timeout_ms == 0) return "keepalive_timeout_ms";
  if (l.send_timeout_ms == 0) return "send_timeout_ms";
  return "";
}

}  // namespace kingx::http
