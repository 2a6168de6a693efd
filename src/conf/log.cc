// The error log. State is process-global (like nginx's cycle->log): one
// sink (descriptor and write method, log_sink.h), one level. Reopen and a new
// sink keep the descriptor number with dup2, so a thread writing
// concurrently writes either to the old or the new file, never to a closed
// or reused descriptor.
#include "src/conf/log.h"

#include <fcntl.h>
#include <limits.h>
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
#include "src/conf/log_sink.h"

namespace kingx {

static_assert(kMaxLogLineBytes <= PIPE_BUF, "a line must reach a pipe in one atomic write");

namespace {

// The sink in one word, so that a writer never pairs one sink's descriptor
// with another's method: the descriptor in the low 32 bits, the method above.
uint64_t Pack(const LogSink& s) {
  return static_cast<uint32_t>(s.fd) | (static_cast<uint64_t>(s.how) << 32);
}
LogSink Unpack(uint64_t word) {
  return LogSink{static_cast<int>(static_cast<uint32_t>(word)), static_cast<SinkWrite>(word >> 32)};
}

// Before InitErrorLog: stderr, written when poll says it has room.
std::atomic<uint64_t> g_sink{Pack(LogSink{})};
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

// Makes `next` the sink. Called with g_path_mu held. An owned descriptor
// already in use keeps its number (dup2), and `next`'s own is closed.
void InstallSinkLocked(LogSink next) {
  const LogSink old = Unpack(g_sink.load());
  if (old.owned() && next.owned()) {
    dup2(next.fd, old.fd);
    close(next.fd);
    next.fd = old.fd;
  }
  g_sink.store(Pack(next));
  if (old.owned() && !next.owned()) close(old.fd);
}

// One call writing a whole line (log_sink.h). False when nothing was
// written: a sink with no room, or an error.
bool WriteLine(const std::string& line) { return WriteToSink(Unpack(g_sink.load(std::memory_order_relaxed)), line); }

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
  InstallSinkLocked(path.empty() ? OpenStderrSink() : LogSink{fd, SinkWrite::kWrite});
  g_path = path;
  g_level.store(static_cast<int>(level));
}

engine::Status ReopenErrorLog() {
  std::lock_guard<std::mutex> lock(g_path_mu);
  if (g_path.empty()) return engine::Status::OK();
  int fd = -1;
  engine::Status s = OpenAppend(g_path, &fd);
  if (!s.ok()) return s;
  InstallSinkLocked(LogSink{fd, SinkWrite::kWrite});
  return engine::Status::OK();
}

void SetErrorLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }

bool ErrorLogEnabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed); }

int ErrorLogFd() { return Unpack(g_sink.load()).fd; }

namespace {

// The escaped form of `ch` into buf (at most 4 bytes); returns its length.
size_t EscapeByte(unsigned char ch, char* buf) {
  static const char kHex[] = "0123456789abcdef";
  const char* two = ch == '\\' ? "\\\\" : ch == '\n' ? "\\n" : ch == '\r' ? "\\r" : ch == '\t' ? "\\t" : nullptr;
  if (two != nullptr) {
    buf[0] = two[0];
    buf[1] = two[1];
    return 2;
  }
  if (ch < 0x20 || ch >= 0x7f) {
    buf[0] = '\\';
    buf[1] = 'x';
    buf[2] = kHex[ch >> 4];
    buf[3] = kHex[ch & 15];
    return 4;
  }
  buf[0] = static_cast<char>(ch);
  return 1;
}

}  // namespace

void AppendEscaped(std::string_view in, std::string* out) { (void)AppendEscapedUpTo(in, SIZE_MAX, out); }

size_t AppendEscapedUpTo(std::string_view in, size_t max_bytes, std::string* out) {
  size_t used = 0;
  size_t taken = 0;
  for (unsigned char ch : in) {
    char buf[4];
    const size_t n = EscapeByte(ch, buf);
    if (n > max_bytes - used) break;
    out->append(buf, n);
    used += n;
    ++taken;
  }
  return taken;
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

// One line of the error log: prefix, escaped message, LF; at most
// kMaxLogLineBytes, the message cut (and kLogCutMark put after it) where the
// whole would not fit or `cut` says vsnprintf already cut it.
std::string FormatLine(LogLevel level, std::string_view msg, bool cut) {
  timeval tv;
  gettimeofday(&tv, nullptr);
  tm t;
  localtime_r(&tv.tv_sec, &t);
  char prefix[96];
  const int p = snprintf(prefix, sizeof(prefix), "%04d/%02d/%02d %02d:%02d:%02d [%s] %d#%d: ", t.tm_year + 1900,
                         t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, LogLevelName(level),
                         static_cast<int>(getpid()), ThreadNumber());
  const size_t prefix_bytes = std::min(static_cast<size_t>(std::max(p, 0)), sizeof(prefix) - 1);
  constexpr size_t kMark = sizeof(kLogCutMark) - 1;
  // Room for the message: the line less its prefix and LF, and less the
  // mark unless the whole message fits.
  const size_t room = kMaxLogLineBytes - prefix_bytes - 1;
  std::string line;
  line.reserve(std::min(kMaxLogLineBytes, prefix_bytes + 4 * msg.size() + kMark + 1));
  line.append(prefix, prefix_bytes);
  if (!cut && AppendEscapedUpTo(msg, room, &line) == msg.size()) {
    line.push_back('\n');
    return line;
  }
  line.resize(prefix_bytes);
  (void)AppendEscapedUpTo(msg, room - kMark, &line);
  line.append(kLogCutMark, kMark);
  line.push_back('\n');
  return line;
}

}  // namespace

void Log(LogLevel level, const char* fmt, ...) {
  if (!ErrorLogEnabled(level)) return;
  char msg[kMaxLogLineBytes];  // what is longer could not fit a line anyway
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (n < 0) return;
  const size_t len = std::min<size_t>(static_cast<size_t>(n), sizeof(msg) - 1);
  // One write per line of at most PIPE_BUF bytes: atomic against other
  // writers of the same file (O_APPEND) or pipe. A failure to log has
  // nowhere better to go; a line a full pipe refused is counted and told
  // once the reader has caught up.
  if (!WriteLine(FormatLine(level, std::string_view(msg, len), static_cast<size_t>(n) >= sizeof(msg)))) {
    g_dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (g_dropped.load(std::memory_order_relaxed) == 0) return;
  const uint64_t dropped = g_dropped.exchange(0);
  if (dropped == 0) return;
  const std::string note = std::to_string(dropped) +
                           " error log line(s) dropped: its reader did not keep up (a full pipe, or a terminal "
                           "stopped by XOFF)";
  if (!WriteLine(FormatLine(LogLevel::kWarn, note, false))) g_dropped.fetch_add(dropped + 1);
}

}  // namespace kingx
