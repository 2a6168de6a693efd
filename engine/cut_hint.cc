// WriteCutHint (see cut_hint.h).
#include "engine/cut_hint.h"

#include "engine/hint_file.h"
#include "engine/segment_scan.h"
#include "engine/segment_window.h"

namespace kingx::engine {

Status WriteCutHint(Env& env, const std::string& segment_path, uint32_t segment_id, uint64_t cut_bytes,
                    const RecordLimits& limits, const std::string& hint_path, uint64_t window_bytes) {
  if (cut_bytes < kSegmentHeaderBytes) return Status::Corruption("a cut shorter than a segment header");
  auto segment = env.OpenFile(segment_path, OpenMode::kRead);
  if (!segment.ok()) return segment.status();
  auto size = segment.value()->Size();
  if (!size.ok()) return size.status();
  if (size.value() < cut_bytes) {
    return Status::Corruption(segment_path + " holds " + std::to_string(size.value()) + " bytes, fewer than the cut's " +
                              std::to_string(cut_bytes));
  }
  char head[kSegmentHeaderBytes];
  size_t got = 0;
  if (Status rs = segment.value()->Read(0, sizeof head, head, &got); !rs.ok()) return rs;
  SegmentHeader header;
  Status hs = got == sizeof head ? DecodeSegmentHeader(head, got, &header) : Status::Corruption("short header");
  if (!hs.ok()) return Status::Corruption(segment_path + ": segment header: " + hs.ToString());
  if (header.segment_id != segment_id) return Status::Corruption(segment_path + ": its header names another segment");
  auto writer = HintWriter::Create(env, hint_path, segment_id);
  if (!writer.ok()) return writer.status();
  HintWriter& w = *writer.value();
  // The window ends at the cut: the bytes appended after it are not read.
  SegmentWindow window(*segment.value(), segment_path, cut_bytes, window_bytes);
  Status s;
  uint64_t end = kSegmentHeaderBytes;  // where the records read so far end
  // Scanned as the active segment (its records are in seq order); anything
  // but a valid record below the cut means this hint could not be the one a
  // clean close writes.
  auto scan = ScanSegment(window, true, true, limits, [&](const ScanItem& item) {
    if (!s.ok()) return;
    if (item.event != ScanEvent::kRecord) {
      s = Status::Corruption(segment_path + " offset " + std::to_string(item.offset) + ": not a valid record below the cut (" +
                             item.why.ToString() + ")");
      return;
    }
    w.Add(HintEntry{item.header.seq, item.offset, item.bytes, item.header.type, item.key});
    end = item.offset + item.bytes;
    s = w.FlushIfLarge();
  });
  if (!scan.ok()) return scan.status();
  if (!s.ok()) return s;
  if (end != cut_bytes) {
    return Status::Corruption(segment_path + ": its records end at " + std::to_string(end) + ", not at the cut's " +
                              std::to_string(cut_bytes));
  }
  // Not synced: the backup reads it back at once, and nothing reads it after a crash.
  return w.FinishUnsynced(cut_bytes);
}

}  // namespace kingx::engine
