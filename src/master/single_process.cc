// --single-process (nginx's "master_process off"): the writer in a thread,
// one worker in the calling thread, for gdb, rr and ThreadSanitizer.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>

#include "engine/env.h"
#include "src/conf/log.h"
#include "src/conf/log_file.h"
#include "src/ipc/shm.h"
#include "src/ipc/write_queue.h"
#include "src/master/child_process.h"
#include "src/master/data_dir.h"
#include "src/master/listen.h"
#include "src/master/master.h"
#include "src/master/startup_check.h"
#include "src/writer/writer_compaction.h"
#include "src/writer/writer_process.h"

namespace kingx {

int RunSingleProcess(const Config& config_in) {
  Config config = config_in;
  config.workers = 1;
  if (engine::Status s = InitErrorLog(config.error_log, config.log_level); !s.ok()) {
    std::fprintf(stderr, "kingx: %s\n", s.ToString().c_str());
    return 1;
  }
  LogFd access_log;
  if (engine::Status s = OpenLogFile(config.access_log, kAccessLogWhat, &access_log); !s.ok()) {
    KINGX_LOG_ERROR("%s", s.ToString().c_str());
    return 1;
  }
  SetProcessName("kingx-single");
  std::string limit_warning;
  if (engine::Status s = RaiseOpenFileLimit(config, &limit_warning); !s.ok()) {
    KINGX_LOG_ERROR("%s", std::string(s.message()).c_str());
    return 1;
  }
  if (!limit_warning.empty()) KINGX_LOG_WARN("%s", limit_warning.c_str());
  auto hold = HoldDataDir(config.data_dir, config.read_only);
  if (!hold.ok()) {
    KINGX_LOG_ERROR("%s", std::string(hold.status().message()).c_str());
    return 1;
  }
  config.keys_scratch_dir = hold->scratch_dir();
  auto shm = CreateSharedMemory(config, 2);
  if (!shm.ok()) {
    KINGX_LOG_ERROR("cannot create shared memory: %s", shm.status().ToString().c_str());
    return 1;
  }
  auto sockets = OpenListenSockets(config, 1);
  if (!sockets.ok()) {
    KINGX_LOG_ERROR("%s", sockets.status().ToString().c_str());
    return 1;
  }
  for (const ListenAddress& a : sockets->addresses) KINGX_LOG_INFO("listening on %s", a.ToString().c_str());
  if (!config.pid_file.empty()) {
    FILE* pid_file = std::fopen(config.pid_file.c_str(), "w");
    if (pid_file == nullptr || std::fprintf(pid_file, "%d\n", static_cast<int>(getpid())) < 0 ||
        std::fclose(pid_file) != 0) {
      KINGX_LOG_ERROR("cannot write pid file %s: %s", config.pid_file.c_str(), std::strerror(errno));
      CloseListenSockets(&*sockets);
      return 1;
    }
  }

  SharedMemory& mem = **shm;
  SlotInfo& slot = mem.slot(0);
  slot.generation.store(1);
  slot.pid.store(getpid());
  slot.state.store(static_cast<uint32_t>(SlotState::kRunning));

  // The writer thread blocks every signal, so they all reach the worker
  // (its uv_signal handles or its sigwait thread).
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int writer_status = 0;
  const WriterHooks hooks = CompactionHooks(mem);
  std::thread writer([&] { writer_status = RunWriter(config, mem, /*install_signals=*/false, hooks); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  struct sigaction sa {};
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &sa, nullptr);

  const int status = RunWorkerHere(config, mem, *sockets, 0, 0, access_log.release());

  mem.control().draining.store(1);
  slot.state.store(static_cast<uint32_t>(SlotState::kFree));
  mem.control().writer_stop.store(static_cast<uint32_t>(WriterStop::kDrain));
  mem.queue().Wake();
  writer.join();
  CloseListenSockets(&*sockets);
  if (!config.pid_file.empty()) unlink(config.pid_file.c_str());
  KINGX_LOG_INFO("single-process server stopped");
  return status != 0 ? status : writer_status;
}

}  // namespace kingx
