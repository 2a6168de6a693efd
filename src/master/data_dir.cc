// HoldDataDir (see data_dir.h).
#include "src/master/data_dir.h"

#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "engine/data_dir_lock.h"

namespace kingx {

DataDirHold::DataDirHold(DataDirHold&& other) noexcept
    : lock_(std::move(other.lock_)), scratch_(std::move(other.scratch_)) {
  other.scratch_.clear();
}

DataDirHold& DataDirHold::operator=(DataDirHold&& other) noexcept {
  if (this != &other) {
    Release();
    lock_ = std::move(other.lock_);
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
}

engine::Result<DataDirHold> HoldDataDir(
    const std::string& dir, bool read_only,
    const std::function<engine::Result<std::unique_ptr<engine::FileLock>>(
        const std::function<engine::Result<std::unique_ptr<engine::FileLock>>()>&)>& attempt_lock) {
  engine::Env& env = engine::PosixEnv();
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
  const char* tmp = getenv("TMPDIR");
  std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/kingx-ro-keys-" +
                        std::to_string(getpid()) + "-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr)
    return engine::Status::IOError("--read-only: cannot create a scratch directory for the sorted key view (" +
                                   pattern + "): " + std::strerror(errno));
  hold.scratch_ = pattern;
  return hold;
}

}  // namespace kingx
