// Write tokens: the 64-bit id a worker gives each write it queues
// (src/ipc/write_queue.h), which the writer's completion carries back
// (src/ipc/completion_ring.h).
//
// Token = MakeToken(slot generation, local id). The generation tells a
// worker's completions from those of a previous occupant of its slot; the
// worker chooses local ids, unique among its in-flight writes.
#pragma once

#include <cstdint>

namespace kingx {

inline constexpr int kTokenLocalBits = 40;
inline constexpr uint64_t kTokenLocalMask = (uint64_t{1} << kTokenLocalBits) - 1;

// Generation in the top 24 bits, local id (wrapped to 40 bits) below.
constexpr uint64_t MakeToken(uint32_t generation, uint64_t local_id) {
  return (uint64_t{generation & 0xFFFFFFu} << kTokenLocalBits) | (local_id & kTokenLocalMask);
}
constexpr uint32_t TokenGeneration(uint64_t token) {
  return static_cast<uint32_t>(token >> kTokenLocalBits);
}
constexpr uint64_t TokenLocalId(uint64_t token) { return token & kTokenLocalMask; }

}  // namespace kingx
