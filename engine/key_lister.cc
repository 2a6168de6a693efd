// KeyLister (see key_lister.h): a k-way merge of the snapshot's tail entries
// and run iterators, grouped by key, each group resolved against the index.
#include "engine/key_lister.h"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstring>
#include <map>
#include <mutex>
#include <queue>
#include <span>
#include <thread>

#include "engine/coding.h"
#include "engine/hash.h"
#include "engine/index.h"
#include "engine/key_resolve.h"
#include "engine/key_run.h"
#include "engine/segment_cache.h"

namespace kingx::engine {
namespace {

constexpr int kViewAttempts = 8;
constexpr int kBusyRetries = 200;
// Keys looked up in the index at once: enough for their cache and TLB
// misses to overlap (as in recovery's replay).
constexpr size_t kResolveBatch = 32;
// Page entries reserved up front (a page of the largest API limit).
constexpr size_t kPageReserve = 1000;

std::string HexPrefix(std::string_view key) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < key.size() && i < 32; ++i) {
    const auto c = static_cast<unsigned char>(key[i]);
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  if (key.size() > 32) out += "...";
  return out;
}

// A copy of one key, in place when it is short (most are): no allocation,
// and a copy the compiler can do inline.
class KeySlot {
 public:
  std::string_view Hold(std::string_view key) {
    if (key.size() <= sizeof inline_) {
      CopyShortBytes(inline_, key.data(), key.size());
      return {inline_, key.size()};
    }
    spill_.assign(key);
    return spill_;
  }

 private:
  char inline_[64];
  std::string spill_;
};

}  // namespace

struct KeyLister::Impl {
  Impl(Env& e, std::string dir, const Options& o, SharedIndex& i, KeyspaceRegion r)
      : env(e), limits{o.max_key_bytes, o.max_value_bytes}, index(i), region(r), cache(e, std::move(dir), o.segment_bytes, o.max_open_segments) {}

  Env& env;
  const RecordLimits limits;
  SharedIndex& index;
  KeyspaceRegion region;
  SegmentCache cache;
  std::atomic<uint64_t> seen_epoch{0};
  std::mutex runs_mu;
  // Mapped runs by id. Ids are never reused while a view lives, but a view
  // rebuilt from scratch (keys/ lost or its MANIFEST unusable) numbers its
  // runs from the start again; such a view always signs with a new cursor
  // secret, so the cache belongs to the secret it was filled under.
  std::map<uint64_t, std::shared_ptr<const KeyRun>> runs;
  uint64_t runs_secret = 0;

  // The runs of a snapshot, mapped (cached). kNotFound when one is gone
  // (replaced and deleted since the snapshot): take a new snapshot.
  // `secret`: the view's cursor secret, the same before and after `snap` was taken.
  Status MapRuns(const KeyspaceSnapshot& snap, uint64_t secret, uint64_t seed,
                 std::vector<std::shared_ptr<const KeyRun>>* out);
  Result<ListPage> ListOnce(const ListRequest& req, uint64_t seed, bool* retry);

  // A key of the merge waiting to be resolved: its entries are
  // entries[first, first + count) of the page's entry buffer. The key and
  // the entries' keys view a copy ListOnce owns, never a run's mapping.
  struct PendingKey {
    std::string_view key;
    size_t first = 0;
    size_t count = 0;
  };
  // Resolves `pending` (at most kResolveBatch keys, in order) against the
  // index and appends the live ones to *page; at a live key that finds the
  // page holding req.limit keys sets *full and stops.
  Status ResolveBatch(const ListRequest& req, uint64_t seed, std::span<const PendingKey> pending,
                      std::span<const KeyEntry> entries, ListPage* page, bool* full);
};

Status KeyLister::Impl::MapRuns(const KeyspaceSnapshot& snap, uint64_t secret, uint64_t seed,
                                std::vector<std::shared_ptr<const KeyRun>>* out) {
  std::lock_guard lock(runs_mu);
  out->clear();
  if (secret != runs_secret) {
    runs.clear();  // another view's run ids
    runs_secret = secret;
  }
  for (uint64_t id : snap.run_ids) {
    auto it = runs.find(id);
    if (it == runs.end()) {
      auto run = KeyRun::Open(env, JoinPath(snap.keys_dir, KeyRunFileName(id)), id, seed, /*verify_checksum=*/false);
      if (!run.ok()) return run.status();
      it = runs.emplace(id, std::move(run.value())).first;
    }
    out->push_back(it->second);
  }
  // Forget runs no longer published (their files go after the next checkpoint).
  for (auto it = runs.begin(); it != runs.end();) {
    if (std::find(snap.run_ids.begin(), snap.run_ids.end(), it->first) == snap.run_ids.end()) it = runs.erase(it);
    else ++it;
  }
  return Status::OK();
}

Status KeyLister::Impl::ResolveBatch(const ListRequest& req, uint64_t seed, std::span<const PendingKey> pending,
                                     std::span<const KeyEntry> entries, ListPage* page, bool* full) {
  assert(pending.size() <= kResolveBatch);
  uint64_t hashes[kResolveBatch];
  Candidates found[kResolveBatch];
  const size_t m = pending.size();
  for (size_t i = 0; i < m; ++i) hashes[i] = KeyHash(seed, pending[i].key);
  // A batch that fails (a busy index) leaves each key to its own lookup, which retries.
  const bool batched = index.LookupBatch(std::span<const uint64_t>(hashes, m), std::span<Candidates>(found, m)).ok();
  Location known[16];
  size_t known_of[16];
  for (size_t i = 0; i < m; ++i) {
    const std::string_view key = pending[i].key;
    const std::span<const KeyEntry> group = entries.subspan(pending[i].first, pending[i].count);
    size_t nk = 0;
    for (size_t j = 0; j < group.size() && nk < 16; ++j) {
      if (group[j].segment > kMaxSegmentId || group[j].offset > kMaxOffset) continue;
      known[nk] = MakeLocation(group[j].segment, group[j].offset);
      known_of[nk++] = j;
    }
    Resolution r;
    Status s;
    for (int attempt = 0;; ++attempt) {
      s = ResolveKey(index, cache, limits, hashes[i], key, std::span<const Location>(known, nk), &r, nullptr,
                     batched && attempt == 0 ? &found[i] : nullptr);
      if (!s.Is(Code::kBusy) || attempt >= kBusyRetries) break;
      std::this_thread::yield();
    }
    if (s.Is(Code::kBusy)) return s;
    if (!s.ok()) return Status(s.code(), "the record of key 0x" + HexPrefix(key) + " cannot be read: " +
                                             std::string(s.message()));
    if (r.kind == Resolution::Kind::kKnown && group[known_of[r.known_index]].raw_len == kKeyEntryUnknownSize) {
      // The view does not know its size: read the record.
      s = ResolveKey(index, cache, limits, hashes[i], key, {}, &r);
      if (!s.ok()) return Status(s.code(), "the record of key 0x" + HexPrefix(key) + " cannot be read: " +
                                               std::string(s.message()));
    }
    if (r.kind == Resolution::Kind::kDead) continue;
    if (page->keys.size() == req.limit) {
      *full = true;
      return Status::OK();
    }
    // The strings are constructed, not assigned: construction is a plain
    // copy, assignment the general replace.
    if (r.kind == Resolution::Kind::kKnown) {
      const KeyEntry& e = group[known_of[r.known_index]];
      page->keys.push_back(ListedKey{std::string(key), e.seq, e.raw_len, std::string(e.content_type)});
    } else {
      page->keys.push_back(ListedKey{std::string(key), r.seq, r.raw_len, std::move(r.content_type)});
    }
  }
  return Status::OK();
}

Result<ListPage> KeyLister::Impl::ListOnce(const ListRequest& req, uint64_t seed, bool* retry) {
  *retry = false;
  const std::string_view prefix = req.prefix;
  const std::string_view after = req.start_after;
  const std::string_view seek = after > prefix ? after : prefix;
  KeyspaceSnapshot snap;
  // A new owner sets its secret before its view turns ready, so a secret
  // unchanged across a successful snapshot is the snapshot's view's.
  const uint64_t secret = region.cursor_secret();
  Status s = region.Snapshot(prefix, seek, &snap);
  if (!s.ok()) return s;
  if (region.cursor_secret() != secret) {
    *retry = true;
    return Status::Busy("the sorted key view changed owner under the listing; retry");
  }
  std::vector<std::shared_ptr<const KeyRun>> runs_held;
  s = MapRuns(snap, secret, seed, &runs_held);
  if (s.Is(Code::kNotFound)) {
    *retry = true;
    return s;
  }
  if (!s.ok()) return s;

  // Sources: 0..n-1 the runs, n the tail (sorted by key, then newest first).
  std::vector<OwnedKeyEntry>& tail = snap.tail;
  std::sort(tail.begin(), tail.end(), [](const OwnedKeyEntry& a, const OwnedKeyEntry& b) {
    if (a.key != b.key) return a.key < b.key;
    return a.seq > b.seq;
  });
  std::vector<KeyRun::Iterator> its;
  its.reserve(runs_held.size());
  for (const auto& run : runs_held) {
    its.emplace_back(*run);
    its.back().Seek(seek);
    if (!its.back().status().ok()) return its.back().status();
  }
  const size_t n = its.size();
  size_t tail_pos = 0;
  auto key_of = [&](size_t src) -> std::string_view {
    return src < n ? its[src].entry().key : std::string_view(tail[tail_pos].key);
  };
  auto greater = [&](size_t a, size_t b) { return key_of(a) > key_of(b); };
  std::priority_queue<size_t, std::vector<size_t>, decltype(greater)> heap(greater);
  for (size_t i = 0; i < n; ++i)
    if (its[i].Valid()) heap.push(i);
  if (!tail.empty()) heap.push(n);

  ListPage page;
  page.keys.reserve(std::min(req.limit, kPageReserve));
  // Keys leave the merge in order and wait, with their entries, until a
  // batch is at hand; then they are looked up in the index together and
  // resolved in order. A batch holds at most one key more than the page
  // still needs: that one tells whether the page is complete.
  std::vector<KeyEntry> entries;
  std::vector<size_t> sources;
  PendingKey pending[kResolveBatch];
  // The pending keys' bytes: a run iterator's key lasts only until it moves
  // on twice, so each key is copied here before its sources advance, and
  // its entries view this copy.
  KeySlot pending_keys[kResolveBatch];
  size_t m = 0;
  bool full = false;
  while (!heap.empty() && !full) {
    if (key_of(heap.top()).compare(0, prefix.size(), prefix) != 0) break;  // past every key with the prefix
    const std::string_view key = pending_keys[m].Hold(key_of(heap.top()));
    const size_t first = entries.size();
    sources.clear();
    while (!heap.empty() && key_of(heap.top()) == key) {
      sources.push_back(heap.top());
      heap.pop();
    }
    for (size_t src : sources) {
      if (src < n) {
        entries.push_back(its[src].entry());
        entries.back().key = key;
        its[src].Next();
        if (!its[src].status().ok()) return its[src].status();
        if (its[src].Valid()) heap.push(src);
      } else {
        for (; tail_pos < tail.size() && tail[tail_pos].key == key; ++tail_pos) {
          const OwnedKeyEntry& e = tail[tail_pos];
          entries.push_back(KeyEntry{key, e.seq, e.segment, e.offset, e.raw_len, e.content_type});
        }
        if (tail_pos < tail.size()) heap.push(n);
      }
    }
    if (key == after) {
      entries.resize(first);
      continue;
    }
    pending[m++] = PendingKey{key, first, entries.size() - first};
    if (m == std::min(kResolveBatch, req.limit - page.keys.size() + 1)) {
      s = ResolveBatch(req, seed, std::span<const PendingKey>(pending, m), entries, &page, &full);
      if (!s.ok()) return s;
      m = 0;
      entries.clear();
    }
  }
  if (!full && m > 0) {
    s = ResolveBatch(req, seed, std::span<const PendingKey>(pending, m), entries, &page, &full);
    if (!s.ok()) return s;
  }
  page.complete = !full;
  return page;
}

KeyLister::KeyLister(Env& env, std::string data_dir, const Options& options, SharedIndex& index,
                     KeyspaceRegion region)
    : impl_(std::make_unique<Impl>(env, std::move(data_dir), options, index, region)) {}

KeyLister::~KeyLister() = default;

Result<ListPage> KeyLister::List(const ListRequest& request) {
  if (request.limit == 0) return Status::InvalidArgument("limit must be at least 1");
  Impl& m = *impl_;
  IndexCounters& counters = m.index.counters();
  if (counters.ready.load(std::memory_order_acquire) == 0) return Status::Busy("storage is recovering");
  const uint64_t seed = counters.seed.load(std::memory_order_relaxed);
  for (int attempt = 0;; ++attempt) {
    // Segment ids are reused once free: the epoch moves after every deletion,
    // mappings are then checked against the files, and a page read while it
    // moved is read again (an id may have named two files meanwhile).
    const uint64_t epoch = counters.segment_epoch.load(std::memory_order_acquire);
    if (epoch != m.seen_epoch.load(std::memory_order_relaxed)) {
      m.cache.Revalidate();
      m.seen_epoch.store(epoch, std::memory_order_relaxed);
    }
    bool retry = false;
    auto page = m.ListOnce(request, seed, &retry);
    if (!retry && counters.segment_epoch.load(std::memory_order_acquire) != epoch) retry = true;
    if (!retry) return page;
    if (attempt + 1 >= kViewAttempts) return Status::Busy("the key index kept changing under the listing; retry");
  }
}

namespace {

constexpr char kCursorVersion = 1;

uint64_t CursorCheck(uint64_t secret, std::string_view prefix, std::string_view key) {
  std::string buf;
  buf.reserve(12 + prefix.size() + key.size());
  AppendFixed64(&buf, secret);
  AppendFixed32(&buf, static_cast<uint32_t>(prefix.size()));
  buf.append(prefix);
  buf.append(key);
  return Checksum64(buf.data(), buf.size());
}

}  // namespace

// Token: version byte, u64 check (little-endian), the last key's bytes.
Result<std::string> KeyLister::MakeCursor(std::string_view last_key, std::string_view prefix) const {
  const uint64_t secret = impl_->region.cursor_secret();
  if (secret == 0) return Status::Busy("the key index is not open yet");
  std::string t(1, kCursorVersion);
  AppendFixed64(&t, CursorCheck(secret, prefix, last_key));
  t.append(last_key);
  return t;
}

Result<std::string> KeyLister::ParseCursor(std::string_view token, std::string_view prefix) const {
  const uint64_t secret = impl_->region.cursor_secret();
  if (secret == 0) return Status::Busy("the key index is not open yet");
  if (token.size() < 10 || token[0] != kCursorVersion) return Status::InvalidArgument("not a cursor of this server");
  const std::string_view key = token.substr(9);
  if (GetFixed64(token.data() + 1) != CursorCheck(secret, prefix, key))
    return Status::InvalidArgument(
        "the cursor was not issued by this database for this prefix (or the key index was rebuilt since)");
  return std::string(key);
}

}  // namespace kingx::engine
