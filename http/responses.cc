// Standard responses and the engine::Code → HTTP status table.
#include "http/responses.h"

#include <cassert>

#include "http/json_text.h"
#include "http/wire.h"

namespace kingx::http {
namespace {

constexpr std::string_view kProblemContentType = "application/problem+json";

std::shared_ptr<const std::string> Own(std::string s) { return std::make_shared<const std::string>(std::move(s)); }

}  // namespace

int HttpStatusFor(engine::Code code) {
  switch (code) {
    case engine::Code::kOk: return 200;
    case engine::Code::kNotFound: return 404;
    case engine::Code::kPreconditionFailed: return 412;
    case engine::Code::kNoSpace: return 507;
    case engine::Code::kBusy: return 503;
    case engine::Code::kReadOnly: return 503;
    case engine::Code::kCorruption: return 500;
    case engine::Code::kTooLarge: return 413;
    case engine::Code::kOutcomeUnknown: return 503;
    case engine::Code::kInvalidArgument: return 400;
    case engine::Code::kIOError: return 500;
  }
  return 500;
}

Response ValueResponse(std::string_view value, std::shared_ptr<const void> holder, uint64_t seq,
                       std::string_view content_type) {
  Response r;
  r.status = 200;
  r.content_type = content_type.empty() ? kDefaultContentType : content_type;
  r.etag_seq = seq;
  r.body = value;
  r.body_holder = std::move(holder);
  return r;
}

Response PutResponse(bool created, uint64_t seq) {
  Response r;
  r.status = created ? 201 : 204;
  r.etag_seq = seq;
  return r;
}

Response DeleteResponse() {
  Response r;
  r.status = 204;
  return r;
}

Response NotModifiedResponse(uint64_t seq) {
  Response r;
  r.status = 304;
  r.etag_seq = seq;
  return r;
}

bool IsNotModified(const Request& request, uint64_t current_seq) {
  return request.if_none_match.MatchesWeak(current_seq);
}

Response ProblemResponse(int status, std::string_view detail, std::optional<uint64_t> limit, bool retry_after,
                         std::string_view parameter) {
  std::string body;
  body.reserve(96 + detail.size());
  body.append("{\"type\":\"about:blank\",\"title\":");
  AppendJsonString(&body, ReasonPhrase(status), JsonBytes::kLatin1);
  body.append(",\"status\":");
  AppendDecimal(&body, static_cast<uint64_t>(status));
  body.append(",\"detail\":");
  // Latin-1: an engine message may quote a binary key; the body stays ASCII.
  AppendJsonString(&body, detail, JsonBytes::kLatin1);
  if (limit) {
    body.append(",\"limit\":");
    AppendDecimal(&body, *limit);
  }
  if (!parameter.empty()) {
    body.append(",\"parameter\":");
    AppendJsonString(&body, parameter, JsonBytes::kLatin1);
  }
  body.append("}\n");
  Response r;
  r.status = status;
  r.content_type = kProblemContentType;
  if (retry_after && status == 503) r.retry_after_s = kBusyRetryAfterS;
  auto owned = Own(std::move(body));
  r.body = *owned;
  r.body_holder = std::move(owned);
  return r;
}

Response NoSuchKeyResponse() { return ProblemResponse(404, kNoSuchKeyDetail); }

Response ErrorResponse(const engine::Status& status) {
  assert(!status.ok());
  if (status.code() == engine::Code::kNotFound) return NoSuchKeyResponse();
  std::string_view detail = status.message();
  if (detail.empty()) detail = engine::CodeName(status.code());
  return ProblemResponse(HttpStatusFor(status.code()), detail, std::nullopt,
                         status.code() == engine::Code::kBusy || status.code() == engine::Code::kOutcomeUnknown);
}

Response TextResponse(int status, std::string_view content_type, std::string body) {
  Response r;
  r.status = status;
  r.content_type = content_type;
  auto owned = Own(std::move(body));
  r.body = *owned;
  r.body_holder = std::move(owned);
  return r;
}

}  // namespace kingx::http
