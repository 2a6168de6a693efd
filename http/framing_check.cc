// The second reading of request framing (see framing_check.h). Each check
// looks at one byte at a time except chunk-data, which is skipped in bulk
// (it is the only part that can be large).
#include "http/framing_check.h"

#include <algorithm>
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

}  // namespace

// ---------------------------------------------------------------- HeadCheck

bool HeadCheck::Refuse(std::string_view why) {
  if (error_.empty()) error_ = why;
  return false;
}

bool HeadCheck::Scan(std::span<const char> bytes) {
  if (failed()) return false;
  for (char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    if (prev_cr_ && c != '\n') return Refuse(kBareCrInHead);
    if (c == '\r') {
      prev_cr_ = true;  // the line ends at the LF that must follow
      continue;
    }
    if (c == '\n') {
      prev_cr_ = false;
      if (line_ == Line::kField) longest_field_line_ = std::max(longest_field_line_, line_bytes_);
      line_bytes_ = 0;
      if (line_ == Line::kRequest) {
        protocol_http_ = token_len_ >= 5 && std::memcmp(token_, "HTTP/", 5) == 0;
        line_ = Line::kField;
      }
      at_line_start_ = true;
      continue;
    }
    if (at_line_start_ && line_ == Line::kField && (c == ' ' || c == '\t')) {
      return Refuse("Obsolete line folding (obs-fold) in header fields is not accepted.");
    }
    at_line_start_ = false;
    ++line_bytes_;
    if (line_ == Line::kBeforeRequest) line_ = Line::kRequest;
    if (line_ == Line::kRequest) {
      if (c == ' ') {
        token_len_ = 0;
      } else {
        if (token_len_ < sizeof(token_)) token_[token_len_] = static_cast<char>(c);
        if (token_len_ < 255) ++token_len_;
      }
    }
  }
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
