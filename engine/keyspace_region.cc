// KeyspaceRegion (see keyspace_region.h).
//
// Layout: the header (below), then for each of the two tails its entry array
// (tail_entries x 7 words) and its arena (tail_arena_bytes), each 64-byte
// aligned. Arena bytes are stored and loaded as 8-byte atomic words; each
// key and content type starts on a word boundary.
//
// Memory order, without fences (GCC's ThreadSanitizer does not model
// atomic_thread_fence; engine/index.cc does the same): a change under the
// version stores the odd version (relaxed), then every word with release
// (each orders the odd version before it), then the even version with
// release. A reader loads the version, then every word it uses, then the
// version again, all with acquire: a word it read from a change makes that
// change's odd version visible to its last load, which then differs from its
// first. Tail entries appended after their tail was freed and reused are
// stored with release too: they follow the free's version change (Freeze
// acquires the tail's free state), so a reader that reads one also sees the
// version move.
#include "engine/keyspace_region.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <new>
#include <thread>

#include "engine/key_run.h"

namespace kingx::engine {
namespace {

constexpr uint64_t kRegionMagic = 0x4e4745524b53594bull;  // "KYSKREGN" little-endian-ish tag
constexpr uint32_t kLayoutVersion = 2;
constexpr size_t kWordsPerEntry = 7;
constexpr size_t kKeysDirWords = 128;  // 1024 bytes
constexpr int kSnapshotAttempts = 200;

enum TailState : uint32_t { kTailFree = 0, kTailActive = 1, kTailFrozen = 2 };

size_t Align64(size_t n) { return (n + 63) & ~size_t{63}; }
uint64_t Align8(uint64_t n) { return (n + 7) & ~uint64_t{7}; }

// First 8 bytes of a key, big-endian, zero-padded: comparing two of these
// orders keys like memcmp does on their first 8 bytes. An empty key (a
// default string_view, whose data() may be null: no prefix, no start) is 0.
uint64_t KeyPrefix8(std::string_view key) {
  unsigned char b[8] = {};
  if (!key.empty()) std::memcpy(b, key.data(), std::min<size_t>(8, key.size()));
  uint64_t v = 0;
  for (unsigned char c : b) v = (v << 8) | c;
  return v;
}

}  // namespace

struct KeyspaceTailHeader {
  std::atomic<uint32_t> state;
  std::atomic<uint32_t> count;
  std::atomic<uint64_t> arena_used;
};

struct alignas(64) KeyspaceRegionHeader {
  uint64_t magic;
  uint32_t layout;
  uint32_t tail_entries;
  uint64_t tail_arena_bytes;
  uint64_t region_bytes;
  uint64_t tail_offset[2];   // entry array of each tail, from the header's start
  uint64_t arena_offset[2];
  alignas(64) std::atomic<uint64_t> version;
  std::atomic<uint32_t> state;
  std::atomic<uint32_t> run_count;
  std::atomic<uint64_t> run_id[kMaxKeyRuns];
  std::atomic<uint64_t> run_entries[kMaxKeyRuns];
  std::atomic<uint64_t> cursor_secret;
  std::atomic<uint32_t> keys_dir_len;
  std::atomic<uint64_t> keys_dir[kKeysDirWords];
  KeyspaceTailHeader tails[2];
  alignas(64) KeyspaceCounters counters;
};

namespace {

std::atomic<uint64_t>* Words(KeyspaceRegionHeader* h, uint64_t offset) {
  return reinterpret_cast<std::atomic<uint64_t>*>(reinterpret_cast<char*>(h) + offset);
}

// Copies len bytes stored from word-aligned arena offset `off` into *out.
void LoadBytes(std::atomic<uint64_t>* arena, uint64_t off, size_t len, std::string* out) {
  out->resize(len);
  char* dst = out->data();
  const uint64_t first = off / 8;
  for (size_t done = 0, w = 0; done < len; ++w) {
    const uint64_t word = arena[first + w].load(std::memory_order_acquire);
    const size_t n = std::min<size_t>(8, len - done);
    std::memcpy(dst + done, &word, n);
    done += n;
  }
}

void StoreBytes(std::atomic<uint64_t>* arena, uint64_t off, std::string_view bytes) {
  const uint64_t first = off / 8;
  for (size_t done = 0, w = 0; done < bytes.size(); ++w) {
    uint64_t word = 0;
    const size_t n = std::min<size_t>(8, bytes.size() - done);
    std::memcpy(&word, bytes.data() + done, n);
    arena[first + w].store(word, std::memory_order_release);
    done += n;
  }
}

}  // namespace

size_t KeyspaceRegion::RegionBytes(uint32_t tail_entries, uint64_t tail_arena_bytes) {
  size_t n = Align64(sizeof(KeyspaceRegionHeader));
  for (int i = 0; i < 2; ++i) {
    n += Align64(size_t{tail_entries} * kWordsPerEntry * 8);
    n += Align64(Align8(tail_arena_bytes));
  }
  return n;
}

Result<KeyspaceRegion> KeyspaceRegion::Create(void* base, size_t bytes, uint32_t tail_entries,
                                              uint64_t tail_arena_bytes) {
  if (base == nullptr || reinterpret_cast<uintptr_t>(base) % 64 != 0)
    return Status::InvalidArgument("keyspace region must be 64-byte aligned");
  if (tail_entries < 16 || tail_arena_bytes < (64u << 10) + 256)
    return Status::InvalidArgument("keyspace tails too small");
  tail_arena_bytes = Align8(tail_arena_bytes);
  if (bytes < RegionBytes(tail_entries, tail_arena_bytes))
    return Status::InvalidArgument("keyspace region too small");
  auto* h = new (base) KeyspaceRegionHeader();
  h->magic = kRegionMagic;
  h->layout = kLayoutVersion;
  h->tail_entries = tail_entries;
  h->tail_arena_bytes = tail_arena_bytes;
  h->region_bytes = bytes;
  size_t off = Align64(sizeof(KeyspaceRegionHeader));
  for (int i = 0; i < 2; ++i) {
    h->tail_offset[i] = off;
    off += Align64(size_t{tail_entries} * kWordsPerEntry * 8);
    h->arena_offset[i] = off;
    off += Align64(tail_arena_bytes);
  }
  // Anonymous shared memory starts zeroed: the tails and arenas need no writes.
  h->version.store(0, std::memory_order_release);
  return KeyspaceRegion(h);
}

Result<KeyspaceRegion> KeyspaceRegion::Attach(void* base, size_t bytes) {
  if (base == nullptr || bytes < sizeof(KeyspaceRegionHeader)) return Status::InvalidArgument("no keyspace region");
  auto* h = static_cast<KeyspaceRegionHeader*>(base);
  if (h->magic != kRegionMagic || h->layout != kLayoutVersion || h->region_bytes != bytes)
    return Status::InvalidArgument("keyspace region not formatted (or another layout)");
  return KeyspaceRegion(h);
}

KeyspaceState KeyspaceRegion::state() const {
  return static_cast<KeyspaceState>(h_->state.load(std::memory_order_acquire));
}
KeyspaceCounters& KeyspaceRegion::counters() const { return h_->counters; }
uint32_t KeyspaceRegion::tail_entries() const { return h_->tail_entries; }
uint64_t KeyspaceRegion::tail_arena_bytes() const { return h_->tail_arena_bytes; }
uint64_t KeyspaceRegion::version() const { return h_->version.load(std::memory_order_acquire); }

Status KeyspaceRegion::Snapshot(std::string_view prefix, std::string_view from, KeyspaceSnapshot* out) const {
  KeyspaceRegionHeader* h = h_;
  const size_t pre = std::min<size_t>(8, prefix.size());
  const uint64_t want = KeyPrefix8(prefix);
  const uint64_t mask = pre == 0 ? 0 : ~uint64_t{0} << (8 * (8 - pre));
  for (int attempt = 0; attempt < kSnapshotAttempts; ++attempt) {
    if (attempt > 0) {
      if (attempt < 20) std::this_thread::yield();
      else std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    const uint64_t v1 = h->version.load(std::memory_order_acquire);
    if (v1 & 1) continue;
    const auto st = static_cast<KeyspaceState>(h->state.load(std::memory_order_acquire));
    if (st != KeyspaceState::kReady) {
      switch (st) {
        case KeyspaceState::kNoOwner: return Status::Busy("the key index is not open yet (the writer is starting)");
        case KeyspaceState::kBuilding: return Status::Busy("the sorted key index is being completed after a restart");
        case KeyspaceState::kLost: return Status::Busy("the sorted key index is being rebuilt");
        default: return Status::Corruption("keyspace region state unknown");
      }
    }
    out->version = v1;
    const uint32_t dir_len = h->keys_dir_len.load(std::memory_order_acquire);
    if (dir_len > kKeysDirWords * 8) continue;
    out->keys_dir.resize(dir_len);
    for (uint32_t done = 0, w = 0; done < dir_len; ++w) {
      const uint64_t word = h->keys_dir[w].load(std::memory_order_acquire);
      const uint32_t n = std::min<uint32_t>(8, dir_len - done);
      std::memcpy(out->keys_dir.data() + done, &word, n);
      done += n;
    }
    const uint32_t runs = h->run_count.load(std::memory_order_acquire);
    if (runs > kMaxKeyRuns) continue;
    out->run_ids.clear();
    for (uint32_t i = 0; i < runs; ++i) out->run_ids.push_back(h->run_id[i].load(std::memory_order_acquire));
    out->tail.clear();
    bool torn = false;
    for (int t = 0; t < 2 && !torn; ++t) {
      const KeyspaceTailHeader& th = h->tails[t];
      if (th.state.load(std::memory_order_acquire) == kTailFree) continue;
      const uint32_t count = th.count.load(std::memory_order_acquire);
      if (count > h->tail_entries) {
        torn = true;
        break;
      }
      std::atomic<uint64_t>* e = Words(h, h->tail_offset[t]);
      std::atomic<uint64_t>* arena = Words(h, h->arena_offset[t]);
      for (uint32_t i = 0; i < count; ++i, e += kWordsPerEntry) {
        const uint64_t p8 = e[0].load(std::memory_order_acquire);
        if ((p8 & mask) != (want & mask)) continue;
        const uint64_t lens = e[1].load(std::memory_order_acquire);
        const uint64_t key_off = lens >> 32, key_len = (lens >> 8) & 0xFFFF, ct_len = lens & 0xFF;
        const uint64_t ct_off = e[2].load(std::memory_order_acquire);
        if (key_len == 0 || key_off % 8 != 0 || ct_off % 8 != 0 || key_off + key_len > h->tail_arena_bytes ||
            ct_off + ct_len > h->tail_arena_bytes) {
          torn = true;
          break;
        }
        OwnedKeyEntry oe;
        LoadBytes(arena, key_off, key_len, &oe.key);
        if (oe.key.compare(0, prefix.size(), prefix) != 0 || oe.key < from) continue;
        LoadBytes(arena, ct_off, ct_len, &oe.content_type);
        oe.seq = e[3].load(std::memory_order_acquire);
        oe.segment = e[4].load(std::memory_order_acquire);
        oe.offset = e[5].load(std::memory_order_acquire);
        oe.raw_len = e[6].load(std::memory_order_acquire);
        out->tail.push_back(std::move(oe));
      }
    }
    if (h->version.load(std::memory_order_acquire) != v1) continue;
    if (torn) return Status::Corruption("keyspace tail words out of bounds under a stable version");
    return Status::OK();
  }
  return Status::Busy("the key index kept changing under the listing; retry");
}

Status KeyspaceRegion::Reset(std::string_view keys_dir) {
  if (keys_dir.size() > kKeysDirWords * 8) return Status::InvalidArgument("keys directory path longer than 1024 bytes");
  KeyspaceRegionHeader* h = h_;
  uint64_t v = h->version.load(std::memory_order_relaxed);
  if ((v & 1) == 0) ++v;  // a dead owner may have left it odd: stay odd, then move past
  h->version.store(v, std::memory_order_relaxed);
  h->state.store(static_cast<uint32_t>(KeyspaceState::kNoOwner), std::memory_order_release);
  h->run_count.store(0, std::memory_order_release);
  for (int t = 0; t < 2; ++t) {
    h->tails[t].count.store(0, std::memory_order_release);
    h->tails[t].arena_used.store(0, std::memory_order_release);
    h->tails[t].state.store(t == 0 ? kTailActive : kTailFree, std::memory_order_release);
  }
  for (size_t w = 0; w * 8 < keys_dir.size(); ++w) {
    uint64_t word = 0;
    std::memcpy(&word, keys_dir.data() + w * 8, std::min<size_t>(8, keys_dir.size() - w * 8));
    h->keys_dir[w].store(word, std::memory_order_release);
  }
  h->keys_dir_len.store(static_cast<uint32_t>(keys_dir.size()), std::memory_order_release);
  h->version.store(v + 1, std::memory_order_release);
  return Status::OK();
}

uint64_t KeyspaceRegion::cursor_secret() const { return h_->cursor_secret.load(std::memory_order_acquire); }

void KeyspaceRegion::SetCursorSecret(uint64_t secret) { h_->cursor_secret.store(secret, std::memory_order_release); }

void KeyspaceRegion::SetState(KeyspaceState state) {
  h_->state.store(static_cast<uint32_t>(state), std::memory_order_release);
}

bool KeyspaceRegion::Append(const KeyEntry& e) {
  KeyspaceRegionHeader* h = h_;
  int t = -1;
  for (int i = 0; i < 2; ++i)
    if (h->tails[i].state.load(std::memory_order_relaxed) == kTailActive) t = i;
  if (t < 0) return false;
  KeyspaceTailHeader& th = h->tails[t];
  const uint32_t count = th.count.load(std::memory_order_relaxed);
  const uint64_t used = th.arena_used.load(std::memory_order_relaxed);
  const uint64_t need = Align8(e.key.size()) + Align8(e.content_type.size());
  if (count >= h->tail_entries || used + need > h->tail_arena_bytes) return false;
  std::atomic<uint64_t>* arena = Words(h, h->arena_offset[t]);
  const uint64_t key_off = used;
  const uint64_t ct_off = used + Align8(e.key.size());
  StoreBytes(arena, key_off, e.key);
  StoreBytes(arena, ct_off, e.content_type);
  std::atomic<uint64_t>* w = Words(h, h->tail_offset[t]) + size_t{count} * kWordsPerEntry;
  w[0].store(KeyPrefix8(e.key), std::memory_order_release);
  w[1].store((key_off << 32) | (uint64_t{e.key.size()} << 8) | e.content_type.size(), std::memory_order_release);
  w[2].store(ct_off, std::memory_order_release);
  w[3].store(e.seq, std::memory_order_release);
  w[4].store(e.segment, std::memory_order_release);
  w[5].store(e.offset, std::memory_order_release);
  w[6].store(e.raw_len, std::memory_order_release);
  th.arena_used.store(used + need, std::memory_order_release);
  th.count.store(count + 1, std::memory_order_release);
  return true;
}

int KeyspaceRegion::Freeze() {
  KeyspaceRegionHeader* h = h_;
  int active = -1;
  for (int i = 0; i < 2; ++i)
    if (h->tails[i].state.load(std::memory_order_relaxed) == kTailActive) active = i;
  if (active < 0) return -1;
  const int other = 1 - active;
  if (h->tails[other].state.load(std::memory_order_acquire) != kTailFree) return -1;
  h->tails[other].count.store(0, std::memory_order_release);
  h->tails[other].arena_used.store(0, std::memory_order_release);
  // Readers may see both tails frozen/active for an instant: both are read.
  h->tails[other].state.store(kTailActive, std::memory_order_release);
  h->tails[active].state.store(kTailFrozen, std::memory_order_release);
  return active;
}

int KeyspaceRegion::FrozenTail() const {
  for (int i = 0; i < 2; ++i)
    if (h_->tails[i].state.load(std::memory_order_acquire) == kTailFrozen) return i;
  return -1;
}

uint32_t KeyspaceRegion::ActiveCount() const {
  for (int i = 0; i < 2; ++i)
    if (h_->tails[i].state.load(std::memory_order_acquire) == kTailActive)
      return h_->tails[i].count.load(std::memory_order_acquire);
  return 0;
}

bool KeyspaceRegion::ActiveHalfFull() const {
  for (int i = 0; i < 2; ++i) {
    const KeyspaceTailHeader& th = h_->tails[i];
    if (th.state.load(std::memory_order_acquire) != kTailActive) continue;
    return 2ull * th.count.load(std::memory_order_acquire) >= h_->tail_entries ||
           2 * th.arena_used.load(std::memory_order_acquire) >= h_->tail_arena_bytes;
  }
  return false;
}

void KeyspaceRegion::ReadTail(int t, TailCopy* out) const {
  KeyspaceRegionHeader* h = h_;
  out->entries.clear();
  const uint32_t count = std::min(h->tails[t].count.load(std::memory_order_acquire), h->tail_entries);
  const uint64_t used = std::min(h->tails[t].arena_used.load(std::memory_order_acquire), h->tail_arena_bytes);
  std::atomic<uint64_t>* e = Words(h, h->tail_offset[t]);
  std::atomic<uint64_t>* arena = Words(h, h->arena_offset[t]);
  // The arena in one pass (a frozen tail does not change until its owner frees it).
  out->bytes.resize(Align8(used));
  for (uint64_t w = 0; w * 8 < used; ++w) {
    const uint64_t word = arena[w].load(std::memory_order_relaxed);
    std::memcpy(out->bytes.data() + w * 8, &word, 8);
  }
  out->entries.reserve(count);
  for (uint32_t i = 0; i < count; ++i, e += kWordsPerEntry) {
    const uint64_t lens = e[1].load(std::memory_order_relaxed);
    const uint64_t key_off = lens >> 32, key_len = (lens >> 8) & 0xFFFF, ct_len = lens & 0xFF;
    const uint64_t ct_off = e[2].load(std::memory_order_relaxed);
    if (key_off + key_len > used || ct_off + ct_len > used) continue;
    TailCopy::Entry te;
    te.key_off = static_cast<uint32_t>(key_off);
    te.key_len = static_cast<uint32_t>(key_len);
    te.ct_off = static_cast<uint32_t>(ct_off);
    te.ct_len = static_cast<uint32_t>(ct_len);
    te.seq = e[3].load(std::memory_order_relaxed);
    te.segment = e[4].load(std::memory_order_relaxed);
    te.offset = e[5].load(std::memory_order_relaxed);
    te.raw_len = e[6].load(std::memory_order_relaxed);
    out->entries.push_back(te);
  }
}

void KeyspaceRegion::Publish(const std::vector<std::pair<uint64_t, uint64_t>>& runs, int free_tail) {
  KeyspaceRegionHeader* h = h_;
  const uint64_t v = h->version.load(std::memory_order_relaxed);
  h->version.store(v + 1, std::memory_order_relaxed);
  const uint32_t n = static_cast<uint32_t>(std::min<size_t>(runs.size(), kMaxKeyRuns));
  uint64_t entries = 0;
  for (uint32_t i = 0; i < n; ++i) {
    h->run_id[i].store(runs[i].first, std::memory_order_release);
    h->run_entries[i].store(runs[i].second, std::memory_order_release);
    entries += runs[i].second;
  }
  h->run_count.store(n, std::memory_order_release);
  if (free_tail >= 0) {
    // Emptied before it is marked free: Freeze may make it active right after.
    h->tails[free_tail].count.store(0, std::memory_order_release);
    h->tails[free_tail].arena_used.store(0, std::memory_order_release);
    h->tails[free_tail].state.store(kTailFree, std::memory_order_release);
  }
  h->counters.run_entries.store(entries, std::memory_order_release);
  h->version.store(v + 2, std::memory_order_release);
}

void KeyspaceRegion::ClearTails() {
  KeyspaceRegionHeader* h = h_;
  const uint64_t v = h->version.load(std::memory_order_relaxed);
  h->version.store(v + 1, std::memory_order_relaxed);
  for (int t = 0; t < 2; ++t) {
    h->tails[t].count.store(0, std::memory_order_release);
    h->tails[t].arena_used.store(0, std::memory_order_release);
    h->tails[t].state.store(t == 0 ? kTailActive : kTailFree, std::memory_order_release);
  }
  h->version.store(v + 2, std::memory_order_release);
}

}  // namespace kingx::engine
