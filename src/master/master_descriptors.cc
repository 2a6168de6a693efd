// The master's descriptor count (master_descriptors.h).
#include "src/master/master_descriptors.h"

#include <dirent.h>
#include <fcntl.h>

#include <climits>

namespace kingx {
namespace {

uint64_t Listeners(const Config& c, uint32_t worker_indices) {
  const uint64_t per_address = c.accept == AcceptMode::kReusePort ? worker_indices : 1;
  return c.listen.size() * per_address + (c.admin_listen ? 1 : 0);
}

}  // namespace

uint64_t CountOpenDescriptors(uint64_t limit) {
  if (DIR* dir = opendir("/proc/self/fd"); dir != nullptr) {
    uint64_t entries = 0;
    while (const dirent* e = readdir(dir)) entries += e->d_name[0] != '.' ? 1 : 0;
    closedir(dir);
    return entries - 1;  // the directory's own descriptor
  }
  // No /proc (or no descriptor left to read it): ask each number.
  uint64_t open = 0;
  for (uint64_t fd = 0; fd < limit && fd <= static_cast<uint64_t>(INT_MAX); ++fd) {
    open += fcntl(static_cast<int>(fd), F_GETFD) >= 0 ? 1 : 0;
  }
  return open;
}

uint64_t DataDirHoldDescriptors(const Config& c) { return c.read_only ? 3 : 2; }

uint64_t MasterDescriptorsAtStart(const Config& c, uint64_t open_now) {
  const uint64_t eventfds = 2 * uint64_t{c.workers} + 2 + 1;
  return open_now + DataDirHoldDescriptors(c) + eventfds + Listeners(c, c.workers) + kTransientDescriptors;
}

uint64_t MasterDescriptorsAfterReload(const Config& next, uint64_t open_now, uint32_t listen_indices) {
  const uint64_t added = next.accept == AcceptMode::kReusePort && next.workers > listen_indices
                             ? next.listen.size() * uint64_t{next.workers - listen_indices}
                             : 0;
  return open_now + added + kTransientDescriptors;
}

std::string MasterLimitShortfall(const Config& c, uint64_t need, uint64_t open_now, uint64_t limit,
                                 const char* which) {
  if (need <= limit) return "";
  return "--workers " + std::to_string(c.workers) + " needs " + std::to_string(need) +
         " descriptors in the master (" + std::to_string(open_now) +
         " open now, an eventfd per worker slot, a listener per worker and address, " +
         std::to_string(kTransientDescriptors) + " to reopen logs), more than the " + which + " " +
         std::to_string(limit) + ": raise the limit (ulimit -n, systemd LimitNOFILE=) or lower --workers";
}

}  // namespace kingx
