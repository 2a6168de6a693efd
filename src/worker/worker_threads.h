// The thread-pool model (KingServer's): blocking I/O, one connection per
// thread for the connection's whole life.
//
// RunThreadWorker starts, inside the worker process:
//   - one acceptor thread that polls the listen fds handed over in the
//     WorkerContext, accepts, sets TCP_NODELAY and pushes the socket into a
//     bounded queue (when the queue is full the acceptor stops accepting, so
//     clients wait in the kernel backlog, as they do in KingServer; during a
//     garbage flood it accepts at the pace of a FloodGuard, as the event
//     model does);
//   - N pool threads (ctx's configured thread count, default 150) that each
//     take one socket and serve it with blocking recv/send until it closes,
//     running the same http::Connection and KvService as the event model
//     (one send or sendmsg per flush: SendGathered);
//   - one completion dispatcher thread that blocks on this worker slot's
//     completion eventfd, drains the completions and wakes the pool thread
//     each one is for (its Doorbell: no spinning), also one that is idle or
//     serving another connection since the write's own connection ended.
//
// Signals (sigtimedwait in the calling thread; every thread the worker starts
// blocks them): QUIT graceful stop (stop accepting, finish in-flight
// requests, close idle connections after a short grace, exit), TERM/INT fast
// stop (shutdown(2) every socket, join), USR1 reopen the access log.
#pragma once

namespace kingx {

struct WorkerContext;

// Runs the thread-pool worker until a stop signal has been served, joins every
// thread it started and returns the process exit status (0 after a clean
// stop; non-zero when a thread could not be started, after logging why).
//
// Call once from the worker process's main thread, after fork and before any
// other thread exists in the process. `ctx` must outlive the call. Every pool
// thread shares ctx's engine::Reader (thread-safe) and write-queue slot.
int RunThreadWorker(WorkerContext& ctx);

}  // namespace kingx
