// CandidateReader: the records an index names (a segment id and an offset)
// read with read(2) through the Env (ReadExact), never through a mapping: for
// recovery, which compares every index candidate of a key it replays with the
// record at the candidate's location (is it the same key, which seq, how many
// bytes). Internal to engine/.
//
// Memory: a comparison reads the record's header and as many key bytes as the
// key it is compared with (at most kRecordHeaderBytes + max_key_bytes, one
// buffer reused); a body check reads the record kBodyPieceBytes at a time.
// Nothing of a segment stays resident in the process: a mapping would keep
// every page it faulted in (and the pages the kernel maps around each fault)
// in the process's resident set until it is unmapped, so comparing the
// records of many overwritten keys spread over sealed segments made the
// open's peak as large as those segments.
//
// Descriptors: at most kOpenFiles segment files stay open, the least recently
// used one is closed first; all are closed with the reader.
//
// Errors: kNotFound when the segment file does not exist; kCorruption when the
// record's header fails its checks or the record extends past the end of its
// file; kIOError naming the file and the offset where reading stopped when a
// byte cannot be read (never a SIGBUS, and never taken for damage), also when
// the file is shorter than its size a moment before (it shrank under the
// read); kBusy when the process is out of descriptors. A failed call leaves
// the reader usable.
//
// Thread-safety: one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/env.h"
#include "engine/location.h"
#include "engine/record.h"
#include "engine/status.h"

namespace kingx::engine {

class CandidateReader {
 public:
  static constexpr size_t kOpenFiles = 8;
  static constexpr uint64_t kBodyPieceBytes = 64 << 10;

  // Reads the segment files of dir (named by SegmentFileName) through env,
  // checking record headers against limits.
  CandidateReader(Env& env, std::string dir, const RecordLimits& limits);

  // The checked header of the record at loc, and whether its key is key.
  // Reads the header and, when the key lengths agree, the key: one read.
  Status ReadHead(Location loc, std::string_view key, RecordHeader* header, bool* same_key);

  // Whether the body checksum of the record at loc, whose header ReadHead
  // returned, matches its bytes (RecordBodyMatches), read a piece at a time.
  Result<bool> BodyMatches(Location loc, const RecordHeader& header);

 private:
  struct OpenSegment {
    uint32_t id = 0;
    std::string path;
    std::unique_ptr<File> file;
    uint64_t known_size = 0;  // the file's size when last asked: bytes below it exist
  };
  // Segment id's file, opened if need be, with bytes up to end known to
  // exist (the size is asked again when end lies past the one known).
  // kCorruption when the file ends before end.
  Result<OpenSegment*> FileWith(uint32_t id, uint64_t end);

  Env& env_;
  const std::string dir_;
  const RecordLimits limits_;
  std::vector<OpenSegment> open_;  // most recently used last; at most kOpenFiles
  std::unique_ptr<char[]> head_;   // kRecordHeaderBytes + max_key_bytes
  std::unique_ptr<char[]> piece_;  // kBodyPieceBytes, allocated by the first body check
};

}  // namespace kingx::engine
