// The std::map model (see model.h).
#include "tests/engine/support/model.h"

#include <catch2/catch.hpp>

namespace kingx::engine::test {

void CheckKey(TestDb& db, const Model& model, const std::string& key) {
  INFO("key " << key);
  auto v = db.reader().Get(key);
  auto it = model.find(key);
  if (it == model.end()) {
    REQUIRE(v.status().Is(Code::kNotFound));
  } else {
    REQUIRE(v.ok());
    REQUIRE(v->data == it->second.value);
    REQUIRE(v->seq == it->second.seq);
    REQUIRE(v->content_type == "text/plain");
  }
}

void CheckModel(TestDb& db, const Model& model, const std::vector<std::string>& all_keys) {
  for (const std::string& k : all_keys) CheckKey(db, model, k);
  REQUIRE(db.writer().Stats().keys == model.size());
  REQUIRE(db.index().counters().keys.load() == model.size());
}

CompactionOptions UnthrottledCompaction(uint32_t install_batch) {
  CompactionOptions c;
  c.rate_bytes_per_sec = 0;
  c.install_batch = install_batch;
  c.free_bytes = [](const std::string&) -> Result<uint64_t> { return uint64_t{1} << 40; };
  return c;
}

}  // namespace kingx::engine::test
