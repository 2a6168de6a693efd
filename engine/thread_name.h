// NameThisThread: gives the calling thread a name of its own (Linux
// pthread_setname_np; /proc/PID/task/TID/comm, top -H, perf and gdb show it),
// so that each of the writer's threads can be told apart from outside.
// Contract: `name` is at most 15 characters (longer names are cut to 15);
// failure is ignored (the thread keeps its process's name). Engine-internal.
#pragma once

#include <pthread.h>

#include <cstring>

namespace kingx::engine {

inline void NameThisThread(const char* name) {
  char cut[16];
  std::strncpy(cut, name, sizeof(cut) - 1);
  cut[sizeof(cut) - 1] = '\0';
  pthread_setname_np(pthread_self(), cut);
}

}  // namespace kingx::engine
