// QueueReader<T> on a drop-slow broadcast ring: the producer never waits,
// so it may overwrite an element while the reader copies it out. Every
// element pop() returns as ok must be one the producer wrote whole; a
// copy the producer tore is reported as Status::overrun (and counted in
// lost_records()), never as data.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <thread>

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
  auto writer = QueueWriter<Element>::attach(ring.segment());
  REQUIRE(writer);

  std::atomic<bool> stop{false};
  std::thread producer([&] {
    Element e{};
    // relaxed: a stop flag; nothing is published through it.
    for (std::uint64_t seq = 1; !stop.load(std::memory_order_relaxed); ++seq) {
      for (auto& w : e.words) w = seq;
      REQUIRE(writer->push(e, kHang) == Status::ok);
    }
    writer->close();
  });

  // A tear needs both threads on a CPU at once: on a loaded machine that
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
  // relaxed: see above; join() orders the rest.
  stop.store(true, std::memory_order_relaxed);
  producer.join();
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
