// writer_cost: the writer's cost per PUT at fixed group-commit sizes, for
// callgrind (bench/callgrind_writer.sh runs it and reads the dumps).
//
// It runs the real write path in one process, as --single-process does: the
// writer loop (RunWriter with the server's hooks, compaction included) on a
// thread of its own over the shared mapping, and this thread in a worker's
// place. Each round queues exactly B PUTs (the worker's deferred wake-up: the
// writer sleeps until the B-th is queued and takes them as one batch), then
// waits for their B completions on its slot's ring; so the writer's queue →
// batch → segment append → fdatasync → index publish → answer runs with
// batches of exactly B ops, whatever valgrind's pace: the writer, woken early
// (a deferred wake-up flushes itself every 128 enqueues, and the idle timeout
// ends a wait), blocks in its hold_batch hook until the round is queued whole
// (a wait on a condition variable, not a spin). The writer's batch count is
// checked: it must be ops / B.
//
// Callgrind's client requests zero and dump the calling thread's counters
// only, so each side measures itself: this thread its enqueues and ring
// drains ("driver"), and the writer's loop thread, from its hold_batch hook,
// everything between taking the first measured round's batch and taking the
// batch after the last one ("loop": decide, encode, write, the fdatasync
// under --sync-depth 1, publish, answer, the idle turns between rounds: the
// whole per-PUT path of the writer). Its other threads (fdatasyncs under
// --sync-depth above 1, the key view's merges, compaction, the room
// extender) are in callgrind's end-of-run files only.
// For each batch size of --batches: --warmup-ops in rounds of B, then
// --ops in rounds of B between the zeroing and the dump, both labelled
// "batch=B ops=N side=loop|driver" (the loop's dump runs as it takes the
// round of 1 that follows, not counted). Keys are "key-<i>", i uniform in
// [0, --keys) from a fixed seed (fill_db's names: overwrites of a filled
// database), values --value-bytes of 'v', application/octet-stream, raw
// (what a worker queues for wrk's 100-byte PUTs). Outside valgrind the
// client requests do nothing; it prints wall time per PUT and the loop
// thread's CPU time per PUT (CLOCK_THREAD_CPUTIME_ID, user and kernel, over
// the same span as its callgrind dump). Last, a line "keyview puts=P
// merges=M entries_merged=E": the PUTs of every round and the key view's
// merges (and the run entries they read) that completed meanwhile.
//
// Usage: writer_cost [--batches 1,16,256] [--ops N] [--warmup-ops N]
//                    [--keys N] [--value-bytes N] [--seed N] -- KINGX_FLAGS...
// KINGX_FLAGS are kingx's (--data DIR --sync always --sync-depth 1 ...;
// no listener is opened). Errors: a message on stderr, exit 1.
#include <poll.h>
#include <time.h>
#include <unistd.h>
#include <valgrind/callgrind.h>

#include <chrono>
#include <condition_variable>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/keyspace_region.h"
#include "src/conf/config.h"
#include "src/ipc/completion_ring.h"
#include "src/ipc/shm.h"
#include "src/ipc/token.h"
#include "src/ipc/write_queue.h"
#include "src/master/data_dir.h"
#include "src/writer/writer_compaction.h"
#include "src/writer/writer_process.h"

namespace kingx {
namespace {

struct Args {
  std::vector<uint64_t> batches{1, 16, 256};
  uint64_t ops = 4096;
  uint64_t warmup_ops = 1024;
  uint64_t keys = 1000000;
  uint64_t value_bytes = 100;
  uint64_t seed = 1;
  std::vector<const char*> kingx{"kingx", "--listen", "127.0.0.1:0"};
};

[[noreturn]] void Fail(const std::string& why) {
  std::fprintf(stderr, "writer_cost: %s\n", why.c_str());
  std::exit(1);
}

uint64_t Number(const char* flag, const char* text) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (end == text || *end != '\0') Fail(std::string(flag) + ": expected a number, got '" + text + "'");
  return v;
}

Args ParseArgs(int argc, char** argv) {
  Args a;
  int i = 1;
  for (; i < argc && std::strcmp(argv[i], "--") != 0; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) Fail(flag + ": missing value");
    const char* v = argv[++i];
    if (flag == "--batches") {
      a.batches.clear();
      for (const char* p = v; *p != '\0';) {
        const char* comma = std::strchr(p, ',');
        const std::string part = comma ? std::string(p, comma) : std::string(p);
        a.batches.push_back(Number("--batches", part.c_str()));
        if (a.batches.back() == 0) Fail("--batches: sizes must be positive");
        p = comma ? comma + 1 : p + part.size();
      }
    } else if (flag == "--ops") {
      a.ops = Number("--ops", v);
    } else if (flag == "--warmup-ops") {
      a.warmup_ops = Number("--warmup-ops", v);
    } else if (flag == "--keys") {
      a.keys = Number("--keys", v);
    } else if (flag == "--value-bytes") {
      a.value_bytes = Number("--value-bytes", v);
    } else if (flag == "--seed") {
      a.seed = Number("--seed", v);
    } else {
      Fail("unknown flag " + flag + " (kingx's flags go after --)");
    }
  }
  if (a.keys == 0) Fail("--keys must be positive");
  for (++i; i < argc; ++i) a.kingx.push_back(argv[i]);
  return a;
}

// splitmix64: the same keys in the same order on every run.
uint64_t NextRandom(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Closed while a round is being queued: the writer's hold_batch waits here,
// and there runs the callgrind request the driver left for the loop thread.
class RoundGate {
 public:
  enum class Action : uint8_t { kNone, kZero, kDump };
  // The next hold_batch on the loop thread runs `action` (kDump: labelled).
  void Request(Action action, std::string label = {}) {
    std::lock_guard<std::mutex> l(mu_);
    action_ = action;
    label_ = std::move(label);
  }
  void Close() {
    std::lock_guard<std::mutex> l(mu_);
    open_ = false;
  }
  void Open() {
    {
      std::lock_guard<std::mutex> l(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  // The loop thread's side, in hold_batch.
  void Pass() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [this] { return open_; });
    if (action_ == Action::kZero) {
      CALLGRIND_ZERO_STATS;
      loop_cpu_s_ = ThreadCpuSeconds();
    }
    if (action_ == Action::kDump) {
      CALLGRIND_DUMP_STATS_AT(label_.c_str());
      loop_cpu_s_ = ThreadCpuSeconds() - loop_cpu_s_;
    }
    action_ = Action::kNone;
  }
  // The loop thread's CPU seconds (user and kernel) from its last kZero to
  // its last kDump: read once the dump's round was answered.
  double LoopCpuSeconds() {
    std::lock_guard<std::mutex> l(mu_);
    return loop_cpu_s_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  Action action_ = Action::kNone;
  std::string label_;
  double loop_cpu_s_ = 0;

  static double ThreadCpuSeconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
  }
};

// The worker's side of the rounds: slot 0, generation 1.
class Driver {
 public:
  Driver(SharedMemory& mem, const Args& args, RoundGate& gate)
      : mem_(mem), args_(args), gate_(gate), random_(args.seed) {
    value_.assign(args.value_bytes, 'v');
    WriteQueue::DeferWakes(true);  // as an event loop does: one wake-up per round
  }

  // Queues `batch` PUTs, wakes the writer once, waits for their answers.
  void Round(uint64_t batch) {
    keys_.resize(batch);
    for (uint64_t i = 0; i < batch; ++i) keys_[i] = "key-" + std::to_string(NextRandom(&random_) % args_.keys);
    gate_.Close();
    for (uint64_t i = 0; i < batch; ++i) {
      WriteRequest w;
      w.kind = WriteKind::kPut;
      w.key = keys_[i];
      w.content_type = "application/octet-stream";
      w.codec = engine::Codec::kRaw;
      w.raw_len = value_.size();
      w.stored = value_;
      const engine::Status s = mem_.queue().TryEnqueue(0, MakeToken(1, ++next_token_), w);
      if (!s.ok()) Fail("enqueue: " + s.ToString() + " (a round must fit the queue)");
    }
    gate_.Open();
    WriteQueue::FlushWakes();
    uint64_t answered = 0;
    while (answered < batch) {
      pollfd p{mem_.slot_eventfd(0), POLLIN, 0};
      if (poll(&p, 1, 60000) <= 0) Fail("no answer from the writer within 60 s");
      uint64_t count;
      if (read(p.fd, &count, sizeof(count)) < 0 && errno != EAGAIN) Fail("read of the slot's eventfd failed");
      mem_.completions(0).Drain(1, [&](const Completion& c) {
        if (c.code != engine::Code::kOk) Fail("a PUT was answered with code " + std::to_string(int(c.code)));
        ++answered;
      });
    }
  }

 private:
  SharedMemory& mem_;
  const Args& args_;
  RoundGate& gate_;
  uint64_t random_;
  uint64_t next_token_ = 0;
  std::string value_;
  std::vector<std::string> keys_;
};

int Main(int argc, char** argv) {
  const Args args = ParseArgs(argc, argv);
  auto parsed = ParseCommandLine(static_cast<int>(args.kingx.size()), args.kingx.data());
  if (!parsed.ok()) Fail(parsed.status().ToString());
  Config config = parsed->config;
  config.workers = 1;
  auto hold = HoldDataDir(config.data_dir, config.read_only);
  if (!hold.ok()) Fail(hold.status().ToString());
  config.keys_scratch_dir = hold->scratch_dir();
  auto shm = CreateSharedMemory(config, 2);
  if (!shm.ok()) Fail("shared memory: " + shm.status().ToString());
  SharedMemory& mem = **shm;
  SlotInfo& slot = mem.slot(0);
  slot.generation.store(1);
  slot.pid.store(getpid());
  slot.state.store(static_cast<uint32_t>(SlotState::kRunning));

  int writer_status = 0;
  RoundGate gate;
  WriterHooks hooks = CompactionHooks(mem);
  hooks.hold_batch = [&gate, inner = hooks.hold_batch](engine::Writer& w, const std::function<void()>& before_wait) {
    gate.Pass();
    return inner ? inner(w, before_wait) : false;
  };
  std::thread writer([&] { writer_status = RunWriter(config, mem, /*install_signals=*/false, hooks); });
  while (mem.control().writer_ready.load() == 0) {
    if (mem.writer_metrics().open_failure.failures() > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (mem.control().writer_ready.load() == 0) {
    writer.join();
    Fail("the writer did not open the database (status " + std::to_string(writer_status) + ")");
  }

  // As a server that has run for a while: the sorted key view complete (a
  // first open of a fill_db database rebuilds it on a thread of its own).
  while (mem.keyspace().state() != engine::KeyspaceState::kReady) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Driver driver(mem, args, gate);
  WriterMetrics& metrics = mem.writer_metrics();
  const engine::KeyspaceCounters& view = mem.keyspace().counters();
  const uint64_t merges_before = view.merges.load();
  const uint64_t merged_before = view.entries_merged.load();
  uint64_t puts = 0;
  bool split = false;
  for (const uint64_t batch : args.batches) {
    const uint64_t rounds = (args.ops + batch - 1) / batch;
    puts += ((args.warmup_ops + batch - 1) / batch + rounds) * batch + 1;
    const std::string label = "batch=" + std::to_string(batch) + " ops=" + std::to_string(rounds * batch);
    for (uint64_t r = 0; r < (args.warmup_ops + batch - 1) / batch; ++r) driver.Round(batch);
    gate.Request(RoundGate::Action::kZero);
    const uint64_t batches_before = metrics.batches.load();
    const auto t0 = std::chrono::steady_clock::now();
    CALLGRIND_ZERO_STATS;
    for (uint64_t r = 0; r < rounds; ++r) driver.Round(batch);
    const std::string driver_label = label + " side=driver";
    CALLGRIND_DUMP_STATS_AT(driver_label.c_str());
    const double us =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    const uint64_t batches = metrics.batches.load() - batches_before;
    gate.Request(RoundGate::Action::kDump, label + " side=loop");
    driver.Round(1);  // its hold_batch dumps before taking it
    if (batches != rounds) split = true;
    std::printf("%s batches=%" PRIu64 " expected=%" PRIu64 " wall_us_per_put=%.2f loop_cpu_us_per_put=%.3f\n",
                label.c_str(), batches, rounds, us / double(rounds * batch),
                gate.LoopCpuSeconds() * 1e6 / double(rounds * batch));
    std::fflush(stdout);
  }
  // The key view's merges over every PUT above (warm-up rounds included):
  // the work its thread did for them (a merge still running at the end is
  // not counted).
  std::printf("keyview puts=%" PRIu64 " merges=%" PRIu64 " entries_merged=%" PRIu64 "\n", puts,
              view.merges.load() - merges_before, view.entries_merged.load() - merged_before);
  std::fflush(stdout);
  slot.state.store(static_cast<uint32_t>(SlotState::kFree));
  mem.control().writer_stop.store(static_cast<uint32_t>(WriterStop::kDrain));
  mem.queue().Wake();
  writer.join();
  if (split) {
    std::fprintf(stderr, "writer_cost: some rounds were split into several batches (see batches=): rerun\n");
    return 2;
  }
  return writer_status;
}

}  // namespace
}  // namespace kingx

int main(int argc, char** argv) { return kingx::Main(argc, argv); }
