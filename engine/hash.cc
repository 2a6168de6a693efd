#include "engine/hash.h"

#include <sys/random.h>

#include <cstring>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace kingx::engine {

uint64_t KeyHash(uint64_t seed, std::string_view key) {
  uint64_t h = XXH3_64bits_withSeed(key.data(), key.size(), seed);
  return h <= 1 ? h + 2 : h;  // 0 and 1 mark empty and changing index entries
}

uint64_t Checksum64(const void* data, size_t len) { return XXH3_64bits(data, len); }

struct Checksum64Stream::State {
  XXH3_state_t st;
};

Checksum64Stream::Checksum64Stream() : state_(std::make_unique<State>()) {
  XXH3_64bits_reset(&state_->st);
}
Checksum64Stream::~Checksum64Stream() = default;

void Checksum64Stream::Update(const void* data, size_t len) { XXH3_64bits_update(&state_->st, data, len); }
uint64_t Checksum64Stream::Digest() const { return XXH3_64bits_digest(&state_->st); }

uint64_t NewHashSeed() {
  uint64_t seed = 0;
  while (seed == 0) {
    if (getrandom(&seed, sizeof seed, 0) != static_cast<ssize_t>(sizeof seed)) {
      // getrandom on Linux >= 3.17 does not fail for 8 bytes once the pool is
      // initialised; fall back to the address and time mix rather than abort.
      seed = reinterpret_cast<uintptr_t>(&seed) ^ static_cast<uint64_t>(__builtin_ia32_rdtsc());
    }
  }
  return seed;
}

}  // namespace kingx::engine
