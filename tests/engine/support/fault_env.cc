#include "tests/engine/support/fault_env.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>

namespace kingx::engine::test {
namespace {

std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

Status Injected(Code code, const char* what, const std::string& path) {
  std::string msg = std::string("injected fault on ") + what + " " + path;
  if (code == Code::kNoSpace) return Status::NoSpace(msg);
  if (code == Code::kBusy) return Status::Busy(msg);
  return Status::IOError(msg);
}

class FaultFile final : public File {
 public:
  // path: the name the file was opened under (hooks, faults and messages
  // keep using it); the durability state follows the file's current name.
  FaultFile(FaultInjectionEnv& env, std::string path, std::unique_ptr<File> base)
      : env_(env), path_(std::move(path)), base_(std::move(base)) {
    env_.NameHandle(this, path_);
  }
  ~FaultFile() override { env_.ForgetHandle(this); }

  Status Append(std::string_view data) override {
    if (auto hook = env_.WriteHook()) hook(path_);
    env_.NoteChange("write", path_);
    size_t keep = data.size();
    Status s = env_.Check(FaultOp::kWrite, path_, &keep);
    if (!s.ok()) {
      if (keep > 0) base_->Append(data.substr(0, std::min(keep, data.size()))).ok();
      return s;
    }
    const uint64_t room = env_.DiskRoom(path_, data.size());
    if (room < data.size()) {
      if (room > 0) base_->Append(data.substr(0, room)).ok();
      return Status::NoSpace("simulated disk full: write " + path_);
    }
    return base_->Append(data);
  }
  Status PWrite(uint64_t offset, std::string_view data) override {
    if (auto hook = env_.WriteHook()) hook(path_);
    env_.NoteChange("pwrite", path_);
    size_t keep = data.size();
    Status s = env_.Check(FaultOp::kWrite, path_, &keep);
    if (!s.ok()) {
      const uint64_t token = env_.BeforePWrite(this, *base_, offset, std::min(keep, data.size()));
      if (keep > 0) base_->PWrite(offset, data.substr(0, std::min(keep, data.size()))).ok();
      env_.AfterPWrite(this, token);
      return s;
    }
    const uint64_t token = env_.BeforePWrite(this, *base_, offset, data.size());
    struct Done {
      FaultInjectionEnv& env;
      const File* file;
      uint64_t token;
      ~Done() { env.AfterPWrite(file, token); }
    } done{env_, this, token};
    auto size = base_->Size();
    const uint64_t end = offset + data.size();
    const uint64_t growth = size.ok() && end > size.value() ? end - size.value() : 0;
    const uint64_t room = env_.DiskRoom(path_, growth);
    if (room < growth) {
      const uint64_t fits = data.size() - (growth - room);
      if (fits > 0) base_->PWrite(offset, data.substr(0, fits)).ok();
      return Status::NoSpace("simulated disk full: pwrite " + path_);
    }
    return base_->PWrite(offset, data);
  }
  Status Read(uint64_t offset, size_t n, char* scratch, size_t* read) const override {
    if (auto hook = env_.ReadHook()) hook(path_, offset, n, scratch);
    Status s = env_.Check(FaultOp::kRead, path_, nullptr);
    if (!s.ok()) {
      *read = 0;
      return s;
    }
    const uint64_t bad = std::min(env_.UnreadableFrom(path_), env_.UnreadableSectorIn(path_, offset, n));
    if (offset + n <= bad) return base_->Read(offset, n, scratch, read);
    // What precedes the bad sectors reads; then EIO (unless the file ends first).
    *read = 0;
    if (offset < bad) {
      s = base_->Read(offset, static_cast<size_t>(bad - offset), scratch, read);
      if (!s.ok() || *read < bad - offset) return s;
    }
    return Status::IOError("injected unreadable sector: pread " + path_ + " at offset " + std::to_string(bad) +
                           ": Input/output error");
  }
  Status Sync() override {
    // What this fdatasync covers: the bytes written before the call began.
    // Measured before the hook, which stands for the time the sync is in
    // flight: bytes written while a test holds it there are not covered
    // (fdatasync makes no promise for writes issued after it started).
    auto size = base_->Size();
    const uint64_t covered_writes = env_.WritesSoFar();
    const uint64_t truncations = env_.TruncationsOf(this);
    if (auto hook = env_.SyncHook()) hook(path_);
    env_.NoteChange("fdatasync", path_);
    Status s = env_.Check(FaultOp::kSync, path_, nullptr);
    if (!s.ok()) return s;
    if (!size.ok()) return size.status();
    s = base_->Sync();
    if (!s.ok()) return s;
    env_.OnSynced(this, size.value(), covered_writes, truncations);
    return Status::OK();
  }
  Status Truncate(uint64_t size) override {
    env_.NoteChange("truncate", path_);
    Status s = env_.Check(FaultOp::kTruncate, path_, nullptr);
    if (!s.ok()) return s;
    s = base_->Truncate(size);
    if (s.ok()) env_.OnTruncated(this, size);
    return s;
  }
  Result<uint64_t> Size() const override {
    Status s = env_.Check(FaultOp::kStat, path_, nullptr);
    if (!s.ok()) return s;
    return base_->Size();
  }

 private:
  FaultInjectionEnv& env_;
  std::string path_;
  std::unique_ptr<File> base_;
};

// Overlays the pages of [data + from's page, data + mapped_bytes) with a
// shared mapping of an empty file: every touch of them raises SIGBUS.
bool OverlayUnreadable(const char* data, uint64_t mapped_bytes, uint64_t from) {
  const auto page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  from = from / page * page;
  const uint64_t end = (mapped_bytes + page - 1) / page * page;
  if (from >= end) return true;
  const int fd = ::memfd_create("kingx-unreadable", MFD_CLOEXEC);
  if (fd < 0) return false;
  void* at = const_cast<char*>(data) + from;
  void* p = ::mmap(at, end - from, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0);
  ::close(fd);
  return p == at;
}

}  // namespace

struct FaultInjectionEnv::MapRegistry {
  struct Live {
    std::string path;
    const char* data;
    uint64_t mapped_bytes;
  };
  std::mutex mu;
  std::map<const void*, Live> live;  // by the mapping object
};

namespace {

class FaultMappedFile final : public MappedFile {
 public:
  FaultMappedFile(FaultInjectionEnv& env, std::string path, std::unique_ptr<MappedFile> base,
                  std::shared_ptr<std::atomic<int64_t>> live, std::shared_ptr<FaultInjectionEnv::MapRegistry> maps)
      : env_(env), path_(std::move(path)), base_(std::move(base)), live_(std::move(live)), maps_(std::move(maps)) {
    live_->fetch_add(1);
    std::lock_guard lock(maps_->mu);
    maps_->live.emplace(this, FaultInjectionEnv::MapRegistry::Live{path_, base_->data(), base_->mapped_bytes()});
  }
  ~FaultMappedFile() override {
    {
      std::lock_guard lock(maps_->mu);
      maps_->live.erase(this);
    }
    live_->fetch_sub(1);
  }
  const char* data() const override { return base_->data(); }
  uint64_t mapped_bytes() const override { return base_->mapped_bytes(); }
  Result<uint64_t> FileSize() const override {
    Status s = env_.Check(FaultOp::kStat, path_, nullptr);
    if (!s.ok()) return s;
    return base_->FileSize();
  }
  FileIdentity identity() const override { return base_->identity(); }

 private:
  FaultInjectionEnv& env_;
  std::string path_;
  std::unique_ptr<MappedFile> base_;
  std::shared_ptr<std::atomic<int64_t>> live_;
  std::shared_ptr<FaultInjectionEnv::MapRegistry> maps_;
};

}  // namespace

void FaultInjectionEnv::FailNth(FaultOp op, uint64_t nth, Code code, bool forever, std::string path_part) {
  std::lock_guard lock(mu_);
  faults_.push_back(Fault{op, nth, 0, code, forever, false, 0, std::move(path_part)});
}

void FaultInjectionEnv::ShortWriteNth(uint64_t nth, size_t keep_bytes, Code code) {
  std::lock_guard lock(mu_);
  faults_.push_back(Fault{FaultOp::kWrite, nth, 0, code, false, true, keep_bytes, {}});
}

void FaultInjectionEnv::ClearFaults() {
  std::lock_guard lock(mu_);
  faults_.clear();
}

void FaultInjectionEnv::SimulateDisk(const std::string& dir, uint64_t total_bytes) {
  std::lock_guard lock(mu_);
  disk_dir_ = dir;
  disk_bytes_ = total_bytes;
}

uint64_t FaultInjectionEnv::DiskUsed() const {
  std::string dir;
  {
    std::lock_guard lock(mu_);
    dir = disk_dir_;
  }
  if (dir.empty()) return 0;
  auto names = base_.ListDir(dir);
  if (!names.ok()) return 0;
  uint64_t used = 0;
  for (const std::string& n : names.value()) {
    auto size = base_.FileSize(JoinPath(dir, n));
    if (size.ok()) used += size.value();
  }
  return used;
}

uint64_t FaultInjectionEnv::DiskRoom(const std::string& path, uint64_t growth) const {
  uint64_t total = 0;
  {
    std::lock_guard lock(mu_);
    if (disk_bytes_ == 0 || DirOf(path) != disk_dir_) return growth;
    total = disk_bytes_;
  }
  const uint64_t used = DiskUsed();
  return used >= total ? 0 : std::min(growth, total - used);
}

Result<SpaceInfo> FaultInjectionEnv::Space(const std::string& path) {
  Status s = Check(FaultOp::kSpace, path, nullptr);
  if (!s.ok()) return s;
  uint64_t total = 0;
  {
    std::lock_guard lock(mu_);
    total = disk_bytes_;
  }
  if (total == 0) return base_.Space(path);
  const uint64_t used = DiskUsed();
  return SpaceInfo{total, used >= total ? 0 : total - used};
}

uint64_t FaultInjectionEnv::Calls(FaultOp op) const {
  std::lock_guard lock(mu_);
  return calls_[static_cast<int>(op)];
}

namespace {

bool PathMatches(const std::string& path, const std::string& part) {
  if (part.empty()) return true;
  if (part[0] == '!') return path.find(part.substr(1)) == std::string::npos;
  return path.find(part) != std::string::npos;
}

}  // namespace

uint64_t FaultInjectionEnv::Calls(FaultOp op, const std::string& path_part) const {
  std::lock_guard lock(mu_);
  uint64_t n = 0;
  for (const auto& [k, count] : path_calls_)
    if (k.first == static_cast<int>(op) && PathMatches(k.second, path_part)) n += count;
  return n;
}

uint64_t FaultInjectionEnv::LastMappedBytes(const std::string& path) const {
  std::lock_guard lock(mu_);
  auto it = last_mapped_bytes_.find(path);
  return it == last_mapped_bytes_.end() ? 0 : it->second;
}

uint64_t FaultInjectionEnv::LiveMappings() const { return static_cast<uint64_t>(live_mappings_->load()); }

void FaultInjectionEnv::NoteChange(const char* what, const std::string& path) {
  std::lock_guard lock(mu_);
  changes_.push_back(std::string(what) + " " + path);
}

std::vector<std::string> FaultInjectionEnv::ChangingCalls() const {
  std::lock_guard lock(mu_);
  return changes_;
}

uint64_t FaultInjectionEnv::FaultsFired() const {
  std::lock_guard lock(mu_);
  return fired_;
}

Status FaultInjectionEnv::Check(FaultOp op, const std::string& path, size_t* keep_bytes) {
  std::lock_guard lock(mu_);
  ++calls_[static_cast<int>(op)];
  ++path_calls_[{static_cast<int>(op), path}];
  Status result;
  for (Fault& f : faults_) {
    if (f.op != op || !PathMatches(path, f.path_part)) continue;
    const uint64_t n = ++f.seen;
    if (result.ok() && (n == f.nth || (f.forever && n > f.nth))) {
      ++fired_;
      if (keep_bytes != nullptr) *keep_bytes = f.short_write ? std::min(*keep_bytes, f.keep_bytes) : 0;
      static const char* const kNames[] = {"write", "fdatasync", "directory fsync", "rename", "create",
                                           "truncate", "open", "read", "mmap", "stat", "readdir", "statvfs"};
      static_assert(sizeof kNames / sizeof kNames[0] == static_cast<size_t>(FaultOp::kCount));
      result = Injected(f.code, kNames[static_cast<int>(op)], path);
    }
  }
  return result;
}

void FaultInjectionEnv::SetSyncHook(std::function<void(const std::string& path)> hook) {
  std::lock_guard lock(mu_);
  sync_hook_ = std::move(hook);
}

void FaultInjectionEnv::SetCreateHook(std::function<void(const std::string& path)> hook) {
  std::lock_guard lock(mu_);
  create_hook_ = std::move(hook);
}

void FaultInjectionEnv::SetWriteHook(std::function<void(const std::string& path)> hook) {
  std::lock_guard lock(mu_);
  write_hook_ = std::move(hook);
}

std::function<void(const std::string& path)> FaultInjectionEnv::WriteHook() const {
  std::lock_guard lock(mu_);
  return write_hook_;
}

void FaultInjectionEnv::SetReadHook(ReadHookFn hook) {
  std::lock_guard lock(mu_);
  read_hook_ = std::move(hook);
}

FaultInjectionEnv::ReadHookFn FaultInjectionEnv::ReadHook() const {
  std::lock_guard lock(mu_);
  return read_hook_;
}

std::function<void(const std::string& path)> FaultInjectionEnv::SyncHook() const {
  std::lock_guard lock(mu_);
  return sync_hook_;
}

void FaultInjectionEnv::NameHandle(const File* file, const std::string& path) {
  std::lock_guard lock(mu_);
  handle_names_[file] = path;
}

void FaultInjectionEnv::ForgetHandle(const File* file) {
  std::lock_guard lock(mu_);
  handle_names_.erase(file);
}

FaultInjectionEnv::FileState* FaultInjectionEnv::StateOf(const File* file) {
  auto name = handle_names_.find(file);
  if (name == handle_names_.end() || name->second.empty()) return nullptr;
  return &files_[name->second];
}

void FaultInjectionEnv::Unname(const std::string& path) {
  for (auto& [file, name] : handle_names_)
    if (name == path) name.clear();
}

void FaultInjectionEnv::OnSynced(const File* file, uint64_t size, uint64_t covered_writes, uint64_t truncations) {
  std::lock_guard lock(mu_);
  FileState* state = StateOf(file);
  if (state == nullptr) return;
  FileState& f = *state;
  uint64_t covered = size;
  for (size_t i = truncations; i < f.truncated_to.size(); ++i) covered = std::min(covered, f.truncated_to[i]);
  f.synced_bytes = std::max(f.synced_bytes, covered);
  std::erase_if(f.overwrites, [&](const Overwrite& o) { return o.write_no <= covered_writes; });
}

uint64_t FaultInjectionEnv::BeforePWrite(const File* file, const File& base, uint64_t offset, size_t n) {
  std::lock_guard lock(mu_);
  const uint64_t token = ++tokens_;
  FileState* state = StateOf(file);
  if (state == nullptr) return token;
  FileState& f = *state;
  if (n == 0 || offset >= f.synced_bytes) return token;
  Overwrite o;
  o.offset = offset;
  o.token = token;
  o.old_bytes.resize(std::min<uint64_t>(n, f.synced_bytes - offset));
  size_t got = 0;
  base.Read(offset, o.old_bytes.size(), o.old_bytes.data(), &got).ok();
  o.old_bytes.resize(got);
  f.overwrites.push_back(std::move(o));
  return token;
}

void FaultInjectionEnv::AfterPWrite(const File* file, uint64_t token) {
  std::lock_guard lock(mu_);
  const uint64_t write_no = ++writes_;
  FileState* state = StateOf(file);
  if (state == nullptr) return;
  for (Overwrite& o : state->overwrites)
    if (o.token == token) o.write_no = write_no;
}

uint64_t FaultInjectionEnv::WritesSoFar() const {
  std::lock_guard lock(mu_);
  return writes_;
}

void FaultInjectionEnv::OnTruncated(const File* file, uint64_t size) {
  std::lock_guard lock(mu_);
  FileState* state = StateOf(file);
  if (state == nullptr) return;
  FileState& f = *state;
  f.synced_bytes = std::min(f.synced_bytes, size);
  f.truncated_to.push_back(size);
}

uint64_t FaultInjectionEnv::TruncationsOf(const File* file) const {
  std::lock_guard lock(mu_);
  auto name = handle_names_.find(file);
  if (name == handle_names_.end()) return 0;
  auto it = files_.find(name->second);
  return it == files_.end() ? 0 : it->second.truncated_to.size();
}

Result<std::unique_ptr<File>> FaultInjectionEnv::OpenFile(const std::string& path, OpenMode mode) {
  const bool creates = mode == OpenMode::kCreateExclusive || mode == OpenMode::kCreateTruncate;
  if (creates) {
    std::function<void(const std::string&)> hook;
    {
      std::lock_guard lock(mu_);
      hook = create_hook_;
    }
    if (hook) hook(path);
  }
  if (mode != OpenMode::kRead) NoteChange(creates ? "create" : "open-for-write", path);
  {
    Status s = Check(creates ? FaultOp::kCreate : FaultOp::kOpen, path, nullptr);
    if (!s.ok()) return s;
  }
  bool existed = base_.FileSize(path).ok();
  auto f = base_.OpenFile(path, mode);
  if (!f.ok()) return f.status();
  {
    std::lock_guard lock(mu_);
    auto it = files_.find(path);
    if (it == files_.end()) {
      FileState st;
      if (existed && mode != OpenMode::kCreateTruncate) {
        auto size = f.value()->Size();
        st.synced_bytes = size.ok() ? size.value() : 0;
        st.entry_durable = true;
      } else {
        st.synced_bytes = 0;
        st.entry_durable = existed;  // a truncated existing file keeps its entry
      }
      files_[path] = st;
    } else if (mode == OpenMode::kCreateTruncate) {
      it->second.synced_bytes = 0;
      it->second.truncated_to.push_back(0);
    }
  }
  return std::unique_ptr<File>(new FaultFile(*this, path, std::move(f.value())));
}

Result<std::vector<std::string>> FaultInjectionEnv::ListDir(const std::string& dir) {
  Status s = Check(FaultOp::kList, dir, nullptr);
  if (!s.ok()) return s;
  return base_.ListDir(dir);
}

Result<uint64_t> FaultInjectionEnv::FileSize(const std::string& path) {
  Status s = Check(FaultOp::kStat, path, nullptr);
  if (!s.ok()) return s;
  return base_.FileSize(path);
}

Result<FileIdentity> FaultInjectionEnv::Identify(const std::string& path) {
  Status s = Check(FaultOp::kStat, path, nullptr);
  if (!s.ok()) return s;
  return base_.Identify(path);
}

Result<std::unique_ptr<MappedFile>> FaultInjectionEnv::MapReadOnly(const std::string& path, uint64_t map_bytes) {
  if (std::function<void(const std::string&)> hook = [&] {
        std::lock_guard lock(mu_);
        return map_hook_;
      }())
    hook(path);
  Status s = Check(FaultOp::kMap, path, nullptr);
  if (!s.ok()) return s;
  auto m = base_.MapReadOnly(path, map_bytes);
  if (!m.ok()) return m.status();
  if (const uint64_t bad = UnreadableFrom(path); bad != UINT64_MAX) {
    if (!OverlayUnreadable(m.value()->data(), m.value()->mapped_bytes(), bad))
      return Status::IOError("cannot overlay unreadable pages on " + path);
  }
  {
    std::lock_guard lock(mu_);
    last_mapped_bytes_[path] = m.value()->mapped_bytes();
    if (!maps_) maps_ = std::make_shared<MapRegistry>();
  }
  return std::unique_ptr<MappedFile>(new FaultMappedFile(*this, path, std::move(m.value()), live_mappings_, maps_));
}

void FaultInjectionEnv::SetMapHook(std::function<void(const std::string& path)> hook) {
  std::lock_guard lock(mu_);
  map_hook_ = std::move(hook);
}

int FaultInjectionEnv::LoseMappedPages(const std::string& path_part, uint64_t offset) {
  std::shared_ptr<MapRegistry> maps;
  {
    std::lock_guard lock(mu_);
    maps = maps_;
  }
  if (!maps) return 0;
  std::lock_guard lock(maps->mu);
  int lost = 0;
  for (const auto& [object, m] : maps->live) {
    if (m.path.find(path_part) == std::string::npos) continue;
    if (!OverlayUnreadable(m.data, m.mapped_bytes, offset)) std::abort();  // the test cannot go on
    ++lost;
  }
  return lost;
}

void FaultInjectionEnv::SetUnreadable(std::string path_part, uint64_t offset) {
  std::lock_guard lock(mu_);
  unreadable_.emplace_back(std::move(path_part), offset);
}

void FaultInjectionEnv::ClearUnreadable() {
  std::lock_guard lock(mu_);
  unreadable_.clear();
  unreadable_sectors_.clear();
}

void FaultInjectionEnv::SetUnreadableSector(std::string path_part, uint64_t offset, uint64_t bytes) {
  std::lock_guard lock(mu_);
  unreadable_sectors_.push_back(Sector{std::move(path_part), offset, offset + bytes});
}

uint64_t FaultInjectionEnv::UnreadableSectorIn(const std::string& path, uint64_t offset, uint64_t n) const {
  std::lock_guard lock(mu_);
  uint64_t first = UINT64_MAX;
  for (const Sector& s : unreadable_sectors_)
    if (path.find(s.path_part) != std::string::npos && s.from < offset + n && s.to > offset)
      first = std::min(first, std::max(offset, s.from));
  return first;
}

uint64_t FaultInjectionEnv::UnreadableFrom(const std::string& path) const {
  std::lock_guard lock(mu_);
  uint64_t from = UINT64_MAX;
  for (const auto& [part, offset] : unreadable_)
    if (path.find(part) != std::string::npos) from = std::min(from, offset);
  return from;
}

uint64_t FaultInjectionEnv::OpenFileLimit() {
  {
    std::lock_guard lock(mu_);
    if (open_file_limit_ != 0) return open_file_limit_;
  }
  return base_.OpenFileLimit();
}

void FaultInjectionEnv::SetOpenFileLimit(uint64_t limit) {
  std::lock_guard lock(mu_);
  open_file_limit_ = limit;
}

Status FaultInjectionEnv::SyncDir(const std::string& dir) {
  NoteChange("fsync-dir", dir);
  Status s = Check(FaultOp::kSyncDir, dir, nullptr);
  if (!s.ok()) return s;
  s = base_.SyncDir(dir);
  if (!s.ok()) return s;
  std::lock_guard lock(mu_);
  for (auto& [path, st] : files_) {
    if (DirOf(path) == dir || DirOf(path) + "/" == dir) st.entry_durable = true;
  }
  std::erase_if(renames_, [&](const PendingRename& r) { return DirOf(r.to) == dir || DirOf(r.to) + "/" == dir; });
  return Status::OK();
}

Status FaultInjectionEnv::Rename(const std::string& from, const std::string& to) {
  NoteChange("rename", from + " -> " + to);
  Status s = Check(FaultOp::kRename, from, nullptr);
  if (!s.ok()) return s;
  s = base_.Rename(from, to);
  if (!s.ok()) return s;
  std::lock_guard lock(mu_);
  FileState st;
  if (auto it = files_.find(from); it != files_.end()) {
    st = it->second;
    files_.erase(it);
  } else {
    auto size = base_.FileSize(to);
    st.synced_bytes = size.ok() ? size.value() : 0;
  }
  if (st.entry_durable) {
    // The old name is durable, the new one not yet: a crash undoes the rename.
    renames_.push_back(PendingRename{from, to});
    st.entry_durable = true;
  }
  files_[to] = st;
  // Open handles follow the file (fdatasync acts on the inode, whatever its
  // name); those of a file the rename replaced now reach a nameless one.
  Unname(to);
  for (auto& [file, name] : handle_names_)
    if (name == from) name = to;
  return Status::OK();
}

Status FaultInjectionEnv::RemoveFile(const std::string& path) {
  NoteChange("unlink", path);
  Status s = base_.RemoveFile(path);
  std::lock_guard lock(mu_);
  files_.erase(path);
  if (s.ok()) Unname(path);
  return s;
}

Status FaultInjectionEnv::DropUnsynced() {
  std::lock_guard lock(mu_);
  Status first;
  // Undo renames of durable entries, newest first.
  for (auto it = renames_.rbegin(); it != renames_.rend(); ++it) {
    Status s = base_.Rename(it->to, it->from);
    if (!s.ok() && first.ok()) first = s;
    if (auto f = files_.find(it->to); f != files_.end()) {
      FileState st = f->second;
      files_.erase(f);
      files_[it->from] = st;
    }
  }
  renames_.clear();
  for (auto& [path, st] : files_) {
    Status s;
    if (!st.entry_durable) {
      s = base_.RemoveFile(path);
      if (s.Is(Code::kNotFound)) s = Status::OK();
    } else {
      auto f = base_.OpenFile(path, OpenMode::kReadWrite);
      // Newest first, so that each range ends up as it was at the last sync.
      for (auto o = st.overwrites.rbegin(); f.ok() && s.ok() && o != st.overwrites.rend(); ++o)
        s = f.value()->PWrite(o->offset, o->old_bytes);
      if (f.ok() && s.ok()) s = f.value()->Truncate(st.synced_bytes);
      else if (!f.status().Is(Code::kNotFound)) s = f.status();
    }
    if (!s.ok() && first.ok()) first = s;
  }
  files_.clear();
  return first;
}

void FaultInjectionEnv::ResetTracking() {
  std::lock_guard lock(mu_);
  files_.clear();
  renames_.clear();
}

ReadFootprint::ReadFootprint(FaultInjectionEnv& env, std::function<bool(const std::string&)> counted) : env_(env) {
  env_.SetReadHook([this, counted = std::move(counted)](const std::string& path, uint64_t, size_t n,
                                                        const char* scratch) {
    if (!counted(path)) return;
    std::lock_guard lock(mu_);
    read_bytes_ += n;
    largest_read_ = std::max<uint64_t>(largest_read_, n);
    auto from = reinterpret_cast<uintptr_t>(scratch), to = from + n;
    auto it = memory_.upper_bound(from);
    if (it != memory_.begin() && std::prev(it)->second >= from) {
      --it;
      from = it->first;
      to = std::max(to, it->second);
      it = memory_.erase(it);
    }
    while (it != memory_.end() && it->first <= to) {
      to = std::max(to, it->second);
      it = memory_.erase(it);
    }
    memory_[from] = to;
  });
}

void ReadFootprint::Stop() {
  if (!installed_) return;
  env_.SetReadHook({});
  installed_ = false;
}

uint64_t ReadFootprint::read_bytes() const {
  std::lock_guard lock(mu_);
  return read_bytes_;
}

uint64_t ReadFootprint::largest_read() const {
  std::lock_guard lock(mu_);
  return largest_read_;
}

uint64_t ReadFootprint::held_bytes() const {
  std::lock_guard lock(mu_);
  uint64_t held = 0;
  for (const auto& [from, to] : memory_) held += to - from;
  return held;
}

}  // namespace kingx::engine::test
