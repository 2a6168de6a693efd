// Pipelined group commit test helpers (see pipeline.h).
#include "tests/engine/support/pipeline.h"

#include <catch2/catch.hpp>

#include <chrono>

namespace kingx::engine::test {

SyncGate::SyncGate(FaultInjectionEnv& env, std::string path_part) : env_(env) {
  env_.SetSyncHook([st = state_, part = std::move(path_part)](const std::string& path) {
    if (path.find(part) == std::string::npos) return;
    std::unique_lock lock(st->mu);
    const uint64_t me = ++st->entered;
    st->cv.notify_all();
    st->cv.wait(lock, [&] { return st->released >= me || st->released_one.count(me) > 0; });
  });
}

SyncGate::~SyncGate() {
  Open();
  env_.SetSyncHook({});
}

bool SyncGate::WaitEntered(uint64_t n, std::chrono::milliseconds timeout) {
  std::unique_lock lock(state_->mu);
  return state_->cv.wait_for(lock, timeout, [&] { return state_->entered >= n; });
}

void SyncGate::Release() {
  std::lock_guard lock(state_->mu);
  ++state_->released;
  state_->cv.notify_all();
}

void SyncGate::ReleaseNth(uint64_t n) {
  std::lock_guard lock(state_->mu);
  state_->released_one.insert(n);
  state_->cv.notify_all();
}

void SyncGate::Open() {
  std::lock_guard lock(state_->mu);
  state_->released = UINT64_MAX;
  state_->cv.notify_all();
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

void TakeNext(TestDb& db, uint64_t ticket, Code code) {
  Taken t = Take(db, true);
  REQUIRE(t.got);
  CHECK(t.ticket == ticket);
  REQUIRE_FALSE(t.results.empty());
  for (const WriteResult& r : t.results) CHECK(r.status.Is(code));
}

}  // namespace kingx::engine::test
