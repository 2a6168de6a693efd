#include "engine/options.h"

#include <catch2/catch.hpp>

using namespace kingx::engine;

TEST_CASE("sync modes parse and print back", "[engine][options]") {
  Options o;
  REQUIRE(ParseSyncMode("none", &o).ok());
  CHECK(o.sync == SyncMode::kNone);
  REQUIRE(ParseSyncMode("interval:250", &o).ok());
  CHECK(o.sync == SyncMode::kInterval);
  CHECK(o.sync_interval_ms == 250);
  CHECK(SyncModeString(o) == "interval:250");
  REQUIRE(ParseSyncMode("always", &o).ok());
  CHECK(o.sync == SyncMode::kAlways);
  CHECK(SyncModeString(o) == "always");
}

TEST_CASE("malformed sync modes are rejected and leave the options alone", "[engine][options]") {
  Options o;
  for (const char* bad : {"", "Always", "interval", "interval:", "interval:0", "interval:-5", "interval:10x",
                          "interval:99999999999", "sometimes"}) {
    INFO(bad);
    CHECK(ParseSyncMode(bad, &o).Is(Code::kInvalidArgument));
    CHECK(o.sync == SyncMode::kAlways);
  }
}

TEST_CASE("options out of range are rejected by name", "[engine][options]") {
  Options o;
  CHECK(ValidateOptions(o).ok());
  Options k = o;
  k.max_key_bytes = 70000;
  CHECK(ValidateOptions(k).Is(Code::kInvalidArgument));
  Options s = o;
  s.segment_bytes = 100;
  CHECK(ValidateOptions(s).Is(Code::kInvalidArgument));
  Options c = o;
  c.compression_level = 23;
  CHECK(ValidateOptions(c).Is(Code::kInvalidArgument));
  Options r = o;
  r.compaction_dead_ratio = 0;
  CHECK(ValidateOptions(r).Is(Code::kInvalidArgument));
}

TEST_CASE("sizes take plain bytes and K/M/G suffixes", "[engine][options]") {
  CHECK(ParseSize("0").value() == 0);
  CHECK(ParseSize("123").value() == 123);
  CHECK(ParseSize("4k").value() == 4096);
  CHECK(ParseSize("4K").value() == 4096);
  CHECK(ParseSize("64M").value() == 64ull << 20);
  CHECK(ParseSize("64MiB").value() == 64ull << 20);
  CHECK(ParseSize("2G").value() == 2ull << 30);
  CHECK(ParseSize("10b").value() == 10);
  CHECK_FALSE(ParseSize("").ok());
  CHECK_FALSE(ParseSize("M").ok());
  CHECK_FALSE(ParseSize("-1").ok());
  CHECK_FALSE(ParseSize("1.5M").ok());
  CHECK_FALSE(ParseSize("1T").ok());
  CHECK_FALSE(ParseSize("99999999999999999999").ok());
  CHECK_FALSE(ParseSize("17179869184G").ok());  // 2^34 GiB overflows 64 bits
}
