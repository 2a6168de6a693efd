// RequireDatabase / RequireDatabaseOrRoom: the one rule for "is there a
// database in this directory" (kingx-tool, verify).
#include "engine/data_dir_holds.h"

#include <catch2/catch.hpp>

#include <string>

#include "engine/record.h"
#include "tests/engine/support/fault_env.h"
#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;

namespace {

void Touch(Env& env, const std::string& path) {
  auto f = env.OpenFile(path, OpenMode::kCreateExclusive);
  REQUIRE(f.ok());
}

}  // namespace

TEST_CASE("a directory holding neither a MANIFEST nor a segment file holds no database; put may fill only an empty one",
          "[engine][data_dir]") {
  TempDir dir;
  Env& env = PosixEnv();
  const std::string missing = dir.File("missing");
  Status s = RequireDatabase(env, missing);
  CHECK(s.Is(Code::kNotFound));
  CHECK(s.message().find("no database in " + missing + ": no such directory") != std::string::npos);
  CHECK(RequireDatabaseOrRoom(env, missing).ok());

  const std::string empty = dir.File("empty");
  REQUIRE(env.CreateDir(empty).ok());
  CHECK(RequireDatabase(env, empty).Is(Code::kNotFound));
  CHECK(RequireDatabaseOrRoom(env, empty).ok());
  Touch(env, empty + "/LOCK");  // an open that stopped before its first file
  CHECK(RequireDatabase(env, empty).Is(Code::kNotFound));
  CHECK(RequireDatabaseOrRoom(env, empty).ok());

  // What a first open leaves before its MANIFEST is named, and the root of a
  // fresh file system, are empty too.
  Touch(env, empty + "/MANIFEST.tmp");
  REQUIRE(env.CreateDir(empty + "/lost+found").ok());
  CHECK(RequireDatabase(env, empty).message().find("(the directory is empty)") != std::string::npos);
  CHECK(RequireDatabaseOrRoom(env, empty).ok());
  // A dotfile is another program's (a home directory): counted and named.
  Touch(env, empty + "/.profile");
  Touch(env, empty + "/.bashrc");
  Status home = RequireDatabaseOrRoom(env, empty);
  CHECK(home.Is(Code::kNotFound));
  CHECK(home.message().find("2 other entries ('.bashrc', ...)") != std::string::npos);

  const std::string foreign = dir.File("foreign");
  REQUIRE(env.CreateDir(foreign).ok());
  Touch(env, foreign + "/notes.txt");
  Touch(env, foreign + "/seg-abcdefgh.kxd");  // not a segment's name
  for (const Status& refused : {RequireDatabase(env, foreign), RequireDatabaseOrRoom(env, foreign)}) {
    CHECK(refused.Is(Code::kNotFound));
    CHECK(refused.message().find("no database in " + foreign + ": no MANIFEST and no segment file") !=
          std::string::npos);
  }
  // Nothing was created by asking.
  CHECK(env.ListDir(missing).status().Is(Code::kNotFound));
  CHECK(env.ListDir(foreign).value().size() == 2);

  for (const std::string& name : {std::string("MANIFEST"), SegmentFileName(7)}) {
    const std::string db = dir.File("db-" + name);
    REQUIRE(env.CreateDir(db).ok());
    Touch(env, db + "/notes.txt");
    Touch(env, db + "/" + name);
    CHECK(RequireDatabase(env, db).ok());
    CHECK(RequireDatabaseOrRoom(env, db).ok());
  }
}

TEST_CASE("a directory that cannot be listed is an error, never 'no database' or room for one", "[engine][data_dir]") {
  TempDir dir;
  FaultInjectionEnv env;
  env.FailNth(FaultOp::kList, 1, Code::kIOError, /*forever=*/true);
  CHECK(RequireDatabase(env, dir.path()).Is(Code::kIOError));
  CHECK(RequireDatabaseOrRoom(env, dir.path()).Is(Code::kIOError));
}
