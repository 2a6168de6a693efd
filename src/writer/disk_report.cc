// DiskReport (see disk_report.h).
#include "src/writer/disk_report.h"

#include "src/conf/log.h"

namespace kingx {

void DiskReport::Tick(engine::Writer& writer, uint64_t now_ms) {
  engine::DiskState st = writer.disk_state();
  const uint64_t gap = st.full ? kFullRefreshMs : kIdleRefreshMs;
  if (!started_ || now_ms - last_refresh_ms_ >= gap) {
    writer.RefreshDiskState();
    last_refresh_ms_ = now_ms;
    st = writer.disk_state();
  }
  if (!started_) {
    // A new writer process: its engine counts from zero.
    started_ = true;
    published_refused_ = logged_refused_ = st.refused_writes;
  }
  const uint64_t refused = st.refused_writes;
  if (refused > published_refused_) {
    stats_.writes_refused_no_space.fetch_add(refused - published_refused_, std::memory_order_relaxed);
    refused_while_full_ += refused - published_refused_;
    published_refused_ = refused;
  }
  const bool may_log = last_log_ms_ == 0 || now_ms - last_log_ms_ >= kLogIntervalMs;
  if (may_log && (refused > logged_refused_ || (st.full && !reported_full_))) {
    const uint64_t n = refused - logged_refused_;
    const std::string what = n == 0 ? std::string("writes will be refused")
                                    : std::to_string(n) + " write(s) refused since the last report";
    KINGX_LOG_ERROR("writer: %s: the disk holding %s is full (%s); reads are still served, and writes resume by "
                    "themselves once deleted data is compacted away or space is freed",
                    what.c_str(), data_dir_.c_str(), writer.DescribeDisk().c_str());
    logged_refused_ = refused;
    last_log_ms_ = now_ms;
    reported_full_ = true;
  } else if (reported_full_ && !st.full && refused == logged_refused_) {
    KINGX_LOG_WARN("writer: the disk holding %s has room again (%s): writes are accepted (%llu refused while it "
                   "was full)",
                   data_dir_.c_str(), writer.DescribeDisk().c_str(),
                   static_cast<unsigned long long>(refused_while_full_));
    refused_while_full_ = 0;
    reported_full_ = false;
  }
  stats_.disk_full.store(st.full ? 1 : 0, std::memory_order_relaxed);
  stats_.disk_free_bytes.store(st.free_bytes, std::memory_order_relaxed);
  stats_.disk_total_bytes.store(st.total_bytes, std::memory_order_relaxed);
  stats_.disk_reserve_bytes.store(st.reserve_bytes, std::memory_order_relaxed);
}

}  // namespace kingx
