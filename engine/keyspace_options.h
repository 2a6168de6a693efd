// KeyspaceOptions: how the owner of a database's sorted key view
// (engine/keyspace.h, started by Writer::StartKeyspace) keeps it. Public so
// that the server and kingx-tool can start the view without the keyspace's
// internals.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace kingx::engine {

struct KeyspaceOptions {
  // Where the run files and the MANIFEST live (created when missing). The
  // server uses <data>/keys; a read-only server a scratch directory.
  std::string dir;
  // Keep MANIFEST checkpoints and reuse them on open. false: the directory
  // is scratch (its runs are rebuilt on every open, no MANIFEST is written).
  bool persist = true;
  // With persist = false only: a directory holding a persisted view (its
  // MANIFEST and runs; a read-only server passes the database's own keys/)
  // to start from without changing a byte or time stamp of it. When its
  // MANIFEST is valid for this database, its runs are reached through
  // symbolic links made in `dir` (their checksums verified in the
  // background) and only the puts it does not cover are read back from the
  // segments into `dir`; otherwise the view is rebuilt from the segments.
  // Empty: no seed.
  std::string seed_dir;
  uint64_t checkpoint_interval_ms = 30000;
  uint64_t settle_ms = 2000;
  uint32_t merge_width = 4;
  // Entries per run written by a rebuild or catch-up.
  uint64_t chunk_entries = 1 << 20;
  // A writer that outruns the tail flushes (a tail frozen and waiting for its
  // flush, the other half full) waits up to this long per batch for the
  // flush before adding its keys (Keyspace::Pace); never while the keyspace
  // thread is failing. 0: never wait (the view is lost and caught up instead).
  uint64_t lag_wait_ms = 50;
  // Flush the tails and checkpoint when the Keyspace is destroyed. Tests turn
  // it off to leave the directory as a crash would.
  bool checkpoint_at_close = true;
  // Receives one line per notable event (no newline): the view unusable,
  // fallen behind or rebuilt from the segments' keys. May be empty.
  std::function<void(const std::string& line)> log;
  // Receives the routine lines (no newline): a catch-up done (every open
  // after a close or a crash), the first build of an empty database's view.
  // May be empty (discarded).
  std::function<void(const std::string& line)> log_info;
};

}  // namespace kingx::engine
