// TokenTable: tokens map back to their value, carry the table's prefix and
// generation, and a completion for an earlier user of a reused entry finds
// nothing.
#include "src/kv/token_table.h"

#include <catch2/catch.hpp>

#include <set>
#include <vector>

#include "src/ipc/token.h"

namespace kingx {
namespace {

struct Item {
  int n = 0;
};

TEST_CASE("a token finds the value it was issued for until it is erased", "[src][kv][token_table]") {
  TokenTable<Item> table(7, 3);
  Item a{1}, b{2};
  uint64_t ta = 0, tb = 0;
  REQUIRE(table.Insert(&a, &ta));
  REQUIRE(table.Insert(&b, &tb));
  CHECK(ta != tb);
  CHECK(table.size() == 2);
  CHECK(table.Find(ta) == &a);
  CHECK(table.Find(tb) == &b);
  table.Erase(ta);
  CHECK(table.Find(ta) == nullptr);
  CHECK(table.Find(tb) == &b);
  CHECK(table.size() == 1);
  table.Erase(ta);  // twice: no effect
  CHECK(table.size() == 1);
}

TEST_CASE("tokens carry the table's prefix and the worker slot generation", "[src][kv][token_table]") {
  TokenTable<Item> table(0xABC, 42);
  Item a;
  uint64_t t = 0;
  REQUIRE(table.Insert(&a, &t));
  CHECK(TokenPrefix(t) == 0xABC);
  CHECK(TokenGeneration(t) == 42);
  TokenTable<Item> other(5, 42);
  CHECK(other.Find(t) == nullptr);  // another table's token
}

TEST_CASE("a reused entry gets a new token: the old token no longer matches", "[src][kv][token_table]") {
  TokenTable<Item> table(1, 1);
  Item a{1}, b{2};
  uint64_t old_token = 0, new_token = 0;
  REQUIRE(table.Insert(&a, &old_token));
  table.Erase(old_token);
  REQUIRE(table.Insert(&b, &new_token));
  CHECK(new_token != old_token);
  CHECK(table.Find(old_token) == nullptr);
  CHECK(table.Find(new_token) == &b);
  table.Erase(old_token);  // a stale token does not erase the new user
  CHECK(table.Find(new_token) == &b);
}

TEST_CASE("a stale token matches no later write, however often entries are reused",
          "[src][kv][token_table][regression]") {
  // Regression: each entry carried an 8-bit tag bumped on reuse, and freed
  // entries were reused last-in first-out, so one entry taken and freed 256
  // times (writes refused before they were queued, aborted uploads, timeouts:
  // none of them gets a completion) issued the first token again. A completion
  // posted twice for that first write (its writer died after posting it, before
  // releasing the batch, and the next writer answered the batch "outcome
  // unknown") then answered the unrelated 257th write with a 503.
  TokenTable<Item> table(3, 5);
  Item first{0}, in_flight{1}, later{2};
  uint64_t stale = 0, held = 0;
  REQUIRE(table.Insert(&first, &stale));
  REQUIRE(table.Insert(&in_flight, &held));  // a write that stays in flight throughout
  table.Erase(stale);
  std::set<uint64_t> issued{stale, held};
  for (int i = 0; i < 100000; ++i) {
    uint64_t t = 0;
    REQUIRE(table.Insert(&later, &t));
    INFO("insertion " << i);
    REQUIRE(issued.insert(t).second);  // never a token issued before
    REQUIRE(table.Find(stale) == nullptr);
    table.Erase(stale);  // the repeated completion erases nothing
    REQUIRE(table.Find(t) == &later);
    REQUIRE(table.Find(held) == &in_flight);
    table.Erase(t);
  }
  CHECK(table.size() == 1);
}

TEST_CASE("the table grows with the writes in flight and keeps finding every one", "[src][kv][token_table]") {
  TokenTable<Item> table(9, 2);
  std::vector<Item> items(5000);
  std::vector<uint64_t> tokens(items.size());
  for (size_t i = 0; i < items.size(); ++i) REQUIRE(table.Insert(&items[i], &tokens[i]));
  for (size_t i = 0; i < items.size(); i += 3) table.Erase(tokens[i]);
  for (size_t i = 0; i < items.size(); ++i) CHECK(table.Find(tokens[i]) == (i % 3 == 0 ? nullptr : &items[i]));
  CHECK(table.capacity() == 16384);  // a power of two, at most half full
  // Memory follows the writes in flight, not the writes made.
  TokenTable<Item> sequential(1, 1);
  for (int i = 0; i < 10000; ++i) {
    uint64_t t = 0;
    REQUIRE(sequential.Insert(&items[0], &t));
    sequential.Erase(t);
  }
  CHECK(sequential.capacity() == 16);
}

TEST_CASE("a token from another generation is not found", "[src][kv][token_table]") {
  TokenTable<Item> table(1, 9);
  Item a;
  uint64_t t = 0;
  REQUIRE(table.Insert(&a, &t));
  CHECK(table.Find(MakeToken(10, TokenLocalId(t))) == nullptr);
}

TEST_CASE("ForEach visits every value in the table", "[src][kv][token_table]") {
  TokenTable<Item> table(0, 0);
  std::vector<Item> items(100);
  std::vector<uint64_t> tokens(items.size());
  for (size_t i = 0; i < items.size(); ++i) REQUIRE(table.Insert(&items[i], &tokens[i]));
  for (size_t i = 0; i < items.size(); i += 2) table.Erase(tokens[i]);
  std::set<Item*> seen;
  table.ForEach([&](Item* p) { seen.insert(p); });
  CHECK(seen.size() == 50);
  for (size_t i = 1; i < items.size(); i += 2) CHECK(seen.count(&items[i]) == 1);
}

}  // namespace
}  // namespace kingx
