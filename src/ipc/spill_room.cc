// The disk room of body spills (see spill_room.h).
#include "src/ipc/spill_room.h"

namespace kingx {
namespace {

constexpr int kTagShift = 40;
constexpr uint64_t kCountMask = (uint64_t{1} << kTagShift) - 1;

}  // namespace

SpillRoom::SpillRoom(SharedMemory& shm, uint32_t slot, uint32_t generation)
    : shm_(shm), slot_(slot), tag_(uint64_t{generation & 0xFFFFFFu} << kTagShift) {
  if (slot_ < shm_.slot_count()) shm_.slot(slot_).spill_writing.store(tag_, std::memory_order_seq_cst);
}

engine::Status SpillRoom::TryTake(uint64_t n, engine::Env& env, const std::string& dir, uint64_t reserve_bytes) {
  if (slot_ >= shm_.slot_count()) return engine::Status::InvalidArgument("spill room: no such slot");
  std::atomic<uint64_t>& mine = shm_.slot(slot_).spill_writing;
  mine.fetch_add(n, std::memory_order_seq_cst);
  uint64_t writing = 0;
  for (uint32_t i = 0; i < shm_.slot_count(); ++i) {
    const uint64_t w = shm_.slot(i).spill_writing.load(std::memory_order_seq_cst);
    if (SlotOccupantAlive(shm_, i, static_cast<uint32_t>(w >> kTagShift))) writing += w & kCountMask;
  }
  auto space = env.Space(dir);
  if (!space.ok()) {
    Give(n);
    return space.status();
  }
  const uint64_t free_bytes = space.value().free_bytes;
  if (free_bytes >= reserve_bytes && free_bytes - reserve_bytes >= writing) return engine::Status::OK();
  Give(n);
  return engine::Status::NoSpace("no room to spill " + std::to_string(n) + " body bytes: " +
                                 std::to_string(free_bytes) + " bytes free, " + std::to_string(reserve_bytes) +
                                 " kept in reserve for compaction and deletes, " + std::to_string(writing) +
                                 " being spilled");
}

void SpillRoom::Give(uint64_t n) {
  if (slot_ < shm_.slot_count()) shm_.slot(slot_).spill_writing.fetch_sub(n, std::memory_order_seq_cst);
}

}  // namespace kingx
