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

TEST_CASE("a value whose frames save 10% is stored as zstd, also right at the limit", "[engine][compress]") {
  // Values of a random prefix and a repeated tail around the 10% line (one
  // frame, several frames): EncodeValue keeps zstd exactly when the frames
  // CompressFrames makes (a buffer of zstd's bound) fit 90% of the value.
  int near_limit = 0;
  for (size_t n : {256u, 257u, 300u, 777u, 4096u, 70000u, 200000u}) {
    for (int pct = 70; pct <= 95; ++pct) {
      std::string raw = Random(n * pct / 100, static_cast<uint32_t>(n * 100 + pct));
      while (raw.size() < n) raw += "abcd";
      raw.resize(n);
      std::string frames;
      REQUIRE(CompressFrames(raw, 1, &frames).ok());
      const size_t limit = n - n / 10;
      if (frames.size() <= limit && frames.size() + 16 > limit) ++near_limit;
      std::string stored;
      const Codec codec = EncodeValue(raw, 1, 256, &stored);
      INFO("n " << n << " random " << pct << "% frames " << frames.size() << " limit " << limit);
      CHECK(codec == (frames.size() <= limit ? Codec::kZstd : Codec::kRaw));
      if (codec == Codec::kZstd) CHECK(stored == frames);
    }
  }
  CHECK(near_limit >= 5);  // the cases that fail in a buffer of exactly the limit
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

namespace {

// Decodes a whole value through ValueDecoder with pieces of at most
// max_piece bytes, checking the contract of every call.
Status DecodeInPieces(Codec codec, std::string_view stored, uint64_t raw_len, size_t max_piece, std::string* out,
                      size_t* largest_context = nullptr) {
  ValueDecoder d(codec, stored, raw_len);
  std::string buf;
  out->clear();
  for (int guard = 0; guard < 1'000'000; ++guard) {
    std::string_view piece;
    Status s = d.Next(max_piece, &buf, &piece);
    if (!s.ok()) return s;
    if (largest_context != nullptr) *largest_context = std::max(*largest_context, d.ContextBytes());
    if (piece.empty()) {
      REQUIRE(d.Done());
      return Status::OK();
    }
    REQUIRE(piece.size() <= max_piece);
    out->append(piece);
  }
  FAIL("the decoder never finished");
  return Status::OK();
}

std::string Text(size_t n, uint32_t seed) {
  // Compressible but not trivially: words from a small vocabulary.
  static const char* kWords[] = {"alpha ", "beta ", "gamma ", "delta ", "kingx ", "value ", "frame ", "zstd "};
  std::mt19937 rng(seed);
  std::string s;
  while (s.size() < n) s += kWords[rng() % 8];
  s.resize(n);
  return s;
}

}  // namespace

TEST_CASE("values are compressed in frames of at most kFrameRawBytes, each decodable alone", "[engine][compress]") {
  const std::string raw = Text(5 * kFrameRawBytes + 123, 3);
  std::string stored;
  REQUIRE(EncodeValue(raw, 1, 256, &stored) == Codec::kZstd);
  std::string parts;
  REQUIRE(CompressFrames(raw, 1, &parts).ok());
  for (const std::string* s : {&stored, &parts}) {
    std::string out;
    REQUIRE(DecodeValue(Codec::kZstd, *s, raw.size(), 64 << 20, &out).ok());
    CHECK(out == raw);
    // Decoded one piece of kFrameRawBytes at a time without any context kept.
    size_t context = 0;
    REQUIRE(DecodeInPieces(Codec::kZstd, *s, raw.size(), kFrameRawBytes, &out, &context).ok());
    CHECK(out == raw);
    CHECK(context == 0);
  }
}

TEST_CASE("ValueDecoder streams frames larger than a piece, as older versions wrote them", "[engine][compress]") {
  // One frame per 1 MiB part, as values stored before frames were bounded.
  std::string raw;
  std::string stored;
  for (int part = 0; part < 3; ++part) {
    const std::string p = Text((1 << 20) - part * 1000, 10 + part);
    raw += p;
    REQUIRE(CompressFrame(p, 1, &stored).ok());
  }
  for (size_t piece : {size_t{1} << 16, size_t{4096}, size_t{777}}) {
    std::string out;
    size_t context = 0;
    REQUIRE(DecodeInPieces(Codec::kZstd, stored, raw.size(), piece, &out, &context).ok());
    CHECK(out == raw);
    CHECK(context > 0);            // a streaming context was needed...
    CHECK(context < (4u << 20));   // ...holding about one window, never the value
  }
  // Mixed: small frames, a large one, small frames again.
  std::string mixed;
  std::string mixed_raw = Text(100000, 20) + Text(300000, 21) + Text(70000, 22);
  REQUIRE(CompressFrames(std::string_view(mixed_raw).substr(0, 100000), 1, &mixed).ok());
  REQUIRE(CompressFrame(std::string_view(mixed_raw).substr(100000, 300000), 1, &mixed).ok());
  REQUIRE(CompressFrames(std::string_view(mixed_raw).substr(400000), 1, &mixed).ok());
  std::string out;
  REQUIRE(DecodeInPieces(Codec::kZstd, mixed, mixed_raw.size(), kFrameRawBytes, &out).ok());
  CHECK(out == mixed_raw);
}

TEST_CASE("ValueDecoder serves raw values as views without copying", "[engine][compress]") {
  const std::string raw = Random(200000, 4);
  ValueDecoder d(Codec::kRaw, raw, raw.size());
  std::string buf;
  std::string_view piece;
  REQUIRE(d.Next(65536, &buf, &piece).ok());
  CHECK(piece.data() == raw.data());
  CHECK(piece.size() == 65536);
  CHECK(buf.empty());
  std::string out;
  REQUIRE(DecodeInPieces(Codec::kRaw, raw, raw.size(), 65536, &out).ok());
  CHECK(out == raw);
  CHECK(DecodeInPieces(Codec::kRaw, raw, raw.size() + 1, 65536, &out).Is(Code::kCorruption));
}

TEST_CASE("ValueDecoder finds corruption at the piece where it shows and never outgrows raw_len",
          "[engine][compress]") {
  const std::string raw = Text(4 * kFrameRawBytes, 5);
  std::string stored;
  REQUIRE(CompressFrames(raw, 1, &stored).ok());
  std::string out;
  // Recorded size smaller or larger than the frames hold.
  CHECK(DecodeInPieces(Codec::kZstd, stored, raw.size() - 1, kFrameRawBytes, &out).Is(Code::kCorruption));
  CHECK(out.size() < raw.size());
  CHECK(DecodeInPieces(Codec::kZstd, stored, raw.size() + 1, kFrameRawBytes, &out).Is(Code::kCorruption));
  // Truncated stored bytes, garbage after valid frames, garbage alone.
  CHECK(DecodeInPieces(Codec::kZstd, std::string_view(stored).substr(0, stored.size() - 5), raw.size(),
                       kFrameRawBytes, &out)
            .Is(Code::kCorruption));
  CHECK(DecodeInPieces(Codec::kZstd, stored + Random(40, 6), raw.size(), kFrameRawBytes, &out).Is(Code::kCorruption));
  CHECK(DecodeInPieces(Codec::kZstd, Random(100, 7), 1000, kFrameRawBytes, &out).Is(Code::kCorruption));
  // A bomb: one frame of 64 MiB of zeros recorded as 1000 bytes, streamed.
  std::string bomb;
  REQUIRE(CompressFrame(std::string(64 << 20, '\0'), 19, &bomb).ok());
  CHECK(DecodeInPieces(Codec::kZstd, bomb, 1000, kFrameRawBytes, &out).Is(Code::kCorruption));
  CHECK(out.size() <= 1000);
  // Once failed, it stays failed.
  ValueDecoder d(Codec::kZstd, Random(100, 8), 1000);
  std::string buf;
  std::string_view piece;
  CHECK(d.Next(100, &buf, &piece).Is(Code::kCorruption));
  CHECK(d.Next(100, &buf, &piece).Is(Code::kCorruption));
  CHECK(!d.Done());
}

TEST_CASE("an empty zstd value decodes to nothing", "[engine][compress]") {
  ValueDecoder d(Codec::kZstd, "", 0);
  CHECK(d.Done());
  std::string buf;
  std::string_view piece;
  REQUIRE(d.Next(10, &buf, &piece).ok());
  CHECK(piece.empty());
}
