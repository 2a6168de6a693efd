// zstd behind EncodeValue/DecodeValue. The only includer of <zstd.h>.
#include "engine/compress.h"

#include <zstd.h>

#include <memory>

namespace kingx::engine {
namespace {

struct CCtxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DCtxDeleter {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

// One context per thread: creating one costs more than compressing 100 bytes.
ZSTD_CCtx* ThreadCCtx() {
  thread_local std::unique_ptr<ZSTD_CCtx, CCtxDeleter> ctx(ZSTD_createCCtx());
  return ctx.get();
}
ZSTD_DCtx* ThreadDCtx() {
  thread_local std::unique_ptr<ZSTD_DCtx, DCtxDeleter> ctx(ZSTD_createDCtx());
  return ctx.get();
}

}  // namespace

Codec EncodeValue(std::string_view raw, int level, uint64_t min_bytes, std::string* compressed) {
  compressed->clear();
  if (level <= 0 || raw.empty() || raw.size() < min_bytes) return Codec::kRaw;
  // Keep zstd only when it saves >= 10%: give it exactly that much room, so an
  // output that would not pay off fails fast with dstSize_tooSmall.
  const size_t limit = raw.size() - raw.size() / 10;
  if (limit == 0) return Codec::kRaw;
  compressed->resize(limit);
  ZSTD_CCtx* ctx = ThreadCCtx();
  if (ctx == nullptr) {
    compressed->clear();
    return Codec::kRaw;
  }
  size_t n = ZSTD_compressCCtx(ctx, compressed->data(), limit, raw.data(), raw.size(), level);
  if (ZSTD_isError(n) || n > limit) {
    compressed->clear();
    return Codec::kRaw;
  }
  compressed->resize(n);
  return Codec::kZstd;
}

Status CompressFrame(std::string_view raw_part, int level, std::string* out) {
  const size_t start = out->size();
  const size_t bound = ZSTD_compressBound(raw_part.size());
  out->resize(start + bound);
  ZSTD_CCtx* ctx = ThreadCCtx();
  if (ctx == nullptr) {
    out->resize(start);
    return Status::InvalidArgument("zstd: cannot allocate a compression context");
  }
  size_t n = ZSTD_compressCCtx(ctx, out->data() + start, bound, raw_part.data(), raw_part.size(),
                               level > 0 ? level : 1);
  if (ZSTD_isError(n)) {
    out->resize(start);
    return Status::InvalidArgument(std::string("zstd: ") + ZSTD_getErrorName(n));
  }
  out->resize(start + n);
  return Status::OK();
}

uint64_t MaxStoredBytes(Codec codec, uint64_t raw_len) {
  if (codec == Codec::kRaw) return raw_len;
  // One frame per part, parts of any size: compressBound per frame plus a
  // frame header/checksum allowance per 64 KiB of input covers every split
  // a worker may reasonably use.
  return ZSTD_COMPRESSBOUND(raw_len) + (raw_len / 65536 + 1) * 32;
}

Status DecodeValue(Codec codec, std::string_view stored, uint64_t raw_len, uint64_t max_value_bytes,
                   std::string* out) {
  if (raw_len > max_value_bytes) return Status::Corruption("value claims more bytes than the maximum value size");
  if (codec == Codec::kRaw) {
    if (stored.size() != raw_len) return Status::Corruption("raw value size differs from its recorded size");
    out->assign(stored);
    return Status::OK();
  }
  if (codec != Codec::kZstd) return Status::Corruption("unknown codec");
  // The output buffer is exactly raw_len bytes: a frame claiming (or
  // producing) more fails with dstSize_tooSmall instead of allocating what
  // it claims; ZSTD_decompressDCtx walks every concatenated frame.
  out->resize(raw_len);
  ZSTD_DCtx* ctx = ThreadDCtx();
  if (ctx == nullptr) return Status::Corruption("zstd: cannot allocate a decompression context");
  if (stored.empty()) {
    if (raw_len == 0) return Status::OK();
    return Status::Corruption("empty zstd value with a non-zero size");
  }
  size_t n = ZSTD_decompressDCtx(ctx, out->data(), raw_len, stored.data(), stored.size());
  if (ZSTD_isError(n)) {
    out->clear();
    return Status::Corruption(std::string("zstd: ") + ZSTD_getErrorName(n));
  }
  if (n != raw_len) {
    out->clear();
    return Status::Corruption("zstd value decoded to a different size than recorded");
  }
  return Status::OK();
}

}  // namespace kingx::engine
