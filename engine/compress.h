// Value compression. The only includer of <zstd.h> is compress.cc.
//
// A stored value is either raw (Codec::kRaw: the bytes themselves) or zstd
// (Codec::kZstd: one or more complete zstd frames, concatenated, whose
// decompressed bytes concatenate to the value). Workers compress before
// enqueuing; large values may be compressed in parts, one frame per part.
//
// Thread-safety: every function is safe from any thread (contexts are
// thread-local).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/record.h"
#include "engine/status.h"

namespace kingx::engine {

// Decides how to store raw. Returns Codec::kZstd and sets *compressed to one
// zstd frame when level > 0, raw.size() >= min_bytes and the frame saves at
// least 10% of raw.size(); otherwise returns Codec::kRaw and clears
// *compressed (the stored bytes are then raw itself). Never fails: a zstd
// error means raw.
Codec EncodeValue(std::string_view raw, int level, uint64_t min_bytes, std::string* compressed);

// Compresses one part of a large value into one complete zstd frame appended
// to *out (whatever the saving: the codec of a large value is chosen once,
// before its parts). kInvalidArgument on a zstd error.
Status CompressFrame(std::string_view raw_part, int level, std::string* out);

// Largest stored size a value of raw_len bytes may have under codec (raw:
// raw_len; zstd: the frames' worst-case bound, generous for parts).
uint64_t MaxStoredBytes(Codec codec, uint64_t raw_len);

// Decodes stored into exactly raw_len bytes in *out (resized). kCorruption
// when the frames are malformed, hold more or fewer than raw_len bytes, or
// raw_len > max_value_bytes (checked before allocating); for kRaw, when
// stored.size() != raw_len.
Status DecodeValue(Codec codec, std::string_view stored, uint64_t raw_len, uint64_t max_value_bytes,
                   std::string* out);

}  // namespace kingx::engine
