#include "engine/disk_space.h"

#include <chrono>

namespace kingx::engine {

DiskSpace::DiskSpace(Env& env, std::string dir, uint64_t reserve_bytes, std::function<void(const std::string&)> log,
                     uint64_t max_age_ms)
    : env_(env), dir_(std::move(dir)), reserve_bytes_(reserve_bytes), max_age_ms_(max_age_ms), log_(std::move(log)) {}

uint64_t DiskSpace::NowMs() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

void DiskSpace::MeasureLocked(uint64_t now_ms) {
  measured_at_ms_ = now_ms;
  auto space = env_.Space(dir_);
  if (!space.ok()) {
    // Unknown: admit writes (the file system refuses them itself if it must).
    if (!failing_ && log_) log_("disk space: cannot measure free space: " + space.status().ToString());
    failing_ = true;
    known_ = false;
    return;
  }
  if (failing_ && log_) log_("disk space: measuring free space works again");
  failing_ = false;
  known_ = true;
  measured_free_ = space->free_bytes;
  total_ = space->total_bytes;
  consumed_since_ = 0;
  const uint64_t room = measured_free_ > reserve_bytes_ ? measured_free_ - reserve_bytes_ : 0;
  if (room < kHeadroomBytes) {
    full_ = true;
  } else if (full_ && room >= last_refused_bytes_) {
    full_ = false;
  }
}

void DiskSpace::MeasureIfOldLocked(uint64_t now_ms) {
  if (measured_at_ms_ == 0 || now_ms - measured_at_ms_ >= max_age_ms_) MeasureLocked(now_ms);
}

uint64_t DiskSpace::EstimateLocked() const {
  return measured_free_ > consumed_since_ ? measured_free_ - consumed_since_ : 0;
}

bool DiskSpace::Admit(uint64_t bytes, uint64_t pending) {
  std::lock_guard lock(mu_);
  MeasureIfOldLocked(NowMs());
  if (!known_ || EstimateLocked() >= reserve_bytes_ + pending + bytes) return true;
  full_ = true;
  last_refused_bytes_ = bytes;
  return false;
}

uint64_t DiskSpace::Room() {
  std::lock_guard lock(mu_);
  MeasureIfOldLocked(NowMs());
  if (!known_) return UINT64_MAX;
  const uint64_t free = EstimateLocked();
  return free > reserve_bytes_ ? free - reserve_bytes_ : 0;
}

bool DiskSpace::Spare(uint64_t bytes) {
  std::lock_guard lock(mu_);
  MeasureIfOldLocked(NowMs());
  return known_ && EstimateLocked() >= reserve_bytes_ + kHeadroomBytes + bytes;
}

void DiskSpace::Consumed(uint64_t bytes) {
  std::lock_guard lock(mu_);
  consumed_since_ += bytes;
}

void DiskSpace::NoSpace(uint64_t bytes) {
  std::lock_guard lock(mu_);
  full_ = true;
  last_refused_bytes_ = bytes;
  measured_at_ms_ = 1;  // stale: the next Admit or Refresh measures again
}

void DiskSpace::Refused(uint64_t writes) {
  std::lock_guard lock(mu_);
  refused_ += writes;
}

void DiskSpace::Changed() {
  std::lock_guard lock(mu_);
  if (measured_at_ms_ != 0) measured_at_ms_ = 1;
}

void DiskSpace::Refresh() {
  std::lock_guard lock(mu_);
  MeasureLocked(NowMs());
}

DiskState DiskSpace::state() const {
  std::lock_guard lock(mu_);
  DiskState s;
  s.full = full_;
  s.known = known_;
  s.total_bytes = total_;
  s.free_bytes = EstimateLocked();
  s.reserve_bytes = reserve_bytes_;
  s.refused_writes = refused_;
  s.last_refused_bytes = last_refused_bytes_;
  return s;
}

std::string DiskSpace::Describe() const {
  const DiskState s = state();
  std::string out = s.known ? std::to_string(s.free_bytes) + " bytes free" : std::string("free space unknown");
  return out + ", " + std::to_string(s.reserve_bytes) + " kept in reserve for compaction and deletes";
}

Result<uint64_t> FileSystemBytes(Env& env, const std::string& path) {
  std::string p = path.empty() ? std::string(".") : path;
  for (;;) {
    auto space = env.Space(p);
    if (space.ok()) return space->total_bytes;
    if (!space.status().Is(Code::kNotFound)) return space.status();
    // Up one level: "a/b/c" -> "a/b", "/a" -> "/", "a" -> ".".
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    const size_t slash = p.rfind('/');
    if (p == "." || p == "/") return space.status();
    p = slash == std::string::npos ? std::string(".") : slash == 0 ? std::string("/") : p.substr(0, slash);
  }
}

}  // namespace kingx::engine
