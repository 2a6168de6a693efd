// Hashing and checksums. The only includer of <xxhash.h> (and the only user
// of libxxhash's CPU dispatch) is hash.cc.
//
// KeyHash is the index's hash: XXH3-64 seeded with the database's random seed
// (stored in every segment header), so that crafted keys cannot aim at one
// bucket. It never returns 0 or 1 (they mark empty and changing index entries).
// Checksum64 is XXH3-64 with seed 0, used for record and file checksums;
// Checksum64Stream computes the same value over pieces.
// Thread-safety: pure functions; a Checksum64Stream belongs to one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

namespace kingx::engine {

uint64_t KeyHash(uint64_t seed, std::string_view key);
uint64_t Checksum64(const void* data, size_t len);

class Checksum64Stream {
 public:
  Checksum64Stream();
  ~Checksum64Stream();
  Checksum64Stream(const Checksum64Stream&) = delete;
  Checksum64Stream& operator=(const Checksum64Stream&) = delete;
  void Update(const void* data, size_t len);
  uint64_t Digest() const;  // == Checksum64(all bytes given to Update)
 private:
  struct State;
  std::unique_ptr<State> state_;
};

// A fresh random 64-bit seed (getrandom), never 0.
uint64_t NewHashSeed();

}  // namespace kingx::engine
