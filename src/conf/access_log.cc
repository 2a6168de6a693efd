// The access log: formatting, client address selection, buffered writer.
#include "src/conf/access_log.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "src/conf/log.h"
#include "src/conf/log_file.h"

namespace kingx {
namespace {

constexpr size_t kFlushBytes = 64 * 1024;
// What a log whose pipe is full holds for its reader before it drops lines.
constexpr size_t kHoldBytes = 4 * kFlushBytes;
constexpr char kHex[] = "0123456789ABCDEF";

int64_t MonotonicMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// nginx's default log escaping: '"', '\\', control bytes and bytes >= 0x7f
// become \xHH; an empty value is "-".
void AppendCombinedField(std::string_view v, std::string* out) {
  if (v.empty()) {
    out->push_back('-');
    return;
  }
  for (unsigned char ch : v) {
    if (ch == '"' || ch == '\\' || ch < 0x20 || ch >= 0x7f) {
      out->append("\\x");
      out->push_back(kHex[ch >> 4]);
      out->push_back(kHex[ch & 15]);
    } else {
      out->push_back(static_cast<char>(ch));
    }
  }
}

// The length of the well-formed UTF-8 sequence at the start of `s` (RFC 3629:
// no overlong forms, no surrogates, nothing above U+10FFFF), or 0.
size_t Utf8SequenceLength(std::string_view s) {
  const auto b = [&s](size_t i) { return static_cast<unsigned char>(s[i]); };
  const auto cont = [&](size_t i, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return i < s.size() && b(i) >= lo && b(i) <= hi;
  };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c == 0xE0) return cont(1, 0xA0) && cont(2) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return cont(1) && cont(2) ? 3 : 0;
  if (c == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
  if (c == 0xF0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

// A JSON string as nginx's escape=json writes it, kept valid UTF-8 whatever
// the client sent: '"' and control characters are escaped as JSON requires,
// well-formed UTF-8 is copied as it is ("été" stays "été"), and each byte of
// an ill-formed sequence becomes the four characters \xHH of the decoded
// value (JSON text "\\xHH") — as does a backslash itself (\x5C, as in nginx's
// default log escaping), so that in a decoded value a backslash always starts
// a \xHH escape and no two inputs log alike.
void AppendJsonString(std::string_view v, std::string* out) {
  out->push_back('"');
  size_t i = 0;
  while (i < v.size()) {
    const auto ch = static_cast<unsigned char>(v[i]);
    const size_t n = Utf8SequenceLength(v.substr(i));
    if (n > 1) {
      out->append(v.data() + i, n);
      i += n;
      continue;
    }
    ++i;
    switch (ch) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\x5C"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      default:
        if (n == 0) {  // ill-formed UTF-8
          out->append("\\\\x");
          out->push_back(kHex[ch >> 4]);
          out->push_back(kHex[ch & 15]);
        } else if (ch < 0x20 || ch == 0x7f) {
          out->append("\\u00");
          out->push_back(kHex[ch >> 4]);
          out->push_back(kHex[ch & 15]);
        } else {
          out->push_back(static_cast<char>(ch));
        }
    }
  }
  out->push_back('"');
}

tm LocalTime(int64_t unix_ms, long* gmtoff) {
  time_t secs = static_cast<time_t>(unix_ms / 1000);
  tm t;
  localtime_r(&secs, &t);
  *gmtoff = t.tm_gmtoff;
  return t;
}

// A parsed numeric address: family and 16 bytes (IPv4 in the first 4).
struct Addr {
  bool ipv6 = false;
  uint8_t bytes[16] = {};
};

bool ParseAddr(std::string_view text, Addr* a) {
  char buf[INET6_ADDRSTRLEN + 1];
  if (text.empty() || text.size() >= sizeof(buf)) return false;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  if (inet_pton(AF_INET, buf, a->bytes) == 1) {
    a->ipv6 = false;
    return true;
  }
  if (inet_pton(AF_INET6, buf, a->bytes) == 1) {
    a->ipv6 = true;
    // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is that IPv4 address.
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(a->bytes, kMapped, 12) == 0) {
      std::memmove(a->bytes, a->bytes + 12, 4);
      std::memset(a->bytes + 4, 0, 12);
      a->ipv6 = false;
    }
    return true;
  }
  return false;
}

bool InPrefix(const Addr& a, const TrustedProxy& p) {
  if (a.ipv6 != p.ipv6) return false;
  const int full = p.prefix_bits / 8, rest = p.prefix_bits % 8;
  if (std::memcmp(a.bytes, p.bytes, static_cast<size_t>(full)) != 0) return false;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a.bytes[full] & mask) == (p.bytes[full] & mask);
}

bool Trusted(const Addr& a, const std::vector<TrustedProxy>& trusted) {
  for (const TrustedProxy& p : trusted) {
    if (InPrefix(a, p)) return true;
  }
  return false;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

void FormatLocalTimeNow(int64_t unix_ms, const char* date_format, const char* sep, char* when, char* tz);

// Local time of unix_ms as `date_format` into when[64], and its UTC offset as
// "+hh<sep>mm" into tz[16] (combined log: "+0100"; JSON/ISO 8601: "+01:00").
// The text of the latest second is kept per thread and format, as nginx
// keeps its cached log time: a line costs a copy, not a localtime_r and a
// strftime, while the second lasts.
void FormatLocalTime(int64_t unix_ms, const char* date_format, const char* sep, char* when, char* tz) {
  struct Cached {
    const char* format = nullptr;
    int64_t second = -1;
    char when[64];
    char tz[16];
  };
  thread_local Cached cache[2];  // one per format in use (combined, JSON)
  Cached& c = cache[cache[0].format == date_format || cache[0].format == nullptr ? 0 : 1];
  const int64_t second = unix_ms / 1000;
  if (c.format != date_format || c.second != second) {
    FormatLocalTimeNow(unix_ms, date_format, sep, c.when, c.tz);
    c.format = date_format;
    c.second = second;
  }
  std::memcpy(when, c.when, sizeof c.when);
  std::memcpy(tz, c.tz, sizeof c.tz);
}

void FormatLocalTimeNow(int64_t unix_ms, const char* date_format, const char* sep, char* when, char* tz) {
  long gmtoff = 0;
  tm t = LocalTime(unix_ms, &gmtoff);
  strftime(when, 64, date_format, &t);
  const long off_min = (gmtoff < 0 ? -gmtoff : gmtoff) / 60;
  snprintf(tz, 16, "%c%02ld%s%02ld", gmtoff < 0 ? '-' : '+', (off_min / 60) % 100, sep, off_min % 60);
}

}  // namespace

void FormatAccessCombined(const AccessRecord& r, std::string* out) {
  char when[64], tz[16];
  FormatLocalTime(r.time_unix_ms, "%d/%b/%Y:%H:%M:%S", "", when, tz);

  AppendCombinedField(r.remote_addr, out);
  out->append(" - - [");
  out->append(when);
  out->push_back(' ');
  out->append(tz);
  out->append("] \"");
  AppendCombinedField(r.method, out);
  out->push_back(' ');
  AppendCombinedField(r.target, out);
  out->push_back(' ');
  AppendCombinedField(r.protocol, out);
  char nums[96];
  snprintf(nums, sizeof(nums), "\" %d %llu \"", r.status, static_cast<unsigned long long>(r.body_bytes_sent));
  out->append(nums);
  AppendCombinedField(r.referer, out);
  out->append("\" \"");
  AppendCombinedField(r.user_agent, out);
  snprintf(nums, sizeof(nums), "\" %llu.%03llu \"", static_cast<unsigned long long>(r.request_time_us / 1000000),
           static_cast<unsigned long long>(r.request_time_us / 1000 % 1000));
  out->append(nums);
  AppendCombinedField(r.request_id, out);
  out->append("\"\n");
}

void FormatAccessJson(const AccessRecord& r, std::string* out) {
  char when[64], tz[16];
  FormatLocalTime(r.time_unix_ms, "%Y-%m-%dT%H:%M:%S", ":", when, tz);

  out->append("{\"time\":\"");
  out->append(when);
  out->append(tz);
  out->append("\",\"remote_addr\":");
  AppendJsonString(r.remote_addr, out);
  out->append(",\"method\":");
  AppendJsonString(r.method, out);
  out->append(",\"uri\":");
  AppendJsonString(r.target, out);
  out->append(",\"protocol\":");
  AppendJsonString(r.protocol, out);
  char nums[128];
  snprintf(nums, sizeof(nums), ",\"status\":%d,\"body_bytes_sent\":%llu,\"referer\":", r.status,
           static_cast<unsigned long long>(r.body_bytes_sent));
  out->append(nums);
  AppendJsonString(r.referer, out);
  out->append(",\"user_agent\":");
  AppendJsonString(r.user_agent, out);
  snprintf(nums, sizeof(nums), ",\"request_time\":%llu.%03llu,\"request_id\":",
           static_cast<unsigned long long>(r.request_time_us / 1000000),
           static_cast<unsigned long long>(r.request_time_us / 1000 % 1000));
  out->append(nums);
  AppendJsonString(r.request_id, out);
  out->append("}\n");
}

namespace {

// The packed form: the fixed fields, then each string's length and bytes.
struct PackedFixed {
  int32_t status;
  uint64_t body_bytes_sent;
  int64_t time_unix_ms;
  uint64_t request_time_us;
  uint32_t lengths[7];
};

std::string_view AccessRecord::*const kPackedStrings[7] = {
    &AccessRecord::remote_addr, &AccessRecord::method,     &AccessRecord::target,     &AccessRecord::protocol,
    &AccessRecord::referer,     &AccessRecord::user_agent, &AccessRecord::request_id,
};

}  // namespace

void PackAccessRecord(const AccessRecord& r, std::string* out) {
  PackedFixed f{};  // zeroed padding: the note holds no undefined bytes
  f.status = r.status;
  f.body_bytes_sent = r.body_bytes_sent;
  f.time_unix_ms = r.time_unix_ms;
  f.request_time_us = r.request_time_us;
  size_t total = sizeof f;
  for (size_t i = 0; i < 7; ++i) {
    f.lengths[i] = static_cast<uint32_t>((r.*kPackedStrings[i]).size());
    total += f.lengths[i];
  }
  const size_t at = out->size();
  out->resize(at + total);
  char* p = out->data() + at;
  std::memcpy(p, &f, sizeof f);
  p += sizeof f;
  for (size_t i = 0; i < 7; ++i) {
    // An empty field's data() may be null, which memcpy must not be given.
    if (f.lengths[i] != 0) std::memcpy(p, (r.*kPackedStrings[i]).data(), f.lengths[i]);
    p += f.lengths[i];
  }
}

size_t UnpackAccessRecord(std::string_view packed, AccessRecord* r) {
  PackedFixed f{};  // zeroed padding: the note holds no undefined bytes
  if (packed.size() < sizeof f) return 0;
  std::memcpy(&f, packed.data(), sizeof f);
  size_t at = sizeof f;
  for (size_t i = 0; i < 7; ++i) {
    if (packed.size() - at < f.lengths[i]) return 0;
    r->*kPackedStrings[i] = packed.substr(at, f.lengths[i]);
    at += f.lengths[i];
  }
  r->status = f.status;
  r->body_bytes_sent = f.body_bytes_sent;
  r->time_unix_ms = f.time_unix_ms;
  r->request_time_us = f.request_time_us;
  return at;
}

AccessLog::~AccessLog() {
  std::lock_guard<std::mutex> lock(mu_);
  FlushLocked();
  if (fd_ >= 0) close(fd_);
}

engine::Status AccessLog::Open(const std::string& path, AccessLogFormat format) {
  const std::string p = path == "off" ? std::string() : path;
  int fd = -1;
  if (!p.empty()) {
    if (engine::Status s = OpenLogFile(p, kAccessLogWhat, &fd); !s.ok()) return s;
  }
  Adopt(fd, p, format);
  return engine::Status::OK();
}

void AccessLog::Adopt(int fd, const std::string& path, AccessLogFormat format) {
  std::lock_guard<std::mutex> lock(mu_);
  FlushLocked();
  if (fd_ >= 0) close(fd_);
  path_ = fd >= 0 ? path : std::string();
  format_ = format;
  TakeDescriptorLocked(fd);
}

void AccessLog::TakeDescriptorLocked(int fd) {
  fd_ = fd;
  struct stat st;
  pipe_ = fd >= 0 && fstat(fd, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
  pipe_full_ = false;
  last_flush_ms_ = MonotonicMs();
  reported_error_ = false;
}

engine::Status AccessLog::Reopen() {
  std::lock_guard<std::mutex> lock(mu_);
  if (fd_ < 0) return engine::Status::OK();
  FlushLocked();
  int fd = -1;
  if (engine::Status s = OpenLogFile(path_, kAccessLogWhat, &fd); !s.ok()) return s;
  close(fd_);
  TakeDescriptorLocked(fd);
  return engine::Status::OK();
}

void AccessLog::Append(const AccessRecord& record) {
  std::lock_guard<std::mutex> lock(mu_);
  if (fd_ < 0) return;
  if (pipe_full_ && buffer_.size() >= kHoldBytes) {
    ++dropped_;  // the reader is behind and the hold is full: told once it catches up
    return;
  }
  if (format_ == AccessLogFormat::kJson) FormatAccessJson(record, &buffer_);
  else FormatAccessCombined(record, &buffer_);
  // A full pipe is tried again when it has room (RoomWaitFd) or by
  // FlushIfDue, not per line.
  if (buffer_.size() >= kFlushBytes && !pipe_full_) FlushLocked();
}

int AccessLog::RoomWaitFd() {
  std::lock_guard<std::mutex> lock(mu_);
  return pipe_full_ && !buffer_.empty() ? fd_ : -1;
}

void AccessLog::Flush() {
  std::lock_guard<std::mutex> lock(mu_);
  FlushLocked();
}

void AccessLog::FlushIfDue() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!buffer_.empty() && MonotonicMs() - last_flush_ms_ >= 1000) FlushLocked();
}

void AccessLog::FlushLocked() {
  last_flush_ms_ = MonotonicMs();
  if (fd_ < 0 || buffer_.empty()) {
    buffer_.clear();
    return;
  }
  size_t off = 0;
  // Bounded: each iteration writes at least one byte or ends the loop.
  while (off < buffer_.size()) {
    // Into a pipe, whole lines of at most PIPE_BUF bytes per write: such a
    // write is atomic, so lines of several workers sharing a FIFO never
    // interleave, and a full pipe takes all of it or nothing (EAGAIN).
    size_t n = buffer_.size() - off;
    if (pipe_ && n > PIPE_BUF) {
      size_t end = buffer_.rfind('\n', off + PIPE_BUF - 1);
      if (end == std::string::npos || end < off) end = buffer_.find('\n', off);  // one line longer than PIPE_BUF
      if (end != std::string::npos) n = end + 1 - off;
    }
    ssize_t w = write(fd_, buffer_.data() + off, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // The reader is behind: keep what is unwritten (Append bounds it).
      buffer_.erase(0, off);
      if (!pipe_full_) {
        pipe_full_ = true;
        KINGX_LOG_WARN("access log %s: its reader is not keeping up (the pipe is full); holding up to %zu bytes of "
                       "lines, then dropping them",
                       path_.c_str(), kHoldBytes);
      }
      return;
    }
    if (w <= 0) {
      if (!reported_error_) {
        KINGX_LOG_ERROR("access log %s: write failed: %s (lines dropped)", path_.c_str(),
                        w < 0 ? std::strerror(errno) : "no progress");
        reported_error_ = true;
      }
      break;
    }
    off += static_cast<size_t>(w);
  }
  buffer_.clear();
  if (buffer_.capacity() > 4 * kFlushBytes) buffer_.shrink_to_fit();
  pipe_full_ = false;
  if (dropped_ != 0) {  // also after a reopen while the pipe was full
    KINGX_LOG_WARN("access log %s: %llu line(s) dropped while its reader was not keeping up", path_.c_str(),
                   static_cast<unsigned long long>(dropped_));
    dropped_ = 0;
  }
}

bool IsTrustedAddress(std::string_view addr, const std::vector<TrustedProxy>& trusted) {
  Addr a;
  return ParseAddr(Trim(addr), &a) && Trusted(a, trusted);
}

std::string_view ClientAddress(std::string_view peer, std::string_view x_forwarded_for,
                               const std::vector<TrustedProxy>& trusted) {
  if (trusted.empty() || Trim(x_forwarded_for).empty() || !IsTrustedAddress(peer, trusted)) return peer;
  std::string_view current = peer;
  std::string_view rest = x_forwarded_for;
  // Right to left; bounded by the header's length (each step consumes a hop).
  while (!rest.empty()) {
    const size_t comma = rest.rfind(',');
    std::string_view hop = Trim(comma == std::string_view::npos ? rest : rest.substr(comma + 1));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(0, comma);
    Addr a;
    if (!ParseAddr(hop, &a)) return current;
    current = hop;
    if (!Trusted(a, trusted)) return hop;
  }
  return current;
}

}  // namespace kingx
