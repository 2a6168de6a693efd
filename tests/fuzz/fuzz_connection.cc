// libFuzzer target over the HTTP connection core (http::Connection with a
// fake key-value handler), and the same entry point replayed over the
// committed corpus by replay_main.cc in the normal unit-test build.
//
// Input: the first byte is the control byte, the rest is what a client
// sends. Control bits: 0 = handler answers later (deferred) instead of at
// once; 1 = the handler pauses the body after every piece; 2-4 = piece size
// scale for the split points (also the seed of the split sequence);
// 7 = tiny limits (so every limit is reachable by short inputs).
//
// Invariants checked (abort on violation): the output is a sequence of
// well-formed responses, one per OnResponded report, never more final
// responses than parsed request heads plus one refusal of unparsable bytes;
// every dispatched request is answered or aborted exactly once; the
// connection's memory stays within its limits; no crash or sanitizer report.
// And, with a handler that answers at once and no timers: what is written
// and which requests reach the handler (with their bodies) do not depend on
// how the input is split — the input fed whole gives the same result as fed
// one byte at a time. The framing checks keep state across pieces (a CR at
// the end of one piece, its LF in the next); a lost or doubled byte of state
// shows up here as a different answer.
// Differential mode, always on: a Parser with the fast head recogniser
// (http/fast_head.h) and one without it read the input (fed whole, and in
// pieces of the control byte's scale) with the same events, requests, errors
// and state; the recogniser may only ever save work, never change a reading.
#include <sys/uio.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "http/connection.h"
#include "tests/http/parser_trace.h"
#include "tests/http/test_support.h"

namespace {

using kingx::http::Connection;
using kingx::http::Counters;
using kingx::http::Limits;
using kingx::http::testing::FakeKvHandler;
using kingx::http::testing::SplitResponses;

[[noreturn]] void Violation(const char* what, int line) {
  std::fprintf(stderr, "fuzz_connection: invariant violated at line %d: %s\n", line, what);
  std::abort();
}
#define INVARIANT(cond)                        \
  do {                                         \
    if (!(cond)) Violation(#cond, __LINE__);   \
  } while (0)

struct Rng {
  uint32_t state;
  uint32_t Next() {
    state = state * 1664525u + 1013904223u;
    return state >> 8;
  }
};

// Writes up to `max_bytes` of the pending output (a short write), returns bytes written.
size_t Write(Connection& conn, std::string* wire, size_t max_bytes, uint64_t now) {
  struct iovec iov[8];
  size_t n = conn.GatherOutput(iov, 8);
  size_t written = 0;
  for (size_t i = 0; i < n && written < max_bytes; ++i) {
    size_t take = std::min(iov[i].iov_len, max_bytes - written);
    wire->append(static_cast<const char*>(iov[i].iov_base), take);
    written += take;
  }
  conn.ConsumeOutput(written, now);
  return written;
}

// What a client and the handler observe when `input` is fed in pieces of
// `step` bytes to a handler that answers at once, with no timers: the
// responses, every dispatched request's key, and the stored values.
std::string Observe(std::string_view input, const Limits& limits, size_t step) {
  uint64_t now = 1;
  Counters counters{};
  FakeKvHandler handler(FakeKvHandler::Mode::kSync, &now);
  handler.store["k"] = {5, "value", "text/plain"};
  auto conn = std::make_unique<Connection>(handler, limits, &counters, now);
  std::string wire;
  for (size_t pos = 0; pos < input.size() && !conn->ShouldClose(); pos += step) {
    const size_t piece = std::min(step, input.size() - pos);
    conn->Feed(std::span<const char>(input.data() + pos, piece), now);
    while (conn->HasOutput()) Write(*conn, &wire, SIZE_MAX, now);
  }
  if (!conn->ShouldClose()) conn->FeedEof(now);
  while (conn->HasOutput()) Write(*conn, &wire, SIZE_MAX, now);
  // Statuses, framing and bodies; a problem's wording may depend on which
  // check saw the bad byte first (a header name's SP is llhttp's error when
  // whole, ours when it comes alone), so problem bodies are masked.
  std::string seen;
  for (const auto& r : SplitResponses(wire, true, handler.head_responses)) {
    seen += std::to_string(r.status) + " " + r.Header("connection") + " ";
    seen += r.Header("content-type") == "application/problem+json" ? std::string("<problem>") : r.body;
    seen += "\n";
  }
  seen += "--- dispatched:";
  for (const std::string& key : handler.keys_seen) seen += " [" + key + "]";
  seen += "\n--- stored:";
  for (const auto& [key, entry] : handler.store) seen += " [" + key + "=" + entry.value + "]";
  return seen;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t control = data[0];
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);

  Limits limits;
  if (control & 0x80) {
    limits.max_request_line_bytes = 64;
    limits.max_header_bytes = 256;
    limits.max_header_fields = 8;
    limits.max_key_bytes = 16;
    limits.max_body_bytes = 64;
    limits.max_buffered_input_bytes = 128;
    limits.max_buffered_output_bytes = 512;
    limits.body_part_bytes = 5;
  }
  uint64_t now = 1;
  Counters counters{};
  FakeKvHandler handler((control & 1) ? FakeKvHandler::Mode::kDeferred : FakeKvHandler::Mode::kSync, &now);
  handler.pause_each_body_piece = (control & 2) != 0;
  handler.store["k"] = {5, "value", "text/plain"};
  auto conn = std::make_unique<Connection>(handler, limits, &counters, now);

  Rng rng{control * 2654435761u + 1};
  const size_t scale = ((control >> 2) & 7) * 9 + 1;
  std::string wire;
  bool abandoned = false;
  size_t pos = 0;
  // Bounded: every round feeds, writes, flushes or resumes something, or
  // moves time; 4 rounds per input byte is plenty.
  for (size_t round = 0; round < 4 * input.size() + 64 && !conn->ShouldClose(); ++round) {
    if (pos < input.size() && conn->WantsRead()) {
      size_t piece = std::min<size_t>(1 + rng.Next() % scale, input.size() - pos);
      conn->Feed(std::span<const char>(input.data() + pos, piece), now);
      pos += piece;
    }
    if (conn->HasOutput()) Write(*conn, &wire, 1 + rng.Next() % 700, now);
    if (handler.HasPending() && rng.Next() % 2 == 0) handler.Flush();
    if (rng.Next() % 3 == 0) conn->ResumeBody(now);
    if (rng.Next() % 29 == 0) {
      now += rng.Next() % 80000;
      bool had_output = conn->HasOutput();
      conn->OnTimer(now);
      if (had_output && !conn->HasOutput() && conn->ShouldClose()) abandoned = true;
    }
    INVARIANT(conn->MemoryFootprint() < 4 * (limits.max_buffered_input_bytes + limits.max_header_bytes +
                                             limits.max_buffered_output_bytes + limits.body_part_bytes) +
                                            (1 << 20));
  }
  if (!conn->ShouldClose()) conn->FeedEof(now);
  // Let everything settle: the handler answers, the body resumes, output drains.
  for (int round = 0; round < 100000; ++round) {
    bool moved = false;
    if (handler.HasPending()) {
      handler.Flush();
      moved = true;
    }
    if (conn->HasOutput()) moved = Write(*conn, &wire, SIZE_MAX, now) > 0 || moved;
    if (!moved) {
      size_t before = wire.size();
      conn->ResumeBody(now);
      if (!handler.HasPending() && !conn->HasOutput() && wire.size() == before) break;
    }
  }

  std::vector<size_t> head_at = handler.head_responses;
  auto responses = SplitResponses(wire, false, head_at);
  size_t finals = 0;
  for (size_t i = 0; i < responses.size(); ++i) {
    if (responses[i].status == -1) {
      INVARIANT(abandoned && i + 1 == responses.size());  // only a write cut short by the send timeout
      continue;
    }
    INVARIANT(responses[i].status >= 200 && responses[i].status <= 599);
    ++finals;
  }
  if (!abandoned) INVARIANT(finals == static_cast<size_t>(handler.responded));
  uint64_t heads = 0;
  for (uint64_t n : counters.requests_by_method) heads += n;
  INVARIANT(static_cast<uint64_t>(handler.responded) <= heads + 1);
  INVARIANT(counters.connections_opened == 1);

  conn.reset();  // aborts whatever the handler still holds
  INVARIANT(counters.connections_closed == 1);
  INVARIANT(handler.requests == (handler.responded - handler.responded_by_core) + handler.aborts);
  INVARIANT(!handler.HasPending());

  INVARIANT(Observe(input, limits, SIZE_MAX) == Observe(input, limits, 1));
  using kingx::http::testing::ParserTrace;
  INVARIANT(ParserTrace(input, limits, true, SIZE_MAX) == ParserTrace(input, limits, false, SIZE_MAX));
  INVARIANT(ParserTrace(input, limits, true, scale) == ParserTrace(input, limits, false, scale));
  return 0;
}
