// A drop-slow broadcast ring: the producer never waits, so it may
// overwrite a record while a subscriber copies it out. Every copy that
// intact() vouches for must be one the producer wrote whole; a torn copy
// is dropped (and counted in lost_records()), never data. QueueReader<T>
// does not read broadcast rings at all: it is refused at attach.
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <span>

#include "ring/shmring.h"
#include "tests/support.h"

namespace shmring {
namespace {

using Clock = std::chrono::steady_clock;
using testing::kHang;
using testing::ScopedRing;

// Large enough that a copy takes a while; every word holds the same value.
struct Element {
  std::uint64_t words[120];
};

bool whole(const Element& e) {
  for (std::uint64_t w : e.words) {
    if (w != e.words[0]) return false;
  }
  return true;
}

RingOptions lossy_ring() {
  RingOptions o;
  o.kind = Kind::broadcast;
  o.capacity = 4096;  // four elements: the producer laps the reader often
  o.max_consumers = 1;
  o.overrun = Overrun::drop_slow;
  return o;
}

TEST_CASE("queue: QueueReader and QueueWriter refuse a drop-slow ring") {
  ScopedRing ring(lossy_ring());
  auto reader = QueueReader<Element>::attach(ring.segment());
  REQUIRE_FALSE(reader);
  CHECK(reader.error().code == Errc::wrong_kind);
  auto writer = QueueWriter<Element>::attach(ring.segment());
  REQUIRE_FALSE(writer);
  CHECK(writer.error().code == Errc::wrong_kind);
  // The refusal took no cursor: the ring's only one is still free.
  CHECK(Subscriber::attach(ring.segment()));
}

TEST_CASE("drop-slow: a torn copy of an element is never intact") {
  ScopedRing ring(lossy_ring());
  Subscriber sub = testing::attach_subscriber(ring.segment());

  // The producer is another process (the copies race with its writes by
  // design: a seqlock's reader side, checked by intact(); TSan would see
  // that race between threads). It writes until it is killed.
  testing::ChildGuard children;
  testing::Beacon attached;
  const pid_t writer_pid = children.spawn([&]() -> int {
    auto writer = Producer::attach(ring.segment());
    if (!writer) return 2;
    attached.signal();
    Element e{};
    for (std::uint64_t seq = 1;; ++seq) {
      for (auto& w : e.words) w = seq;
      if (writer->write(std::as_bytes(std::span(&e, 1))) != Status::ok) {
        return 3;
      }
    }
  });
  REQUIRE(attached.wait(kHang));

  // A tear needs both processes on a CPU at once: on a loaded machine that
  // is rare, so read for a second and then on until the subscriber has
  // been lapped often (or ten seconds passed).
  std::uint64_t ok = 0, torn = 0, dropped = 0, overruns = 0;
  const auto start = Clock::now();
  for (;;) {
    const auto ran = Clock::now() - start;
    if (ran > std::chrono::seconds(10)) break;
    if (ran > std::chrono::seconds(1) && overruns >= 1000) break;
    const Peeked p = sub.peek(kHang);
    if (p.status == Status::overrun) {
      ++overruns;
      continue;
    }
    REQUIRE(p.status == Status::ok);
    Element e{};
    const std::uint32_t size = p.record.size;
    std::memcpy(&e, p.record.data, std::min<std::size_t>(size, sizeof e));
    if (sub.intact()) {
      ++ok;
      if (size != sizeof e || !whole(e)) ++torn;
    } else {
      ++dropped;
    }
    sub.release();
  }
  children.kill_and_reap(writer_pid);
  INFO("ok " << ok << ", dropped " << dropped << ", overruns " << overruns
             << ", lost records " << sub.lost_records());
  CHECK(torn == 0);
  CHECK(ok > 0);
  // The subscriber was lapped, so the loss path really ran.
  CHECK(overruns > 0);
  CHECK(sub.lost_records() > 0);
}

}  // namespace
}  // namespace shmring
