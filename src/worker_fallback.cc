// TEMPORARY: weak fallbacks for the worker entry points until the workers
// engineer's src/worker_uv.cc and src/worker_threads.cc are in the build
// (the kingx executable links the server library whole, so their strong
// definitions replace these). Lets `kingx --help` and `kingx -t` be built
// and tested early. Remove this file once both are in the workers block.
#include "src/log.h"
#include "src/worker_context.h"
#include "src/worker_threads.h"
#include "src/worker_uv.h"

namespace kingx {

__attribute__((weak)) int RunUvWorker(WorkerContext&) {
  KINGX_LOG_ERROR("this build has no event-model worker (src/worker_uv.cc not built)");
  return 2;
}

__attribute__((weak)) int RunThreadWorker(WorkerContext&) {
  KINGX_LOG_ERROR("this build has no thread-pool worker (src/worker_threads.cc not built)");
  return 2;
}

}  // namespace kingx
