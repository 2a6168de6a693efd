// Reading a segment that ends in zero bytes (the writer's preallocated room,
// engine/FORMAT.md): the zero tail ends the log and is never damage; a write
// cut short inside it is a torn tail of the active segment; a non-zero byte
// inside it is garbage as before.
#include "engine/segment_scan.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace kingx::engine;

namespace {

struct Built {
  std::string bytes;
  std::vector<uint64_t> starts;  // offset of each record
  uint64_t end = 0;              // just past the last record
};

// A segment header and `n` records of `value_len`-byte values, then `zeros`
// zero bytes. `value_fill`: the values' bytes (0 makes values that end in zeros).
Built Build(int n, size_t value_len, size_t zeros, char value_fill = 'v') {
  Built b;
  b.bytes.resize(kSegmentHeaderBytes);
  SegmentHeader h;
  h.seed = 7;
  h.segment_id = 1;
  h.seq_floor = 1;
  EncodeSegmentHeader(h, b.bytes.data());
  for (int i = 0; i < n; ++i) {
    b.starts.push_back(b.bytes.size());
    const std::string key = "key" + std::to_string(i);
    const std::string value(value_len, value_fill);
    EncodeRecord(10 + static_cast<uint64_t>(i), RecordType::kPut, Codec::kRaw, key, "", value, value.size(), &b.bytes);
  }
  b.end = b.bytes.size();
  b.bytes.append(zeros, '\0');
  return b;
}

struct Seen {
  std::vector<ScanEvent> events;
  std::vector<uint64_t> offsets;
  ScanSummary sum;
};

Seen Scan(const std::string& bytes, bool active) {
  Seen s;
  s.sum = ScanSegment(bytes.data(), bytes.size(), active, true, RecordLimits{}, [&](const ScanItem& item) {
    s.events.push_back(item.event);
    s.offsets.push_back(item.offset);
  });
  return s;
}

}  // namespace

TEST_CASE("a zero tail after a complete record ends the log, in any segment, and is no damage",
          "[engine][segment_scan][room]") {
  const bool active = GENERATE(true, false);
  const size_t zeros = GENERATE(size_t{1}, size_t{39}, size_t{40}, size_t{4096}, size_t{1} << 20);
  const Built b = Build(5, 100, zeros);
  const Seen s = Scan(b.bytes, active);
  INFO("active " << active << " zeros " << zeros);
  REQUIRE(s.events.size() == 6);
  for (int i = 0; i < 5; ++i) CHECK(s.events[static_cast<size_t>(i)] == ScanEvent::kRecord);
  CHECK(s.events[5] == ScanEvent::kZeroTail);
  CHECK(s.offsets[5] == b.end);
  CHECK(s.sum.valid_end == b.end);
  CHECK(s.sum.records == 5);
  CHECK(s.sum.damaged_records == 0);
  CHECK(s.sum.corrupt_ranges == 0);
}

TEST_CASE("without a zero tail the log runs to the end of the file as before", "[engine][segment_scan][room]") {
  const Built b = Build(3, 50, 0);
  const Seen s = Scan(b.bytes, true);
  CHECK(s.events == std::vector<ScanEvent>(3, ScanEvent::kRecord));
  CHECK(s.sum.valid_end == b.bytes.size());
}

TEST_CASE("a record whose value ends in zero bytes before the zero tail is a whole record",
          "[engine][segment_scan][room]") {
  const bool active = GENERATE(true, false);
  const Built b = Build(3, 200, 4096, '\0');
  const Seen s = Scan(b.bytes, active);
  REQUIRE(s.events.size() == 4);
  CHECK(s.events[2] == ScanEvent::kRecord);
  CHECK(s.events[3] == ScanEvent::kZeroTail);
  CHECK(s.sum.valid_end == b.end);
  CHECK(s.sum.damaged_records == 0);
}

TEST_CASE("a zero tail after a torn record is a torn tail of the active segment at every cut",
          "[engine][segment_scan][room]") {
  // The last record written only up to `cut` of its bytes, zeros after it
  // (the room it was written into).
  const Built whole = Build(4, 300, 0);
  const uint64_t last = whole.starts.back();
  for (uint64_t cut = 0; cut < whole.end - last; ++cut) {
    std::string bytes = whole.bytes;
    std::fill(bytes.begin() + static_cast<ptrdiff_t>(last + cut), bytes.end(), '\0');
    bytes.append(8192, '\0');
    const Seen s = Scan(bytes, true);
    INFO("cut at " << cut << " of " << whole.end - last);
    REQUIRE(s.events.size() == 4);
    for (int i = 0; i < 3; ++i) CHECK(s.events[static_cast<size_t>(i)] == ScanEvent::kRecord);
    // A cut that left only zero bytes (nothing of the record, or a header
    // that happens to start with zeros) is the zero tail itself.
    const bool nothing_left = AllZero(bytes.data() + last, bytes.size() - last);
    CHECK(s.events[3] == (nothing_left ? ScanEvent::kZeroTail : ScanEvent::kTornTail));
    CHECK(s.offsets[3] == last);
    CHECK(s.sum.valid_end == last);
    CHECK(s.sum.damaged_records == 0);
    CHECK(s.sum.corrupt_ranges == 0);
  }
}

TEST_CASE("a non-zero byte inside the zero tail: cut in the active segment, corruption in a sealed one",
          "[engine][segment_scan][room]") {
  const Built b = Build(4, 120, 4096);
  for (uint64_t at : {b.end, b.end + 1, b.end + 39, b.end + 40, b.end + 2000, b.bytes.size() - 1}) {
    std::string bytes = b.bytes;
    bytes[at] = 0x5a;
    INFO("byte at " << at - b.end << " past the last record");
    const Seen active = Scan(bytes, true);
    REQUIRE(active.events.size() == 5);
    CHECK(active.events[4] == ScanEvent::kTornTail);
    CHECK(active.offsets[4] == b.end);
    CHECK(active.sum.records == 4);
    CHECK(active.sum.damaged_records == 0);
    const Seen sealed = Scan(bytes, false);
    CHECK(sealed.sum.records == 4);
    CHECK(sealed.sum.corrupt_ranges == 1);
    CHECK(sealed.events[4] == ScanEvent::kCorruptBytes);
  }
}

TEST_CASE("a flipped byte inside the records is still found when a zero tail follows",
          "[engine][segment_scan][room]") {
  const Built b = Build(5, 150, 4096);
  SECTION("a value byte of a middle record: a damaged record, the rest read") {
    std::string bytes = b.bytes;
    bytes[b.starts[2] + 60] ^= 0x5a;
    for (bool active : {true, false}) {
      const Seen s = Scan(bytes, active);
      REQUIRE(s.events.size() == 6);
      CHECK(s.events[2] == ScanEvent::kDamagedRecord);
      CHECK(s.events[3] == ScanEvent::kRecord);
      CHECK(s.events[4] == ScanEvent::kRecord);
      CHECK(s.events[5] == ScanEvent::kZeroTail);
      CHECK(s.sum.damaged_records == 1);
    }
  }
  SECTION("a value byte of the last record: a damaged record (its value does not end in zeros)") {
    std::string bytes = b.bytes;
    bytes[b.starts[4] + 60] ^= 0x5a;
    for (bool active : {true, false}) {
      const Seen s = Scan(bytes, active);
      REQUIRE(s.events.size() == 6);
      CHECK(s.events[4] == ScanEvent::kDamagedRecord);
      CHECK(s.events[5] == ScanEvent::kZeroTail);
    }
  }
  SECTION("a header byte of a middle record: corrupt or salvaged, the rest read") {
    std::string bytes = b.bytes;
    bytes[b.starts[1] + 3] ^= 0x5a;
    const Seen s = Scan(bytes, false);
    CHECK(s.sum.records == 4);
    CHECK(s.sum.damaged_records + s.sum.corrupt_ranges == 1);
    CHECK(s.events.back() == ScanEvent::kZeroTail);
    CHECK(s.sum.valid_end == b.end);
  }
}

TEST_CASE("AllZero tells zero runs from the rest", "[engine][segment_scan][room]") {
  std::string z(100, '\0');
  CHECK(AllZero(z.data(), z.size()));
  CHECK(AllZero(z.data(), 0));
  for (size_t at : {size_t{0}, size_t{7}, size_t{8}, size_t{50}, size_t{99}}) {
    std::string b = z;
    b[at] = 1;
    CHECK_FALSE(AllZero(b.data(), b.size()));
  }
}

TEST_CASE("a sealed segment's only record with a damaged header is named, its seq the header's seq_floor",
          "[engine][segment_scan]") {
  // Values on both sides of the compression threshold and of 1 KiB.
  const size_t value_len = GENERATE(255, 256, 1024, 1025);
  Built b = Build(1, value_len, 0);
  // The header checksum, the seq, the stored length, the key length.
  const uint64_t where = GENERATE(2, 18, 25, 33);
  INFO("byte +" << where << " of a record of " << value_len << " value bytes");
  std::string bytes = b.bytes;
  bytes[b.starts[0] + where] ^= 0x5a;
  std::vector<ScanItem> items;
  std::vector<std::string> keys;
  auto scan = [&](bool seq_ordered) {
    items.clear();
    keys.clear();
    return ScanSegment(bytes.data(), bytes.size(), /*active=*/false, seq_ordered, RecordLimits{},
                       [&](const ScanItem& item) {
                         items.push_back(item);
                         keys.emplace_back(item.key);
                       });
  };
  ScanSummary sum = scan(true);
  REQUIRE(items.size() == 1);
  CHECK(items[0].event == ScanEvent::kDamagedRecord);
  CHECK_FALSE(items[0].header_trusted);
  CHECK(keys[0] == "key0");
  CHECK(items[0].header.seq == 1);  // Build's seq_floor: nothing else bounds it
  CHECK(items[0].bytes == b.end - kSegmentHeaderBytes);
  CHECK(sum.damaged_records == 1);
  // A segment sealed at birth (a large value, a compaction output): its
  // seq_floor is its records' lowest seq, so its only record's seq.
  sum = scan(false);
  REQUIRE(items.size() == 1);
  CHECK(items[0].event == ScanEvent::kDamagedRecord);
  CHECK(keys[0] == "key0");
  CHECK(items[0].header.seq == 1);
  CHECK(sum.damaged_records == 1);
  // Without a valid segment header nothing bounds its seq: corrupt bytes.
  bytes[20] ^= 0x5a;
  for (bool seq_ordered : {true, false}) {
    scan(seq_ordered);
    REQUIRE(items.size() == 1);
    CHECK(items[0].event == ScanEvent::kCorruptBytes);
  }
}
