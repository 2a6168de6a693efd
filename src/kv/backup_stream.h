// The body of GET /admin/backup and the worker's side of the backup slots.
//
// BackupClient asks the writer for a point-in-time cut through a backup slot
// (src/ipc/backup_slots.h) and gives the slot back; one per worker process,
// any thread (every step is an atomic on the shared slot).
//
// TarBackupStream is the archive (POSIX ustar, as GNU tar reads it) of one
// cut, produced piece by piece while it is sent (http::BodyStream). Members,
// in order: "MANIFEST" (engine::EncodeCutManifest: the cut's segments with
// their births, the seed, the seq high-water mark); then every segment's
// hint, ascending id ("seg-NNNNNNNN.hint": a sealed segment's own, immutable
// once sealed; for the active segment, and for any segment of the cut
// without a hint file, the finished hint a clean close would leave for its
// bytes at the cut, PrepareCutHints); then every segment's data, ascending
// id ("seg-NNNNNNNN.kxd": sealed segments whole, the active one exactly up to
// its size at the cut). All hints come before any data: an archive cut
// anywhere in the data still holds the hint of every segment it lost bytes
// of, so the copy reports the cut and the keys whose records were lost
// answer "damaged" (a file shorter than its hint says, or none), never an
// older value. Only a cut inside the MANIFEST or the hints is not covered.
// A segment the MANIFEST lists whose file is gone stays so in the copy
// (entry and hint, no file: the copy reports the same damage as the
// original). Not in it: LOCK, staging files, the writer's unfinished hint of
// the active segment and keys/ (derived: an open rebuilds the sorted key
// view).
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

// The finished hints of a cut's segments that have none on disk, built
// from the pinned segment files (engine::WriteCutHint) into scratch files
// that are unlinked as soon as they are open again for reading: nothing is
// left behind, also when the process dies.
struct PreparedHint {
  uint32_t segment_id = 0;
  std::shared_ptr<engine::File> file;
  uint64_t bytes = 0;
};

struct PreparedHints {
  std::vector<PreparedHint> hints;  // ascending segment id
  // The hint of segment id, or null.
  const PreparedHint* Find(uint32_t id) const;
};

// Builds the PreparedHints of cut in scratch_dir (a directory the process
// may write: the data directory of a read-only server may not be): one for
// its active segment (engine::SegmentFileCut::active: the writer's hint of
// it is unfinished, or a read-only open's may be) and one for each other
// segment whose file is there but whose hint file is not (removed, never
// written). Blocking: on the backup's Offload thread, or where the thread
// may wait for the disk (the thread model). `tag` makes the scratch names
// unique among this process's backups. A segment gets none when it is
// shorter than a segment header or its bytes below the cut are not whole
// valid records (damage there: logged; the copy's open then scans the
// segment and reports it). Errors: the Env's, when a segment cannot be read
// or a scratch file written (the backup is refused). Memory:
// engine::WriteCutHint's (a few hundred KiB, not the hint) and one open file
// per hint built.
engine::Result<std::shared_ptr<PreparedHints>> PrepareCutHints(engine::Env& env, const std::string& data_dir,
                                                               const engine::DatabaseCut& cut,
                                                               const std::string& scratch_dir, const std::string& tag);

class TarBackupStream final : public http::BodyStream {
 public:
  static constexpr size_t kPieceBytes = 64 * 1024;

  // The archive of the cut held in backup slot `i` (State(i) == kCut).
  // client, budget and offload must outlive the stream. Sizes of hint files
  // are taken now (a sealed segment's hint never changes while pinned).
  // hints: the hints built for the cut (PrepareCutHints; null: none); a
  // segment without one ships its hint file when it has one.
  // offload: where file reads run (null: inline, in Next). resume: called
  // on the owning thread when a read that made Next answer kAgain is done
  // (Connection::ResumeOutput, then whatever makes the I/O layer flush); it
  // may destroy the stream.
  TarBackupStream(BackupClient& client, uint32_t i, ByteBudget& budget, uint64_t mtime_s,
                  Offload* offload = nullptr, std::function<void()> resume = {},
                  std::shared_ptr<PreparedHints> hints = nullptr);
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
