// ObservedEnv: failures logged (rate-limited) and syncs timed on the way to
// the base Env (see observed_env.h).
#include "src/conf/observed_env.h"

#include <chrono>

namespace kingx {
namespace {

using engine::Result;
using engine::Status;

uint64_t MicrosSince(std::chrono::steady_clock::time_point t0) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count());
}

class ObservedFile final : public engine::File {
 public:
  ObservedFile(std::unique_ptr<engine::File> base, ObservedEnv& env) : base_(std::move(base)), env_(env) {}

  Status Append(std::string_view data) override { return env_.Watch(base_->Append(data)); }
  Status PWrite(uint64_t offset, std::string_view data) override { return env_.Watch(base_->PWrite(offset, data)); }
  Status Read(uint64_t offset, size_t n, char* scratch, size_t* read) const override {
    return env_.Watch(base_->Read(offset, n, scratch, read));
  }
  Status Sync() override {
    const auto t0 = std::chrono::steady_clock::now();
    Status s = base_->Sync();
    env_.Synced(MicrosSince(t0));
    return env_.Watch(s);
  }
  Status Truncate(uint64_t size) override { return env_.Watch(base_->Truncate(size)); }
  Result<uint64_t> Size() const override {
    auto r = base_->Size();
    if (!r.ok()) env_.Watch(r.status());
    return r;
  }

 private:
  std::unique_ptr<engine::File> base_;
  ObservedEnv& env_;
};

template <class T>
Result<T> WatchResult(ObservedEnv& env, Result<T> r) {
  if (!r.ok()) env.Watch(r.status());
  return r;
}

}  // namespace

ObservedEnv::ObservedEnv(engine::Env& base, std::string who, SyncSink* sink, uint64_t log_interval_ms)
    : base_(base), who_(std::move(who)), sink_(sink), limiter_(log_interval_ms) {}

const Status& ObservedEnv::Watch(const Status& s) {
  if (s.ok() || s.Is(engine::Code::kNotFound)) return s;
  uint64_t left_out = 0;
  if (limiter_.Allow(&left_out)) {
    if (left_out > 0) {
      KINGX_LOG_ERROR("%s: storage failure: %s (%llu more storage failures were not logged)", who_.c_str(),
                      s.ToString().c_str(), static_cast<unsigned long long>(left_out));
    } else {
      KINGX_LOG_ERROR("%s: storage failure: %s", who_.c_str(), s.ToString().c_str());
    }
  }
  return s;
}

void ObservedEnv::Synced(uint64_t micros) {
  if (sink_ != nullptr) sink_->OnSync(micros);
}

Result<std::unique_ptr<engine::File>> ObservedEnv::OpenFile(const std::string& path, engine::OpenMode mode) {
  auto r = base_.OpenFile(path, mode);
  if (!r.ok()) {
    Watch(r.status());
    return r.status();
  }
  return std::unique_ptr<engine::File>(std::make_unique<ObservedFile>(std::move(r).value(), *this));
}

Status ObservedEnv::SyncDir(const std::string& dir) {
  const auto t0 = std::chrono::steady_clock::now();
  Status s = base_.SyncDir(dir);
  Synced(MicrosSince(t0));
  return Watch(s);
}

Status ObservedEnv::Rename(const std::string& from, const std::string& to) { return Watch(base_.Rename(from, to)); }
Status ObservedEnv::RemoveFile(const std::string& path) { return Watch(base_.RemoveFile(path)); }
Status ObservedEnv::CreateDir(const std::string& path) { return Watch(base_.CreateDir(path)); }
Status ObservedEnv::Symlink(const std::string& target, const std::string& link_path) {
  return Watch(base_.Symlink(target, link_path));
}
Result<std::vector<std::string>> ObservedEnv::ListDir(const std::string& dir) {
  return WatchResult(*this, base_.ListDir(dir));
}
Result<uint64_t> ObservedEnv::FileSize(const std::string& path) { return WatchResult(*this, base_.FileSize(path)); }
Result<std::unique_ptr<engine::FileLock>> ObservedEnv::LockFile(const std::string& path) {
  return WatchResult(*this, base_.LockFile(path));
}
Result<std::unique_ptr<engine::FileLock>> ObservedEnv::LockExisting(const std::string& path, bool shared) {
  return WatchResult(*this, base_.LockExisting(path, shared));
}
Result<engine::SpaceInfo> ObservedEnv::Space(const std::string& path) { return WatchResult(*this, base_.Space(path)); }
Result<std::unique_ptr<engine::MappedFile>> ObservedEnv::MapReadOnly(const std::string& path, uint64_t map_bytes) {
  return WatchResult(*this, base_.MapReadOnly(path, map_bytes));
}
Result<engine::FileIdentity> ObservedEnv::Identify(const std::string& path) {
  return WatchResult(*this, base_.Identify(path));
}
uint64_t ObservedEnv::OpenFileLimit() { return base_.OpenFileLimit(); }

}  // namespace kingx
