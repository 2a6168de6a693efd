// SpillRoom: the disk room workers' body spills may take, kept out of the
// writer's reserve (the free space that puts may not use, kept for deletes
// and compaction).
//
// A body spill (src/kv/body_spill.h) appends scratch bytes to a file in the
// data directory. Those bytes must come out of the free space above the
// writer's reserve, as a put's do, and the decision cannot wait for the
// writer's next measurement (its disk-full flag lags the disk by up to a
// pass of its loop, and many spills can start meanwhile). So every spill
// write takes room here first, measuring the disk itself:
//
//   TryTake(n): the slot's word grows by n, then every living slot's word is
//   summed (the spill bytes being written now by every worker, this one's
//   included), then the file system is measured (statvfs, through `env`);
//   room is granted when free >= reserve + that sum. Otherwise the word
//   shrinks back and kNoSpace says why.
//   Give(n): after the write ended (its bytes are in the file system's
//   figure by then), the word shrinks by n.
//
// Adding before summing, and summing before measuring, makes every race
// conservative: two spills that start together each see the other's bytes,
// and a write that ends meanwhile is counted twice (in the sum and in the
// free space), never not at all. So spills alone never take the disk below
// the reserve; puts and compaction are the writer's and are checked there.
//
// A slot's word holds its occupant's generation in the top 24 bits and the
// bytes below (as src/ipc/staging_budget.h's words); the sum skips words of
// slots whose occupant is gone, so a worker killed in mid-write leaves
// nothing counted, and a slot's next worker starts its word afresh.
//
// Thread/process: any thread of any worker process mapping `shm`. No
// allocation; one statvfs per TryTake (a spill writes up to 1 MiB at a time,
// far rarer than requests).
#pragma once

#include <cstdint>
#include <string>

#include "engine/env.h"
#include "engine/status.h"
#include "src/ipc/shm.h"

namespace kingx {

class SpillRoom {
 public:
  // The room of slot `slot`'s worker of `generation`; resets the slot's word
  // (its previous occupant is gone). shm must outlive the object.
  SpillRoom(SharedMemory& shm, uint32_t slot, uint32_t generation);

  // Room for n bytes of spill in `dir`'s file system beyond `reserve_bytes`
  // (see above). OK: taken, give it back with Give(n) once the write ended,
  // whatever its outcome. kNoSpace: not taken (the text names the free
  // space, the reserve and what spills are writing). kIOError: statvfs
  // failed (not taken).
  engine::Status TryTake(uint64_t n, engine::Env& env, const std::string& dir, uint64_t reserve_bytes);
  void Give(uint64_t n);

 private:
  SharedMemory& shm_;
  uint32_t slot_;
  uint64_t tag_;  // generation << 40
};

}  // namespace kingx
