// Forking the writer and the workers: what a child does between fork() and
// RunWriter / RunUvWorker / RunThreadWorker, in one place.
//
// Master only, from its single thread (fork from a single-threaded process).
// In the child: signal dispositions reset to default and the mask emptied
// (SIGPIPE ignored), PR_SET_PDEATHSIG = SIGTERM (a master killed with -9 takes
// its children with it), the process named with PR_SET_NAME, fds the child
// must not hold closed (other workers' reuseport sockets; every listen socket
// in the writer). The child never returns: it _exit()s with the entry
// point's status.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "src/conf/config.h"
#include "src/ipc/shm.h"
#include "src/master/listen.h"

namespace kingx {

// Sets the name `ps -o comm`, pgrep and /proc/PID/comm show (15 bytes max),
// which is also the process name fail points match (engine/kill_point.h).
// Call before the process starts threads.
void SetProcessName(const char* name);

// Forks the writer. Returns the child's pid, or -1 with errno set (fork failed).
// `access_log_fd` (the master's, -1 = none) is closed in the writer.
pid_t SpawnWriter(const Config& config, SharedMemory& shm, const ListenSockets& sockets, int access_log_fd);

// Forks a worker into `slot` (whose generation and state the caller already
// set in the slot table) serving worker index `worker_index`. The worker
// writes its access log to its copy of `access_log_fd` (the master's, opened
// by OpenLogFile for config.access_log; -1 = no access log).
// Returns the child's pid, or -1 with errno set.
pid_t SpawnWorker(const Config& config, SharedMemory& shm, const ListenSockets& sockets, uint32_t slot,
                  uint32_t worker_index, int access_log_fd);

// Runs the serving model of config.model on ctx-like arguments in the calling
// process (used by the forked child and by --single-process). Opens the
// engine::Reader, takes `access_log_fd` (owned from here; -1 = no access
// log), builds the WorkerContext, runs the worker, flushes the access log.
// Returns the worker's exit status.
int RunWorkerHere(const Config& config, SharedMemory& shm, const ListenSockets& sockets, uint32_t slot,
                  uint32_t worker_index, int access_log_fd);

}  // namespace kingx
