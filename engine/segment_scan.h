// Reading a segment file from its first record to its end, the one way
// recovery, kingx-tool verify and tests do it (engine/FORMAT.md, "Reading a
// segment"). The scan takes its bytes from a ScanSource a range at a time:
// from memory (no I/O), or from the file through a window of bounded size
// (engine/segment_window.h), so that scanning a segment never needs the
// whole of it in memory. Any thread; a source belongs to one scan at a time.
//
// At each offset, in order:
//  - a record whose header and body check out: kRecord;
//  - a header that checks out, a whole record in the file, a body that does
//    not: kDamagedRecord. The key (and seq, type, length) come from bytes the
//    body checksum no longer vouches for; recovery still indexes it, so that
//    the key answers "damaged" rather than an older value, and goes on right
//    after it;
//  - a header that checks out but a record running past the end of the file
//    (the file was cut): its bytes may hold anything, so nothing after it is
//    read. In the active segment this is a torn tail (kTornTail). Elsewhere
//    it is kDamagedRecord (header trusted) when its key is within the file,
//    else kCorruptBytes, to the end;
//  - any other header: the next offset where a whole valid record (header and
//    body) begins is searched. Found: the bytes up to it are corruption (a
//    torn write never leaves valid records after itself), and reading resumes
//    there. When those bytes still name a key — the header's length fields
//    add up to exactly them (one damaged byte elsewhere in the header leaves
//    them so) — they are reported as kDamagedRecord (header not trusted), with
//    a seq the surrounding records bound: in a segment written in seq order,
//    the stored seq if it lies between the neighbours' seqs, else the highest
//    one that does (so the damaged record never loses to an older record of
//    its key). Otherwise kCorruptBytes. Not found: a torn tail in the active
//    segment; elsewhere the bytes to the end, named the same way when a
//    record precedes them (its seq then the one right above that record's)
//    or, in a segment written in seq order, a valid segment header's
//    seq_floor bounds them (the first record: its seq then seq_floor), else
//    kCorruptBytes to the end. (Before the first record, seq_floor bounds
//    the neighbours' seqs from below as the previous record's would.)
//  - before all of that: when every byte from the offset to the end of the
//    file is zero, the log ends there (kZeroTail). In the active segment that
//    is the room the writer preallocates after its last record: not damage.
//    A sealed segment is cut before its hint is finished, so its callers
//    judge a zero tail there by its hint: one that ends at the zeros says no
//    record was lost; without one, the zeros are damage (records a device may
//    have lost). In the active segment, a record whose header checks out
//    but whose body does not, and whose own last bytes are zero up to that
//    run, was cut short inside the preallocated room: a torn tail.
// So the active segment loses only a tail that no valid record follows, and a
// damaged byte anywhere costs at most the record it touches.
//
// A record is judged on one read of it: when asking for it whole made the
// source read again (a record past the source's window: ScanSource::reads()
// moved), its header must decode to the one just checked, else it is
// kDamagedRecord (bytes that change between reads are never taken for a
// record whose header and body checked out apart). When the source did not
// read again, the whole record is the bytes already checked: nothing to
// compare.
//
// Every byte of the file is asked of the source before the scan reports a
// tail (torn, zero, or damage to the end), so a byte that cannot be read
// ends the scan with the source's error instead, wherever it lies: an I/O
// error is never taken for a torn tail or for damage. Items reported before
// that error stand (the caller decides what they are worth).
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "engine/record.h"
#include "engine/status.h"

namespace kingx::engine {

enum class ScanEvent : uint8_t {
  kRecord,         // a valid record at offset
  kDamagedRecord,  // header valid, body failed its checksum (key known, not vouched for)
  kCorruptBytes,   // [offset, offset + bytes) hold no record that can be read
  kTornTail,       // active segment: [offset, end of file) is a torn tail, to be cut
  kZeroTail,       // [offset, end of file) is all zero bytes: the end of the log (damage or not: see above)
};

struct ScanItem {
  ScanEvent event = ScanEvent::kRecord;
  uint64_t offset = 0;
  uint64_t bytes = 0;        // the record's total bytes, or the range's length
  RecordHeader header;       // kRecord, kDamagedRecord
  std::string_view key;      // kRecord, kDamagedRecord: points into the scanned bytes, valid during fn only
  const char* record = nullptr;  // kRecord, and kDamagedRecord with a trusted header and its whole
                                 // record in the file: its header.total_bytes() bytes, valid during fn only
  bool header_trusted = true;  // kDamagedRecord: false when the header failed its checksum
  Status why;                // kDamagedRecord, kCorruptBytes, kTornTail: the first check that failed (kZeroTail: OK)
};

struct ScanSummary {
  uint64_t valid_end = 0;    // where a torn or zero tail begins (the file's size when there is none)
  uint64_t records = 0;
  uint64_t damaged_records = 0;
  uint64_t corrupt_ranges = 0;
  uint64_t corrupt_bytes = 0;
};

// Where a scan takes a segment's bytes from.
class ScanSource {
 public:
  virtual ~ScanSource() = default;
  // The segment's size: fixed for the scan.
  virtual uint64_t size() const = 0;
  // The most bytes the scan asks for at once when it walks through bytes it
  // does not know to be one record (the zero tail, a search for the next
  // record). Records are asked for whole, whatever their size.
  virtual uint64_t window_bytes() const = 0;
  // Sets *out to bytes [offset, offset + n) of the segment (offset + n <=
  // size()), valid until the next call. An error (the bytes cannot be read)
  // ends the scan with it.
  virtual Status Bytes(uint64_t offset, uint64_t n, const char** out) = 0;
  // How many times the source has read the segment so far. While it stays
  // the same, Bytes hands out bytes it already held, exactly as read; once
  // it moved, bytes asked for again may differ from those handed out before
  // (the file may have changed between the reads). A source over bytes in
  // memory never reads: 0.
  uint64_t reads() const { return reads_; }

 protected:
  // Called by a source each time it reads from the segment.
  void CountRead() { ++reads_; }

 private:
  uint64_t reads_ = 0;
};

// Scans the segment src holds (header, then records); calls fn for every
// item in file order. `active`: this is the segment appended to.
// `seq_ordered`: its records were appended in seq order (every segment but
// those sealed at birth). The source's error when a byte cannot be read
// (items before it were reported).
Result<ScanSummary> ScanSegment(ScanSource& src, bool active, bool seq_ordered, const RecordLimits& limits,
                                const std::function<void(const ScanItem&)>& fn);

// ScanSegment over data[0, size) in memory (a whole segment file).
ScanSummary ScanSegment(const char* data, uint64_t size, bool active, bool seq_ordered, const RecordLimits& limits,
                        const std::function<void(const ScanItem&)>& fn);

// True when data[0, n) are all zero bytes.
bool AllZero(const char* data, uint64_t n);

// What recovery knows of one segment file before reading its records.
struct SegmentFileInfo {
  uint32_t id = 0;
  uint64_t size = 0;
  bool header_ok = false;   // the header checks out and names this id
  SegmentHeader header;     // when header_ok
};

// Whether segment file f holds nothing an open must keep: no valid header
// and no room for a record (its creation was cut short, or an empty segment
// lost its header), unless its seal in the MANIFEST (sealed_bytes; 0: none)
// is past its header and above its size — then it held records and the file
// was cut: damage to keep and report at every open, never to remove. (A
// finished hint of a longer segment says the same; its callers read it.)
bool CreationCutShort(const SegmentFileInfo& f, uint64_t sealed_bytes);

// The index in files of the active segment of a database whose seed is
// `seed`: among segments with a valid header of that seed that were not sealed
// at birth, the one created last (highest seq_floor, then highest id: a
// segment's seq_floor is the next seq when it was created, and each creation
// consumes one). -1 when there is none.
int PickActiveSegment(const std::vector<SegmentFileInfo>& files, uint64_t seed);

}  // namespace kingx::engine
