#include "engine/data_dir_holds.h"

#include "engine/data_dir_lock.h"
#include "engine/manifest.h"
#include "engine/record.h"

#include <cstdint>

namespace kingx::engine {
namespace {

enum class DataDirHolds : uint8_t {
  kMissing,   // no such directory
  kNothing,   // no entry but LOCK (an open that stopped before its first file)
  kDatabase,  // a MANIFEST or a segment file
  kOther,     // entries, none of them a MANIFEST or a segment file: no database of ours
};

// What `dir` holds; an error only when it cannot be listed (other than
// missing). `*other` gets the name of one entry when kOther, for messages.
Result<DataDirHolds> ExamineDataDir(Env& env, const std::string& dir, std::string* other) {
  auto names = env.ListDir(dir);
  if (!names.ok()) {
    if (names.status().Is(Code::kNotFound)) return DataDirHolds::kMissing;
    return names.status();
  }
  const std::string* first_other = nullptr;
  for (const auto& n : names.value()) {
    uint32_t id;
    if (n == Manifest::kFileName || ParseSegmentFileName(n, &id)) return DataDirHolds::kDatabase;
    // LOCK alone is what an open leaves that stopped before its first file.
    if (n != kDataDirLockFile && first_other == nullptr) first_other = &n;
  }
  if (first_other == nullptr) return DataDirHolds::kNothing;
  *other = *first_other;
  return DataDirHolds::kOther;
}

std::string NoDatabase(const std::string& dir, DataDirHolds holds, const std::string& other) {
  std::string why = "no MANIFEST and no segment file";
  switch (holds) {
    case DataDirHolds::kMissing: why = "no such directory"; break;
    case DataDirHolds::kNothing: why += " (the directory is empty)"; break;
    case DataDirHolds::kOther: why += ", other files ('" + other + "')"; break;
    case DataDirHolds::kDatabase: break;
  }
  return "no database in " + dir + ": " + why;
}

}  // namespace

Status RequireDatabase(Env& env, const std::string& dir) {
  std::string other;
  auto holds = ExamineDataDir(env, dir, &other);
  if (!holds.ok()) return holds.status();
  if (holds.value() == DataDirHolds::kDatabase) return Status::OK();
  return Status::NotFound(NoDatabase(dir, holds.value(), other));
}

Status RequireDatabaseOrRoom(Env& env, const std::string& dir) {
  std::string other;
  auto holds = ExamineDataDir(env, dir, &other);
  if (!holds.ok()) return holds.status();
  if (holds.value() != DataDirHolds::kOther) return Status::OK();
  return Status::NotFound(NoDatabase(dir, holds.value(), other) +
                          "; a database is created only in a missing or empty directory");
}

}  // namespace kingx::engine
