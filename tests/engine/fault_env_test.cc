// The file seam's model of a power loss and of unreadable pages, checked
// against what POSIX and ext4 allow (research/reliability.md 1.7: a
// directory operation is durable once its directory is fsynced, a file's
// bytes and size once the file is; until then a crash may undo either).
// Every durability claim of the engine is proved through this model, so a
// state it makes up, or one it never produces, is a test that proves nothing.
#include <catch2/catch.hpp>

#include <filesystem>

#include "engine/mapping_guard.h"
#include "tests/engine/support/fault_env.h"
#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;

namespace {

bool Exists(const std::string& path) { return std::filesystem::exists(path); }

// A file at path holding bytes, synced, its entry dir-synced.
void MakeDurable(FaultInjectionEnv& env, const TempDir& dir, const std::string& name, const std::string& bytes) {
  auto f = env.OpenFile(dir.File(name), OpenMode::kCreateTruncate);
  REQUIRE(f.ok());
  REQUIRE(f.value()->Append(bytes).ok());
  REQUIRE(f.value()->Sync().ok());
  REQUIRE(env.SyncDir(dir.path()).ok());
}

}  // namespace

TEST_CASE("a new file renamed over a durable one: a power loss before the dir sync leaves the old file",
          "[engine][seam]") {
  // The rename is atomic and not yet durable: the directory on disk still
  // names the old file. The model once deleted the name, leaving neither.
  TempDir dir;
  FaultInjectionEnv env;
  MakeDurable(env, dir, "MANIFEST", "old|");
  auto f = env.OpenFile(dir.File("MANIFEST.tmp"), OpenMode::kCreateExclusive);
  REQUIRE(f.ok());
  REQUIRE(f.value()->Append("new|").ok());
  REQUIRE(f.value()->Sync().ok());
  REQUIRE(env.Rename(dir.File("MANIFEST.tmp"), dir.File("MANIFEST")).ok());
  f.value().reset();
  CHECK(env.Restorable() == std::vector<std::string>{dir.File("MANIFEST")});
  REQUIRE(env.DropUnsynced().ok());
  CHECK(ReadFileBytes(dir.File("MANIFEST")) == "old|");
  CHECK_FALSE(Exists(dir.File("MANIFEST.tmp")));

  SECTION("after the dir sync the new file has the name for good") {
    auto g = env.OpenFile(dir.File("MANIFEST.tmp"), OpenMode::kCreateExclusive);
    REQUIRE(g.ok());
    REQUIRE(g.value()->Append("new|").ok());
    REQUIRE(g.value()->Sync().ok());
    REQUIRE(env.Rename(dir.File("MANIFEST.tmp"), dir.File("MANIFEST")).ok());
    REQUIRE(env.SyncDir(dir.path()).ok());
    g.value().reset();
    CHECK(env.Restorable().empty());
    REQUIRE(env.DropUnsynced().ok());
    CHECK(ReadFileBytes(dir.File("MANIFEST")) == "new|");
  }
}

TEST_CASE("a durable file renamed over another durable one: a power loss before the dir sync leaves both",
          "[engine][seam]") {
  TempDir dir;
  FaultInjectionEnv env;
  MakeDurable(env, dir, "a", "a|");
  MakeDurable(env, dir, "b", "b|");
  REQUIRE(env.Rename(dir.File("a"), dir.File("b")).ok());
  CHECK(ReadFileBytes(dir.File("b")) == "a|");
  REQUIRE(env.DropUnsynced().ok());
  CHECK(ReadFileBytes(dir.File("a")) == "a|");
  CHECK(ReadFileBytes(dir.File("b")) == "b|");
}

TEST_CASE("an unlink not followed by a dir sync: a power loss brings the file back with what its last sync left",
          "[engine][seam]") {
  // A removed hint or compaction input, or a temp file, can reappear; what
  // it holds is its durable content, not the bytes written after its sync.
  TempDir dir;
  FaultInjectionEnv env;
  MakeDurable(env, dir, "seg-1.hint", "synced|");
  {
    auto f = env.OpenFile(dir.File("seg-1.hint"), OpenMode::kReadWrite);
    REQUIRE(f.ok());
    REQUIRE(f.value()->PWrite(7, "unsynced|").ok());
  }
  REQUIRE(env.RemoveFile(dir.File("seg-1.hint")).ok());
  CHECK_FALSE(Exists(dir.File("seg-1.hint")));
  // A file whose entry never became durable does not come back.
  auto fresh = env.OpenFile(dir.File("seg-2.hint"), OpenMode::kCreateExclusive);
  REQUIRE(fresh.ok());
  REQUIRE(fresh.value()->Append("x").ok());
  REQUIRE(fresh.value()->Sync().ok());
  fresh.value().reset();
  REQUIRE(env.RemoveFile(dir.File("seg-2.hint")).ok());
  CHECK(env.Restorable() == std::vector<std::string>{dir.File("seg-1.hint")});

  SECTION("before the dir sync") {
    REQUIRE(env.DropUnsynced().ok());
    CHECK(ReadFileBytes(dir.File("seg-1.hint")) == "synced|");
    CHECK_FALSE(Exists(dir.File("seg-2.hint")));
  }
  SECTION("after the dir sync the unlink holds") {
    REQUIRE(env.SyncDir(dir.path()).ok());
    CHECK(env.Restorable().empty());
    REQUIRE(env.DropUnsynced().ok());
    CHECK_FALSE(Exists(dir.File("seg-1.hint")));
    CHECK_FALSE(Exists(dir.File("seg-2.hint")));
  }
  SECTION("a file created again under the name, not dir-synced, gives way to the durable one") {
    auto again = env.OpenFile(dir.File("seg-1.hint"), OpenMode::kCreateExclusive);
    REQUIRE(again.ok());
    REQUIRE(again.value()->Append("again|").ok());
    REQUIRE(again.value()->Sync().ok());
    again.value().reset();
    REQUIRE(env.DropUnsynced().ok());
    CHECK(ReadFileBytes(dir.File("seg-1.hint")) == "synced|");
  }
}

TEST_CASE("what a handle syncs after its file's unlink comes back with the file", "[engine][seam]") {
  // fdatasync acts on the inode: an unlink undone by a power loss brings
  // back an inode that holds what was synced through a handle left open.
  TempDir dir;
  FaultInjectionEnv env;
  MakeDurable(env, dir, "seg", "a|");
  auto f = env.OpenFile(dir.File("seg"), OpenMode::kReadWrite);
  REQUIRE(f.ok());
  REQUIRE(env.RemoveFile(dir.File("seg")).ok());
  REQUIRE(f.value()->PWrite(2, "b|").ok());
  REQUIRE(f.value()->Sync().ok());
  REQUIRE(f.value()->PWrite(4, "c|").ok());
  f.value().reset();
  REQUIRE(env.DropUnsynced().ok());
  CHECK(ReadFileBytes(dir.File("seg")) == "a|b|");
}

TEST_CASE("a truncation not followed by a sync: a power loss gives back the bytes it cut off", "[engine][seam]") {
  // fdatasync makes a new size durable; before it a crash may leave the old
  // size and the old bytes (the model once made every truncation durable).
  TempDir dir;
  FaultInjectionEnv env;
  MakeDurable(env, dir, "seg", "0123456789");
  auto f = env.OpenFile(dir.File("seg"), OpenMode::kReadWrite);
  REQUIRE(f.ok());
  REQUIRE(f.value()->Truncate(4).ok());
  REQUIRE(f.value()->Append("xy").ok());

  SECTION("no sync") {
    f.value().reset();
    REQUIRE(env.DropUnsynced().ok());
    CHECK(ReadFileBytes(dir.File("seg")) == "0123456789");
  }
  SECTION("a sync after it makes the shorter file durable") {
    REQUIRE(f.value()->Sync().ok());
    REQUIRE(f.value()->Append("z").ok());
    f.value().reset();
    REQUIRE(env.DropUnsynced().ok());
    CHECK(ReadFileBytes(dir.File("seg")) == "0123xy");
  }
  SECTION("an open that truncates is a truncation too") {
    f.value().reset();
    auto g = env.OpenFile(dir.File("seg"), OpenMode::kCreateTruncate);
    REQUIRE(g.ok());
    REQUIRE(g.value()->Append("new").ok());
    g.value().reset();
    REQUIRE(env.DropUnsynced().ok());
    CHECK(ReadFileBytes(dir.File("seg")) == "0123456789");
  }
}

TEST_CASE("faults met through a mapping count as fired, and SetUnreadable reaches live mappings",
          "[engine][seam]") {
  TempDir dir;
  FaultInjectionEnv env;
  const std::string bytes(3 * 4096, 'v');
  MakeDurable(env, dir, "seg-00000001.kxd", bytes);
  auto before = env.MapReadOnly(dir.File("seg-00000001.kxd"), bytes.size());
  REQUIRE(before.ok());
  char c = 0;
  REQUIRE(GuardedCopy(&c, before.value()->data() + 4096, 1));
  CHECK(env.FaultsFired() == 0);

  // The mapping was made before the sectors failed: it meets them too.
  env.SetUnreadable("seg-00000001", 4096);
  CHECK_FALSE(GuardedCopy(&c, before.value()->data() + 4096, 1));
  CHECK(env.MappedFaultsFired() == 1);
  CHECK(GuardedCopy(&c, before.value()->data(), 1));  // the page before stays readable
  CHECK(env.MappedFaultsFired() == 1);

  auto after = env.MapReadOnly(dir.File("seg-00000001.kxd"), bytes.size());
  REQUIRE(after.ok());
  CHECK_FALSE(GuardedCopy(&c, after.value()->data() + 2 * 4096, 1));
  CHECK(env.MappedFaultsFired() == 2);

  auto file = env.OpenFile(dir.File("seg-00000001.kxd"), OpenMode::kRead);
  REQUIRE(file.ok());
  std::string scratch(100, '\0');
  size_t got = 0;
  CHECK(file.value()->Read(4096, scratch.size(), scratch.data(), &got).Is(Code::kIOError));
  CHECK(env.FaultsFired() == 3);
  CHECK(env.MappedFaultsFired() == 2);

  env.ClearUnreadable();
  auto third = env.MapReadOnly(dir.File("seg-00000001.kxd"), bytes.size());
  REQUIRE(third.ok());
  REQUIRE(GuardedCopy(&c, third.value()->data() + 4096, 1));
  CHECK(env.LoseMappedPages("seg-00000001", 0) == 3);
  CHECK_FALSE(GuardedCopy(&c, third.value()->data(), 1));
  CHECK(env.MappedFaultsFired() == 3);
  CHECK(env.FaultsFired() == 4);
}
