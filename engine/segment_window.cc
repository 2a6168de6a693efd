#include "engine/segment_window.h"

#include <algorithm>
#include <cassert>

#include "engine/read_exact.h"

namespace kingx::engine {

SegmentWindow::SegmentWindow(const File& file, std::string path, uint64_t size, uint64_t window_bytes)
    : file_(file), path_(std::move(path)), size_(size), window_bytes_(std::max<uint64_t>(window_bytes, 1)) {}

Status SegmentWindow::Bytes(uint64_t offset, uint64_t n, const char** out) {
  assert(offset <= size_ && n <= size_ - offset);
  if (large_ && offset == large_start_ && n <= large_len_) {
    *out = large_.get();
    return Status::OK();
  }
  large_.reset();  // a record larger than the window is held only while the scan looks at it
  large_len_ = 0;
  if (offset >= window_start_ && offset + n <= window_start_ + window_len_) {
    *out = window_.get() + (offset - window_start_);
    return Status::OK();
  }
  if (n > window_bytes_) {
    // One record larger than the window: only it, at its own size.
    large_.reset(new char[n]);
    CountRead();
    Status s = ReadExact(file_, path_, offset, n, large_.get());
    if (!s.ok()) {
      large_.reset();
      return s;
    }
    large_start_ = offset;
    large_len_ = n;
    *out = large_.get();
    return Status::OK();
  }
  if (!window_) window_.reset(new char[std::min(size_, window_bytes_)]);
  const uint64_t len = std::min(window_bytes_, size_ - offset);
  window_len_ = 0;
  CountRead();
  Status s = ReadExact(file_, path_, offset, len, window_.get());
  if (!s.ok()) return s;
  window_start_ = offset;
  window_len_ = len;
  *out = window_.get();
  return Status::OK();
}

}  // namespace kingx::engine
