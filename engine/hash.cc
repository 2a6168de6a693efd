#include "engine/hash.h"

#include <sys/random.h>

#include <cstring>

#define XXH_INLINE_ALL
#include <xxhash.h>
#if defined(__x86_64__)
// libxxhash's CPU dispatch (xxh_x86dispatch.h, which XXH_INLINE_ALL would
// turn into static declarations): the library's own symbols.
extern "C" XXH64_hash_t XXH3_64bits_dispatch(const void* input, size_t len);
extern "C" XXH_errorcode XXH3_64bits_update_dispatch(XXH3_state_t* state, const void* input, size_t len);
#else  // libxxhash dispatches on x86 only: the inlined copy everywhere else
#define XXH3_64bits_dispatch XXH3_64bits
#define XXH3_64bits_update_dispatch XXH3_64bits_update
#endif

namespace kingx::engine {
namespace {

// Inputs longer than this take XXH3's long-input loop, whose speed is its
// vector width: libxxhash's dispatch picks the widest this CPU runs (AVX-512,
// AVX2, else SSE2) once, where the inlined copy is built for the baseline
// (SSE2), about three times the instructions per byte. Every implementation
// returns the same value, so nothing on disk changes. Shorter inputs (keys,
// headers, small records) stay inlined: no call through a pointer.
constexpr size_t kDispatchAbove = XXH3_MIDSIZE_MAX;

}  // namespace

uint64_t KeyHash(uint64_t seed, std::string_view key) {
  uint64_t h = XXH3_64bits_withSeed(key.data(), key.size(), seed);
  return h <= 1 ? h + 2 : h;  // 0 and 1 mark empty and changing index entries
}

uint64_t Checksum64(const void* data, size_t len) {
  return len > kDispatchAbove ? XXH3_64bits_dispatch(data, len) : XXH3_64bits(data, len);
}

struct Checksum64Stream::State {
  XXH3_state_t st;
};

Checksum64Stream::Checksum64Stream() : state_(std::make_unique<State>()) {
  XXH3_64bits_reset(&state_->st);
}
Checksum64Stream::~Checksum64Stream() = default;

void Checksum64Stream::Update(const void* data, size_t len) {
  // The dispatched update keeps the same state (the header and the library are one version).
  (void)(len > kDispatchAbove ? XXH3_64bits_update_dispatch(&state_->st, data, len)
                              : XXH3_64bits_update(&state_->st, data, len));
}
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
