// The body of GET /admin/backup and the worker's side of the backup slots.
//
// BackupClient asks the writer for a point-in-time cut through a backup slot
// (src/ipc/backup_slots.h) and gives the slot back; one per worker process,
// any thread (every step is an atomic on the shared slot).
//
// TarBackupStream is the archive (POSIX ustar, as GNU tar reads it) of one
// cut, produced piece by piece while it is sent (http::BodyStream). Members,
// in order: "MANIFEST" (engine::EncodeCutManifest: the cut's segments with
// their births, the seed, the seq high-water mark), then for each segment of
// the cut, ascending id, "seg-NNNNNNNN.kxd" (sealed segments whole, the
// active one exactly up to its size at the cut) and, for a sealed segment
// that has one, its "seg-NNNNNNNN.hint" (immutable once sealed). The active
// segment's hint is the one a clean close would leave for the cut
// (PrepareCutHint), and comes BEFORE the segment's data: an archive cut
// inside that data still holds the hint, so the copy reports the cut and the
// keys whose records were lost answer "damaged", never an older value. A
// segment
// the MANIFEST lists whose file is gone stays so in the copy (entry and hint,
// no file: the copy reports the same damage as the original). Not in it:
// LOCK, staging files, the writer's unfinished hint of the active segment
// and keys/ (derived: an open rebuilds the sorted key view).
// `tar -x` of it into an empty directory gives a data directory that kingx
// and kingx-tool open as is.
//
// Memory: one piece buffer (kPieceBytes) reserved in the worker's response
// budget (--response-buffer-bytes) by Prime, before anything is answered,
// and given back when the stream is destroyed (or, when a read of it is in
// flight then, when that read ends). The Connection asks for the next piece
// only once the previous one was written whole, so a slow client holds one
// piece, never more, and at most one read per backup is in flight.
//
// Reads: with an Offload (the event loop) each piece of a file is read on
// the Offload's thread; Next answers kAgain meanwhile and `resume` is called
// on the owning thread once the piece is there (the Connection then pulls
// it), so the loop never waits for the disk. The file is opened there too.
// Without one (the thread model's pool threads) Next reads inline.
//
// Consistency: every read of a file is followed by a check that the slot is
// still kCut (pinned): a read that raced with the writer dropping the pin
// (--backup-max-ms) ends the stream (kError: the client gets a short
// archive, which tar reports) instead of sending bytes of another file.
//
// Lifetime: the Connection owns the stream (through the Response); the
// destructor releases the slot (the writer then unpins at once) and counts
// the backup as finished (every byte handed out) or failed.
// Errors: a file that cannot be read whole is logged (error level) and ends
// the stream; nothing else fails once the response has started.
// Threading: the Connection's thread (the Offload's owning thread).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/env.h"
#include "engine/status.h"
#include "engine/writer.h"
#include "http/response.h"
#include "src/ipc/backup_slots.h"
#include "src/kv/byte_budget.h"
#include "src/kv/offload.h"

namespace kingx {

class BackupClient {
 public:
  // region: the shared backup slots; env: reads the cut's files (must
  // outlive the client); wake_writer makes the writer look at the slots now
  // (WriteQueue::Wake); slot/generation: this worker's (tokens).
  BackupClient(BackupRegion& region, engine::Env& env, std::function<void()> wake_writer, std::string data_dir,
               uint32_t slot, uint32_t generation);

  // Claims a free backup slot and asks the writer for a cut; the writer's
  // Completion (reason kBackupCut) carries a token with this prefix (the
  // thread model routes it) whose serial (TableTokenSerial) is the returned
  // slot number.
  // kBusy when kMaxBackups backups are in progress.
  engine::Result<uint32_t> Request(uint32_t token_prefix);
  BackupState State(uint32_t i) const;
  // The writer's error when State(i) is kFailed.
  engine::Status Failure(uint32_t i) const;
  // The cut the writer published (State(i) is kCut).
  engine::DatabaseCut Cut(uint32_t i) const;
  // Gives the slot back (any state this worker holds) and wakes the writer.
  void Release(uint32_t i);

  BackupRegion& region() { return region_; }
  engine::Env& env() { return env_; }
  const std::string& data_dir() const { return data_dir_; }

 private:
  BackupRegion& region_;
  engine::Env& env_;
  std::function<void()> wake_writer_;
  const std::string data_dir_;
  const uint32_t slot_;
  const uint32_t generation_;
};

// The finished hint of a cut's active segment, built from the pinned
// segment file (engine::WriteCutHint) into a scratch file that is unlinked
// as soon as it is open again for reading: nothing is left behind, also
// when the process dies.
struct PreparedHint {
  uint32_t segment_id = 0;
  std::shared_ptr<engine::File> file;
  uint64_t bytes = 0;
};

// Builds the PreparedHint of cut's active segment in scratch_dir (a
// directory the process may write: the data directory of a read-only server
// may not be). Blocking: on the backup's Offload thread, or where the thread
// may wait for the disk (the thread model). `tag` makes the scratch name
// unique among this process's backups. Null (no hint to ship) when the cut
// has no active segment, it is missing, shorter than a segment header, or
// its bytes below the cut are not whole valid records (damage there: logged;
// the copy's open then scans the segment and reports it). Errors: the Env's,
// when the segment cannot be read or the scratch file written (the backup
// is refused). Memory: engine::WriteCutHint's (a few hundred KiB, not the
// hint).
engine::Result<std::shared_ptr<PreparedHint>> PrepareCutHint(engine::Env& env, const std::string& data_dir,
                                                             const engine::DatabaseCut& cut,
                                                             const std::string& scratch_dir, const std::string& tag);

class TarBackupStream final : public http::BodyStream {
 public:
  static constexpr size_t kPieceBytes = 64 * 1024;

  // The archive of the cut held in backup slot `i` (State(i) == kCut).
  // client, budget and offload must outlive the stream. Sizes of hint files
  // are taken now (a sealed segment's hint never changes while pinned).
  // hint: the active segment's (PrepareCutHint; null: none shipped).
  // offload: where file reads run (null: inline, in Next). resume: called
  // on the owning thread when a read that made Next answer kAgain is done
  // (Connection::ResumeOutput, then whatever makes the I/O layer flush); it
  // may destroy the stream.
  TarBackupStream(BackupClient& client, uint32_t i, ByteBudget& budget, uint64_t mtime_s,
                  Offload* offload = nullptr, std::function<void()> resume = {},
                  std::shared_ptr<PreparedHint> hint = nullptr);
  ~TarBackupStream() override;
  TarBackupStream(const TarBackupStream&) = delete;
  TarBackupStream& operator=(const TarBackupStream&) = delete;

  // Reserves the piece buffer in the budget; false (nothing reserved) when
  // the budget has no room for it.
  bool Prime();

  Pull Next(std::string_view* piece) override;

  // Bytes of the whole archive (Content-Length).
  uint64_t length() const { return total_bytes_; }

  // One ustar header block (512 bytes) for a regular file; exposed for tests.
  static std::string TarHeader(const std::string& name, uint64_t size, uint64_t mtime_s);

 private:
  struct Member {
    std::string name;
    std::string path;         // empty: `file` or `inline_data` is the content
    std::shared_ptr<engine::File> file;  // open already (a prepared hint)
    std::string inline_data;
    uint64_t bytes = 0;
  };
  struct PieceBuffer;
  struct ReadJob;
  enum class Fill : uint8_t { kReady, kWaiting, kFailed };
  // Puts `want` bytes of m at offset_ into the piece buffer: kReady (read
  // and checked), kWaiting (a read was queued on the Offload: Next answers
  // kAgain), kFailed (the file is shorter than its cut or unreadable, or the
  // pin was dropped meanwhile; logged).
  Fill FillPiece(const Member& m, size_t want);
  bool StartRead(const Member& m, size_t want);
  void OnRead(ReadJob& job);

  BackupClient& client_;
  const uint32_t slot_;
  ByteBudget& budget_;
  const uint64_t mtime_s_;
  Offload* const offload_;
  const std::function<void()> resume_;
  std::vector<Member> members_;
  uint64_t total_bytes_ = 0;
  uint64_t given_ = 0;      // bytes handed out so far
  size_t index_ = 0;        // current member
  int phase_ = 0;           // 0 header, 1 data, 2 padding, 3 end blocks, 4 done
  uint64_t offset_ = 0;     // bytes of the current member's data handed out
  std::shared_ptr<engine::File> file_;  // the current member's file, open while it is read
  std::shared_ptr<PieceBuffer> piece_;  // the piece being sent (Prime reserves it)
  std::string head_;                    // the tar header being sent
  std::shared_ptr<ReadJob> job_;        // the read in flight on the Offload, if any
  bool read_done_ = false;              // job_ ended: read_status_ and the piece are its result
  engine::Status read_status_;
};

}  // namespace kingx
