// Little-endian fixed-width and varint encoding of integers into byte buffers
// (the on-disk formats are little-endian whatever the host). Internal to engine/.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

namespace kingx::engine {

inline void PutFixed16(char* p, uint16_t v) {
  for (int i = 0; i < 2; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
inline void PutFixed32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
inline void PutFixed64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
inline uint16_t GetFixed16(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint16_t>(u[0] | (u[1] << 8));
}
inline uint32_t GetFixed32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | u[i];
  return v;
}
inline uint64_t GetFixed64(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | u[i];
  return v;
}
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
