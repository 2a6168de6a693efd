// The kingx engine behind the BenchStore surface: a Writer and a Reader over a
// SharedIndex in an anonymous shared mapping, as the server's master sets it up
// (one process here: the benchmark measures the engine, not the IPC).
#include <sys/mman.h>

#include <optional>
#include <vector>

#include "bench/bench_store.h"
#include "engine/env.h"
#include "engine/index.h"
#include "engine/options.h"
#include "engine/reader.h"
#include "engine/writer.h"

namespace kingx::bench {
namespace {

using engine::Status;

// Virtual size only (MAP_NORESERVE): pages are touched as the table grows.
constexpr uint64_t kMaxKeys = 64ull << 20;

class KingxStore final : public BenchStore {
 public:
  ~KingxStore() override {
    Close();
    if (region_ != nullptr) munmap(region_, region_bytes_);
  }

  std::string Name() const override { return "kingx"; }

  Status Open(const std::string& dir, bool durable) override {
    Close();
    if (region_ == nullptr) {
      region_bytes_ = engine::SharedIndex::RegionBytesFor(kMaxKeys);
      void* p = mmap(nullptr, region_bytes_, PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (p == MAP_FAILED) return Status::IOError("mmap of the index region failed");
      region_ = p;
      auto index = engine::SharedIndex::Create(region_, region_bytes_, engine::SharedIndex::kMinCapacity);
      if (!index.ok()) return index.status();
      index_.emplace(std::move(index.value()));
    }
    options_ = engine::Options{};
    options_.sync = durable ? engine::SyncMode::kAlways : engine::SyncMode::kNone;
    auto writer = engine::Writer::Open(engine::PosixEnv(), dir, options_, *index_);
    if (!writer.ok()) return writer.status();
    writer_ = std::move(writer.value());
    reader_ = std::make_unique<engine::Reader>(engine::PosixEnv(), dir, options_, *index_);
    return Status::OK();
  }

  void Close() override {
    reader_.reset();
    writer_.reset();
  }

  Status Write(std::span<const KV> batch) override {
    ops_.resize(batch.size());
    results_.resize(batch.size());
    for (size_t i = 0; i < batch.size(); ++i) {
      engine::WriteOp& op = ops_[i];
      op.type = engine::OpType::kPut;
      op.key = batch[i].key;
      op.codec = engine::Codec::kRaw;  // 100-byte values are below compress_min_bytes anyway
      op.stored = batch[i].value;
      op.raw_len = batch[i].value.size();
    }
    writer_->Apply(ops_, results_);
    for (const engine::WriteResult& r : results_) {
      if (!r.status.ok()) return r.status;
    }
    return Status::OK();
  }

  Status Get(std::string_view key, std::string* value) override {
    auto v = reader_->Get(key);
    if (!v.ok()) return v.status();
    value->assign(v->data);
    return Status::OK();
  }

  uint64_t IndexBytes() const override { return index_ ? index_->TableBytes() : 0; }

 private:
  void* region_ = nullptr;
  size_t region_bytes_ = 0;
  std::optional<engine::SharedIndex> index_;
  engine::Options options_;
  std::unique_ptr<engine::Writer> writer_;
  std::unique_ptr<engine::Reader> reader_;
  std::vector<engine::WriteOp> ops_;          // reused across batches
  std::vector<engine::WriteResult> results_;  // reused across batches
};

}  // namespace

std::unique_ptr<BenchStore> MakeKingxStore() { return std::make_unique<KingxStore>(); }

}  // namespace kingx::bench
