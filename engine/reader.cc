// Reader::Get: index lookup, then the candidate records on disk through the
// segment cache. Every byte handed out was verified (header checksum, key,
// body checksum, bounded decompression).
#include "engine/reader.h"

#include <atomic>

#include "engine/compress.h"
#include "engine/index.h"
#include "engine/segment_cache.h"

namespace kingx::engine {
namespace {

// Lookups retried when a candidate's segment vanished under us (compaction
// deleted it after moving the record): the index points elsewhere by then.
constexpr int kMaxVanishedRetries = 8;

}  // namespace

struct Reader::Impl {
  Impl(Env& env, std::string dir, const Options& options, SharedIndex& index)
      : options(options),
        limits{options.max_key_bytes, options.max_value_bytes},
        index(index),
        cache(env, std::move(dir), options.segment_bytes) {}

  const Options options;
  const RecordLimits limits;
  SharedIndex& index;
  SegmentCache cache;
  std::atomic<uint64_t> seen_epoch{0};
};

Reader::Reader(Env& env, std::string dir, const Options& options, SharedIndex& index)
    : impl_(std::make_unique<Impl>(env, std::move(dir), options, index)) {}

Reader::~Reader() = default;

void Reader::DropStaleMappings() { impl_->cache.DropMissing(); }

void Reader::ReleaseDeleted() {
  Impl& r = *impl_;
  const uint64_t epoch = r.index.counters().segment_epoch.load(std::memory_order_acquire);
  if (epoch == r.seen_epoch.load(std::memory_order_relaxed)) return;
  r.cache.DropMissing();
  r.seen_epoch.store(epoch, std::memory_order_relaxed);
}

Result<Value> Reader::Get(std::string_view key, ReadMode mode) {
  Impl& r = *impl_;
  if (key.empty() || key.size() > r.options.max_key_bytes) return Status::InvalidArgument("bad key length");
  IndexCounters& counters = r.index.counters();
  if (counters.ready.load(std::memory_order_acquire) == 0) return Status::Busy("storage is recovering");
  ReleaseDeleted();

  for (int attempt = 0; attempt <= kMaxVanishedRetries; ++attempt) {
    Candidates c;
    Status s = r.index.LookupKey(key, &c);
    if (!s.ok()) return s;
    bool vanished = false;
    bool corrupt = false;
    for (uint32_t i = 0; i < c.count; ++i) {
      const Location loc = c.locations[i];
      if (IsTombstone(loc)) continue;  // never present once ready; not found if it were
      auto ref = r.cache.ReadRecord(loc, r.limits);
      if (!ref.ok()) {
        if (ref.status().Is(Code::kNotFound)) {
          vanished = true;
          r.cache.Forget(LocationSegment(loc));
        } else if (ref.status().Is(Code::kCorruption)) {
          corrupt = true;  // can't tell whose record this was; another candidate may still match
        } else {
          return ref.status();
        }
        continue;
      }
      if (ref->key != key) continue;
      // Ours. Verify the body before trusting meta or value.
      if (!VerifyRecordBody(ref->record, ref->header).ok()) {
        counters.corruptions.fetch_add(1, std::memory_order_relaxed);
        if (r.options.log) r.options.log("read: body checksum mismatch at segment " +
                                         std::to_string(LocationSegment(loc)) + " offset " +
                                         std::to_string(LocationOffset(loc)));
        return Status::Corruption("value failed its checksum");
      }
      if (ref->header.type != RecordType::kPut) return Status::NotFound();
      const RecordHeader& h = ref->header;
      const char* body = ref->record + kRecordHeaderBytes;
      Value v;
      v.seq = h.seq;
      v.raw_len = h.raw_len;
      v.content_type = std::string_view(body + h.key_len, h.meta_len);
      std::string_view stored(body + h.key_len + h.meta_len, h.stored_len);
      if (mode == ReadMode::kStored) {
        v.stored = stored;
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
        return ds;
      }
      v.data = d->bytes;
      v.holder = std::move(d);
      return v;
    }
    if (!vanished) {
      if (corrupt) {
        counters.corruptions.fetch_add(1, std::memory_order_relaxed);
        return Status::Corruption("a candidate record for the key failed its checks");
      }
      return Status::NotFound();
    }
  }
  return Status::Busy("segments keep vanishing under the lookup");
}

}  // namespace kingx::engine
