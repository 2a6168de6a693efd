// Signals a worker receives that only the master acts on: HUP (reload the
// configuration) and USR2 (refused: kingx has no binary upgrade, nginx's USR2).
//
// Workers catch both so that neither ends them when an operator signals the
// whole process group (`kill -USR2 -PGID`, `systemctl kill -s USR2 kingx`,
// whose default reaches every process of the unit): USR2's default action
// ends a process. A worker of a master does nothing more (the master got its
// own copy and acts on it). The one worker of --single-process is the master
// too, and it cannot reload (its writer and listeners live in the same
// process): it logs a `warn` line saying the signal changed nothing.
//
// Called from the worker's signal-handling context (the event loop's
// uv_signal callback, the thread pool's sigtimedwait loop), never from a
// signal handler. No errors; no state.
#pragma once

#include <csignal>

#include "src/conf/config.h"

namespace kingx {

// The signals a worker takes only on the master's behalf.
inline constexpr int kMasterOnlySignals[] = {SIGHUP, SIGUSR2};

// What the master (and --single-process) logs at `warn` when it gets USR2.
inline constexpr char kUsr2IgnoredLine[] =
    "USR2 ignored: kingx has no binary upgrade (nginx's USR2); restart it to run a new binary";

// sig: one of kMasterOnlySignals.
void OnMasterOnlySignal(const Config& config, int sig);

}  // namespace kingx
