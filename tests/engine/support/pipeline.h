// Helpers for tests of the pipelined group commit (Writer::Submit /
// TakeFinished) and of what runs beside it: a gate that holds fdatasyncs of
// segment files in flight, batches of puts whose bytes outlive the call, and
// taking a finished batch.
#pragma once

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "engine/writer.h"
#include "tests/engine/support/fault_env.h"
#include "tests/engine/support/test_util.h"

namespace kingx::engine::test {

// Holds each fdatasync of a file whose path holds `path_part` (by default
// "seg-": segment files; "compact-": compaction outputs) at its start, on the
// syncing thread, until the test lets it go (one Release per sync, or
// Open for all from then on). Installs the env's sync hook; the destructor
// opens the gate and removes the hook. A thread still in the hook (or about
// to enter it with its copy) after the destructor returns finds the gate's
// state alive: each copy of the hook owns it. The env must outlive the gate.
class SyncGate {
 public:
  explicit SyncGate(FaultInjectionEnv& env, std::string path_part = "seg-");
  ~SyncGate();
  SyncGate(const SyncGate&) = delete;
  SyncGate& operator=(const SyncGate&) = delete;
  // Waits until the nth held sync has started. Bounded (120 s unless told),
  // so that a broken writer fails the test instead of hanging it: false then.
  bool WaitEntered(uint64_t n, std::chrono::milliseconds timeout = std::chrono::seconds(120));
  // Lets the next held sync go (in the order they entered).
  void Release();
  // Lets the nth held sync (1 = the first that entered) go, whether or not
  // the ones before it were let go.
  void ReleaseNth(uint64_t n);
  // Lets every sync go, now and from then on.
  void Open();

 private:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    uint64_t entered = 0;
    uint64_t released = 0;           // every sync up to this one goes
    std::set<uint64_t> released_one;  // and these (ReleaseNth)
  };
  FaultInjectionEnv& env_;
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

// Put ops whose keys and value live as long as the Batch (a submitted batch's
// views must stay valid until it is taken).
struct Batch {
  std::vector<std::string> keys;
  std::string value;
  std::vector<WriteOp> ops;
};

// One raw (uncompressed) put of `value` per key.
Batch Puts(std::vector<std::string> keys, std::string value);

// What Writer::TakeFinished gave.
struct Taken {
  bool got = false;
  uint64_t ticket = 0;
  std::vector<WriteResult> results;
};

Taken Take(TestDb& db, bool wait);

// True when the batch had ops and each one succeeded.
bool AllOk(const Taken& t);

// Polls `done` every millisecond until it holds (true) or 120 s passed (false).
template <class F>
bool WaitUntil(F done) {
  for (int i = 0; i < 120000; ++i) {
    if (done()) return true;
    usleep(1000);
  }
  return false;
}

// Takes the next finished batch (waiting for it) and checks (Catch2) its
// ticket and that each of its ops finished with `code`.
void TakeNext(TestDb& db, uint64_t ticket, Code code);

}  // namespace kingx::engine::test
