// SegmentWindow: a segment file read for ScanSegment (engine/segment_scan.h)
// through a window of bounded size, with read(2) (ReadExact), never a
// mapping: a sector that cannot be read is an error naming the file and the
// offset, never a SIGBUS. Internal to engine/.
//
// Memory: at most kScanWindowBytes for the window, plus, while the scan
// looks at it, one record larger than the window, read by itself into a
// buffer of its own size (a record's size is bounded by the format and the
// limits: engine/record.h, RecordLimits). So a scan holds a few MiB whatever
// the segment's size, where reading the segment whole held all of it.
//
// Errors: ReadExact's (kIOError naming the path and the offset where reading
// stopped, also when the file is shorter than the size given: it shrank
// under the scan). After an error the window holds nothing.
//
// Thread-safety: one scan at a time; the File must stay open while in use.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "engine/env.h"
#include "engine/segment_scan.h"

namespace kingx::engine {

// The window's size: the most bytes of a segment a scan holds at once,
// besides one record larger than it.
inline constexpr uint64_t kScanWindowBytes = 4 << 20;

class SegmentWindow final : public ScanSource {
 public:
  // Reads file (named path in errors) as a segment of size bytes, through a
  // window of window_bytes (tests may use a smaller one).
  SegmentWindow(const File& file, std::string path, uint64_t size, uint64_t window_bytes = kScanWindowBytes);

  uint64_t size() const override { return size_; }
  uint64_t window_bytes() const override { return window_bytes_; }
  // Bytes in the window are returned as they are; otherwise the window is
  // refilled from offset on (up to window_bytes), or, for n larger than the
  // window, the n bytes are read into a buffer of their own, released at the
  // next call that asks for other bytes. Each refill and each such read
  // counts in reads().
  Status Bytes(uint64_t offset, uint64_t n, const char** out) override;

 private:
  const File& file_;
  const std::string path_;
  const uint64_t size_;
  const uint64_t window_bytes_;
  std::unique_ptr<char[]> window_;  // allocated at the first refill: min(size, window_bytes) bytes
  uint64_t window_start_ = 0;
  uint64_t window_len_ = 0;         // 0: holds nothing
  std::unique_ptr<char[]> large_;   // the range larger than the window asked for last, while it is asked for
  uint64_t large_start_ = 0;
  uint64_t large_len_ = 0;
};

}  // namespace kingx::engine
