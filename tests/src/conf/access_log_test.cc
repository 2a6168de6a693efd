// Access log lines (combined and JSON), escaping of client-supplied strings,
// X-Forwarded-For trust, the buffered file writer and its reopen; the error
// log's line format and escaping.
#include "src/conf/access_log.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cctype>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>

#include "src/conf/log.h"
#include "tests/src/support/test_util.h"

namespace kingx {
namespace {

// 2026-11-24T03:40:00Z
constexpr int64_t kWhenMs = 1795491600000;

void UseUtc() {
  setenv("TZ", "UTC", 1);
  tzset();
}

AccessRecord Sample() {
  AccessRecord r;
  r.remote_addr = "203.0.113.7";
  r.method = "GET";
  r.target = "/v1/kv/a";
  r.protocol = "HTTP/1.1";
  r.status = 200;
  r.body_bytes_sent = 5;
  r.user_agent = "curl/7.88.1";
  r.request_id = "abc123";
  r.time_unix_ms = kWhenMs;
  r.request_time_us = 1234567;
  return r;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

using test::TempDir;

// Whether `line` starts like "2026/11/24 03:40:00 [warn] 1234#0: " (std::regex
// is avoided: GCC 12 warns inside it under the sanitizer build).
bool HasErrorLogPrefix(const std::string& line) {
  const std::string shape = "dddd/dd/dd dd:dd:dd [";
  if (line.size() < shape.size()) return false;
  for (size_t i = 0; i < shape.size(); ++i) {
    const bool ok = shape[i] == 'd' ? std::isdigit(static_cast<unsigned char>(line[i])) != 0 : line[i] == shape[i];
    if (!ok) return false;
  }
  size_t p = line.find("] ", shape.size());
  if (p == std::string::npos) return false;
  p += 2;
  const size_t hash = line.find('#', p);
  const size_t colon = line.find(": ", p);
  if (hash == std::string::npos || colon == std::string::npos || hash <= p || colon <= hash + 1) return false;
  for (size_t i = p; i < colon; ++i) {
    if (i != hash && !std::isdigit(static_cast<unsigned char>(line[i]))) return false;
  }
  return true;
}

std::vector<TrustedProxy> Proxies(std::initializer_list<const char*> list) {
  std::vector<TrustedProxy> out;
  for (const char* p : list) out.push_back(ParseTrustedProxy(p).value());
  return out;
}

}  // namespace

TEST_CASE("combined lines follow nginx's format with request time and id", "[src][access_log]") {
  UseUtc();
  std::string line;
  FormatAccessCombined(Sample(), &line);
  CHECK(line ==
        "203.0.113.7 - - [24/Nov/2026:03:40:00 +0000] \"GET /v1/kv/a HTTP/1.1\" 200 5 \"-\" \"curl/7.88.1\" "
        "1.234 \"abc123\"\n");
}

TEST_CASE("a packed record reads back field for field, after other bytes and before more", "[src][access_log]") {
  UseUtc();
  AccessRecord r = Sample();
  r.referer = "http://example.test/\"q\"";
  r.user_agent = "";
  std::string packed = "note:";
  PackAccessRecord(r, &packed);
  const size_t packed_bytes = packed.size() - 5;
  packed += "more";
  AccessRecord back;
  REQUIRE(UnpackAccessRecord(std::string_view(packed).substr(5), &back) == packed_bytes);
  std::string want, got;
  FormatAccessCombined(r, &want);
  FormatAccessCombined(back, &got);
  CHECK(got == want);
  for (size_t cut = 0; cut < packed_bytes; ++cut) {
    CHECK(UnpackAccessRecord(std::string_view(packed).substr(5, cut), &back) == 0);
  }
}

TEST_CASE("combined lines escape quotes, CR/LF and non-printable bytes", "[src][access_log]") {
  UseUtc();
  AccessRecord r = Sample();
  r.target = "/v1/kv/x\"y\r\nz\\";
  const std::string agent("evil\x01\xff" "agent", 11);
  r.user_agent = agent;
  r.referer = "";
  std::string line;
  FormatAccessCombined(r, &line);
  CHECK(line.find("\"GET /v1/kv/x\\x22y\\x0D\\x0Az\\x5C HTTP/1.1\"") != std::string::npos);
  CHECK(line.find("\"evil\\x01\\xFFagent\"") != std::string::npos);
  CHECK(line.find("\"-\"") != std::string::npos);
  // Exactly one line, whatever the client sent.
  CHECK(line.find('\n') == line.size() - 1);
  CHECK(line.find('\r') == std::string::npos);
}

TEST_CASE("JSON lines are one escaped object per line", "[src][access_log]") {
  UseUtc();
  AccessRecord r = Sample();
  r.target = "/v1/kv/\"q\"\n";
  const std::string agent("a\x7f\x80", 3);
  r.user_agent = agent;
  std::string line;
  FormatAccessJson(r, &line);
  CHECK(line ==
        "{\"time\":\"2026-11-24T03:40:00+00:00\",\"remote_addr\":\"203.0.113.7\",\"method\":\"GET\","
        "\"uri\":\"/v1/kv/\\\"q\\\"\\n\",\"protocol\":\"HTTP/1.1\",\"status\":200,\"body_bytes_sent\":5,"
        "\"referer\":\"\",\"user_agent\":\"a\\u007F\\\\x80\",\"request_time\":1.234,\"request_id\":\"abc123\"}\n");
}

// The user_agent value of a JSON access log line, as written (JSON text).
std::string JsonAgent(std::string_view agent) {
  AccessRecord r = Sample();
  r.user_agent = agent;
  std::string line;
  FormatAccessJson(r, &line);
  const std::string key = "\"user_agent\":\"";
  size_t at = line.find(key);
  if (at == std::string::npos) return "<missing>";
  at += key.size();
  size_t end = at;
  while (end < line.size() && line[end] != '"') end += line[end] == '\\' ? 2 : 1;
  return line.substr(at, end - at);
}

TEST_CASE("JSON lines keep UTF-8 as it is and show ill-formed bytes as \\xHH", "[src][access_log]") {
  UseUtc();
  CHECK(JsonAgent("\xc3\xa9t\xc3\xa9") == "\xc3\xa9t\xc3\xa9");  // "été", not mojibake
  CHECK(JsonAgent("\xe2\x82\xac \xf0\x9f\x98\x80") == "\xe2\x82\xac \xf0\x9f\x98\x80");  // a euro sign, an emoji
  CHECK(JsonAgent("\xff") == R"(\\xFF)");                    // never valid in UTF-8
  CHECK(JsonAgent("\xc3") == R"(\\xC3)");                    // a truncated sequence
  CHECK(JsonAgent("\xc3(") == R"(\\xC3()");                  // a bad continuation byte
  CHECK(JsonAgent("\xc0\xaf") == R"(\\xC0\\xAF)");           // an overlong '/'
  CHECK(JsonAgent("\xed\xa0\x80") == R"(\\xED\\xA0\\x80)");  // a UTF-16 surrogate
  CHECK(JsonAgent("\xf4\x90\x80\x80") == R"(\\xF4\\x90\\x80\\x80)");  // above U+10FFFF
  // A backslash is \x5C too: the text "\xFF" and the byte 0xFF never log alike.
  CHECK(JsonAgent(R"(\xFF)") == R"(\\x5CxFF)");
  CHECK(JsonAgent(std::string("a\0b\x1f\x7f", 5)) == R"(a\u0000b\u001F\u007F)");
  CHECK(JsonAgent("tab\there \"q\"") == R"(tab\there \"q\")");
}

TEST_CASE("X-Forwarded-For is believed only from trusted proxies", "[src][access_log]") {
  const auto trusted = Proxies({"10.0.0.0/8", "::1"});
  // Untrusted peer: the header is ignored.
  CHECK(ClientAddress("198.51.100.1", "1.2.3.4", trusted) == "198.51.100.1");
  // No trusted proxies configured: the header is ignored.
  CHECK(ClientAddress("10.0.0.1", "1.2.3.4", {}) == "10.0.0.1");
  // Trusted peer: the right-most untrusted hop.
  CHECK(ClientAddress("10.0.0.1", "1.2.3.4", trusted) == "1.2.3.4");
  CHECK(ClientAddress("10.0.0.1", "6.6.6.6, 1.2.3.4, 10.9.9.9", trusted) == "1.2.3.4");
  CHECK(ClientAddress("::1", " 2001:db8::5 ", trusted) == "2001:db8::5");
  // IPv4-mapped peer addresses count as IPv4.
  CHECK(ClientAddress("::ffff:10.1.1.1", "1.2.3.4", trusted) == "1.2.3.4");
  // Every hop trusted: the left-most.
  CHECK(ClientAddress("10.0.0.1", "10.0.0.2, 10.0.0.3", trusted) == "10.0.0.2");
  // A malformed hop stops the walk at the last good address.
  CHECK(ClientAddress("10.0.0.1", "1.2.3.4, garbage", trusted) == "10.0.0.1");
  CHECK(ClientAddress("10.0.0.1", "garbage, 10.0.0.5", trusted) == "10.0.0.5");
  CHECK(ClientAddress("10.0.0.1", "", trusted) == "10.0.0.1");

  CHECK(IsTrustedAddress("10.255.0.1", trusted));
  CHECK_FALSE(IsTrustedAddress("11.0.0.1", trusted));
  CHECK_FALSE(IsTrustedAddress("::2", trusted));
  const auto odd_prefix = Proxies({"192.168.128.0/17"});
  CHECK(IsTrustedAddress("192.168.200.1", odd_prefix));
  CHECK_FALSE(IsTrustedAddress("192.168.127.1", odd_prefix));
}

TEST_CASE("the access log buffers, flushes on demand and reopens after a rename", "[src][access_log]") {
  UseUtc();
  TempDir dir;
  const std::string path = dir.path + "/access.log";
  AccessLog log;
  REQUIRE(log.Open(path, AccessLogFormat::kCombined).ok());
  CHECK(log.enabled());
  log.Append(Sample());
  CHECK(ReadFile(path).empty());  // buffered
  log.Flush();
  CHECK(ReadFile(path).find("\"GET /v1/kv/a HTTP/1.1\" 200") != std::string::npos);

  // logrotate: rename, then USR1 → Reopen; later lines go to the new file.
  REQUIRE(rename(path.c_str(), (path + ".1").c_str()) == 0);
  AccessRecord second = Sample();
  second.status = 404;
  log.Append(second);
  REQUIRE(log.Reopen().ok());  // flushes the pending line into the old file first
  AccessRecord third = Sample();
  third.status = 201;
  log.Append(third);
  log.Flush();
  const std::string old_file = ReadFile(path + ".1");
  const std::string new_file = ReadFile(path);
  CHECK(old_file.find("\" 404 ") != std::string::npos);
  CHECK(new_file.find("\" 201 ") != std::string::npos);
  CHECK(new_file.find("\" 404 ") == std::string::npos);

  AccessLog off;
  REQUIRE(off.Open("off", AccessLogFormat::kJson).ok());
  CHECK_FALSE(off.enabled());
  off.Append(Sample());  // a no-op
  CHECK_FALSE(off.Open(dir.path + "/missing-dir/x.log", AccessLogFormat::kJson).ok());
}

TEST_CASE("a log that is a FIFO is never waited on: no reader is an error, a full pipe holds then drops whole lines",
          "[src][access_log]") {
  UseUtc();
  TempDir dir;
  const std::string fifo = dir.path + "/access.fifo";
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  AccessLog log;
  // No reader: refused at once, naming the setting (a plain open would wait).
  const engine::Status none = log.Open(fifo, AccessLogFormat::kCombined);
  REQUIRE_FALSE(none.ok());
  CHECK(none.message().find("--access-log") != std::string::npos);
  CHECK(none.message().find("FIFO with no reader") != std::string::npos);
  const engine::Status error_log = InitErrorLog(fifo, LogLevel::kInfo);
  REQUIRE_FALSE(error_log.ok());
  CHECK(error_log.message().find("--error-log") != std::string::npos);

  const int reader = open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  REQUIRE(reader >= 0);
  const std::string error_log_path = dir.path + "/error.log";
  REQUIRE(InitErrorLog(error_log_path, LogLevel::kInfo).ok());
  REQUIRE(log.Open(fifo, AccessLogFormat::kCombined).ok());
  const std::string agent(700, 'u');
  AccessRecord r = Sample();
  r.user_agent = agent;
  // Far more than a pipe holds (64 KiB) plus what the log holds (256 KiB):
  // every call returns, none waits for the reader.
  constexpr int kLines = 2000;
  for (int i = 0; i < kLines; ++i) log.Append(r);
  log.Flush();
  auto drain = [&] {
    std::string got;
    char buf[65536];
    for (ssize_t n; (n = read(reader, buf, sizeof(buf))) > 0;) got.append(buf, static_cast<size_t>(n));
    return got;
  };
  // A reopen (USR1) while the pipe is full keeps the held lines and their
  // count: with the pipe then large enough for all of them (F_SETPIPE_SZ),
  // the next flush writes them at once and must still tell the count.
  REQUIRE(log.Reopen().ok());
  REQUIRE(fcntl(reader, F_SETPIPE_SZ, 1 << 20) >= (1 << 20));
  log.Flush();
  std::string got = drain();
  for (int round = 0; round < 20; ++round) {  // the lines held while the pipe was full
    log.Flush();
    got += drain();
  }
  std::string expected;
  FormatAccessCombined(r, &expected);
  REQUIRE_FALSE(got.empty());
  CHECK(got.size() % expected.size() == 0);  // whole lines only
  size_t whole = 0;
  for (size_t at = 0; at + expected.size() <= got.size(); at += expected.size()) {
    whole += got.compare(at, expected.size(), expected) == 0 ? 1 : 0;
  }
  CHECK(whole * expected.size() == got.size());
  CHECK(whole < static_cast<size_t>(kLines));  // some were dropped, not waited for
  CHECK(whole * expected.size() >= 256 * 1024);  // the hold was given to the reader
  REQUIRE(InitErrorLog("", LogLevel::kInfo).ok());  // back to stderr
  const std::string told = ReadFile(error_log_path);
  CHECK(told.find("its reader is not keeping up") != std::string::npos);
  CHECK(told.find(std::to_string(kLines - whole) + " line(s) dropped") != std::string::npos);
  close(reader);
}

TEST_CASE("error log lines follow nginx's format and one message is one line", "[src][log]") {
  TempDir dir;
  const std::string path = dir.path + "/error.log";
  REQUIRE(InitErrorLog(path, LogLevel::kInfo).ok());
  KINGX_LOG_DEBUG("hidden %d", 1);
  KINGX_LOG_WARN("disk %s is slow", "sda");
  KINGX_LOG_ERROR("bad key \"%s\"", "a\r\nb\x01");
  REQUIRE(InitErrorLog("", LogLevel::kInfo).ok());  // back to stderr

  const std::string text = ReadFile(path);
  CHECK(text.find("hidden") == std::string::npos);
  std::istringstream lines(text);
  std::string first, second, third;
  std::getline(lines, first);
  std::getline(lines, second);
  CHECK_FALSE(std::getline(lines, third));
  CHECK(HasErrorLogPrefix(first));
  CHECK(first.find("[warn]") != std::string::npos);
  CHECK(first.find(": disk sda is slow") != std::string::npos);
  CHECK(HasErrorLogPrefix(second));
  CHECK(second.find("[error]") != std::string::npos);
  CHECK_FALSE(HasErrorLogPrefix("2026/11/24 03:40 [warn] 1#0: short time"));
  CHECK(second.find("bad key \"a\\r\\nb\\x01\"") != std::string::npos);

  std::string escaped;
  AppendEscaped(std::string("x\\y\t\x7f", 5), &escaped);
  CHECK(escaped == "x\\\\y\\t\\x7f");
}

TEST_CASE("a log limiter lets a burst through per interval and counts the rest", "[src][log]") {
  LogLimiter one(1000);
  uint64_t left_out = 99;
  CHECK(one.AllowAt(5000, &left_out));
  CHECK(left_out == 0);
  CHECK_FALSE(one.AllowAt(5001, &left_out));
  CHECK_FALSE(one.AllowAt(5999, &left_out));
  CHECK(one.AllowAt(6000, &left_out));
  CHECK(left_out == 2);  // the two held back are reported with the next line
  CHECK_FALSE(one.AllowAt(6500, &left_out));
  CHECK(one.AllowAt(60000, &left_out));
  CHECK(left_out == 1);

  LogLimiter three(1000, 3);
  int allowed = 0;
  for (int i = 0; i < 10; ++i) allowed += three.AllowAt(100 + static_cast<uint64_t>(i), &left_out) ? 1 : 0;
  CHECK(allowed == 3);
  CHECK(three.AllowAt(1100, &left_out));
  CHECK(left_out == 7);
}

}  // namespace kingx
