// The crash-test harness (see crash_child.h).
#include "tests/engine/support/crash_child.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

namespace kingx::engine::test {

int RunCrashChildBytes(size_t record_bytes, const std::function<int(int fd)>& child,
                       const std::function<void(const void* record)>& on_record) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return -1;
  }
  if (pid == 0) {
    close(fds[0]);
    _exit(child(fds[1]));
  }
  close(fds[1]);
  std::vector<char> record(record_bytes);
  size_t have = 0;
  for (;;) {
    const ssize_t n = read(fds[0], record.data() + have, record_bytes - have);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    have += static_cast<size_t>(n);
    if (have == record_bytes) {
      on_record(record.data());
      have = 0;
    }
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return status;
}

bool ReportToParentBytes(int fd, const void* record, size_t bytes) {
  return write(fd, record, bytes) == static_cast<ssize_t>(bytes);
}

bool KilledAtPoint(int wait_status) { return WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 137; }

}  // namespace kingx::engine::test
