// FaultInjectionEnv: an Env for tests that wraps a real one (PosixEnv) and
//  - fails the Nth call of a kind of operation (once, or from then on) with
//    EIO-like kIOError, ENOSPC-like kNoSpace or EMFILE/ENOMEM-like kBusy,
//    optionally only for paths containing a given string, or makes a write
//    short (a prefix reaches the file, then the error). Faults cover the
//    read path too: opening an existing file, reading, mapping, size / stat,
//    listing the directory;
//  - simulates power loss the way a kernel may leave a file system (leveldb's
//    fault_injection_test, widened to what POSIX and ext4 allow for the
//    directory: research/reliability.md 1.7, ALICE's persistence model).
//    Files are tracked as inodes, names as directory entries.
//    An inode's durable content is what its last covering File::Sync left:
//    the file's length when Sync was called, before its sync hook (bytes
//    another thread appends while it runs, or while a test holds it in the
//    hook, are not covered; of syncs in flight at once, one that returns
//    after a later one took back nothing that one covered). A PWrite over
//    durable bytes (the writer's preallocated room) and a truncation (or an
//    open with kCreateTruncate) below the durable length keep the bytes they
//    replaced or cut off until a Sync that started after them: fdatasync
//    makes the new size durable, nothing before it does.
//    A directory's durable entries are what its last SyncDir left: creations,
//    renames and unlinks not followed by a SyncDir of the directory are all
//    undone. An unlinked file, or one a rename replaced, whose entry is
//    durable is kept (a hard link in a stash directory beside the data
//    directory) until that SyncDir, so a power loss can bring it back.
//    DropUnsynced() puts every tracked name back to the inode its directory
//    last made durable (a name the env never saw is left alone; a file that
//    existed before the env saw it counts as durable, entry and bytes) and
//    every such inode back to its durable content. A sync through a handle
//    covers the handle's inode, whatever its name now (a file renamed while
//    open) or if it has none (unlinked, or replaced by a rename);
//  - records every call that may change the disk (ChangingCalls): writes,
//    syncs, truncations, creations, opens for writing, renames, unlinks,
//    mkdir, LockFile (it creates its file), exclusive LockExisting;
//  - simulates sectors that cannot be read (SetUnreadable): a read of them
//    fails with EIO, a mapped page of them raises SIGBUS, every time; and
//    mapped pages read once that the kernel then drops and cannot read back
//    (LoseMappedPages): the next touch of them raises SIGBUS. A read failed
//    that way and a SIGBUS raised at such a page count as faults fired;
//  - simulates a small disk (SimulateDisk): Space() reports it, and a write
//    that would make the files of the directory outgrow it writes what fits
//    and fails with kNoSpace, as ENOSPC does.
//
// Limits of the model: a power loss leaves one state, every change no sync
// covered undone (a kernel may also keep any of them: a test gets the state
// that keeps them all by skipping DropUnsynced); a file opened before the
// env saw it counts as fully durable; hard links and renames across
// directories are modelled only as far as each directory's sync says.
//
// Thread-safety: all methods may be called from any thread (one mutex).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/env.h"

namespace kingx::engine::test {

enum class FaultOp : uint8_t {
  kWrite,     // File::Append / PWrite
  kSync,      // File::Sync
  kSyncDir,   // Env::SyncDir
  kRename,    // Env::Rename
  kCreate,    // OpenFile that creates (kCreateExclusive / kCreateTruncate)
  kTruncate,  // File::Truncate
  kOpen,      // OpenFile of an existing file (kRead / kReadWrite)
  kRead,      // File::Read
  kMap,       // Env::MapReadOnly
  kStat,      // Env::FileSize, Env::Identify, File::Size, MappedFile::FileSize
  kList,      // Env::ListDir
  kSpace,     // Env::Space
  kCount
};

class FaultInjectionEnv final : public Env {
 public:
  explicit FaultInjectionEnv(Env& base = PosixEnv()) : base_(base) {}
  // Removes the stash (what a power loss could still bring back).
  ~FaultInjectionEnv() override;
  FaultInjectionEnv(const FaultInjectionEnv&) = delete;
  FaultInjectionEnv& operator=(const FaultInjectionEnv&) = delete;

  // The nth call (1 = the next one) of op, counted from now, fails with
  // code (kIOError, kNoSpace or kBusy); with forever, every call from then
  // on too. With path_part, only calls on a path containing it are counted
  // and failed ("!part": only paths not containing part).
  void FailNth(FaultOp op, uint64_t nth, Code code, bool forever = false, std::string path_part = {});
  // The nth write from now writes only the first keep_bytes bytes (fewer if
  // the write is shorter), then fails with code.
  void ShortWriteNth(uint64_t nth, size_t keep_bytes, Code code);
  // Removes every armed fault.
  void ClearFaults();
  // Runs hook(path) at the start of every File::Sync, on the syncing thread,
  // before its fault check and with no lock of the env held, so that a test
  // can hold an fdatasync in flight. What the sync covers was measured
  // before the hook ran. An empty hook removes it.
  void SetSyncHook(std::function<void(const std::string& path)> hook);
  std::function<void(const std::string& path)> SyncHook() const;
  // Runs hook(path) at the start of every File::Append / PWrite, on the
  // writing thread, before its fault check and with no lock of the env held
  // (a test can hold a writer in its write). An empty hook removes it.
  void SetWriteHook(std::function<void(const std::string& path)> hook);
  std::function<void(const std::string& path)> WriteHook() const;
  // Runs hook(path) at the start of every OpenFile that creates a file, on
  // the calling thread, with no lock of the env held (a test can slow down
  // or hold whoever makes new files). An empty hook removes it.
  void SetCreateHook(std::function<void(const std::string& path)> hook);
  // Runs hook(path) at the start of every MapReadOnly, on the mapping
  // thread, before its fault check and with no lock of the env held (a test
  // can act at the moment a reader maps a file). An empty hook removes it.
  void SetMapHook(std::function<void(const std::string& path)> hook);
  // Runs hook(path, offset, n, scratch) at the start of every File::Read, on
  // the reading thread, with no lock of the env held: a test sees which bytes
  // were asked for, and into which memory. An empty hook removes it.
  using ReadHookFn = std::function<void(const std::string& path, uint64_t offset, size_t n, const char* scratch)>;
  void SetReadHook(ReadHookFn hook);
  ReadHookFn ReadHook() const;
  // Bytes of every file whose path contains path_part, from offset on, cannot
  // be read (a failing range of sectors, which stays failing): File::Read of
  // a range reaching them reads the bytes before offset and fails with
  // kIOError, as pread meets EIO; every mapping, live or made from now on,
  // has its pages from offset's page on overlaid with a shared mapping of an
  // empty file, so touching them raises SIGBUS (with the faulting address in
  // the mapping). Several ranges may be set; ClearUnreadable removes them
  // (mappings made meanwhile keep their bad pages).
  void SetUnreadable(std::string path_part, uint64_t offset);
  // Bytes [offset, offset + bytes) of every file whose path contains
  // path_part cannot be read by File::Read (one failing sector, the bytes
  // after it readable): a read reaching them reads what precedes them and
  // fails with kIOError. Mappings are not affected. ClearUnreadable removes
  // these too.
  void SetUnreadableSector(std::string path_part, uint64_t offset, uint64_t bytes);
  // The first offset of [offset, offset + n) of path inside such a sector (UINT64_MAX: none).
  uint64_t UnreadableSectorIn(const std::string& path, uint64_t offset, uint64_t n) const;
  void ClearUnreadable();
  // The pages of every live mapping made through this env of a file whose
  // path contains path_part, from offset's page on, are lost now: they were
  // readable until this call (a reader may have read them), and the next
  // touch of any of them raises SIGBUS (with the faulting address in the
  // mapping), as a page the kernel dropped and could not read back. Mappings
  // made later are not affected. Returns how many mappings lost pages.
  int LoseMappedPages(const std::string& path_part, uint64_t offset);
  // The first unreadable offset of path (UINT64_MAX: none).
  uint64_t UnreadableFrom(const std::string& path) const;
  // A disk of total_bytes holding the files of dir (0 turns it off): Space()
  // reports it (free = total - the sizes of dir's files), and a write that
  // would make those sizes exceed total writes the prefix that fits, then
  // fails with kNoSpace. Sizes are apparent sizes (no blocks, no metadata).
  void SimulateDisk(const std::string& dir, uint64_t total_bytes);
  // Bytes of dir's files as the simulated disk counts them.
  uint64_t DiskUsed() const;
  // Calls of op seen so far (whether they failed or not); with path_part,
  // only those on paths containing it ("!part": not containing it).
  uint64_t Calls(FaultOp op) const;
  uint64_t Calls(FaultOp op, const std::string& path_part) const;
  // "what path" for each call so far that may change the disk (see the
  // header comment), in call order, whether it succeeded or not.
  std::vector<std::string> ChangingCalls() const;
  // Records one such call (used by the File wrapper too).
  void NoteChange(const char* what, const std::string& path);
  // Faults that fired so far: injected failures, reads that met unreadable
  // bytes, and SIGBUS raised at the bad pages of this env's mappings.
  uint64_t FaultsFired() const;
  // Of those, the SIGBUS raised at the bad pages of this env's mappings.
  uint64_t MappedFaultsFired() const;
  // Bytes of address space the last MapReadOnly of path took (0: never mapped).
  uint64_t LastMappedBytes(const std::string& path) const;
  // Mappings made through this Env that are still alive.
  uint64_t LiveMappings() const;

  // Power loss: see the header comment. Files must be closed (the writer
  // destroyed) first. Returns the first error of the underlying Env.
  Status DropUnsynced();
  // Forgets what is unsynced (as if everything were durable now).
  void ResetTracking();
  // Names of the files a power loss would bring back now: unlinked or
  // replaced by a rename while their entry is durable (tests of the seam).
  std::vector<std::string> Restorable() const;

  // Env.
  Result<std::unique_ptr<File>> OpenFile(const std::string& path, OpenMode mode) override;
  Status SyncDir(const std::string& dir) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status RemoveFile(const std::string& path) override;
  Status CreateDir(const std::string& path) override {
    NoteChange("mkdir", path);
    return base_.CreateDir(path);
  }
  Status Symlink(const std::string& target, const std::string& link_path) override {
    NoteChange("symlink", link_path);
    return base_.Symlink(target, link_path);
  }
  Result<std::vector<std::string>> ListDir(const std::string& dir) override;
  Result<uint64_t> FileSize(const std::string& path) override;
  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override {
    NoteChange("lock-create", path);
    return base_.LockFile(path);
  }
  Result<std::unique_ptr<FileLock>> LockExisting(const std::string& path, bool shared) override {
    if (!shared) NoteChange("lock-exclusive", path);
    return base_.LockExisting(path, shared);
  }
  Result<std::unique_ptr<MappedFile>> MapReadOnly(const std::string& path, uint64_t map_bytes) override;
  Result<FileIdentity> Identify(const std::string& path) override;
  uint64_t OpenFileLimit() override;
  // What OpenFileLimit answers from now on (0 = ask the base Env again).
  void SetOpenFileLimit(uint64_t limit);
  // The simulated disk when one is set, else the base Env's; FaultOp::kSpace faults apply.
  Result<SpaceInfo> Space(const std::string& path) override;

  // Used by the File and MappedFile wrappers.
  struct MapRegistry;  // the live mappings (fault_env.cc)
  Status Check(FaultOp op, const std::string& path, size_t* keep_bytes);
  // An open file handle and the inode it reaches (that of path now), for the
  // durability state below: as fdatasync acts on the inode, so do the syncs
  // of a file renamed while open (a MANIFEST or hint written under *.tmp and
  // published before it is finished) or unlinked.
  void BindHandle(const File* file, const std::string& path);
  void ForgetHandle(const File* file);
  // size, covered_writes, truncations: the file's size, WritesSoFar() and
  // TruncationsOf(file) when the sync started. Syncs in flight at once may
  // return in any order: one that began earlier never takes back what a
  // later one made durable, and a truncation since it began bounds it.
  void OnSynced(const File* file, uint64_t size, uint64_t covered_writes, uint64_t truncations);
  uint64_t TruncationsOf(const File* file) const;
  // Before a PWrite of n bytes at offset into file (through base): keeps
  // the durable bytes it is about to replace; returns a token for
  // AfterPWrite, called once the bytes were written (from then on a sync
  // that starts covers them).
  uint64_t BeforePWrite(const File* file, const File& base, uint64_t offset, size_t n);
  void AfterPWrite(const File* file, uint64_t token);
  uint64_t WritesSoFar() const;
  // After a truncation of file to size (through base) that succeeded;
  // token: BeforePWrite's for the bytes from size on.
  void OnTruncated(const File* file, uint64_t size, uint64_t token);
  // A read of path met unreadable bytes, or a mapping's bad page raised SIGBUS.
  void NoteUnreadableMet();
  // How many of `growth` more bytes of the file at path fit the simulated disk.
  uint64_t DiskRoom(const std::string& path, uint64_t growth) const;

 private:
  // Durable bytes a write replaced, until a sync covers the write.
  struct Overwrite {
    uint64_t offset = 0;
    std::string old_bytes;
    uint64_t token = 0;
    uint64_t write_no = UINT64_MAX;  // no sync covers it before AfterPWrite
  };
  struct Truncation {
    uint64_t size;      // what it left
    uint64_t write_no;  // numbered as PWrites are
  };
  // An inode.
  struct FileState {
    uint64_t synced_bytes = 0;
    std::vector<Overwrite> overwrites;     // oldest first (truncations' cut bytes too)
    std::vector<Truncation> truncations;   // oldest first
    uint64_t truncations_synced = 0;       // write_no up to which a sync covered them
    std::string stash;                     // its hard link in the stash ("": none)
  };
  struct Fault {
    FaultOp op;
    uint64_t nth;       // the matching call that fails first (1-based)
    uint64_t seen = 0;  // matching calls so far
    Code code;
    bool forever;
    bool short_write;
    size_t keep_bytes;
    std::string path_part;  // empty: every path
  };
  // The inode file's handle reaches (nullptr: none tracked). mu_ held.
  FileState* StateOf(const File* file);
  // The inode at path, tracked from now on: a file the env had not seen
  // counts as durable, its entry and its bytes. 0: no file. mu_ held.
  uint64_t TrackLocked(const std::string& path);
  // Whether a durable entry names inode id. mu_ held.
  bool DurablyNamed(uint64_t id) const;
  // Keeps inode id, now at path, in the stash if a durable entry names it
  // (path is about to lose it). mu_ held.
  void StashLocked(uint64_t id, const std::string& path);
  // Removes the stashed links no durable entry needs (all: every one). mu_ held.
  void DropStashesLocked(bool all);

  Env& base_;
  mutable std::mutex mu_;
  std::map<uint64_t, FileState> inodes_;              // tracked inodes by id (from 1)
  uint64_t next_inode_ = 1;
  std::map<std::string, uint64_t> names_;              // tracked names -> inode now
  std::map<std::string, uint64_t> durable_names_;      // tracked names -> inode their dir's last sync left (0: none)
  std::map<const File*, uint64_t> handles_;            // open handles -> inode (0: untracked)
  std::map<std::string, std::string> stash_dirs_;      // parent of a data dir -> the stash made in it
  std::shared_ptr<std::atomic<uint64_t>> mapped_faults_ = std::make_shared<std::atomic<uint64_t>>(0);
  std::vector<Fault> faults_;
  uint64_t calls_[static_cast<int>(FaultOp::kCount)] = {};
  std::map<std::pair<int, std::string>, uint64_t> path_calls_;
  uint64_t fired_ = 0;
  std::function<void(const std::string& path)> sync_hook_;
  std::function<void(const std::string& path)> write_hook_;
  std::function<void(const std::string& path)> create_hook_;
  std::function<void(const std::string& path)> map_hook_;
  ReadHookFn read_hook_;
  std::vector<std::string> changes_;
  uint64_t writes_ = 0;  // PWrites finished (numbers Overwrite::write_no)
  uint64_t tokens_ = 0;
  uint64_t open_file_limit_ = 0;
  std::map<std::string, uint64_t> last_mapped_bytes_;
  std::shared_ptr<std::atomic<int64_t>> live_mappings_ = std::make_shared<std::atomic<int64_t>>(0);
  // The live mappings, for LoseMappedPages (shared with them: a mapping may outlive the env).
  std::shared_ptr<MapRegistry> maps_;
  std::vector<std::pair<std::string, uint64_t>> unreadable_;  // SetUnreadable: (path part, offset)
  struct Sector {
    std::string path_part;
    uint64_t from, to;
  };
  std::vector<Sector> unreadable_sectors_;  // SetUnreadableSector
  std::string disk_dir_;      // SimulateDisk
  uint64_t disk_bytes_ = 0;   // 0: no simulated disk
};

// What the reads of some files cost while it is installed: the bytes read,
// the largest single read, and the distinct memory those reads filled (the
// union of their destination ranges: a buffer reused by every read counts
// once). Installs env's read hook until Stop() or destruction; any thread.
class ReadFootprint {
 public:
  ReadFootprint(FaultInjectionEnv& env, std::function<bool(const std::string& path)> counted);
  ~ReadFootprint() { Stop(); }
  void Stop();  // removes the read hook (the counts stay)
  uint64_t read_bytes() const;
  uint64_t largest_read() const;
  uint64_t held_bytes() const;

 private:
  FaultInjectionEnv& env_;
  bool installed_ = true;
  mutable std::mutex mu_;
  uint64_t read_bytes_ = 0;
  uint64_t largest_read_ = 0;
  std::map<uintptr_t, uintptr_t> memory_;  // disjoint ranges, start -> end
};

}  // namespace kingx::engine::test
