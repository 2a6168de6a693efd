// KeyProbe: what an early look at a key learnt (its hash, and where the
// index held its single candidate), so that the read of that key which
// follows soon on the same thread need not hash and probe again.
//
// Plain data owned by the caller, one per read in flight; no thread-safety
// of its own. Filled by SharedIndex::PrefetchKey / LookupKey (through
// Reader::PrefetchIndex / PrefetchRecord) and only ever used as a shortcut
// that is checked first: SharedIndex::StillFound tells whether the candidate
// is still stored under its hash in an unchanged table, and Reader::Get
// serves it only when the record there is the key's own. A KeyProbe left
// over from another key, or from before any change of the index, costs a
// wasted check and nothing else.
#pragma once

#include <cstdint>

#include "engine/location.h"

namespace kingx::engine {

struct KeyProbe {
  uint64_t seed = 0;     // the table seed `hash` was computed with
  uint64_t hash = 0;     // KeyHash(seed, key); 0: nothing known
  uint64_t view = 0;     // descriptor of the table the candidate was found in; 0: no candidate
  uint64_t changes = 0;  // the index's change counter when it was found
  uint64_t pos = 0;      // the candidate's entry in that table
  Location loc = 0;      // the key's only candidate then
};

}  // namespace kingx::engine
