// LevelDB (Debian's libleveldb) behind the BenchStore surface, with the
// durability that matches kingx sync=always: WriteOptions.sync = true, one
// WriteBatch per group commit. Defaults otherwise (4 MiB write buffer, 8 MiB
// block cache, snappy), as a user who picks LevelDB would run it.
#include "bench/bench_store.h"

#ifdef KINGX_BENCH_HAVE_LEVELDB
#include <leveldb/db.h>
#include <leveldb/write_batch.h>
#endif

namespace kingx::bench {

#ifdef KINGX_BENCH_HAVE_LEVELDB
namespace {

using engine::Status;

Status Convert(const leveldb::Status& s) {
  if (s.ok()) return Status::OK();
  if (s.IsNotFound()) return Status::NotFound();
  return Status::IOError(s.ToString());
}

class LevelDbStore final : public BenchStore {
 public:
  ~LevelDbStore() override { Close(); }
  std::string Name() const override { return "leveldb"; }

  Status Open(const std::string& dir, bool durable) override {
    Close();
    leveldb::Options options;
    options.create_if_missing = true;
    leveldb::DB* db = nullptr;
    Status s = Convert(leveldb::DB::Open(options, dir, &db));
    if (!s.ok()) return s;
    db_.reset(db);
    write_options_.sync = durable;
    return Status::OK();
  }

  void Close() override { db_.reset(); }

  Status Write(std::span<const KV> batch) override {
    leveldb::WriteBatch wb;
    for (const KV& kv : batch) {
      wb.Put(leveldb::Slice(kv.key.data(), kv.key.size()), leveldb::Slice(kv.value.data(), kv.value.size()));
    }
    return Convert(db_->Write(write_options_, &wb));
  }

  Status Get(std::string_view key, std::string* value) override {
    return Convert(db_->Get(leveldb::ReadOptions(), leveldb::Slice(key.data(), key.size()), value));
  }

 private:
  std::unique_ptr<leveldb::DB> db_;
  leveldb::WriteOptions write_options_;
};

}  // namespace

std::unique_ptr<BenchStore> MakeLevelDbStore() { return std::make_unique<LevelDbStore>(); }
#else
std::unique_ptr<BenchStore> MakeLevelDbStore() { return nullptr; }
#endif

}  // namespace kingx::bench
