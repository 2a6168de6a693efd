// Parser: event sequence, request fields, exact limit boundaries.
#include "http/parser.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace kingx::http {
namespace {

struct Event {
  Parser::Event kind;
  std::string body;
};

// Runs the parser over `input` up to the end of one request (or an error),
// collecting events; the request stays readable (the next Execute would
// start the next one).
std::vector<Event> RunAll(Parser& p, std::string_view input) {
  std::vector<Event> events;
  size_t pos = 0;
  for (int guard = 0; guard < 10000; ++guard) {
    Parser::Step step = p.Execute(std::span<const char>(input.data() + pos, input.size() - pos));
    pos += step.consumed;
    if (step.event == Parser::Event::kNeedMore) break;
    events.push_back({step.event, std::string(step.body.data(), step.body.size())});
    if (step.event == Parser::Event::kError || step.event == Parser::Event::kMessageEnd) break;
  }
  return events;
}

std::vector<Parser::Event> Kinds(const std::vector<Event>& events) {
  std::vector<Parser::Event> kinds;
  for (const Event& e : events) kinds.push_back(e.kind);
  return kinds;
}

using E = Parser::Event;

TEST_CASE("the parser stops at each event: head, body pieces, end", "[http][parser]") {
  Limits limits;
  Parser p(limits);
  auto events = RunAll(p, "PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc");
  CHECK(Kinds(events) == std::vector<E>{E::kHead, E::kBody, E::kMessageEnd});
  CHECK(events[1].body == "abc");
  CHECK(p.Finish());

  Parser c(limits);
  events = RunAll(c, "PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n");
  CHECK(Kinds(events) == std::vector<E>{E::kHead, E::kBody, E::kBody, E::kMessageEnd});
  CHECK(events[1].body + events[2].body == "abc");
  CHECK(c.request().chunked);
}

TEST_CASE("a request without a body ends with its head: the end comes next, without a byte more",
          "[http][parser]") {
  Limits limits;
  // Pipelined: the second request waits until the first one's end was taken.
  const std::string first = "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string second = "HEAD /v1/kv/b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
  const std::string input = first + second;
  Parser p(limits);
  Parser::Step step = p.Execute(std::span<const char>(input.data(), input.size()));
  REQUIRE(step.event == E::kHead);
  CHECK(step.consumed == first.size());
  CHECK(p.InBody());  // between kHead and kMessageEnd, as for any request
  CHECK_FALSE(p.Finish());
  CHECK(p.request().key == "a");
  std::span<const char> rest(input.data() + first.size(), second.size());
  step = p.Execute(rest);
  CHECK(step.event == E::kMessageEnd);
  CHECK(step.consumed == 0);
  CHECK(p.request().key == "a");  // still the first request's
  CHECK_FALSE(p.InBody());
  CHECK(p.Finish());
  step = p.Execute(rest);
  REQUIRE(step.event == E::kHead);
  CHECK(step.consumed == second.size());
  CHECK(p.request().key == "b");
  CHECK_FALSE(p.request().keep_alive);
  step = p.Execute(std::span<const char>());
  CHECK(step.event == E::kMessageEnd);
  CHECK(p.Finish());

  // A refused head (404) and a failed one (no Host) keep their order too.
  Parser refused(limits);
  CHECK(Kinds(RunAll(refused, "GET /nowhere HTTP/1.1\r\nHost: h\r\n\r\n")) ==
        std::vector<E>{E::kHead, E::kMessageEnd});
  CHECK(refused.rejected());
  CHECK(refused.error().status == 404);
  Parser failed(limits);
  CHECK(Kinds(RunAll(failed, "GET /v1/kv/a HTTP/1.1\r\n\r\n")) == std::vector<E>{E::kError});
  CHECK(failed.Execute(std::span<const char>()).event == E::kError);

  // Given back between its head and its end (the connection went away),
  // a parser serves the next request from its start.
  auto taken = Parser::Take(limits);
  REQUIRE(taken->Execute(std::span<const char>(first.data(), first.size())).event == E::kHead);
  Parser::GiveBack(std::move(taken));
  auto again = Parser::Take(limits);
  step = again->Execute(std::span<const char>(second.data(), second.size()));
  CHECK(step.event == E::kHead);
  CHECK(again->request().key == "b");
}

TEST_CASE("the parser fills the request's fields", "[http][parser]") {
  Limits limits;
  Parser p(limits);
  std::string input =
      "GET /v1/kv/a/b?x=1 HTTP/1.1\r\nHost: example \r\nUser-Agent: ua/1\r\nReferer: r\r\n"
      "X-Request-Id: id7\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\nContent-Type:  text/x \t\r\n"
      "If-Match: \"3\"\r\nIf-None-Match: *\r\nExpect: 100-continue\r\n\r\n";
  Parser::Step step = p.Execute(std::span<const char>(input.data(), input.size()));
  REQUIRE(step.event == E::kHead);
  CHECK(step.consumed == input.size());
  const Request& r = p.request();
  CHECK_FALSE(p.rejected());
  CHECK(r.route == Route::kKv);
  CHECK(r.method == Method::kGet);
  CHECK(r.key == "a/b");
  CHECK(r.target == "/v1/kv/a/b?x=1");
  CHECK(r.host == "example");
  CHECK(r.user_agent == "ua/1");
  CHECK(r.referer == "r");
  CHECK(r.x_request_id == "id7");
  CHECK(r.x_forwarded_for == "1.1.1.1, 2.2.2.2");
  CHECK(r.content_type == "text/x");
  CHECK(r.if_match.MatchesStrong(3));
  CHECK(r.if_none_match.kind == Precondition::Kind::kAny);
  CHECK(r.expect_continue);
  CHECK(r.keep_alive);
  CHECK(r.http_minor == 1);
  CHECK(r.head_bytes == input.size());
  CHECK_FALSE(p.Finish());  // head complete, message end not reached yet
}

TEST_CASE("a refused head keeps the framing: its body follows as events", "[http][parser]") {
  Limits limits;
  Parser p(limits);
  auto events = RunAll(p, "PUT /nope HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nxy");
  REQUIRE(events.size() >= 3);
  CHECK(Kinds(events) == std::vector<E>{E::kHead, E::kBody, E::kMessageEnd});
  CHECK(p.rejected());
  CHECK(p.error().status == 404);
  events = RunAll(p, "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n");
  CHECK(Kinds(events) == std::vector<E>{E::kHead, E::kMessageEnd});
  CHECK_FALSE(p.rejected());
  CHECK(p.request().route == Route::kHealthz);
}

TEST_CASE("the request line limit is exact", "[http][parser][limits]") {
  Limits limits;
  limits.max_request_line_bytes = 64;
  auto line = [](size_t length) {  // a request line of `length` bytes before CRLF
    std::string head = "GET /healthz?";
    std::string tail = " HTTP/1.1";
    return head + std::string(length - head.size() - tail.size(), 'q') + tail + "\r\nHost: h\r\n\r\n";
  };
  Parser ok(limits);
  CHECK(ok.Execute(std::span<const char>(line(64))).event == E::kHead);
  Parser over(limits);
  CHECK(over.Execute(std::span<const char>(line(65))).event == E::kError);
  CHECK(over.error().status == 414);
  CHECK(over.error().limit == 64);
}

TEST_CASE("the header section limit is exact and counts the whole head", "[http][parser][limits]") {
  Limits limits;
  limits.max_header_bytes = 200;
  auto head = [](size_t total) {
    std::string start = "GET /healthz HTTP/1.1\r\nHost: h\r\nX: ";
    std::string end = "\r\n\r\n";
    return start + std::string(total - start.size() - end.size(), 'v') + end;
  };
  Parser ok(limits);
  CHECK(ok.Execute(std::span<const char>(head(200))).event == E::kHead);
  Parser over(limits);
  CHECK(over.Execute(std::span<const char>(head(201))).event == E::kError);
  CHECK(over.error().status == 431);
  // Fed a byte at a time, the same limit holds.
  Parser slow(limits);
  std::string big = head(201);
  Parser::Event last = E::kNeedMore;
  for (size_t i = 0; i < big.size() && last == E::kNeedMore; ++i) {
    last = slow.Execute(std::span<const char>(big.data() + i, 1)).event;
  }
  CHECK(last == E::kError);
  CHECK(slow.error().status == 431);
}

TEST_CASE("the header field count limit counts every field", "[http][parser][limits]") {
  Limits limits;
  limits.max_header_fields = 3;
  Parser ok(limits);
  std::string three = "GET /healthz HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n";
  CHECK(ok.Execute(std::span<const char>(three)).event == E::kHead);
  Parser over(limits);
  std::string four = "GET /healthz HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
  CHECK(over.Execute(std::span<const char>(four)).event == E::kError);
  CHECK(over.error().status == 431);
}

TEST_CASE("a Content-Length over the body limit fails at the head, before any body byte", "[http][parser][limits]") {
  Limits limits;
  limits.max_body_bytes = 10;
  Parser p(limits);
  std::string head = "PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n";
  Parser::Step step = p.Execute(std::span<const char>(head));
  CHECK(step.event == E::kError);
  CHECK(p.error().status == 413);
  CHECK(p.Execute(std::span<const char>(head)).event == E::kError);  // terminal
}

TEST_CASE("InvalidLimit names the first field out of range", "[http][limits]") {
  Limits l;
  CHECK(InvalidLimit(l).empty());
  l.body_part_bytes = 0;
  CHECK(InvalidLimit(l) == "body_part_bytes");
  Limits m;
  m.max_header_bytes = m.max_request_line_bytes - 1;
  CHECK(InvalidLimit(m) == "max_header_bytes");
}

TEST_CASE("Finish tells a clean end from a cut request", "[http][parser]") {
  Limits limits;
  Parser fresh(limits);
  CHECK(fresh.Finish());
  Parser cut(limits);
  std::string partial = "GET /healthz HTTP/1.1\r\nHo";
  CHECK(cut.Execute(std::span<const char>(partial)).event == E::kNeedMore);
  CHECK(cut.InHead());
  CHECK_FALSE(cut.Finish());
}

// What a request's parse shows from outside: its events, body bytes, the
// request's fields, the refusal or error. Also the first event of a request
// pipelined behind it, so that the state the request leaves is compared too.
std::string Outcome(Parser& p, std::string_view input) {
  std::string out;
  size_t pos = 0;
  for (int message = 0; message < 2 && pos < input.size(); ++message) {
    for (int guard = 0; guard < 10000; ++guard) {
      Parser::Step step = p.Execute(std::span<const char>(input.data() + pos, input.size() - pos));
      pos += step.consumed;
      out += "event " + std::to_string(static_cast<int>(step.event)) + " consumed " + std::to_string(step.consumed);
      if (step.event == E::kBody) out += " body " + std::string(step.body.data(), step.body.size());
      out += "\n";
      if (step.event == E::kHead) {
        const Request& r = p.request();
        out += "head " + std::string(r.method_name) + " " + std::to_string(static_cast<int>(r.route)) + " " +
               std::string(r.key) + " " + std::string(r.target) + " 1." + std::to_string(r.http_minor) +
               " keep-alive " + std::to_string(r.keep_alive) + " length " + std::to_string(r.content_length) +
               " chunked " + std::to_string(r.chunked) + " rejected " + std::to_string(p.rejected()) + "\n";
      }
      if (step.event == E::kError || (step.event == E::kHead && p.rejected())) {
        out += "error " + std::to_string(p.error().status) + " " + std::string(p.error().detail) + "\n";
      }
      if (step.event == E::kNeedMore || step.event == E::kError) return out;
      if (step.event == E::kMessageEnd) break;
    }
  }
  return out;
}

TEST_CASE("a spare parser serves the next request exactly as a new one, whatever its last request was",
          "[http][parser]") {
  Limits limits;
  // How a parser's last request may have ended before it went back to the
  // spares: keep-alive or not (llhttp then heads for its closed state), an
  // upgrade, a body of either framing, a refusal with its body read.
  const std::vector<std::string> last = {
      "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
      "GET /v1/kv/a HTTP/1.0\r\n\r\n",
      "GET /v1/kv/a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
      "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
      "PUT /v1/kv/b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc",
      "PUT /v1/kv/b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\nab\r\n0\r\nT: v\r\n\r\n",
      "PROPFIND /v1/kv/c HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nxy",
      "POST /v1/kv/c HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nz",
      "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
  };
  // The request the spare then parses, with a second one pipelined behind it.
  const std::vector<std::string> next = {
      "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\n\r\nGET /v1/kv/l HTTP/1.1\r\nHost: h\r\n\r\n",
      "\r\nGET /v1/kv/k HTTP/1.0\r\n\r\nGET /v1/kv/l HTTP/1.1\r\nHost: h\r\n\r\n",
      "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhiDELETE /v1/kv/l HTTP/1.1\r\nHost: h\r\n\r\n",
      "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nq\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\n"
      "Host: h\r\n\r\n",
      "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET /v1/kv/l HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\nGET /v1/kv/l HTTP/1.1\r\n"
      "Host: h\r\n\r\n",
      "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "GET /v1/kv/k HTTP/2.0\r\nHost: h\r\n\r\n",
      "BREW /v1/kv/k HTTP/1.1\r\nHost: h\r\n\r\nGET /v1/kv/l HTTP/1.1\r\nHost: h\r\n\r\n",
  };
  for (const std::string& before : last) {
    for (const std::string& input : next) {
      CAPTURE(before, input);
      std::unique_ptr<Parser> used = Parser::Take(limits);
      const std::vector<Event> ended = RunAll(*used, before);
      REQUIRE(!ended.empty());
      REQUIRE(ended.back().kind == E::kMessageEnd);
      Parser* const spare = used.get();
      Parser::GiveBack(std::move(used));
      std::unique_ptr<Parser> again = Parser::Take(limits);
      REQUIRE(again.get() == spare);  // the spare, not a new parser
      Parser fresh(limits);
      CHECK(Outcome(*again, input) == Outcome(fresh, input));
    }
  }
}

TEST_CASE("a thread keeps the parsers of a whole group commit's answers for its clients' next requests",
          "[http][parser][memory]") {
  // A group commit answers its writes at once: each connection gives its
  // parser back, then its client's next request takes one. With too few
  // spares kept, every answer past the bound freed its parser and the next
  // request allocated a new one.
  Limits limits;
  constexpr size_t kAnswers = 200;
  const size_t before = Parser::Spares();
  std::vector<std::unique_ptr<Parser>> busy;
  std::set<const Parser*> used;
  for (size_t i = 0; i < kAnswers; ++i) {
    busy.push_back(Parser::Take(limits));
    used.insert(busy.back().get());
    REQUIRE(RunAll(*busy.back(), "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx").back().kind ==
            E::kMessageEnd);
  }
  for (auto& p : busy) Parser::GiveBack(std::move(p));
  CHECK(Parser::Spares() >= std::min(before + kAnswers, Parser::kSpareParsers));
  CHECK(Parser::Spares() >= kAnswers);
  // The next requests take those same parsers back: none is new.
  for (size_t i = 0; i < kAnswers; ++i) {
    busy[i] = Parser::Take(limits);
    CHECK(used.count(busy[i].get()) == 1);
  }
  for (auto& p : busy) Parser::GiveBack(std::move(p));
}

// What the parser makes of `input` fed in pieces of at most `piece` bytes
// (0: whole) after a first piece of `first_piece` (0: as the others), up to
// two messages: events, each head's request as the handler
// sees it (its head_bytes included), each body, errors, and the bytes
// consumed in all
// unless an error ended the reading (where it stops in the input depends on
// where the pieces end; the connection closes then anyway).
std::string Reading(std::string_view input, size_t piece, size_t first_piece = 0) {
  Limits limits;
  Parser p(limits);
  std::string out;
  std::string body;
  size_t pos = 0;
  size_t avail = std::min(first_piece != 0 ? first_piece : piece != 0 ? piece : input.size(), input.size());
  for (int messages = 0, guard = 0; messages < 2 && guard < 100000; ++guard) {
    Parser::Step step = p.Execute(std::span<const char>(input.data() + pos, avail - pos));
    pos += step.consumed;
    if (step.event == E::kNeedMore) {
      if (avail == input.size()) break;
      avail = piece == 0 ? input.size() : std::min(avail + piece, input.size());
      continue;
    }
    if (step.event == E::kBody) {  // pieces end where the input's do: compare the whole body
      body.append(step.body.data(), step.body.size());
      continue;
    }
    out += "event " + std::to_string(static_cast<int>(step.event)) + "\n";
    if (step.event == E::kMessageEnd) {
      out += "body " + body + "\n";
      body.clear();
    }
    if (step.event == E::kHead) {
      const Request& r = p.request();
      out += "head " + std::string(r.method_name) + " " + std::to_string(static_cast<int>(r.method)) + " " +
             std::to_string(static_cast<int>(r.route)) + " " + std::string(r.key) + " " + std::string(r.target) +
             " host " + std::string(r.host) + " 1." + std::to_string(r.http_minor) + " keep-alive " +
             std::to_string(r.keep_alive) + " length " + std::to_string(r.content_length) + " head bytes " +
             std::to_string(r.head_bytes) + " rejected " + std::to_string(p.rejected()) + "\n";
    }
    if (step.event == E::kError || (step.event == E::kHead && p.rejected())) {
      out += "error " + std::to_string(p.error().status) + " " + std::string(p.error().detail) + "\n";
    }
    if (step.event == E::kError) return out;
    if (step.event == E::kMessageEnd) ++messages;
  }
  return out + "consumed " + std::to_string(pos) + "\n";
}

TEST_CASE("a method at the start of the input, read with its line, gives what it gives read byte by byte",
          "[http][parser]") {
  // Whole, the request line of each first message starts with a method
  // llhttp reads along with the rest of the line; byte by byte, or cut
  // before the method's SP, the method is read on its own first; cut after
  // empty lines or inside the first message, the second (or the first) may
  // start a piece.
  const std::vector<std::string> inputs = {
      "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\n\r\nGET /v1/kv/l HTTP/1.1\r\nHost: h\r\n\r\n",
      "HEAD /v1/kv/k HTTP/1.1\r\nHost: h\r\n\r\nDELETE /v1/kv/l HTTP/1.1\r\nHost: h\r\n\r\n",
      "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhiPUT /v1/kv/l HTTP/1.1\r\nHost: h\r\n"
      "Transfer-Encoding: chunked\r\n\r\n1\r\nq\r\n0\r\n\r\n",
      "GET /v1/kv/k HTTP/1.0\r\n\r\n",
      "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\nGET /v1/kv/l HTTP/1.1\r\n"
      "Host: h\r\n\r\n",
      "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET /v1/kv/l HTTP/1.1\r\nHost: h\r\n\r\n",
      "\r\nGET /v1/kv/k HTTP/1.1\r\nHost: h\r\n\r\n",
      "\rGET /v1/kv/k HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET  /v1/kv/k HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET /v1/kv/k\rX HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET /v1/kv/k HTTP/1.1\rHost: h\r\n\r\n",
      "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n",
      "GET /v1/kv/k\tx HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET /v1/kv/k RTSP/1.0\r\nHost: h\r\n\r\n",
      "GET /v1/kv/k HTTP/2.0\r\nHost: h\r\n\r\n",
      "GET /v1/kv/k\r\n\r\n",
      "GET /v1/kv/k HTTP/1.1\r\nHost: a..b\r\n\r\n",
      "GET * HTTP/1.1\r\nHost: h\r\n\r\n",
      "GETX /v1/kv/k HTTP/1.1\r\nHost: h\r\n\r\n",
      "GGET /v1/kv/k HTTP/1.1\r\nHost: h\r\n\r\n",
      "\r\n\r\nPUT /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
      "GET\t/v1/kv/k HTTP/1.1\r\nHost: h\r\n\r\n",
      "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "DELETE /admin/compact HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET /v1/kv/" + std::string(Limits().max_request_line_bytes, 'k') + " HTTP/1.1\r\nHost: h\r\n\r\n",
  };
  for (const std::string& input : inputs) {
    CAPTURE(input);
    const std::string whole = Reading(input, 0);
    CHECK(whole.find("event") != std::string::npos);
    CHECK(Reading(input, 1) == whole);
    for (size_t cut = 1; cut < std::min<size_t>(input.size(), 80); ++cut) {
      CAPTURE(cut);
      CHECK(Reading(input, 0, cut) == whole);
    }
  }
}

TEST_CASE("a Host value accepted once does not let another of the same length through", "[http][parser]") {
  // The parser remembers the last Host it accepted; a keep-alive client
  // sending a different one must still have it checked.
  const std::string out = Reading("GET /healthz HTTP/1.1\r\nHost: ab.c\r\n\r\n"
                                  "GET /healthz HTTP/1.1\r\nHost: ab..\r\n\r\n", 0);
  CHECK(out.find("host ab.c") != std::string::npos);
  CHECK(out.find("error 400 The Host header field is not a valid host name.") != std::string::npos);
  const std::string twice = Reading("GET /healthz HTTP/1.1\r\nHost: ab.c\r\n\r\n"
                                    "GET /healthz HTTP/1.1\r\nHost: ab.c\r\n\r\n", 0);
  CHECK(twice.find("error") == std::string::npos);
  CHECK(twice.find("event 3") != std::string::npos);
  const std::string long_host(60, 'h');
  const std::string longer = Reading("GET /healthz HTTP/1.1\r\nHost: " + long_host + "\r\n\r\n"
                                     "GET /healthz HTTP/1.1\r\nHost: " + long_host + ".\r\n\r\n", 0);
  CHECK(longer.find("error") == std::string::npos);
}

}  // namespace
}  // namespace kingx::http
