// Master-only signals reaching a worker (see master_signals.h).
#include "src/worker/master_signals.h"

#include "src/conf/log.h"

namespace kingx {

void OnMasterOnlySignal(const Config& config, int sig) {
  if (!config.single_process) return;
  if (sig == SIGUSR2) {
    KINGX_LOG_WARN("%s", kUsr2IgnoredLine);
  } else {
    KINGX_LOG_WARN("HUP ignored: a --single-process server does not reload its configuration; restart it to "
                   "apply a change");
  }
}

}  // namespace kingx
