// Aligned reservations (issue 12): reserve(size, align) hands out payloads
// whose address is a multiple of `align`, through wraps, trims and aborts,
// and every record still arrives in order with its bytes.
#include <cstdint>
#include <random>
#include <vector>

#include "tests/support.h"

namespace shmring {
namespace {

using namespace std::chrono_literals;

bool aligned(const void* p, std::size_t align) {
  return reinterpret_cast<std::uintptr_t>(p) % align == 0;
}

TEST_CASE("aligned reservations: every payload aligned, every record back") {
  const std::size_t align = GENERATE(16, 32, 64);
  const bool blocking = GENERATE(false, true);
  CAPTURE(align, blocking);
  testing::ScopedRing ring({.capacity = 4096});
  auto p = Producer::attach(ring.segment());
  auto c = Consumer::attach(ring.segment());
  REQUIRE(p);
  REQUIRE(c);
  std::mt19937_64 rng(align);
  std::uint64_t sent = 0, got = 0;
  for (int i = 0; i < 20000; ++i) {
    // Sizes from 0 to 300: most spans are not multiples of `align`, so
    // gaps and wraps are frequent in a 4 KiB ring.
    const std::size_t size = 8 + rng() % 293;
    auto* cb = ring.segment().control();
    // Blocking: never ask for more than the ring has free (one thread).
    const bool drain_first =
        blocking && cb->tail.load() - cb->head.load() > 4096 - 512;
    while (drain_first) {
      Peeked pk = c->try_peek();
      if (!pk) break;
      REQUIRE(testing::check_payload(pk.record.bytes(), 0, got));
      ++got;
      c->release();
    }
    Reservation r = blocking ? p->reserve(size, align, 1s)
                             : p->try_reserve(size, align);
    if (!r) {
      REQUIRE_FALSE(blocking);
      REQUIRE(r.status == Status::would_block);
    } else {
      REQUIRE(r.bytes.size() == size);
      REQUIRE(aligned(r.bytes.data(), align));
      if (rng() % 17 == 0) {
        p->abort();
      } else {
        testing::fill_payload(r.bytes, 0, sent);
        p->commit(size);
        ++sent;
      }
    }
    // Drain now and then so the ring fills and wraps.
    if (!r || rng() % 3 == 0) {
      for (;;) {
        Peeked pk = c->try_peek();
        if (!pk) break;
        REQUIRE(aligned(pk.record.data, align));
        REQUIRE(testing::check_payload(pk.record.bytes(), 0, got));
        ++got;
        c->release();
      }
    }
  }
  for (;;) {
    Peeked pk = c->try_peek();
    if (!pk) break;
    ++got;
    c->release();
  }
  CHECK(got == sent);
}

TEST_CASE("aligned reservation contents survive, trimmed commits too") {
  testing::ScopedRing ring({.capacity = 1 << 16});
  auto p = Producer::attach(ring.segment());
  auto c = Consumer::attach(ring.segment());
  REQUIRE(p);
  REQUIRE(c);
  for (std::uint64_t seq = 0; seq < 5000; ++seq) {
    const std::size_t size = 1 + seq % 200;
    const std::size_t used = size - seq % std::min<std::size_t>(size, 5);
    Reservation r = p->reserve(size, 64, 1s);
    REQUIRE(r);
    REQUIRE(aligned(r.bytes.data(), 64));
    testing::fill_payload(r.bytes.first(used), 1, seq);
    p->commit(used, static_cast<std::uint16_t>(seq & 0xff));
    Peeked pk = c->peek(1s);
    REQUIRE(pk);
    REQUIRE(pk.record.size == used);
    REQUIRE(pk.record.type == (seq & 0xff));
    REQUIRE(aligned(pk.record.data, 64));
    REQUIRE(testing::check_payload(pk.record.bytes(), 1, seq));
    c->release();
  }
}

TEST_CASE("aligned reservations: limits") {
  testing::ScopedRing ring({.capacity = 4096});
  auto p = Producer::attach(ring.segment());
  REQUIRE(p);
  CHECK(p->try_reserve(8, 128).status == Status::too_large);
  CHECK(p->try_reserve(8, 48).status == Status::too_large);
  CHECK(p->try_reserve(8, 0).status == Status::too_large);
  CHECK(p->reserve(8, 128, 1ms).status == Status::too_large);
  // The slack counts: the largest record with 64-byte alignment is 56
  // bytes smaller than the largest unaligned one.
  const std::size_t max = p->max_record_size();
  CHECK(p->try_reserve(max - 56, 64));
  p->abort();
  CHECK(p->try_reserve(max - 55, 64).status == Status::too_large);
  CHECK(p->try_reserve(max, 8));  // unaligned: unchanged
  p->abort();
  CHECK(p->try_reserve(max, 1));
  p->abort();

  testing::ScopedRing mpsc({.kind = Kind::mpsc, .capacity = 4096});
  auto mp = Producer::attach(mpsc.segment());
  REQUIRE(mp);
  CHECK(mp->try_reserve(8, 64).status == Status::too_large);
  CHECK(mp->try_reserve(8, 8));
  mp->abort();
}

}  // namespace
}  // namespace shmring
