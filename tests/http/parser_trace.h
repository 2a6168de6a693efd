// ParserTrace: everything a Connection can observe of a Parser reading an
// input, as text, so that two readings can be compared byte for byte (the
// differential tests of the fast head recogniser: tests/http/fast_head_test.cc,
// request_vectors_test.cc and the fuzz target). Test code only.
//
// The input is fed as a Connection feeds it: the unparsed bytes from the
// first unconsumed one, `piece` more bytes arriving whenever the parser needs
// more. Every step's event and consumed count is recorded, and at each head
// the whole Request, the refusal, and what a log line would take from the
// Parser; at an error the error; at the end whether the parser is between
// requests.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http/parser.h"

namespace kingx::http::testing {

inline void AppendPrecondition(const Precondition& p, std::string* out) {
  *out += std::to_string(static_cast<int>(p.kind)) + "[";
  for (const EntityTag& t : p.tags) {
    *out += std::to_string(t.seq) + (t.weak ? "w" : "") + (t.foreign ? "f" : "") + ",";
  }
  *out += "]";
}

inline void AppendRequest(const Parser& parser, std::string* out) {
  const Request& r = parser.request();
  const auto q = [out](std::string_view name, std::string_view v) {
    *out += " ";
    *out += name;
    *out += "=<";
    *out += v;
    *out += ">";
  };
  *out += " route=" + std::to_string(static_cast<int>(r.route)) + " method=" +
          std::to_string(static_cast<int>(r.method));
  q("method_name", r.method_name);
  q("key", r.key);
  q("target", r.target);
  q("content_type", r.content_type);
  q("host", r.host);
  q("user_agent", r.user_agent);
  q("referer", r.referer);
  q("x_request_id", r.x_request_id);
  q("xff", r.x_forwarded_for);
  *out += " if_match=";
  AppendPrecondition(r.if_match, out);
  *out += " if_none_match=";
  AppendPrecondition(r.if_none_match, out);
  *out += " length=" + std::to_string(r.content_length) + " chunked=" + std::to_string(r.chunked) +
          " continue=" + std::to_string(r.expect_continue) + " keep_alive=" + std::to_string(r.keep_alive) +
          " minor=" + std::to_string(r.http_minor) + " head_bytes=" + std::to_string(r.head_bytes);
}

inline void AppendError(const ParseError& e, std::string* out) {
  *out += " status=" + std::to_string(e.status) + " detail=<" + std::string(e.detail) + ">";
  if (e.has_limit) *out += " limit=" + std::to_string(e.limit);
  *out += " allow=<" + std::string(e.allow) + "> location=<" + e.location + ">";
}

// The trace of `input` read by one Parser for `limits`, with the fast head
// recogniser on or off, fed `piece` bytes at a time (SIZE_MAX: whole).
// *fast_taken (when not null) gets the heads the recogniser read.
inline std::string ParserTrace(std::string_view input, const Limits& limits, bool fast, size_t piece,
                               uint64_t* fast_taken = nullptr) {
  Parser parser(limits);
  parser.SetFastHeads(fast);
  std::string out;
  size_t arrived = std::min(piece, input.size());
  size_t pos = 0;
  // Bounded: each round consumes a byte, delivers an event or lets a byte arrive.
  for (size_t round = 0; round < 4 * input.size() + 16; ++round) {
    const Parser::Step step = parser.Execute(std::span<const char>(input.data() + pos, arrived - pos));
    pos += step.consumed;
    out += std::to_string(static_cast<int>(step.event)) + "+" + std::to_string(step.consumed);
    switch (step.event) {
      case Parser::Event::kHead:
        AppendRequest(parser, &out);
        out += " rejected=" + std::to_string(parser.rejected());
        if (parser.rejected()) AppendError(parser.error(), &out);
        break;
      case Parser::Event::kBody:
        out += " body=<" + std::string(step.body.data(), step.body.size()) + ">";
        break;
      case Parser::Event::kError:
        AppendError(parser.error(), &out);
        break;
      default:
        break;
    }
    out += " log=<" + std::string(parser.method_token()) + "|" + std::string(parser.target_so_far()) + "|" +
           std::string(parser.protocol_so_far()) + "|" + std::to_string(parser.head_method()) + ">";
    out += " in_head=" + std::to_string(parser.InHead()) + " in_body=" + std::to_string(parser.InBody()) + "\n";
    if (step.event == Parser::Event::kError) break;
    if (step.event == Parser::Event::kNeedMore && (step.consumed == 0 || pos == arrived)) {
      if (arrived == input.size()) break;
      arrived = std::min(input.size(), arrived + std::min(piece, input.size() - arrived));
    }
  }
  out += "finish=" + std::to_string(parser.Finish()) + "\n";
  if (fast_taken != nullptr) *fast_taken = parser.fast_heads_taken();
  return out;
}

}  // namespace kingx::http::testing
