// SharedIndex shared by processes, the way the server uses it: a shared
// anonymous mapping created before fork, one writer process (this test's
// parent) inserting (with growth), replacing and removing, and reader
// processes looking keys up at the same time. Every location encodes the key
// it belongs to, so a reader can tell a wrong or torn candidate from a right
// one; a set of always-present keys must never be reported missing.
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <new>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/index.h"
#include "engine/kill_point.h"
#include "engine/location.h"

namespace kingx::engine {
namespace {

constexpr uint64_t kKeyIds = 160000;   // key ids 0 .. kKeyIds-1
constexpr uint64_t kAlwaysIds = 2000;  // ids below this are never removed
constexpr int kReaders = 2;
constexpr uint64_t kWriterOps = 400000;
// A reader stops when the parent says so or is gone; this bound only keeps a
// reader whose parent hangs from spinning past any timeout the test runs
// under (sanitizers at the lowest priority make the writer minutes long).
constexpr auto kDeadline = std::chrono::minutes(40);

// Keys 2k and 2k+1 share one full 64-bit hash: every lookup involves a real
// collision that only the locations can tell apart.
uint64_t HashOfId(uint64_t id) {
  uint64_t z = (id / 2) + 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return z == 0 ? 1 : z;
}

// The location of version `gen` of key `id`: the offset is the key id.
Location LocOf(uint64_t id, uint64_t gen) { return MakeLocation(gen & kMaxSegmentId, id); }

// Shared between the parent and the readers, in front of the index region.
struct Control {
  std::atomic<uint32_t> readers_started{0};
  std::atomic<uint32_t> stop{0};
  pid_t parent = getpid();  // the test process, which forks the readers
  std::atomic<uint64_t> ok_lookups[kReaders];
  std::atomic<uint64_t> busy_lookups[kReaders];
};

enum ReaderExit : int {
  kReaderOk = 0,
  kWrongCandidate = 1,
  kAlwaysPresentMissing = 2,
  kLookupError = 3,
  kNoSuccessfulLookup = 4,
  kAttachFailed = 5,
  kStopNeverCame = 6,
  kBusyLookup = 7,
  kParentGone = 8,
};

// Runs in a child: looks keys up until the parent says stop. Never returns.
[[noreturn]] void RunReader(int reader, Control* control, const SharedIndex* inherited, void* region,
                            size_t region_bytes) {
  const SharedIndex* index = inherited;
  Result<SharedIndex> attached = Status::InvalidArgument("not attached");
  if (reader % 2 == 1) {  // odd readers attach like a freshly exec'd process would
    attached = SharedIndex::Attach(region, region_bytes);
    if (!attached.ok()) _exit(kAttachFailed);
    index = &attached.value();
  }
  std::mt19937_64 rng(1000 + static_cast<uint64_t>(reader));
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  const pid_t parent = control->parent;
  uint64_t ok = 0;
  uint64_t busy = 0;
  control->readers_started.fetch_add(1);
  for (uint64_t n = 0;; ++n) {
    if (n % 1024 == 0) {
      control->ok_lookups[reader].store(ok);
      control->busy_lookups[reader].store(busy);
      if (control->stop.load()) break;
      if (getppid() != parent) _exit(kParentGone);
      if (std::chrono::steady_clock::now() > deadline) _exit(kStopNeverCame);
    }
    const uint64_t id = rng() % kKeyIds;
    Candidates c;
    Status s = index->Lookup(HashOfId(id), &c);
    if (s.code() == Code::kBusy) {
      ++busy;  // readers never wait for the writer: a busy lookup is a failure
      control->busy_lookups[reader].store(busy);
      _exit(kBusyLookup);
    }
    if (!s.ok()) _exit(kLookupError);
    ++ok;
    // Candidates belong to the id or its hash twin. One id may show two
    // locations when a replace overtook a probe that was walking a run an
    // insert was shifting: both were current during the lookup.
    bool found = false;
    for (uint32_t i = 0; i < c.count; ++i) {
      const Location loc = c.locations[i];
      if (IsTombstone(loc) || LocationOffset(loc) / 2 != id / 2) _exit(kWrongCandidate);
      found |= LocationOffset(loc) == id;
    }
    if (id < kAlwaysIds && !found) _exit(kAlwaysPresentMissing);
  }
  _exit(ok > 0 ? kReaderOk : kNoSuccessfulLookup);
}

// The parent's model of which ids are present and at which generation.
struct WriterModel {
  std::vector<uint64_t> gen;         // 0 = absent
  std::vector<uint64_t> present;     // ids >= kAlwaysIds that are present
  std::vector<uint64_t> absent;      // ids >= kAlwaysIds that are absent
  std::vector<uint64_t> pos;         // position of an id in present or absent

  WriterModel() : gen(kKeyIds, 0), pos(kKeyIds, 0) {
    for (uint64_t id = kAlwaysIds; id < kKeyIds; ++id) {
      pos[id] = absent.size();
      absent.push_back(id);
    }
  }
  static void Move(std::vector<uint64_t>& from, std::vector<uint64_t>& to, std::vector<uint64_t>& pos,
                   uint64_t id) {
    const uint64_t i = pos[id];
    from[i] = from.back();
    pos[from[i]] = i;
    from.pop_back();
    pos[id] = to.size();
    to.push_back(id);
  }
};

// Waits for `pid` with a bounded poll; kills it (by its pid) past the bound.
int WaitChild(pid_t pid) {
  for (int i = 0; i < 60000; ++i) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r < 0) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  return -2;
}

// Stops and reaps the readers however the parent leaves the test (a failed
// REQUIRE throws): no child outlives the test case.
class ReaderGuard {
 public:
  explicit ReaderGuard(Control* control) : control_(control) {}
  ~ReaderGuard() { (void)Finish(); }
  ReaderGuard(const ReaderGuard&) = delete;
  ReaderGuard& operator=(const ReaderGuard&) = delete;
  void Add(pid_t pid) { pids_.push_back(pid); }
  // Tells the readers to stop and returns their exit codes (once).
  std::vector<int> Finish() {
    control_->stop.store(1);
    std::vector<int> exits;
    for (pid_t pid : pids_) exits.push_back(WaitChild(pid));
    pids_.clear();
    return exits;
  }

 private:
  Control* control_;
  std::vector<pid_t> pids_;
};

struct SharedMapping {
  explicit SharedMapping(size_t bytes) : bytes(bytes) {
    base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    REQUIRE(base != MAP_FAILED);
  }
  ~SharedMapping() { munmap(base, bytes); }
  SharedMapping(const SharedMapping&) = delete;
  SharedMapping& operator=(const SharedMapping&) = delete;
  void* base = nullptr;
  size_t bytes = 0;
};

TEST_CASE("readers in other processes see only valid candidates while the writer inserts, grows, "
          "replaces and removes", "[engine][index]") {
  const size_t region_bytes = SharedIndex::RegionBytesFor(kKeyIds);
  SharedMapping mapping(4096 + region_bytes);
  auto* control = new (mapping.base) Control{};
  void* region = static_cast<char*>(mapping.base) + 4096;
  auto created = SharedIndex::Create(region, region_bytes, 16);
  REQUIRE(created.ok());
  SharedIndex& index = created.value();

  WriterModel model;
  uint64_t next_gen = 1;
  for (uint64_t id = 0; id < kAlwaysIds; ++id) {
    model.gen[id] = next_gen++;
    REQUIRE(index.Insert(HashOfId(id), LocOf(id, model.gen[id])).ok());
  }
  const uint64_t capacity_at_fork = index.capacity();

  ReaderGuard readers(control);
  for (int r = 0; r < kReaders; ++r) {
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) RunReader(r, control, &index, region, region_bytes);
    readers.Add(pid);
  }
  // Start writing only once every reader is reading (bounded wait).
  for (int i = 0; i < 10000 && control->readers_started.load() < kReaders; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  std::mt19937_64 rng(42);
  uint64_t inserts = 0, replaces = 0, removes = 0;
  auto replace_one = [&](uint64_t id) {
    const uint64_t g = next_gen++;
    REQUIRE(index.Replace(HashOfId(id), LocOf(id, model.gen[id]), LocOf(id, g)));
    model.gen[id] = g;
    ++replaces;
  };
  for (uint64_t op = 0; op < kWriterOps; ++op) {
    {
      const uint64_t dice = rng() % 10;
      if (dice < 6 && !model.absent.empty()) {
        const uint64_t id = model.absent[rng() % model.absent.size()];
        model.gen[id] = next_gen++;
        REQUIRE(index.Insert(HashOfId(id), LocOf(id, model.gen[id])).ok());
        WriterModel::Move(model.absent, model.present, model.pos, id);
        ++inserts;
      } else if (dice < 8 || model.present.empty()) {
        replace_one(rng() % 2 == 0 || model.present.empty() ? rng() % kAlwaysIds
                                                            : model.present[rng() % model.present.size()]);
      } else {
        const uint64_t id = model.present[rng() % model.present.size()];
        REQUIRE(index.Remove(HashOfId(id), LocOf(id, model.gen[id])));
        model.gen[id] = 0;
        WriterModel::Move(model.present, model.absent, model.pos, id);
        ++removes;
      }
    }
  }
  const std::vector<int> exits = readers.Finish();
  for (int r = 0; r < kReaders; ++r) {
    INFO("reader " << r << " exit " << exits[r] << " ok lookups " << control->ok_lookups[r].load()
                   << " busy " << control->busy_lookups[r].load());
    CHECK(exits[r] == kReaderOk);
  }
  INFO("inserts " << inserts << " replaces " << replaces << " removes " << removes << " capacity "
                  << capacity_at_fork << " -> " << index.capacity());
  // The writer's work really overlapped growth: several x1.5 steps after fork.
  REQUIRE(index.capacity() >= capacity_at_fork * 3);
  REQUIRE(index.size() == kAlwaysIds + model.present.size());
  uint64_t checked = 0;
  index.ForEach([&](uint64_t hash, Location loc) {
    const uint64_t id = LocationOffset(loc);
    REQUIRE(id < kKeyIds);
    REQUIRE(hash == HashOfId(id));
    REQUIRE(loc == LocOf(id, model.gen[id]));
    ++checked;
  });
  REQUIRE(checked == index.size());
}

// The writer's ops for the kill sweep: inserts into crowded runs (ids whose
// hashes share a few home buckets make long Robin Hood shifts), deletes
// inside those runs, and growths (the table starts at 16 entries).
void KillSweepOps(SharedIndex& index, WriterModel& model, uint64_t* next_gen) {
  std::mt19937_64 rng(99);
  for (int op = 0; op < 400; ++op) {
    if (rng() % 3 != 0 || model.present.empty()) {
      const uint64_t id = model.absent[rng() % 600];  // a few hundred ids: crowded, colliding runs
      model.gen[id] = (*next_gen)++;
      if (!index.Insert(HashOfId(id), LocOf(id, model.gen[id])).ok()) _exit(3);
      WriterModel::Move(model.absent, model.present, model.pos, id);
    } else {
      const uint64_t id = model.present[rng() % model.present.size()];
      if (!index.Remove(HashOfId(id), LocOf(id, model.gen[id]))) _exit(4);
      model.gen[id] = 0;
      WriterModel::Move(model.present, model.absent, model.pos, id);
    }
  }
}

TEST_CASE("a writer process killed at any store of an insert, delete or growth leaves an index that "
          "readers use at once, every key in it", "[engine][index][crash]") {
  // Each round: a fresh index holding kAlways keys, a child writer that runs
  // the same ops and dies (like kill -9) at the Nth reader-visible store;
  // then, with no writer at all, every lookup must succeed at once (nothing
  // to wait for), return only right candidates and find every kAlways key.
  constexpr uint64_t kAlways = 300;
  int died = 0, finished = 0;
  // Bounded: the op sequence has a few thousand stores; the loop ends at
  // the first child that runs it to the end.
  for (int n = 1; n <= 50000 && finished == 0; n += (n < 600 ? 1 : 7)) {
    const size_t region_bytes = SharedIndex::RegionBytesFor(4000);
    SharedMapping mapping(region_bytes);
    auto created = SharedIndex::Create(mapping.base, region_bytes, 16);
    REQUIRE(created.ok());
    SharedIndex& index = created.value();
    WriterModel model;
    uint64_t next_gen = 1;
    for (uint64_t id = 0; id < kAlways; ++id) {
      model.gen[id] = next_gen++;
      REQUIRE(index.Insert(HashOfId(id), LocOf(id, model.gen[id])).ok());
    }
    const pid_t writer = fork();
    REQUIRE(writer >= 0);
    if (writer == 0) {
      ArmKillPoint("index.step:" + std::to_string(n));
      KillSweepOps(index, model, &next_gen);
      _exit(0);
    }
    const int exit_code = WaitChild(writer);
    INFO("killed at store " << n);
    REQUIRE((exit_code == 137 || exit_code == 0));
    (exit_code == 137 ? died : finished) += 1;
    for (uint64_t id = 0; id < kAlwaysIds + 700; id = id + 1 == kAlways ? kAlwaysIds : id + 1) {
      Candidates c;
      REQUIRE(index.Lookup(HashOfId(id), &c).ok());
      bool found = false;
      for (uint32_t i = 0; i < c.count; ++i) {
        REQUIRE_FALSE(IsTombstone(c.locations[i]));
        REQUIRE(LocationOffset(c.locations[i]) / 2 == id / 2);
        found |= c.locations[i] == LocOf(id, model.gen[id]) && id < kAlways;
      }
      if (id < kAlways) REQUIRE(found);
    }
  }
  INFO("died " << died << " finished " << finished);
  REQUIRE(died > 500);   // the sweep reached inserts, deletes and growths
  REQUIRE(finished > 0);  // and went past the last store
}

}  // namespace
}  // namespace kingx::engine
