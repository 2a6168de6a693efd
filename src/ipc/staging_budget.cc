// The staging budget (see staging_budget.h).
#include "src/ipc/staging_budget.h"

namespace kingx {
namespace {

constexpr int kTagShift = 40;
constexpr uint64_t kCountMask = (uint64_t{1} << kTagShift) - 1;
constexpr std::memory_order kAcqRel = std::memory_order_acq_rel;
constexpr std::memory_order kAcquire = std::memory_order_acquire;

uint32_t WordGeneration(uint64_t word) { return static_cast<uint32_t>(word >> kTagShift); }

// Upload ids: the slot + 1 in the top 16 bits, its generation in the next
// 24, a per-worker serial in the low 24 (unique among one worker's uploads
// in progress, which are far fewer than 2^24).
uint64_t MakeUploadId(uint32_t slot, uint32_t gen, uint64_t serial) {
  return (uint64_t{slot + 1} << 48) | (uint64_t{gen & 0xFFFFFFu} << 24) | (serial & 0xFFFFFFu);
}

bool UploadAlive(SharedMemory& shm, uint64_t id) {
  const uint64_t slot_plus_one = id >> 48;
  return slot_plus_one != 0 &&
         SlotOccupantAlive(shm, static_cast<uint32_t>(slot_plus_one - 1), static_cast<uint32_t>((id >> 24) & 0xFFFFFFu));
}

// total -= n, never below 0 (see the header on why it may be too low).
void SubtractSaturating(std::atomic<uint64_t>& total, uint64_t n) {
  uint64_t cur = total.load(std::memory_order_relaxed);
  while (!total.compare_exchange_weak(cur, cur > n ? cur - n : 0, kAcqRel)) {
  }
}

}  // namespace

StagingBudget::StagingBudget(SharedMemory& shm, uint32_t slot, uint32_t generation)
    : shm_(shm), shared_(shm.control().staging), slot_(shm.slot(slot)), slot_index_(slot),
      tag_(uint64_t{generation & 0xFFFFFFu} << kTagShift) {}

void StagingBudget::Claim() {
  const uint64_t old = slot_.staging_reserved.exchange(tag_, kAcqRel);
  if (WordGeneration(old) != WordGeneration(tag_)) SubtractSaturating(shared_.reserved_bytes, old & kCountMask);
  slot_.staging_held.store(tag_, std::memory_order_release);
}

uint64_t StagingBudget::ShareBytes() const {
  return shm_.index().counters().live_bytes.load(std::memory_order_relaxed) / kShareDivisor;
}

uint64_t StagingBudget::NextId() {
  uint64_t serial = next_id_.fetch_add(1, std::memory_order_relaxed) + 1;
  return MakeUploadId(slot_index_, WordGeneration(tag_), serial);
}

bool StagingBudget::TakeOverdraft(Holder* h) {
  uint64_t owner = shared_.overdraft_owner.load(kAcquire);
  for (;;) {
    if (owner == h->id) break;
    if (owner != 0 && UploadAlive(shm_, owner)) return false;
    if (shared_.overdraft_owner.compare_exchange_weak(owner, h->id, kAcqRel)) break;
  }
  h->overdraft = true;
  return true;
}

// True when another living upload is first in line (h holds nothing and
// must let it go first).
bool StagingBudget::BehindFirstInLine(Holder* h) {
  const uint64_t first = shared_.first_in_line.load(kAcquire);
  return first != 0 && first != h->id && UploadAlive(shm_, first);
}

void StagingBudget::LeaveLine(Holder* h) {
  if (!h->first) return;
  uint64_t mine = h->id;
  shared_.first_in_line.compare_exchange_strong(mine, 0, kAcqRel);
  h->first = false;
}

bool StagingBudget::TryReserve(Holder* h, uint64_t n, bool whole) {
  if (n == 0) return true;
  if (h->id == 0) h->id = NextId();
  const bool newcomer = h->reserved == 0;
  if (newcomer && BehindFirstInLine(h)) return false;
  if (!TryAdmit(h, n, whole)) {
    // Refused while holding nothing: first in line unless a living upload is.
    uint64_t first = shared_.first_in_line.load(kAcquire);
    while (newcomer && !h->first && (first == 0 || !UploadAlive(shm_, first))) {
      if (shared_.first_in_line.compare_exchange_weak(first, h->id, kAcqRel)) h->first = true;
    }
    return false;
  }
  LeaveLine(h);
  return true;
}

bool StagingBudget::TryAdmit(Holder* h, uint64_t n, bool whole) {
  const uint64_t share = ShareBytes();
  // The slot's word first: a death before the total's update makes the
  // total too low, never too high (see the header).
  slot_.staging_reserved.fetch_add(n, kAcqRel);
  uint64_t total = shared_.reserved_bytes.load(kAcquire);
  for (;;) {
    bool fits = total + n <= share || total == 0;
    if (!fits && !whole && h->reserved > 0) {
      fits = total <= h->reserved || h->overdraft || TakeOverdraft(h);
    }
    if (!fits) {
      slot_.staging_reserved.fetch_sub(n, kAcqRel);
      return false;
    }
    if (shared_.reserved_bytes.compare_exchange_weak(total, total + n, kAcqRel)) break;
  }
  h->reserved += n;
  return true;
}

void StagingBudget::Release(Holder* h) {
  if (h->reserved != 0) {
    SubtractSaturating(shared_.reserved_bytes, h->reserved);
    slot_.staging_reserved.fetch_sub(h->reserved, kAcqRel);
    h->reserved = 0;
  }
  if (h->overdraft) {
    uint64_t mine = h->id;
    shared_.overdraft_owner.compare_exchange_strong(mine, 0, kAcqRel);
    h->overdraft = false;
  }
  LeaveLine(h);
  SetHeld(h, false);
}

void StagingBudget::SetHeld(Holder* h, bool held) {
  if (h->held == held) return;
  h->held = held;
  if (held) {
    slot_.staging_held.fetch_add(1, kAcqRel);
    shared_.holds.fetch_add(1, std::memory_order_relaxed);
  } else {
    slot_.staging_held.fetch_sub(1, kAcqRel);
  }
}

void StagingBudget::ReturnDeadSlots(SharedMemory& shm) {
  StagingShared& shared = shm.control().staging;
  for (uint32_t i = 0; i < shm.slot_count(); ++i) {
    std::atomic<uint64_t>& word = shm.slot(i).staging_reserved;
    uint64_t w = word.load(kAcquire);
    // A retry only when the live worker of the slot changed the word meanwhile.
    while ((w & kCountMask) != 0 && !SlotOccupantAlive(shm, i, WordGeneration(w))) {
      if (word.compare_exchange_weak(w, w & ~kCountMask, kAcqRel)) {
        SubtractSaturating(shared.reserved_bytes, w & kCountMask);
        break;
      }
    }
  }
  for (std::atomic<uint64_t>* word : {&shared.overdraft_owner, &shared.first_in_line}) {
    uint64_t owner = word->load(kAcquire);
    if (owner != 0 && !UploadAlive(shm, owner)) word->compare_exchange_strong(owner, 0, kAcqRel);
  }
}

uint64_t StagingBudget::HeldUploads(SharedMemory& shm) {
  uint64_t held = 0;
  for (uint32_t i = 0; i < shm.slot_count(); ++i) {
    const uint64_t w = shm.slot(i).staging_held.load(std::memory_order_relaxed);
    if (SlotOccupantAlive(shm, i, WordGeneration(w))) held += w & kCountMask;
  }
  return held;
}

}  // namespace kingx
