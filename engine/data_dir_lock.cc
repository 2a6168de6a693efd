// LockDataDir (see data_dir_lock.h).
//
// Why two locks for a read-write holder: the LOCK file is what every earlier
// kingx took, and the directory's own lock is what a read-only holder can
// take without creating anything. A read-write holder takes both so that it
// excludes older read-write servers (LOCK) and read-only ones (directory).
#include "engine/data_dir_lock.h"

#include <vector>

namespace kingx::engine {
namespace {

class Locks final : public FileLock {
 public:
  std::vector<std::unique_ptr<FileLock>> held;
};

}  // namespace

Result<std::unique_ptr<FileLock>> LockDataDir(Env& env, const std::string& dir, bool read_only) {
  auto locks = std::make_unique<Locks>();
  const std::string lock_path = JoinPath(dir, kDataDirLockFile);
  if (read_only) {
    auto d = env.LockExisting(dir, true);
    if (!d.ok()) {
      if (d.status().Is(Code::kBusy))
        return Status::Busy("data directory " + dir + " is locked by a read-write kingx or kingx-tool");
      return d.status();
    }
    locks->held.push_back(std::move(d.value()));
    auto f = env.LockExisting(lock_path, true);
    if (f.ok()) {
      locks->held.push_back(std::move(f.value()));
    } else if (f.status().Is(Code::kBusy)) {
      return Status::Busy("data directory " + dir + " is locked by a read-write kingx or kingx-tool (its LOCK file)");
    } else if (!f.status().Is(Code::kNotFound)) {
      return f.status();
    }
    return std::unique_ptr<FileLock>(std::move(locks));
  }
  auto f = env.LockFile(lock_path);
  if (!f.ok()) {
    if (!f.status().Is(Code::kBusy)) return f.status();
    // Which kind of holder: a read-only one holds LOCK shared, so a shared
    // probe of LOCK succeeds; anything holding it exclusively (a read-write
    // kingx, an older one, kingx-tool) makes the probe fail too.
    auto probe = env.LockExisting(lock_path, true);
    if (probe.ok())
      return Status::Busy("data directory " + dir + " is locked by a read-only kingx or kingx-tool (shared lock on its LOCK file)");
    return Status::Busy("data directory " + dir + " is locked by another kingx or kingx-tool (its LOCK file is held: " +
                        f.status().ToString() + ")");
  }
  locks->held.push_back(std::move(f.value()));
  auto d = env.LockExisting(dir, false);
  if (!d.ok()) {
    if (d.status().Is(Code::kBusy))
      return Status::Busy("data directory " + dir + " is locked by a read-only kingx or kingx-tool");
    return d.status();
  }
  locks->held.push_back(std::move(d.value()));
  return std::unique_ptr<FileLock>(std::move(locks));
}

}  // namespace kingx::engine
