// LogSettingsNote: the error log's path and level as the master applied
// them, for the running writer process to take without a restart.
//
// The master publishes them at start and at every reload (HUP) that changes
// --error-log or --log-level, then sends the writer SIGUSR1; the writer's
// loop reads them (Read) and opens that path at that level (InitErrorLog),
// which is also the reopen USR1 asks for. Workers need no note: a reload
// starts new ones, which inherit the master's error log.
//
// The path and level are one SharedText (a level byte, then the path), so a
// reader never pairs the level of one publication with the path of another.
// Lives in zero-filled shared memory: all zero is "nothing published".
//
// Thread-safety: Publish from the master's main thread only; Read from any
// thread of any process.
#pragma once

#include <cstddef>
#include <string>

#include "src/conf/config.h"
#include "src/ipc/shared_text.h"

namespace kingx {

class LogSettingsNote {
 public:
  // Longest path that can be published (PATH_MAX less its terminating NUL).
  static constexpr size_t kMaxPathBytes = 4095;

  // Master: publishes (path, level). false, nothing published, when path is
  // longer than kMaxPathBytes (the caller then restarts the writer, which
  // inherits the settings instead).
  bool Publish(const std::string& path, LogLevel level);

  // The latest publication. false when none was made, or while publications
  // kept overlapping the copy (the previous settings stay in force; the
  // master's next signal tries again).
  bool Read(std::string* path, LogLevel* level) const;

 private:
  SharedText<kMaxPathBytes + 1> text_;
};

}  // namespace kingx
