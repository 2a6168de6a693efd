// JSON string escaping (see json_text.h).
#include "http/json_text.h"

namespace kingx::http {

void AppendJsonString(std::string* out, std::string_view s, JsonBytes bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  const bool latin1 = bytes == JsonBytes::kLatin1;
  out->push_back('"');
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(ch);
    } else if (c < 0x20 || c == 0x7f || (latin1 && c >= 0x80)) {
      out->append("\\u00");
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
    } else {
      out->push_back(ch);
    }
  }
  out->push_back('"');
}

}  // namespace kingx::http
