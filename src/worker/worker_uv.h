// The event-model worker: one single-threaded libuv loop per worker process.
//
// RunUvWorker serves HTTP on the listening sockets the master handed over in
// the WorkerContext (reuseport: this worker's own socket; shared: the common
// one), answers reads from the shared index through engine::Reader, hands
// writes to the shared write queue and answers them when the writer posts the
// completion on this worker's slot (its eventfd is watched by the loop).
//
// Signals, handled by the loop through uv_signal (the worker process only;
// in --single-process mode the caller decides which signals reach it):
//   QUIT  graceful stop: stop accepting, /readyz turns 503, every response
//         from then on carries Connection: close, idle keep-alive connections
//         are closed after a short grace, in-flight requests finish, exit 0.
//   TERM, INT  fast stop: close every connection at once, exit 0.
//   USR1  reopen the access log.
//   HUP   ignored in a worker (the master reloads by starting new workers
//         and sending QUIT to the old ones).
//
// While a request waits for the storage (queue room or its completion) its
// socket is not read: the kernel buffers what the client sends meanwhile.
//
// This header is the only public surface of src/worker/worker_uv.cc, which is the
// only file of the project that includes <uv.h>.
#pragma once

namespace kingx {

struct WorkerContext;

// Runs the worker's event loop until a stop signal has been served, then closes every libuv handle and returns the process
// exit status: 0 after a clean stop, non-zero when the loop could not start
// (a listen fd could not be adopted, the completion eventfd is invalid, ...;
// the reason is written to the error log first).
//
// Call from the worker process's main thread, after fork, once. `ctx` must
// outlive the call; the worker never closes the fds it does not own (it
// closes its copies of the listen fds when it stops accepting).
int RunUvWorker(WorkerContext& ctx);

}  // namespace kingx
