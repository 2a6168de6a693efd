// Checking a stopped database from end to end, as `kingx-tool verify` does:
// every segment read the way recovery reads it (engine/segment_scan.h),
// plus what an open only notices in passing: every record's checksums and
// value, every segment header, every sealed segment's hint, the MANIFEST and
// the segments it lists. Changes nothing on disk.
//
// Any thread; takes the data directory's LOCK for its duration (kBusy while a
// server or a Writer holds it).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "engine/env.h"
#include "engine/options.h"
#include "engine/status.h"

namespace kingx::engine {

struct VerifyReport {
  uint64_t segments = 0;  // segment files found
  uint64_t records = 0;   // records whose checksums and value check out
  uint64_t damaged = 0;   // findings that are damage: records, ranges, headers, hints, MANIFEST, missing files
};

// Verifies the database in `dir` with options.max_key_bytes /
// max_value_bytes as the bounds records may claim. `finding` gets one line of
// text per finding (damage, and what is not damage but worth saying: a torn
// tail of the active segment, which an open cuts; a header-only segment an
// open removes; no MANIFEST). A finding of damaged records names their keys
// (quoted, other than printable ASCII as \xNN): as the segment's intact hint
// names them (for the active segment, the hint a clean close finished), else
// as the damaged bytes read. Returns the counts, or the error that stopped
// it: the LOCK, a directory or file that could not be read (never counted as
// damage: nothing was learnt about it), kNotFound for a directory that holds
// no database (RequireDatabase, engine/data_dir_holds.h: missing, or neither
// a MANIFEST nor a segment file in it).
Result<VerifyReport> VerifyDatabase(Env& env, const std::string& dir, const Options& options,
                                    const std::function<void(const std::string&)>& finding);

}  // namespace kingx::engine
