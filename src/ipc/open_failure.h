// OpenFailureNote: why the writer's latest open of the database failed,
// published in the shared mapping for /readyz and /metrics.
//
// The writer process publishes the open's error (its text cut to kMaxBytes)
// when Writer::Open fails, before it exits for the master to respawn it,
// and clears it once an open succeeds; so while the writer is down or
// recovering, a worker can say what stopped the previous attempt (the
// segment and offset of an unreadable sector, say) instead of only "the
// writer is recovering".
//
// One process writes at a time (the writer; the master runs one). The text
// is a SharedText, so a reader never sees a torn text: while a publication
// kept overlapping its copy, Read answers kBusyText. Lives in zero-filled
// shared memory: all zero is "no failure".
//
// Thread-safety: Publish/Clear from one thread of one process at a time;
// Read, failing and failures from any thread of any process.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "src/ipc/shared_text.h"

namespace kingx {

class OpenFailureNote {
 public:
  static constexpr size_t kMaxBytes = 512;  // longer text is cut (and ends with "...")
  static constexpr std::string_view kBusyText = "(the failure is being published)";

  // Writer: the latest open failed with `text`; counts one failure.
  void Publish(std::string_view text);
  // Writer: an open succeeded.
  void Clear();

  // The latest failed open's text; empty once an open succeeded (or none failed).
  std::string Read() const;
  // True while the latest open failed.
  bool failing() const { return text_.size() != 0; }
  // Failed opens since the shared memory was made (monotonic across writers).
  uint64_t failures() const { return failures_.load(std::memory_order_relaxed); }

 private:
  void Store(std::string_view text);

  SharedText<kMaxBytes> text_;
  std::atomic<uint64_t> failures_{0};
};

}  // namespace kingx
