// StagedHint: a segment's hint file written while recovery scans the
// segment, entry by entry, under a temporary name ("<hint>.tmp") until the
// scan says it may be used. So a scan keeps no list of the segment's records
// (their number grows with the segment), and an open that fails part way
// leaves no hint behind: the temporary file is removed (or, after a crash,
// by the next open's removal of *.tmp leftovers). Internal to engine/.
//
// A hint only saves reading its segment: every failure to write it (a full
// disk, an I/O error) is logged through `log` and drops it together with
// the hint it was to replace (stale or damaged), and the open goes on
// without one.
//
// Memory: HintWriter's buffer (about 1 MiB). Thread-safety: the writer
// thread (recovery), one at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "engine/env.h"
#include "engine/hint_file.h"

namespace kingx::engine {

class StagedHint {
 public:
  // Creates path + ".tmp" for segment_id's hint. what names the hint in log
  // lines ("hint of segment 7").
  StagedHint(Env& env, std::string path, uint32_t segment_id, std::string what,
             std::function<void(const std::string&)> log);
  // Removes the temporary file unless it was published.
  ~StagedHint();
  StagedHint(const StagedHint&) = delete;
  StagedHint& operator=(const StagedHint&) = delete;

  // Adds one entry (its key is copied). Nothing when the hint was dropped.
  void Add(const HintEntry& e);
  // A sealed segment of segment_bytes: finishes the hint (fdatasync) and
  // renames it to path, replacing what was there. The directory entry is
  // not synced: losing it costs a scan.
  void PublishSealed(uint64_t segment_bytes);
  // The active segment: writes what is buffered, renames the file to path
  // and returns its writer, to which the writer appends from then on (the
  // caller syncs the directory). nullptr when the hint was dropped.
  std::unique_ptr<HintWriter> PublishActive();
  // Drops the hint (the temporary file is removed).
  void Drop();

 private:
  void Fail(const std::string& step, const Status& s);

  Env& env_;
  const std::string path_;
  const std::string tmp_path_;
  const std::string what_;
  const std::function<void(const std::string&)> log_;
  std::unique_ptr<HintWriter> writer_;  // nullptr once dropped or published
};

}  // namespace kingx::engine
