// Entity tags: formatting, list parsing, strong and weak comparison.
#include "http/etag.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace kingx::http {
namespace {

Precondition Parse(std::string_view v, bool* ok) {
  Precondition p;
  *ok = ParseEntityTags(v, &p);
  return p;
}

TEST_CASE("FormatEtag writes a quoted decimal sequence", "[http][etag]") {
  char buf[kMaxEtagChars];
  CHECK(std::string(buf, FormatEtag(0, buf)) == "\"0\"");
  CHECK(std::string(buf, FormatEtag(42, buf)) == "\"42\"");
  CHECK(std::string(buf, FormatEtag(UINT64_MAX, buf)) == "\"18446744073709551615\"");
  // Every digit count, at its edges, and a spread of values in between.
  std::vector<uint64_t> values = {UINT64_MAX - 1};
  for (uint64_t p = 1; p <= UINT64_MAX / 10; p *= 10) {
    for (uint64_t v : {p - 1, p, p + 1, 2 * p, 5 * p + 7, 10 * p - 1}) values.push_back(v);
  }
  for (uint64_t v = 0; v < 100000; v += 7) values.push_back(v);
  for (uint64_t v : values) {
    char out[kMaxEtagChars];
    const std::string tag(out, FormatEtag(v, out));
    INFO("value " << v);
    CHECK(tag == "\"" + std::to_string(v) + "\"");
  }
}

TEST_CASE("entity-tag lists parse with weak tags, foreign tags, OWS and empty elements", "[http][etag]") {
  bool ok = false;
  Precondition p = Parse(" \"1\", W/\"2\" ,, \"abc\",\"\" ", &ok);
  REQUIRE(ok);
  CHECK(p.kind == Precondition::Kind::kList);
  REQUIRE(p.tags.size() == 4);
  CHECK(p.tags[0].seq == 1);
  CHECK_FALSE(p.tags[0].weak);
  CHECK(p.tags[1].seq == 2);
  CHECK(p.tags[1].weak);
  CHECK(p.tags[2].foreign);
  CHECK(p.tags[3].foreign);
  CHECK(Parse("*", &ok).kind == Precondition::Kind::kAny);
  CHECK(ok);
}

TEST_CASE("malformed entity-tag lists are refused", "[http][etag]") {
  bool ok = true;
  for (const char* bad : {"", " ", ",", "5", "\"5", "W/5", "w/\"5\"", "\"5\" \"6\"", "*, \"5\"", "\"5\", *",
                          "\"a b\"", "\"5\"x", "W/ \"5\""}) {
    Parse(bad, &ok);
    INFO(bad);
    CHECK_FALSE(ok);
  }
}

TEST_CASE("several header lines combine; * cannot be combined", "[http][etag]") {
  Precondition p;
  CHECK(ParseEntityTags("\"1\"", &p));
  CHECK(ParseEntityTags("\"2\"", &p));
  CHECK(p.tags.size() == 2);
  CHECK_FALSE(ParseEntityTags("*", &p));
  Precondition any;
  CHECK(ParseEntityTags("*", &any));
  CHECK_FALSE(ParseEntityTags("\"1\"", &any));
}

TEST_CASE("tags of ours are canonical decimals only", "[http][etag]") {
  bool ok = false;
  CHECK(Parse("\"05\"", &ok).tags.at(0).foreign);
  CHECK(Parse("\"+5\"", &ok).tags.at(0).foreign);
  CHECK(Parse("\"18446744073709551616\"", &ok).tags.at(0).foreign);  // overflows uint64
  CHECK(Parse("\"0\"", &ok).tags.at(0).seq == 0);
}

TEST_CASE("strong comparison ignores weak tags; weak comparison accepts them", "[http][etag]") {
  bool ok = false;
  Precondition p = Parse("W/\"7\", \"9\"", &ok);
  CHECK(p.MatchesStrong(9));
  CHECK_FALSE(p.MatchesStrong(7));
  CHECK(p.MatchesWeak(7));
  CHECK(p.MatchesWeak(9));
  CHECK_FALSE(p.MatchesWeak(8));
  CHECK_FALSE(p.MatchesWeak(0));  // absent key
  Precondition any = Parse("*", &ok);
  CHECK(any.MatchesStrong(1));
  CHECK_FALSE(any.MatchesStrong(0));  // "*" needs an existing value
  Precondition none;
  CHECK_FALSE(none.MatchesStrong(1));
  CHECK_FALSE(none.MatchesWeak(1));
}

}  // namespace
}  // namespace kingx::http
