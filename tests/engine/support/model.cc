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
  CheckCounters(db);
}

void CheckCounters(TestDb& db) {
  const WriterStats s = db.writer().Stats();
  const IndexCounters& c = db.index().counters();
  REQUIRE(c.keys.load() == s.keys);
  REQUIRE(c.segments.load() == s.segments);
  REQUIRE(c.live_bytes.load() == s.live_bytes);
  REQUIRE(c.dead_bytes.load() == s.dead_bytes);
}

CompactionOptions UnthrottledCompaction(uint32_t install_batch) {
  CompactionOptions c;
  c.rate_bytes_per_sec = 0;
  c.install_batch = install_batch;
  c.free_bytes = [](const std::string&) -> Result<uint64_t> { return uint64_t{1} << 40; };
  return c;
}

void PutLarge(TestDb& db, const std::string& key, const std::string& value) {
  WriteOp head;
  head.key = key;
  head.codec = Codec::kRaw;
  auto id = db.writer().BeginLarge(head);
  REQUIRE(id.ok());
  for (size_t off = 0; off < value.size(); off += 65536)
    REQUIRE(db.writer().AppendLarge(id.value(), value.substr(off, 65536)).ok());
  WriteResult r;
  db.writer().FinishLarge(id.value(), value.size(), &r);
  REQUIRE(r.status.ok());
}

}  // namespace kingx::engine::test
