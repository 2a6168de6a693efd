// VerifyDatabase: see verify.h. The reading follows recovery (recovery.cc):
// the same seed choice, the same active segment, the same scanner.
#include "engine/verify.h"

#include "engine/data_dir_holds.h"
#include "engine/data_dir_lock.h"

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "engine/compress.h"
#include "engine/hint_file.h"
#include "engine/hint_names.h"
#include "engine/manifest.h"
#include "engine/read_exact.h"
#include "engine/record.h"
#include "engine/segment_scan.h"
#include "engine/segment_window.h"

namespace kingx::engine {

namespace {

std::string U(uint64_t v) { return std::to_string(v); }

// A key as a finding shows it: quoted, printable ASCII as is, other bytes
// (and the quote and backslash) as \xNN.
std::string Quoted(std::string_view key) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "'";
  for (unsigned char c : key) {
    if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out + "'";
}

}  // namespace

Result<VerifyReport> VerifyDatabase(Env& env, const std::string& dir, const Options& options,
                                    const std::function<void(const std::string&)>& finding) {
  // An archive that extracted nothing, a wrong path: never "verified".
  Status here = RequireDatabase(env, dir);
  if (!here.ok()) return here;
  // Verifying reads only: the shared lock creates nothing (a backup stays as it was).
  auto lock = LockDataDir(env, dir, /*read_only=*/true);
  if (!lock.ok()) return lock.status();
  auto names = env.ListDir(dir);
  if (!names.ok()) return names.status();
  std::vector<uint32_t> ids;
  for (const auto& n : names.value()) {
    uint32_t id;
    if (ParseSegmentFileName(n, &id)) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  const RecordLimits limits{options.max_key_bytes, options.max_value_bytes};
  VerifyReport report;
  report.segments = ids.size();

  ManifestState listed;
  bool have_manifest = false;
  {
    auto m = Manifest::Read(env, dir);
    if (m.ok()) {
      listed = m.value();
      have_manifest = true;
      if (!listed.header_ok) {
        finding("MANIFEST: damaged header");
        ++report.damaged;
      }
      if (listed.damaged_entries > 0) {
        finding("MANIFEST: " + U(listed.damaged_entries) + " damaged entr(ies)");
        ++report.damaged;
      }
    } else if (m.status().Is(Code::kNotFound)) {
      finding("MANIFEST: none (a database from before it; the next open writes one)");
    } else {
      finding("MANIFEST: " + m.status().ToString());
      ++report.damaged;
    }
  }

  // Segments are read, not mapped: a sector that cannot be read stops the
  // check with an I/O error naming the file and offset, not with a SIGBUS.
  std::vector<SegmentFileInfo> files;
  for (uint32_t id : ids) {
    const std::string path = JoinPath(dir, SegmentFileName(id));
    auto size = env.FileSize(path);
    if (!size.ok()) return size.status();
    SegmentFileInfo f;
    f.id = id;
    f.size = size.value();
    char header[kSegmentHeaderBytes];
    if (f.size >= kSegmentHeaderBytes) {
      Status s = ReadExact(env, path, 0, kSegmentHeaderBytes, header);
      if (!s.ok()) return s;
      f.header_ok = DecodeSegmentHeader(header, kSegmentHeaderBytes, &f.header).ok() && f.header.segment_id == id;
    }
    files.push_back(f);
  }
  uint64_t seed = listed.header_ok ? listed.seed : 0;
  if (seed == 0) {
    std::map<uint64_t, size_t> votes;
    for (const auto& f : files)
      if (f.header_ok) ++votes[f.header.seed];
    size_t best = 0;
    for (const auto& f : files)
      if (f.header_ok && votes[f.header.seed] > best) best = votes[seed = f.header.seed];
  }
  const int active = PickActiveSegment(files, seed);
  std::string scratch;
  for (size_t i = 0; i < files.size(); ++i) {
    const SegmentFileInfo& f = files[i];
    const std::string seg = "segment " + U(f.id) + ": ";
    // Its seal in the MANIFEST (0: none): a sealed segment is never the one
    // appended to (recovery creates a new one).
    const auto listed_seg = listed.segments.find(f.id);
    const uint64_t sealed = listed_seg != listed.segments.end() ? listed_seg->second.sealed_bytes : 0;
    if (f.size <= kSegmentHeaderBytes && !f.header_ok) {
      // A finished hint of a longer segment says the file was cut (as
      // recovery reads it); so does a seal in the MANIFEST past its header
      // (read below as a sealed segment cut short); otherwise its creation
      // was.
      uint64_t recorded = 0;
      Status hs = LoadHintFile(env, JoinPath(dir, HintFileName(f.id)), f.id, f.size, limits, [](const HintEntry&) {},
                               &recorded);
      if (hs.Is(Code::kCorruption) && recorded > f.size) {
        finding(seg + U(f.size) + " bytes, but its finished hint describes " + U(recorded) +
                ": the file was cut, the records in its last " + U(recorded - f.size) + " bytes are lost");
        ++report.damaged;
        continue;
      }
      if (CreationCutShort(f, sealed)) {
        finding(seg + U(f.size) + " bytes, no valid header, no record (removed on open)");
        continue;
      }
    }
    if (!f.header_ok) {
      finding(seg + "damaged header");
      ++report.damaged;
    } else if (f.header.seed != seed) {
      finding(seg + "belongs to another database (seed differs)");
      ++report.damaged;
      continue;
    }
    const bool is_active = static_cast<int>(i) == active && sealed == 0;
    const bool seq_ordered = f.header_ok && (f.header.flags & kSegmentFlagSealedAtBirth) == 0;
    // Read through a window, as recovery reads it: a few MiB at a time.
    const std::string path = JoinPath(dir, SegmentFileName(f.id));
    auto file = env.OpenFile(path, OpenMode::kRead);
    if (!file.ok()) return file.status();
    SegmentWindow window(*file.value(), path, f.size);
    // The active segment's hint, when a clean close finished it, records how
    // long the segment was: a tail before that length is damage, and a file
    // shorter than it was cut (as recovery reads them).
    uint64_t closed_at = 0;
    if (is_active) {
      Status hs = LoadHintFile(env, JoinPath(dir, HintFileName(f.id)), f.id, kAnySegmentSize, limits,
                               [](const HintEntry&) {}, &closed_at);
      if (!hs.ok() && !hs.Is(Code::kNotFound) && !hs.Is(Code::kCorruption)) return hs;
      if (!hs.ok()) closed_at = 0;
    }
    // Which keys damaged bytes held: as the segment's hint names them (the
    // one a clean close finished, for the active segment), loaded at the
    // first damage; else as the bytes read.
    std::optional<HintNames> hint_names;
    std::optional<HintNames> written_names;  // the hint as written, for a damaged record's proven key
    Status hint_error;
    auto keys_of = [&](const ScanItem& item) -> std::string {
      if (!hint_names && (!is_active || closed_at > 0)) {
        auto loaded = HintNames::Load(env, JoinPath(dir, HintFileName(f.id)), f.id,
                                      is_active ? closed_at : kAnySegmentSize, limits);
        if (!loaded.ok()) hint_error = loaded.status();
        hint_names = loaded.ok() ? std::move(loaded.value()) : HintNames{};
      }
      std::string keys;
      if (hint_names && hint_names->usable()) {
        for (const NamedRecord& n : hint_names->In(item.offset, item.offset + item.bytes))
          keys += (keys.empty() ? "" : ", ") + Quoted(n.key);
        if (!keys.empty()) return "; its hint names key(s) " + keys;
      }
      if (item.event == ScanEvent::kDamagedRecord && item.record != nullptr) {
        // A hint no clean close finished (or a damaged one) names the key
        // its record's checksum proves, as recovery indexes it.
        if (!written_names) {
          auto loaded = HintNames::LoadAsWritten(env, JoinPath(dir, HintFileName(f.id)), f.id, limits);
          if (!loaded.ok()) hint_error = loaded.status();
          written_names = loaded.ok() ? std::move(loaded.value()) : HintNames{};
        }
        if (const NamedRecord* n = written_names->ProvenAt(item.offset, item.header, item.record))
          return "; key " + Quoted(n->key) + " as its hint names it (its key bytes are damaged: its checksum proves it)";
      }
      if (item.event == ScanEvent::kDamagedRecord)
        return "; key " + Quoted(item.key) + (item.header_trusted ? "" : " (by its lengths)") + " as its bytes read";
      return "";
    };
    auto scan = ScanSegment(window, is_active, seq_ordered, limits, [&](const ScanItem& item) {
      switch (item.event) {
        case ScanEvent::kRecord:
          if (item.header.type == RecordType::kPut) {
            const char* body = item.record + kRecordHeaderBytes + item.header.key_len + item.header.meta_len;
            Status ds = DecodeValue(item.header.codec, std::string_view(body, item.header.stored_len),
                                    item.header.raw_len, limits.max_value_bytes, &scratch);
            if (!ds.ok()) {
              finding(seg + "record at offset " + U(item.offset) + ": value does not decode: " + ds.ToString());
              ++report.damaged;
              return;
            }
          }
          ++report.records;
          break;
        case ScanEvent::kDamagedRecord:
          finding(seg + "damaged record at offset " + U(item.offset) + " (seq " + U(item.header.seq) +
                  "): " + item.why.ToString() + keys_of(item));
          ++report.damaged;
          break;
        case ScanEvent::kCorruptBytes:
          finding(seg + "corrupt record at offset " + U(item.offset) + " (" + U(item.bytes) +
                  " bytes skipped): " + item.why.ToString() + keys_of(item));
          ++report.damaged;
          break;
        case ScanEvent::kTornTail:
          if (item.offset < std::min(closed_at, f.size)) break;  // damage: below
          finding(seg + "torn tail at offset " + U(item.offset) + " (" + U(item.bytes) +
                  " bytes, cut on open): " + item.why.ToString());
          break;
        case ScanEvent::kZeroTail:
          // The active segment's preallocated room: the end of its log. On a
          // sealed segment, judged below with its hint.
          break;
      }
    });
    if (!scan.ok()) return scan.status();
    if (!hint_error.ok()) return hint_error;
    const ScanSummary& sum = scan.value();
    if (sealed != 0 && f.size < sealed) {
      ScanItem lost;  // the records its hint names from where the valid ones end
      lost.event = ScanEvent::kCorruptBytes;
      lost.offset = sum.valid_end;
      lost.bytes = sealed - sum.valid_end;
      const std::string keys = keys_of(lost);
      if (!hint_error.ok()) return hint_error;
      finding(seg + U(f.size) + " bytes, sealed at " + U(sealed) + " (MANIFEST): the file was cut, the records in " +
              "its last " + U(sealed - f.size) + " bytes are lost" + keys);
      ++report.damaged;
    }
    if (is_active) {
      // The records the hint names from where the valid ones end.
      if (closed_at <= sum.valid_end) continue;
      ScanItem tail;
      tail.event = ScanEvent::kCorruptBytes;
      tail.offset = sum.valid_end;
      tail.bytes = closed_at - sum.valid_end;
      const std::string keys = keys_of(tail);
      if (!hint_error.ok()) return hint_error;
      if (closed_at > f.size) {
        finding(seg + U(f.size) + " bytes, but its finished hint describes " + U(closed_at) +
                ": the file was cut, the records in its last " + U(closed_at - f.size) + " bytes are lost" + keys);
        ++report.damaged;
      } else {
        finding(seg + "damaged records at offsets " + U(sum.valid_end) + " to " + U(closed_at) +
                " (its finished hint says its records end at " + U(closed_at) +
                "): not a torn tail; sealed there on open" + keys);
        ++report.damaged;
      }
    } else {
      // A hint describes the segment up to its last record, not a zero tail.
      Status hs = LoadHintFile(env, JoinPath(dir, HintFileName(f.id)), f.id, sum.valid_end, limits,
                               [](const HintEntry&) {});
      if (hs.Is(Code::kCorruption)) {
        finding(seg + "damaged hint: " + hs.ToString());
        ++report.damaged;
      } else if (!hs.ok() && !hs.Is(Code::kNotFound)) {
        return hs;
      }
      if (sum.valid_end < f.size) {
        // A sealed segment's cut is durable before its hint is finished and
        // its seal written: zeros after its records are a cut the device did
        // not keep when an intact hint or its seal ends there, records it may
        // have lost otherwise.
        const std::string zeros = U(f.size - sum.valid_end) + " zero bytes after the last record at offset " +
                                  U(sum.valid_end);
        if (hs.ok() || sealed == sum.valid_end) {
          finding(seg + zeros + " (a lost cut; its " + (hs.ok() ? "hint" : "seal") + " ends there; cut on open)");
        } else {
          finding(seg + zeros + " and no intact hint: records there may have been lost");
          ++report.damaged;
        }
      }
    }
  }
  if (have_manifest) {
    for (const auto& [id, birth] : listed.segments) {
      if (std::binary_search(ids.begin(), ids.end(), id)) continue;
      finding("segment " + U(id) + ": listed in the MANIFEST, file missing");
      ++report.damaged;
    }
  }
  return report;
}

}  // namespace kingx::engine
