// fdatasync_overlap FILE THREADS SECONDS [WRITE_BYTES]: can two fdatasyncs of one file run at once on this disk?
// FILE is made 64 MiB of synced zeros first (as kingx's segment extender leaves the room ahead of the records:
// no size change, no metadata to journal). Then THREADS threads each loop: take the next WRITE_BYTES (default
// 8192) of the file (a shared append offset, wrapping), pwrite them, fdatasync. Prints fdatasyncs per second
// in total and the median / p90 latency of one. Bounded by SECONDS. With a fifth argument "pump", only the first
// thread writes; the others only call fdatasync in a loop, and only the writing thread's syncs are counted.
#include <fcntl.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
int main(int argc, char** argv) {
  if (argc < 4) return 2;
  const int threads = atoi(argv[2]);
  const double seconds = atof(argv[3]);
  const size_t wb = argc > 4 ? strtoul(argv[4], nullptr, 10) : 8192;
  const bool pump = argc > 5 && std::string(argv[5]) == "pump";
  const size_t file_bytes = 64u << 20;
  int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return 1;
  std::vector<char> zeros(1 << 20, 0);
  for (size_t off = 0; off < file_bytes; off += zeros.size())
    if (pwrite(fd, zeros.data(), zeros.size(), off) != (ssize_t)zeros.size()) return 1;
  if (fdatasync(fd) != 0) return 1;
  std::atomic<uint64_t> next{0};
  std::mutex mu;
  std::vector<double> lat;
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      if (pump && t > 0) {
        while (std::chrono::steady_clock::now() < end) if (fdatasync(fd) != 0) abort();
        return;
      }
      std::vector<char> buf(wb, 'x');
      std::vector<double> mine;
      while (std::chrono::steady_clock::now() < end) {
        const uint64_t off = (next.fetch_add(wb) % (file_bytes / wb * wb));
        if (pwrite(fd, buf.data(), wb, off) != (ssize_t)wb) abort();
        const auto t0 = std::chrono::steady_clock::now();
        if (fdatasync(fd) != 0) abort();
        mine.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
      }
      std::lock_guard l(mu);
      lat.insert(lat.end(), mine.begin(), mine.end());
    });
  }
  for (auto& t : ts) t.join();
  std::sort(lat.begin(), lat.end());
  printf("%sthreads %d syncs/s %.0f median_us %.0f p90_us %.0f n %zu\n", pump ? "pump " : "", threads, lat.size() / seconds,
         lat.empty() ? 0 : lat[lat.size() / 2], lat.empty() ? 0 : lat[lat.size() * 9 / 10], lat.size());
  close(fd);
  unlink(argv[1]);
}
