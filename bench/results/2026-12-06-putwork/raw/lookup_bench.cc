// lookup_bench: the writer's cost per op of a batch of overwrites of random
// keys, with the engine alone in one process (no HTTP, no queue, no
// fdatasync: SyncMode::kNone), so that what a change to the batch's lookups
// saves or costs is not drowned by the server's other work.
//
// Fills --keys keys (100 B values, batches of 1000, random order), then times
// --batches batches of --ops overwrites of uniformly random keys through
// Writer::Apply (each batch also forecast first with --forecast, as the write
// stall does): thread CPU time and wall time per op, per repetition.
//
//   lookup_bench DIR [--keys 1000000] [--ops 32] [--batches 20000] [--reps 5] [--forecast]
//
// Build (against an engine library built with the same flags as kingx):
//   g++ -std=c++20 -O2 -flto=auto -I REPO lookup_bench.cc LIBENGINE.a -lzstd -lxxhash -o lookup_bench
#include <sys/mman.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "engine/env.h"
#include "engine/index.h"
#include "engine/options.h"
#include "engine/writer.h"

using namespace kingx::engine;

namespace {

double Now(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

std::string Key(uint64_t n) { return "k" + std::to_string(n); }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: lookup_bench DIR [--keys N] [--ops N] [--batches N] [--reps N] [--forecast]\n");
    return 2;
  }
  const std::string dir = argv[1];
  uint64_t keys = 1000000, ops_per_batch = 32, batches = 20000, reps = 5;
  bool forecast = false;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> uint64_t { return i + 1 < argc ? std::strtoull(argv[++i], nullptr, 10) : 0; };
    if (a == "--keys") keys = next();
    else if (a == "--ops") ops_per_batch = next();
    else if (a == "--batches") batches = next();
    else if (a == "--reps") reps = next();
    else if (a == "--forecast") forecast = true;
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (keys == 0 || ops_per_batch == 0) return 2;
  const size_t region_bytes = SharedIndex::RegionBytesFor(4 * keys);
  void* region = mmap(nullptr, region_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (region == MAP_FAILED) return 1;
  auto index = SharedIndex::Create(region, region_bytes, SharedIndex::kMinCapacity);
  if (!index.ok()) return 1;
  std::optional<SharedIndex> idx(std::move(index.value()));
  Options o;
  o.sync = SyncMode::kNone;
  auto opened = Writer::Open(PosixEnv(), dir, o, *idx);
  if (!opened.ok()) {
    std::fprintf(stderr, "open: %s\n", opened.status().ToString().c_str());
    return 1;
  }
  Writer& w = *opened.value();
  const std::string value(100, 'v');
  std::mt19937_64 rng(42);
  std::vector<std::string> names;
  std::vector<WriteOp> ops;
  std::vector<WriteResult> results;
  auto apply = [&](const std::vector<uint64_t>& ids) {
    names.resize(ids.size());
    ops.assign(ids.size(), WriteOp{});
    results.resize(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      names[i] = Key(ids[i]);
      ops[i].type = OpType::kPut;
      ops[i].key = names[i];
      ops[i].codec = Codec::kRaw;
      ops[i].stored = value;
      ops[i].raw_len = value.size();
    }
    if (forecast) (void)w.Forecast(ops);
    w.Apply(ops, results);
    for (const WriteResult& r : results) {
      if (!r.status.ok()) {
        std::fprintf(stderr, "write: %s\n", r.status.ToString().c_str());
        std::exit(1);
      }
    }
  };
  std::vector<uint64_t> order(keys);
  for (uint64_t i = 0; i < keys; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  for (uint64_t at = 0; at < keys; at += 1000) {
    apply(std::vector<uint64_t>(order.begin() + at, order.begin() + std::min(keys, at + 1000)));
  }
  std::vector<uint64_t> ids(ops_per_batch);
  for (uint64_t rep = 0; rep < reps; ++rep) {
    const double cpu0 = Now(CLOCK_THREAD_CPUTIME_ID), wall0 = Now(CLOCK_MONOTONIC);
    for (uint64_t b = 0; b < batches; ++b) {
      for (uint64_t& id : ids) id = rng() % keys;
      apply(ids);
    }
    const double n = double(batches) * ops_per_batch;
    std::printf("{\"rep\": %lu, \"keys\": %lu, \"ops\": %lu, \"forecast\": %d, \"cpu_ns_per_op\": %.1f, "
                "\"wall_ns_per_op\": %.1f}\n",
                rep, keys, ops_per_batch, forecast ? 1 : 0, (Now(CLOCK_THREAD_CPUTIME_ID) - cpu0) / n * 1e9,
                (Now(CLOCK_MONOTONIC) - wall0) / n * 1e9);
    std::fflush(stdout);
  }
  return 0;
}
