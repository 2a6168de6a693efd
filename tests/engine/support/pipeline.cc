// Pipelined group commit test helpers (see pipeline.h).
#include "tests/engine/support/pipeline.h"

#include <chrono>

namespace kingx::engine::test {

SyncGate::SyncGate(FaultInjectionEnv& env) : env_(env) {
  env_.SetSyncHook([this](const std::string& path) {
    if (path.find("seg-") == std::string::npos) return;
    std::unique_lock lock(mu_);
    const uint64_t me = ++entered_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return released_ >= me; });
  });
}

SyncGate::~SyncGate() {
  Open();
  env_.SetSyncHook({});
}

bool SyncGate::WaitEntered(uint64_t n) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, std::chrono::seconds(30), [&] { return entered_ >= n; });
}

void SyncGate::Release() {
  std::lock_guard lock(mu_);
  ++released_;
  cv_.notify_all();
}

void SyncGate::Open() {
  std::lock_guard lock(mu_);
  released_ = UINT64_MAX;
  cv_.notify_all();
}

Batch Puts(std::vector<std::string> keys, std::string value) {
  Batch b{std::move(keys), std::move(value), {}};
  for (const std::string& k : b.keys) {
    WriteOp op;
    op.key = k;
    op.stored = b.value;
    op.raw_len = b.value.size();
    b.ops.push_back(op);
  }
  return b;
}

Taken Take(TestDb& db, bool wait) {
  Taken t;
  t.got = db.writer().TakeFinished(&t.ticket, &t.results, wait);
  return t;
}

bool AllOk(const Taken& t) {
  for (const WriteResult& r : t.results)
    if (!r.status.ok()) return false;
  return !t.results.empty();
}

}  // namespace kingx::engine::test
