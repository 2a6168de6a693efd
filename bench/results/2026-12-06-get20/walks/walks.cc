// Do page walks of software prefetches overlap on this machine? A region of 4 KiB pages (anonymous,
// MADV_NOHUGEPAGE, every page touched) much larger than the TLB's reach; random cache lines in it.
// Per item: "work" stands for the ~1,000 instructions a GET runs between its prefetch and its load.
//   serial:  prefetch(a_i); work; load(a_i)                        (what one GET at a time does)
//   batchK:  prefetch(a_i..a_i+K-1); for each: work; load(a_j)     (K requests' hints issued together)
//   none:    work; load(a_i)
// ns per item, medians of interleaved repeats. Build: g++ -O2 -o walks walks.cc
#include <sys/mman.h>
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

static double NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static inline uint64_t Work(uint64_t x, int n) {
  for (int i = 0; i < n; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;  // a dependent chain the compiler keeps
    asm volatile("" : "+r"(x));
  }
  return x;
}

constexpr int kReps = 15;

int main(int argc, char** argv) {
  const size_t mb = argc > 1 ? strtoul(argv[1], nullptr, 10) : 256;
  const int work = argc > 2 ? atoi(argv[2]) : 300;  // multiply-adds: ~3 cycles each
  const size_t bytes = mb << 20;
  char* p = static_cast<char*>(mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (p == MAP_FAILED) return 1;
  madvise(p, bytes, MADV_NOHUGEPAGE);
  for (size_t i = 0; i < bytes; i += 4096) p[i] = static_cast<char>(i);
  const size_t n = 200000;
  std::mt19937_64 rng(42);
  std::vector<size_t> off(n);
  for (auto& o : off) o = (rng() % (bytes / 64)) * 64;
  const int modes[] = {-1, 0, 1, 4, 16};  // -1 = work alone, 0 = none, 1 = serial, K = batch of K
  std::vector<double> res[5];
  uint64_t sink = 0;
  for (int rep = 0; rep < kReps; ++rep) {
    for (int m = 0; m < 5; ++m) {
      const int k = modes[m];
      const double t0 = NowNs();
      uint64_t acc = rep;
      if (k < 0) {
        for (size_t i = 0; i < n; ++i) acc = Work(acc, work);
      } else if (k == 0) {
        for (size_t i = 0; i < n; ++i) {
          acc = Work(acc, work);
          acc += *static_cast<volatile unsigned char*>(static_cast<void*>(p + off[i]));
        }
      } else {
        for (size_t i = 0; i + k <= n; i += k) {
          for (int j = 0; j < k; ++j) __builtin_prefetch(p + off[i + j], 0, 3);
          for (int j = 0; j < k; ++j) {
            acc = Work(acc, work);
            acc += *static_cast<volatile unsigned char*>(static_cast<void*>(p + off[i + j]));
          }
        }
      }
      res[m].push_back((NowNs() - t0) / n);
      sink += acc;
    }
  }
  const char* names[] = {"work", "none", "serial", "batch4", "batch16"};
  printf("region %zu MiB, work %d steps; ns per item, median of %d interleaved repeats [min-max]\n", mb, work, kReps);
  for (int m = 0; m < 5; ++m) {
    std::vector<double> v = res[m];
    std::sort(v.begin(), v.end());
    // Per repeat, minus the same repeat's work alone: the memory part.
    std::vector<double> d;
    for (int r = 0; r < kReps; ++r) d.push_back(res[m][r] - res[0][r]);
    std::sort(d.begin(), d.end());
    printf("  %-8s %7.1f [%.1f-%.1f]  memory part (minus work, same repeat) %7.1f\n", names[m], v[kReps / 2], v[0],
           v[kReps - 1], d[kReps / 2]);
  }
  return static_cast<int>(sink & 1) * 0;
}
