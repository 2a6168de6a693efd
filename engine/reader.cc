// Reader::Get: index lookup, then the candidate records on disk through the
// segment cache. Every byte handed out was verified (header checksum, key,
// body checksum, bounded decompression).
#include "engine/reader.h"

#include <atomic>
#include <cassert>
#include <chrono>
#include <thread>

#include "engine/compress.h"
#include "engine/index.h"
#include "engine/mapping_guard.h"
#include "engine/segment_cache.h"

namespace kingx::engine {
namespace {

// Lookups retried when a candidate's segment vanished under us (compaction
// deleted it after moving the record: the index points elsewhere by then) or
// the segment epoch moved while reading. A pass deletes its inputs one by one,
// so on a loaded machine a read can overlap many deletions in a row: it gives
// up (kBusy) only after kMaxAttempts tries and kRetryPatience of them, the
// patience the index's readers have too.
constexpr int kMaxAttempts = 8;
constexpr std::chrono::milliseconds kRetryPatience{2000};

}  // namespace

struct Reader::Impl {
  Impl(Env& env, std::string dir, const Options& options, SharedIndex& index)
      : options(options),
        limits{options.max_key_bytes, options.max_value_bytes},
        index(index),
        cache(env, std::move(dir), options.segment_bytes, options.max_open_segments) {
    cache.SetFaultReporter([this](uint32_t id) {
      Report("read: a page of segment " + std::to_string(id) +
             " could not be read (SIGBUS); its reads fail until it is replaced or remapped");
    });
  }

  const Options options;
  const RecordLimits limits;
  SharedIndex& index;
  SegmentCache cache;
  std::atomic<uint64_t> seen_epoch{0};
  // Damage reports: at most one line a second, with what was not reported.
  std::atomic<int64_t> last_report_ms{-1000000};
  std::atomic<uint64_t> unreported{0};

  void Report(const std::string& line) {
    const auto& sink = options.log_error ? options.log_error : options.log;
    if (!sink) return;
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now().time_since_epoch()).count();
    int64_t last = last_report_ms.load(std::memory_order_relaxed);
    if (now - last < 1000 || !last_report_ms.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
      unreported.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    const uint64_t skipped = unreported.exchange(0, std::memory_order_relaxed);
    sink(skipped == 0 ? line : line + " (and " + std::to_string(skipped) + " more since the last report)");
  }

  // A read of the mapping `holder` keeps alive faulted: marks it (the
  // cache reports the first fault) and counts the failure.
  Status Faulted(const std::shared_ptr<const void>& holder) {
    const uint32_t id = cache.MarkFaulted(holder);
    index.counters().read_failures.fetch_add(1, std::memory_order_relaxed);
    return SegmentCache::FaultedError(id);
  }

  Result<Value> Lookup(std::string_view key, ReadMode mode, Location* vanished, const KeyProbe* hint,
                       RecordCopy* copy);
  Result<Value> Get(std::string_view key, ReadMode mode, const KeyProbe* hint, RecordCopy* copy);
};

// One lookup: the index's candidates for key, read through the cache. When
// a candidate's segment file does not exist, its location is put in
// *vanished and the result is meaningless (the caller looks up again).
// A hint whose candidate the index still holds stands in for the probe, and
// answers only if its record is key's own (or is key's and damaged); any
// other outcome falls back to the probe. Why that is the answer the probe
// would give: the writer points a key's one entry at each newer record of it
// (Replace) and removes it on delete (a step), so an unchanged entry that
// holds a record of key holds its newest.
// With copy, a small record is read by one guarded copy (SegmentCache::
// ReadRecord) and checked and answered from the copy.
Result<Value> Reader::Impl::Lookup(std::string_view key, ReadMode mode, Location* vanished, const KeyProbe* hint,
                                   RecordCopy* copy) {
  Impl& r = *this;
  IndexCounters& counters = r.index.counters();
  Candidates c;
  if (hint != nullptr && r.index.StillFound(*hint)) {
    c.count = 1;
    c.locations[0] = hint->loc;
  } else {
    hint = nullptr;
    Status s = r.index.LookupKey(key, &c);
    if (!s.ok()) return s;
  }
  bool corrupt = false;
  for (uint32_t i = 0; i < c.count; ++i) {
    const Location loc = c.locations[i];
    if (IsTombstone(loc)) continue;  // never present once ready; not found if it were
    auto ref = copy != nullptr ? r.cache.ReadRecord(loc, r.limits, copy->bytes, RecordCopy::kBytes)
                               : r.cache.ReadRecord(loc, r.limits);
    if (!ref.ok()) {
      if (ref.status().Is(Code::kNotFound)) {
        *vanished = loc;
        r.cache.Forget(LocationSegment(loc));
        return Status::NotFound();
      }
      // Unreadable is never absent: a damaged candidate may well be this
      // key's newest record (its 64-bit hash matches); another candidate
      // that is readably this key's proves it was another key's.
      if (ref.status().Is(Code::kCorruption)) {
        corrupt = true;
        continue;
      }
      counters.read_failures.fetch_add(1, std::memory_order_relaxed);
      return ref.status();
    }
    // The record's key and body are read from the copy, or else under the
    // guard: a page that cannot be read answers kIOError, never a crash
    // (segment_cache.h).
    const char* const rec = ref->copy != nullptr ? ref->copy : ref->record;
    bool ours = false;
    bool body_ok = false;
    auto check = [&] {
      ours = ref->key == key;
      if (ours || hint == nullptr) body_ok = RecordBodyMatches(rec, ref->header);
    };
    if (ref->copy != nullptr) {
      check();
    } else if (!GuardMappedRead(ref->record, ref->header.total_bytes(), check)) {
      return r.Faulted(ref->holder);
    }
    if (!ours) {
      if (hint != nullptr) return Lookup(key, mode, vanished, nullptr, copy);
      // A clean mismatch only when the body (which holds the key) checks
      // out: a damaged key byte must not turn the key's record into another's.
      if (!body_ok) corrupt = true;
      continue;
    }
    // Ours. Verify the body before trusting meta or value.
    if (!body_ok) {
      counters.corruptions.fetch_add(1, std::memory_order_relaxed);
      r.Report("read: a value failed its checksum (segment " + std::to_string(LocationSegment(loc)) +
               " offset " + std::to_string(LocationOffset(loc)) + "); answered as damaged");
      return Status::Corruption("value failed its checksum");
    }
    if (ref->header.type != RecordType::kPut) return Status::NotFound();
    const RecordHeader& h = ref->header;
    const uint64_t stored_at = kRecordHeaderBytes + h.key_len + h.meta_len;
    Value v;
    v.seq = h.seq;
    v.raw_len = h.raw_len;
    v.copied = ref->copy != nullptr;
    v.content_type = std::string_view(rec + kRecordHeaderBytes + h.key_len, h.meta_len);
    std::string_view stored(rec + stored_at, h.stored_len);
    if (mode == ReadMode::kStored) {
      // A compressed value is decoded while it is sent, after the caller's
      // copy may be reused: it stays a view of the mapping its holder keeps.
      v.stored = h.codec == Codec::kRaw ? stored : std::string_view(ref->record + stored_at, h.stored_len);
      v.codec = h.codec;
      v.holder = std::move(ref->holder);
      return v;
    }
    if (mode == ReadMode::kMetadata || h.codec == Codec::kRaw) {
      if (mode == ReadMode::kFull) v.data = stored;
      v.holder = std::move(ref->holder);
      return v;
    }
    // Decompress into an owned buffer that also keeps content_type alive.
    struct Decoded {
      std::shared_ptr<const void> mapping;
      std::string bytes;
    };
    auto d = std::make_shared<Decoded>();
    d->mapping = std::move(ref->holder);
    Status ds = DecodeValue(h.codec, stored, h.raw_len, r.options.max_value_bytes, &d->bytes);
    if (!ds.ok()) {
      counters.corruptions.fetch_add(1, std::memory_order_relaxed);
      r.Report("read: a compressed value does not decode (segment " + std::to_string(LocationSegment(loc)) +
               " offset " + std::to_string(LocationOffset(loc)) + "): " + ds.ToString());
      return ds;
    }
    v.data = d->bytes;
    v.holder = std::move(d);
    return v;
  }
  if (hint != nullptr) return Lookup(key, mode, vanished, nullptr, copy);
  if (corrupt) {
    counters.corruptions.fetch_add(1, std::memory_order_relaxed);
    r.Report("read: the newest record of a key failed its header checks; answered as damaged");
    return Status::Corruption("a candidate record for the key failed its checks");
  }
  return Status::NotFound();
}

Reader::Reader(Env& env, std::string dir, const Options& options, SharedIndex& index)
    : impl_(std::make_unique<Impl>(env, std::move(dir), options, index)) {}

Reader::~Reader() = default;

// The header, key and a small value of a record: the bytes a Get of a small
// value reads (a larger value is read by whoever sends it, in order).
constexpr uint64_t kRecordPrefetchBytes = 256;

void Reader::PrefetchIndex(std::string_view key) {
  if (key.empty() || key.size() > impl_->options.max_key_bytes) return;
  impl_->index.PrefetchKey(key);
}

void Reader::PrefetchRecord(std::string_view key) {
  KeyProbe hint;
  PrefetchRecord(key, &hint);
}

void Reader::PrefetchIndex(std::string_view key, KeyProbe* hint) {
  *hint = KeyProbe{};
  if (key.empty() || key.size() > impl_->options.max_key_bytes) return;
  impl_->index.PrefetchKey(key, hint);
}

void Reader::PrefetchRecord(std::string_view key, KeyProbe* hint) {
  Impl& r = *impl_;
  if (key.empty() || key.size() > r.options.max_key_bytes || r.index.counters().ready.load(std::memory_order_acquire) == 0) {
    *hint = KeyProbe{};
    return;
  }
  Candidates c;
  if (!r.index.LookupKey(key, &c, hint).ok()) {
    *hint = KeyProbe{};
    return;
  }
  for (uint32_t i = 0; i < c.count; ++i) {
    if (IsTombstone(c.locations[i])) continue;
    r.cache.Prefetch(c.locations[i], kRecordPrefetchBytes);
    return;
  }
}

void Reader::PrefetchKeys(std::span<const std::string_view> keys, std::span<KeyProbe> hints) {
  assert(keys.size() == hints.size() && keys.size() <= kMaxPrefetchKeys);
  Impl& r = *impl_;
  for (KeyProbe& h : hints) h = KeyProbe{};
  if (r.index.counters().ready.load(std::memory_order_acquire) == 0) return;
  auto hinted = [&](std::string_view key) { return !key.empty() && key.size() <= r.options.max_key_bytes; };
  for (size_t i = 0; i < keys.size(); ++i) {
    if (hinted(keys[i])) r.index.PrefetchKey(keys[i], &hints[i]);
  }
  Location locations[kMaxPrefetchKeys];
  size_t found = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    Candidates c;
    if (!hinted(keys[i])) continue;
    if (!r.index.LookupKey(keys[i], &c, &hints[i]).ok()) {
      hints[i] = KeyProbe{};
      continue;
    }
    for (uint32_t j = 0; j < c.count; ++j) {
      if (IsTombstone(c.locations[j])) continue;
      locations[found++] = c.locations[j];
      break;
    }
  }
  r.cache.PrefetchMany(std::span<const Location>(locations, found), kRecordPrefetchBytes);
}

void Reader::ReportReadFault(const Value& v) { (void)impl_->Faulted(v.holder); }

void Reader::DropStaleMappings() { impl_->cache.Revalidate(); }

void Reader::ReleaseDeletedSegments() {
  Impl& r = *impl_;
  const uint64_t epoch = r.index.counters().segment_epoch.load(std::memory_order_acquire);
  if (epoch == r.seen_epoch.load(std::memory_order_relaxed)) return;
  r.cache.Revalidate();
  r.seen_epoch.store(epoch, std::memory_order_relaxed);
}

Result<Value> Reader::Get(std::string_view key, ReadMode mode) { return impl_->Get(key, mode, nullptr, nullptr); }

Result<Value> Reader::Get(std::string_view key, ReadMode mode, const KeyProbe& hint) {
  return impl_->Get(key, mode, &hint, nullptr);
}

Result<Value> Reader::Get(std::string_view key, ReadMode mode, const KeyProbe* hint, RecordCopy* copy) {
  return impl_->Get(key, mode, hint, copy);
}

// The hint is tried on the first attempt only: a retry follows a vanished
// segment or a moved epoch, after which only a fresh probe is trusted.
Result<Value> Reader::Impl::Get(std::string_view key, ReadMode mode, const KeyProbe* hint, RecordCopy* copy) {
  Impl& r = *this;
  if (key.empty() || key.size() > r.options.max_key_bytes) return Status::InvalidArgument("bad key length");
  IndexCounters& counters = r.index.counters();
  if (counters.ready.load(std::memory_order_acquire) == 0) return Status::Busy("storage is recovering");
  Location vanished_before = 0;  // a location whose file was missing on the previous attempt
  // The patience runs from the first retry: the clock is read only when a
  // lookup has to be repeated (almost every Get answers at its first).
  std::chrono::steady_clock::time_point give_up{};
  for (int attempt = 0;; ++attempt) {
    if (attempt == 1) give_up = std::chrono::steady_clock::now() + kRetryPatience;
    if (attempt > kMaxAttempts) {
      if (std::chrono::steady_clock::now() > give_up) break;
      std::this_thread::yield();  // let the deleting writer move on
    }
    // The epoch moves after every segment deletion, before its id can name
    // another file: mappings are checked against the files' identities first,
    // and an answer read while the epoch moved is read again.
    const uint64_t epoch = counters.segment_epoch.load(std::memory_order_acquire);
    if (epoch != r.seen_epoch.load(std::memory_order_relaxed)) {
      r.cache.Revalidate();
      r.seen_epoch.store(epoch, std::memory_order_relaxed);
    }
    Location vanished = 0;
    Result<Value> got = r.Lookup(key, mode, &vanished, attempt == 0 ? hint : nullptr, copy);
    if (counters.segment_epoch.load(std::memory_order_acquire) != epoch) continue;
    if (vanished == 0) return got;
    if (vanished == vanished_before) {
      // Not moved by compaction (which points the index elsewhere before it
      // deletes a file): the file holding the key's newest record is missing.
      counters.corruptions.fetch_add(1, std::memory_order_relaxed);
      r.Report("read: segment " + std::to_string(LocationSegment(vanished)) +
               " is missing; it holds the newest record of a key read");
      return Status::Corruption("the segment holding the value is missing");
    }
    vanished_before = vanished;
  }
  return Status::Busy("segments keep vanishing under the lookup");
}

}  // namespace kingx::engine
