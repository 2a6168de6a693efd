// Offload: where the serving code's blocking file work runs (an online
// backup's reads of segment files) so that an event loop never waits for the
// disk: on a cold page cache every read is a disk access, and the loop's
// other clients would wait behind it.
//
// Queue(work, done): work() runs on another thread; it may touch only what
// it owns (what the callbacks captured) and thread-safe objects. Then done()
// runs on the thread that owns the Offload (the event loop), never inside
// Queue, also when work() could not run (the callbacks must tell from their
// own state). Both callbacks are destroyed on the owning thread. Returns
// false when the work cannot be queued: neither callback runs.
//
// The event-model worker implements it over libuv's thread pool
// (src/worker/worker_uv.cc); where no Offload is given (the thread model,
// whose pool threads may block, and tests) the work is done inline.
// Threading: the owning thread only.
#pragma once

#include <functional>

namespace kingx {

class Offload {
 public:
  virtual ~Offload() = default;
  virtual bool Queue(std::function<void()> work, std::function<void()> done) = 0;
};

}  // namespace kingx
