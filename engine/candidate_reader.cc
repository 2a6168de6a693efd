#include "engine/candidate_reader.h"

#include <algorithm>
#include <cstring>

#include "engine/hash.h"
#include "engine/read_exact.h"

namespace kingx::engine {

CandidateReader::CandidateReader(Env& env, std::string dir, const RecordLimits& limits)
    : env_(env), dir_(std::move(dir)), limits_(limits), head_(new char[kRecordHeaderBytes + limits.max_key_bytes]) {}

Result<CandidateReader::OpenSegment*> CandidateReader::FileWith(uint32_t id, uint64_t end) {
  auto it = std::find_if(open_.begin(), open_.end(), [id](const OpenSegment& o) { return o.id == id; });
  if (it == open_.end()) {
    OpenSegment o;
    o.id = id;
    o.path = JoinPath(dir_, SegmentFileName(id));
    auto file = env_.OpenFile(o.path, OpenMode::kRead);
    if (!file.ok()) return file.status();
    o.file = std::move(file.value());
    if (open_.size() >= kOpenFiles) open_.erase(open_.begin());
    open_.push_back(std::move(o));
  } else if (it + 1 != open_.end()) {
    std::rotate(it, it + 1, open_.end());  // most recently used last
  }
  OpenSegment* o = &open_.back();
  if (end > o->known_size) {
    auto size = o->file->Size();
    if (!size.ok()) return size.status();
    o->known_size = size.value();
    if (end > o->known_size)
      return Status::Corruption("record extends past the end of segment " + std::to_string(id));
  }
  return o;
}

Status CandidateReader::ReadHead(Location loc, std::string_view key, RecordHeader* header, bool* same_key) {
  const uint32_t id = LocationSegment(loc);
  const uint64_t off = LocationOffset(loc);
  auto o = FileWith(id, off + kRecordHeaderBytes);
  if (!o.ok()) return o.status();
  // The header and a key as long as the one compared with, when the file
  // holds that many bytes (a shorter record cannot hold that key).
  const uint64_t want = std::min<uint64_t>(kRecordHeaderBytes + std::min<size_t>(key.size(), limits_.max_key_bytes),
                                           o.value()->known_size - off);
  Status s = ReadExact(*o.value()->file, o.value()->path, off, want, head_.get());
  if (!s.ok()) return s;
  s = DecodeRecordHeader(head_.get(), ~size_t{0} >> 1, limits_, header);
  if (!s.ok()) return s;
  o = FileWith(id, off + header->total_bytes());
  if (!o.ok()) return o.status();
  *same_key = false;
  if (header->key_len != key.size()) return Status::OK();
  if (want < kRecordHeaderBytes + key.size()) {
    // The size known before was short of the key; the record fits the file.
    s = ReadExact(*o.value()->file, o.value()->path, off + kRecordHeaderBytes, key.size(),
                  head_.get() + kRecordHeaderBytes);
    if (!s.ok()) return s;
  }
  *same_key = std::memcmp(head_.get() + kRecordHeaderBytes, key.data(), key.size()) == 0;
  return Status::OK();
}

Result<bool> CandidateReader::BodyMatches(Location loc, const RecordHeader& header) {
  const uint64_t off = LocationOffset(loc);
  const uint64_t end = off + header.total_bytes();
  auto o = FileWith(LocationSegment(loc), end);
  if (!o.ok()) return o.status();
  if (!piece_) piece_.reset(new char[kBodyPieceBytes]);
  Checksum64Stream sum;
  for (uint64_t at = off + kRecordHeaderBytes; at < end;) {
    const uint64_t n = std::min(kBodyPieceBytes, end - at);
    Status s = ReadExact(*o.value()->file, o.value()->path, at, n, piece_.get());
    if (!s.ok()) return s;
    sum.Update(piece_.get(), n);
    at += n;
  }
  return sum.Digest() == header.body_checksum;
}

}  // namespace kingx::engine
