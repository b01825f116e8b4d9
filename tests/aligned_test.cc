// Aligned reservations: reserve(size, align) hands out payloads
// whose address is a multiple of `align`, through wraps, trims and aborts,
// and every record still arrives in order with its bytes; on SPSC and MPSC
// rings (an MPSC claim covers the gap's padding record), with several
// producers racing, and with a claimer killed inside an aligned claim.
#include <atomic>
#include <csignal>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#include "tests/support.h"

namespace shmring {
namespace {

using namespace std::chrono_literals;

bool aligned(const void* p, std::size_t align) {
  return reinterpret_cast<std::uintptr_t>(p) % align == 0;
}

TEST_CASE("aligned reservations: every payload aligned, every record back") {
  const Kind kind = GENERATE(Kind::spsc, Kind::mpsc);
  const std::size_t align = GENERATE(16, 32, 64);
  const bool blocking = GENERATE(false, true);
  CAPTURE(static_cast<int>(kind), align, blocking);
  testing::ScopedRing ring({.kind = kind, .capacity = 4096});
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
    auto* cb = shmring::detail::control(ring.segment());
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
  const Kind kind = GENERATE(Kind::spsc, Kind::mpsc);
  CAPTURE(static_cast<int>(kind));
  testing::ScopedRing ring({.kind = kind, .capacity = 1 << 16});
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

  // MPSC: the same limits, aligned claims allowed.
  testing::ScopedRing mpsc({.kind = Kind::mpsc, .capacity = 4096});
  auto mp = Producer::attach(mpsc.segment());
  REQUIRE(mp);
  CHECK(mp->try_reserve(8, 128).status == Status::too_large);
  CHECK(mp->try_reserve(8, 48).status == Status::too_large);
  CHECK(mp->reserve(8, 128, 1ms).status == Status::too_large);
  auto r = mp->try_reserve(8, 64);
  REQUIRE(r);
  CHECK(aligned(r.bytes.data(), 64));
  mp->abort();
  CHECK(mp->try_reserve(max - 56, 64));
  mp->abort();
  CHECK(mp->try_reserve(max - 55, 64).status == Status::too_large);
  CHECK(mp->try_reserve(8, 8));
  mp->abort();
}

TEST_CASE("aligned MPSC claims from racing producers: aligned, in order "
          "per producer, nothing lost") {
  constexpr int kProducers = 3;
  constexpr std::uint64_t kEach = 4000;
  testing::ScopedRing ring({.kind = Kind::mpsc, .capacity = 1 << 13});
  auto c = Consumer::attach(ring.segment());
  REQUIRE(c);
  // Every producer attaches before any writes: one that finished and
  // closed before the next attached would end the stream early.
  std::vector<Producer> producers;
  for (int id = 0; id < kProducers; ++id) {
    auto p = Producer::attach(ring.segment());
    REQUIRE(p);
    producers.push_back(std::move(p).value());
  }
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int id = 0; id < kProducers; ++id) {
    threads.emplace_back([&, id] {
      Producer* p = &producers[static_cast<std::size_t>(id)];
      std::mt19937_64 rng(id);
      for (std::uint64_t seq = 0; seq < kEach; ++seq) {
        const std::size_t align = std::size_t{8} << (rng() % 4);  // 8..64
        const std::size_t size = 8 + rng() % 200;
        Reservation r = p->reserve(size, align, 10s);
        if (!r || !aligned(r.bytes.data(), align)) {
          ++failures;
          break;
        }
        testing::fill_payload(r.bytes, static_cast<std::uint32_t>(id), seq);
        p->commit(size, static_cast<std::uint16_t>(id));
      }
      p->close();  // the last one to close ends the stream
    });
  }
  std::uint64_t next[kProducers] = {};
  std::uint64_t got = 0;
  while (got < kProducers * kEach) {
    Peeked pk = c->peek(10s);
    INFO("peek: " << to_string(pk.status) << " after " << got << " records");
    REQUIRE(pk);
    const int id = pk.record.type;
    REQUIRE(id < kProducers);
    REQUIRE(testing::check_payload(pk.record.bytes(),
                                   static_cast<std::uint32_t>(id), next[id]));
    ++next[id];
    ++got;
    c->release();
  }
  for (auto& t : threads) t.join();
  CHECK(failures.load() == 0);
  CHECK(c->try_peek().status == Status::closed);
}

TEST_CASE("a producer killed inside an aligned MPSC claim: the consumer "
          "recovers the claim and reads on") {
  // At every claim step: before the intent, before the CAS, after it (the
  // claim's words still 0), after the busy header (gap padding unwritten),
  // claimed. The ring position forces both a gap and, at the wrap, a
  // wrap padding.
  const int step = GENERATE(range(0, detail::kClaimSteps));
  const std::uint64_t start = GENERATE(std::uint64_t{0}, 4096 - 40);
  CAPTURE(step, start);
  testing::ScopedRing ring({.kind = Kind::mpsc, .capacity = 4096});
  testing::set_positions(ring.segment(), start);
  auto c = Consumer::attach(ring.segment());
  REQUIRE(c);
  testing::ChildGuard children;
  const pid_t pid = children.spawn([&] {
    static int kill_at;
    kill_at = step;
    detail::claim_hook.store(+[](detail::ClaimStep s) {
      if (static_cast<int>(s) == kill_at) ::raise(SIGKILL);
    });
    auto p = Producer::attach(ring.segment());
    if (!p) return 1;
    auto r = p->reserve(100, 64, 10s);  // a gap before it
    return r ? 2 : 3;                   // not reached: killed in the claim
  });
  const auto st = testing::wait_child(pid, std::chrono::milliseconds(10000));
  children.forget(pid);
  REQUIRE(st.signal == SIGKILL);
  // A live producer writes after the dead claim; the consumer must skip
  // the recovered claim and read this record.
  auto p = Producer::attach(ring.segment());
  REQUIRE(p);
  auto r = p->reserve(40, 32, 10s);
  REQUIRE(r);
  REQUIRE(aligned(r.bytes.data(), 32));
  testing::fill_payload(r.bytes, 7, 1);
  p->commit(40);
  Peeked pk = c->peek(10s);
  REQUIRE(pk);
  CHECK(aligned(pk.record.data, 32));
  CHECK(testing::check_payload(pk.record.bytes(), 7, 1));
  c->release();
  CHECK(c->try_peek().status == Status::would_block);
}

}  // namespace
}  // namespace shmring
