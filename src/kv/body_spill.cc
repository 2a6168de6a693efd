// SpillFile (see body_spill.h).
#include "src/kv/body_spill.h"

#include <unistd.h>

#include <atomic>

namespace kingx {

namespace {
std::atomic<uint64_t> next_spill_id{0};
}  // namespace

engine::Result<std::unique_ptr<SpillFile>> SpillFile::Create(engine::Env& env, const std::string& dir) {
  // The pid and a process-wide counter make the name unique among the
  // workers and threads sharing dir; it lives only until the unlink below.
  const std::string path = dir + "/.body-spill-" + std::to_string(getpid()) + "-" +
                           std::to_string(next_spill_id.fetch_add(1, std::memory_order_relaxed)) + ".tmp";
  auto file = env.OpenFile(path, engine::OpenMode::kCreateExclusive);
  if (!file.ok()) return file.status();
  if (engine::Status s = env.RemoveFile(path); !s.ok()) return s;
  return std::unique_ptr<SpillFile>(new SpillFile(std::move(file.value())));
}

engine::Status SpillFile::Append(std::string_view data) {
  engine::Status s = file_->PWrite(size_, data);
  if (s.ok()) size_ += data.size();
  return s;
}

engine::Status SpillFile::Read(uint64_t offset, uint64_t n, std::string* out) const {
  out->resize(n);
  uint64_t done = 0;
  while (done < n) {
    size_t got = 0;
    engine::Status s = file_->Read(offset + done, n - done, out->data() + done, &got);
    if (!s.ok()) return s;
    if (got == 0) return engine::Status::IOError("a body spill file is shorter than what was written to it");
    done += got;
  }
  return engine::Status::OK();
}

}  // namespace kingx
