// Measurement harness (not part of the repository's build; compile line in ../NOTE.md): one
// compaction pass over a prepared database, for callgrind and peak RSS.
//   harness small DIR   : 30,000 puts of 100 B values, a third overwritten
//                         (segments of 1 MiB), then one pick_all pass
//   harness big DIR     : one 64 MiB value + 100 small, then (a fresh process)
//   harness bigpass DIR : open and one pick_all pass; prints VmHWM before/after
#include <sys/resource.h>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include "engine/compaction.h"
#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;
// A "Name:   N kB" field of /proc/self/status.
static long StatusKb(const std::string& name) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(name, 0) == 0) return std::stol(line.substr(name.size()));
  return -1;
}
static long Hwm() { return StatusKb("VmHWM:"); }
static long RssAnon() { return StatusKb("RssAnon:"); }
int main(int argc, char** argv) {
  const std::string mode = argv[1], dir = argv[2];
  Options o;
  o.compression_level = 0;
  o.segment_bytes = 1 << 20;
  o.max_value_bytes = 128u << 20;
  TestDb db(PosixEnv(), dir, o);
  if (!db.Open().ok()) return 2;
  if (mode == "small") {
    for (int round = 0; round < 2; ++round)
      for (int i = 0; i < 30000; ++i) {
        if (round == 1 && i % 3 != 0) continue;
        char k[16];
        std::snprintf(k, sizeof k, "k%06d", i);
        if (!db.Put(k, MakeValue(k, round, 100, false)).status.ok()) return 3;
      }
  } else if (mode == "big") {
    if (!db.Put("big", MakeValue("big", 1, 64u << 20, false)).status.ok()) return 3;
    for (int i = 0; i < 100; ++i)
      if (!db.Put("s" + std::to_string(i), MakeValue("s", i, 1000, false)).status.ok()) return 3;
    return 0;
  }
  CompactionOptions co;
  co.rate_bytes_per_sec = 0;
  co.free_bytes = [](const std::string&) -> Result<uint64_t> { return uint64_t{1} << 40; };
  co.pick_all = true;

  Compactor c(db.writer(), co);
  const long before = Hwm(), anon_before = RssAnon();
  PassReport r;
  const Status s = c.RunOnce(&r);
  std::printf("%s: %s inputs %u outputs %u; VmHWM before %ld kB after %ld kB; RssAnon before %ld kB\n",
              mode.c_str(), s.ToString().c_str(), r.inputs, r.outputs, before, Hwm(), anon_before);
  if (mode == "bigpass") {
    auto v = db.Get("big");
    if (!v.ok() || v.value() != MakeValue("big", 1, 64u << 20, false)) { std::printf("big value wrong\n"); return 4; }
  }
  return s.ok() ? 0 : 1;
}
