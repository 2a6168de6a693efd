// The second reading of request framing (see framing_check.h). Each check
// looks at one byte at a time except chunk-data, which is skipped in bulk
// (it is the only part that can be large).
#include "http/framing_check.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace kingx::http {
namespace {

int HexValue(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr std::string_view kBareCrInHead = "The request head contains a CR that is not followed by LF.";
constexpr std::string_view kBareCrInChunked = "A chunked-body line ends in a CR that is not followed by LF.";

// The first CR or LF in [p, end), or end. Eight bytes per step: a byte of
// x equals b exactly when the same byte of x ^ (b * kOnes) is zero, and
// (v - kOnes) & ~v & kHighs marks the lowest zero byte of v exactly (bits
// above it may be wrong, which is why only the lowest mark is used).
const char* FindCrOrLf(const char* p, const char* end) {
  constexpr uint64_t kOnes = 0x0101010101010101u;
  constexpr uint64_t kHighs = 0x8080808080808080u;
  while (end - p >= 8) {
    uint64_t x;
    std::memcpy(&x, p, 8);
    const uint64_t cr = x ^ (kOnes * '\r');
    const uint64_t lf = x ^ (kOnes * '\n');
    const uint64_t hits = ((cr - kOnes) & ~cr & kHighs) | ((lf - kOnes) & ~lf & kHighs);
    if (hits != 0) {
      if constexpr (std::endian::native == std::endian::little) return p + std::countr_zero(hits) / 8;
      break;  // big-endian: the byte loop below finds it
    }
    p += 8;
  }
  while (p < end && *p != '\r' && *p != '\n') ++p;
  return p;
}

}  // namespace

// ---------------------------------------------------------------- HeadCheck

bool HeadCheck::Refuse(std::string_view why) {
  if (error_.empty()) error_ = why;
  return false;
}

// The bytes inside a line carry no framing: within the request line only
// its last space-separated token matters, within a field line only the
// length. So the scan jumps from line end to line end (eight bytes at a
// time) and walks byte by byte only over CR, LF and the first byte of
// each line, where the rules are. The state lives in locals while scanning:
// the input is char data, which may alias every member.
bool HeadCheck::Scan(std::span<const char> bytes) {
  if (failed()) return false;
  const char* p = bytes.data();
  const char* const end = p + bytes.size();
  Line line = line_;
  bool prev_cr = prev_cr_;
  bool at_line_start = at_line_start_;
  size_t line_bytes = line_bytes_;
  uint8_t token_len = token_len_;
  const auto save = [&] {
    line_ = line;
    prev_cr_ = prev_cr;
    at_line_start_ = at_line_start;
    line_bytes_ = line_bytes;
    token_len_ = token_len;
  };
  while (p < end) {
    if (!prev_cr && !at_line_start && line != Line::kBeforeRequest) {
      // Inside a line: everything up to the next CR or LF is line content.
      const char* stop = FindCrOrLf(p, end);
      const size_t n = static_cast<size_t>(stop - p);
      line_bytes += n;
      if (line == Line::kRequest && n > 0) {
        // The protocol is the last token: it restarts after the last SP
        // (searched backwards: the last token is short).
        const char* from = stop;
        while (from > p && from[-1] != ' ') --from;
        if (from > p) token_len = 0;
        const size_t add = static_cast<size_t>(stop - from);
        if (token_len == 0 && add >= sizeof(token_)) {
          std::memcpy(token_, from, sizeof(token_));
        } else {
          for (size_t i = 0; i < add && token_len + i < sizeof(token_); ++i) token_[token_len + i] = from[i];
        }
        token_len = static_cast<uint8_t>(std::min<size_t>(255, token_len + add));
      }
      p = stop;
      if (p == end) break;
    }
    const auto c = static_cast<unsigned char>(*p++);
    if (prev_cr && c != '\n') {
      save();
      return Refuse(kBareCrInHead);
    }
    if (c == '\r') {
      prev_cr = true;  // the line ends at the LF that must follow
      continue;
    }
    if (c == '\n') {
      prev_cr = false;
      if (line == Line::kField) longest_field_line_ = std::max(longest_field_line_, line_bytes);
      line_bytes = 0;
      if (line == Line::kRequest) {
        protocol_http_ = token_len >= 5 && std::memcmp(token_, "HTTP/", 5) == 0;
        line = Line::kField;
      }
      at_line_start = true;
      continue;
    }
    if (at_line_start && line == Line::kField && (c == ' ' || c == '\t')) {
      save();
      return Refuse("Obsolete line folding (obs-fold) in header fields is not accepted.");
    }
    at_line_start = false;
    ++line_bytes;
    if (line == Line::kBeforeRequest) line = Line::kRequest;
    if (line == Line::kRequest) {
      if (c == ' ') {
        token_len = 0;
      } else {
        if (token_len < sizeof(token_)) token_[token_len] = static_cast<char>(c);
        if (token_len < 255) ++token_len;
      }
    }
  }
  save();
  return true;
}

// ---------------------------------------------------------------- ChunkedCheck

bool ChunkedCheck::Refuse(std::string_view why) {
  if (error_.empty()) error_ = why;
  trailing_data_ = 0;
  return false;
}

bool ChunkedCheck::Scan(std::span<const char> bytes) {
  trailing_data_ = 0;
  if (failed()) return false;
  size_t i = 0;
  const size_t n = bytes.size();
  while (i < n) {
    if (state_ == State::kData) {
      const uint64_t take = std::min<uint64_t>(remaining_, n - i);
      i += take;
      remaining_ -= take;
      data_bytes_ += take;
      trailing_data_ += take;
      if (remaining_ == 0) state_ = State::kDataCr;
      continue;
    }
    const auto c = static_cast<unsigned char>(bytes[i++]);
    trailing_data_ = 0;
    switch (state_) {
      case State::kSizeFirst:
      case State::kSize: {
        const int digit = HexValue(c);
        if (digit >= 0) {
          if (size_ > (UINT64_MAX >> 4)) return Refuse("A chunk-size does not fit in 64 bits.");
          size_ = size_ * 16 + static_cast<uint64_t>(digit);
          state_ = State::kSize;
        } else if (state_ == State::kSizeFirst) {
          return Refuse("A chunk-size line does not start with a hexadecimal digit.");
        } else if (c == ';') {
          state_ = State::kExt;
        } else if (c == '\r') {
          state_ = State::kSizeLf;
        } else {
          return Refuse("A chunk-size is followed by something other than ';' or CRLF.");
        }
        break;
      }
      case State::kExt:
        if (c == '\r') {
          state_ = State::kSizeLf;
        } else if (c == '\n' || (c < 0x20 && c != '\t') || c == 0x7f) {
          return Refuse("A chunk extension contains a control character.");
        }
        break;
      case State::kSizeLf:
        if (c != '\n') return Refuse(kBareCrInChunked);
        if (size_ == 0) {
          state_ = State::kTrailerStart;  // that was the last-chunk
        } else {
          remaining_ = size_;
          state_ = State::kData;
        }
        size_ = 0;
        break;
      case State::kDataCr:
        if (c != '\r') return Refuse("Chunk data is not followed by CRLF.");
        state_ = State::kDataLf;
        break;
      case State::kDataLf:
        if (c != '\n') return Refuse("Chunk data is not followed by CRLF.");
        state_ = State::kSizeFirst;
        break;
      case State::kTrailerStart:
        if (c == '\r') {
          state_ = State::kEndLf;
        } else if (c == ' ' || c == '\t') {
          return Refuse("Obsolete line folding (obs-fold) in the trailer section is not accepted.");
        } else if (c == '\n') {
          return Refuse("A line of the trailer section ends in a bare LF.");
        } else {
          state_ = State::kTrailer;
        }
        break;
      case State::kTrailer:
        if (c == '\r') {
          state_ = State::kTrailerLf;
        } else if (c == '\n') {
          return Refuse("A line of the trailer section ends in a bare LF.");
        }
        break;
      case State::kTrailerLf:
        if (c != '\n') return Refuse(kBareCrInChunked);
        state_ = State::kTrailerStart;
        break;
      case State::kEndLf:
        if (c != '\n') return Refuse(kBareCrInChunked);
        state_ = State::kDone;
        break;
      case State::kDone:
        return Refuse("Bytes were read past the end of the chunked body.");
      case State::kData:
        break;  // handled above
    }
  }
  return true;
}

}  // namespace kingx::http
