// zstd behind EncodeValue/DecodeValue. The only includer of <zstd.h>.
#include "engine/compress.h"

#include <zstd.h>

#include <algorithm>
#include <memory>

#include "engine/mapping_guard.h"

namespace kingx::engine {
namespace {

// stored lies in a segment mapping whose page the kernel could not fill.
Status UnreadableError() { return Status::IOError("a page of the stored value could not be read (SIGBUS)"); }

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
  // Keep zstd only when it saves >= 10%. The frames get that much room plus
  // one frame's worst-case expansion: zstd can fail with dstSize_tooSmall in a
  // buffer of exactly its output's size (it needs margin to finish a block),
  // which stored raw values that did save 10%. An output that cannot pay off
  // still fails fast: in the margin, or once it passes the limit.
  const size_t limit = raw.size() - raw.size() / 10;
  if (limit == 0) return Codec::kRaw;
  ZSTD_CCtx* ctx = ThreadCCtx();
  if (ctx == nullptr) return Codec::kRaw;
  const size_t frame = std::min(kFrameRawBytes, raw.size());
  const size_t room = limit + (ZSTD_compressBound(frame) - frame);
  compressed->resize(room);
  size_t used = 0;
  for (size_t pos = 0; pos < raw.size(); pos += kFrameRawBytes) {
    const size_t n = std::min(kFrameRawBytes, raw.size() - pos);
    const size_t r = ZSTD_compressCCtx(ctx, compressed->data() + used, room - used, raw.data() + pos, n, level);
    if (ZSTD_isError(r) || used + r > limit) {
      compressed->clear();
      return Codec::kRaw;
    }
    used += r;
  }
  compressed->resize(used);
  return Codec::kZstd;
}

Status CompressFrames(std::string_view raw_part, int level, std::string* out) {
  const size_t start = out->size();
  for (size_t pos = 0; pos < raw_part.size(); pos += kFrameRawBytes) {
    Status s = CompressFrame(raw_part.substr(pos, kFrameRawBytes), level, out);
    if (!s.ok()) {
      out->resize(start);
      return s;
    }
  }
  return Status::OK();
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
    out->resize(raw_len);
    if (!GuardedCopy(out->data(), stored.data(), stored.size())) {
      out->clear();
      return UnreadableError();
    }
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
  size_t n = 0;
  auto decode = [&] { n = ZSTD_decompressDCtx(ctx, out->data(), raw_len, stored.data(), stored.size()); };
  if (!GuardMappedRead(stored.data(), stored.size(), decode)) {
    out->clear();
    return UnreadableError();
  }
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

// ---------------------------------------------------------------- ValueDecoder

struct ValueDecoder::Stream {
  Stream() : ds(ZSTD_createDStream()) {}
  ~Stream() { ZSTD_freeDStream(ds); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ZSTD_DStream* ds;
};

ValueDecoder::ValueDecoder(Codec codec, std::string_view stored, uint64_t raw_len)
    : codec_(codec), stored_(stored), raw_len_(raw_len) {}

ValueDecoder::~ValueDecoder() = default;

bool ValueDecoder::Done() const {
  return failed_.ok() && produced_ == raw_len_ && (codec_ == Codec::kRaw || consumed_ == stored_.size());
}

size_t ValueDecoder::ContextBytes() const { return stream_ ? ZSTD_sizeof_DStream(stream_->ds) : 0; }

Status ValueDecoder::Fail(std::string_view why) {
  failed_ = Status::Corruption(why);
  return failed_;
}

Status ValueDecoder::Unreadable() {
  failed_ = UnreadableError();
  return failed_;
}

Status ValueDecoder::Next(size_t max_bytes, std::string* buf, std::string_view* piece) {
  *piece = {};
  if (!failed_.ok()) return failed_;
  if (max_bytes == 0) max_bytes = 1;
  if (codec_ == Codec::kRaw) {
    if (stored_.size() != raw_len_) return Fail("raw value size differs from its recorded size");
    const size_t n = static_cast<size_t>(std::min<uint64_t>(max_bytes, raw_len_ - produced_));
    *piece = stored_.substr(static_cast<size_t>(produced_), n);
    produced_ += n;
    return Status::OK();
  }
  if (codec_ != Codec::kZstd) return Fail("unknown codec");
  return NextZstd(max_bytes, buf, piece);
}

// Frames whose size is known and fits the piece are decoded whole with the
// thread's context, as many as fit; a frame larger than a piece (or of
// unknown size) is streamed through stream_, one piece per call. Every
// output buffer is capped at what raw_len still allows, so a frame that
// claims or produces more than recorded fails without growing anything.
Status ValueDecoder::NextZstd(size_t max_bytes, std::string* buf, std::string_view* piece) {
  size_t out_pos = 0;
  for (;;) {
    const uint64_t left = raw_len_ - produced_;
    if (frame_end_ == 0) {
      if (consumed_ == stored_.size()) {
        if (left != 0) return Fail("zstd value decoded to fewer bytes than recorded");
        break;
      }
      const char* src = stored_.data() + consumed_;
      const size_t avail = stored_.size() - consumed_;
      size_t csize = 0;
      unsigned long long fsize = 0;
      auto sizes = [&] {
        csize = ZSTD_findFrameCompressedSize(src, avail);
        fsize = ZSTD_getFrameContentSize(src, avail);
      };
      if (!GuardMappedRead(src, avail, sizes)) return Unreadable();
      if (ZSTD_isError(csize)) return Fail(std::string("zstd: ") + ZSTD_getErrorName(csize));
      if (fsize == ZSTD_CONTENTSIZE_ERROR) return Fail("zstd: malformed frame header");
      if (fsize != ZSTD_CONTENTSIZE_UNKNOWN && fsize <= max_bytes) {
        if (fsize > left) return Fail("zstd value decodes to more bytes than recorded");
        if (fsize > max_bytes - out_pos) break;  // next call, with a whole piece of room
        if (buf->size() < out_pos + fsize) buf->resize(std::min<uint64_t>(max_bytes, out_pos + left));
        ZSTD_DCtx* ctx = ThreadDCtx();
        if (ctx == nullptr) return Fail("zstd: cannot allocate a decompression context");
        size_t n = 0;
        auto decode = [&] { n = ZSTD_decompressDCtx(ctx, buf->data() + out_pos, static_cast<size_t>(fsize), src, csize); };
        if (!GuardMappedRead(src, csize, decode)) return Unreadable();
        if (ZSTD_isError(n)) return Fail(std::string("zstd: ") + ZSTD_getErrorName(n));
        if (n != fsize) return Fail("zstd frame decoded to a different size than its header says");
        consumed_ += csize;
        out_pos += n;
        produced_ += n;
        if (out_pos == max_bytes) break;
        continue;
      }
      if (out_pos > 0) break;  // deliver the small frames first
      frame_end_ = consumed_ + csize;
      if (!stream_) {
        stream_ = std::make_unique<Stream>();
        if (stream_->ds == nullptr) return Fail("zstd: cannot allocate a decompression context");
      }
      ZSTD_DCtx_reset(stream_->ds, ZSTD_reset_session_only);
    }
    // Streaming one large frame: one piece of output per call. With nothing
    // left to produce, one byte of room is given so that a frame holding
    // more than recorded shows it.
    const size_t cap = static_cast<size_t>(std::max<uint64_t>(1, std::min<uint64_t>(max_bytes, left)));
    buf->resize(cap);
    ZSTD_inBuffer in{stored_.data(), frame_end_, consumed_};
    ZSTD_outBuffer out{buf->data(), cap, 0};
    bool frame_done = false;
    for (;;) {
      size_t r = 0;
      auto decode = [&] { r = ZSTD_decompressStream(stream_->ds, &out, &in); };
      if (!GuardMappedRead(stored_.data(), frame_end_, decode)) return Unreadable();
      if (ZSTD_isError(r)) return Fail(std::string("zstd: ") + ZSTD_getErrorName(r));
      if (r == 0) {
        frame_done = true;
        break;
      }
      if (out.pos == out.size) break;
      if (in.pos == in.size) return Fail("zstd: truncated frame");
    }
    if (out.pos > left) return Fail("zstd value decodes to more bytes than recorded");
    consumed_ = in.pos;
    produced_ += out.pos;
    out_pos = out.pos;
    if (frame_done) {
      if (consumed_ != frame_end_) return Fail("zstd: frame ended before its recorded size");
      frame_end_ = 0;
    }
    if (out_pos > 0) break;
  }
  *piece = std::string_view(buf->data(), out_pos);
  return Status::OK();
}

}  // namespace kingx::engine
