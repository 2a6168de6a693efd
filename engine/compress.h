// Value compression. The only includer of <zstd.h> is compress.cc.
//
// A stored value is either raw (Codec::kRaw: the bytes themselves) or zstd
// (Codec::kZstd: one or more complete zstd frames, concatenated, whose
// decompressed bytes concatenate to the value). Workers compress before
// enqueuing, in frames of at most kFrameRawBytes raw bytes each, so that a
// reader can send a large value frame by frame (ValueDecoder) without ever
// holding it whole. Values written by older versions may hold larger frames
// (one per 1 MiB part); every function here reads them too.
//
// Thread-safety: every function is safe from any thread (contexts are
// thread-local).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "engine/record.h"
#include "engine/status.h"

namespace kingx::engine {

// Raw bytes per zstd frame written by EncodeValue and CompressFrames. A
// frame this size decodes in one call into a buffer of its size, with the
// thread's shared context: streaming a value costs one frame of memory.
inline constexpr size_t kFrameRawBytes = 64 * 1024;

// Decides how to store raw. Returns Codec::kZstd and sets *compressed to
// zstd frames of at most kFrameRawBytes raw bytes each when level > 0,
// raw.size() >= min_bytes and the frames save at least 10% of raw.size();
// otherwise returns Codec::kRaw and clears *compressed (the stored bytes are
// then raw itself). Never fails: a zstd error means raw.
Codec EncodeValue(std::string_view raw, int level, uint64_t min_bytes, std::string* compressed);

// Compresses raw_part into zstd frames of at most kFrameRawBytes raw bytes
// each, appended to *out (whatever the saving: the codec of a large value is
// chosen once, before its parts). kInvalidArgument on a zstd error (*out is
// then as it was).
Status CompressFrames(std::string_view raw_part, int level, std::string* out);

// Compresses raw_part into exactly one zstd frame, whatever its size,
// appended to *out. What older versions wrote per 1 MiB part; kept for tests
// that need such frames. kInvalidArgument on a zstd error.
Status CompressFrame(std::string_view raw_part, int level, std::string* out);

// Largest stored size a value of raw_len bytes may have under codec (raw:
// raw_len; zstd: the frames' worst-case bound, generous for parts).
uint64_t MaxStoredBytes(Codec codec, uint64_t raw_len);

// Decodes stored into exactly raw_len bytes in *out (resized). kCorruption
// when the frames are malformed, hold more or fewer than raw_len bytes, or
// raw_len > max_value_bytes (checked before allocating); for kRaw, when
// stored.size() != raw_len. stored is read under MappingGuard: kIOError when
// a page of it cannot be read (it lies in a segment mapping).
Status DecodeValue(Codec codec, std::string_view stored, uint64_t raw_len, uint64_t max_value_bytes,
                   std::string* out);

// ValueDecoder: decodes a stored value piece by piece, in order, so that a
// large value can be sent while it is decoded, with bounded memory and a
// bounded amount of work per call.
//
// `stored` must stay valid and unchanged while the decoder lives (keep the
// engine::Value's holder). Each Next call does at most one piece's work: it
// decodes whole frames of at most max_bytes raw bytes each (everything this
// version writes) with the calling thread's shared context, so nothing is
// kept between calls; a larger frame (older data) is decoded through a
// streaming context that the decoder keeps, holding the frame's window
// (up to 1 MiB for what older versions wrote) until the decoder is destroyed
// (see ContextBytes). The same checks as DecodeValue apply: malformed frames,
// or a total other than raw_len, are kCorruption, found at the piece where
// they show. A page of `stored` that cannot be read (a segment mapping; read
// under MappingGuard) is kIOError, and the decoder is then done with it.
//
// Thread-safety: one thread at a time; may move between threads between calls.
class ValueDecoder {
 public:
  // raw_len must have been checked against the maximum value size (the
  // Reader does): the decoder never produces more than raw_len bytes.
  ValueDecoder(Codec codec, std::string_view stored, uint64_t raw_len);
  ~ValueDecoder();
  ValueDecoder(const ValueDecoder&) = delete;
  ValueDecoder& operator=(const ValueDecoder&) = delete;

  // The next piece of the value, 1..max_bytes bytes (max_bytes >= 1), in
  // *piece. Raw values: a view into `stored` (no copy; *buf is untouched).
  // zstd values: decoded into *buf (resized; its capacity is reused), and
  // *piece views it until the next call. At the end (Done()), OK with an
  // empty piece. kCorruption as described above; the decoder is then done
  // with an error and every later call returns it again.
  Status Next(size_t max_bytes, std::string* buf, std::string_view* piece);

  // True once every byte was produced and every stored byte consumed.
  bool Done() const;
  // Bytes produced so far.
  uint64_t produced() const { return produced_; }
  // Memory the decoder holds between calls beyond sizeof(*this): 0 unless
  // a frame larger than a piece was met.
  size_t ContextBytes() const;

 private:
  struct Stream;
  Status Fail(std::string_view why);
  Status Unreadable();
  Status NextZstd(size_t max_bytes, std::string* buf, std::string_view* piece);

  const Codec codec_;
  const std::string_view stored_;
  const uint64_t raw_len_;
  size_t consumed_ = 0;         // stored bytes fully used
  uint64_t produced_ = 0;
  size_t frame_end_ = 0;        // end of the large frame being streamed (0 = none)
  std::unique_ptr<Stream> stream_;
  Status failed_;
};

}  // namespace kingx::engine
