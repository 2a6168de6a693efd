#include "tests/engine/support/test_util.h"

#include <sys/mman.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "engine/coding.h"
#include "engine/compress.h"
#include "engine/hash.h"
#include "engine/manifest.h"
#include "engine/record.h"

namespace kingx::engine::test {

namespace {

// tmpfs makes the suite's thousands of fdatasyncs cheap; containers often
// give /dev/shm only 64 MiB, so use it only with room to spare.
bool ShmHasRoom() {
  struct statvfs st;
  if (access("/dev/shm", W_OK) != 0 || statvfs("/dev/shm", &st) != 0) return false;
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize >= (uint64_t{1} << 30);
}

}  // namespace

TempDir::TempDir() {
  std::string base;
  if (const char* t = std::getenv("KINGX_TEST_TMPDIR")) base = t;
  else base = ShmHasRoom() ? "/dev/shm" : "/tmp";
  std::string tmpl = base + "/kingx-test-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

IndexRegion::IndexRegion(uint64_t max_keys) {
  bytes_ = SharedIndex::RegionBytesFor(max_keys);
  base_ = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base_ == MAP_FAILED) throw std::runtime_error("mmap of the index region failed");
  auto idx = SharedIndex::Create(base_, bytes_, SharedIndex::kMinCapacity);
  if (!idx.ok()) throw std::runtime_error("SharedIndex::Create: " + idx.status().ToString());
  index_ = std::make_unique<SharedIndex>(std::move(idx.value()));
}

IndexRegion::~IndexRegion() {
  index_.reset();
  munmap(base_, bytes_);
}

TestDb::TestDb(Env& env, std::string dir, Options options)
    : env_(env), dir_(std::move(dir)), options_(std::move(options)) {}

Status TestDb::Open() {
  reader_.reset();
  writer_.reset();
  auto w = Writer::Open(env_, dir_, options_, region_.index());
  if (!w.ok()) return w.status();
  writer_ = std::move(w.value());
  reader_ = std::make_unique<Reader>(env_, dir_, options_, region_.index());
  return Status::OK();
}

void TestDb::Close() {
  reader_.reset();
  writer_.reset();
}

WriteResult TestDb::Put(std::string_view key, std::string_view value, Condition c) {
  std::string compressed;
  WriteOp op;
  op.key = key;
  op.content_type = "text/plain";
  op.codec = EncodeValue(value, options_.compression_level, options_.compress_min_bytes, &compressed);
  op.stored = op.codec == Codec::kZstd ? std::string_view(compressed) : value;
  op.raw_len = value.size();
  op.condition = c;
  WriteResult r;
  writer_->Apply({&op, 1}, {&r, 1});
  return r;
}

WriteResult TestDb::Delete(std::string_view key, Condition c) {
  WriteOp op;
  op.type = OpType::kDelete;
  op.key = key;
  op.condition = c;
  WriteResult r;
  writer_->Apply({&op, 1}, {&r, 1});
  return r;
}

Result<std::string> TestDb::Get(std::string_view key) {
  auto v = reader_->Get(key);
  if (!v.ok()) return v.status();
  return std::string(v->data);
}

std::string MakeValue(std::string_view key, uint64_t version, size_t len, bool compressible) {
  std::string prefix;
  for (unsigned char c : key) {  // hex, so binary keys keep the prefix parseable
    static const char* kHex = "0123456789abcdef";
    prefix += kHex[c >> 4];
    prefix += kHex[c & 15];
  }
  prefix += '|' + std::to_string(version) + '|';
  std::string v = prefix.substr(0, len);
  uint64_t x = std::hash<std::string_view>()(key) ^ (version * 0x9e3779b97f4a7c15ull);
  while (v.size() < len) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    v += compressible ? static_cast<char>('a' + (x % 4)) : static_cast<char>(x);
  }
  return v;
}

bool CheckValue(std::string_view key, std::string_view value, uint64_t* version) {
  // Parse "hexkey|version|" (possibly cut short for tiny values: then try versions is impossible;
  // callers use values long enough for the prefix).
  size_t bar1 = value.find('|');
  if (bar1 == std::string_view::npos) return false;
  size_t bar2 = value.find('|', bar1 + 1);
  if (bar2 == std::string_view::npos) return false;
  uint64_t ver = std::strtoull(std::string(value.substr(bar1 + 1, bar2 - bar1 - 1)).c_str(), nullptr, 10);
  for (bool c : {true, false}) {
    if (MakeValue(key, ver, value.size(), c) == value) {
      *version = ver;
      return true;
    }
  }
  return false;
}

bool HasTmpFiles(const std::string& dir) {
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().extension() == ".tmp") return true;
  return false;
}

Status PutAsServer(TestDb& db, const std::string& key, const std::string& value, bool compressible) {
  if (value.size() <= kPartBytes) return db.Put(key, value).status;
  WriteOp head;
  head.key = key;
  head.codec = compressible ? Codec::kZstd : Codec::kRaw;
  auto id = db.writer().BeginLarge(head);
  if (!id.ok()) return id.status();
  for (size_t off = 0; off < value.size(); off += kPartBytes) {
    const std::string_view part = std::string_view(value).substr(off, kPartBytes);
    std::string stored;
    if (compressible) {
      Status cs = CompressFrames(part, 1, &stored);
      if (!cs.ok()) {
        db.writer().AbortLarge(id.value());
        return cs;
      }
    }
    Status as = db.writer().AppendLarge(id.value(), compressible ? std::string_view(stored) : part);
    if (!as.ok()) return as;  // the large value is aborted
  }
  WriteResult r;
  db.writer().FinishLarge(id.value(), value.size(), &r);
  return r.status;
}

std::vector<std::string> SegmentFiles(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    uint32_t id;
    if (ParseSegmentFileName(e.path().filename().string(), &id)) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::map<std::string, std::string> FileBytesOf(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_regular_file()) out[e.path().filename().string()] = ReadFileBytes(e.path().string());
  return out;
}

void WriteFileBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

SegmentStats ActiveSegment(Writer& writer) {
  for (const SegmentStats& s : writer.Stats().per_segment)
    if (s.active) return s;
  return SegmentStats{};
}

bool DropCloseTrailer(const std::string& segment_path) {
  constexpr size_t kTrailerBytes = 24;  // entries, segment size, checksum (engine/FORMAT.md)
  const std::string hint = segment_path.substr(0, segment_path.size() - 4) + ".hint";
  if (!std::filesystem::exists(hint)) return false;
  const std::string bytes = ReadFileBytes(hint);
  if (bytes.size() < kTrailerBytes + 24) return false;
  const std::string_view body(bytes.data(), bytes.size() - 8);
  if (Checksum64(body.data(), body.size()) != GetFixed64(bytes.data() + bytes.size() - 8)) return false;
  WriteFileBytes(hint, bytes.substr(0, bytes.size() - kTrailerBytes));
  return true;
}

bool StripSeals(const std::string& dir) {
  auto listed = Manifest::Read(PosixEnv(), dir);
  if (!listed.ok()) return false;
  ManifestSegments segments = listed->segments;
  for (auto& [id, seg] : segments) seg.sealed_bytes = 0;
  WriteFileBytes(JoinPath(dir, Manifest::kFileName), Manifest::Encode(listed->seed, segments, listed->seq_high_water));
  return true;
}

void CopyDir(const std::string& from, const std::string& to) {
  namespace fs = std::filesystem;
  for (const auto& e : fs::directory_iterator(to)) fs::remove_all(e.path());
  for (const auto& e : fs::directory_iterator(from)) {
    if (e.path().filename() == "LOCK") continue;
    fs::copy_file(e.path(), fs::path(to) / e.path().filename());
  }
}

}  // namespace kingx::engine::test
