// Request ids (see request_id.h).
#include "src/kv/request_id.h"

#include <cstring>

namespace kingx {
namespace {

// Two unrelated 64-bit bijections: SplitMix64's finaliser and MurmurHash3's
// fmix64. Each half of an id is one of them applied to its own Weyl sequence
// (start + n * odd constant), so a half never repeats within 2^64 calls, and
// the halves never feed related inputs to the same function (mixing
// seed ^ n for one half and seed + 2n + 1 for the other with one function
// made half A of id n equal half B of a nearby id for most seeds).
uint64_t SplitMix(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t Fmix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  return x ^ (x >> 33);
}

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ull;  // odd: n -> n * kGolden is a bijection

bool Usable(std::string_view id) {
  if (id.empty() || id.size() > RequestIds::kMaxBytes) return false;
  for (unsigned char c : id) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

// Two hex digits per byte from one table lookup: every response without a
// usable client id gets a generated one.
struct HexPairs {
  char pairs[256][2];
  constexpr HexPairs() : pairs() {
    constexpr char kHex[] = "0123456789abcdef";
    for (int b = 0; b < 256; ++b) {
      pairs[b][0] = kHex[b >> 4];
      pairs[b][1] = kHex[b & 0xF];
    }
  }
};
constexpr HexPairs kHexPairs;

// The 16 lowercase hex digits of v, most significant first.
void Hex16(uint64_t v, char* out) {
  for (int i = 0; i < 8; ++i) std::memcpy(out + 2 * i, kHexPairs.pairs[(v >> (56 - 8 * i)) & 0xFF], 2);
}

}  // namespace

RequestIds::RequestIds(uint64_t seed)
    : high_start_(SplitMix(seed + kGolden)), low_start_(Fmix64(seed ^ 0x2545f4914f6cdd1dull)) {}

size_t RequestIds::For(std::string_view client_id, char* out) {
  if (Usable(client_id)) {
    std::memcpy(out, client_id.data(), client_id.size());
    return client_id.size();
  }
  const uint64_t n = ++counter_;
  Hex16(SplitMix(high_start_ + n * kGolden), out);
  Hex16(Fmix64(low_start_ + n * kGolden), out + 16);
  return 32;
}

}  // namespace kingx
