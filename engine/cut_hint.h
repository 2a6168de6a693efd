// The hint an online backup ships for the active segment of its cut: what a
// clean close leaves on disk for a segment of that size (a finished hint,
// the size in its trailer: engine/hint_file.h, FORMAT.md "Hint files").
// Restored, a copy whose segment file is shorter than that size (an archive
// cut inside the segment's data) is read as a segment cut short: counted,
// and the keys the hint names past the cut answer "damaged", never an older
// value (engine/recovery.cc).
//
// Built from the segment file itself, never from the writer's unfinished
// hint of the active segment, whose entries may cover less or more than the
// cut: the records in [kSegmentHeaderBytes, cut_bytes) are read with the
// engine's scan (engine/segment_scan.h) and each one becomes an entry.
//
// Memory: a scan window of kCutHintWindowBytes (plus one record larger than
// it) and the HintWriter's buffer (~1 MiB); the hint itself goes to a file,
// whatever the segment's size. Blocking file I/O: call it where the disk may
// be waited for (a backup's offload thread), never on an event loop.
// Any thread. Public (engine_public_headers): the backup stream calls it.
#pragma once

#include <cstdint>
#include <string>

#include "engine/env.h"
#include "engine/record.h"
#include "engine/status.h"

namespace kingx::engine {

inline constexpr uint64_t kCutHintWindowBytes = 256 << 10;

// Writes to hint_path (created or truncated; neither the file nor its
// directory synced: a scratch file) the finished hint of the first cut_bytes bytes of the
// segment file at segment_path, whose id is segment_id. cut_bytes must be at
// least kSegmentHeaderBytes (a header-only segment gives a hint of no
// entries). Errors: kCorruption when those bytes do not read as a segment
// header followed by whole valid records ending exactly at cut_bytes (the
// segment is damaged below the cut, or the cut is not a record boundary):
// the caller ships no hint then; the Env's errors (kIOError, kNotFound) when
// a file cannot be read or written. After an error hint_path may hold a
// partial file: the caller removes it.
Status WriteCutHint(Env& env, const std::string& segment_path, uint32_t segment_id, uint64_t cut_bytes,
                    const RecordLimits& limits, const std::string& hint_path,
                    uint64_t window_bytes = kCutHintWindowBytes);

}  // namespace kingx::engine
