// compaction_bench: engine-level measurement for issue 5 (not a test).
//
// Fills --keys keys of --value-bytes bytes, then overwrites uniformly random
// keys in group-commit batches of --batch (sync=always) for --rounds x keys
// operations, in two phases:
//   phase 1 "no compaction": the first half of the overwrites (at --ops-per-sec);
//   phase 2 "compaction":    the second half, with a CompactionThread running
//                            (throttled to --rate-mib MiB/s).
// A reader thread does Reader::Get of random keys the whole time; its latency
// percentiles are reported per phase. Every --sample ops the bench records the
// bytes of the data directory's files and the live bytes, and reports the
// space amplification (disk / live) over time.
//
//   bench/compaction_bench.sh [--dir DIR] [--keys N] [--value-bytes N] ...
//
// Output: one JSON object on stdout (also the samples), progress on stderr.
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/compaction.h"
#include "engine/index.h"
#include "engine/reader.h"
#include "engine/writer.h"

using namespace kingx::engine;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::string dir = "/tmp/kingx-compaction-bench";
  uint64_t keys = 200000;
  uint64_t value_bytes = 300;
  uint64_t segment_bytes = 4 << 20;
  double rounds = 4;  // overwrites = rounds * keys
  uint64_t batch = 64;
  uint64_t sample = 20000;
  uint64_t rate_mib = 64;
  double dead_ratio = 0.5;
  uint64_t ops_per_sec = 30000;
  double max_dead_fraction = CompactionOptions().max_dead_fraction;  // overwrite rate (0 = as fast as the disk allows)
};

// Bytes of every file in dir; *hints gets those of the hint files.
uint64_t DirBytes(const std::string& dir, uint64_t* hints) {
  uint64_t n = 0;
  *hints = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const uint64_t size = std::filesystem::file_size(e.path(), ec);
    if (ec) continue;  // deleted by compaction meanwhile
    n += size;
    if (e.path().extension() == ".hint") *hints += size;
  }
  return n;
}

std::string Key(uint64_t i) {
  char b[32];
  std::snprintf(b, sizeof b, "key%012llu", static_cast<unsigned long long>(i));
  return b;
}

struct Latencies {
  std::vector<uint32_t> ns;  // per Get
  double Percentile(double p) {
    if (ns.empty()) return 0;
    std::sort(ns.begin(), ns.end());
    return ns[std::min(ns.size() - 1, static_cast<size_t>(p * static_cast<double>(ns.size())))];
  }
};

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--dir") a.dir = v;
    else if (k == "--keys") a.keys = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "--value-bytes") a.value_bytes = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "--segment-bytes") a.segment_bytes = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "--rounds") a.rounds = std::strtod(v.c_str(), nullptr);
    else if (k == "--batch") a.batch = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "--sample") a.sample = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "--rate-mib") a.rate_mib = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "--dead-ratio") a.dead_ratio = std::strtod(v.c_str(), nullptr);
    else if (k == "--max-dead-fraction") a.max_dead_fraction = std::strtod(v.c_str(), nullptr);
    else if (k == "--ops-per-sec") a.ops_per_sec = std::strtoull(v.c_str(), nullptr, 10);
    else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      return 64;
    }
  }
  std::filesystem::remove_all(a.dir);
  const size_t region_bytes = SharedIndex::RegionBytesFor(a.keys * 2);
  void* base = mmap(nullptr, region_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) return 70;
  auto index = SharedIndex::Create(base, region_bytes, SharedIndex::kMinCapacity);
  if (!index.ok()) return 70;
  Options o;
  o.segment_bytes = a.segment_bytes;
  o.compression_level = 0;
  o.compaction_dead_ratio = a.dead_ratio;
  auto writer = Writer::Open(PosixEnv(), a.dir, o, index.value());
  if (!writer.ok()) {
    std::fprintf(stderr, "open: %s\n", writer.status().ToString().c_str());
    return 70;
  }
  Writer& w = *writer.value();
  Reader reader(PosixEnv(), a.dir, o, index.value());

  std::mt19937_64 rng(42);
  std::string value(a.value_bytes, 'v');
  std::vector<std::string> keys(a.batch);
  std::vector<WriteOp> ops(a.batch);
  std::vector<WriteResult> results(a.batch);
  auto write_batch = [&](uint64_t first, bool random) {
    for (uint64_t j = 0; j < a.batch; ++j) {
      keys[j] = Key(random ? rng() % a.keys : (first + j) % a.keys);
      for (size_t b = 0; b < 8 && b < value.size(); ++b) value[b] = static_cast<char>('a' + rng() % 26);
      ops[j].key = keys[j];
      ops[j].stored = value;  // Apply copies the bytes into its batch
      ops[j].raw_len = value.size();
    }
    w.Apply(ops, results);
    for (const WriteResult& r : results)
      if (!r.status.ok()) {
        std::fprintf(stderr, "write: %s\n", r.status.ToString().c_str());
        std::exit(70);
      }
  };
  std::fprintf(stderr, "filling %llu keys\n", static_cast<unsigned long long>(a.keys));
  for (uint64_t i = 0; i < a.keys; i += a.batch) write_batch(i, false);

  std::atomic<int> phase{1};
  std::atomic<bool> stop{false};
  Latencies lat[3];
  std::thread reads([&] {
    std::mt19937_64 r(7);
    while (!stop.load(std::memory_order_relaxed)) {
      const int ph = phase.load(std::memory_order_relaxed);
      const std::string k = Key(r() % a.keys);
      const auto t0 = Clock::now();
      auto v = reader.Get(k);
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
      if (!v.ok() && !v.status().Is(Code::kBusy)) {
        std::fprintf(stderr, "read %s: %s\n", k.c_str(), v.status().ToString().c_str());
        std::exit(70);
      }
      lat[ph].ns.push_back(static_cast<uint32_t>(std::min<int64_t>(ns, UINT32_MAX)));
    }
  });

  CompactionOptions co;
  co.rate_bytes_per_sec = a.rate_mib << 20;
  co.max_dead_fraction = a.max_dead_fraction;
  co.log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  Compactor compactor(w, co);
  CompactionThread thread(compactor, 200);

  const uint64_t total = static_cast<uint64_t>(a.rounds * static_cast<double>(a.keys));
  double max_amp_phase2 = 0, sum_amp_phase2 = 0, max_seg_amp = 0, sum_seg_amp = 0;
  uint64_t n_phase2 = 0;
  std::string samples;
  const auto start = Clock::now();
  auto due = start;
  for (uint64_t done = 0, next_sample = 0; done < total; done += a.batch) {
    if (done >= total / 2 && phase.load() == 1) {
      phase.store(2);
      thread.Start();
      std::fprintf(stderr, "compaction on after %llu overwrites\n", static_cast<unsigned long long>(done));
    }
    write_batch(0, true);
    if (a.ops_per_sec > 0) {  // a sustained load: never a burst to catch up after falling behind
      due += std::chrono::microseconds(a.batch * 1000000 / a.ops_per_sec);
      const auto now = Clock::now();
      if (now < due) std::this_thread::sleep_until(due);
      else if (now - due > std::chrono::milliseconds(20)) due = now;
    }
    if (done >= next_sample) {
      next_sample += a.sample;
      const WriterStats s = w.Stats();
      uint64_t hints = 0;
      const uint64_t disk = DirBytes(a.dir, &hints);
      const double amp = static_cast<double>(disk) / static_cast<double>(s.live_bytes);
      const double t = std::chrono::duration<double>(Clock::now() - start).count();
      char line[256];
      std::snprintf(line, sizeof line, "%s{\"t\":%.2f,\"ops\":%llu,\"phase\":%d,\"disk\":%llu,\"hints\":%llu,\"live\":%llu,\"amp\":%.3f}",
                    samples.empty() ? "" : ",", t, static_cast<unsigned long long>(done), phase.load(),
                    static_cast<unsigned long long>(disk), static_cast<unsigned long long>(hints),
                    static_cast<unsigned long long>(s.live_bytes), amp);
      samples += line;
      // Steady state: skip the first quarter of phase 2 (compaction catching up with phase 1's garbage).
      if (phase.load() == 2 && done >= total / 2 + total / 8) {
        max_amp_phase2 = std::max(max_amp_phase2, amp);
        sum_amp_phase2 += amp;
        const double seg_amp = static_cast<double>(disk - hints) / static_cast<double>(s.live_bytes);
        max_seg_amp = std::max(max_seg_amp, seg_amp);
        sum_seg_amp += seg_amp;
        ++n_phase2;
      }
      std::fprintf(stderr, "t=%.1fs ops=%llu phase=%d disk=%.1fMiB live=%.1fMiB amp=%.2f\n", t,
                   static_cast<unsigned long long>(done), phase.load(), disk / 1048576.0, s.live_bytes / 1048576.0,
                   amp);
    }
  }
  thread.Stop();
  stop.store(true);
  reads.join();
  const CompactionStats cs = compactor.stats();
  std::printf(
      "{\"keys\":%llu,\"value_bytes\":%llu,\"segment_bytes\":%llu,\"overwrites\":%llu,\"batch\":%llu,"
      "\"rate_mib\":%llu,\"dead_ratio\":%.2f,\"ops_per_sec\":%llu,\"max_dead_fraction\":%.2f,\n"
      " \"get_ns_no_compaction\":{\"n\":%zu,\"p50\":%.0f,\"p99\":%.0f,\"p999\":%.0f},\n"
      " \"get_ns_compaction\":{\"n\":%zu,\"p50\":%.0f,\"p99\":%.0f,\"p999\":%.0f},\n"
      " \"space_amp_steady\":{\"max\":%.3f,\"mean\":%.3f,\"segments_only_max\":%.3f,\"segments_only_mean\":%.3f},\n"
      " \"compaction\":{\"passes\":%llu,\"segments_compacted\":%llu,\"segments_written\":%llu,"
      "\"bytes_read\":%llu,\"bytes_written\":%llu,\"records_moved\":%llu},\n"
      " \"samples\":[%s]}\n",
      static_cast<unsigned long long>(a.keys), static_cast<unsigned long long>(a.value_bytes),
      static_cast<unsigned long long>(a.segment_bytes), static_cast<unsigned long long>(total),
      static_cast<unsigned long long>(a.batch), static_cast<unsigned long long>(a.rate_mib), a.dead_ratio,
      static_cast<unsigned long long>(a.ops_per_sec), a.max_dead_fraction,
      lat[1].ns.size(), lat[1].Percentile(0.5), lat[1].Percentile(0.99), lat[1].Percentile(0.999), lat[2].ns.size(),
      lat[2].Percentile(0.5), lat[2].Percentile(0.99), lat[2].Percentile(0.999), max_amp_phase2,
      n_phase2 ? sum_amp_phase2 / static_cast<double>(n_phase2) : 0.0, max_seg_amp,
      n_phase2 ? sum_seg_amp / static_cast<double>(n_phase2) : 0.0,
      static_cast<unsigned long long>(cs.passes), static_cast<unsigned long long>(cs.segments_compacted),
      static_cast<unsigned long long>(cs.segments_written), static_cast<unsigned long long>(cs.bytes_read),
      static_cast<unsigned long long>(cs.bytes_written), static_cast<unsigned long long>(cs.records_moved),
      samples.c_str());
  writer.value().reset();
  std::filesystem::remove_all(a.dir);
  return 0;
}
