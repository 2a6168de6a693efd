// The error log: one process-wide sink with levels, nginx's line format.
//
//   2026/11/24 03:40:00 [info] 1234#0: message
//
// (local time, level, pid # thread number within the process, message).
// CR, LF and non-printable bytes inside messages are escaped (\r, \n, \xHH)
// so one call is always one line. A line is at most kMaxLogLineBytes
// (PIPE_BUF, as nginx cuts its lines at NGX_MAX_ERROR_STR and HAProxy its
// messages at a log target's `len`): a longer message is cut, never inside an
// escape, and ends with kLogCutMark. Every line is written with one call
// (src/conf/log_sink.h), so lines of different processes and threads never
// mix, in a file opened O_APPEND as in a pipe or FIFO shared by every
// process (a write of at most PIPE_BUF bytes to a pipe is atomic); nothing
// is buffered: a line is in the file when Log returns.
//
// No Log call waits: a log that is a pipe (a FIFO read by a log shipper), and
// stderr when it is a terminal stopped by XOFF or a pipe whose reader
// stalls, refuse a line they have no room for; it is dropped and counted,
// and the count is logged (warn) with the next line that gets through.
// stderr's own flags are never changed (log_sink.h).
//
// The access log (per-request, buffered) is in src/conf/access_log.h.
//
// Thread-safety: Log* and ErrorLogEnabled may be called from any thread at
// any time, also before InitErrorLog (then they write to stderr at level
// info). InitErrorLog / ReopenErrorLog are called by one thread (the main
// thread of a process: the master, or a child after fork, or a signal-flag
// handler in a loop) while others may log; they are not async-signal-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "engine/status.h"
#include "src/conf/config.h"

namespace kingx {

// Opens `path` for appending (created 0644 if missing; never waits:
// src/conf/log_file.h); empty path = stderr. Messages below `level` are
// discarded. On error (kIOError naming the path and --error-log) the previous
// sink stays in place.
engine::Status InitErrorLog(const std::string& path, LogLevel level);

// InitErrorLog with the file already opened by OpenLogFile: takes `fd` (-1
// with an empty path = stderr). Cannot fail.
void InstallErrorLog(int fd, const std::string& path, LogLevel level);

// Re-opens the same path (USR1, after logrotate moved the file). On error the
// old descriptor stays in use and the error is returned (the caller logs it).
engine::Status ReopenErrorLog();

// Changes the level at runtime (HUP with a new --log-level).
void SetErrorLogLevel(LogLevel level);

bool ErrorLogEnabled(LogLevel level);

// Writes one line if `level` is enabled. printf-style format.
void Log(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// The descriptor lines go to (for redirecting a child's stderr, tests).
int ErrorLogFd();

// Escapes `in` for a log line: printable ASCII except '\\' is copied; '\\'
// becomes "\\\\"; CR, LF, TAB become \r \n \t; every other byte \xHH.
// Appends to *out.
void AppendEscaped(std::string_view in, std::string* out);

// AppendEscaped of the longest prefix of `in` whose escaped form takes at
// most `max_bytes` (an escape is never split); returns the bytes of `in`
// taken.
size_t AppendEscapedUpTo(std::string_view in, size_t max_bytes, std::string* out);

// The longest error-log line, LF included: what one write to a pipe
// delivers whole.
inline constexpr size_t kMaxLogLineBytes = 4096;
// Ends a line whose message was cut (before the LF).
inline constexpr char kLogCutMark[] = "...[cut]";

// Lets at most `burst` messages through per `interval_ms` and counts the ones
// held back, so a repeated failure (a full disk, a flood of bad requests) is
// visible in the error log without flooding it. Thread-safe.
class LogLimiter {
 public:
  explicit LogLimiter(uint64_t interval_ms, uint32_t burst = 1) : interval_ms_(interval_ms), burst_(burst) {}
  // True when a line may be written now; then *left_out is the number of
  // messages held back since the last line let through (and restarts at 0).
  bool Allow(uint64_t* left_out);
  // The same on an explicit monotonic millisecond clock (tests).
  bool AllowAt(uint64_t now_ms, uint64_t* left_out);

 private:
  std::mutex mu_;
  const uint64_t interval_ms_;
  const uint32_t burst_;
  bool started_ = false;
  uint64_t window_start_ms_ = 0;
  uint32_t in_window_ = 0;  // lines let through in the current window
  uint64_t held_ = 0;       // messages held back since the last line let through
};

}  // namespace kingx

#define KINGX_LOG_DEBUG(...) ::kingx::Log(::kingx::LogLevel::kDebug, __VA_ARGS__)
#define KINGX_LOG_INFO(...) ::kingx::Log(::kingx::LogLevel::kInfo, __VA_ARGS__)
#define KINGX_LOG_WARN(...) ::kingx::Log(::kingx::LogLevel::kWarn, __VA_ARGS__)
#define KINGX_LOG_ERROR(...) ::kingx::Log(::kingx::LogLevel::kError, __VA_ARGS__)
