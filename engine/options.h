// Options: every tunable of the storage engine, with the defaults a user gets
// when they set nothing.
//
// An Options value is plain data: copy it freely. The writer, every reader and
// kingx-tool of one database must use the same max_key_bytes and
// max_value_bytes (they bound what a record may claim on disk); the other
// fields may differ per process.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "engine/status.h"

namespace kingx::engine {

// The most fdatasyncs Options::sync_depth lets run at once.
inline constexpr uint32_t kMaxSyncDepth = 16;

// When the writer makes an applied batch durable.
enum class SyncMode : uint8_t {
  kAlways,    // fdatasync before any op of the batch is reported (default)
  kInterval,  // report after write(); fdatasync at least every sync_interval_ms (SyncIfDue)
  kNone,      // never fdatasync on the write path (rotation and shutdown still sync)
};

// The largest key and value the on-disk format holds (u16 key length; u32
// stored length, less room for zstd's worst-case expansion). A server that
// enforces smaller configured limits at its edge opens the engine with these,
// so that changing its limits never needs a reopen and values stored under a
// larger limit stay readable after the limit is lowered.
inline constexpr uint32_t kLargestKeyBytes = 65535;
inline constexpr uint64_t kLargestValueBytes = (uint64_t{1} << 32) - (uint64_t{1} << 26);

struct Options {
  // A segment rotates when the next record would make it larger than this.
  // Records larger than a whole segment still fit: they get a segment of their own.
  uint64_t segment_bytes = 256ull << 20;
  // zstd level for values; 0 turns compression off.
  int compression_level = 1;
  // Values shorter than this are never compressed.
  uint32_t compress_min_bytes = 256;
  SyncMode sync = SyncMode::kAlways;
  uint32_t sync_interval_ms = 0;  // only for SyncMode::kInterval; > 0 there
  // SyncMode::kAlways, batches submitted to the pipeline (Writer::Submit):
  // the most fdatasyncs of the active segment running at once (1..kMaxSyncDepth).
  // 1: one at a time, the next batch's starts once the previous returned.
  // Above 1, the next batch's starts while earlier ones run (each on a
  // descriptor of its own); batches are still acknowledged in order, each
  // once its own and every earlier fdatasync returned success.
  uint32_t sync_depth = 1;
  // Zero-filled, synced room kept ahead of the active segment's last record
  // (engine/segment_extender.h), extended by at most this many bytes at a
  // time (a 256th of the live data, at least 64 KiB; never past
  // segment_bytes), so that an fdatasync of records changes no file size.
  // 0 = none. Only with SyncMode::kAlways, where every record is
  // synced before it is reported (the room's own fdatasyncs also flush the
  // records written before them, which would make writes of the other
  // modes durable at times nobody chose); never read_only.
  uint64_t room_bytes = 4ull << 20;
  // Longest key accepted (1..65535).
  uint32_t max_key_bytes = 1024;
  // Largest raw (uncompressed) value accepted (<= 4 GiB - 1).
  uint64_t max_value_bytes = 64ull << 20;
  // Compaction picks sealed segments whose dead bytes / bytes passes this.
  double compaction_dead_ratio = 0.5;
  // Segment files one process keeps open and mapped at most (a descriptor and
  // a mapping each; per Reader, and per Writer), least recently used first
  // out. Also capped at a quarter of the process's descriptor limit.
  uint32_t max_open_segments = 1024;
  // Free space kept in the data directory's file system for compaction and
  // deletes (engine/disk_space.h): a put that would leave less free space is
  // refused with kNoSpace before anything is written. 0 = no reserve (puts
  // run until the file system says ENOSPC). The server and kingx-tool use
  // AutoDiskReserveBytes(segment_bytes) unless told otherwise.
  uint64_t disk_reserve_bytes = 0;
  // Writer::Open and kingx-tool take the data directory's LOCK file (flock).
  // The server's master holds the LOCK itself and sets this to false for the writer.
  bool take_lock = true;
  // Open without changing a byte or a time stamp of the directory (a backup,
  // a snapshot, a copy): the directory must exist; the lock is the shared
  // one (engine/data_dir_lock.h); recovery only reads (no staging file,
  // orphan hint or finished deletion removed, no torn tail cut, no hint or
  // MANIFEST written, no segment created). Every write, sync and compaction
  // pass returns kReadOnly. The sorted key view needs a directory outside
  // this one (KeyspaceOptions::dir, persist = false).
  bool read_only = false;
  // Receives recovery notes (one line, no newline). Called on the thread that
  // runs Writer::Open / Reader::Get. May be empty (discarded).
  std::function<void(const std::string& line)> log;
  // Receives reports of damage an operator must look at: corrupt records,
  // headers, hints or MANIFEST, missing segment files, unreadable values.
  // Reads report at most once a second per Reader (with a count of what was
  // not reported). Empty: such lines go to `log`.
  std::function<void(const std::string& line)> log_error;
  // Receives routine recovery notes that call for no action (one line, no
  // newline), on the thread that runs Writer::Open: the active segment's
  // preallocated zero room cut at an open, which every restart does. A torn
  // record goes to `log`. May be empty (discarded).
  std::function<void(const std::string& line)> log_debug;
  // Called on the writer's sync thread after each fdatasync of a batch
  // submitted with Writer::Submit (success or failure), with no lock held:
  // the writer process wakes its loop with it. May be empty.
  std::function<void()> on_synced;
};

// The segment size chosen for a file system of filesystem_bytes when the
// user asks for "auto" (the server's default): a 32nd of it rounded down to a
// power of two, within [1 MiB, 256 MiB]. On a small disk, segments small
// enough that compacting one needs a small fraction of the disk.
uint64_t AutoSegmentBytes(uint64_t filesystem_bytes);

// The reserve chosen for "auto" (the server's default): room to rewrite one
// full segment (its records plus its hint file, at most a quarter of them)
// plus 1 MiB, so that compaction can always make progress on a full disk.
uint64_t AutoDiskReserveBytes(uint64_t segment_bytes);

// Parses "always", "none" or "interval:MS" (MS a positive integer of
// milliseconds) into options->sync / options->sync_interval_ms.
// kInvalidArgument (options unchanged) for anything else.
Status ParseSyncMode(std::string_view text, Options* options);

// "always", "none" or "interval:MS": the inverse of ParseSyncMode.
std::string SyncModeString(const Options& options);

// Parses a size as every kingx program takes one (kingx's settings and
// kingx-tool's options): "123", "64K", "64M", "1G" (a K/M/G suffix is a
// power of 1024, any case, optionally followed by "B" or "iB"; a bare "B"
// is bytes), in [min, max] bytes. kInvalidArgument quoting `text` (and the
// bounds, when it is a size outside them) on anything else or overflow.
Result<uint64_t> ParseSize(std::string_view text, uint64_t min = 0, uint64_t max = UINT64_MAX);

// kInvalidArgument naming the first field out of range, else OK.
Status ValidateOptions(const Options& options);

}  // namespace kingx::engine
