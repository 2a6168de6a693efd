#include "engine/compress.h"

#include <catch2/catch.hpp>

#include <random>

using namespace kingx::engine;

namespace {

std::string Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

}  // namespace

TEST_CASE("compressible values above the threshold are stored as zstd and decode back", "[engine][compress]") {
  std::string raw(10000, 'a');
  std::string stored;
  REQUIRE(EncodeValue(raw, 1, 256, &stored) == Codec::kZstd);
  CHECK(stored.size() < raw.size() * 9 / 10);
  std::string out;
  REQUIRE(DecodeValue(Codec::kZstd, stored, raw.size(), 64 << 20, &out).ok());
  CHECK(out == raw);
}

TEST_CASE("small, incompressible or compression-off values are stored raw", "[engine][compress]") {
  std::string stored;
  CHECK(EncodeValue(std::string(255, 'a'), 1, 256, &stored) == Codec::kRaw);
  CHECK(stored.empty());
  CHECK(EncodeValue(Random(4096, 1), 1, 256, &stored) == Codec::kRaw);
  CHECK(EncodeValue(std::string(4096, 'a'), 0, 256, &stored) == Codec::kRaw);
  CHECK(EncodeValue("", 1, 0, &stored) == Codec::kRaw);
  std::string out;
  REQUIRE(DecodeValue(Codec::kRaw, "abc", 3, 100, &out).ok());
  CHECK(out == "abc");
  CHECK(DecodeValue(Codec::kRaw, "abc", 4, 100, &out).Is(Code::kCorruption));
}

TEST_CASE("a value compressed in parts as concatenated frames decodes whole", "[engine][compress]") {
  std::string raw;
  std::string stored;
  for (int part = 0; part < 5; ++part) {
    std::string p = std::string(3000, static_cast<char>('a' + part)) + Random(100, part);
    raw += p;
    REQUIRE(CompressFrame(p, 1, &stored).ok());
  }
  std::string out;
  REQUIRE(DecodeValue(Codec::kZstd, stored, raw.size(), 64 << 20, &out).ok());
  CHECK(out == raw);
  CHECK(stored.size() <= MaxStoredBytes(Codec::kZstd, raw.size()));
}

TEST_CASE("decompression is bounded by the recorded raw length", "[engine][compress]") {
  // A tiny frame that expands to 64 MiB of zeros: a decompression bomb when
  // the record claims a small size.
  std::string bomb;
  REQUIRE(CompressFrame(std::string(64 << 20, '\0'), 19, &bomb).ok());
  REQUIRE(bomb.size() < 64 * 1024);
  std::string out;
  CHECK(DecodeValue(Codec::kZstd, bomb, 1000, 64 << 20, &out).Is(Code::kCorruption));
  CHECK(out.size() <= 1000);
  // A record claiming gigabytes is refused before any allocation.
  CHECK(DecodeValue(Codec::kZstd, bomb, uint64_t{4} << 30, 64 << 20, &out).Is(Code::kCorruption));
  // Claiming more than the frame holds is also a mismatch.
  std::string small;
  REQUIRE(CompressFrame("hello hello hello", 1, &small).ok());
  CHECK(DecodeValue(Codec::kZstd, small, 18, 100, &out).Is(Code::kCorruption));
  REQUIRE(DecodeValue(Codec::kZstd, small, 17, 100, &out).ok());
  CHECK(out == "hello hello hello");
}

TEST_CASE("garbage in place of a zstd frame is corruption", "[engine][compress]") {
  std::string out;
  CHECK(DecodeValue(Codec::kZstd, Random(100, 7), 1000, 1 << 20, &out).Is(Code::kCorruption));
  CHECK(DecodeValue(Codec::kZstd, "", 10, 1 << 20, &out).Is(Code::kCorruption));
  std::string frame;
  REQUIRE(CompressFrame(std::string(5000, 'q'), 1, &frame).ok());
  frame.resize(frame.size() - 3);  // truncated frame
  CHECK(DecodeValue(Codec::kZstd, frame, 5000, 1 << 20, &out).Is(Code::kCorruption));
}
