// cut_hint_bench: what building an online backup's hint of its active
// segment (engine::WriteCutHint) costs, the wait before the backup's response
// head, on a real segment file.
//
// Usage: cut_hint_bench --segment PATH --id N [--cut BYTES] --out PATH [--rounds R]
//   --segment: a segment file (e.g. the active one of a stopped server's data
//   directory); --id: its id; --cut: the cut's size (default: the whole file,
//   which must then end at a record); --out: the scratch hint (removed after
//   each round).
// Rounds alternate two ways of finishing the scratch file: "unsynced" (what
// WriteCutHint does) and "synced" (followed by an fdatasync of it, as the
// code before did), so both see the same page cache and disk. Each round
// prints one line "CUT_HINT {json}": mode, wall_ms, cpu_ms (this process's
// user+sys), hint_bytes. The segment is read once first (page cache warm, as
// a live server's active segment is). Exit 0, or 1 with a message.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "engine/cut_hint.h"
#include "engine/env.h"
#include "engine/options.h"

namespace {

using namespace kingx::engine;

double CpuMs() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

int Die(const std::string& what) {
  std::fprintf(stderr, "cut_hint_bench: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string segment, out;
  uint32_t id = 0;
  uint64_t cut = 0;
  int rounds = 6;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const char* v = argv[i + 1];
    if (a == "--segment") segment = v;
    else if (a == "--out") out = v;
    else if (a == "--id") id = static_cast<uint32_t>(std::strtoul(v, nullptr, 10));
    else if (a == "--cut") cut = std::strtoull(v, nullptr, 10);
    else if (a == "--rounds") rounds = std::atoi(v);
    else return Die("unknown argument " + a);
  }
  if (segment.empty() || out.empty() || id == 0 || rounds < 1) {
    return Die("usage: cut_hint_bench --segment PATH --id N [--cut BYTES] --out PATH [--rounds R]");
  }
  Env& env = PosixEnv();
  auto size = env.FileSize(segment);
  if (!size.ok()) return Die(size.status().ToString());
  if (cut == 0) cut = size.value();
  {  // warm the page cache
    auto f = env.OpenFile(segment, OpenMode::kRead);
    if (!f.ok()) return Die(f.status().ToString());
    std::string buf(1 << 20, '\0');
    for (uint64_t at = 0; at < size.value(); at += buf.size()) {
      size_t got = 0;
      if (!f.value()->Read(at, buf.size(), buf.data(), &got).ok() || got == 0) break;
    }
  }
  const RecordLimits limits{kLargestKeyBytes, kLargestValueBytes};
  for (int r = 0; r < rounds; ++r) {
    const bool synced = r % 2 == 1;
    const double cpu0 = CpuMs();
    const auto t0 = std::chrono::steady_clock::now();
    Status s = WriteCutHint(env, segment, id, cut, limits, out);
    if (s.ok() && synced) {
      auto f = env.OpenFile(out, OpenMode::kReadWrite);
      s = f.ok() ? f.value()->Sync() : f.status();
    }
    const double wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    const double cpu_ms = CpuMs() - cpu0;
    if (!s.ok()) return Die(s.ToString());
    auto bytes = env.FileSize(out);
    std::printf("CUT_HINT {\"mode\":\"%s\",\"wall_ms\":%.1f,\"cpu_ms\":%.1f,\"hint_bytes\":%llu,\"cut\":%llu}\n",
                synced ? "synced" : "unsynced", wall_ms, cpu_ms,
                static_cast<unsigned long long>(bytes.ok() ? bytes.value() : 0), static_cast<unsigned long long>(cut));
    std::fflush(stdout);
    (void)env.RemoveFile(out);
  }
  return 0;
}
