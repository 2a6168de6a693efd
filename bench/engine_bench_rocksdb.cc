// RocksDB (Debian's librocksdb) behind the BenchStore surface, with the
// durability that matches kingx sync=always: WriteOptions.sync = true, one
// WriteBatch per group commit. Defaults otherwise, as a user who picks RocksDB
// would run it.
#include "bench/bench_store.h"

#ifdef KINGX_BENCH_HAVE_ROCKSDB
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#endif

namespace kingx::bench {

#ifdef KINGX_BENCH_HAVE_ROCKSDB
namespace {

using engine::Status;

Status Convert(const rocksdb::Status& s) {
  if (s.ok()) return Status::OK();
  if (s.IsNotFound()) return Status::NotFound();
  return Status::IOError(s.ToString());
}

class RocksDbStore final : public BenchStore {
 public:
  ~RocksDbStore() override { Close(); }
  std::string Name() const override { return "rocksdb"; }

  Status Open(const std::string& dir, bool durable) override {
    Close();
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::DB* db = nullptr;
    Status s = Convert(rocksdb::DB::Open(options, dir, &db));
    if (!s.ok()) return s;
    db_.reset(db);
    write_options_.sync = durable;
    return Status::OK();
  }

  void Close() override {
    if (db_) (void)db_->Close();
    db_.reset();
  }

  Status Write(std::span<const KV> batch) override {
    rocksdb::WriteBatch wb;
    for (const KV& kv : batch) {
      rocksdb::Status s = wb.Put(rocksdb::Slice(kv.key.data(), kv.key.size()),
                                 rocksdb::Slice(kv.value.data(), kv.value.size()));
      if (!s.ok()) return Convert(s);
    }
    return Convert(db_->Write(write_options_, &wb));
  }

  Status Get(std::string_view key, std::string* value) override {
    return Convert(db_->Get(rocksdb::ReadOptions(), rocksdb::Slice(key.data(), key.size()), value));
  }

 private:
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::WriteOptions write_options_;
};

}  // namespace

std::unique_ptr<BenchStore> MakeRocksDbStore() { return std::make_unique<RocksDbStore>(); }
#else
std::unique_ptr<BenchStore> MakeRocksDbStore() { return nullptr; }
#endif

}  // namespace kingx::bench
