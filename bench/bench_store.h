// BenchStore: the small key-value surface the engine micro-benchmark drives, so
// that the kingx engine, LevelDB and RocksDB run the very same workload.
//
// Single-threaded: one thread opens, writes, reads and closes a store. Every
// call returns a kingx Status; peers' errors are converted once, in their
// adapter (engine_bench_leveldb.cc, engine_bench_rocksdb.cc), to kIOError with
// the peer's message.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "engine/status.h"

namespace kingx::bench {

// One put of a batch. The views must stay valid until Write returns.
struct KV {
  std::string_view key;
  std::string_view value;
};

class BenchStore {
 public:
  virtual ~BenchStore() = default;

  // "kingx", "leveldb", "rocksdb".
  virtual std::string Name() const = 0;

  // Opens the store in dir (created if missing; an existing database is
  // recovered). durable: every Write is durable when it returns (kingx
  // sync=always; peers WriteOptions.sync=true: one fdatasync per batch for
  // all three); otherwise writes stop at the OS page cache. Errors: the
  // store's open error. After an error the store is closed.
  virtual kingx::engine::Status Open(const std::string& dir, bool durable) = 0;

  // Closes the store (flushing what its close flushes). Idempotent.
  virtual void Close() = 0;

  // Writes the batch as one group commit (kingx: one Writer::Apply; peers: one
  // WriteBatch). Requires an open store. Errors: the first failure.
  virtual kingx::engine::Status Write(std::span<const KV> batch) = 0;

  // Reads key into *value. kNotFound when absent. Requires an open store.
  virtual kingx::engine::Status Get(std::string_view key, std::string* value) = 0;

  // RAM of the store's key index in bytes when the store can tell (kingx:
  // the shared index table), else 0.
  virtual uint64_t IndexBytes() const { return 0; }
};

// Factories. The peers return nullptr when the benchmark was built without
// that library (meson did not find it).
std::unique_ptr<BenchStore> MakeKingxStore();
std::unique_ptr<BenchStore> MakeLevelDbStore();
std::unique_ptr<BenchStore> MakeRocksDbStore();

}  // namespace kingx::bench
