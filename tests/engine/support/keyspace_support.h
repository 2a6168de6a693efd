// Helpers for the keyspace tests (engine/keyspace.h, engine/key_lister.h):
// a keyspace region on anonymous shared memory, random binary keys, full
// paginated listings (retrying pages while the view is being built) and a
// check of a listing against a std::map model. Catch2 REQUIREs inside: call
// from a test's thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "engine/index.h"
#include "engine/key_lister.h"
#include "engine/keyspace_options.h"
#include "engine/keyspace_region.h"
#include "tests/engine/support/test_util.h"

namespace kingx::engine::test {

// A keyspace region on anonymous shared memory (unmapped when destroyed).
class RegionMem {
 public:
  RegionMem(uint32_t tail_entries, uint64_t arena_bytes);
  ~RegionMem();
  RegionMem(const RegionMem&) = delete;
  RegionMem& operator=(const RegionMem&) = delete;
  KeyspaceRegion& region() { return *region_; }

 private:
  void* base_ = nullptr;
  size_t bytes_ = 0;
  std::unique_ptr<KeyspaceRegion> region_;
};

// 1 to 6 bytes from an alphabet with NUL, '/', 0x7f, 0x80 and 0xff.
std::string RandomBinaryKey(std::mt19937_64& rng);

struct ModelValue {
  uint64_t seq = 0;
  uint64_t size = 0;
};

// Every key of the listing, page by page (each page starts after the last key
// of the previous one), with the page size `limit`. A page answered kBusy
// (the view being built) is retried for up to 30 s.
std::vector<ListedKey> ListAll(KeyLister& lister, std::string_view prefix, size_t limit, size_t* pages = nullptr);

// Puts `key` with a MakeValue(key, version, len) value and the content type
// "text/x-test" through Writer::Apply, REQUIREs success and records the
// key's seq and size in *model.
void PutModelled(TestDb& db, std::map<std::string, ModelValue>* model, const std::string& key, size_t len,
                 uint64_t version);
// The same without requiring success: the model gets the key only when the
// put succeeded; returns its status.
Status TryPutModelled(TestDb& db, std::map<std::string, ModelValue>* model, const std::string& key, size_t len,
                      uint64_t version);

// Puts every key of `keys` with a `len`-byte value in one batch (one
// Apply), REQUIREs success and records them in *model.
void PutBatchModelled(TestDb& db, std::map<std::string, ModelValue>* model, const std::vector<std::string>& keys,
                      size_t len, uint64_t version);

// Opens db and starts its keyspace on `region` with `ko`; REQUIREs each
// step and that the view is ready within 20 s.
void OpenWithKeyspace(TestDb& db, KeyspaceRegion& region, const KeyspaceOptions& ko);

// The same through the large-value path (a segment of its own, sealed at
// birth): BeginLarge, AppendLarge in 64 KiB pieces, FinishLarge.
void PutLargeModelled(TestDb& db, std::map<std::string, ModelValue>* model, const std::string& key, size_t len);

// The listing under `prefix` equals the model's keys (seq, size and the
// content type "text/x-test" of each).
void CheckAgainstModel(KeyLister& lister, const std::map<std::string, ModelValue>& model, std::string_view prefix,
                       size_t limit);

// The entries of the runs the view publishes, and how many of them are not at
// their key's location in the index (overwritten without a new entry, moved,
// deleted): a listing reads a record for each of those. Takes a snapshot
// again when a run it names was replaced meanwhile (at most 50 times).
struct RunStaleness {
  uint64_t entries = 0;
  uint64_t stale = 0;
};
RunStaleness StaleRunEntries(KeyspaceRegion& region, const SharedIndex& index);

// Small, busy settings: checkpoints every 50 ms, merges after 100 ms idle,
// rebuild chunks of 300 entries; KS_LOG=1 in the environment logs to stderr.
KeyspaceOptions SmallKeyspace(const std::string& dir);

}  // namespace kingx::engine::test
