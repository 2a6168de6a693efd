#include "engine/read_exact.h"

#include <algorithm>

namespace kingx::engine {
namespace {

// Bytes asked of one read: a piece that fails says where within it by the
// bytes it returned before the error.
constexpr uint64_t kPieceBytes = 8 << 20;

}  // namespace

Status ReadExact(const File& file, const std::string& path, uint64_t offset, uint64_t n, char* out) {
  uint64_t done = 0;
  while (done < n) {
    const size_t want = static_cast<size_t>(std::min(kPieceBytes, n - done));
    size_t got = 0;
    Status s = file.Read(offset + done, want, out + done, &got);
    if (!s.ok()) {
      return Status(s.code(), "cannot read " + path + " at offset " + std::to_string(offset + done + got) + " (" +
                                  std::string(s.message()) + ")");
    }
    done += got;
    if (got < want) {
      return Status::IOError(path + " ends at offset " + std::to_string(offset + done) + ", before the " +
                             std::to_string(offset + n) + " bytes it held when its size was taken");
    }
  }
  return Status::OK();
}

Status ReadExact(Env& env, const std::string& path, uint64_t offset, uint64_t n, char* out) {
  auto file = env.OpenFile(path, OpenMode::kRead);
  if (!file.ok()) return file.status();
  return ReadExact(*file.value(), path, offset, n, out);
}

}  // namespace kingx::engine
