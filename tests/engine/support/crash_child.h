// The crash-test harness: runs a writer in a forked child that dies at an
// armed kill point (_exit(137), like kill -9) and reports what it saw
// acknowledged over a pipe, record by record, so the parent can reopen the
// database and check it against exactly those records.
//
//   int status = RunCrashChild<Msg>(
//       [&](int fd) { return Child(dir, options, point, fd); },  // in the child
//       [&](const Msg& m) { oracle.Record(m); });                // in the parent
//   REQUIRE(KilledAtPoint(status));
//
// Rec is a trivially copyable record the child writes with ReportToParent;
// the parent reads whole records until the child's end of the pipe closes
// (a record torn by the crash is dropped). The child's function returns an
// exit code, used only when the point never fired.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <type_traits>

namespace kingx::engine::test {

// Forks; the child runs child(write_fd) and _exits with its result; the
// parent calls on_record for every record of record_bytes bytes it reads, then
// reaps the child and returns its wait status (-1 if fork or pipe failed).
int RunCrashChildBytes(size_t record_bytes, const std::function<int(int fd)>& child,
                       const std::function<void(const void* record)>& on_record);

template <typename Rec>
int RunCrashChild(const std::function<int(int fd)>& child, const std::function<void(const Rec&)>& on_record) {
  static_assert(std::is_trivially_copyable_v<Rec>);
  return RunCrashChildBytes(sizeof(Rec), child,
                            [&](const void* p) { on_record(*static_cast<const Rec*>(p)); });
}

// In the child: sends one record to the parent. False if the pipe failed.
bool ReportToParentBytes(int fd, const void* record, size_t bytes);
template <typename Rec>
bool ReportToParent(int fd, const Rec& record) {
  static_assert(std::is_trivially_copyable_v<Rec>);
  return ReportToParentBytes(fd, &record, sizeof record);
}

// True when a wait status says the child died at its kill point.
bool KilledAtPoint(int wait_status);

}  // namespace kingx::engine::test
