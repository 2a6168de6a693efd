#include "tests/engine/support/fault_env.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>

#include "engine/mapping_guard.h"

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
    env_.BindHandle(this, path_);
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
    env_.NoteUnreadableMet();
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
    // The durable bytes a shrink cuts off stay durable until a sync.
    const uint64_t token = env_.BeforePWrite(this, *base_, size, SIZE_MAX);
    s = base_->Truncate(size);
    if (s.ok()) env_.OnTruncated(this, size, token);
    else env_.AfterPWrite(this, token);
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

// Bad pages the env made, for counting the SIGBUS raised at them: a
// process-wide table the signal handler reads without a lock. A slot is
// claimed (used), filled, then published (counter); released in reverse.
struct BadPages {
  std::atomic<bool> used{false};
  std::atomic<uintptr_t> from{0}, to{0};
  std::atomic<std::atomic<uint64_t>*> counter{nullptr};
};
constexpr size_t kBadPageSlots = 1024;
BadPages g_bad_pages[kBadPageSlots];
struct sigaction g_before_count;  // the disposition before the counter (the mapping guard's)

void CountSigbus(int sig, siginfo_t* info, void* context) {
  const auto at = reinterpret_cast<uintptr_t>(info->si_addr);
  for (BadPages& b : g_bad_pages) {
    std::atomic<uint64_t>* counter = b.counter.load(std::memory_order_acquire);
    if (counter != nullptr && info->si_code > 0 && at >= b.from.load() && at < b.to.load()) {
      counter->fetch_add(1, std::memory_order_relaxed);
      break;
    }
  }
  // Hand every SIGBUS on, counted or not, to the mapping guard's handler
  // (it jumps back into a guarded read, or ends the process as before it).
  g_before_count.sa_sigaction(sig, info, context);
}

// Installs CountSigbus in front of the mapping guard's handler (installed
// first, so that the counter sees each SIGBUS before the guard jumps away).
void InstallSigbusCounter() {
  static std::once_flag once;
  std::call_once(once, [] {
    char from = 0, to = 0;
    GuardedCopy(&to, &from, 1);  // installs the guard's handler
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = CountSigbus;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGBUS, &sa, &g_before_count);
    if ((g_before_count.sa_flags & SA_SIGINFO) == 0 || g_before_count.sa_sigaction == nullptr) {
      std::fprintf(stderr, "fault env: the SIGBUS handler before the counter is not the mapping guard's\n");
      std::abort();
    }
  });
}

// Claims a slot counting SIGBUS in [from, to) into counter; SIZE_MAX: none free.
size_t ClaimBadPages(uintptr_t from, uintptr_t to, std::atomic<uint64_t>* counter) {
  InstallSigbusCounter();
  for (size_t i = 0; i < kBadPageSlots; ++i) {
    bool free = false;
    if (!g_bad_pages[i].used.compare_exchange_strong(free, true)) continue;
    g_bad_pages[i].from.store(from);
    g_bad_pages[i].to.store(to);
    g_bad_pages[i].counter.store(counter, std::memory_order_release);
    return i;
  }
  return SIZE_MAX;
}

void ReleaseBadPages(size_t slot) {
  g_bad_pages[slot].counter.store(nullptr, std::memory_order_release);
  g_bad_pages[slot].used.store(false);
}

}  // namespace

struct FaultInjectionEnv::MapRegistry {
  struct Live {
    std::string path;
    const char* data;
    uint64_t mapped_bytes;
    std::shared_ptr<std::atomic<uint64_t>> faults;  // the env's count of SIGBUS at its bad pages
    std::vector<size_t> slots;                      // its bad pages in g_bad_pages
  };
  std::mutex mu;
  std::map<const void*, Live> live;  // by the mapping object

  // Makes the pages of l from offset's page on bad, counted. mu held.
  // False: the overlay could not be made.
  static bool MakeBad(Live& l, uint64_t offset) {
    if (!OverlayUnreadable(l.data, l.mapped_bytes, offset)) return false;
    const auto page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    const auto base = reinterpret_cast<uintptr_t>(l.data);
    const size_t slot = ClaimBadPages(base + offset / page * page, base + (l.mapped_bytes + page - 1) / page * page,
                                      l.faults.get());
    if (slot == SIZE_MAX) return false;
    l.slots.push_back(slot);
    return true;
  }
};

namespace {

class FaultMappedFile final : public MappedFile {
 public:
  FaultMappedFile(FaultInjectionEnv& env, std::string path, std::unique_ptr<MappedFile> base,
                  std::shared_ptr<std::atomic<int64_t>> live, std::shared_ptr<FaultInjectionEnv::MapRegistry> maps,
                  std::shared_ptr<std::atomic<uint64_t>> faults)
      : env_(env), path_(std::move(path)), base_(std::move(base)), live_(std::move(live)), maps_(std::move(maps)) {
    live_->fetch_add(1);
    std::lock_guard lock(maps_->mu);
    maps_->live.emplace(
        this, FaultInjectionEnv::MapRegistry::Live{path_, base_->data(), base_->mapped_bytes(), std::move(faults), {}});
  }
  ~FaultMappedFile() override {
    {
      std::lock_guard lock(maps_->mu);
      auto it = maps_->live.find(this);
      for (size_t slot : it->second.slots) ReleaseBadPages(slot);
      maps_->live.erase(it);
    }
    live_->fetch_sub(1);
  }
  // Makes the pages from offset's page on bad (SetUnreadable at the mapping).
  bool MakeBad(uint64_t offset) {
    std::lock_guard lock(maps_->mu);
    return FaultInjectionEnv::MapRegistry::MakeBad(maps_->live.at(this), offset);
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
  return fired_ + mapped_faults_->load();
}

uint64_t FaultInjectionEnv::MappedFaultsFired() const { return mapped_faults_->load(); }

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

void FaultInjectionEnv::BindHandle(const File* file, const std::string& path) {
  std::lock_guard lock(mu_);
  auto it = names_.find(path);
  handles_[file] = it == names_.end() ? 0 : it->second;
}

void FaultInjectionEnv::ForgetHandle(const File* file) {
  std::lock_guard lock(mu_);
  handles_.erase(file);
}

FaultInjectionEnv::FileState* FaultInjectionEnv::StateOf(const File* file) {
  auto h = handles_.find(file);
  if (h == handles_.end() || h->second == 0) return nullptr;
  auto it = inodes_.find(h->second);
  return it == inodes_.end() ? nullptr : &it->second;
}

uint64_t FaultInjectionEnv::TrackLocked(const std::string& path) {
  if (auto it = names_.find(path); it != names_.end()) return it->second;
  auto size = base_.FileSize(path);
  if (!size.ok()) return 0;
  const uint64_t id = next_inode_++;
  inodes_[id].synced_bytes = size.value();
  names_[path] = id;
  durable_names_.try_emplace(path, id);
  return id;
}

bool FaultInjectionEnv::DurablyNamed(uint64_t id) const {
  return std::any_of(durable_names_.begin(), durable_names_.end(), [&](const auto& d) { return d.second == id; });
}

void FaultInjectionEnv::StashLocked(uint64_t id, const std::string& path) {
  FileState& st = inodes_[id];
  if (!st.stash.empty() || !DurablyNamed(id)) return;
  // Beside the data directory, on its file system (a hard link cannot
  // cross one), out of its listing.
  std::string& stash_dir = stash_dirs_[DirOf(DirOf(path))];
  if (stash_dir.empty()) {
    std::string tmpl = DirOf(DirOf(path)) + "/kingx-fault-stash-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      std::fprintf(stderr, "fault env: cannot make a stash beside %s\n", path.c_str());
      std::abort();  // the model cannot go on
    }
    stash_dir = tmpl;
  }
  st.stash = stash_dir + "/" + std::to_string(id);
  if (::link(path.c_str(), st.stash.c_str()) != 0) {
    if (errno == ENOENT && ::access(path.c_str(), F_OK) != 0) {  // gone already, outside the env
      st.stash.clear();
      return;
    }
    std::fprintf(stderr, "fault env: cannot keep %s in the stash as %s: %s\n", path.c_str(), st.stash.c_str(),
                 std::strerror(errno));
    std::abort();
  }
}

void FaultInjectionEnv::DropStashesLocked(bool all) {
  for (auto& [id, st] : inodes_) {
    if (st.stash.empty() || (!all && DurablyNamed(id))) continue;
    ::unlink(st.stash.c_str());
    st.stash.clear();
  }
}

FaultInjectionEnv::~FaultInjectionEnv() {
  std::lock_guard lock(mu_);
  DropStashesLocked(true);
  for (const auto& [parent, stash_dir] : stash_dirs_) ::rmdir(stash_dir.c_str());
}

std::vector<std::string> FaultInjectionEnv::Restorable() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [name, id] : durable_names_) {
    auto live = names_.find(name);
    if (id != 0 && (live == names_.end() || live->second != id)) out.push_back(name);
  }
  return out;
}

void FaultInjectionEnv::OnSynced(const File* file, uint64_t size, uint64_t covered_writes, uint64_t truncations) {
  std::lock_guard lock(mu_);
  FileState* state = StateOf(file);
  if (state == nullptr) return;
  FileState& f = *state;
  uint64_t covered = size;
  for (size_t i = truncations; i < f.truncations.size(); ++i) covered = std::min(covered, f.truncations[i].size);
  // A sync that covers a truncation makes the size it measured durable,
  // shorter or not; any other sync only adds.
  const bool covers_truncation = std::any_of(f.truncations.begin(), f.truncations.end(), [&](const Truncation& t) {
    return t.write_no > f.truncations_synced && t.write_no <= covered_writes;
  });
  if (covers_truncation) {
    f.synced_bytes = covered;
    f.truncations_synced = covered_writes;
  } else {
    f.synced_bytes = std::max(f.synced_bytes, covered);
  }
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

void FaultInjectionEnv::OnTruncated(const File* file, uint64_t size, uint64_t token) {
  std::lock_guard lock(mu_);
  const uint64_t write_no = ++writes_;
  FileState* state = StateOf(file);
  if (state == nullptr) return;
  for (Overwrite& o : state->overwrites)
    if (o.token == token) o.write_no = write_no;
  state->truncations.push_back(Truncation{size, write_no});
}

uint64_t FaultInjectionEnv::TruncationsOf(const File* file) const {
  std::lock_guard lock(mu_);
  auto h = handles_.find(file);
  if (h == handles_.end()) return 0;
  auto it = inodes_.find(h->second);
  return it == inodes_.end() ? 0 : it->second.truncations.size();
}

void FaultInjectionEnv::NoteUnreadableMet() {
  std::lock_guard lock(mu_);
  ++fired_;
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
  const bool existed = base_.FileSize(path).ok();
  // O_TRUNC of an existing file truncates its inode: the durable bytes it
  // cuts off stay durable until a sync.
  std::string cut;
  if (existed && mode == OpenMode::kCreateTruncate) {
    uint64_t durable = 0;
    {
      std::lock_guard lock(mu_);
      durable = inodes_[TrackLocked(path)].synced_bytes;
    }
    if (auto old = base_.OpenFile(path, OpenMode::kRead); old.ok() && durable > 0) {
      cut.resize(durable);
      size_t got = 0;
      old.value()->Read(0, cut.size(), cut.data(), &got).ok();
      cut.resize(got);
    }
  }
  auto f = base_.OpenFile(path, mode);
  if (!f.ok()) return f.status();
  {
    std::lock_guard lock(mu_);
    if (!existed) {
      const uint64_t id = next_inode_++;
      inodes_[id];
      names_[path] = id;
      durable_names_.try_emplace(path, 0);
    } else if (const uint64_t id = TrackLocked(path); id != 0 && mode == OpenMode::kCreateTruncate) {
      FileState& st = inodes_[id];
      const uint64_t write_no = ++writes_;
      if (!cut.empty()) st.overwrites.push_back(Overwrite{0, std::move(cut), 0, write_no});
      st.truncations.push_back(Truncation{0, write_no});
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
  std::shared_ptr<MapRegistry> maps;
  {
    std::lock_guard lock(mu_);
    last_mapped_bytes_[path] = m.value()->mapped_bytes();
    if (!maps_) maps_ = std::make_shared<MapRegistry>();
    maps = maps_;
  }
  auto mapped = std::make_unique<FaultMappedFile>(*this, path, std::move(m.value()), live_mappings_, maps,
                                                  mapped_faults_);
  if (const uint64_t bad = UnreadableFrom(path); bad != UINT64_MAX && !mapped->MakeBad(bad))
    return Status::IOError("cannot overlay unreadable pages on " + path);
  return std::unique_ptr<MappedFile>(std::move(mapped));
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
  for (auto& [object, m] : maps->live) {
    if (m.path.find(path_part) == std::string::npos) continue;
    if (!MapRegistry::MakeBad(m, offset)) std::abort();  // the test cannot go on
    ++lost;
  }
  return lost;
}

void FaultInjectionEnv::SetUnreadable(std::string path_part, uint64_t offset) {
  {
    std::lock_guard lock(mu_);
    unreadable_.emplace_back(path_part, offset);
  }
  // The sectors fail under the live mappings too: pages not yet read from
  // them cannot be, and the model assumes none is in memory.
  LoseMappedPages(path_part, offset);
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
  auto in_dir = [&](const std::string& path) { return DirOf(path) == dir || DirOf(path) + "/" == dir; };
  for (auto& [name, id] : durable_names_) {
    if (!in_dir(name)) continue;
    auto live = names_.find(name);
    id = live == names_.end() ? 0 : live->second;
  }
  for (const auto& [name, id] : names_)
    if (in_dir(name)) durable_names_[name] = id;
  DropStashesLocked(false);
  return Status::OK();
}

Status FaultInjectionEnv::Rename(const std::string& from, const std::string& to) {
  NoteChange("rename", from + " -> " + to);
  Status s = Check(FaultOp::kRename, from, nullptr);
  if (!s.ok()) return s;
  uint64_t moved = 0;
  {
    std::lock_guard lock(mu_);
    moved = TrackLocked(from);
    // The file the rename replaces comes back at a power loss if its entry
    // is durable (the directory still names it on disk).
    if (const uint64_t replaced = TrackLocked(to); replaced != 0 && replaced != moved) StashLocked(replaced, to);
    durable_names_.try_emplace(to, 0);
  }
  s = base_.Rename(from, to);
  if (!s.ok()) return s;
  std::lock_guard lock(mu_);
  names_.erase(from);
  if (moved != 0) names_[to] = moved;
  else names_.erase(to);
  return Status::OK();
}

Status FaultInjectionEnv::RemoveFile(const std::string& path) {
  NoteChange("unlink", path);
  {
    std::lock_guard lock(mu_);
    if (const uint64_t id = TrackLocked(path); id != 0) StashLocked(id, path);
  }
  Status s = base_.RemoveFile(path);
  std::lock_guard lock(mu_);
  if (s.ok()) names_.erase(path);
  return s;
}

Status FaultInjectionEnv::DropUnsynced() {
  std::lock_guard lock(mu_);
  Status first;
  auto note = [&](Status s) {
    if (!s.ok() && !s.Is(Code::kNotFound) && first.ok()) first = s;
  };
  // Every name that holds another inode than its directory's last sync left
  // there loses it (kept in the stash if another durable entry names it).
  for (const auto& [name, id] : names_) {
    auto d = durable_names_.find(name);
    if (d == durable_names_.end() || d->second == id) continue;
    StashLocked(id, name);
    note(base_.RemoveFile(name));
  }
  // Then each durable entry gets its inode back, and each inode the bytes
  // its last sync left.
  std::set<uint64_t> restored;
  for (const auto& [name, id] : durable_names_) {
    if (id == 0) continue;
    FileState& st = inodes_[id];
    auto live = names_.find(name);
    if (live == names_.end() || live->second != id) {
      std::string from = st.stash;
      if (from.empty())  // still live under a name whose entry keeps it
        for (const auto& [other, other_id] : names_)
          if (other_id == id && durable_names_[other] == id) from = other;
      if (from.empty()) continue;  // lost outside the env
      if (::link(from.c_str(), name.c_str()) != 0)
        note(Status::IOError("fault env: cannot bring back " + name + " from " + from));
    }
    if (!restored.insert(id).second) continue;
    auto f = base_.OpenFile(name, OpenMode::kReadWrite);
    if (!f.ok()) {
      note(f.status());
      continue;
    }
    Status s;
    // Newest first, so that each range ends up as it was at the last sync.
    for (auto o = st.overwrites.rbegin(); s.ok() && o != st.overwrites.rend(); ++o)
      s = f.value()->PWrite(o->offset, o->old_bytes);
    if (s.ok()) s = f.value()->Truncate(st.synced_bytes);
    note(s);
  }
  DropStashesLocked(true);
  inodes_.clear();
  names_.clear();
  durable_names_.clear();
  for (auto& [file, id] : handles_) id = 0;
  return first;
}

void FaultInjectionEnv::ResetTracking() {
  std::lock_guard lock(mu_);
  DropStashesLocked(true);
  inodes_.clear();
  names_.clear();
  durable_names_.clear();
  for (auto& [file, id] : handles_) id = 0;
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
