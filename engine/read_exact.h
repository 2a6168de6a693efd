// ReadExact: a byte range of a file read with read(2) through the Env, for
// code that reads each byte once and must meet a page the disk cannot read
// as an error naming where, not as a SIGBUS: recovery's scans of segments
// and their zero tails, the segment headers read at open, and kingx-tool
// verify. Internal to engine/.
//
// A mapping's page that cannot be filled raises SIGBUS at the touching
// instruction; read(2) of the same bytes returns what precedes the failed
// sector and then EIO. These readers copy what they read anyway (their
// callers allocate, so they cannot run under MappingGuard), so a read costs
// no more than a guarded copy would.
//
// Errors: the Env's (kIOError for EIO, naming the file); the message says
// the offset where reading stopped. kIOError too when the file holds fewer
// bytes than asked: it shrank since the caller took its size, and that size
// is what the caller judged the file by, so the short read is not taken
// for a cut. out then holds an unknown prefix.
//
// Thread-safety: as File::Read (any thread).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "engine/env.h"
#include "engine/status.h"

namespace kingx::engine {

// Reads exactly n bytes of file (opened from path, named in errors) at offset into out[0, n).
Status ReadExact(const File& file, const std::string& path, uint64_t offset, uint64_t n, char* out);

// Opens path for reading and reads its bytes [offset, offset + n) into out.
Status ReadExact(Env& env, const std::string& path, uint64_t offset, uint64_t n, char* out);

}  // namespace kingx::engine
