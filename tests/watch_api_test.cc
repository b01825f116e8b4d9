// The read-only introspection behind `shm-ring watch`: a read-only attach
// takes no role, counters() reads positions, waiters and cursors, and
// walk_records() counts exactly what is unreleased, refuses what a reader
// released under it, and reports a garbage header as corrupt. Private
// segments: no key, nothing to collide.
#include <catch2/catch.hpp>
#include <cstring>

#include "tests/support.h"

namespace shmring {
namespace {

using testing::as_bytes;

TEST_CASE("a read-only attach looks and takes no role") {
  testing::ScopedRing ring({.kind = Kind::spsc, .capacity = 4096});
  Segment& seg = ring.segment();
  CHECK_FALSE(seg.read_only());
  auto ro = Segment::attach_id_read_only(seg.id());
  REQUIRE(ro);
  CHECK(ro->read_only());
  CHECK(ro->capacity() == 4096u);
  auto p = Producer::attach(*ro);
  REQUIRE_FALSE(p);
  CHECK(p.error().code == Errc::permission_denied);
  CHECK_THAT(p.error().message, Catch::Contains("read-only"));
  auto c = Consumer::attach(*ro);
  REQUIRE_FALSE(c);
  CHECK(c.error().code == Errc::permission_denied);
  // Nothing was registered: the read-write segment still takes both roles.
  CHECK(seg.info().producers.empty());
  Producer wp = testing::attach_producer(seg);
  REQUIRE(wp.write(as_bytes("hello")) == Status::ok);
  wp.flush();
  const RingCounters rc = ro->counters();
  CHECK(rc.tail == seg.info().tail);
  CHECK(rc.head == 0u);
  CHECK(rc.sane);
  CHECK_FALSE(rc.consumer_waiting);
  CHECK_FALSE(rc.producer_waiting);
}

TEST_CASE("walk_records counts unreleased records exactly") {
  for (Kind kind : {Kind::spsc, Kind::mpsc}) {
    testing::ScopedRing ring({.kind = kind, .capacity = 256});
    Segment& seg = ring.segment();
    auto ro = Segment::attach_id_read_only(seg.id());
    REQUIRE(ro);
    Producer p = testing::attach_producer(seg);
    Consumer c = testing::attach_consumer(seg);
    // Three rounds of 100-byte records (span 112): the third of each round
    // wraps, so padding records are walked and not counted.
    std::uint64_t records = 0, payload = 0;
    for (int round = 0; round < 3; ++round) {
      const std::uint64_t from = ro->counters().head;
      const std::string a(100, 'a'), b(20, 'b');
      REQUIRE(p.write(as_bytes(a)) == Status::ok);
      REQUIRE(p.write(as_bytes(b)) == Status::ok);
      p.flush();
      const RecordWalk w = ro->walk_records(from, std::nullopt, 1000);
      CHECK(w.intact);
      CHECK_FALSE(w.corrupt);
      CHECK(w.records == 2u);
      CHECK(w.payload == 120u);
      CHECK(w.end == ro->counters().tail);
      // Stopping at a boundary: the first record only.
      const RecordWalk first = ro->walk_records(from, from + 112, 1000);
      CHECK(first.reached_to);
      CHECK(first.records == 1u);
      CHECK(first.payload == 100u);
      records += w.records;
      payload += w.payload;
      // The consumer releases both: a walk from the old start is no
      // longer intact (its headers may be rewritten), from the new one it
      // is, and empty.
      REQUIRE(c.peek());
      REQUIRE(c.peek());
      c.release();
      CHECK_FALSE(ro->walk_records(from, std::nullopt, 1000).intact);
      const RecordWalk after =
          ro->walk_records(ro->counters().head, std::nullopt, 1000);
      CHECK(after.intact);
      CHECK(after.records == 0u);
    }
    CHECK(records == 6u);
    CHECK(payload == 360u);
  }
}

TEST_CASE("walk_records stops after max_steps and goes on from there") {
  testing::ScopedRing ring({.kind = Kind::spsc, .capacity = 4096});
  Segment& seg = ring.segment();
  Producer p = testing::attach_producer(seg);
  for (int i = 0; i < 10; ++i) {
    REQUIRE(p.write(as_bytes("0123456789abcdef")) == Status::ok);  // span 24
  }
  p.flush();
  const RecordWalk a = seg.walk_records(0, std::nullopt, 4);
  CHECK(a.intact);
  CHECK(a.records == 4u);
  CHECK(a.end == 96u);
  const RecordWalk b = seg.walk_records(a.end, std::nullopt, 100);
  CHECK(b.records == 6u);
  CHECK(b.payload == 96u);
  CHECK(b.end == 240u);
}

TEST_CASE("walk_records reports a garbage header as corrupt") {
  testing::ScopedRing ring({.kind = Kind::spsc, .capacity = 4096});
  Segment& seg = ring.segment();
  Producer p = testing::attach_producer(seg);
  for (int i = 0; i < 3; ++i) {
    REQUIRE(p.write(as_bytes("0123456789abcdef")) == Status::ok);
  }
  p.flush();
  // A hostile peer rewrites the second header: a span of 3 bytes.
  const std::uint64_t garbage = 3;
  std::memcpy(shmring::detail::ring_data(seg) + 24, &garbage, sizeof garbage);
  const RecordWalk w = seg.walk_records(0, std::nullopt, 100);
  CHECK(w.intact);
  CHECK(w.corrupt);
  CHECK(w.records == 1u);
}

TEST_CASE("counters lists broadcast cursors; drop-slow publishes counts") {
  testing::ScopedRing ring({.kind = Kind::broadcast,
                            .capacity = 4096,
                            .max_consumers = 4,
                            .overrun = Overrun::drop_slow});
  Segment& seg = ring.segment();
  auto ro = Segment::attach_id_read_only(seg.id());
  REQUIRE(ro);
  Subscriber c = testing::attach_subscriber(seg);
  Producer p = testing::attach_producer(seg);
  // Four laps of the ring: the producer overwrites, publishing its counts.
  const std::string rec(120, 'r');  // span 128
  for (int i = 0; i < 128; ++i) REQUIRE(p.write(as_bytes(rec)) == Status::ok);
  p.flush();
  const RingCounters rc = ro->counters();
  REQUIRE(rc.cursors.size() == 1u);
  CHECK(rc.cursors[0].pid == ::getpid());
  CHECK(rc.cursors[0].position == 0u);
  REQUIRE(rc.published);
  // The published count plus a walk from its position is every record.
  const RecordWalk w = ro->walk_records(rc.published_pos, std::nullopt, 1000);
  REQUIRE(w.intact);
  CHECK(rc.published_records + w.records == 128u);
  CHECK(rc.published_payload + w.payload == 128u * 120u);
  // The lapped cursor has nothing intact to walk from.
  const RecordWalk lapped = ro->walk_records(0, std::nullopt, 1000);
  CHECK_FALSE(lapped.intact);
  CHECK_FALSE(lapped.corrupt);
}

}  // namespace
}  // namespace shmring
