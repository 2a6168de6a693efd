// Tests of src/worker/read_batch.h: a held read waits while at most
// kSlices - 1 later reads arrive, however many reads one poll phase takes;
// reads are served in arrival order with their own bytes; Serve empties the
// batch.
#include "src/worker/read_batch.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

namespace kingx {
namespace {

// The owner's side: which reads were served, in which order, and how many
// reads had been kept (arrived) when each was served.
struct Owner {
  std::vector<size_t> served;        // connection ids, in serving order
  std::vector<std::string> bytes;    // what each served read held
  std::vector<size_t> kept_when;     // reads kept so far, at each serving
  size_t kept = 0;
  size_t serve_calls = 0;

  static void Serve(void* owner, std::span<const ReadBatch::Read> reads) {
    auto* o = static_cast<Owner*>(owner);
    ++o->serve_calls;
    for (const ReadBatch::Read& r : reads) {
      o->served.push_back(*static_cast<const size_t*>(r.conn));
      o->bytes.emplace_back(r.bytes.data(), r.bytes.size());
      o->kept_when.push_back(o->kept);
    }
  }
};

std::string RequestFor(size_t id) { return "GET /kv/key" + std::to_string(id) + " HTTP/1.1\r\n\r\n"; }

// One read of connection `id` lands in the batch's slice and is kept.
void Arrive(ReadBatch& batch, Owner& owner, const size_t& id) {
  const std::string req = RequestFor(id);
  const std::span<char> slice = batch.Slice();
  REQUIRE(slice.size() == ReadBatch::kSliceBytes);
  std::memcpy(slice.data(), req.data(), req.size());
  ++owner.kept;
  batch.Keep(const_cast<size_t*>(&id), req.size());
}

TEST_CASE("a held read is served before kSlices later reads arrive, however many reads a poll phase takes",
          "[worker][read_batch]") {
  // 10,000 busy connections: one poll phase reads every one of them before
  // the loop's check phase comes.
  constexpr size_t kReads = 10'000;
  std::vector<size_t> ids(kReads);
  for (size_t i = 0; i < kReads; ++i) ids[i] = i;
  Owner owner;
  ReadBatch batch(&Owner::Serve, &owner);
  for (size_t i = 0; i < kReads; ++i) Arrive(batch, owner, ids[i]);
  batch.Serve();  // the check phase
  CHECK(batch.held() == 0);

  REQUIRE(owner.served.size() == kReads);
  size_t worst_wait = 0;  // later reads that arrived before a read was served
  for (size_t k = 0; k < kReads; ++k) {
    const size_t id = owner.served[k];
    CHECK(id == k);  // arrival order
    worst_wait = std::max(worst_wait, owner.kept_when[k] - (id + 1));
  }
  CHECK(worst_wait == ReadBatch::kSlices - 1);
  CHECK(owner.serve_calls == (kReads + ReadBatch::kSlices - 1) / ReadBatch::kSlices);
  for (size_t k = 0; k < kReads; ++k) CHECK(owner.bytes[k] == RequestFor(owner.served[k]));
}

TEST_CASE("Serve hands over what is held, in order, then the batch fills again from its first slice",
          "[worker][read_batch]") {
  std::vector<size_t> ids = {7, 3, 9, 1, 5};
  Owner owner;
  ReadBatch batch(&Owner::Serve, &owner);
  const char* first_slice = batch.Slice().data();
  batch.Serve();  // nothing held: the ServeFn is not called
  CHECK(owner.serve_calls == 0);
  for (size_t i = 0; i < 3; ++i) Arrive(batch, owner, ids[i]);
  CHECK(batch.held() == 3);
  CHECK(owner.served.empty());
  CHECK(batch.Slice().data() == first_slice + 3 * ReadBatch::kSliceBytes);
  batch.Serve();  // e.g. a read the batch does not hold is about to be fed
  CHECK(owner.served == std::vector<size_t>{7, 3, 9});
  CHECK(owner.bytes == std::vector<std::string>{RequestFor(7), RequestFor(3), RequestFor(9)});
  CHECK(batch.held() == 0);
  CHECK(batch.Slice().data() == first_slice);
  for (size_t i = 3; i < ids.size(); ++i) Arrive(batch, owner, ids[i]);
  batch.Serve();
  CHECK(owner.served == std::vector<size_t>{7, 3, 9, 1, 5});
  CHECK(owner.serve_calls == 2);
}

}  // namespace
}  // namespace kingx
