// The master process: supervises the writer and the workers (nginx's
// ngx_master_process_cycle), and the --single-process variant.
//
// RunMaster, from main() of the kingx binary, in a process that has no other
// thread:
//  1. opens the error log, creates the data directory and takes its LOCK
//     (held for the master's life; the writer opens the engine with
//     take_lock = false), writes --pid;
//  2. creates the shared mapping (src/ipc/shm.h) and the listening sockets
//     (src/master/listen.h);
//  3. forks the writer, then config.workers workers, each into a free slot;
//  4. loops on sigsuspend and acts on flags set by the signal handlers:
//       TERM/INT  fast stop: TERM to every child, wait, exit;
//       QUIT      graceful stop: draining flag set, QUIT to the workers, and
//                 once they are gone QUIT to the writer (drains + syncs);
//       HUP       reload: re-parse the same command line; on error log it and
//                 keep serving; else start new workers (new config) in free
//                 slots and send QUIT to the old ones;
//       USR1      reopen the error log, forward USR1 to every child;
//       USR2      ignored with a warn line (no binary upgrade; its default
//                 action would end the server);
//       CHLD      reap; respawn a dead writer or worker (unless stopping)
//                 into the same slot with a new generation; a child that
//                 dies within 2 s of its start waits before the next start
//                 (100 ms, doubling up to 10 s). Each death is logged.
//     A graceful stop that lasts over 60 s turns into a fast stop; children
//     still alive 10 s after TERM get KILL.
//     HUP: --data, --listen, --accept, --admin-listen and --write-queue-bytes
//     need a restart (a warning is logged and the running value kept); a
//     change of engine settings restarts the writer (it drains first).
//  5. removes the pid file and returns the exit status.
// It never creates a thread, so every fork is from a single-threaded state.
#pragma once

#include "src/conf/config.h"

namespace kingx {

// Runs the server as described above until stopped. argc/argv are kept for
// HUP (the command line is parsed again, the config file re-read). Returns
// the process exit status: 0 after a requested stop, 1 when start-up failed
// (the reason is in the error log).
int RunMaster(const Config& config, int argc, const char* const* argv);

// --single-process: the writer runs in a thread, one worker runs in the
// calling thread (signals reach the worker's handling; the writer thread
// blocks them all). Same return convention as RunMaster.
int RunSingleProcess(const Config& config);

}  // namespace kingx
