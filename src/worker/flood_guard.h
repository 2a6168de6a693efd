// FloodGuard: notices a garbage flood from how a worker's connections end,
// and meters the worker's accepts while one is on, so that the flood waits in
// the kernel's backlog instead of taking the loop from established clients.
//
// A connection counts as garbage when the core refused it before it served
// any request (Connection::RefusedBeforeAnyRequest: a 400 to bytes that were
// not HTTP). A flood is on while at least half of the last kWindow
// connections that ended were garbage and the last garbage one ended less
// than kQuietMs ago. A worker whose connections end normally (a client or a
// proxy that opens one connection per request) is never metered, however
// many it opens.
//
// Accepts are metered only while a flood is on AND keep-alive clients are
// busy (a connection brought a further request within kKeepAliveBusyMs):
// those are the clients the metering protects. With none, the flood takes
// only time nobody else wants, and clients that open a connection per
// request (through a proxy, say) meet it in the backlog unmetered, as they
// would without the guard.
//
// While metered, accepts spend tokens: one comes every kAcceptEveryMs,
// and one per kRequestsPerAccept requests the worker answered (its
// established clients' work buys new clients a share of the loop); at most
// kBurst are saved. A new client behind a full backlog of flood connections
// then waits for them to be accepted at that pace (a 64-connection flood on
// an otherwise idle worker: at most 64 * kAcceptEveryMs).
//
// Threading: one caller at a time (the event worker's loop; the thread
// worker's acceptor and pool threads under the worker's lock); no
// allocation, no I/O, no clock of its own: callers pass the monotonic time.
#pragma once

#include <cstdint>

namespace kingx {

class FloodGuard {
 public:
  static constexpr uint32_t kWindow = 64;             // connection endings looked at
  static constexpr uint64_t kQuietMs = 1000;          // no garbage this long: the flood is over
  static constexpr uint64_t kAcceptEveryMs = 10;      // the pace of accepts with no requests answered
  static constexpr uint64_t kRequestsPerAccept = 64;  // requests answered that buy one more accept
  static constexpr uint32_t kBurst = 8;               // tokens saved at most
  static constexpr uint64_t kKeepAliveBusyMs = 1000;  // a further request this recent: keep-alive clients busy

  // A connection ended (closed); `garbage` per RefusedBeforeAnyRequest.
  void OnConnectionEnd(bool garbage, uint64_t now_ms);

  // A keep-alive connection brought a further request (its second or later).
  void OnKeepAliveRequest(uint64_t now_ms) { last_keepalive_ms_ = now_ms; }

  // True while a flood is on (see the header comment).
  bool Flooding(uint64_t now_ms) const;

  // How many clients may be accepted now: kUnmetered when no flood is on or
  // no keep-alive client is busy;
  // otherwise the tokens earned so far, counting `requests_answered` (the
  // worker's running total of requests answered, any start value).
  static constexpr uint32_t kUnmetered = UINT32_MAX;
  uint32_t AcceptsAllowed(uint64_t now_ms, uint64_t requests_answered);

  // One client was accepted: spends a token when the last AcceptsAllowed
  // was metered.
  void OnAccepted();

  // Milliseconds until the next token, for a caller that stopped accepting
  // because AcceptsAllowed returned 0 (at least 1).
  uint64_t MsUntilNextAccept(uint64_t now_ms) const;

 private:
  uint64_t endings_ = 0;        // bit i: the i-th latest ending was garbage (window of kWindow)
  uint32_t ended_ = 0;          // endings recorded, at most kWindow
  uint64_t last_garbage_ms_ = 0;
  uint64_t last_keepalive_ms_ = 0;  // 0: never
  bool metered_ = false;        // the last AcceptsAllowed was within a flood
  uint32_t tokens_ = kBurst;
  uint64_t refill_ms_ = 0;      // time up to which tokens were counted
  uint64_t refill_requests_ = 0;  // requests up to which tokens were counted
};

}  // namespace kingx
