// PosixEnv: the real file seam (errno to Status, whole writes, locks, mappings).
#include "engine/env.h"

#include <catch2/catch.hpp>

#include <algorithm>

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
