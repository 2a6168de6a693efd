// HoldDataDir (see data_dir.h).
#include "src/master/data_dir.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <vector>

#include "engine/data_dir_holds.h"
#include "engine/data_dir_lock.h"

namespace kingx {
namespace {

constexpr std::string_view kScratchPrefix = "kingx-ro-keys-";

// Removes the scratch directories under tmp that earlier read-only servers
// left when they were killed: one is removed only when the master named in
// it (kingx-ro-keys-<pid>-*) no longer exists and no process holds its lock
// (a writer or worker of that master that still runs keeps it). A directory
// of a live process, or one that cannot be locked, is left alone; failures
// are ignored (it is scratch, and another start will try again).
void RemoveAbandonedScratch(engine::Env& env, const std::string& tmp) {
  std::error_code ec;
  std::vector<std::filesystem::directory_entry> entries;
  for (std::filesystem::directory_iterator it(tmp, ec), end; !ec && it != end; it.increment(ec))
    entries.push_back(*it);
  for (const auto& entry : entries) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with(kScratchPrefix) || !entry.is_directory(ec) || entry.is_symlink(ec)) continue;
    const std::string_view rest = std::string_view(name).substr(kScratchPrefix.size());
    const size_t dash = rest.find('-');
    if (dash == 0 || dash == std::string_view::npos) continue;
    pid_t pid = 0;
    bool digits = true;
    for (char c : rest.substr(0, dash)) {
      if (c < '0' || c > '9' || pid > 100000000) digits = false;
      pid = pid * 10 + (c - '0');
    }
    if (!digits || pid <= 0 || pid == getpid()) continue;
    if (kill(pid, 0) == 0 || errno != ESRCH) continue;  // its master may still run
    auto lock = env.LockExisting(entry.path().string(), /*shared=*/false);
    if (!lock.ok()) continue;  // held: a child of that master still uses it
    std::filesystem::remove_all(entry.path(), ec);
  }
}

}  // namespace

engine::Status DataDirRule(engine::Env& env, const std::string& dir, bool read_only) {
  engine::Status s = read_only ? engine::RequireDatabase(env, dir) : engine::RequireDatabaseOrRoom(env, dir);
  if (s.ok()) return s;
  return engine::Status(s.code(), std::string(read_only ? "--read-only " : "") + "--data " + dir + ": " +
                                      std::string(s.message()));
}

DataDirHold::DataDirHold(DataDirHold&& other) noexcept
    : lock_(std::move(other.lock_)), scratch_lock_(std::move(other.scratch_lock_)), scratch_(std::move(other.scratch_)) {
  other.scratch_.clear();
}

DataDirHold& DataDirHold::operator=(DataDirHold&& other) noexcept {
  if (this != &other) {
    Release();
    lock_ = std::move(other.lock_);
    scratch_lock_ = std::move(other.scratch_lock_);
    scratch_ = std::move(other.scratch_);
    other.scratch_.clear();
  }
  return *this;
}

DataDirHold::~DataDirHold() { Release(); }

void DataDirHold::Release() {
  lock_.reset();
  if (!scratch_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(scratch_, ec);  // best effort: it is scratch under the temporary directory
    scratch_.clear();
  }
  scratch_lock_.reset();
}

std::string ReadOnlyScratchParent() {
  const char* tmp_env = getenv("TMPDIR");
  return tmp_env != nullptr && *tmp_env != '\0' ? tmp_env : "/tmp";
}

engine::Result<DataDirHold> HoldDataDir(
    const std::string& dir, bool read_only,
    const std::function<engine::Result<std::unique_ptr<engine::FileLock>>(
        const std::function<engine::Result<std::unique_ptr<engine::FileLock>>()>&)>& attempt_lock) {
  engine::Env& env = engine::PosixEnv();
  if (engine::Status s = DataDirRule(env, dir, read_only); !s.ok()) return s;
  if (!read_only) {
    if (engine::Status s = env.CreateDir(dir); !s.ok())
      return engine::Status(s.code(), "cannot create data directory " + dir + ": " + s.ToString());
  }
  std::function<engine::Result<std::unique_ptr<engine::FileLock>>()> once = [&] {
    return engine::LockDataDir(env, dir, read_only);
  };
  auto lock = attempt_lock ? attempt_lock(once) : once();
  if (!lock.ok()) {
    const engine::Status& s = lock.status();
    if (read_only && s.Is(engine::Code::kNotFound))
      return engine::Status::NotFound("--read-only: data directory " + dir + " does not exist (" + s.ToString() + ")");
    return engine::Status(s.code(), std::string(read_only ? "--read-only: " : "") + "cannot lock data directory " +
                                        dir + ": " + s.ToString());
  }
  DataDirHold hold;
  hold.lock_ = std::move(lock).value();
  if (!read_only) return hold;
  const std::string tmp = ReadOnlyScratchParent();
  RemoveAbandonedScratch(env, tmp);
  std::string pattern = tmp + "/" + std::string(kScratchPrefix) + std::to_string(getpid()) + "-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr)
    return engine::Status::IOError("--read-only: cannot create a scratch directory for the sorted key view (" +
                                   pattern + "): " + std::strerror(errno));
  hold.scratch_ = pattern;
  // Held for the server's life (the children forked from the master share
  // it): a later start removes the directory only once nobody holds it.
  auto scratch_lock = env.LockExisting(pattern, /*shared=*/false);
  if (!scratch_lock.ok())
    return engine::Status(scratch_lock.status().code(), "--read-only: cannot lock the scratch directory " + pattern +
                                                            ": " + scratch_lock.status().ToString());
  hold.scratch_lock_ = std::move(scratch_lock).value();
  return hold;
}

}  // namespace kingx
