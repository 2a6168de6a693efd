// The error log. State is process-global (like nginx's cycle->log): one fd,
// one level. Reopen swaps the file under the same descriptor number with
// dup2, so a thread writing concurrently writes either to the old or the new
// file, never to a closed or reused descriptor.
#include "src/conf/log.h"

#include <fcntl.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <string>

#include "src/conf/log_file.h"

namespace kingx {
namespace {

std::atomic<int> g_fd{STDERR_FILENO};
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<int> g_next_thread{0};
std::mutex g_path_mu;  // guards g_path and the open/reopen sequence
std::string g_path;    // empty: stderr

std::atomic<uint64_t> g_dropped{0};  // lines a full pipe refused, not yet told

thread_local int t_thread_number = -1;

int ThreadNumber() {
  if (t_thread_number < 0) t_thread_number = g_next_thread.fetch_add(1, std::memory_order_relaxed);
  return t_thread_number;
}

engine::Status OpenAppend(const std::string& path, int* fd) { return OpenLogFile(path, kErrorLogWhat, fd); }

// One write(2) of a whole line. False when nothing was written: a pipe with
// no room (the descriptor is non-blocking: log_file.h), or an error.
bool WriteLine(const std::string& line) {
  ssize_t w;
  do {
    w = write(g_fd.load(std::memory_order_relaxed), line.data(), line.size());
  } while (w < 0 && errno == EINTR);
  return w > 0;
}

}  // namespace

engine::Status InitErrorLog(const std::string& path, LogLevel level) {
  int fd = -1;
  if (!path.empty()) {
    if (engine::Status s = OpenAppend(path, &fd); !s.ok()) return s;
  }
  InstallErrorLog(fd, path, level);
  return engine::Status::OK();
}

void InstallErrorLog(int fd, const std::string& path, LogLevel level) {
  std::lock_guard<std::mutex> lock(g_path_mu);
  if (path.empty()) {
    const int old = g_fd.exchange(STDERR_FILENO);
    if (old != STDERR_FILENO) close(old);
  } else {
    const int old = g_fd.load();
    if (old != STDERR_FILENO) {
      // Keep the descriptor number stable for concurrent writers.
      dup2(fd, old);
      close(fd);
    } else {
      g_fd.store(fd);
    }
  }
  g_path = path;
  g_level.store(static_cast<int>(level));
}

engine::Status ReopenErrorLog() {
  std::lock_guard<std::mutex> lock(g_path_mu);
  if (g_path.empty()) return engine::Status::OK();
  int fd = -1;
  engine::Status s = OpenAppend(g_path, &fd);
  if (!s.ok()) return s;
  const int old = g_fd.load();
  if (old == STDERR_FILENO) {
    g_fd.store(fd);
  } else {
    dup2(fd, old);
    close(fd);
  }
  return engine::Status::OK();
}

void SetErrorLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }

bool ErrorLogEnabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed); }

int ErrorLogFd() { return g_fd.load(); }

void AppendEscaped(std::string_view in, std::string* out) {
  static const char kHex[] = "0123456789abcdef";
  for (unsigned char ch : in) {
    if (ch == '\\') {
      out->append("\\\\");
    } else if (ch == '\n') {
      out->append("\\n");
    } else if (ch == '\r') {
      out->append("\\r");
    } else if (ch == '\t') {
      out->append("\\t");
    } else if (ch < 0x20 || ch >= 0x7f) {
      out->append("\\x");
      out->push_back(kHex[ch >> 4]);
      out->push_back(kHex[ch & 15]);
    } else {
      out->push_back(static_cast<char>(ch));
    }
  }
}

bool LogLimiter::Allow(uint64_t* left_out) {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return AllowAt(static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000, left_out);
}

bool LogLimiter::AllowAt(uint64_t now_ms, uint64_t* left_out) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!started_ || now_ms >= window_start_ms_ + interval_ms_) {
    started_ = true;
    window_start_ms_ = now_ms;
    in_window_ = 0;
  }
  if (in_window_ >= burst_) {
    ++held_;
    return false;
  }
  ++in_window_;
  *left_out = held_;
  held_ = 0;
  return true;
}

namespace {

// One line of the error log: prefix, escaped message ("..." when `cut`), LF.
std::string FormatLine(LogLevel level, std::string_view msg, bool cut) {
  timeval tv;
  gettimeofday(&tv, nullptr);
  tm t;
  localtime_r(&tv.tv_sec, &t);
  char prefix[96];
  const int p = snprintf(prefix, sizeof(prefix), "%04d/%02d/%02d %02d:%02d:%02d [%s] %d#%d: ", t.tm_year + 1900,
                         t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, LogLevelName(level),
                         static_cast<int>(getpid()), ThreadNumber());
  std::string line;
  line.reserve(static_cast<size_t>(p) + msg.size() + 16);
  line.append(prefix, static_cast<size_t>(p));
  AppendEscaped(msg, &line);
  if (cut) line.append("...");
  line.push_back('\n');
  return line;
}

}  // namespace

void Log(LogLevel level, const char* fmt, ...) {
  if (!ErrorLogEnabled(level)) return;
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (n < 0) return;
  const size_t len = std::min<size_t>(static_cast<size_t>(n), sizeof(msg) - 1);
  // One write per line: O_APPEND makes it atomic against other writers for
  // lines of this size. A failure to log has nowhere better to go; a line a
  // full pipe refused is counted and told once the reader has caught up.
  if (!WriteLine(FormatLine(level, std::string_view(msg, len), static_cast<size_t>(n) >= sizeof(msg)))) {
    g_dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (g_dropped.load(std::memory_order_relaxed) == 0) return;
  const uint64_t dropped = g_dropped.exchange(0);
  if (dropped == 0) return;
  const std::string note =
      std::to_string(dropped) + " error log line(s) dropped: its reader did not keep up (a full pipe)";
  if (!WriteLine(FormatLine(LogLevel::kWarn, note, false))) g_dropped.fetch_add(dropped + 1);
}

}  // namespace kingx
