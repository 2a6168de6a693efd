// Test support for the http/ unit tests: a fake key-value Handler backed by
// a std::map (answering at once or later), a harness that plays the I/O
// layer (feeds bytes, writes output, fires timers) and a response splitter.
#pragma once

#include <sys/uio.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/status.h"
#include "http/connection.h"
#include "http/responses.h"

namespace kingx::http::testing {

// Answers the key-value API from a std::map. kSync answers inside the
// callbacks; kDeferred queues the answer until Flush (like a PUT waiting for
// the writer's durability report, or a GET answered on the next loop turn).
class FakeKvHandler : public Handler {
 public:
  enum class Mode { kSync, kDeferred };
  struct Entry {
    uint64_t seq = 0;
    std::string value;
    std::string content_type;
  };

  FakeKvHandler(Mode mode, const uint64_t* clock) : mode_(mode), clock_(clock) {}

  std::map<std::string, Entry> store;
  uint64_t next_seq = 1;
  int requests = 0;
  int body_pieces = 0;
  int body_ends = 0;
  int aborts = 0;
  int responded = 0;          // OnResponded calls
  int responded_by_core = 0;
  bool pause_each_body_piece = false;  // PauseBody after every piece
  size_t largest_piece = 0;
  std::vector<std::string> keys_seen;  // keys of dispatched requests, in order
  // OnKeyHint calls in order: "target:<key>" or "head:<key>", with the number
  // of requests dispatched by then ("@<n>").
  std::vector<std::string> hints;

  bool HasPending() const { return pending_.has_value(); }
  // Deferred mode: sends the queued answer.
  void Flush() {
    if (!pending_) return;
    Response r = std::move(*pending_);
    pending_.reset();
    Connection* conn = conn_;
    conn->Respond(r, *clock_);
  }

  void OnRequest(Connection& conn, const Request& req) override {
    ++requests;
    awaiting_body_ = false;
    conn_ = &conn;
    req_ = &req;
    body_.clear();
    keys_seen.emplace_back(req.key);
    switch (req.route) {
      case Route::kKvList:
        return Answer(TextResponse(200, "application/json", "{\"keys\":[],\"list_complete\":true}\n"));
      case Route::kHealthz:
      case Route::kReadyz:
        return Answer(TextResponse(200, "text/plain", "ok\n"));
      case Route::kMetrics:
        return Answer(TextResponse(200, "text/plain; version=0.0.4", "metrics\n"));
      case Route::kAdminCompact:
        return Answer(TextResponse(202, "text/plain", "compaction requested\n"));
      case Route::kAdminBackup:
        return Answer(TextResponse(200, "application/x-tar", std::string(1024, '\0')));
      case Route::kKv:
        break;
    }
    auto it = store.find(std::string(req.key));
    uint64_t current = it == store.end() ? 0 : it->second.seq;
    switch (req.method) {
      case Method::kGet:
      case Method::kHead: {
        if (it == store.end()) return Answer(ErrorResponse(engine::Status::NotFound("No such key.")));
        if (IsNotModified(req, current)) return Answer(NotModifiedResponse(current));
        auto holder = std::make_shared<const std::string>(it->second.value);
        return Answer(ValueResponse(*holder, holder, current, it->second.content_type));
      }
      case Method::kDelete:
        if (req.if_match.present() && !req.if_match.MatchesStrong(current)) {
          return Answer(ErrorResponse(engine::Status::PreconditionFailed("If-Match failed.")));
        }
        if (it == store.end()) return Answer(ErrorResponse(engine::Status::NotFound("No such key.")));
        store.erase(it);
        return Answer(DeleteResponse());
      case Method::kPut:
        // Preconditions that already fail are answered before the body.
        if (req.if_none_match.kind == Precondition::Kind::kAny && current != 0) {
          return Answer(ErrorResponse(engine::Status::PreconditionFailed("The key exists.")));
        }
        if (req.if_match.present() && !req.if_match.MatchesStrong(current)) {
          return Answer(ErrorResponse(engine::Status::PreconditionFailed("If-Match failed.")));
        }
        content_type_ = std::string(req.content_type.empty() ? kDefaultContentType : req.content_type);
        key_ = std::string(req.key);
        awaiting_body_ = true;
        return;  // wait for the body
      default:
        return Answer(ProblemResponse(500, "unexpected method"));
    }
  }

  void OnBody(Connection& conn, std::span<const char> piece, uint64_t) override {
    ++body_pieces;
    largest_piece = std::max(largest_piece, piece.size());
    body_.append(piece.data(), piece.size());
    if (pause_each_body_piece) conn.PauseBody();
  }

  void OnBodyEnd(Connection&, uint64_t) override {
    ++body_ends;
    // Deferred answers to bodyless requests are still queued: the body end
    // of a GET means nothing here.
    if (!awaiting_body_) return;
    awaiting_body_ = false;
    bool created = store.find(key_) == store.end();
    uint64_t seq = next_seq++;
    store[key_] = Entry{seq, body_, content_type_};
    Answer(PutResponse(created, seq));
  }

  void OnAbort(Connection&) override {
    ++aborts;
    awaiting_body_ = false;
    pending_.reset();
    conn_ = nullptr;
    req_ = nullptr;
  }

  void OnKeyHint(Connection&, std::string_view key, KeyHintStage stage) override {
    hints.push_back(std::string(stage == KeyHintStage::kTarget ? "target:" : "head:") + std::string(key) + "@" +
                    std::to_string(requests));
  }

  void OnResponded(Connection&, const ResponseRecord& record) override {
    ++responded;
    if (record.by_core) ++responded_by_core;
    if (record.head) head_responses.push_back(responded - 1);
    records.push_back(Record{record.status, record.by_core, record.head, std::string(record.method),
                             std::string(record.target), std::string(record.protocol), std::string(record.detail)});
    if (note_ends) record.end_note->append(record.target);
  }

  // With note_ends, each response gets an end note (its target) and its
  // OnResponseEnd report is kept in `ends`, in order.
  bool note_ends = false;
  struct End {
    std::string note;
    uint64_t body_bytes_sent;
    bool complete;
  };
  std::vector<End> ends;
  void OnResponseEnd(Connection&, const ResponseEnd& end) override {
    ends.push_back(End{std::string(end.note), end.body_bytes_sent, end.complete});
  }

  std::vector<size_t> head_responses;  // indexes of final responses that answer a HEAD
  // Every OnResponded report, copied.
  struct Record {
    int status;
    bool by_core;
    bool head;
    std::string method, target, protocol, detail;
  };
  std::vector<Record> records;

 private:
  void Answer(Response r) {
    if (mode_ == Mode::kSync) {
      conn_->Respond(r, *clock_);
    } else {
      pending_ = std::move(r);
    }
  }

  Mode mode_;
  const uint64_t* clock_;
  Connection* conn_ = nullptr;
  const Request* req_ = nullptr;
  std::optional<Response> pending_;
  std::string body_;
  std::string key_;
  std::string content_type_;
  bool awaiting_body_ = false;
};

// Plays the I/O layer: writes every byte the Connection offers at once.
struct Harness {
  explicit Harness(FakeKvHandler::Mode mode, Limits l = Limits{})
      : limits(l), handler(mode, &now), conn(std::make_unique<Connection>(handler, limits, &counters, now)) {}

  Limits limits;
  Counters counters{};
  uint64_t now = 1000;
  FakeKvHandler handler;
  std::unique_ptr<Connection> conn;
  std::string wire;  // everything written so far

  void Feed(std::string_view bytes) {
    conn->Feed(std::span<const char>(bytes.data(), bytes.size()), now);
    Pump();
  }
  // Feeds `bytes` in pieces of `step` bytes (the last may be shorter).
  void FeedInSteps(std::string_view bytes, size_t step) {
    for (size_t i = 0; i < bytes.size(); i += step) Feed(bytes.substr(i, step));
  }
  // Writes all output and flushes deferred answers until nothing moves.
  void Pump() {
    for (int round = 0; round < 100000; ++round) {
      bool moved = false;
      if (conn->HasOutput()) {
        struct iovec iov[64];
        size_t n = conn->GatherOutput(iov, 64);
        size_t total = 0;
        for (size_t i = 0; i < n; ++i) {
          wire.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
          total += iov[i].iov_len;
        }
        conn->ConsumeOutput(total, now);
        moved = true;
      }
      if (handler.HasPending()) {
        handler.Flush();
        moved = true;
      }
      if (!moved) return;
    }
  }
  void Advance(uint64_t ms) {
    now += ms;
    conn->OnTimer(now);
    Pump();
  }
};

// One response as seen by a client.
struct ParsedResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-cased names
  std::string body;
  bool Has(const std::string& name) const { return headers.count(name) > 0; }
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// Splits a byte stream of responses. Bodies are delimited by Content-Length
// (none for 1xx/204/304 or for responses to HEAD, as flagged by head_at:
// indexes of final responses that answer a HEAD). Interim (1xx) responses
// are returned too when keep_interim. Stops at the first malformed part and
// then appends a response with status -1.
inline std::vector<ParsedResponse> SplitResponses(std::string_view wire, bool keep_interim = false,
                                                  std::vector<size_t> head_at = {}) {
  std::vector<ParsedResponse> out;
  size_t finals = 0;
  while (!wire.empty()) {
    size_t end = wire.find("\r\n\r\n");
    if (end == std::string_view::npos || wire.substr(0, 9) != "HTTP/1.1 ") {
      out.push_back(ParsedResponse{-1, {}, std::string(wire)});
      break;
    }
    ParsedResponse r;
    std::string_view head = wire.substr(0, end);
    r.status = std::stoi(std::string(head.substr(9, 3)));
    size_t line_end = head.find("\r\n");
    while (line_end != std::string_view::npos) {
      size_t next = head.find("\r\n", line_end + 2);
      std::string_view line = head.substr(line_end + 2, next == std::string_view::npos ? head.npos : next - line_end - 2);
      size_t colon = line.find(':');
      std::string name(line.substr(0, colon));
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string value(colon == std::string_view::npos ? "" : line.substr(colon + 1));
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      r.headers[name] = value;
      line_end = next;
    }
    wire.remove_prefix(end + 4);
    bool interim = r.status < 200;
    bool is_head = !interim && std::find(head_at.begin(), head_at.end(), finals) != head_at.end();
    if (!interim && !is_head && r.status != 204 && r.status != 304 && r.Has("content-length")) {
      size_t n = std::stoul(r.Header("content-length"));
      if (n > wire.size()) {
        out.push_back(ParsedResponse{-1, {}, std::string(wire)});
        break;
      }
      r.body = std::string(wire.substr(0, n));
      wire.remove_prefix(n);
    }
    if (!interim) ++finals;
    if (!interim || keep_interim) out.push_back(std::move(r));
  }
  return out;
}

// The wire with every Date value replaced by "<date>", for exact comparisons.
// (No std::regex: GCC 12 warns inside it under -fsanitize, and we build with -Werror.)
inline std::string NormalizeDate(const std::string& wire) {
  std::string out;
  size_t pos = 0;
  for (;;) {
    size_t at = wire.find("\r\nDate: ", pos);
    if (at == std::string::npos) break;
    size_t value = at + 8;
    size_t end = wire.find("\r\n", value);
    if (end == std::string::npos) break;
    out.append(wire, pos, value - pos);
    out.append("<date>");
    pos = end;
  }
  out.append(wire, pos, std::string::npos);
  return out;
}

}  // namespace kingx::http::testing
