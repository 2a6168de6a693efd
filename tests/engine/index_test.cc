// Single-process tests of engine/index.h and engine/location.h: the table
// against a std::unordered_multimap model, full 64-bit hash collisions,
// growth, the 32-bytes-per-key RAM budget, Clear, rebuilds and recovery helpers.
#include "engine/index.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdint>
#include <fstream>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "engine/hash.h"
#include "engine/location.h"

namespace kingx::engine {
namespace {

// An anonymous mapping that unmaps itself. Shared (like the master's) so that
// page release and residency (mincore) behave as in production.
class Region {
 public:
  explicit Region(size_t bytes) : bytes_(bytes) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    REQUIRE(p != MAP_FAILED);
    base_ = p;
  }
  ~Region() { munmap(base_, bytes_); }
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;
  void* base() const { return base_; }
  size_t bytes() const { return bytes_; }

  // Bytes of the mapping currently backed by RAM.
  size_t ResidentBytes() const {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    std::vector<unsigned char> vec((bytes_ + page - 1) / page);
    REQUIRE(mincore(base_, bytes_, vec.data()) == 0);
    size_t pages = 0;
    for (unsigned char c : vec) pages += (c & 1);
    return pages * page;
  }

 private:
  void* base_ = nullptr;
  size_t bytes_ = 0;
};

SharedIndex MakeIndex(const Region& region, uint64_t initial_capacity) {
  auto r = SharedIndex::Create(region.base(), region.bytes(), initial_capacity);
  REQUIRE(r.ok());
  return std::move(r).value();
}

std::vector<Location> Sorted(const Candidates& c) {
  std::vector<Location> v(c.locations, c.locations + c.count);
  std::sort(v.begin(), v.end());
  return v;
}

std::vector<Location> LookupSorted(const SharedIndex& index, uint64_t hash) {
  Candidates c;
  Status s = index.Lookup(hash, &c);
  REQUIRE(s.ok());
  return Sorted(c);
}

// The model: every (hash, loc) pair, with O(1) random pick and removal.
struct Model {
  std::unordered_multimap<uint64_t, Location> by_hash;
  std::vector<std::pair<uint64_t, Location>> pairs;
  std::unordered_map<Location, size_t> pos_of_loc;  // locations are unique

  void Add(uint64_t h, Location l) {
    by_hash.emplace(h, l);
    pos_of_loc[l] = pairs.size();
    pairs.emplace_back(h, l);
  }
  void Drop(size_t i) {
    auto [h, l] = pairs[i];
    auto range = by_hash.equal_range(h);
    for (auto it = range.first; it != range.second; ++it) {
      if (it->second == l) {
        by_hash.erase(it);
        break;
      }
    }
    pos_of_loc.erase(l);
    if (i + 1 != pairs.size()) {
      pairs[i] = pairs.back();
      pos_of_loc[pairs[i].second] = i;
    }
    pairs.pop_back();
  }
  void Relocate(size_t i, Location new_loc) {
    auto [h, l] = pairs[i];
    auto range = by_hash.equal_range(h);
    for (auto it = range.first; it != range.second; ++it) {
      if (it->second == l) it->second = new_loc;
    }
    pos_of_loc.erase(l);
    pos_of_loc[new_loc] = i;
    pairs[i].second = new_loc;
  }
  std::vector<Location> Expected(uint64_t h) const {
    std::vector<Location> v;
    auto range = by_hash.equal_range(h);
    for (auto it = range.first; it != range.second; ++it) v.push_back(it->second);
    std::sort(v.begin(), v.end());
    return v;
  }
  size_t Count(uint64_t h) const { return by_hash.count(h); }
};

void CheckAgainstModel(const SharedIndex& index, const Model& model) {
  REQUIRE(index.size() == model.pairs.size());
  std::vector<std::pair<uint64_t, Location>> seen;
  index.ForEach([&](uint64_t h, Location l) { seen.emplace_back(h, l); });
  std::vector<std::pair<uint64_t, Location>> want = model.pairs;
  std::sort(seen.begin(), seen.end());
  std::sort(want.begin(), want.end());
  REQUIRE(seen == want);
  for (const auto& [h, l] : model.pairs) REQUIRE(LookupSorted(index, h) == model.Expected(h));
}

TEST_CASE("location packs segment and offset and keeps them apart from the tombstone bit",
          "[engine][index]") {
  static_assert(LocationSegment(MakeLocation(kMaxSegmentId, kMaxOffset)) == kMaxSegmentId);
  static_assert(LocationOffset(MakeLocation(kMaxSegmentId, kMaxOffset)) == kMaxOffset);
  static_assert(!IsTombstone(MakeLocation(kMaxSegmentId, kMaxOffset)));
  std::mt19937_64 rng(7);
  for (int i = 0; i < 10000; ++i) {
    const uint64_t seg = rng() & kMaxSegmentId;
    const uint64_t off = rng() & kMaxOffset;
    const Location loc = MakeLocation(seg, off);
    REQUIRE(LocationSegment(loc) == seg);
    REQUIRE(LocationOffset(loc) == off);
    REQUIRE_FALSE(IsTombstone(loc));
    const Location dead = WithTombstone(loc);
    REQUIRE(IsTombstone(dead));
    REQUIRE(dead != loc);
    REQUIRE(LocationSegment(dead) == seg);
    REQUIRE(LocationOffset(dead) == off);
    REQUIRE(WithoutTombstone(dead) == loc);
  }
  REQUIRE(kMaxSegmentId == (1u << 24) - 1);
  REQUIRE(kMaxOffset == (uint64_t{1} << 39) - 1);
}

TEST_CASE("index Create and Attach validate the region", "[engine][index]") {
  Region region(SharedIndex::RegionBytesFor(1000));
  SECTION("misaligned or too small regions are refused") {
    auto misaligned = SharedIndex::Create(static_cast<char*>(region.base()) + 8, region.bytes() - 8, 16);
    REQUIRE(misaligned.status().code() == Code::kInvalidArgument);
    auto tiny = SharedIndex::Create(region.base(), SharedIndex::kHeaderBytes, 16);
    REQUIRE(tiny.status().code() == Code::kInvalidArgument);
  }
  SECTION("attach refuses an unformatted region and a different size") {
    auto unformatted = SharedIndex::Attach(region.base(), region.bytes());
    REQUIRE(unformatted.status().code() == Code::kInvalidArgument);
    SharedIndex index = MakeIndex(region, 16);
    auto other_size = SharedIndex::Attach(region.base(), region.bytes() - 4096);
    REQUIRE(other_size.status().code() == Code::kInvalidArgument);
  }
  SECTION("an attached handle sees what the creator wrote, counters included") {
    SharedIndex index = MakeIndex(region, 16);
    REQUIRE(index.Insert(42, MakeLocation(1, 100)).ok());
    index.counters().seed.store(99);
    index.counters().ready.store(1);
    auto attached = SharedIndex::Attach(region.base(), region.bytes());
    REQUIRE(attached.ok());
    REQUIRE(LookupSorted(*attached, 42) == std::vector<Location>{MakeLocation(1, 100)});
    REQUIRE(attached->counters().seed.load() == 99);
    REQUIRE(attached->counters().ready.load() == 1);
    REQUIRE(attached->size() == 1);
  }
  SECTION("hash 0 is refused") {
    SharedIndex index = MakeIndex(region, 16);
    REQUIRE(index.Insert(0, 1).code() == Code::kInvalidArgument);
    REQUIRE(index.size() == 0);
  }
}

// The VmFlags line of the mapping of this process that holds `addr`
// (/proc/self/smaps), "" when none does.
std::string VmFlagsAt(const void* addr) {
  std::ifstream smaps("/proc/self/smaps");
  const auto a = reinterpret_cast<uintptr_t>(addr);
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    unsigned long lo = 0, hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> lo >> dash >> hi && dash == '-') {
      inside = a >= lo && a < hi;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      return line + " ";
    }
  }
  return "";
}

TEST_CASE("index Create advises huge pages for its tables, not its header", "[engine][index]") {
  if (access("/sys/kernel/mm/transparent_hugepage", F_OK) != 0) {
    WARN("kernel without transparent huge pages: nothing to advise");
    return;
  }
  Region region(SharedIndex::RegionBytesFor(1000000));
  REQUIRE(VmFlagsAt(region.base()).find(" hg ") == std::string::npos);
  SharedIndex index = MakeIndex(region, 16);
  const char* base = static_cast<const char*>(region.base());
  CHECK(VmFlagsAt(base + SharedIndex::kHeaderBytes).find(" hg ") != std::string::npos);
  CHECK(VmFlagsAt(base + region.bytes() - 1).find(" hg ") != std::string::npos);
  CHECK(VmFlagsAt(base).find(" hg ") == std::string::npos);
  // The advice changes no lookup.
  REQUIRE(index.Insert(42, MakeLocation(1, 100)).ok());
  REQUIRE(LookupSorted(index, 42) == std::vector<Location>{MakeLocation(1, 100)});
}

TEST_CASE("index matches a multimap model under random insert, replace, remove and lookup",
          "[engine][index]") {
  Region region(SharedIndex::RegionBytesFor(40000));
  SharedIndex index = MakeIndex(region, 16);
  Model model;
  std::mt19937_64 rng(GENERATE(1, 2, 3));

  // A pool of hashes: random ones, clustered ones (same home bucket region),
  // ones near 2^64 (last bucket, probes wrap around) and small ones (first
  // bucket). Drawing from a pool makes full 64-bit collisions common.
  std::vector<uint64_t> pool;
  for (int i = 0; i < 3000; ++i) pool.push_back(rng() | 1);
  for (uint64_t i = 0; i < 300; ++i) pool.push_back((uint64_t{1} << 63) + i);
  for (uint64_t i = 0; i < 300; ++i) pool.push_back(~uint64_t{0} - i);
  for (uint64_t i = 2; i <= 301; ++i) pool.push_back(i);  // 0 and 1 are reserved

  Location next_loc = 1;
  uint64_t full_refusals = 0;
  for (int op = 0; op < 60000; ++op) {
    const int kind = static_cast<int>(rng() % 10);
    if (kind < 5 || model.pairs.empty()) {
      // One insert in ten goes to a few hot hashes, which fill up to the limit.
      const uint64_t h = rng() % 10 == 0 ? pool[rng() % 8] : pool[rng() % pool.size()];
      const Location l = MakeLocation(next_loc % kMaxSegmentId, next_loc);
      ++next_loc;
      Status s = index.Insert(h, l);
      if (model.Count(h) >= kMaxCandidates) {
        REQUIRE(s.code() == Code::kInvalidArgument);
        ++full_refusals;
      } else {
        REQUIRE(s.ok());
        model.Add(h, l);
      }
    } else if (kind < 7) {
      const size_t i = rng() % model.pairs.size();
      const Location l = MakeLocation(next_loc % kMaxSegmentId, next_loc);
      ++next_loc;
      REQUIRE(index.Replace(model.pairs[i].first, model.pairs[i].second, l));
      model.Relocate(i, l);
    } else if (kind < 9) {
      const size_t i = rng() % model.pairs.size();
      REQUIRE(index.Remove(model.pairs[i].first, model.pairs[i].second));
      model.Drop(i);
    } else {
      const uint64_t h = pool[rng() % pool.size()];
      REQUIRE(LookupSorted(index, h) == model.Expected(h));
      // Pairs that are not there are not found.
      REQUIRE_FALSE(index.Replace(h, next_loc + 1, 5));
      REQUIRE_FALSE(index.Remove(h, next_loc + 1));
    }
    if (op % 10000 == 9999) CheckAgainstModel(index, model);
  }
  CheckAgainstModel(index, model);
  REQUIRE(index.capacity() > 16);  // it grew
  REQUIRE(full_refusals > 0);      // the 16-per-hash limit was exercised
}

TEST_CASE("index keeps up to 16 keys under one full 64-bit hash and refuses the 17th",
          "[engine][index]") {
  Region region(SharedIndex::RegionBytesFor(1000));
  SharedIndex index = MakeIndex(region, 16);
  const uint64_t h = 0x1234567890abcdefULL;
  std::vector<Location> want;
  for (uint32_t i = 0; i < kMaxCandidates; ++i) {
    want.push_back(MakeLocation(i, 40 + i));
    REQUIRE(index.Insert(h, want.back()).ok());
    REQUIRE(index.Insert(h + 1 + i, MakeLocation(100, i)).ok());  // neighbours in the same run
  }
  REQUIRE(index.Insert(h, MakeLocation(99, 99)).code() == Code::kInvalidArgument);
  REQUIRE(LookupSorted(index, h) == want);
  Candidates c;
  REQUIRE(index.LookupForWriter(h, &c).ok());
  REQUIRE(Sorted(c) == want);
  REQUIRE(index.Remove(h, want[3]));
  want.erase(want.begin() + 3);
  REQUIRE(LookupSorted(index, h) == want);
  REQUIRE(index.Insert(h, MakeLocation(99, 99)).ok());
}

TEST_CASE("index Insert with the candidates LookupForWriter found behaves as a plain Insert",
          "[engine][index]") {
  // Recovery looks a hash up, compares keys on disk, then inserts with what it found.
  Region region(SharedIndex::RegionBytesFor(20000));
  SharedIndex index = MakeIndex(region, 16);
  std::mt19937_64 rng(7);
  std::vector<std::pair<uint64_t, Location>> inserted;
  for (uint32_t i = 0; i < 20000; ++i) {
    const uint64_t h = 2 + rng() % (uint64_t{1} << 40);
    index.PrefetchForWriter(h);  // a hint only: nothing may change
    Candidates c;
    REQUIRE(index.LookupForWriter(h, &c).ok());
    REQUIRE(index.Insert(h, MakeLocation(1, 40 + i), c).ok());
    inserted.emplace_back(h, MakeLocation(1, 40 + i));
  }
  REQUIRE(index.size() == inserted.size());
  for (const auto& [h, loc] : inserted) {
    Candidates c;
    REQUIRE(index.Lookup(h, &c).ok());
    REQUIRE(std::count(c.locations, c.locations + c.count, loc) == 1);
  }
  const uint64_t h = 0x1234567890abcdefULL;
  for (uint32_t i = 0; i < kMaxCandidates; ++i) REQUIRE(index.Insert(h, MakeLocation(2, 40 + i)).ok());
  Candidates c;
  REQUIRE(index.LookupForWriter(h, &c).ok());
  REQUIRE(c.count == kMaxCandidates);
  REQUIRE(index.Insert(h, MakeLocation(3, 40), c).code() == Code::kInvalidArgument);
  REQUIRE(index.size() == inserted.size() + kMaxCandidates);
}

TEST_CASE("index LookupBatch gives what Lookup gives for each hash: present, removed, missing, colliding",
          "[engine][index]") {
  Region region(SharedIndex::RegionBytesFor(30000));
  SharedIndex index = MakeIndex(region, 16);
  std::mt19937_64 rng(21);
  // Hashes that share a home slot (they differ in their low bits only, and
  // the home comes from the high bits), full 64-bit collisions (several
  // locations under one hash), runs that wrap around the table's end, and
  // plain random ones; some of each removed again.
  std::vector<uint64_t> hashes;
  Location next = 1;
  auto insert = [&](uint64_t h) {
    REQUIRE(index.Insert(h, MakeLocation(next % kMaxSegmentId, next)).ok());
    ++next;
    hashes.push_back(h);
  };
  for (int cluster = 0; cluster < 500; ++cluster) {
    const uint64_t base = (rng() & ~uint64_t{0xFF}) + 2;
    const uint64_t size = 1 + rng() % 12;
    for (uint64_t i = 0; i < size; ++i) insert(base + i);
  }
  for (int full = 0; full < 200; ++full) {
    const uint64_t h = rng() | 2;
    const uint64_t size = 1 + rng() % kMaxCandidates;
    for (uint64_t i = 0; i < size; ++i) insert(h);
  }
  for (uint64_t i = 0; i < 200; ++i) insert(~uint64_t{0} - i);
  for (int i = 0; i < 10000; ++i) insert(rng() | 2);
  for (int i = 0; i < 3000; ++i) {
    const uint64_t h = hashes[rng() % hashes.size()];
    Candidates c;
    REQUIRE(index.Lookup(h, &c).ok());
    if (c.count > 0) REQUIRE(index.Remove(h, c.locations[rng() % c.count]));
  }
  // Hashes never inserted: random ones, and neighbours of inserted ones (same home).
  std::vector<uint64_t> missing;
  for (int i = 0; i < 2000; ++i) missing.push_back(rng() | 2);
  for (int i = 0; i < 2000; ++i) missing.push_back(hashes[rng() % hashes.size()] ^ 0x40);
  hashes.insert(hashes.end(), missing.begin(), missing.end());
  std::shuffle(hashes.begin(), hashes.end(), rng);

  uint64_t found = 0, empty = 0, several = 0;
  for (size_t batch : {size_t{1}, size_t{7}, size_t{32}, size_t{100}}) {
    for (size_t at = 0; at < hashes.size(); at += batch) {
      const size_t m = std::min(batch, hashes.size() - at);
      std::vector<Candidates> got(m);
      REQUIRE(index.LookupBatch(std::span<const uint64_t>(hashes.data() + at, m), got).ok());
      for (size_t i = 0; i < m; ++i) {
        Candidates one;
        REQUIRE(index.Lookup(hashes[at + i], &one).ok());
        REQUIRE(Sorted(got[i]) == Sorted(one));
        found += got[i].count > 0;
        empty += got[i].count == 0;
        several += got[i].count > 1;
      }
    }
  }
  // Every kind was there to compare.
  REQUIRE(found > 0);
  REQUIRE(empty > 0);
  REQUIRE(several > 0);
  std::vector<Candidates> none;
  REQUIRE(index.LookupBatch({}, none).ok());
}

TEST_CASE("index grows by 1.5x and stays within 32 bytes of table per key, 1M keys",
          "[engine][index]") {
  constexpr uint64_t kKeys = 1000000;
  Region region(SharedIndex::RegionBytesFor(kKeys));
  SharedIndex index = MakeIndex(region, 16);
  std::mt19937_64 rng(11);
  std::vector<uint64_t> hashes;
  hashes.reserve(kKeys);
  uint64_t growths = 0;
  uint64_t cap = index.capacity();
  for (uint64_t i = 0; i < kKeys; ++i) {
    hashes.push_back(rng() | 1);
    REQUIRE(index.Insert(hashes.back(), MakeLocation(i % 1000, i)).ok());
    if (index.capacity() != cap) {
      REQUIRE(index.capacity() == cap + cap / 2);
      cap = index.capacity();
      ++growths;
      // Past the first few pages, right after a growth is the worst case.
      if (index.TableBytes() >= (1u << 20)) REQUIRE(index.TableBytes() <= 32 * index.size());
    }
  }
  REQUIRE(growths >= 10);
  REQUIRE(index.size() == kKeys);
  REQUIRE(index.TableBytes() <= 32 * index.size());
  // The pages of the old tables were given back: the whole region's resident
  // memory is the header plus the live table (plus slack for rounding).
  REQUIRE(region.ResidentBytes() <= 32 * kKeys + 64 * 1024);
  for (uint64_t i = 0; i < kKeys; i += 997) {
    REQUIRE(LookupSorted(index, hashes[i]) == std::vector<Location>{MakeLocation(i % 1000, i)});
  }
}

TEST_CASE("index region sized by RegionBytesFor holds that many keys, more gives kNoSpace",
          "[engine][index]") {
  constexpr uint64_t kKeys = 50000;
  Region region(SharedIndex::RegionBytesFor(kKeys));
  SharedIndex index = MakeIndex(region, 16);
  uint64_t h = 1;
  uint64_t inserted = 0;
  for (; inserted < kKeys; ++inserted) {
    h = h * 6364136223846793005ULL + 1442695040888963407ULL;
    REQUIRE(index.Insert(h | 1, inserted).ok());
  }
  // Keep inserting until the region is full: kNoSpace, index unchanged.
  Status s;
  uint64_t last_hash = 0;
  for (int i = 0; i < 10000000 && s.ok(); ++i) {
    h = h * 6364136223846793005ULL + 1442695040888963407ULL;
    last_hash = h | 1;
    s = index.Insert(last_hash, inserted);
    if (s.ok()) ++inserted;
  }
  REQUIRE(s.code() == Code::kNoSpace);
  REQUIRE(index.size() == inserted);
  REQUIRE(LookupSorted(index, last_hash).empty());
}

TEST_CASE("index Reserve grows once to the requested size", "[engine][index]") {
  Region region(SharedIndex::RegionBytesFor(100000));
  SharedIndex index = MakeIndex(region, 16);
  REQUIRE(index.Insert(77, 1).ok());
  REQUIRE(index.Reserve(100000).ok());
  const uint64_t cap = index.capacity();
  REQUIRE(cap * 85 / 100 >= 100000);
  for (uint64_t i = 1; i < 100000; ++i) REQUIRE(index.Insert(i * 0x9E3779B97F4A7C15ULL | 1, i).ok());
  REQUIRE(index.capacity() == cap);
  REQUIRE(LookupSorted(index, 77) == std::vector<Location>{1});
}

TEST_CASE("index Clear empties the published table and gives the pages back", "[engine][index]") {
  Region region(SharedIndex::RegionBytesFor(20000));
  SharedIndex index = MakeIndex(region, 64);
  std::vector<uint64_t> hashes;
  for (uint64_t i = 0; i < 20000; ++i) {
    hashes.push_back(0x9E3779B97F4A7C15ULL * (i + 1) | 1);
    REQUIRE(index.Insert(hashes.back(), i).ok());
  }
  REQUIRE(index.capacity() > 64);
  index.Clear();
  REQUIRE(index.size() == 0);
  REQUIRE(index.capacity() == 64);
  REQUIRE_FALSE(index.rebuilding());
  for (uint64_t i = 0; i < 20000; i += 101) REQUIRE(LookupSorted(index, hashes[i]).empty());
  // Only the header and the small table stay resident.
  REQUIRE(region.ResidentBytes() <= SharedIndex::kHeaderBytes + index.TableBytes());
  // Usable again, including growth.
  for (uint64_t i = 0; i < 5000; ++i) REQUIRE(index.Insert(hashes[i], i + 1).ok());
  for (uint64_t i = 0; i < 5000; i += 7) REQUIRE(LookupSorted(index, hashes[i]) == std::vector<Location>{i + 1});
}

TEST_CASE("index rebuild stays invisible to readers until it is published, in one step",
          "[engine][index][rebuild]") {
  Region region(SharedIndex::RegionBytesFor(30000));
  SharedIndex index = MakeIndex(region, 16);
  auto old_hash = [](uint64_t i) { return 0x9E3779B97F4A7C15ULL * (i + 1) | 1; };
  auto new_hash = [](uint64_t i) { return 0xC2B2AE3D27D4EB4FULL * (i + 7) | 1; };
  for (uint64_t i = 0; i < 20000; ++i) REQUIRE(index.Insert(old_hash(i), MakeLocation(1, i)).ok());
  const size_t old_table_bytes = index.TableBytes();

  REQUIRE(index.BeginRebuild(15000).ok());
  REQUIRE(index.rebuilding());
  REQUIRE(index.size() == 0);
  REQUIRE(index.capacity() * 85 / 100 >= 15000);  // reserved up front
  const uint64_t reserved = index.capacity();
  // The writer fills the new table (including replaces, removes and a growth
  // past the reservation); readers keep the old one, whole.
  for (uint64_t i = 0; i < 25000; ++i) REQUIRE(index.Insert(new_hash(i), MakeLocation(2, i)).ok());
  REQUIRE(index.capacity() > reserved);
  REQUIRE(index.Replace(new_hash(3), MakeLocation(2, 3), MakeLocation(3, 3)));
  REQUIRE(index.Remove(new_hash(4), MakeLocation(2, 4)));
  for (uint64_t i = 0; i < 20000; i += 13) {
    REQUIRE(LookupSorted(index, old_hash(i)) == std::vector<Location>{MakeLocation(1, i)});
    REQUIRE(LookupSorted(index, new_hash(i)).empty());
    Candidates c;
    REQUIRE(index.LookupForWriter(new_hash(i), &c).ok());
    REQUIRE(c.count == (i == 4 ? 0u : 1u));
  }
  // Both tables are resident during the rebuild.
  REQUIRE(region.ResidentBytes() >= old_table_bytes + index.TableBytes());

  index.PublishRebuild(1234);
  REQUIRE_FALSE(index.rebuilding());
  REQUIRE(index.seed() == 1234);
  REQUIRE(index.counters().seed.load() == 1234);
  for (uint64_t i = 0; i < 20000; i += 13) REQUIRE(LookupSorted(index, old_hash(i)).empty());
  REQUIRE(LookupSorted(index, new_hash(3)) == std::vector<Location>{MakeLocation(3, 3)});
  REQUIRE(LookupSorted(index, new_hash(4)).empty());
  REQUIRE(LookupSorted(index, new_hash(24999)) == std::vector<Location>{MakeLocation(2, 24999)});
  // The old area's pages were given back.
  REQUIRE(region.ResidentBytes() <= SharedIndex::kHeaderBytes + index.TableBytes() + 64 * 1024);
  // The published table is the writer's table again: updates are visible at once.
  REQUIRE(index.Insert(old_hash(1), MakeLocation(5, 1)).ok());
  REQUIRE(LookupSorted(index, old_hash(1)) == std::vector<Location>{MakeLocation(5, 1)});
}

TEST_CASE("an abandoned rebuild leaves the published index, and the next rebuild discards it",
          "[engine][index][rebuild]") {
  Region region(SharedIndex::RegionBytesFor(10000));
  std::vector<uint64_t> hashes;
  for (uint64_t i = 0; i < 5000; ++i) hashes.push_back(0x9E3779B97F4A7C15ULL * (i + 1) | 1);
  {
    SharedIndex first = MakeIndex(region, 16);
    for (uint64_t i = 0; i < 5000; ++i) REQUIRE(first.Insert(hashes[i], MakeLocation(1, i)).ok());
  }
  // A writer that dies half way through its rebuild...
  {
    auto dying = SharedIndex::Attach(region.base(), region.bytes());
    REQUIRE(dying.ok());
    REQUIRE(dying->BeginRebuild(10000).ok());
    for (uint64_t i = 0; i < 2500; ++i) REQUIRE(dying->Insert(hashes[i], MakeLocation(9, i)).ok());
  }
  // ...leaves readers on the last complete index.
  auto next = SharedIndex::Attach(region.base(), region.bytes());
  REQUIRE(next.ok());
  SharedIndex& index = *next;
  REQUIRE(index.rebuilding());
  for (uint64_t i = 0; i < 5000; i += 7) {
    REQUIRE(LookupSorted(index, hashes[i]) == std::vector<Location>{MakeLocation(1, i)});
  }
  // The next writer starts over in the same spare area, from nothing.
  REQUIRE(index.BeginRebuild(5000).ok());
  REQUIRE(index.size() == 0);
  for (uint64_t i = 0; i < 2500; i += 7) {
    Candidates c;
    REQUIRE(index.LookupForWriter(hashes[i], &c).ok());
    REQUIRE(c.count == 0);
  }
  for (uint64_t i = 0; i < 5000; ++i) REQUIRE(index.Insert(hashes[i], MakeLocation(2, i)).ok());
  index.PublishRebuild(77);
  for (uint64_t i = 0; i < 5000; i += 7) {
    REQUIRE(LookupSorted(index, hashes[i]) == std::vector<Location>{MakeLocation(2, i)});
  }
}

TEST_CASE("index LookupKey hashes with the seed published with the table it reads",
          "[engine][index][rebuild]") {
  Region region(SharedIndex::RegionBytesFor(1000));
  SharedIndex index = MakeIndex(region, 16);
  REQUIRE(index.BeginRebuild(10).ok());
  REQUIRE(index.Insert(KeyHash(111, "k"), MakeLocation(1, 1)).ok());
  index.PublishRebuild(111);
  Candidates c;
  REQUIRE(index.LookupKey("k", &c).ok());
  REQUIRE(Sorted(c) == std::vector<Location>{MakeLocation(1, 1)});
  // A rebuild under another seed (a database whose seed could not be read
  // before): until it is published, the old seed and table go together.
  REQUIRE(index.BeginRebuild(10).ok());
  REQUIRE(index.Insert(KeyHash(222, "k"), MakeLocation(2, 2)).ok());
  REQUIRE(index.LookupKey("k", &c).ok());
  REQUIRE(Sorted(c) == std::vector<Location>{MakeLocation(1, 1)});
  index.PublishRebuild(222);
  REQUIRE(index.LookupKey("k", &c).ok());
  REQUIRE(Sorted(c) == std::vector<Location>{MakeLocation(2, 2)});
}

TEST_CASE("index StillFound holds a key's probe only while its candidate is the key's current location",
          "[engine][index]") {
  // Keys map to one location each, as the writer keeps them: an overwrite
  // replaces the entry, a delete removes it, a new key is inserted (shifting
  // others, growing the table). After every change, each probe StillFound
  // accepts must name the key's current location.
  Region region(SharedIndex::RegionBytesFor(4000));
  SharedIndex index = MakeIndex(region, 16);
  std::mt19937_64 rng(GENERATE(1, 2, 3));
  constexpr int kKeys = 300;
  std::vector<Location> current(kKeys, 0);  // 0: absent
  std::vector<KeyProbe> probes(kKeys);
  auto key = [](int i) { return "key" + std::to_string(i); };
  auto hash = [&](int i) { return KeyHash(index.seed(), key(i)); };
  Location next_loc = 1;
  uint64_t held = 0, dropped = 0;
  for (int op = 0; op < 20000; ++op) {
    const int i = static_cast<int>(rng() % kKeys);
    const int kind = static_cast<int>(rng() % 4);
    const Location l = MakeLocation(next_loc % kMaxSegmentId, next_loc);
    if (current[i] == 0 && kind < 3) {
      REQUIRE(index.Insert(hash(i), l).ok());
      current[i] = l;
      ++next_loc;
    } else if (current[i] != 0 && kind == 1) {
      REQUIRE(index.Replace(hash(i), current[i], l));
      current[i] = l;
      ++next_loc;
    } else if (current[i] != 0 && kind == 2) {
      REQUIRE(index.Remove(hash(i), current[i]));
      current[i] = 0;
    } else {
      Candidates c;
      REQUIRE(index.LookupKey(key(i), &c, &probes[i]).ok());
      REQUIRE(probes[i].hash == hash(i));
      REQUIRE((probes[i].view != 0) == (current[i] != 0));
      if (current[i] != 0) REQUIRE(index.StillFound(probes[i]));
    }
    for (int k = 0; k < kKeys; ++k) {
      if (probes[k].view == 0) continue;
      if (index.StillFound(probes[k])) {
        REQUIRE(probes[k].loc == current[k]);
        ++held;
      } else {
        ++dropped;
      }
    }
  }
  REQUIRE(index.capacity() > 16);  // it grew under the probes
  CHECK(held > 0);
  CHECK(dropped > 0);
}

TEST_CASE("index LookupKey reuses the hash PrefetchKey left only under the seed it was computed with",
          "[engine][index][rebuild]") {
  Region region(SharedIndex::RegionBytesFor(1000));
  SharedIndex index = MakeIndex(region, 16);
  REQUIRE(index.BeginRebuild(10).ok());
  REQUIRE(index.Insert(KeyHash(111, "k"), MakeLocation(1, 1)).ok());
  index.PublishRebuild(111);
  KeyProbe probe;
  index.PrefetchKey("k", &probe);
  REQUIRE(probe.seed == 111);
  REQUIRE(probe.hash == KeyHash(111, "k"));
  REQUIRE(probe.view == 0);
  Candidates c;
  REQUIRE(index.LookupKey("k", &c, &probe).ok());
  REQUIRE(Sorted(c) == std::vector<Location>{MakeLocation(1, 1)});
  REQUIRE(probe.loc == MakeLocation(1, 1));
  // The hash of the old seed is not used against a table of another seed.
  KeyProbe old;
  index.PrefetchKey("k", &old);
  REQUIRE(index.BeginRebuild(10).ok());
  REQUIRE(index.Insert(KeyHash(222, "k"), MakeLocation(2, 2)).ok());
  index.PublishRebuild(222);
  CHECK_FALSE(index.StillFound(probe));
  REQUIRE(index.LookupKey("k", &c, &old).ok());
  REQUIRE(Sorted(c) == std::vector<Location>{MakeLocation(2, 2)});
  CHECK(old.hash == KeyHash(222, "k"));
  CHECK(index.StillFound(old));
}

TEST_CASE("index RemoveIf drops recovery tombstones and keeps the rest", "[engine][index]") {
  Region region(SharedIndex::RegionBytesFor(20000));
  SharedIndex index = MakeIndex(region, 16);
  Model model;
  std::mt19937_64 rng(5);
  for (uint64_t i = 0; i < 20000; ++i) {
    // Hashes near the top wrap runs around the table end; some collide fully.
    const uint64_t h = (i % 3 == 0) ? (~uint64_t{0} - (i % 200)) : (rng() | 1);
    Location l = MakeLocation(i % 500, i);
    if (rng() % 4 == 0) l = WithTombstone(l);
    if (model.Count(h) >= kMaxCandidates) continue;
    REQUIRE(index.Insert(h, l).ok());
    model.Add(h, l);
  }
  uint64_t visited = 0;
  index.ForEach([&](uint64_t, Location) { ++visited; });
  REQUIRE(visited == model.pairs.size());
  const auto tombstones = static_cast<uint64_t>(std::count_if(
      model.pairs.begin(), model.pairs.end(), [](const auto& p) { return IsTombstone(p.second); }));

  const uint64_t removed = index.RemoveIf([](uint64_t, Location l) { return IsTombstone(l); });
  for (size_t i = model.pairs.size(); i-- > 0;) {
    if (IsTombstone(model.pairs[i].second)) model.Drop(i);
  }
  REQUIRE(tombstones > 0);
  REQUIRE(removed == tombstones);
  CheckAgainstModel(index, model);
  bool any_tombstone = false;
  index.ForEach([&](uint64_t, Location l) { any_tombstone |= IsTombstone(l); });
  REQUIRE_FALSE(any_tombstone);
}


TEST_CASE("index reader threads never fail and see only valid candidates while the writer thread "
          "inserts, removes and grows it",
          "[engine][index]") {
  // The threaded twin of index_multiprocess_test, so that a ThreadSanitizer
  // build checks the seqlock's memory ordering. Keys 2k and 2k+1 share a hash;
  // a location's offset is its key id; ids below kAlways are always present.
  constexpr uint64_t kIds = 60000;
  constexpr uint64_t kAlways = 500;
  auto hash_of = [](uint64_t id) { return ((id / 2) + 1) * 0x9E3779B97F4A7C15ULL | 1; };
  Region region(SharedIndex::RegionBytesFor(kIds));
  SharedIndex index = MakeIndex(region, 16);
  for (uint64_t id = 0; id < kAlways; ++id) REQUIRE(index.Insert(hash_of(id), MakeLocation(0, id)).ok());

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> bad{0}, ok{0};
  // batch 1: Lookup; more: LookupBatch of that many ids.
  auto reader = [&](uint64_t seed, size_t batch) {
    std::mt19937_64 rng(seed);
    std::vector<uint64_t> ids(batch), hashes(batch);
    std::vector<Candidates> got(batch);
    // Bounded: stops when told, or after 50M lookups whatever happens.
    for (uint64_t n = 0; n < 50000000 && !stop.load(std::memory_order_relaxed); n += batch) {
      for (size_t b = 0; b < batch; ++b) {
        ids[b] = rng() % kIds;
        hashes[b] = hash_of(ids[b]);
      }
      // No kBusy, ever: readers do not wait for (or give up on) the writer.
      Status s = batch == 1 ? index.Lookup(hashes[0], &got[0]) : index.LookupBatch(hashes, got);
      for (size_t b = 0; b < batch; ++b) {
        const uint64_t id = ids[b];
        const Candidates& c = got[b];
        bool found = false;
        bool valid = s.ok();
        for (uint32_t i = 0; valid && i < c.count; ++i) {
          valid = LocationOffset(c.locations[i]) / 2 == id / 2;
          found |= LocationOffset(c.locations[i]) == id;
        }
        if (!valid || (id < kAlways && !found)) bad.fetch_add(1);
        ok.fetch_add(1, std::memory_order_relaxed);
      }
    }
  };
  std::thread r1(reader, 1, 1), r2(reader, 2, 16);
  std::mt19937_64 rng(3);
  std::vector<uint32_t> gen(kIds, 0);  // 0 = absent, else segment of its location
  for (uint64_t id = 0; id < kAlways; ++id) gen[id] = 1;
  for (uint64_t id = 0; id < kAlways; ++id) REQUIRE(index.Replace(hash_of(id), MakeLocation(0, id), MakeLocation(1, id)));
  for (uint64_t op = 0; op < 150000; ++op) {
    const uint64_t id = kAlways + rng() % (kIds - kAlways);
    const uint64_t always = rng() % kAlways;
    if (gen[id] == 0) {
      gen[id] = 1;
      REQUIRE(index.Insert(hash_of(id), MakeLocation(1, id)).ok());
    } else if (rng() % 3 == 0) {
      REQUIRE(index.Remove(hash_of(id), MakeLocation(gen[id], id)));
      gen[id] = 0;
    }
    REQUIRE(index.Replace(hash_of(always), MakeLocation(gen[always], always),
                          MakeLocation(gen[always] % 1000 + 1, always)));
    gen[always] = gen[always] % 1000 + 1;
  }
  stop.store(true);
  r1.join();
  r2.join();
  REQUIRE(bad.load() == 0);
  REQUIRE(ok.load() > 0);
  REQUIRE(index.capacity() > 10000);
}

}  // namespace
}  // namespace kingx::engine
