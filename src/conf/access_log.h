// The access log: one line per request, in nginx's "combined" format or as
// JSON lines, buffered per process and written in large appends.
//
// combined (nginx's, plus request time in seconds and the request id):
//   203.0.113.7 - - [24/Nov/2026:03:40:00 +0000] "GET /v1/kv/a HTTP/1.1" 200 5 "-" "curl/7.88.1" 0.000 "9f2c..."
// json (one object per line):
//   {"time":"2026-11-24T03:40:00+00:00","remote_addr":"203.0.113.7","method":"GET",
//    "uri":"/v1/kv/a","protocol":"HTTP/1.1","status":200,"body_bytes_sent":5,
//    "referer":"","user_agent":"curl/7.88.1","request_time":0.000,"request_id":"9f2c..."}
//
// Logged strings come from clients: in combined, '"', '\\', CR, LF and every
// non-printable byte are escaped as \xHH (nginx's default escaping); in JSON,
// as nginx's escape=json: what JSON requires is escaped (\" \n \r \t \u00XX),
// well-formed UTF-8 is kept as it is, and each byte of ill-formed UTF-8 (and
// each backslash) is the text \xHH of the decoded value, so every line is
// valid UTF-8 and valid JSON, and two different inputs never log alike.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "engine/status.h"
#include "src/conf/config.h"

namespace kingx {

// What one request contributes to the access log. Views only: they must stay
// valid during the Append call; "" means absent (printed "-" in combined).
struct AccessRecord {
  std::string_view remote_addr;   // from ClientAddress()
  std::string_view method;        // "GET" (what was received of it when the head was refused)
  std::string_view target;        // request target as received ("/v1/kv/a%20b")
  std::string_view protocol;      // "HTTP/1.1"
  int status = 0;
  uint64_t body_bytes_sent = 0;
  std::string_view referer;
  std::string_view user_agent;
  std::string_view request_id;
  int64_t time_unix_ms = 0;       // when the request completed (wall clock)
  uint64_t request_time_us = 0;   // from the event that completed the request head to the response's end (0: no complete head)
};

// Formats one line (with its '\n') into *out (appended).
void FormatAccessCombined(const AccessRecord& r, std::string* out);
void FormatAccessJson(const AccessRecord& r, std::string* out);

// A record kept until its response ends (its line is written then, with
// the body bytes sent and the request time): PackAccessRecord appends every
// field of `r` to *out; UnpackAccessRecord reads one packed record from the
// start of `packed` into *r (its views point into `packed`) and returns the
// bytes it took, 0 when `packed` is too short to hold one. No allocation
// beyond *out's growth; any thread.
void PackAccessRecord(const AccessRecord& r, std::string* out);
size_t UnpackAccessRecord(std::string_view packed, AccessRecord* r);

// A per-process access log. Thread-safe (an internal mutex; the thread-pool
// model appends from many threads). Open/Reopen/Flush/Append never throw and
// never block on anything but the file.
//
// Buffering: lines accumulate in memory and are written by one write(2) when
// the buffer passes 64 KiB, on Flush(), and on FlushIfDue() once a second has
// passed since the last write — the owner calls FlushIfDue from a 1-second
// timer (libuv timer, or the thread worker's housekeeping) and Flush() before
// it exits. A failed write is reported once to the error log and the lines
// are dropped (the log never grows without bound). A pipe (a FIFO read by a
// log shipper) gets whole lines, at most PIPE_BUF bytes per write, never
// waited on: while it is full the lines are held (up to 256 KiB), then
// dropped and counted, and both are told in the error log (warn). The owner
// waits for room on RoomWaitFd (poll for writability) and calls Flush when
// there is some, so a reader that resumes gets the held lines at once, a
// pipe-full per wake-up; without that wait they are tried again once a
// second (FlushIfDue).
class AccessLog {
 public:
  AccessLog() = default;
  ~AccessLog();  // flushes and closes
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // Opens `path` (O_APPEND|O_CREAT, 0644, never waiting: src/conf/log_file.h).
  // An empty path or "off" makes the log disabled (enabled() false, Append is
  // a no-op). kIOError naming the path and --access-log.
  engine::Status Open(const std::string& path, AccessLogFormat format);

  // Open with the file already opened by OpenLogFile (a worker takes the
  // master's: no gap in which a FIFO's reader would see its last writer
  // leave). Takes `fd`; -1 = disabled.
  void Adopt(int fd, const std::string& path, AccessLogFormat format);

  // Flushes, then re-opens the same path (USR1). On error the old descriptor
  // stays in use and the error is returned.
  engine::Status Reopen();

  bool enabled() const { return fd_ >= 0; }

  // While lines are held for a full pipe: the descriptor to wait on for
  // room (POLLOUT / UV_WRITABLE; then Flush). -1 otherwise. The descriptor
  // is valid until the next Reopen, Adopt or Open: an event loop stops
  // watching it before calling those.
  int RoomWaitFd();

  void Append(const AccessRecord& record);
  void Flush();
  // Flushes if at least one second passed since the last write.
  void FlushIfDue();

 private:
  void FlushLocked();
  void TakeDescriptorLocked(int fd);

  std::mutex mu_;
  int fd_ = -1;
  std::string path_;
  AccessLogFormat format_ = AccessLogFormat::kCombined;
  std::string buffer_;
  int64_t last_flush_ms_ = 0;
  bool reported_error_ = false;
  bool pipe_ = false;       // fd_ is a FIFO or a socket: writes of whole lines, PIPE_BUF at most
  bool pipe_full_ = false;  // the last write found the pipe full
  uint64_t dropped_ = 0;    // lines dropped since the pipe became full
};

// The client address to log (nginx realip with real_ip_recursive on): when
// `peer` (numeric text of the socket's peer address) is a trusted proxy and
// `x_forwarded_for` is not empty, the right-most address of the header that
// is not itself trusted (or the left-most one if all are trusted); otherwise
// `peer`. Malformed header entries stop the walk (the last good hop wins).
// Returns a view into `peer` or `x_forwarded_for`. Any thread; no allocation.
std::string_view ClientAddress(std::string_view peer, std::string_view x_forwarded_for,
                               const std::vector<TrustedProxy>& trusted);

// Whether numeric address text `addr` lies in one of `trusted`.
bool IsTrustedAddress(std::string_view addr, const std::vector<TrustedProxy>& trusted);

}  // namespace kingx
