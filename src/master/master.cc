// The master process (see master.h): nginx's ngx_master_process_cycle.
//
// Signal handlers only set sig_atomic_t flags. Every signal the master acts on
// stays blocked except inside sigsuspend, so a flag is never set while the
// loop body runs and no wake-up is lost between checking the flags and
// sleeping. Delayed work (rate-limited respawns, stop deadlines) is driven by
// one ITIMER_REAL (SIGALRM) armed for the earliest due time.
#include "src/master/master.h"
#include "src/master/startup_check.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/env.h"
#include "http/counters.h"
#include "src/conf/log.h"
#include "src/conf/log_file.h"
#include "src/ipc/shm.h"
#include "src/master/child_process.h"
#include "src/master/data_dir.h"
#include "src/master/listen.h"
#include "src/master/master_descriptors.h"
#include "src/worker/master_signals.h"
#include "src/worker/serve_options.h"

namespace kingx {
namespace {

volatile sig_atomic_t g_terminate = 0;  // TERM / INT
volatile sig_atomic_t g_quit = 0;       // QUIT
volatile sig_atomic_t g_reload = 0;     // HUP
volatile sig_atomic_t g_reopen = 0;     // USR1
volatile sig_atomic_t g_reap = 0;       // CHLD
volatile sig_atomic_t g_alarm = 0;      // ALRM
volatile sig_atomic_t g_upgrade = 0;    // USR2: nginx's binary upgrade, which kingx does not have

void OnSignal(int sig) {
  switch (sig) {
    case SIGTERM:
    case SIGINT: g_terminate = 1; break;
    case SIGQUIT: g_quit = 1; break;
    case SIGHUP: g_reload = 1; break;
    case SIGUSR1: g_reopen = 1; break;
    case SIGCHLD: g_reap = 1; break;
    case SIGALRM: g_alarm = 1; break;
    case SIGUSR2: g_upgrade = 1; break;
    default: break;
  }
}

// USR2 is caught only to be refused: its default action would end the master
// (and with it, through PR_SET_PDEATHSIG, the whole server) when an operator
// sends it out of nginx's habit (USR2 = start a new binary there).
constexpr int kHandled[] = {SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGCHLD, SIGALRM};

// A graceful stop that takes longer than this becomes a fast stop, and a
// fast stop that takes longer than kKillAfterMs ends with SIGKILL.
constexpr int64_t kGracefulDeadlineMs = 60'000;
constexpr int64_t kKillAfterMs = 10'000;
// Respawn backoff: a child that dies within kStableMs of its start waits
// before its next start, doubling from kMinBackoffMs up to kMaxBackoffMs.
constexpr int64_t kStableMs = 2'000;
constexpr int64_t kMinBackoffMs = 100;
constexpr int64_t kMaxBackoffMs = 10'000;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A previous instance stopped with kill -9 leaves processes that are still
// exiting (a writer finishing an fdatasync, say): for tens to hundreds of
// milliseconds they hold the data directory's LOCK and the listening ports.
// Startup waits for them, bounded, instead of failing; a live instance keeps
// holding them, and startup then fails after the wait, as before.
constexpr int64_t kPreviousHolderWaitMs = 5'000;
constexpr int64_t kPreviousHolderPollMs = 20;

// Calls attempt() (returning a Result) until it fails with anything but
// kBusy, succeeds, or kPreviousHolderWaitMs passed. Logs the wait once.
template <class Attempt>
auto WaitForPreviousHolder(const std::string& what, Attempt attempt) -> decltype(attempt()) {
  auto busy = [](const auto& r) { return !r.ok() && r.status().Is(engine::Code::kBusy); };
  auto r = attempt();
  if (!busy(r)) return r;
  const int64_t start = NowMs();
  KINGX_LOG_WARN("%s is held by another process (%s); waiting up to %lld ms for it to go", what.c_str(),
                 r.status().ToString().c_str(), static_cast<long long>(kPreviousHolderWaitMs));
  while (busy(r) && NowMs() - start < kPreviousHolderWaitMs) {
    usleep(kPreviousHolderPollMs * 1000);
    r = attempt();
  }
  if (!busy(r)) KINGX_LOG_INFO("%s released after %lld ms", what.c_str(), static_cast<long long>(NowMs() - start));
  return r;
}

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return std::string("killed by signal ") + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) +
           ")" + (WCOREDUMP(status) ? ", core dumped" : "");
  }
  return "ended (status " + std::to_string(status) + ")";
}

// Restart bookkeeping of one role (the writer, or one worker index).
struct Backoff {
  int64_t started_ms = 0;
  int64_t delay_ms = 0;
  int64_t due_ms = -1;  // >= 0: a respawn is scheduled at this time

  void Died(int64_t now) {
    if (now - started_ms < kStableMs) {
      delay_ms = delay_ms == 0 ? kMinBackoffMs : std::min(delay_ms * 2, kMaxBackoffMs);
    } else {
      delay_ms = 0;
    }
    due_ms = now + delay_ms;
  }
};

class Master {
 public:
  Master(const Config& config, int argc, const char* const* argv) : config_(config), argc_(argc), argv_(argv) {}

  int Run() {
    if (!StartUp()) {
      Cleanup();
      return 1;
    }
    Loop();
    Cleanup();
    return 0;
  }

 private:
  struct Worker {
    pid_t pid = 0;           // 0: slot free
    uint32_t worker_index = 0;
    bool old = false;        // told to stop (reload or shutdown): never respawned
    std::unique_ptr<Config> config;  // the configuration it was started with
  };

  bool StartUp() {
    if (engine::Status s = InitErrorLog(config_.error_log, config_.log_level); !s.ok()) {
      std::fprintf(stderr, "kingx: %s\n", s.ToString().c_str());
      return false;
    }
    // The master opens the access log and its workers write to their copies
    // (as nginx's cycle does): a bad path refuses the start, as -t says, and a
    // FIFO's reader never sees its last writer leave between the two opens.
    if (engine::Status s = OpenLogFile(config_.access_log, kAccessLogWhat, &access_log_fd_); !s.ok()) {
      KINGX_LOG_ERROR("%s", s.ToString().c_str());
      return false;
    }
    SetProcessName("kingx-master");
    std::string limit_warning;
    if (engine::Status s = RaiseOpenFileLimit(config_, &limit_warning); !s.ok()) {
      KINGX_LOG_ERROR("%s", std::string(s.message()).c_str());
      return false;
    }
    if (!limit_warning.empty()) KINGX_LOG_WARN("%s", limit_warning.c_str());
    auto hold = HoldDataDir(config_.data_dir, config_.read_only, [&](const auto& attempt) {
      return WaitForPreviousHolder("data directory " + config_.data_dir, attempt);
    });
    if (!hold.ok()) {
      KINGX_LOG_ERROR("%s%s", std::string(hold.status().message()).c_str(),
                      hold.status().Is(engine::Code::kBusy) ? " (another kingx serves it)" : "");
      return false;
    }
    data_dir_ = std::move(hold).value();
    config_.keys_scratch_dir = data_dir_.scratch_dir();
    if (config_.read_only)
      KINGX_LOG_INFO("read-only: serving %s without changing it (sorted key view kept in %s)",
                     config_.data_dir.c_str(), config_.keys_scratch_dir.c_str());

    // Block the signals we act on before any child exists; sigsuspend
    // unblocks them only while the master sleeps.
    sigset_t block;
    sigemptyset(&block);
    for (int sig : kHandled) sigaddset(&block, sig);
    sigprocmask(SIG_BLOCK, &block, nullptr);
    struct sigaction sa {};
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = OnSignal;
    for (int sig : kHandled) sigaction(sig, &sa, nullptr);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, nullptr);

    auto shm = CreateSharedMemory(config_, 2 * config_.workers + 2);
    if (!shm.ok()) {
      KINGX_LOG_ERROR("cannot create shared memory: %s", shm.status().ToString().c_str());
      return false;
    }
    shm_ = std::move(shm).value();
    workers_.resize(shm_->slot_count());
    (void)PublishLogSettings(config_);  // the writer inherits them at its start anyway

    auto sockets = WaitForPreviousHolder("a listening address",
                                         [&] { return OpenListenSockets(config_, config_.workers); });
    if (!sockets.ok()) {
      KINGX_LOG_ERROR("%s", sockets.status().ToString().c_str());
      return false;
    }
    sockets_ = std::move(sockets).value();
    for (const ListenAddress& a : sockets_.addresses) KINGX_LOG_INFO("listening on %s", a.ToString().c_str());
    if (sockets_.admin_fd >= 0) KINGX_LOG_INFO("admin listening on %s", sockets_.admin_address.ToString().c_str());

    if (!config_.pid_file.empty() && !WritePidFile()) return false;

    KINGX_LOG_INFO("kingx master started: %u %s worker(s), accept %s, sync %s, data %s (segments of %llu bytes%s, "
                   "disk reserve %llu bytes%s)",
                   config_.workers, config_.model == Model::kEvent ? "event" : "threads",
                   config_.accept == AcceptMode::kReusePort ? "reuseport" : "shared",
                   engine::SyncModeString(config_.EngineOptions()).c_str(), config_.data_dir.c_str(),
                   static_cast<unsigned long long>(config_.segment_bytes), config_.segment_bytes_auto ? ", auto" : "",
                   static_cast<unsigned long long>(config_.disk_reserve_bytes),
                   config_.disk_reserve_auto ? ", auto" : "");
    StartWriter();
    TuneListeners();
    for (uint32_t i = 0; i < config_.workers; ++i) StartWorker(i, config_);
    return true;
  }

  // Sets config_'s TCP options on every listening socket (TuneListenSocket)
  // before workers that serve with config_ start: a connection the kernel
  // completes before a new worker's first accept (while the old workers
  // drain, or before the first ones are up) then starts with them too.
  void TuneListeners() {
    for (int fd : AllListenFds(sockets_)) (void)TuneListenSocket(fd, config_);
  }

  bool WritePidFile() {
    const std::string text = std::to_string(getpid()) + "\n";
    const int fd = open(config_.pid_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
      KINGX_LOG_ERROR("cannot write pid file %s: %s", config_.pid_file.c_str(), std::strerror(errno));
      if (fd >= 0) close(fd);
      return false;
    }
    close(fd);
    pid_file_written_ = config_.pid_file;
    return true;
  }

  void Cleanup() {
    if (!pid_file_written_.empty()) unlink(pid_file_written_.c_str());
    CloseListenSockets(&sockets_);
    shm_.reset();
    data_dir_ = DataDirHold();
  }

  // ---- children ----

  void StartWriter() {
    writer_backoff_.due_ms = -1;
    writer_backoff_.started_ms = NowMs();
    // The previous writer's QUIT/TERM handler left its stop request in the
    // shared control block; the new writer must start from "run".
    shm_->control().writer_stop.store(static_cast<uint32_t>(WriterStop::kRun));
    const pid_t pid = SpawnWriter(config_, *shm_, sockets_, access_log_fd_.get());
    if (pid < 0) {
      KINGX_LOG_ERROR("fork of the writer failed: %s", std::strerror(errno));
      writer_backoff_.Died(NowMs());
      return;
    }
    writer_pid_ = pid;
    shm_->control().writer_pid.store(pid);
    KINGX_LOG_INFO("writer process %d started", static_cast<int>(pid));
  }

  // Starts a worker of index `index` in a free slot. false when no slot is free.
  bool StartWorker(uint32_t index, const Config& config) {
    for (uint32_t slot = 0; slot < workers_.size(); ++slot) {
      if (workers_[slot].pid == 0 && shm_->slot(slot).state.load() == static_cast<uint32_t>(SlotState::kFree)) {
        StartWorkerInSlot(slot, index, config);
        return true;
      }
    }
    KINGX_LOG_ERROR("no free worker slot for worker %u", index);
    return false;
  }

  void StartWorkerInSlot(uint32_t slot, uint32_t index, const Config& config) {
    SlotInfo& info = shm_->slot(slot);
    // Generations live in 24 bits of a token; 0 is skipped so a zeroed
    // token never matches a live worker.
    uint32_t generation = (info.generation.load() + 1) & 0xFFFFFFu;
    info.generation.store(generation == 0 ? 1 : generation);
    info.worker_index.store(index);
    info.state.store(static_cast<uint32_t>(SlotState::kRunning));
    if (worker_backoff_.size() <= index) worker_backoff_.resize(index + 1);
    worker_backoff_[index].started_ms = NowMs();
    worker_backoff_[index].due_ms = -1;
    const pid_t pid = SpawnWorker(config, *shm_, sockets_, slot, index, access_log_fd_.get());
    if (pid < 0) {
      KINGX_LOG_ERROR("fork of worker %u failed: %s", index, std::strerror(errno));
      info.state.store(static_cast<uint32_t>(SlotState::kFree));
      worker_backoff_[index].Died(NowMs());
      return;
    }
    info.pid.store(pid);
    Worker& w = workers_[slot];
    w.pid = pid;
    w.worker_index = index;
    w.old = false;
    w.config = std::make_unique<Config>(config);
    KINGX_LOG_INFO("worker process %d started (index %u, slot %u)", static_cast<int>(pid), index, slot);
  }

  void SignalWorkers(int sig, bool only_current) {
    for (const Worker& w : workers_) {
      if (w.pid > 0 && (!only_current || !w.old)) kill(w.pid, sig);
    }
  }

  int LiveWorkers() const {
    int n = 0;
    for (const Worker& w : workers_) n += w.pid > 0 ? 1 : 0;
    return n;
  }

  // ---- the loop ----

  void Loop() {
    sigset_t empty;
    sigemptyset(&empty);
    // Bounded by the stop logic: once stopping, every child gets TERM at the
    // graceful deadline and KILL after kKillAfterMs, so children end and so
    // does the loop.
    for (;;) {
      if (stopping_ != Stop::kNone && LiveWorkers() == 0 && writer_pid_ == 0) return;
      ArmTimer();
      sigsuspend(&empty);
      if (g_reap) {
        g_reap = 0;
        Reap();
      }
      if (g_terminate) {
        g_terminate = 0;
        BeginStop(Stop::kFast);
      }
      if (g_quit) {
        g_quit = 0;
        BeginStop(Stop::kGraceful);
      }
      if (g_reload) {
        g_reload = 0;
        if (stopping_ == Stop::kNone) Reload();
      }
      if (g_reopen) {
        g_reopen = 0;
        Reopen();
      }
      if (g_upgrade) {
        g_upgrade = 0;
        KINGX_LOG_WARN("%s", kUsr2IgnoredLine);
      }
      g_alarm = 0;
      RunDueWork();
    }
  }

  enum class Stop { kNone, kGraceful, kFast };

  void BeginStop(Stop how) {
    if (how == Stop::kGraceful && stopping_ != Stop::kNone) return;
    if (how == Stop::kFast && stopping_ == Stop::kFast) return;
    stopping_ = how;
    shm_->control().draining.store(1);
    if (how == Stop::kFast) writer_backoff_.due_ms = -1;
    for (Backoff& b : worker_backoff_) b.due_ms = -1;
    // No worker will be started again: drop the master's copies of the
    // listening sockets (nginx does the same on QUIT), so that once the
    // workers close theirs, new connections are refused at once instead of
    // waiting in a backlog nobody accepts and being reset at exit.
    CloseListenSockets(&sockets_);
    if (how == Stop::kFast) {
      KINGX_LOG_INFO("fast stop requested");
      SignalWorkers(SIGTERM, false);
      if (writer_pid_ > 0) kill(writer_pid_, SIGTERM);
      kill_at_ms_ = NowMs() + kKillAfterMs;
    } else {
      KINGX_LOG_INFO("graceful stop requested");
      for (Worker& w : workers_) w.old = w.pid > 0 ? true : w.old;
      SignalWorkers(SIGQUIT, false);
      MarkDraining();
      term_at_ms_ = NowMs() + kGracefulDeadlineMs;
      MaybeStopWriter();
    }
  }

  void MarkDraining() {
    for (uint32_t slot = 0; slot < workers_.size(); ++slot) {
      if (workers_[slot].pid > 0 && workers_[slot].old) {
        shm_->slot(slot).state.store(static_cast<uint32_t>(SlotState::kDraining));
      }
    }
  }

  // A writer is needed while serving, and during a graceful stop as long as
  // workers still finish requests that wait for write completions.
  bool WriterWanted() const {
    return stopping_ == Stop::kNone || (stopping_ == Stop::kGraceful && !writer_told_ && LiveWorkers() > 0);
  }

  // In a graceful stop the writer drains the queue once every worker is gone
  // (nothing can enqueue any more).
  void MaybeStopWriter() {
    if (stopping_ == Stop::kGraceful && LiveWorkers() == 0 && writer_pid_ > 0 && !writer_told_) {
      kill(writer_pid_, SIGQUIT);
      writer_told_ = true;
    }
  }

  void Reap() {
    // Bounded: each iteration reaps one child; waitpid returns 0 when none is left.
    for (;;) {
      int status = 0;
      const pid_t pid = waitpid(-1, &status, WNOHANG);
      if (pid <= 0) break;
      const int64_t now = NowMs();
      if (pid == writer_pid_) {
        const bool told = writer_told_;
        writer_pid_ = 0;
        writer_told_ = false;
        shm_->control().writer_pid.store(0);
        shm_->control().writer_ready.store(0);
        const bool expected = stopping_ != Stop::kNone || writer_restart_;
        const bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (expected && clean) {
          KINGX_LOG_INFO("writer process %d %s", static_cast<int>(pid), DescribeExit(status).c_str());
        } else {
          KINGX_LOG_ERROR("writer process %d %s", static_cast<int>(pid), DescribeExit(status).c_str());
        }
        if (stopping_ == Stop::kNone || (stopping_ == Stop::kGraceful && !told && LiveWorkers() > 0)) {
          if (writer_restart_) {
            writer_restart_ = false;
            StartWriter();
          } else {
            shm_->control().respawns.fetch_add(1);
            writer_backoff_.Died(now);
            KINGX_LOG_INFO("respawning the writer in %lld ms", static_cast<long long>(writer_backoff_.delay_ms));
          }
        }
        continue;
      }
      for (uint32_t slot = 0; slot < workers_.size(); ++slot) {
        Worker& w = workers_[slot];
        if (w.pid != pid) continue;
        const bool expected = w.old || stopping_ != Stop::kNone;
        if (expected && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
          KINGX_LOG_INFO("worker process %d %s", static_cast<int>(pid), DescribeExit(status).c_str());
        } else {
          KINGX_LOG_ERROR("worker process %d %s", static_cast<int>(pid), DescribeExit(status).c_str());
        }
        w.pid = 0;
        SlotInfo& info = shm_->slot(slot);
        // Its connections died with it (a worker that stopped cleanly counted
        // them closed already): the open connection gauges drop them.
        shm_->ForEachCounterStripe(slot, [&](uint32_t s) {
          http::SettleDeadOwner(*shm_->counters<http::Counters>(slot, s));
        });
        info.pid.store(0);
        info.state.store(static_cast<uint32_t>(SlotState::kFree));
        if (!expected) {
          // Respawn into the same slot: the generation bump makes the new
          // worker ignore completions meant for the dead one.
          shm_->control().respawns.fetch_add(1);
          if (worker_backoff_.size() <= w.worker_index) worker_backoff_.resize(w.worker_index + 1);
          worker_backoff_[w.worker_index].Died(now);
          respawn_slot_[w.worker_index] = slot;
          KINGX_LOG_INFO("respawning worker %u in %lld ms", w.worker_index,
                         static_cast<long long>(worker_backoff_[w.worker_index].delay_ms));
        }
        break;
      }
    }
    MaybeStopWriter();
  }

  void RunDueWork() {
    const int64_t now = NowMs();
    if (writer_pid_ == 0 && writer_backoff_.due_ms >= 0 && writer_backoff_.due_ms <= now && WriterWanted()) {
      StartWriter();
    }
    if (stopping_ == Stop::kNone) {
      for (uint32_t index = 0; index < worker_backoff_.size(); ++index) {
        Backoff& b = worker_backoff_[index];
        if (b.due_ms < 0 || b.due_ms > now) continue;
        b.due_ms = -1;
        if (index >= config_.workers) continue;  // a reload removed this index
        auto it = respawn_slot_.find(index);
        const uint32_t slot = it != respawn_slot_.end() ? it->second : 0;
        if (it != respawn_slot_.end() && workers_[slot].pid == 0 &&
            shm_->slot(slot).state.load() == static_cast<uint32_t>(SlotState::kFree)) {
          respawn_slot_.erase(it);
          StartWorkerInSlot(slot, index, config_);
        } else {
          StartWorker(index, config_);
        }
      }
    }
    if (stopping_ == Stop::kGraceful && term_at_ms_ > 0 && now >= term_at_ms_) {
      KINGX_LOG_WARN("graceful stop took longer than %lld ms: stopping fast",
                     static_cast<long long>(kGracefulDeadlineMs));
      term_at_ms_ = 0;
      stopping_ = Stop::kNone;  // let BeginStop escalate
      BeginStop(Stop::kFast);
    }
    if (stopping_ == Stop::kFast && kill_at_ms_ > 0 && now >= kill_at_ms_) {
      KINGX_LOG_WARN("children still running %lld ms after TERM: sending KILL", static_cast<long long>(kKillAfterMs));
      kill_at_ms_ = 0;
      SignalWorkers(SIGKILL, false);
      if (writer_pid_ > 0) kill(writer_pid_, SIGKILL);
    }
  }

  // Arms SIGALRM for the earliest pending deadline (or disarms it).
  void ArmTimer() {
    int64_t due = -1;
    auto consider = [&](int64_t t) {
      if (t > 0 && (due < 0 || t < due)) due = t;
    };
    if (writer_pid_ == 0 && writer_backoff_.due_ms >= 0 && WriterWanted()) {
      consider(std::max<int64_t>(writer_backoff_.due_ms, 1));
    }
    if (stopping_ == Stop::kNone) {
      for (const Backoff& b : worker_backoff_) {
        if (b.due_ms >= 0) consider(std::max<int64_t>(b.due_ms, 1));
      }
    }
    if (stopping_ == Stop::kGraceful) consider(term_at_ms_);
    if (stopping_ == Stop::kFast) consider(kill_at_ms_);
    itimerval t{};
    if (due >= 0) {
      const int64_t in_ms = std::max<int64_t>(due - NowMs(), 1);
      t.it_value.tv_sec = in_ms / 1000;
      t.it_value.tv_usec = (in_ms % 1000) * 1000;
    }
    setitimer(ITIMER_REAL, &t, nullptr);
  }

  // ---- reload and reopen ----

  void Reload() {
    KINGX_LOG_INFO("reload requested: reading the configuration again");
    auto parsed = ParseCommandLine(argc_, argv_);
    if (!parsed.ok()) {
      KINGX_LOG_ERROR("reload failed, keeping the current configuration: %s",
                      std::string(parsed.status().message()).c_str());
      return;
    }
    Config next = parsed->config;
    // A log file a start could not open makes the whole configuration bad:
    // nothing of it is applied (new workers would run without an access log).
    // Each is opened once, here, without waiting (a FIFO with no reader is
    // refused), and kept for what uses it: no second open, so a FIFO's reader
    // never sees a writer come and go.
    const bool log_changed = next.error_log != config_.error_log || next.log_level != config_.log_level;
    // Counted before the new logs open: kTransientDescriptors covers them.
    const uint64_t open_now = CountOpenDescriptors(SoftOpenFileLimit());
    LogFd next_access_log;
    LogFd next_error_log;
    engine::Status opened = OpenLogFile(next.access_log, kAccessLogWhat, &next_access_log);
    if (opened.ok() && next.error_log != config_.error_log) {
      opened = OpenLogFile(next.error_log, kErrorLogWhat, &next_error_log);
    }
    if (!opened.ok()) {
      KINGX_LOG_ERROR("reload failed, keeping the current configuration: %s", std::string(opened.message()).c_str());
      return;
    }
    // What only a restart can change: keep the running values, say so.
    auto keep = [&](bool differs, const char* what) {
      if (differs) KINGX_LOG_WARN("reload: %s cannot change without a restart; keeping the current value", what);
    };
    keep(next.data_dir != config_.data_dir, "--data");
    next.data_dir = config_.data_dir;
    keep(next.read_only != config_.read_only, "--read-only");
    next.read_only = config_.read_only;
    next.keys_scratch_dir = config_.keys_scratch_dir;
    bool listen_differs = next.listen.size() != config_.listen.size() || next.accept != config_.accept ||
                          next.admin_listen.has_value() != config_.admin_listen.has_value();
    for (size_t i = 0; !listen_differs && i < next.listen.size(); ++i) {
      listen_differs = next.listen[i].ToString() != config_.listen[i].ToString();
    }
    if (!listen_differs && next.admin_listen) {
      listen_differs = next.admin_listen->ToString() != config_.admin_listen->ToString();
    }
    keep(listen_differs, "--listen / --accept / --admin-listen");
    next.listen = config_.listen;
    next.accept = config_.accept;
    next.admin_listen = config_.admin_listen;
    // The process layout itself: a master with children never turns into a
    // single process, nor back.
    keep(next.single_process != config_.single_process, "--single-process");
    next.single_process = config_.single_process;
    keep(next.write_queue_bytes != config_.write_queue_bytes, "--write-queue-bytes");
    next.write_queue_bytes = config_.write_queue_bytes;
    // The pid file written at start is the one a stop removes; a new path
    // would never be written.
    keep(next.pid_file != config_.pid_file, "--pid");
    next.pid_file = config_.pid_file;

    uint32_t free_slots = 0;
    for (uint32_t slot = 0; slot < workers_.size(); ++slot) {
      free_slots += workers_[slot].pid == 0 && shm_->slot(slot).state.load() == 0 ? 1 : 0;
    }
    if (next.workers > free_slots) {
      KINGX_LOG_ERROR("reload failed, keeping the current configuration: %u workers need %u free slots, %u are "
                      "free (old workers still draining, or more workers than a restart allows)",
                      next.workers, next.workers, free_slots);
      return;
    }
    if (std::string e = ReloadDescriptorShortfall(next, open_now); !e.empty()) {
      KINGX_LOG_ERROR("reload failed, keeping the current configuration: %s", e.c_str());
      return;
    }
    if (engine::Status s = GrowListenSockets(&sockets_, next.workers); !s.ok()) {
      KINGX_LOG_ERROR("reload failed, keeping the current configuration: %s", s.ToString().c_str());
      return;
    }
    if (next.error_log != config_.error_log) {
      InstallErrorLog(next_error_log.release(), next.error_log, next.log_level);
    } else {
      SetErrorLogLevel(next.log_level);
    }
    access_log_fd_ = std::move(next_access_log);
    // Key/value limits and the compression level live in the workers (the
    // new ones get them); only what the writer itself uses restarts it
    // (reads go on from the last index during its recovery). The running
    // writer takes a new error log or level from the note (USR1, below).
    const bool log_published = !log_changed || PublishLogSettings(next);
    const bool writer_changed = WriterSettingsDiffer(config_, next) || !log_published;

    // Old workers stop accepting and drain; new ones start beside them.
    for (uint32_t slot = 0; slot < workers_.size(); ++slot) {
      if (workers_[slot].pid > 0) workers_[slot].old = true;
    }
    respawn_slot_.clear();
    for (Backoff& bo : worker_backoff_) bo.due_ms = -1;
    config_ = next;
    TuneListeners();
    for (uint32_t i = 0; i < config_.workers; ++i) StartWorker(i, config_);
    for (uint32_t slot = 0; slot < workers_.size(); ++slot) {
      Worker& w = workers_[slot];
      if (w.pid > 0 && w.old) {
        shm_->slot(slot).state.store(static_cast<uint32_t>(SlotState::kDraining));
        kill(w.pid, SIGQUIT);
      }
    }
    if (writer_changed && writer_pid_ > 0) {
      // The writer picks its settings up by restarting: it drains what is
      // queued, exits, and the reap starts the new one at once.
      KINGX_LOG_INFO("reload: settings of the writer changed, restarting the writer");
      writer_restart_ = true;
      kill(writer_pid_, SIGQUIT);
    } else if (log_changed && writer_pid_ > 0) {
      // A new log or level is applied in place, as nginx does: the writer
      // opens the published path at the published level (a reopen too).
      kill(writer_pid_, SIGUSR1);
    }
    shm_->control().config_generation.fetch_add(1);
    KINGX_LOG_INFO("reload done: %u new worker(s) started, old workers are draining", config_.workers);
  }

  // Checks a reload to `next` against the open file limit as a start does:
  // a worker's minimum, then what the master holds (`open_now`, counted
  // before the reload opened its logs) plus the listeners of new worker
  // indices (master_descriptors.h). "" when it fits; otherwise the refusal,
  // naming the limit and the setting.
  std::string ReloadDescriptorShortfall(const Config& next, uint64_t open_now) const {
    const uint64_t limit = SoftOpenFileLimit();
    if (limit == RLIM_INFINITY) return "";
    if (std::string e = DescriptorLimitTooLow(next, limit, "open file limit"); !e.empty()) return e;
    const uint32_t indices = sockets_.fds.empty() ? 0 : static_cast<uint32_t>(sockets_.fds[0].size());
    return MasterLimitShortfall(next, MasterDescriptorsAfterReload(next, open_now, indices), open_now, limit,
                                "open file limit");
  }

  static uint64_t SoftOpenFileLimit() {
    struct rlimit lim;
    return getrlimit(RLIMIT_NOFILE, &lim) == 0 ? lim.rlim_cur : RLIM_INFINITY;
  }

  // The error log's path and level for the running writer (log_settings.h).
  // false when they cannot be published (a path longer than the note holds).
  bool PublishLogSettings(const Config& config) {
    if (shm_->control().log_settings.Publish(config.error_log, config.log_level)) return true;
    KINGX_LOG_WARN("the error log's path is longer than %zu bytes: the writer takes a change of it by restarting",
                   LogSettingsNote::kMaxPathBytes);
    return false;
  }

  void Reopen() {
    KINGX_LOG_INFO("reopening log files");
    if (engine::Status s = ReopenErrorLog(); !s.ok()) KINGX_LOG_ERROR("%s", s.ToString().c_str());
    // The master's copy of the access log is the one workers started from
    // now on (respawns) write to.
    if (access_log_fd_.get() >= 0) {
      LogFd reopened;
      if (engine::Status s = OpenLogFile(config_.access_log, kAccessLogWhat, &reopened); !s.ok()) {
        KINGX_LOG_ERROR("%s (new workers keep the current access log)", s.ToString().c_str());
      } else {
        access_log_fd_ = std::move(reopened);
      }
    }
    SignalWorkers(SIGUSR1, false);
    if (writer_pid_ > 0) kill(writer_pid_, SIGUSR1);
  }

  Config config_;
  const int argc_;
  const char* const* argv_;
  DataDirHold data_dir_;  // the data directory's lock (and a read-only server's scratch directory)
  std::unique_ptr<SharedMemory> shm_;
  ListenSockets sockets_;
  LogFd access_log_fd_;  // config_.access_log, opened for the workers (src/conf/log_file.h)
  std::string pid_file_written_;
  std::vector<Worker> workers_;  // by slot
  std::vector<Backoff> worker_backoff_;  // by worker index
  std::unordered_map<uint32_t, uint32_t> respawn_slot_;  // worker index -> slot it died in
  pid_t writer_pid_ = 0;
  Backoff writer_backoff_;
  bool writer_told_ = false;     // QUIT sent to the writer for a graceful stop
  bool writer_restart_ = false;  // the writer was told to stop for a reload
  Stop stopping_ = Stop::kNone;
  int64_t term_at_ms_ = 0;
  int64_t kill_at_ms_ = 0;
};

}  // namespace

int RunMaster(const Config& config, int argc, const char* const* argv) {
  Master master(config, argc, argv);
  return master.Run();
}

}  // namespace kingx
