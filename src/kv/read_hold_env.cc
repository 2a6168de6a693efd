// ReadHoldEnv (see read_hold_env.h).
#include "src/kv/read_hold_env.h"

#include <chrono>
#include <thread>

namespace kingx {
namespace {

class HeldFile final : public engine::File {
 public:
  HeldFile(std::unique_ptr<engine::File> base, ReadHoldEnv& env) : base_(std::move(base)), env_(env) {}

  engine::Status Append(std::string_view data) override { return base_->Append(data); }
  engine::Status PWrite(uint64_t offset, std::string_view data) override { return base_->PWrite(offset, data); }
  engine::Status Read(uint64_t offset, size_t n, char* scratch, size_t* read) const override {
    env_.WaitWhileHeld();
    return base_->Read(offset, n, scratch, read);
  }
  engine::Status Sync() override { return base_->Sync(); }
  engine::Status Truncate(uint64_t size) override { return base_->Truncate(size); }
  engine::Result<uint64_t> Size() const override { return base_->Size(); }

 private:
  std::unique_ptr<engine::File> base_;
  ReadHoldEnv& env_;
};

}  // namespace

ReadHoldEnv::ReadHoldEnv(engine::Env& base, std::string hold_path) : base_(base), hold_path_(std::move(hold_path)) {}

void ReadHoldEnv::WaitWhileHeld() {
  bool marked = false;
  for (uint64_t waited_ms = 0; waited_ms < kMaxHoldMs && base_.FileSize(hold_path_).ok(); waited_ms += kPollMs) {
    if (!marked) {
      marked = base_.OpenFile(hold_path_ + ".held", engine::OpenMode::kCreateTruncate).ok();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
  }
}

engine::Result<std::unique_ptr<engine::File>> ReadHoldEnv::OpenFile(const std::string& path, engine::OpenMode mode) {
  auto f = base_.OpenFile(path, mode);
  if (!f.ok()) return f.status();
  return std::unique_ptr<engine::File>(std::make_unique<HeldFile>(std::move(f.value()), *this));
}

}  // namespace kingx
