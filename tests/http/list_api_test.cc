// The listing API's text: every query parameter and every way to get one
// wrong (the error names it), base64url cursors, UTF-8 validation, and the
// JSON page for text, binary and url-encoded keys.
#include "http/list_api.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <random>

namespace kingx::http {
namespace {

ListQuery Parse(std::string_view target) {
  ListQuery q;
  ListQueryError e;
  INFO(target);
  REQUIRE(ParseListQuery(target, 1024, &q, &e));
  return q;
}

ListQueryError Refuse(std::string_view target) {
  ListQuery q;
  ListQueryError e;
  INFO(target);
  REQUIRE_FALSE(ParseListQuery(target, 1024, &q, &e));
  return e;
}

}  // namespace

TEST_CASE("a listing query gives each parameter, percent-decoded, with defaults", "[http][list]") {
  ListQuery q = Parse("/v1/kv/");
  CHECK(q.prefix.empty());
  CHECK(q.start_after.empty());
  CHECK(q.limit == kListDefaultLimit);
  CHECK_FALSE(q.has_cursor);
  CHECK_FALSE(q.url_encoding);
  q = Parse("/v1/kv/?prefix=a%2Fb%00c+d&start_after=%FF&limit=7&encoding=url");
  CHECK(q.prefix == std::string("a/b\0c+d", 7));  // '+' is a plus
  CHECK(q.start_after == "\xff");
  CHECK(q.limit == 7);
  CHECK(q.url_encoding);
  CHECK(Parse("/v1/kv/?limit=1").limit == 1);
  CHECK(Parse("/v1/kv/?limit=1000").limit == 1000);
  CHECK(Parse("/v1/kv/?limit=0010").limit == 10);
  CHECK(Parse("/v1/kv/?&&prefix=x&").prefix == "x");
  CHECK(Parse("/v1/kv/?prefix").prefix.empty());
  CHECK(Parse("/v1/kv/?prefix=" + std::string(1024, 'p')).prefix.size() == 1024);
  q = Parse("/v1/kv/?cursor=AQID");
  CHECK(q.has_cursor);
  CHECK(q.cursor == "\x01\x02\x03");
}

TEST_CASE("every bad listing query is refused naming its parameter", "[http][list]") {
  CHECK(Refuse("/v1/kv/?limit=0").parameter == "limit");
  CHECK(Refuse("/v1/kv/?limit=1001").parameter == "limit");
  CHECK(Refuse("/v1/kv/?limit=-1").parameter == "limit");
  CHECK(Refuse("/v1/kv/?limit=+5").parameter == "limit");
  CHECK(Refuse("/v1/kv/?limit=abc").parameter == "limit");
  CHECK(Refuse("/v1/kv/?limit=").parameter == "limit");
  CHECK(Refuse("/v1/kv/?limit=99999999999999999999").parameter == "limit");
  CHECK(Refuse("/v1/kv/?limit=1&limit=2").parameter == "limit");
  CHECK(Refuse("/v1/kv/?prefix=%zz").parameter == "prefix");
  CHECK(Refuse("/v1/kv/?prefix=%4").parameter == "prefix");
  CHECK(Refuse("/v1/kv/?prefix=" + std::string(1025, 'p')).parameter == "prefix");
  CHECK(Refuse("/v1/kv/?start_after=" + std::string(1025, 'p')).parameter == "start_after");
  CHECK(Refuse("/v1/kv/?start_after=a&start_after=b").parameter == "start_after");
  CHECK(Refuse("/v1/kv/?encoding=json").parameter == "encoding");
  CHECK(Refuse("/v1/kv/?encoding=").parameter == "encoding");
  CHECK(Refuse("/v1/kv/?cursor=").parameter == "cursor");
  CHECK(Refuse("/v1/kv/?cursor=a*b").parameter == "cursor");
  CHECK(Refuse("/v1/kv/?cursor=AQID%3D").parameter == "cursor");  // padding is not ours
  CHECK(Refuse("/v1/kv/?cursor=A").parameter == "cursor");        // impossible length
  CHECK(Refuse("/v1/kv/?cursor=AR").parameter == "cursor");       // non-zero leftover bits
  CHECK(Refuse("/v1/kv/?cursor=AQID&start_after=x").parameter == "cursor");
  ListQueryError e = Refuse("/v1/kv/?prefx=a");
  CHECK(e.parameter == "prefx");
  CHECK(e.detail.find("unknown") != std::string::npos);
  CHECK(Refuse("/v1/kv/?%ff%fe=1").parameter == "(unprintable)");
}

TEST_CASE("base64url round-trips any bytes with one spelling each", "[http][list]") {
  std::mt19937_64 rng(5);
  for (int i = 0; i < 2000; ++i) {
    std::string bytes(rng() % 40, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    const std::string text = Base64UrlEncode(bytes);
    CHECK(text.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
          std::string::npos);
    std::string back;
    REQUIRE(Base64UrlDecode(text, &back));
    CHECK(back == bytes);
  }
}

TEST_CASE("UTF-8 validation refuses what JSON text must not carry", "[http][list]") {
  CHECK(IsValidUtf8(""));
  CHECK(IsValidUtf8("plain"));
  CHECK(IsValidUtf8("\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  CHECK(IsValidUtf8(std::string("nul\0inside", 10)));
  CHECK_FALSE(IsValidUtf8("\xff"));
  CHECK_FALSE(IsValidUtf8("\xc0\x80"));          // overlong NUL
  CHECK_FALSE(IsValidUtf8("\xe0\x80\xaf"));      // overlong '/'
  CHECK_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate
  CHECK_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  CHECK_FALSE(IsValidUtf8("\xe2\x82"));          // truncated
  CHECK_FALSE(IsValidUtf8("a\x80"));             // lone continuation
}

TEST_CASE("UTF-8 validation finds a bad byte after any length of ASCII", "[http][list]") {
  // ASCII is checked eight bytes at a time: a bad or good sequence at every
  // offset from a word boundary, and sequences that straddle one.
  for (size_t ascii = 0; ascii < 24; ++ascii) {
    const std::string lead(ascii, 'a');
    for (size_t trail : {size_t{0}, size_t{1}, size_t{7}, size_t{8}, size_t{13}}) {
      const std::string tail(trail, 'z');
      CHECK_FALSE(IsValidUtf8(lead + "\xff" + tail));
      CHECK_FALSE(IsValidUtf8(lead + "\xc0\x80" + tail));
      CHECK_FALSE(IsValidUtf8(lead + "\xe2\x82"));
      CHECK(IsValidUtf8(lead + "\xe2\x82\xac" + tail));
      CHECK(IsValidUtf8(lead + "\xf0\x9f\x98\x80" + tail));
      CHECK(IsValidUtf8(lead + tail));
    }
  }
}

TEST_CASE("a listing page is JSON that gives every key back unambiguously", "[http][list]") {
  engine::ListPage page;
  page.keys.push_back({"caf\xc3\xa9/\"q\"\\", 7, 12, "text/plain"});
  page.keys.push_back({std::string("bin\0\xff", 5), 8, 0, "application/octet-stream"});
  page.keys.push_back({std::string("ctl\n\x01", 5), 9, 3, "x/\xe9"});  // Latin-1 content type
  page.complete = false;
  auto body = nlohmann::json::parse(RenderListPage(page, false, "CUR-sor_"));
  REQUIRE(body["keys"].size() == 3);
  CHECK(body["keys"][0]["key"] == "caf\xc3\xa9/\"q\"\\");
  CHECK_FALSE(body["keys"][0].contains("key_encoding"));
  CHECK(body["keys"][0]["etag"] == "\"7\"");
  CHECK(body["keys"][0]["size"] == 12);
  CHECK(body["keys"][0]["content_type"] == "text/plain");
  CHECK(body["keys"][1]["key"] == "bin%00%FF");
  CHECK(body["keys"][1]["key_encoding"] == "url");
  CHECK(body["keys"][2]["key"] == std::string("ctl\n\x01", 5));
  CHECK(body["keys"][2]["content_type"] == "x/\xc3\xa9");
  CHECK(body["list_complete"] == false);
  CHECK(body["cursor"] == "CUR-sor_");

  page.complete = true;
  body = nlohmann::json::parse(RenderListPage(page, true, ""));
  CHECK(body["keys"][0]["key"] == "caf%C3%A9/%22q%22%5C");
  CHECK_FALSE(body["keys"][0].contains("key_encoding"));
  CHECK(body["keys"][1]["key"] == "bin%00%FF");
  CHECK(body["list_complete"] == true);
  CHECK_FALSE(body.contains("cursor"));

  // Each key with its own content type, whether it repeats its neighbour's or not.
  engine::ListPage mixed;
  for (const char* type : {"text/plain", "text/plain", "x/\xe9", "x/\xe9", "", "text/plain", "a/\"q\"", ""})
    mixed.keys.push_back({"k" + std::to_string(mixed.keys.size()), 1, 2, type});
  body = nlohmann::json::parse(RenderListPage(mixed, false, ""));
  REQUIRE(body["keys"].size() == mixed.keys.size());
  for (size_t i = 0; i < mixed.keys.size(); ++i) {
    std::string one;
    AppendListedKeyJson(mixed.keys[i], false, &one);
    CHECK(body["keys"][i] == nlohmann::json::parse(one));
    CHECK(body["keys"][i]["key"] == "k" + std::to_string(i));
  }
  CHECK(body["keys"][1]["content_type"] == "text/plain");
  CHECK(body["keys"][3]["content_type"] == "x/\xc3\xa9");
  CHECK(body["keys"][4]["content_type"] == "");
  CHECK(body["keys"][6]["content_type"] == "a/\"q\"");
  CHECK(body["keys"][7]["content_type"] == "");

  engine::ListPage empty;
  body = nlohmann::json::parse(RenderListPage(empty, false, ""));
  CHECK(body["keys"].empty());
  CHECK(body["list_complete"] == true);
}
}  // namespace kingx::http
