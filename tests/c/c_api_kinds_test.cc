// The C API on rings only C++ makes: a drop-slow broadcast ring is
// refused (its records may be overwritten while read, and the C API has
// no check of a copy).
#include <catch2/catch.hpp>
#include <cstring>
#include <string>

#include "ring/shmring.h"
#include "ring/shmring_c.h"
#include "tests/support.h"

namespace shmring {
namespace {

RingOptions broadcast(Overrun overrun) {
  RingOptions o;
  o.kind = Kind::broadcast;
  o.capacity = 4096;
  o.overrun = overrun;
  return o;
}

TEST_CASE("c api: a drop-slow broadcast ring is refused with a reason") {
  auto seg =
      Segment::create(testing::test_key(1), broadcast(Overrun::drop_slow));
  REQUIRE(seg);
  shmring_ring* r = nullptr;
  CHECK(shmring_open(seg->key(), nullptr, &r) == SHMRING_E_WRONG_KIND);
  CHECK(r == nullptr);
  CHECK(std::string(shmring_last_error()).find("drop-slow broadcast ring") !=
        std::string::npos);
  CHECK(seg->remove());
}

TEST_CASE("c api: overrun has a code of its own") {
  CHECK(SHMRING_OVERRUN != SHMRING_E_SYSTEM);
  CHECK(std::strlen(shmring_strerror(SHMRING_OVERRUN)) > 0);
  CHECK(std::string(shmring_strerror(SHMRING_OVERRUN)) !=
        shmring_strerror(SHMRING_E_SYSTEM));
}

}  // namespace
}  // namespace shmring
