// ObservedEnv: storage failures reach the error log at error level, at most
// one line per interval with the count of those left out; fdatasync times
// reach the sink; successes and kNotFound are silent.
#include "src/conf/observed_env.h"

#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "src/conf/log.h"
#include "tests/engine/support/fault_env.h"

namespace kingx {
namespace {

using engine::test::FaultInjectionEnv;
using engine::test::FaultOp;

struct Dir {
  Dir() {
    char tmpl[] = "/tmp/kingx-observed-env-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~Dir() {
    for (const char* f : {"/f", "/g", "/error.log"}) unlink((path + f).c_str());
    rmdir(path.c_str());
  }
  std::string path;
};

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

struct CountingSink : SyncSink {
  std::vector<uint64_t> micros;
  void OnSync(uint64_t us) override { micros.push_back(us); }
};

TEST_CASE("storage failures are logged at error level, rate-limited, and syncs are timed",
          "[src][observed_env]") {
  Dir dir;
  REQUIRE(InitErrorLog(dir.path + "/error.log", LogLevel::kInfo).ok());
  FaultInjectionEnv faults;
  CountingSink sink;
  ObservedEnv env(faults, "writer", &sink, /*log_interval_ms=*/60'000);

  auto file = env.OpenFile(dir.path + "/f", engine::OpenMode::kCreateTruncate);
  REQUIRE(file.ok());
  REQUIRE((*file)->Append("abc").ok());
  REQUIRE((*file)->Sync().ok());
  REQUIRE(env.SyncDir(dir.path).ok());
  CHECK(sink.micros.size() == 2);
  CHECK(env.FileSize(dir.path + "/missing").status().Is(engine::Code::kNotFound));
  CHECK(Lines(dir.path + "/error.log").empty());  // successes and kNotFound say nothing

  faults.FailNth(FaultOp::kWrite, 1, engine::Code::kNoSpace, /*forever=*/true);
  for (int i = 0; i < 50; ++i) CHECK((*file)->Append("more").Is(engine::Code::kNoSpace));
  faults.FailNth(FaultOp::kSync, 1, engine::Code::kIOError);
  CHECK((*file)->Sync().Is(engine::Code::kIOError));
  CHECK(sink.micros.size() == 3);  // a failed sync is timed too

  const std::vector<std::string> lines = Lines(dir.path + "/error.log");
  REQUIRE(lines.size() == 1);  // one line per interval, however many failures
  CHECK(lines[0].find("[error]") != std::string::npos);
  CHECK(lines[0].find("writer: storage failure") != std::string::npos);
  CHECK(lines[0].find("injected fault on") != std::string::npos);  // the Env's own message (PosixEnv: call, path, errno)
  REQUIRE(InitErrorLog("", LogLevel::kInfo).ok());
}

TEST_CASE("the first line after a quiet interval counts the failures left out", "[src][observed_env]") {
  Dir dir;
  REQUIRE(InitErrorLog(dir.path + "/error.log", LogLevel::kInfo).ok());
  FaultInjectionEnv faults;
  ObservedEnv env(faults, "worker 0", nullptr, /*log_interval_ms=*/50);
  faults.FailNth(FaultOp::kRename, 1, engine::Code::kIOError, /*forever=*/true);
  CHECK_FALSE(env.Rename(dir.path + "/f", dir.path + "/g").ok());
  CHECK_FALSE(env.Rename(dir.path + "/f", dir.path + "/g").ok());
  usleep(120000);
  CHECK_FALSE(env.Rename(dir.path + "/f", dir.path + "/g").ok());
  const std::vector<std::string> lines = Lines(dir.path + "/error.log");
  REQUIRE(lines.size() >= 2);
  CHECK(lines.back().find("more storage failures were not logged") != std::string::npos);
  REQUIRE(InitErrorLog("", LogLevel::kInfo).ok());
}

}  // namespace
}  // namespace kingx
