// PosixEnv: the real file seam (errno to Status, whole writes, locks, mappings).
#include "engine/env.h"

#include <sys/stat.h>
#include <time.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <string>
#include <utility>

#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;

TEST_CASE("files append, write at offsets, read back, truncate and report their size", "[engine][env]") {
  TempDir dir;
  Env& env = PosixEnv();
  auto f = env.OpenFile(dir.File("a"), OpenMode::kCreateExclusive);
  REQUIRE(f.ok());
  REQUIRE(f.value()->Append("hello ").ok());
  REQUIRE(f.value()->Append("world").ok());
  REQUIRE(f.value()->PWrite(0, "J").ok());
  REQUIRE(f.value()->Append("!").ok());  // appends after the PWrite, at the end
  REQUIRE(f.value()->Sync().ok());
  CHECK(f.value()->Size().value() == 12);
  char buf[32];
  size_t n = 0;
  REQUIRE(f.value()->Read(0, sizeof buf, buf, &n).ok());
  CHECK(std::string(buf, n) == "Jello world!");
  REQUIRE(f.value()->Truncate(5).ok());
  REQUIRE(f.value()->Append("X").ok());  // the end moved back with the truncate
  REQUIRE(f.value()->Read(0, sizeof buf, buf, &n).ok());
  CHECK(std::string(buf, n) == "JelloX");
  CHECK(env.OpenFile(dir.File("a"), OpenMode::kCreateExclusive).status().Is(Code::kIOError));
  CHECK(env.OpenFile(dir.File("missing"), OpenMode::kRead).status().Is(Code::kNotFound));
  CHECK(env.FileSize(dir.File("a")).value() == 6);
}

TEST_CASE("directory operations: list, rename, remove, sync", "[engine][env]") {
  TempDir dir;
  Env& env = PosixEnv();
  REQUIRE(env.CreateDir(dir.File("sub")).ok());
  REQUIRE(env.CreateDir(dir.File("sub")).ok());  // already there: fine
  REQUIRE(env.OpenFile(dir.File("sub/x"), OpenMode::kCreateTruncate).ok());
  REQUIRE(env.Rename(dir.File("sub/x"), dir.File("sub/y")).ok());
  REQUIRE(env.SyncDir(dir.File("sub")).ok());
  auto names = env.ListDir(dir.File("sub"));
  REQUIRE(names.ok());
  CHECK(names.value() == std::vector<std::string>{"y"});
  REQUIRE(env.RemoveFile(dir.File("sub/y")).ok());
  CHECK(env.RemoveFile(dir.File("sub/y")).Is(Code::kNotFound));
  CHECK(env.ListDir(dir.File("nope")).status().Is(Code::kNotFound));
  CHECK(JoinPath("a/", "b") == "a/b");
  CHECK(JoinPath("a", "b") == "a/b");
}

TEST_CASE("a full device is reported as kNoSpace, distinct from I/O errors", "[engine][env]") {
  auto f = PosixEnv().OpenFile("/dev/full", OpenMode::kReadWrite);
  if (!f.ok()) {
    WARN("no /dev/full here: " << f.status().ToString());
    return;
  }
  CHECK(f.value()->Append(std::string(100, 'x')).Is(Code::kNoSpace));
}

TEST_CASE("the LOCK is exclusive until released", "[engine][env]") {
  TempDir dir;
  auto a = PosixEnv().LockFile(dir.File("LOCK"));
  REQUIRE(a.ok());
  CHECK(PosixEnv().LockFile(dir.File("LOCK")).status().Is(Code::kBusy));
  a.value().reset();
  CHECK(PosixEnv().LockFile(dir.File("LOCK")).ok());
}

TEST_CASE("a mapping reserves room past the end and sees the file grow", "[engine][env]") {
  TempDir dir;
  auto f = PosixEnv().OpenFile(dir.File("seg"), OpenMode::kCreateExclusive);
  REQUIRE(f.ok());
  REQUIRE(f.value()->Append("first").ok());
  auto m = PosixEnv().MapReadOnly(dir.File("seg"), 1 << 20);
  REQUIRE(m.ok());
  CHECK(m.value()->mapped_bytes() == (1u << 20));
  CHECK(m.value()->FileSize().value() == 5);
  REQUIRE(f.value()->Append("second").ok());
  REQUIRE(m.value()->FileSize().value() == 11);
  CHECK(std::string(m.value()->data(), 11) == "firstsecond");  // same pages, no remap
  // Unlinked files stay readable through the mapping.
  REQUIRE(PosixEnv().RemoveFile(dir.File("seg")).ok());
  CHECK(std::string(m.value()->data(), 5) == "first");
  CHECK(m.value()->FileSize().value() == 11);
}

TEST_CASE("asking a file's size or identity does not make its next write stamp a fine-grained change time",
          "[engine][env]") {
  // Where the file system keeps multigrain timestamps, a stat that reports
  // the change time makes the next write stamp a fine-grained one (always a
  // new time: the inode is dirtied, and written by the next fdatasync);
  // otherwise a write within one clock tick of the last leaves the coarse
  // time as it was. So: write, ask, note the time, write, read the change
  // time. A fine-grained stamp is at or after the time noted; a coarse one
  // is the last tick's, before it (unless a tick fell in between: rare, so
  // counted over attempts).
  TempDir dir;
  Env& env = PosixEnv();
  const std::string path = dir.File("seg");
  auto f = env.OpenFile(path, OpenMode::kCreateExclusive);
  REQUIRE(f.ok());
  REQUIRE(f.value()->Append(std::string(4096, 'z')).ok());
  auto mapped = env.MapReadOnly(path, 1 << 20);
  REQUIRE(mapped.ok());
  // Of 20 attempts whose write was not held up (a tick may fall into a slow
  // one: not counted), how many stamped a fine-grained time.
  auto fine_stamps = [&](const std::function<bool()>& ask) {
    int fine = 0, counted = 0;
    for (int attempt = 0; attempt < 200 && counted < 20; ++attempt) {
      REQUIRE(f.value()->PWrite(0, "a").ok());
      REQUIRE(ask());
      timespec before{}, after{};
      clock_gettime(CLOCK_REALTIME, &before);
      REQUIRE(f.value()->PWrite(1, "b").ok());
      clock_gettime(CLOCK_REALTIME, &after);
      struct stat st;
      REQUIRE(::stat(path.c_str(), &st) == 0);  // after the write: it stamps the next one fine
      if ((after.tv_sec - before.tv_sec) * 1000000000L + (after.tv_nsec - before.tv_nsec) > 200000) continue;
      ++counted;
      if (std::make_pair(st.st_ctim.tv_sec, st.st_ctim.tv_nsec) >= std::make_pair(before.tv_sec, before.tv_nsec))
        ++fine;
    }
    REQUIRE(counted == 20);
    return fine;
  };
  // A full stat between the writes: the file system's behaviour.
  const int after_stat = fine_stamps([&] {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
  });
  if (after_stat < 18) {
    WARN("the file system under " << dir.path() << " keeps coarse timestamps (" << after_stat
                                  << "/20 fine after a stat): nothing to tell apart here");
    return;
  }
  CHECK(fine_stamps([&] { return f.value()->Size().ok(); }) <= 2);
  CHECK(fine_stamps([&] { return mapped.value()->FileSize().ok(); }) <= 2);
  CHECK(fine_stamps([&] { return env.FileSize(path).ok(); }) <= 2);
  CHECK(fine_stamps([&] { return env.Identify(path).ok(); }) <= 2);
  CHECK(fine_stamps([&] { return env.OpenFile(path, OpenMode::kRead).ok(); }) <= 2);
  CHECK(fine_stamps([&] { return env.MapReadOnly(path, 4096).ok(); }) <= 2);
}
