// engine_bench: the storage engine micro-benchmark (issue 2), kingx against
// LevelDB and RocksDB on the same workload and durability.
//
// Per store, in a forked child process (so that each store's memory is its
// own): fill N keys of 100-byte values in random order (batches of 1000, not
// durable), close, reopen durable (timed: recovery), random reads, then
// overwrites of random keys with one durable group commit per batch of B ops
// (kingx sync=always = one fdatasync per Writer::Apply; peers WriteBatch with
// WriteOptions.sync = true), for each B in --batches. Then kingx alone with
// --big-keys keys: fill, reopen (recovery time) and RAM per key.
//
// Usage: engine_bench [--keys N] [--reads N] [--batches 1,16,64] [--big-keys N]
//                     [--stores kingx,leveldb,rocksdb] [--dir PARENT] [--json FILE]
// Prints a table with ratios kingx/peer; --json writes every figure.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_store.h"

namespace kingx::bench {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct Args {
  uint64_t keys = 1000000;
  uint64_t reads = 1000000;
  std::vector<uint64_t> batches = {1, 16, 64};
  uint64_t big_keys = 10000000;
  std::vector<std::string> stores = {"kingx", "leveldb", "rocksdb"};
  std::string dir = "/var/tmp";
  std::string json_path;
};

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

uint64_t StatusKb(const char* field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(field, 0) == 0) return std::strtoull(line.c_str() + std::strlen(field), nullptr, 10);
  }
  return 0;
}

std::string Key(uint64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "key%012llu", static_cast<unsigned long long>(i));
  return buf;
}

// 100-byte values cut from a pool of random bytes (incompressible, like user data).
class Values {
 public:
  Values() : pool_(1 << 20, '\0') {
    std::mt19937_64 rng(42);
    for (char& c : pool_) c = static_cast<char>(rng());
  }
  std::string_view Get(uint64_t i, uint64_t round) const {
    return std::string_view(pool_).substr((i * 7919 + round * 104729) % (pool_.size() - 100), 100);
  }

 private:
  std::string pool_;
};

[[noreturn]] void Die(const std::string& what, const engine::Status& s) {
  std::fprintf(stderr, "engine_bench: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(2);
}

// Fills keys 0..n-1 in random order, batches of 1000, not durable. Returns seconds.
double Fill(BenchStore& store, uint64_t n, const Values& values) {
  std::vector<uint64_t> order(n);
  for (uint64_t i = 0; i < n; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937_64(7));
  std::vector<std::string> keys;
  std::vector<KV> batch;
  auto t0 = Clock::now();
  for (uint64_t start = 0; start < n; start += 1000) {
    const uint64_t end = std::min(n, start + 1000);
    keys.clear();
    batch.clear();
    for (uint64_t j = start; j < end; ++j) keys.push_back(Key(order[j]));
    for (uint64_t j = start; j < end; ++j) batch.push_back({keys[j - start], values.Get(order[j], 0)});
    engine::Status s = store.Write(batch);
    if (!s.ok()) Die(store.Name() + " fill", s);
  }
  return Seconds(t0);
}

// Opens durable and returns the seconds it took.
double TimedOpen(BenchStore& store, const std::string& dir) {
  auto t0 = Clock::now();
  engine::Status s = store.Open(dir, /*durable=*/true);
  if (!s.ok()) Die(store.Name() + " open", s);
  return Seconds(t0);
}

json RunStore(BenchStore& store, const Args& a, const std::string& dir) {
  const Values values;
  json r;
  r["store"] = store.Name();
  engine::Status s = store.Open(dir, /*durable=*/false);
  if (!s.ok()) Die(store.Name() + " open", s);
  double t = Fill(store, a.keys, values);
  r["fill_ops_per_s"] = a.keys / t;
  store.Close();
  const uint64_t rss_before_kb = StatusKb("VmRSS:");
  r["open_s"] = TimedOpen(store, dir);
  r["rss_after_open_bytes_per_key"] = (StatusKb("VmRSS:") - std::min(rss_before_kb, StatusKb("VmRSS:"))) * 1024.0 / a.keys;
  r["index_bytes_per_key"] = static_cast<double>(store.IndexBytes()) / a.keys;

  std::mt19937_64 rng(11);
  std::uniform_int_distribution<uint64_t> pick(0, a.keys - 1);
  std::string value;
  uint64_t misses = 0;
  auto t0 = Clock::now();
  for (uint64_t i = 0; i < a.reads; ++i) {
    s = store.Get(Key(pick(rng)), &value);
    if (!s.ok() || value.size() != 100) ++misses;
  }
  r["read_ops_per_s"] = a.reads / Seconds(t0);
  r["read_misses"] = misses;

  uint64_t round = 1;
  for (uint64_t b : a.batches) {
    const uint64_t nbatches = std::max<uint64_t>(50, std::min<uint64_t>(2000, 200000 / b));
    std::vector<std::string> keys(b);
    std::vector<KV> batch(b);
    std::vector<double> lat_us;
    t0 = Clock::now();
    for (uint64_t n = 0; n < nbatches; ++n, ++round) {
      for (uint64_t j = 0; j < b; ++j) {
        const uint64_t k = pick(rng);
        keys[j] = Key(k);
        batch[j] = {keys[j], values.Get(k, round)};
      }
      auto tb = Clock::now();
      s = store.Write(batch);
      if (!s.ok()) Die(store.Name() + " overwrite", s);
      lat_us.push_back(Seconds(tb) * 1e6);
    }
    const double secs = Seconds(t0);
    std::sort(lat_us.begin(), lat_us.end());
    json o;
    o["batch"] = b;
    o["ops_per_s"] = nbatches * b / secs;
    o["commits_per_s"] = nbatches / secs;
    o["commit_p50_us"] = lat_us[lat_us.size() / 2];
    o["commit_p99_us"] = lat_us[lat_us.size() * 99 / 100];
    r["overwrite"].push_back(o);
  }
  store.Close();
  r["peak_rss_bytes"] = StatusKb("VmHWM:") * 1024;
  return r;
}

json RunBig(const Args& a, const std::string& dir) {
  auto store = MakeKingxStore();
  const Values values;
  json r;
  r["keys"] = a.big_keys;
  engine::Status s = store->Open(dir, /*durable=*/false);
  if (!s.ok()) Die("kingx open", s);
  r["fill_ops_per_s"] = a.big_keys / Fill(*store, a.big_keys, values);
  store->Close();
  const uint64_t rss_before_kb = StatusKb("VmRSS:");
  r["open_s"] = TimedOpen(*store, dir);
  r["rss_after_open_bytes_per_key"] = (StatusKb("VmRSS:") - std::min(rss_before_kb, StatusKb("VmRSS:"))) * 1024.0 / a.big_keys;
  r["index_bytes_per_key"] = static_cast<double>(store->IndexBytes()) / a.big_keys;
  store->Close();
  return r;
}

// Runs fn in a forked child (its own address space and RSS) and returns its JSON.
template <class Fn>
json InChild(Fn fn) {
  int fds[2];
  if (pipe(fds) != 0) return json{{"error", "pipe"}};
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    const std::string out = fn().dump();
    size_t off = 0;
    while (off < out.size()) {
      ssize_t n = write(fds[1], out.data() + off, out.size() - off);
      if (n <= 0) _exit(3);
      off += static_cast<size_t>(n);
    }
    _exit(0);
  }
  close(fds[1]);
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || text.empty()) return json{{"error", "child failed"}};
  return json::parse(text, nullptr, /*allow_exceptions=*/false);
}

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(item);
  return out;
}

bool ParseArgs(int argc, char** argv, Args* a) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--keys") a->keys = std::stoull(v);
    else if (k == "--reads") a->reads = std::stoull(v);
    else if (k == "--big-keys") a->big_keys = std::stoull(v);
    else if (k == "--dir") a->dir = v;
    else if (k == "--json") a->json_path = v;
    else if (k == "--stores") a->stores = Split(v);
    else if (k == "--batches") {
      a->batches.clear();
      for (const auto& b : Split(v)) a->batches.push_back(std::max<uint64_t>(1, std::stoull(b)));
    } else return false;
  }
  return argc % 2 == 1 && a->keys > 0;
}

std::string Ratio(const json& a, const json& b) {
  if (!a.is_number() || !b.is_number() || b.get<double>() == 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", a.get<double>() / b.get<double>());
  return buf;
}

void PrintTable(const json& results) {
  std::printf("%-10s %12s %8s %12s %10s %10s", "store", "fill op/s", "open s", "read op/s", "idx B/key", "rss B/key");
  for (const auto& o : results[0]["overwrite"]) std::printf(" %11s", ("ow b" + std::to_string(o["batch"].get<uint64_t>())).c_str());
  std::printf("\n");
  for (const auto& r : results) {
    if (r.contains("error")) continue;
    std::printf("%-10s %12.0f %8.3f %12.0f %10.1f %10.1f", r["store"].get<std::string>().c_str(),
                r["fill_ops_per_s"].get<double>(), r["open_s"].get<double>(), r["read_ops_per_s"].get<double>(),
                r["index_bytes_per_key"].get<double>(), r["rss_after_open_bytes_per_key"].get<double>());
    for (const auto& o : r["overwrite"]) std::printf(" %11.0f", o["ops_per_s"].get<double>());
    std::printf("\n");
  }
  for (size_t p = 1; p < results.size(); ++p) {
    const json& k = results[0];
    const json& r = results[p];
    if (r.contains("error") || k.contains("error")) continue;
    std::printf("%s / %s: fill %s, read %s, open time %s", k["store"].get<std::string>().c_str(),
                r["store"].get<std::string>().c_str(), Ratio(k["fill_ops_per_s"], r["fill_ops_per_s"]).c_str(),
                Ratio(k["read_ops_per_s"], r["read_ops_per_s"]).c_str(), Ratio(k["open_s"], r["open_s"]).c_str());
    for (size_t i = 0; i < k["overwrite"].size() && i < r["overwrite"].size(); ++i) {
      std::printf(", overwrite b%llu %s", static_cast<unsigned long long>(k["overwrite"][i]["batch"].get<uint64_t>()),
                  Ratio(k["overwrite"][i]["ops_per_s"], r["overwrite"][i]["ops_per_s"]).c_str());
    }
    std::printf("\n");
  }
}

int Main(int argc, char** argv) {
  Args a;
  if (!ParseArgs(argc, argv, &a)) {
    std::fprintf(stderr, "usage: engine_bench [--keys N] [--reads N] [--batches 1,16,64] [--big-keys N] "
                         "[--stores kingx,leveldb,rocksdb] [--dir PARENT] [--json FILE]\n");
    return 1;
  }
  std::string templ = a.dir + "/kingx-engine-bench-XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::filesystem::path root = templ;
  json results = json::array();
  for (const std::string& name : a.stores) {
    std::unique_ptr<BenchStore> store = name == "kingx" ? MakeKingxStore()
                                        : name == "leveldb" ? MakeLevelDbStore()
                                        : name == "rocksdb" ? MakeRocksDbStore() : nullptr;
    if (store == nullptr) {
      results.push_back(json{{"store", name}, {"error", "not built in"}});
      continue;
    }
    const std::string dir = (root / name).string();
    std::fprintf(stderr, "engine_bench: %s, %llu keys\n", name.c_str(), static_cast<unsigned long long>(a.keys));
    json r = InChild([&] { return RunStore(*store, a, dir); });
    r["store"] = name;
    results.push_back(r);
    std::filesystem::remove_all(dir);
  }
  json out{{"keys", a.keys}, {"reads", a.reads}, {"stores", results}};
  if (a.big_keys > 0) {
    std::fprintf(stderr, "engine_bench: kingx, %llu keys (recovery)\n", static_cast<unsigned long long>(a.big_keys));
    out["kingx_big"] = InChild([&] { return RunBig(a, (root / "kingx-big").string()); });
    std::filesystem::remove_all(root / "kingx-big");
  }
  std::filesystem::remove_all(root);
  PrintTable(results);
  if (out.contains("kingx_big")) std::printf("kingx %s keys: %s\n", std::to_string(a.big_keys).c_str(), out["kingx_big"].dump().c_str());
  if (!a.json_path.empty()) std::ofstream(a.json_path) << out.dump(1) << "\n";
  return 0;
}

}  // namespace
}  // namespace kingx::bench

int main(int argc, char** argv) { return kingx::bench::Main(argc, argv); }
