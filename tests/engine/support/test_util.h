// Helpers shared by the engine tests: a scratch directory, an index region on
// anonymous memory (shared across fork), a database handle that reopens, and
// value generators whose bytes encode their key and version.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <map>
#include <string>
#include <vector>

#include "engine/env.h"
#include "engine/index.h"
#include "engine/options.h"
#include "engine/reader.h"
#include "engine/writer.h"

namespace kingx::engine::test {

// A fresh directory under $KINGX_TEST_TMPDIR, else /dev/shm when it has at
// least 1 GiB free, else /tmp; removed
// (recursively) by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // Path of a file inside it.
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A SharedIndex over an anonymous MAP_SHARED mapping (so forked children
// share it). Sized for max_keys keys.
class IndexRegion {
 public:
  explicit IndexRegion(uint64_t max_keys = 1 << 16);
  ~IndexRegion();
  IndexRegion(const IndexRegion&) = delete;
  IndexRegion& operator=(const IndexRegion&) = delete;
  SharedIndex& index() { return *index_; }

 private:
  void* base_ = nullptr;
  size_t bytes_ = 0;
  std::unique_ptr<SharedIndex> index_;
};

// Writer + Reader on one directory and one index, reopened on demand.
class TestDb {
 public:
  TestDb(Env& env, std::string dir, Options options);
  // Opens (or reopens: the old writer is destroyed first). Returns the status.
  Status Open();
  // Destroys the writer without reopening.
  void Close();
  Writer& writer() { return *writer_; }
  Reader& reader() { return *reader_; }
  SharedIndex& index() { return region_.index(); }
  const Options& options() const { return options_; }

  // Single-op helpers (encode with options().compression_level).
  WriteResult Put(std::string_view key, std::string_view value, Condition c = {});
  WriteResult Delete(std::string_view key, Condition c = {});
  // Value bytes, or the status.
  Result<std::string> Get(std::string_view key);

 private:
  Env& env_;
  std::string dir_;
  Options options_;
  IndexRegion region_;
  std::unique_ptr<Writer> writer_;
  std::unique_ptr<Reader> reader_;
};

// A value of `len` bytes that starts with "key|version|" and continues with
// bytes derived from (key, version); compressible when compressible is true.
std::string MakeValue(std::string_view key, uint64_t version, size_t len, bool compressible);
// True when value is exactly what MakeValue(key, version, value.size(), c) gives for some c; sets *version.
bool CheckValue(std::string_view key, std::string_view value, uint64_t* version);

// The server's part size (one write-queue entry's value): a larger value is
// staged whole, in parts of this size, through the large-value path.
inline constexpr uint64_t kPartBytes = 1 << 20;
// Writes value as the server does: up to one part through Apply (compressed
// when it pays, from 256 bytes), larger in parts through the large-value
// path (a segment of its own, sealed at birth), each part compressed into
// frames when the value is compressible. The first error, or the write's.
Status PutAsServer(TestDb& db, const std::string& key, const std::string& value, bool compressible);

// Segment file names in dir, ascending.
std::vector<std::string> SegmentFiles(const std::string& dir);
// True when dir holds a "*.tmp" file (an unpublished output or large value).
bool HasTmpFiles(const std::string& dir);

// Every regular file directly in dir, name -> bytes (read around any Env: no
// injected fault applies). For "nothing on disk changed" checks.
std::map<std::string, std::string> FileBytesOf(const std::string& dir);

// Reads / writes a whole file (test failures on error via return value).
std::string ReadFileBytes(const std::string& path);
void WriteFileBytes(const std::string& path, const std::string& bytes);
// The writer's active segment's figures (Writer::Stats), or all zeros when
// it has none.
SegmentStats ActiveSegment(Writer& writer);

// Rewrites dir's MANIFEST without its seals (sealed segments' lengths), as a
// version that did not record them left it. Returns false when there is no
// readable MANIFEST.
bool StripSeals(const std::string& dir);
// Makes the active segment of a cleanly closed database (the segment file at
// segment_path) look as a crash after its last fdatasync leaves it: its hint
// loses the trailer the close wrote; the entries stay, as they were flushed.
// Returns false when the hint is missing or not finished.
bool DropCloseTrailer(const std::string& segment_path);
// Empties `to`, then copies every file of `from` into it but LOCK: a copy of a
// closed database that a test can damage and reopen.
void CopyDir(const std::string& from, const std::string& to);

}  // namespace kingx::engine::test
