// Little-endian fixed-width and varint encoding of integers into byte buffers
// (the on-disk formats are little-endian whatever the host). Internal to engine/.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace kingx::engine {

// Fixed-width fields are one load or store on a little-endian host (memcpy
// of the field's size; the compiler leaves byte loops as one load, shift and
// or per byte), bytes in order elsewhere. Any alignment.
template <class T>
inline void PutLittle(char* p, T v) {
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(p, &v, sizeof v);
  } else {
    for (size_t i = 0; i < sizeof v; ++i) p[i] = static_cast<char>(v >> (8 * i));
  }
}
template <class T>
inline T GetLittle(const char* p) {
  if constexpr (std::endian::native == std::endian::little) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
  } else {
    const auto* u = reinterpret_cast<const unsigned char*>(p);
    T v = 0;
    for (size_t i = sizeof v; i-- > 0;) v = static_cast<T>((v << 8) | u[i]);
    return v;
  }
}

// memcpy(dst, src, n) for the short strings the key paths copy (keys are
// mostly a few dozen bytes): up to 32 bytes as two overlapping fixed-size
// copies the compiler inlines, instead of a call into the C library. Reads
// and writes exactly [src, src + n) and [dst, dst + n); no overlap allowed.
inline void CopyShortBytes(char* dst, const char* src, size_t n) {
  if (n >= 16 && n <= 32) {
    std::memcpy(dst, src, 16);
    std::memcpy(dst + n - 16, src + n - 16, 16);
  } else if (n >= 8 && n < 16) {
    std::memcpy(dst, src, 8);
    std::memcpy(dst + n - 8, src + n - 8, 8);
  } else if (n < 8) {
    for (size_t i = 0; i < n; ++i) dst[i] = src[i];
  } else {
    std::memcpy(dst, src, n);
  }
}

inline void PutFixed16(char* p, uint16_t v) { PutLittle(p, v); }
inline void PutFixed32(char* p, uint32_t v) { PutLittle(p, v); }
inline void PutFixed64(char* p, uint64_t v) { PutLittle(p, v); }
inline uint16_t GetFixed16(const char* p) { return GetLittle<uint16_t>(p); }
inline uint32_t GetFixed32(const char* p) { return GetLittle<uint32_t>(p); }
inline uint64_t GetFixed64(const char* p) { return GetLittle<uint64_t>(p); }
inline void AppendFixed32(std::string* out, uint32_t v) {
  char b[4];
  PutFixed32(b, v);
  out->append(b, 4);
}
inline void AppendFixed64(std::string* out, uint64_t v) {
  char b[8];
  PutFixed64(b, v);
  out->append(b, 8);
}

// LEB128 varint: 7 bits a byte, low bits first, high bit set on every byte
// but the last; at most kMaxVarint64Bytes for 64 bits.
constexpr size_t kMaxVarint64Bytes = 10;

// Writes v as a varint at dst (room for kMaxVarint64Bytes); returns the end.
// The bytes AppendVarint64 appends, for encoders that gather an entry's
// fields on the stack and append them at once.
inline char* PutVarint64(char* dst, uint64_t v) {
  while (v >= 0x80) {
    *dst++ = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  *dst++ = static_cast<char>(v);
  return dst;
}

inline void AppendVarint64(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// Decodes a varint at *p, never reading at or past `end`. On success advances
// *p and returns true; false for a truncated or over-long (> 64 bits) varint.
inline bool GetVarint64(const char** p, const char* end, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift <= 63 && *p < end; shift += 7) {
    const auto byte = static_cast<uint8_t>(**p);
    ++*p;
    if (shift == 63 && byte > 1) return false;  // bits beyond the 64th
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

// Zigzag maps signed deltas to small unsigned values (0, -1, 1, -2, ...).
inline uint64_t ZigZag(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63); }
inline int64_t UnZigZag(uint64_t v) { return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1); }

}  // namespace kingx::engine
