// JSON string escaping (see json_text.h).
#include "http/json_text.h"

namespace kingx::http {
namespace {

// Bytes a JSON string holds as they are, for each way of reading them.
struct PlainTable {
  bool utf8[256];
  bool latin1[256];
  constexpr PlainTable() : utf8(), latin1() {
    for (int c = 0; c < 256; ++c) {
      const bool plain = c >= 0x20 && c != 0x7f && c != '"' && c != '\\';
      utf8[c] = plain;
      latin1[c] = plain && c < 0x80;
    }
  }
};
constexpr PlainTable kPlain;

}  // namespace

void AppendJsonString(std::string* out, std::string_view s, JsonBytes bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  const bool* plain = bytes == JsonBytes::kLatin1 ? kPlain.latin1 : kPlain.utf8;
  out->push_back('"');
  // Runs of plain bytes are copied at once; the bytes between them escaped.
  size_t i = 0;
  while (i < s.size()) {
    size_t run = i;
    while (run < s.size() && plain[static_cast<unsigned char>(s[run])]) ++run;
    out->append(s.data() + i, run - i);
    if (run == s.size()) break;
    const auto c = static_cast<unsigned char>(s[run]);
    if (c == '"' || c == '\\') {
      const char esc[2] = {'\\', static_cast<char>(c)};
      out->append(esc, 2);
    } else {
      const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
      out->append(esc, 6);
    }
    i = run + 1;
  }
  out->push_back('"');
}

}  // namespace kingx::http
