// Standard responses of the key-value API, for the Handler (src/), and the
// one table that maps engine status codes to HTTP statuses.
//
// Every function is pure (no I/O, any thread) and returns a Response ready
// for Connection::Respond. Views in the returned Response point into the
// arguments (and static strings), so the arguments must stay valid until
// Respond is called; error bodies are owned by the Response's body_holder.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "engine/status.h"
#include "http/request.h"
#include "http/response.h"

namespace kingx::http {

// The Content-Type stored for a PUT without one, and sent back on reads.
inline constexpr std::string_view kDefaultContentType = "application/octet-stream";
// Retry-After (seconds) sent with 503 for engine::Code::kBusy and
// kOutcomeUnknown.
inline constexpr uint32_t kBusyRetryAfterS = 1;

// engine::Code → HTTP status: NotFound 404, PreconditionFailed 412,
// NoSpace 507, Busy 503 (+Retry-After), OutcomeUnknown 503 (+Retry-After),
// ReadOnly 503, Corruption 500, TooLarge 413, InvalidArgument 400,
// IOError 500, Ok 200.
int HttpStatusFor(engine::Code code);

// 200 with the value, ETag and Content-Type (kDefaultContentType when
// content_type is empty). `holder` keeps `value` alive while it is sent
// (zero-copy); a null holder makes Respond copy the value. Also right for
// HEAD: the core drops the body and keeps Content-Length = value.size().
Response ValueResponse(std::string_view value, std::shared_ptr<const void> holder, uint64_t seq,
                       std::string_view content_type);

// Result of a durable PUT: 201 Created (new key) or 204 No Content
// (overwrite), both with ETag.
Response PutResponse(bool created, uint64_t seq);

// 204 No Content for a DELETE that removed the key (no ETag).
Response DeleteResponse();

// 304 Not Modified with the current ETag (no body).
Response NotModifiedResponse(uint64_t seq);

// RFC 9110 §13.1.2 for GET/HEAD: true when the request's If-None-Match
// matches the current value (weak comparison, "*" matches any existing
// value), i.e. the handler should answer NotModifiedResponse(current_seq).
// current_seq 0 = the key does not exist (never "not modified").
bool IsNotModified(const Request& request, uint64_t current_seq);

// application/problem+json (RFC 9457) body with type, title, status, detail
// and, when `limit` is set, "limit": <value>; when `parameter` is not empty,
// "parameter": "<name>" (the query parameter at fault). 503 responses carry
// Retry-After: kBusyRetryAfterS when retry_after is true.
Response ProblemResponse(int status, std::string_view detail, std::optional<uint64_t> limit = std::nullopt,
                         bool retry_after = false, std::string_view parameter = {});

// The one problem detail of a 404 for a key that holds no value (GET, HEAD,
// DELETE, a conditional write's check): whichever layer found it missing.
inline constexpr std::string_view kNoSuchKeyDetail = "No value is stored under this key.";

// 404 with kNoSuchKeyDetail.
Response NoSuchKeyResponse();

// ProblemResponse(HttpStatusFor(status.code()), status.message()), with
// Retry-After for kBusy and kOutcomeUnknown; kNotFound is NoSuchKeyResponse()
// whatever the engine's message. `status` must not be OK (asserted).
Response ErrorResponse(const engine::Status& status);

// A small text/plain or application/json 200 body owned by the Response
// (e.g. /healthz "ok\n", /metrics text). Copies `body`.
Response TextResponse(int status, std::string_view content_type, std::string body);

}  // namespace kingx::http
