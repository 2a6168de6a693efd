// The std::map model the engine's randomized tests check the database
// against: key -> (value bytes, seq), with one check that every key ever
// written reads back exactly as the model says.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/compaction.h"
#include "tests/engine/support/test_util.h"

namespace kingx::engine::test {

struct ModelEntry {
  std::string value;
  uint64_t seq;  // the ETag the write got
};
using Model = std::map<std::string, ModelEntry>;

// `key` reads back as the model says: absent, or its value, seq and the
// content type TestDb::Put writes.
void CheckKey(TestDb& db, const Model& model, const std::string& key);

// CheckKey for every key of all_keys (the model's and those deleted since);
// the writer's and the index's key counts match the model. Test failures
// through Catch2.
void CheckModel(TestDb& db, const Model& model, const std::vector<std::string>& all_keys);
// The index's published counters (what readers, the write stall and the
// metrics see) equal the writer's own figures: keys, segments, and the sum of
// every segment's live and dead bytes.
void CheckCounters(TestDb& db);

// Compaction options for tests: no pacing, `install_batch` index entries per
// hold of the writer's mutex (small: many installs), and a file system that
// always has 1 TiB free (tests that simulate a full disk set free_bytes).
CompactionOptions UnthrottledCompaction(uint32_t install_batch);

// Writes `value` (raw) under `key` through the large-value path
// (BeginLarge, parts of 64 KiB, FinishLarge: a staged segment of its own).
// REQUIREs success.
void PutLarge(TestDb& db, const std::string& key, const std::string& value);

}  // namespace kingx::engine::test
