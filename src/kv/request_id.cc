// Request ids (see request_id.h).
#include "src/kv/request_id.h"

#include <cstring>

namespace kingx {
namespace {

uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

bool Usable(std::string_view id) {
  if (id.empty() || id.size() > RequestIds::kMaxBytes) return false;
  for (unsigned char c : id) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace

size_t RequestIds::For(std::string_view client_id, char* out) {
  if (Usable(client_id)) {
    std::memcpy(out, client_id.data(), client_id.size());
    return client_id.size();
  }
  static constexpr char kHex[] = "0123456789abcdef";
  const uint64_t n = ++counter_;
  const uint64_t words[2] = {SplitMix(seed_ ^ n), SplitMix(seed_ + (n << 1) + 1)};
  for (int w = 0; w < 2; ++w) {
    for (int i = 0; i < 16; ++i) out[w * 16 + i] = kHex[(words[w] >> (60 - 4 * i)) & 0xF];
  }
  return 32;
}

}  // namespace kingx
