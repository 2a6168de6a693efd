#include "engine/data_dir_holds.h"

#include "engine/data_dir_lock.h"
#include "engine/manifest.h"
#include "engine/record.h"

#include <cstdint>

namespace kingx::engine {
namespace {

enum class DataDirHolds : uint8_t {
  kMissing,   // no such directory
  kNothing,   // no entry but those of NotData (an open that stopped before its first file)
  kDatabase,  // a MANIFEST or a segment file
  kOther,     // entries, none of them a MANIFEST or a segment file: no database of ours
};

// Entries that leave a directory without data, ours or anyone's: the LOCK and
// the MANIFEST.tmp a first open leaves when it stops before its MANIFEST got
// its name (the open removes the latter), and lost+found, which mkfs puts at
// the root of a fresh file system (a mount point given to the database).
// Nothing else, dotfiles included: a home directory holds those.
bool NotData(const std::string& name) {
  return name == kDataDirLockFile || name == std::string(Manifest::kFileName) + ".tmp" || name == "lost+found";
}

// What `dir` holds; an error only when it cannot be listed (other than
// missing). When kOther, `*other` gets the name of one such entry and
// `*others` their count, for messages.
Result<DataDirHolds> ExamineDataDir(Env& env, const std::string& dir, std::string* other, size_t* others) {
  auto names = env.ListDir(dir);
  if (!names.ok()) {
    if (names.status().Is(Code::kNotFound)) return DataDirHolds::kMissing;
    return names.status();
  }
  const std::string* first_other = nullptr;
  size_t count = 0;
  for (const auto& n : names.value()) {
    uint32_t id;
    if (n == Manifest::kFileName || ParseSegmentFileName(n, &id)) return DataDirHolds::kDatabase;
    if (NotData(n)) continue;
    if (first_other == nullptr || n < *first_other) first_other = &n;  // the same name on every run
    ++count;
  }
  if (first_other == nullptr) return DataDirHolds::kNothing;
  *other = *first_other;
  *others = count;
  return DataDirHolds::kOther;
}

std::string NoDatabase(const std::string& dir, DataDirHolds holds, const std::string& other, size_t others) {
  std::string why = "no MANIFEST and no segment file";
  switch (holds) {
    case DataDirHolds::kMissing: why = "no such directory"; break;
    case DataDirHolds::kNothing: why += " (the directory is empty)"; break;
    case DataDirHolds::kOther:
      why += ", " + std::to_string(others) + (others == 1 ? " other entry" : " other entries") + " ('" + other +
             (others == 1 ? "')" : "', ...)");
      break;
    case DataDirHolds::kDatabase: break;
  }
  return "no database in " + dir + ": " + why;
}

}  // namespace

Status RequireDatabase(Env& env, const std::string& dir) {
  std::string other;
  size_t others = 0;
  auto holds = ExamineDataDir(env, dir, &other, &others);
  if (!holds.ok()) return holds.status();
  if (holds.value() == DataDirHolds::kDatabase) return Status::OK();
  return Status::NotFound(NoDatabase(dir, holds.value(), other, others));
}

Status RequireDatabaseOrRoom(Env& env, const std::string& dir) {
  std::string other;
  size_t others = 0;
  auto holds = ExamineDataDir(env, dir, &other, &others);
  if (!holds.ok()) return holds.status();
  if (holds.value() != DataDirHolds::kOther) return Status::OK();
  return Status::NotFound(NoDatabase(dir, holds.value(), other, others) +
                          "; a database is created only in a missing or empty directory (lost+found aside)");
}

}  // namespace kingx::engine
