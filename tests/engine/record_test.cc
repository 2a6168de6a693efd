#include "engine/record.h"

#include <catch2/catch.hpp>

#include <cstring>

#include "engine/coding.h"
#include "engine/hash.h"

using namespace kingx::engine;

namespace {

const RecordLimits kLimits{1024, 64u << 20};

std::string Encode(uint64_t seq, RecordType type, Codec codec, std::string_view key, std::string_view meta,
                   std::string_view stored, uint64_t raw_len) {
  std::string out;
  EncodeRecord(seq, type, codec, key, meta, stored, raw_len, &out);
  return out;
}

// Rewrites header bytes [8, 40) through fn, then fixes the header checksum so
// that only the semantic check can reject the record.
std::string Mutate(std::string rec, const std::function<void(char*)>& fn) {
  fn(rec.data());
  PutFixed64(rec.data(), Checksum64(rec.data() + 8, kRecordHeaderBytes - 8));
  return rec;
}

}  // namespace

TEST_CASE("fixed-width fields are little-endian bytes at any offset, whatever the host", "[engine][record]") {
  // Offset 1: every field unaligned, as record and hint fields are.
  char buf[1 + 8] = {};
  PutFixed16(buf + 1, 0x0102);
  CHECK(std::memcmp(buf + 1, "\x02\x01", 2) == 0);
  PutFixed32(buf + 1, 0x01020304u);
  CHECK(std::memcmp(buf + 1, "\x04\x03\x02\x01", 4) == 0);
  PutFixed64(buf + 1, 0x0102030405060708ull);
  CHECK(std::memcmp(buf + 1, "\x08\x07\x06\x05\x04\x03\x02\x01", 8) == 0);
  CHECK(buf[0] == 0);

  const char bytes[] = "\xff\xf1\xf2\xf3\xf4\xf5\xf6\xf7\xf8";
  CHECK(GetFixed16(bytes + 1) == 0xf2f1u);
  CHECK(GetFixed32(bytes + 1) == 0xf4f3f2f1u);
  CHECK(GetFixed64(bytes + 1) == 0xf8f7f6f5f4f3f2f1ull);
}

TEST_CASE("a put record round-trips through encode and decode", "[engine][record]") {
  std::string key("k\0ey", 4);
  std::string rec = Encode(42, RecordType::kPut, Codec::kRaw, key, "text/plain", "value bytes", 11);
  REQUIRE(rec.size() == RecordBytes(key.size(), 10, 11));
  auto v = DecodeRecord(rec.data(), rec.size(), kLimits);
  REQUIRE(v.ok());
  CHECK(v->header.seq == 42);
  CHECK(v->header.type == RecordType::kPut);
  CHECK(v->header.codec == Codec::kRaw);
  CHECK(v->key == key);
  CHECK(v->meta == "text/plain");
  CHECK(v->stored == "value bytes");
  CHECK(v->header.raw_len == 11);
  CHECK(v->header.total_bytes() == rec.size());
}

TEST_CASE("a delete record and an empty value round-trip", "[engine][record]") {
  std::string del = Encode(7, RecordType::kDelete, Codec::kRaw, "gone", "", "", 0);
  auto d = DecodeRecord(del.data(), del.size(), kLimits);
  REQUIRE(d.ok());
  CHECK(d->header.type == RecordType::kDelete);
  CHECK(d->stored.empty());
  std::string empty = Encode(8, RecordType::kPut, Codec::kRaw, "e", "", "", 0);
  auto e = DecodeRecord(empty.data(), empty.size(), kLimits);
  REQUIRE(e.ok());
  CHECK(e->stored.empty());
}

TEST_CASE("a header written separately matches the one EncodeRecord writes", "[engine][record]") {
  std::string rec = Encode(9, RecordType::kPut, Codec::kZstd, "key", "m", "stored", 100);
  Checksum64Stream body;
  body.Update("key", 3);
  body.Update("m", 1);
  body.Update("stored", 6);
  char header[kRecordHeaderBytes];
  EncodeRecordHeader(9, RecordType::kPut, Codec::kZstd, 3, 1, 6, 100, body.Digest(), header);
  CHECK(std::memcmp(header, rec.data(), kRecordHeaderBytes) == 0);
}

TEST_CASE("records appended behind other bytes are the same bytes as records alone", "[engine][record]") {
  // A batch is encoded back to back into one buffer.
  std::string batch = "earlier bytes";
  const std::string value(300, 'v');
  EncodeRecord(10, RecordType::kPut, Codec::kRaw, "a", "text/plain", value, value.size(), &batch);
  EncodeRecord(11, RecordType::kDelete, Codec::kRaw, "b", "", "", 0, &batch);
  const std::string first = Encode(10, RecordType::kPut, Codec::kRaw, "a", "text/plain", value, value.size());
  const std::string second = Encode(11, RecordType::kDelete, Codec::kRaw, "b", "", "", 0);
  CHECK(batch == "earlier bytes" + first + second);
  auto v = DecodeRecord(batch.data() + 13, batch.size() - 13, kLimits);
  REQUIRE(v.ok());
  CHECK(v->stored == value);
}

TEST_CASE("every malformed record header is rejected", "[engine][record]") {
  const std::string good = Encode(5, RecordType::kPut, Codec::kRaw, "key", "ct", "value", 5);
  REQUIRE(DecodeRecord(good.data(), good.size(), kLimits).ok());
  auto rejected = [&](const std::string& rec) {
    RecordHeader h;
    return DecodeRecordHeader(rec.data(), rec.size(), kLimits, &h).Is(Code::kCorruption);
  };
  SECTION("any single flipped bit of the header fails the header checksum") {
    for (size_t bit = 0; bit < kRecordHeaderBytes * 8; ++bit) {
      std::string bad = good;
      bad[bit / 8] = static_cast<char>(bad[bit / 8] ^ (1 << (bit % 8)));
      INFO("bit " << bit);
      CHECK(rejected(bad));
    }
  }
  SECTION("a flipped bit of the body fails the body checksum") {
    for (size_t i = kRecordHeaderBytes; i < good.size(); ++i) {
      std::string bad = good;
      bad[i] ^= 0x10;
      CHECK(DecodeRecord(bad.data(), bad.size(), kLimits).status().Is(Code::kCorruption));
    }
  }
  SECTION("short buffers") {
    for (size_t n = 0; n < good.size(); ++n) CHECK(DecodeRecord(good.data(), n, kLimits).status().Is(Code::kCorruption));
  }
  SECTION("unknown flag bits, type or codec") {
    CHECK(rejected(Mutate(good, [](char* p) { p[35] = static_cast<char>(p[35] | 0x10); })));
    CHECK(rejected(Mutate(good, [](char* p) { p[35] = 0x00; })));               // type 0
    CHECK(rejected(Mutate(good, [](char* p) { p[35] = 0x03; })));               // type 3
    CHECK(rejected(Mutate(good, [](char* p) { p[35] = 0x01 | (2 << 2); })));    // codec 2
  }
  SECTION("non-zero reserved field") {
    CHECK(rejected(Mutate(good, [](char* p) { p[36] = 1; })));
  }
  SECTION("key length zero or above the limit") {
    CHECK(rejected(Mutate(good, [](char* p) { PutFixed16(p + 32, 0); })));
    CHECK(rejected(Mutate(good, [](char* p) { PutFixed16(p + 32, 1025); })));
  }
  SECTION("lengths that run past the buffer") {
    CHECK(rejected(Mutate(good, [](char* p) { PutFixed32(p + 24, 6); PutFixed32(p + 28, 6); })));
    CHECK(rejected(Mutate(good, [](char* p) { p[34] = static_cast<char>(200); })));
    CHECK(rejected(Mutate(good, [](char* p) { PutFixed32(p + 24, 0xffffffffu); PutFixed32(p + 28, 0xffffffffu); })));
  }
  SECTION("raw value whose stored length differs from its raw length") {
    CHECK(rejected(Mutate(good, [](char* p) { PutFixed32(p + 28, 4); })));
  }
  SECTION("raw length above the maximum value size") {
    std::string big = Mutate(good, [](char* p) { p[35] = 0x01 | (1 << 2); PutFixed32(p + 28, (64u << 20) + 1); });
    CHECK(rejected(big));
  }
  SECTION("compressed value with a stored length far above what its raw length allows") {
    std::string z = Encode(5, RecordType::kPut, Codec::kZstd, "key", "", std::string(300, 'x'), 10);
    CHECK(rejected(z));
  }
  SECTION("a delete that carries a value or meta") {
    std::string del = Encode(6, RecordType::kDelete, Codec::kRaw, "key", "", "", 0);
    CHECK(rejected(Mutate(del, [](char* p) { PutFixed32(p + 28, 1); })));
    CHECK(rejected(Mutate(del, [](char* p) { p[34] = 1; })));
  }
  SECTION("an all-zero header (a zero-filled tail)") {
    std::string zeros(64, '\0');
    CHECK(rejected(zeros));
  }
}

TEST_CASE("segment headers round-trip and reject damage", "[engine][record]") {
  SegmentHeader h;
  h.flags = kSegmentFlagSealedAtBirth;
  h.seed = 0x1234;
  h.segment_id = 77;
  h.seq_floor = 9000;
  char buf[kSegmentHeaderBytes];
  EncodeSegmentHeader(h, buf);
  SegmentHeader d;
  REQUIRE(DecodeSegmentHeader(buf, sizeof buf, &d).ok());
  CHECK(d.flags == h.flags);
  CHECK(d.seed == h.seed);
  CHECK(d.segment_id == 77);
  CHECK(d.seq_floor == 9000);
  CHECK(DecodeSegmentHeader(buf, sizeof buf - 1, &d).Is(Code::kCorruption));
  for (size_t i = 0; i < sizeof buf; ++i) {
    char bad[kSegmentHeaderBytes];
    std::memcpy(bad, buf, sizeof buf);
    bad[i] ^= 0x01;
    CHECK(DecodeSegmentHeader(bad, sizeof bad, &d).Is(Code::kCorruption));
  }
  // Unknown flags are rejected even with a valid checksum.
  PutFixed32(buf + 12, 2);
  PutFixed64(buf + 40, Checksum64(buf, 40));
  CHECK(DecodeSegmentHeader(buf, sizeof buf, &d).Is(Code::kCorruption));
}

TEST_CASE("segment file names parse back to their ids and nothing else parses", "[engine][record]") {
  CHECK(SegmentFileName(42) == "seg-00000042.kxd");
  CHECK(HintFileName(42) == "seg-00000042.hint");
  uint32_t id = 0;
  CHECK(ParseSegmentFileName("seg-00000042.kxd", &id));
  CHECK(id == 42);
  CHECK_FALSE(ParseSegmentFileName("seg-0000004x.kxd", &id));
  CHECK_FALSE(ParseSegmentFileName("seg-00000042.hint", &id));
  CHECK_FALSE(ParseSegmentFileName("seg-000000042.kxd", &id));
  CHECK_FALSE(ParseSegmentFileName("LOCK", &id));
}

TEST_CASE("a record whose key bytes were damaged is proven to be the key that makes its body checksum match",
          "[engine][record]") {
  const std::string key = "user:42";
  const std::string rec = Encode(9, RecordType::kPut, Codec::kRaw, key, "text/plain", std::string(300, 'v'), 300);
  RecordHeader h;
  REQUIRE(DecodeRecordHeader(rec.data(), rec.size(), kLimits, &h).ok());
  CHECK(RecordBodyMatchesKey(rec.data(), h, key));
  std::string damaged = rec;
  damaged[kRecordHeaderBytes + 3] ^= 0x5a;  // a key byte
  CHECK_FALSE(RecordBodyMatches(damaged.data(), h));
  CHECK(RecordBodyMatchesKey(damaged.data(), h, key));          // the key written there
  CHECK_FALSE(RecordBodyMatchesKey(damaged.data(), h, "user:43"));  // another key of the same length
  CHECK_FALSE(RecordBodyMatchesKey(damaged.data(), h, "user:4"));   // another length
  damaged[rec.size() - 1] ^= 0x01;  // a value byte too: nothing proves the key
  CHECK_FALSE(RecordBodyMatchesKey(damaged.data(), h, key));
}
