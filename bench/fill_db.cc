// fill_db: writes a kingx data directory with N keys through the engine
// directly (batches of 1000, not durable until the final sync), for the
// restart and availability benchmarks that need a large database quickly.
//
// Usage: fill_db --data DIR --keys N [--value-bytes B] [--first K] [--seed S]
// Keys are "key-<i>" for i in [first, first + N), written in a shuffled
// order; a value is "<key>|" repeated and cut at B bytes (so a client that
// knows the key can check the bytes it gets back).
// The directory is opened with the server's default engine options, so the
// server opens it as it would its own. Exit 0, or 1 with a message.
#include <sys/mman.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "engine/env.h"
#include "engine/index.h"
#include "engine/options.h"
#include "engine/writer.h"

namespace {

using namespace kingx;

// "<key>|" repeated, cut at `bytes`: checkable by a client that knows the key.
std::string ValueFor(const std::string& key, size_t bytes) {
  std::string v;
  while (v.size() < bytes) v += key + "|";
  v.resize(bytes);
  return v;
}

int Die(const std::string& what) {
  std::fprintf(stderr, "fill_db: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  uint64_t keys = 0, first = 0, seed = 1;
  size_t value_bytes = 100;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--data") dir = argv[i + 1];
    else if (a == "--keys") keys = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--value-bytes") value_bytes = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--first") first = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--seed") seed = std::strtoull(argv[i + 1], nullptr, 10);
    else return Die("unknown option " + a);
  }
  if (dir.empty() || keys == 0) return Die("usage: fill_db --data DIR --keys N [--value-bytes B] [--first K]");

  const size_t region_bytes = engine::SharedIndex::RegionBytesFor(keys + first + 1000);
  void* region = mmap(nullptr, region_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (region == MAP_FAILED) return Die("mmap of the index region failed");
  auto index = engine::SharedIndex::Create(region, region_bytes, engine::SharedIndex::kMinCapacity);
  if (!index.ok()) return Die(index.status().ToString());
  engine::Options options;
  options.sync = engine::SyncMode::kNone;
  auto writer = engine::Writer::Open(engine::PosixEnv(), dir, options, index.value());
  if (!writer.ok()) return Die(writer.status().ToString());

  std::vector<uint64_t> order(keys);
  std::iota(order.begin(), order.end(), first);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(seed));
  constexpr size_t kBatch = 1000;
  std::vector<std::string> names(kBatch), values(kBatch);
  std::vector<engine::WriteOp> ops(kBatch);
  std::vector<engine::WriteResult> results(kBatch);
  for (uint64_t start = 0; start < keys; start += kBatch) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kBatch, keys - start));
    for (size_t j = 0; j < n; ++j) {
      names[j] = "key-" + std::to_string(order[start + j]);
      values[j] = ValueFor(names[j], value_bytes);
      ops[j] = engine::WriteOp{};
      ops[j].key = names[j];
      ops[j].codec = engine::Codec::kRaw;
      ops[j].stored = values[j];
      ops[j].raw_len = values[j].size();
    }
    (*writer)->Apply({ops.data(), n}, {results.data(), n});
    for (size_t j = 0; j < n; ++j) {
      if (!results[j].status.ok()) return Die("put " + names[j] + ": " + results[j].status.ToString());
    }
  }
  if (engine::Status s = (*writer)->Sync(); !s.ok()) return Die(s.ToString());
  writer->reset();
  std::printf("fill_db: %llu keys of %zu bytes in %s\n", static_cast<unsigned long long>(keys), value_bytes,
              dir.c_str());
  return 0;
}
