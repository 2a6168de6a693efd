// index_pages_bench: what page size does to SharedIndex lookups of a large index.
//
//   index_pages_bench [KEYS] [LOOKUPS] [ROUNDS]        (defaults 1000000 2000000 5)
//
// Builds one index of KEYS keys in each of three kinds of memory:
//   shared    MAP_SHARED | MAP_ANONYMOUS, as the server maps it: huge pages only where
//             /sys/kernel/mm/transparent_hugepage/shmem_enabled allows them;
//   private   MAP_PRIVATE | MAP_ANONYMOUS with the advice SharedIndex::Create gives
//             (MADV_HUGEPAGE): huge pages where transparent_hugepage/enabled is "madvise"
//             or "always", which stands in for shared memory on a machine that allows them;
//   private4k the same, the advice withdrawn (MADV_NOHUGEPAGE) before the table is filled.
// Then times LOOKUPS lookups of random existing keys per kind and round, the kinds
// interleaved in every round (so a change in the machine's load hits them alike). The
// lookups form a chain — each key is chosen from the location the previous lookup
// found — so their cache and TLB misses follow one another as a server's do (one lookup
// per request, other work between), rather than overlapping in the CPU.
// Output: per kind, CPU ns per lookup of every round and their median, and the huge pages
// backing its region (AnonHugePages / ShmemPmdMapped from /proc/self/smaps), as
// "name value unit" lines on stdout. Exit 1 when a lookup misses a key it inserted.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <ctime>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "engine/index.h"
#include "engine/key_probe.h"
#include "engine/location.h"

namespace {

using kingx::engine::Candidates;
using kingx::engine::MakeLocation;
using kingx::engine::SharedIndex;

struct Kind {
  const char* name = "";
  int flags = 0;
  bool withdraw_advice = false;
  void* base = nullptr;
  size_t bytes = 0;
  SharedIndex* index = nullptr;
  std::vector<double> ns_per_lookup;
};

// "k<i>" into buf (>= 24 bytes); returns the key.
std::string_view Key(uint64_t i, char* buf) {
  buf[0] = 'k';
  const char* end = std::to_chars(buf + 1, buf + 24, i).ptr;
  return std::string_view(buf, static_cast<size_t>(end - buf));
}

uint64_t ThreadCpuNs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

// Sum of the given smaps fields (kB) over the mappings inside [base, base + bytes).
uint64_t SmapsKb(const void* base, size_t bytes, const char* field) {
  std::ifstream smaps("/proc/self/smaps");
  const auto lo_want = reinterpret_cast<uintptr_t>(base);
  const uintptr_t hi_want = lo_want + bytes;
  bool inside = false;
  uint64_t kb = 0;
  const std::string prefix = std::string(field) + ":";
  for (std::string line; std::getline(smaps, line);) {
    unsigned long lo = 0, hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> lo >> dash >> hi && dash == '-') {
      inside = lo >= lo_want && hi <= hi_want;
    } else if (inside && line.rfind(prefix, 0) == 0) {
      kb += std::strtoull(line.c_str() + prefix.size(), nullptr, 10);
    }
  }
  return kb;
}

bool Build(Kind& k, uint64_t keys) {
  k.bytes = SharedIndex::RegionBytesFor(keys);
  k.base = mmap(nullptr, k.bytes, PROT_READ | PROT_WRITE, k.flags | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (k.base == MAP_FAILED) return false;
  auto created = SharedIndex::Create(k.base, k.bytes, 16);
  if (!created.ok()) return false;
  if (k.withdraw_advice) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    (void)madvise(static_cast<char*>(k.base) + page, k.bytes - page, MADV_NOHUGEPAGE);
  }
  k.index = new SharedIndex(std::move(created).value());
  if (!k.index->Reserve(keys).ok()) return false;
  char buf[24];
  for (uint64_t i = 0; i < keys; ++i) {
    // The key's hash as LookupKey computes it (PrefetchKey leaves it in the probe).
    kingx::engine::KeyProbe probe;
    k.index->PrefetchKey(Key(i, buf), &probe);
    if (probe.hash == 0 || !k.index->Insert(probe.hash, MakeLocation(1, i * 64)).ok()) return false;
  }
  return true;
}

// One chain of lookups; false when a key was not found.
// The key is spelled on the stack (a table of a million strings would add misses of its own).
// Timed in this thread's CPU time: a machine shared with other work takes the CPU away now and
// then, which wall time would count.
bool Time(Kind& k, uint64_t keys, uint64_t lookups) {
  Candidates c;
  uint64_t next = 12345;
  char buf[24];
  const uint64_t t0 = ThreadCpuNs();
  for (uint64_t n = 0; n < lookups; ++n) {
    if (!k.index->LookupKey(Key(next, buf), &c).ok() || c.count == 0) return false;
    // The next key depends on what this lookup found.
    next = (kingx::engine::LocationOffset(c.locations[0]) / 64 * 0x9E3779B97F4A7C15ull + n) % keys;
  }
  k.ns_per_lookup.push_back(static_cast<double>(ThreadCpuNs() - t0) / static_cast<double>(lookups));
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const uint64_t keys = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1000000;
  const uint64_t lookups = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 2000000;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 5;
  if (keys == 0 || lookups == 0 || rounds <= 0) {
    std::fprintf(stderr, "usage: index_pages_bench [KEYS] [LOOKUPS] [ROUNDS]\n");
    return 2;
  }
  std::vector<Kind> kinds(3);
  kinds[0].name = "shared";
  kinds[0].flags = MAP_SHARED;
  kinds[1].name = "private";
  kinds[1].flags = MAP_PRIVATE;
  kinds[2].name = "private4k";
  kinds[2].flags = MAP_PRIVATE;
  kinds[2].withdraw_advice = true;
  for (Kind& k : kinds) {
    if (!Build(k, keys)) {
      std::fprintf(stderr, "index_pages_bench: building the %s index failed\n", k.name);
      return 1;
    }
  }
  for (int r = 0; r < rounds; ++r) {
    for (size_t i = 0; i < kinds.size(); ++i) {
      Kind& k = kinds[(i + static_cast<size_t>(r)) % kinds.size()];  // rotate the order per round
      if (!Time(k, keys, lookups)) {
        std::fprintf(stderr, "index_pages_bench: a lookup in the %s index missed\n", k.name);
        return 1;
      }
    }
  }
  for (Kind& k : kinds) {
    std::printf("%s_rounds_ns_per_lookup", k.name);
    for (double v : k.ns_per_lookup) std::printf(" %.1f", v);
    std::vector<double> sorted = k.ns_per_lookup;
    std::sort(sorted.begin(), sorted.end());
    std::printf("\n%s_median_ns_per_lookup %.1f ns\n", k.name, sorted[sorted.size() / 2]);
    std::printf("%s_table_bytes %zu bytes\n", k.name, k.index->TableBytes());
    std::printf("%s_anon_huge_kb %" PRIu64 " kB\n", k.name, SmapsKb(k.base, k.bytes, "AnonHugePages"));
    std::printf("%s_shmem_pmd_kb %" PRIu64 " kB\n", k.name, SmapsKb(k.base, k.bytes, "ShmemPmdMapped"));
  }
  return 0;
}
