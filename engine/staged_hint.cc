#include "engine/staged_hint.h"

namespace kingx::engine {

StagedHint::StagedHint(Env& env, std::string path, uint32_t segment_id, std::string what,
                       std::function<void(const std::string&)> log)
    : env_(env), path_(std::move(path)), tmp_path_(path_ + ".tmp"), what_(std::move(what)), log_(std::move(log)) {
  auto w = HintWriter::Create(env_, tmp_path_, segment_id);
  if (w.ok()) writer_ = std::move(w.value());
  else Fail("created", w.status());
}

StagedHint::~StagedHint() { Drop(); }

void StagedHint::Drop() {
  if (!writer_) return;
  writer_.reset();
  env_.RemoveFile(tmp_path_).ok();
}

void StagedHint::Fail(const std::string& step, const Status& s) {
  if (log_) log_("recovery: " + what_ + " not " + step + ": " + s.ToString());
  writer_.reset();
  env_.RemoveFile(tmp_path_).ok();  // also when its creation failed part way
  env_.RemoveFile(path_).ok();      // the hint it was to replace is stale or damaged
}

void StagedHint::Add(const HintEntry& e) {
  if (!writer_) return;
  writer_->Add(e);
  Status s = writer_->FlushIfLarge();
  if (!s.ok()) Fail("written", s);
}

void StagedHint::PublishSealed(uint64_t segment_bytes) {
  if (!writer_) return;
  Status s = writer_->Finish(segment_bytes);
  if (!s.ok()) return Fail("rewritten", s);
  writer_.reset();
  s = env_.Rename(tmp_path_, path_);
  if (!s.ok()) Fail("rewritten", s);
}

std::unique_ptr<HintWriter> StagedHint::PublishActive() {
  if (!writer_) return nullptr;
  Status s = writer_->Flush();
  if (s.ok()) s = env_.Rename(tmp_path_, path_);
  if (!s.ok()) {
    Fail("written", s);
    return nullptr;
  }
  return std::move(writer_);
}

}  // namespace kingx::engine
