// What a start would find wrong with a configuration, checked without
// starting: `kingx -t` runs CheckStartup (like nginx -t, which opens the log
// files), and the master and --single-process apply the open-file limit at
// start (RaiseOpenFileLimit).
//
// CheckStartup's errors (any one means a start would fail):
//   - a log file (error log, access log) cannot be opened for appending
//     (never waiting: src/conf/log_file.h). A FIFO is not opened, only
//     checked writable: whether it has a reader is the start's to see;
//   - the data directory is not a writable directory, and cannot be created
//     (missing parent, or parent not writable);
//   - the data directory holds other files and no database (read-write), or
//     holds no database (--read-only): DataDirRule, src/master/data_dir.h;
//   - --read-only: $TMPDIR (else /tmp) cannot take the sorted key view's
//     scratch directory (a probe file is created and removed there);
//   - the data directory's LOCK is held by another process (a start would
//     find the database in use). The one exception is the reload case (-t
//     before HUP, as systemd's ExecReload does): the holder is the running
//     kingx named by this configuration's pid file, or a kingx master started
//     with this very command line (`args`, without -t);
//   - the pid file's directory does not exist or is not writable;
//   - the hard open file limit is below the minimum a worker needs
//     (src/worker/serve_options.h MinimumDescriptorLimit), or below what the
//     master holds for --workers (src/master/master_descriptors.h; what -t
//     itself has open stands for what the master would inherit).
// Warnings (a start would go on):
//   - a log file is a FIFO (not opened: see above);
//   - max_connections (per worker) plus a reserve for the worker's own files
//     exceeds the hard open-file limit: connections past it fail with EMFILE.
//
// Only the data directory's LOCK file may be created by the check (the same
// file a start creates); nothing else is written. Any thread; blocking file
// system calls.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/status.h"
#include "src/conf/config.h"

namespace kingx {

struct StartupReport {
  std::vector<std::string> errors;
  std::vector<std::string> warnings;
};

// `args`: the command line's arguments after argv[0], without "-t".
StartupReport CheckStartup(const Config& config, const std::vector<std::string>& args);

// Raises this process's soft RLIMIT_NOFILE to the hard limit (children
// inherit it; each worker then caps its connections below the limit, keeping
// a share for the segment files it maps: src/worker/serve_options.h
// ConnectionCap). kInvalidArgument naming the limit when it is below
// MinimumDescriptorLimit or below what the master holds for --workers
// (master_descriptors.h, with what it has open now counted): the start is
// refused. Otherwise OK with *warning ("" when, under the limit, a worker
// keeps all of max_connections: ConnectionCapAt).
engine::Status RaiseOpenFileLimit(const Config& config, std::string* warning);

}  // namespace kingx
