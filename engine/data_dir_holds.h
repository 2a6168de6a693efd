// Whether a data directory holds a database: the one rule every command that
// must not take a wrong path (a typo in --data, an archive that extracted
// nothing, a foreign directory) for a database goes by.
//
// A database is a directory holding a MANIFEST or a segment file (one from
// before the MANIFEST holds segments only). An empty directory is one whose
// only entries are a LOCK, a MANIFEST.tmp (both left by a first open that
// stopped before its MANIFEST was named) or lost+found (the root of a fresh
// file system); any other entry, a dotfile too, is another program's data.
// The directory's listing is all
// that is read: nothing is created, locked or changed. Any thread. Taking no
// lock, the answer may be stale by the time the caller opens the directory;
// the open then takes the lock and finds what is there.
#pragma once

#include <string>

#include "engine/env.h"
#include "engine/status.h"

namespace kingx::engine {

// OK when `dir` holds a database; else kNotFound "no database in DIR: ..."
// saying what is there instead (no such directory, an empty directory, how
// many other entries and the first of them by name). Other errors: what
// listing the directory reports (kIOError; a file, not a directory).
Status RequireDatabase(Env& env, const std::string& dir);

// For a command that creates a database where there is none (kingx-tool put,
// a read-write server): OK when `dir` is missing, empty or holds a database;
// kNotFound naming DIR and its other entries when it holds any (a directory
// of another program's files is never turned into a database).
Status RequireDatabaseOrRoom(Env& env, const std::string& dir);

}  // namespace kingx::engine
