#include "tests/support.h"

namespace shmring {
namespace {

using testing::as_bytes;
using testing::as_string;

TEST_CASE("spsc smoke: write then read") {
  testing::ScopedRing ring({.kind = Kind::spsc, .capacity = 4096});
  auto p = Producer::attach(ring.segment());
  REQUIRE(p);
  auto c = Consumer::attach(ring.segment());
  REQUIRE(c);
  REQUIRE(p->try_write(as_bytes("hello")) == Status::ok);
  auto got = c->try_peek();
  REQUIRE(got);
  CHECK(as_string(got.record.bytes()) == "hello");
  c->release();
  CHECK(c->try_peek().status == Status::would_block);
  p->close();
  CHECK(c->try_peek().status == Status::closed);
}

}  // namespace
}  // namespace shmring
