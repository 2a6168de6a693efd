// WorkerContext: everything a worker process receives from the master.
//
// The master (src/master/child_process.cc) builds it in the child right after
// fork, opens the engine::Reader on the shared index, then calls RunUvWorker
// (src/worker/worker_uv.h) or RunThreadWorker (src/worker/worker_threads.h) by
// config.model. In
// --single-process mode the same context is built in the one process, the
// writer running in a thread beside it.
//
// State on entry to RunUvWorker / RunThreadWorker:
//  - the signal mask is empty and every signal has its default disposition,
//    except SIGPIPE (ignored); the worker installs its own QUIT/TERM/INT/USR1
//    handling, and takes HUP and USR2 on the master's behalf (master_signals.h);
//  - the error log is initialised (src/conf/log.h); access_log is open (or disabled);
//  - the reuseport sockets of other worker indices are closed (the shared
//    mapping's eventfds and the data directory's LOCK fd stay open); the
//    listen fds are non-blocking, listening, CLOEXEC;
//  - the process is named "kingx-worker" (prctl PR_SET_NAME).
//
// Completions: the worker watches completion_fd (an eventfd, non-blocking)
// for readability; on wake it read(2)s the 8-byte counter (resets it), then
// calls DrainCompletions. The writer writes the fd after each batch that has
// completions for this slot, so draining after every wake never misses one.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "engine/index.h"
#include "src/conf/access_log.h"
#include "src/conf/config.h"
#include "src/ipc/completion_ring.h"
#include "src/ipc/shm.h"
#include "src/ipc/write_queue.h"

namespace kingx::engine {
class Reader;
class KeyLister;
}

namespace kingx {

struct WorkerContext {
  // This worker's configuration (the one it was started with; a reload starts
  // new workers with the new one).
  Config config;
  uint32_t worker_index = 0;  // 0 .. config.workers-1
  uint32_t slot = 0;          // row in the slot table; completions ring; counters
  uint32_t generation = 0;    // slot generation: MakeToken(generation, id)

  SharedMemory* shm = nullptr;     // the shared mapping (outlives the worker)
  WriteQueue* queue = nullptr;     // == &shm->queue()
  engine::Reader* reader = nullptr;  // thread-safe reader on the shared index and data dir
  engine::KeyLister* lister = nullptr;  // thread-safe listing over the shared keyspace region

  // Listening sockets this worker accepts on: for reuseport, this worker
  // index's socket of each --listen address; for shared, the common sockets.
  std::vector<int> listen_fds;
  // The --admin-listen socket (-1 when off). /admin/* is served only there;
  // it is shared by every worker (never reuseport).
  int admin_listen_fd = -1;
  int completion_fd = -1;          // == shm->slot_eventfd(slot)

  AccessLog* access_log = nullptr;  // this process's; never null (may be disabled)

  // ---- helpers (any thread of the worker) ----

  // /readyz: the writer finished recovery, the index is ready, and the server
  // is not stopping. (A worker that received QUIT also answers 503 by itself.)
  bool StorageReady() const {
    return shm->control().writer_ready.load(std::memory_order_acquire) == 1 &&
           shm->index().counters().ready.load(std::memory_order_acquire) == 1;
  }
  bool ServerDraining() const {
    return shm->control().draining.load(std::memory_order_acquire) != 0;
  }
  // This slot's http counters (T = http::Counters): stripe `stripe`, one per
  // thread that counts (SharedMemory::counters; stripes beyond 0 are the
  // thread model's). The thread marks its stripe (MarkCounterStripe) before
  // its first count: readers sum marked stripes only.
  template <class T>
  T* Counters(uint32_t stripe = 0) const { return shm->counters<T>(slot, stripe); }
  void MarkCounterStripe(uint32_t stripe = 0) const { shm->MarkCounterStripe(slot, stripe); }

  // Drains this slot's completion ring (one thread at a time), skipping
  // completions of a previous occupant. Returns how many fn saw.
  size_t DrainCompletions(const std::function<void(const Completion&)>& fn) const {
    return shm->completions(slot).Drain(generation, fn);
  }
};

}  // namespace kingx
