// The descriptors the master holds, counted rather than assumed, so that a
// start (and a reload that raises --workers) is refused before it would
// fail on EMFILE, with a message naming the limit and the setting.
//
// What the master holds (src/master/master.cc):
//   - what is open when it checks: the standard streams, whatever its parent
//     let it inherit, the error log (or its own description of stderr:
//     src/conf/log_sink.h) and the access log: counted (CountOpenDescriptors);
//   - the data directory's hold: its LOCK file and the directory, and with
//     --read-only the scratch directory's lock (kDataDirHoldDescriptors);
//   - an eventfd per worker slot (2 × --workers + 2, fixed at start) and the
//     writer's;
//   - a listener per --listen address and worker index (reuseport; one per
//     address when shared) and the admin one; listeners are never closed
//     before the server stops, so a reload that lowers --workers keeps them;
//   - kTransientDescriptors opened for a moment while all of the above are
//     held: a reload opens the new access log and the new error log before
//     it closes the old ones (a USR1 opens one at a time; the pid file, the
//     configuration file and /proc/self/fd are read one at a time before).
// The children (writer, workers) have limits of their own: their need is
// src/worker/serve_options.h's.
//
// Master thread (or `kingx -t`). Only CountOpenDescriptors makes system calls.
#pragma once

#include <cstdint>
#include <string>

#include "src/conf/config.h"

namespace kingx {

inline constexpr uint64_t kTransientDescriptors = 2;

// The descriptors this process has open now: the entries of /proc/self/fd
// (less the one that reads it); without /proc (or without a descriptor left
// to read it with), fcntl(F_GETFD) on each number below `limit` (the soft
// open file limit).
uint64_t CountOpenDescriptors(uint64_t limit);

// The data directory's hold: 2, or 3 with --read-only.
uint64_t DataDirHoldDescriptors(const Config& c);

// What a master holding `open_now` descriptors (logs already open) needs at
// most once it serves `c`: open_now + the hold + the eventfds + the
// listeners of c.workers + kTransientDescriptors.
uint64_t MasterDescriptorsAtStart(const Config& c, uint64_t open_now);

// What a running master holding `open_now` descriptors needs at most once a
// reload to `next` is done, with listeners open now for `listen_indices`
// worker indices per address: open_now + the listeners of new indices +
// kTransientDescriptors.
uint64_t MasterDescriptorsAfterReload(const Config& next, uint64_t open_now, uint32_t listen_indices);

// "" when `need` fits `limit`; otherwise the refusal, naming --workers, the
// need and what it is made of, the limit (`which`: "open file limit",
// "hard open file limit") and what to do.
std::string MasterLimitShortfall(const Config& c, uint64_t need, uint64_t open_now, uint64_t limit,
                                 const char* which);

}  // namespace kingx
