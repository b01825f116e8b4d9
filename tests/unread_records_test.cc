// Segment::unread_records(): the read-only count of records between the
// consumer's released position and the tail that shm-produce's exit-6
// message reports. Private segments: no key, nothing to collide.
#include <catch2/catch.hpp>

#include "tests/support.h"

namespace shmring {
namespace {

using testing::as_bytes;

TEST_CASE("unread_records counts committed, unreleased records") {
  for (Kind kind : {Kind::spsc, Kind::mpsc}) {
    testing::ScopedRing ring({.kind = kind, .capacity = 4096});
    Segment& seg = ring.segment();
    CHECK(seg.unread_records() == 0u);
    Producer p = testing::attach_producer(seg);
    for (int i = 0; i < 10; ++i) {
      REQUIRE(p.write(as_bytes("record " + std::to_string(i))) == Status::ok);
    }
    p.flush();
    CHECK(seg.unread_records() == 10u);
    Consumer c = testing::attach_consumer(seg);
    for (int i = 0; i < 3; ++i) REQUIRE(c.peek());
    // Peeked is not released: still unread for the next consumer.
    CHECK(seg.unread_records() == 10u);
    c.release();
    CHECK(seg.unread_records() == 7u);
  }
}

TEST_CASE("unread_records skips the padding of a wrap") {
  testing::ScopedRing ring({.kind = Kind::spsc, .capacity = 256});
  Segment& seg = ring.segment();
  Producer p = testing::attach_producer(seg);
  Consumer c = testing::attach_consumer(seg);
  const std::string big(72, 'x');  // span 80: the fourth one wraps
  for (int round = 0; round < 5; ++round) {
    REQUIRE(p.write(as_bytes(big)) == Status::ok);
    REQUIRE(p.write(as_bytes(big)) == Status::ok);
    CHECK(seg.unread_records() == 2u);
    REQUIRE(c.peek());
    REQUIRE(c.peek());
    c.release();
    CHECK(seg.unread_records() == 0u);
  }
}

TEST_CASE("unread_records refuses inconsistent positions") {
  testing::ScopedRing ring({.kind = Kind::spsc, .capacity = 4096});
  Segment& seg = ring.segment();
  // relaxed: a test writing the control block with no peer attached.
  shmring::detail::control(seg)->tail.store(3, std::memory_order_relaxed);  // unaligned
  CHECK_FALSE(seg.unread_records().has_value());
  shmring::detail::control(seg)->tail.store(8192, std::memory_order_relaxed);  // > capacity
  CHECK_FALSE(seg.unread_records().has_value());
  shmring::detail::control(seg)->tail.store(0, std::memory_order_relaxed);
  CHECK(seg.unread_records() == 0u);
}

}  // namespace
}  // namespace shmring
