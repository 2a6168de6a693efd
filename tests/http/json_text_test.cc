// JSON string escaping (http/json_text.h): what is escaped in each mode, and
// that a JSON parser reads back the characters the mode says.
#include "http/json_text.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <random>
#include <string>

namespace kingx::http {
namespace {

std::string Json(std::string_view s, JsonBytes bytes) {
  std::string out = "x";  // appends, never replaces
  AppendJsonString(&out, s, bytes);
  REQUIRE(out[0] == 'x');
  return out.substr(1);
}

TEST_CASE("JSON strings escape quotes, backslashes, control characters and DEL in both modes",
          "[http][json]") {
  using namespace std::string_literals;
  for (JsonBytes mode : {JsonBytes::kUtf8, JsonBytes::kLatin1}) {
    CHECK(Json("", mode) == "\"\"");
    CHECK(Json("a\"b\\c/d", mode) == "\"a\\\"b\\\\c/d\"");
    CHECK(Json("\n\t\x01\x1f\x7f"s + '\0', mode) == "\"\\u000a\\u0009\\u0001\\u001f\\u007f\\u0000\"");
  }
}

TEST_CASE("UTF-8 text passes through; Latin-1 bytes become their code points in ASCII", "[http][json]") {
  const std::string utf8 = "caf\xc3\xa9 \xe2\x82\xac";
  CHECK(Json(utf8, JsonBytes::kUtf8) == "\"" + utf8 + "\"");
  CHECK(nlohmann::json::parse(Json(utf8, JsonBytes::kUtf8)).get<std::string>() == utf8);

  const std::string latin1 = "caf\xe9 \xff\x80";
  const std::string written = Json(latin1, JsonBytes::kLatin1);
  CHECK(written == "\"caf\\u00e9 \\u00ff\\u0080\"");
  for (char c : written) CHECK(static_cast<unsigned char>(c) < 0x80);
  // Read back as the characters U+00E9, U+00FF, U+0080 (in UTF-8).
  CHECK(nlohmann::json::parse(written).get<std::string>() == "caf\xc3\xa9 \xc3\xbf\xc2\x80");
}

TEST_CASE("every byte value gives valid JSON in Latin-1 mode", "[http][json]") {
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  const std::string decoded = nlohmann::json::parse(Json(all, JsonBytes::kLatin1)).get<std::string>();
  std::string expected;  // each byte as the UTF-8 of the code point of the same value
  for (int c = 0; c < 256; ++c) {
    if (c < 0x80) {
      expected.push_back(static_cast<char>(c));
    } else {
      expected.push_back(static_cast<char>(0xC0 | (c >> 6)));
      expected.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  CHECK(decoded == expected);
}

// The escaping rules one byte at a time, as json_text.h states them.
std::string Reference(std::string_view s, JsonBytes bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c == 0x7f || (bytes == JsonBytes::kLatin1 && c >= 0x80)) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

TEST_CASE("JSON strings of random bytes follow the rules byte by byte in both modes", "[http][json]") {
  // Runs of plain bytes are copied at once: escapes at the start, the end,
  // side by side and between runs of every length.
  std::mt19937 rng(5);
  const char pick[] = {'a', 'b', '"', '\\', '\n', '\x7f', '\xc3', '\xa9', '\0', '/'};
  for (int round = 0; round < 2000; ++round) {
    std::string s(rng() % 40, ' ');
    for (char& c : s) c = rng() % 3 == 0 ? static_cast<char>(rng()) : pick[rng() % sizeof pick];
    for (JsonBytes mode : {JsonBytes::kUtf8, JsonBytes::kLatin1}) REQUIRE(Json(s, mode) == Reference(s, mode));
  }
}

}  // namespace
}  // namespace kingx::http
