#include "engine/segment_extender.h"

#include <algorithm>
#include <vector>

#include "engine/kill_point.h"
#include "engine/thread_name.h"

namespace kingx::engine {

namespace {
constexpr size_t kZeroBufferBytes = 64 << 10;
}  // namespace

SegmentExtender::SegmentExtender(std::function<uint64_t()> step_bytes, std::function<void(const std::string&)> log,
                                 std::function<bool(uint64_t bytes)> may_take)
    : step_bytes_(std::move(step_bytes)), log_(std::move(log)), may_take_(std::move(may_take)) {
  thread_ = std::thread([this] { Run(); });
}

SegmentExtender::~SegmentExtender() {
  Stop();
  {
    std::lock_guard lock(mu_);
    quit_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void SegmentExtender::Start(std::unique_ptr<File> file, uint64_t size, uint64_t limit) {
  Stop();
  File* f = file.get();
  {
    std::lock_guard lock(mu_);
    file_ = std::move(file);
    size_ = size;
    limit_ = limit;
    failed_ = false;
  }
  if (size >= limit) return;
  // The first step on this thread: the writer's next records go right after
  // `size`, where a step made on the extender's thread would keep them
  // waiting. Small, since it holds up the commit that rotated; the next
  // (full) step starts with the first write, while these bytes last.
  const uint64_t to = std::min({limit, size + step_bytes_(), size + kFirstStepBytes});
  if (may_take_ && !may_take_(to - size)) return;
  const Status s = Extend(f, size, to);
  std::lock_guard lock(mu_);
  if (s.ok()) size_ = std::max(size_, to);
  else failed_ = true;
}

Status SegmentExtender::Extend(File* file, uint64_t from, uint64_t to) {
  static const std::vector<char> zeros(kZeroBufferBytes, 0);
  Status s;
  for (uint64_t at = from; s.ok() && at < to;) {
    const uint64_t n = std::min<uint64_t>(to - at, zeros.size());
    s = file->PWrite(at, std::string_view(zeros.data(), n));
    at += n;
  }
  KINGX_KILL_POINT("extend.after_write");
  if (s.ok()) s = file->Sync();
  KINGX_KILL_POINT("extend.after_sync");
  if (!s.ok()) {
    // Give the zeros' space back (the writer writes nothing at or past from
    // while this step runs).
    file->Truncate(from).ok();
    if (log_) {
      log_("segment room: extending from " + std::to_string(from) + " to " + std::to_string(to) +
           " bytes failed (" + s.ToString() + "); records are appended past the room from now on");
    }
  }
  return s;
}

uint64_t SegmentExtender::Stop() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !busy_; });
  const uint64_t size = file_ ? size_ : 0;
  file_.reset();
  size_ = limit_ = 0;
  return size;
}

void SegmentExtender::BeforeWrite(uint64_t end) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !busy_ || end <= from_; });
}

void SegmentExtender::AfterWrite(uint64_t end) {
  {
    std::lock_guard lock(mu_);
    if (!file_ || failed_ || busy_) return;
    size_ = std::max(size_, end);
    const uint64_t step = step_bytes_();
    if (end + step / 2 <= size_ || size_ >= limit_) return;
    const uint64_t to = std::min(limit_, size_ + step);
    if (may_take_ && !may_take_(to - size_)) return;
    from_ = size_;
    to_ = to;
    busy_ = true;
  }
  cv_.notify_all();
}

void SegmentExtender::Paused() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !busy_; });
}

void SegmentExtender::Truncated(uint64_t size) {
  std::lock_guard lock(mu_);
  size_ = size;
}

uint64_t SegmentExtender::room_end() {
  std::lock_guard lock(mu_);
  return file_ ? size_ : 0;
}

void SegmentExtender::Run() {
  NameThisThread("kingx-extend");
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return quit_ || busy_; });
    if (quit_ && !busy_) return;
    File* file = file_.get();
    const uint64_t from = from_, to = to_;
    lock.unlock();
    // Outside the lock: the writer only writes below from (BeforeWrite).
    const Status s = Extend(file, from, to);
    lock.lock();
    if (s.ok()) size_ = std::max(size_, to);
    else failed_ = true;
    busy_ = false;
    cv_.notify_all();
  }
}

}  // namespace kingx::engine
