// KeyLister: lists keys in byte-wise lexicographic order, page by page, from
// the keyspace's sorted view (engine/keyspace.h), in any process that maps
// the index and keyspace regions (a worker, a pool thread, kingx-tool).
//
// One page costs a seek in each run (binary search over a sparse index), a
// scan of the tails (bounded by their size), and one index lookup per key
// returned: nothing proportional to the number of keys stored.
//
// Consistency (what a paginated listing guarantees when the next page starts
// after the last key of the previous one): each page reads a consistent view
// (one version of the run set and tails) and checks every key against the
// live index, so a key that exists for the whole listing appears exactly
// once, in order; a key created or deleted meanwhile may or may not appear;
// no key appears twice. Values shown (seq, size, content type) are those of
// the key's record when the page was made.
//
// Thread-safety: List may be called from any number of threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/env.h"
#include "engine/keyspace_region.h"
#include "engine/options.h"
#include "engine/status.h"

namespace kingx::engine {

class SharedIndex;

struct ListRequest {
  std::string_view prefix;       // only keys that start with it ("" = all)
  std::string_view start_after;  // only keys > it ("" = no bound; keys are never empty)
  size_t limit = 1000;           // 1.. keys per page
};

struct ListedKey {
  std::string key;
  uint64_t seq = 0;   // the value's ETag
  uint64_t size = 0;  // the value's size in bytes
  std::string content_type;
};

struct ListPage {
  std::vector<ListedKey> keys;  // ascending
  bool complete = true;         // false: more keys follow the last one
};

class KeyLister {
 public:
  // env, index and the region's memory must outlive the lister. data_dir:
  // the database directory (for reading a record when the view is stale).
  // Does no I/O.
  KeyLister(Env& env, std::string data_dir, const Options& options, SharedIndex& index, KeyspaceRegion region);
  ~KeyLister();
  KeyLister(const KeyLister&) = delete;
  KeyLister& operator=(const KeyLister&) = delete;

  // One page. Errors: kBusy (the view is not ready: the writer is starting,
  // or the view is being completed or rebuilt; or it kept changing), with a
  // message saying which; kInvalidArgument (limit 0); kCorruption /
  // kIOError (a run or the record of a listed key could not be read; the
  // message names the key).
  Result<ListPage> List(const ListRequest& request);

  // Cursors: the opaque token of a page that ended at last_key under
  // prefix, and back. A token is bound to the database's cursor secret (kept
  // across restarts in the keyspace MANIFEST; a new one after a rebuild) and
  // to the prefix, so a token from another database, another prefix, an
  // older secret or a damaged copy is refused (kInvalidArgument), never read
  // as another position. MakeCursor: kBusy when the view has no secret yet.
  Result<std::string> MakeCursor(std::string_view last_key, std::string_view prefix) const;
  Result<std::string> ParseCursor(std::string_view token, std::string_view prefix) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kingx::engine
