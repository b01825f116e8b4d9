// QueueReader<T> on a drop-slow broadcast ring: the producer never waits,
// so it may overwrite an element while the reader copies it out. Every
// element pop() returns as ok must be one the producer wrote whole; a
// copy the producer tore is reported as Status::overrun (and counted in
// lost_records()), never as data.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>

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

TEST_CASE("queue: a torn element on a drop-slow ring is never ok") {
  RingOptions o;
  o.kind = Kind::broadcast;
  o.capacity = 4096;  // four elements: the producer laps the reader often
  o.max_consumers = 1;
  o.overrun = Overrun::drop_slow;
  ScopedRing ring(o);
  auto reader = QueueReader<Element>::attach(ring.segment());
  REQUIRE(reader);

  // The producer is another process (the copies race with its writes by
  // design: a seqlock's reader side, checked by intact(); TSan would see
  // that race between threads). It writes until it is killed.
  testing::ChildGuard children;
  testing::Beacon attached;
  const pid_t writer_pid = children.spawn([&]() -> int {
    auto writer = QueueWriter<Element>::attach(ring.segment());
    if (!writer) return 2;
    attached.signal();
    Element e{};
    for (std::uint64_t seq = 1;; ++seq) {
      for (auto& w : e.words) w = seq;
      if (writer->push(e) != Status::ok) return 3;
    }
  });
  REQUIRE(attached.wait(kHang));

  // A tear needs both processes on a CPU at once: on a loaded machine that
  // is rare, so read for a second and then on until the reader has been
  // lapped often (or ten seconds passed).
  std::uint64_t ok = 0, torn = 0, overruns = 0;
  const auto start = Clock::now();
  for (;;) {
    const auto ran = Clock::now() - start;
    if (ran > std::chrono::seconds(10)) break;
    if (ran > std::chrono::seconds(1) && overruns >= 1000) break;
    Element e;
    const Status s = reader->pop(&e, kHang);
    if (s == Status::ok) {
      ++ok;
      if (!whole(e)) ++torn;
    } else {
      REQUIRE(s == Status::overrun);
      ++overruns;
    }
  }
  children.kill_and_reap(writer_pid);
  INFO("ok " << ok << ", overruns " << overruns << ", lost records "
             << reader->consumer().lost_records());
  CHECK(torn == 0);
  CHECK(ok > 0);
  // The reader was lapped, so the loss path really ran.
  CHECK(overruns > 0);
  CHECK(reader->consumer().lost_records() > 0);
}

}  // namespace
}  // namespace shmring
