// The error log's line bound and its sinks (src/conf/log.h, log_sink.h):
// a line is at most one atomic pipe write, so lines of several processes
// sharing one FIFO never mix; stderr is written without waiting.
#include "src/conf/log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cctype>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "src/conf/log_sink.h"
#include "tests/src/support/test_util.h"

namespace kingx {
namespace {

using test::TempDir;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The message of an error-log line ("2026/11/24 03:40:00 [warn] 1234#0: msg"),
// "" when the line has no such prefix.
std::string MessageOf(const std::string& line) {
  const size_t level = line.find(" [");
  if (level != 19) return "";
  const size_t colon = line.find("#", level);
  if (colon == std::string::npos) return "";
  const size_t start = line.find(": ", colon);
  return start == std::string::npos ? "" : line.substr(start + 2);
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Whether `msg` is `head` then whole repetitions of `unit` only.
bool IsHeadThenUnits(const std::string& msg, const std::string& head, const std::string& unit) {
  if (msg.compare(0, head.size(), head) != 0 || (msg.size() - head.size()) % unit.size() != 0) return false;
  for (size_t at = head.size(); at < msg.size(); at += unit.size()) {
    if (msg.compare(at, unit.size(), unit) != 0) return false;
  }
  return true;
}

TEST_CASE("an error-log line longer than one pipe write is cut whole escapes first, with a mark", "[src][log]") {
  TempDir dir;
  const std::string path = dir.path + "/error.log";
  REQUIRE(InitErrorLog(path, LogLevel::kInfo).ok());
  // 1,500 bytes escape to 6,000 (\x01 each): more than a line may hold.
  KINGX_LOG_WARN("long %s", std::string(1500, '\x01').c_str());
  // More printable bytes than a line holds (and than vsnprintf's buffer).
  KINGX_LOG_WARN("wide %s", std::string(5000, 'w').c_str());
  KINGX_LOG_WARN("short %s", std::string(100, 's').c_str());
  REQUIRE(InitErrorLog("", LogLevel::kInfo).ok());

  const std::vector<std::string> lines = Lines(ReadFile(path));
  REQUIRE(lines.size() == 3);
  for (const std::string& line : lines) CHECK(line.size() + 1 <= kMaxLogLineBytes);
  const std::string mark = kLogCutMark;
  std::string long_msg = MessageOf(lines[0]);
  REQUIRE(long_msg.size() > mark.size());
  CHECK(long_msg.compare(long_msg.size() - mark.size(), mark.size(), mark) == 0);
  long_msg.resize(long_msg.size() - mark.size());
  CHECK(IsHeadThenUnits(long_msg, "long ", "\\x01"));  // no escape split at the cut
  CHECK(lines[0].size() + 1 > kMaxLogLineBytes - 4);   // cut as late as a whole escape allows
  std::string wide_msg = MessageOf(lines[1]);
  CHECK(wide_msg.compare(wide_msg.size() - mark.size(), mark.size(), mark) == 0);
  CHECK(MessageOf(lines[2]) == "short " + std::string(100, 's'));
}

TEST_CASE("a message that fills a line exactly is not cut; one byte more is", "[src][log]") {
  TempDir dir;
  const std::string path = dir.path + "/error.log";
  REQUIRE(InitErrorLog(path, LogLevel::kInfo).ok());
  KINGX_LOG_WARN("x");
  const size_t prefix = ReadFile(path).size() - 2;  // "x\n"
  const size_t room = kMaxLogLineBytes - prefix - 1;
  KINGX_LOG_WARN("%s", std::string(room, 'f').c_str());
  KINGX_LOG_WARN("%s", std::string(room + 1, 'g').c_str());
  REQUIRE(InitErrorLog("", LogLevel::kInfo).ok());
  const std::vector<std::string> lines = Lines(ReadFile(path));
  REQUIRE(lines.size() == 3);
  CHECK(MessageOf(lines[1]) == std::string(room, 'f'));
  CHECK(lines[1].size() + 1 == kMaxLogLineBytes);
  const std::string mark = kLogCutMark;
  CHECK(MessageOf(lines[2]) == std::string(room - mark.size(), 'g') + mark);
  CHECK(lines[2].size() + 1 == kMaxLogLineBytes);
}

// Several processes (the master, workers, the writer) share one error log.
// Each child here logs long lines into one FIFO whose reader is slow, so the
// pipe is full most of the time: every line the reader gets must be one
// child's whole line (a write of more than PIPE_BUF bytes to a pipe may be
// cut, or interleaved with other writers' bytes).
TEST_CASE("long error-log lines of several processes sharing one FIFO never mix", "[src][log]") {
  TempDir dir;
  const std::string fifo = dir.path + "/error.fifo";
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  const int reader = open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  REQUIRE(reader >= 0);
  REQUIRE(InitErrorLog(fifo, LogLevel::kInfo).ok());
  constexpr int kChildren = 4;
  constexpr int kLinesEach = 150;
  std::vector<pid_t> children;
  for (int c = 0; c < kChildren; ++c) {
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      // Each byte escapes to 4 ("\x0N"): lines of about 8 KiB unless cut.
      const std::string body(2000, static_cast<char>(c + 1));
      // Paced to about what the reader takes: the pipe is full now and then,
      // and most lines get through.
      for (int i = 0; i < kLinesEach; ++i) {
        KINGX_LOG_WARN("child %d %s", c, body.c_str());
        usleep(2000);
      }
      _exit(0);
    }
    children.push_back(pid);
  }
  std::string got;
  char buf[1024];  // small reads, with pauses: the writers find the pipe full
  int running = kChildren;
  for (int spins = 0; spins < 200000; ++spins) {
    const ssize_t n = read(reader, buf, sizeof buf);
    if (n > 0) got.append(buf, static_cast<size_t>(n));
    if (running > 0) {
      for (pid_t& pid : children) {
        if (pid > 0 && waitpid(pid, nullptr, WNOHANG) == pid) {
          pid = 0;
          --running;
        }
      }
      usleep(200);
    } else if (n <= 0) {
      break;
    }
  }
  REQUIRE(running == 0);
  REQUIRE(InitErrorLog("", LogLevel::kInfo).ok());
  close(reader);

  REQUIRE_FALSE(got.empty());
  CHECK(got.back() == '\n');  // no line left without its end
  size_t child_lines = 0;
  for (const std::string& line : Lines(got)) {
    INFO(line.substr(0, 120) << " ... (" << line.size() << " bytes)");
    CHECK(line.size() + 1 <= 4096);
    const std::string msg = MessageOf(line);
    REQUIRE_FALSE(msg.empty());
    if (msg.find("dropped") != std::string::npos) continue;  // a count of lines the full pipe refused
    const int c = msg.size() > 7 ? msg[6] - '0' : -1;
    REQUIRE((c >= 0 && c < kChildren));
    const std::string head = "child " + std::to_string(c) + " ";
    const std::string unit = std::string("\\x0") + static_cast<char>('0' + c + 1);
    const std::string mark = "...[cut]";
    const bool marked = msg.size() > mark.size() && msg.compare(msg.size() - mark.size(), mark.size(), mark) == 0;
    CHECK(marked);
    CHECK(IsHeadThenUnits(marked ? msg.substr(0, msg.size() - mark.size()) : msg, head, unit));
    ++child_lines;
  }
  CHECK(child_lines > 0);
}

TEST_CASE("stderr that is a file is written in place, with its flags left alone", "[src][log]") {
  // The process's own stderr is the test runner's: the sink is checked on a
  // child whose stderr is a file, then a pipe.
  TempDir dir;
  const std::string path = dir.path + "/stderr";
  for (bool pipe_stderr : {false, true}) {
    int fds[2] = {-1, -1};
    if (pipe_stderr) REQUIRE(pipe(fds) == 0);
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      const int out = pipe_stderr ? fds[1] : open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (out < 0 || dup2(out, STDERR_FILENO) < 0) _exit(10);
      const LogSink sink = OpenStderrSink();
      // A file: fd 2 itself. A pipe: a description of its own, non-blocking.
      if (!pipe_stderr && (sink.owned() || sink.how != SinkWrite::kWrite)) _exit(11);
      if (pipe_stderr && (!sink.owned() || (fcntl(sink.fd, F_GETFL) & O_NONBLOCK) == 0)) _exit(12);
      if ((fcntl(STDERR_FILENO, F_GETFL) & O_NONBLOCK) != 0) _exit(13);  // stderr's own flags unchanged
      if (pipe_stderr) {
        // Nobody reads: the pipe fills, then lines are refused, never waited for.
        const std::string line(1000, 'p');
        int refused = 0;
        for (int i = 0; i < 1000 && refused == 0; ++i) refused += WriteToSink(sink, line) ? 0 : 1;
        if (refused == 0) _exit(14);
      } else if (!WriteToSink(sink, "to the file\n")) {
        _exit(15);
      }
      _exit(0);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    if (pipe_stderr) {
      close(fds[0]);
      close(fds[1]);
    } else {
      CHECK(ReadFile(path) == "to the file\n");
    }
  }
}

}  // namespace
}  // namespace kingx
