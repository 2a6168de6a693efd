// Child set-up after fork (see child_process.h).
#include "src/master/child_process.h"

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "engine/env.h"
#include "engine/key_lister.h"
#include "engine/kill_point.h"
#include "engine/reader.h"
#include "src/conf/access_log.h"
#include "src/conf/log.h"
#include "src/conf/observed_env.h"
#include "src/worker/serve_options.h"
#include "src/worker/worker_context.h"
#include "src/worker/worker_threads.h"
#include "src/worker/worker_uv.h"
#include "src/writer/writer_compaction.h"
#include "src/writer/writer_process.h"

namespace kingx {
namespace {

// Default dispositions for every signal the master handles, SIGPIPE ignored;
// the mask (the master's: everything it handles blocked) is emptied when
// `unblock`, the state the worker entry points document.
void ResetSignals(bool unblock) {
  struct sigaction sa {};
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = SIG_DFL;
  for (int sig : {SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGCHLD, SIGALRM}) sigaction(sig, &sa, nullptr);
  sa.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &sa, nullptr);
  if (!unblock) return;
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

void DieWithParent() {
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  // The master may have died between fork and prctl.
  if (getppid() == 1) _exit(0);
}

}  // namespace

void SetProcessName(const char* name) {
  prctl(PR_SET_NAME, name, 0, 0, 0);
  engine::SetFailPointProcess(name);  // the name a fail point's process filter matches
}

pid_t SpawnWriter(const Config& config, SharedMemory& shm, const ListenSockets& sockets, int access_log_fd) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  SetProcessName("kingx-writer");
  DieWithParent();
  for (int fd : AllListenFds(sockets)) close(fd);
  if (access_log_fd >= 0) close(access_log_fd);
  // Signals stay blocked (the master's mask) until RunWriter has installed
  // its handlers, so a QUIT sent right now is not lost nor fatal.
  ResetSignals(/*unblock=*/false);
  _exit(RunWriter(config, shm, /*install_signals=*/true, CompactionHooks(shm)));
}

pid_t SpawnWorker(const Config& config, SharedMemory& shm, const ListenSockets& sockets, uint32_t slot,
                  uint32_t worker_index, int access_log_fd) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  SetProcessName("kingx-worker");
  DieWithParent();
  ResetSignals(/*unblock=*/true);
  // Keep only this worker's sockets (and the shared admin socket).
  const std::vector<int> mine = WorkerListenFds(sockets, worker_index, config.workers);
  for (int fd : AllListenFds(sockets)) {
    if (fd != sockets.admin_fd && std::find(mine.begin(), mine.end(), fd) == mine.end()) close(fd);
  }
  shm.KeepOnlySlotEventFd(slot);
  _exit(RunWorkerHere(config, shm, sockets, slot, worker_index, access_log_fd));
}

int RunWorkerHere(const Config& config, SharedMemory& shm, const ListenSockets& sockets, uint32_t slot,
                  uint32_t worker_index, int access_log_fd) {
  engine::Options options = config.EngineOptions();
  options.log = [](const std::string& line) { KINGX_LOG_WARN("engine: %s", line.c_str()); };
  options.log_error = [](const std::string& line) { KINGX_LOG_ERROR("engine: %s", line.c_str()); };
  // Read failures (EIO) are logged, rate-limited, on the way to the engine.
  ObservedEnv env(engine::PosixEnv(), "worker " + std::to_string(worker_index), nullptr);
  // Its two segment caches (reads, listings) within the worker's share of
  // its descriptors (serve_options.h).
  if (const uint64_t limit = env.OpenFileLimit(); limit != 0) {
    options.max_open_segments =
        static_cast<uint32_t>(std::min<uint64_t>(options.max_open_segments, SegmentCacheBound(limit)));
  }
  engine::Reader reader(env, config.data_dir, options, shm.index());
  engine::KeyLister lister(env, config.data_dir, options, shm.index(), shm.keyspace());
  AccessLog access_log;
  access_log.Adopt(access_log_fd, config.access_log, config.access_log_format);

  WorkerContext ctx;
  ctx.config = config;
  ctx.worker_index = worker_index;
  ctx.slot = slot;
  ctx.generation = shm.slot(slot).generation.load();
  ctx.shm = &shm;
  ctx.queue = &shm.queue();
  ctx.reader = &reader;
  ctx.lister = &lister;
  ctx.listen_fds = WorkerListenFds(sockets, worker_index, config.workers);
  ctx.admin_listen_fd = sockets.admin_fd;
  ctx.completion_fd = shm.slot_eventfd(slot);
  ctx.access_log = &access_log;

  KINGX_LOG_DEBUG("worker %u started in slot %u (generation %u)", worker_index, slot, ctx.generation);
  const int status = config.model == Model::kThreads ? RunThreadWorker(ctx) : RunUvWorker(ctx);
  access_log.Flush();
  return status;
}

}  // namespace kingx
