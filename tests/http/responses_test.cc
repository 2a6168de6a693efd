// Standard responses and the engine status table.
#include "http/responses.h"

#include <catch2/catch.hpp>

namespace kingx::http {
namespace {

using engine::Code;
using engine::Status;

TEST_CASE("every engine code maps to its HTTP status", "[http][responses]") {
  CHECK(HttpStatusFor(Code::kOk) == 200);
  CHECK(HttpStatusFor(Code::kNotFound) == 404);
  CHECK(HttpStatusFor(Code::kPreconditionFailed) == 412);
  CHECK(HttpStatusFor(Code::kNoSpace) == 507);
  CHECK(HttpStatusFor(Code::kBusy) == 503);
  CHECK(HttpStatusFor(Code::kReadOnly) == 503);
  CHECK(HttpStatusFor(Code::kCorruption) == 500);
  CHECK(HttpStatusFor(Code::kTooLarge) == 413);
  CHECK(HttpStatusFor(Code::kInvalidArgument) == 400);
  CHECK(HttpStatusFor(Code::kIOError) == 500);
  CHECK(HttpStatusFor(Code::kOutcomeUnknown) == 503);
}

TEST_CASE("ErrorResponse builds problem+json, with Retry-After for Busy and OutcomeUnknown only",
          "[http][responses]") {
  Response busy = ErrorResponse(Status::Busy("queue full"));
  CHECK(busy.status == 503);
  CHECK(busy.content_type == "application/problem+json");
  REQUIRE(busy.retry_after_s);
  CHECK(*busy.retry_after_s == kBusyRetryAfterS);
  CHECK(std::string(busy.body) ==
        "{\"type\":\"about:blank\",\"title\":\"Service Unavailable\",\"status\":503,\"detail\":\"queue full\"}\n");
  CHECK(busy.body_holder != nullptr);
  Response unknown = ErrorResponse(Status::OutcomeUnknown("the writer restarted"));
  CHECK(unknown.status == 503);
  REQUIRE(unknown.retry_after_s);
  CHECK(*unknown.retry_after_s == kBusyRetryAfterS);
  Response ro = ErrorResponse(Status::ReadOnly("sync failed"));
  CHECK(ro.status == 503);
  CHECK_FALSE(ro.retry_after_s);
  // One wording for a missing key, whatever the engine said.
  for (const Status& s : {Status::NotFound(), Status::NotFound("key does not exist")}) {
    Response nf = ErrorResponse(s);
    CHECK(nf.status == 404);
    CHECK(std::string(nf.body).find("\"detail\":\"No value is stored under this key.\"") != std::string::npos);
  }
  CHECK(std::string(NoSuchKeyResponse().body) == std::string(ErrorResponse(Status::NotFound()).body));
}

TEST_CASE("problem details escape anything that is not printable ASCII", "[http][responses]") {
  Response r = ProblemResponse(400, std::string_view("k\"\\\n\0\xff", 6), 1024);
  CHECK(std::string(r.body) ==
        "{\"type\":\"about:blank\",\"title\":\"Bad Request\",\"status\":400,"
        "\"detail\":\"k\\\"\\\\\\u000a\\u0000\\u00ff\",\"limit\":1024}\n");
}

TEST_CASE("value, put, delete and not-modified responses carry the right fields", "[http][responses]") {
  auto holder = std::make_shared<const std::string>("abc");
  Response v = ValueResponse(*holder, holder, 9, "");
  CHECK(v.status == 200);
  CHECK(v.content_type == kDefaultContentType);
  CHECK(v.etag_seq == 9u);
  CHECK(v.body.data() == holder->data());  // not copied
  CHECK(ValueResponse("x", nullptr, 1, "text/plain").content_type == "text/plain");
  CHECK(PutResponse(true, 3).status == 201);
  CHECK(PutResponse(false, 3).status == 204);
  CHECK(PutResponse(false, 3).etag_seq == 3u);
  CHECK(DeleteResponse().status == 204);
  CHECK_FALSE(DeleteResponse().etag_seq);
  CHECK(NotModifiedResponse(4).status == 304);
  CHECK(NotModifiedResponse(4).etag_seq == 4u);
  Response t = TextResponse(200, "text/plain", "ok\n");
  CHECK(t.body == "ok\n");
}

TEST_CASE("IsNotModified follows If-None-Match with weak comparison", "[http][responses]") {
  Request req;
  CHECK_FALSE(IsNotModified(req, 5));
  req.if_none_match.kind = Precondition::Kind::kList;
  req.if_none_match.tags.push_back(EntityTag{5, true, false});
  CHECK(IsNotModified(req, 5));
  CHECK_FALSE(IsNotModified(req, 6));
  CHECK_FALSE(IsNotModified(req, 0));
  req.if_none_match.kind = Precondition::Kind::kAny;
  CHECK(IsNotModified(req, 6));
}

}  // namespace
}  // namespace kingx::http
