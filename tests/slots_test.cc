// The fixed-slot kind (Kind::slots) in one process and with forked
// peers: creation and validation, wrap-around, full and empty, the element
// size check at attach, end of stream, dead peers (producer and consumer),
// blocking waits, wait_fd, and Queue<T> on a record ring.
#include <poll.h>
#include <sys/wait.h>

#include <array>
#include <cstdint>
#include <thread>

#include "ring/shmring_c.h"
#include "tests/support.h"

namespace shmring {
namespace {

using namespace std::chrono_literals;
using testing::ScopedRing;

constexpr auto kHang = 10s;

RingOptions slots(std::uint64_t capacity, std::uint32_t size) {
  RingOptions o;
  o.kind = Kind::slots;
  o.capacity = capacity;
  o.slot_size = size;
  return o;
}

template <class T>
QueueWriter<T> writer(Segment& seg) {
  auto w = QueueWriter<T>::attach(seg);
  if (!w) FAIL(w.error().message);
  return std::move(w).value();
}
template <class T>
QueueReader<T> reader(Segment& seg) {
  auto r = QueueReader<T>::attach(seg);
  if (!r) FAIL(r.error().message);
  return std::move(r).value();
}

// A 12-byte element: not a power of two, so slot_count * 12 < capacity.
struct Triple {
  std::uint32_t a, b, c;
};
static_assert(sizeof(Triple) == 12);

TEST_CASE("slots: create validates the element size and info shows it") {
  CHECK_FALSE(validate(slots(4096, 0)) == std::nullopt);
  CHECK_FALSE(validate(slots(4096, 2049)) == std::nullopt);
  CHECK(validate(slots(4096, 2048)) == std::nullopt);
  RingOptions rec;
  rec.slot_size = 8;  // a record ring has no element size
  CHECK_FALSE(validate(rec) == std::nullopt);
  RingOptions many = slots(4096, 8);
  many.max_producers = 2;  // one producer, like spsc
  CHECK_FALSE(validate(many) == std::nullopt);

  ScopedRing ring(slots(4096, 12));
  Segment& seg = ring.segment();
  CHECK(seg.kind() == Kind::slots);
  CHECK(seg.slot_size() == 12);
  CHECK(seg.slot_count() == 4096 / 12);
  const SegmentInfo i = seg.info();
  CHECK(i.kind == Kind::slots);
  CHECK(i.slot_size == 12);
  CHECK(i.slot_count == 4096 / 12);
  CHECK(i.max_producers == 1);
  Segment again = ring.attach_again();
  CHECK(again.slot_size() == 12);
  CHECK(again.slot_count() == seg.slot_count());
}

TEST_CASE("slots: the element size is checked at attach") {
  ScopedRing ring(slots(4096, 4));
  auto w = QueueWriter<std::uint64_t>::attach(ring.segment());
  REQUIRE_FALSE(w);
  CHECK(w.error().code == Errc::wrong_kind);
  CHECK_THAT(w.error().message,
             Catch::Contains("4-byte elements") &&
                 Catch::Contains("sizeof(T) = 8"));
  auto r = QueueReader<std::uint64_t>::attach(ring.segment());
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::wrong_kind);
  // The record API is refused on a slots ring, with the way out named.
  auto p = Producer::attach(ring.segment());
  REQUIRE_FALSE(p);
  CHECK(p.error().code == Errc::wrong_kind);
  CHECK_THAT(p.error().message, Catch::Contains("QueueWriter"));
  auto c = Consumer::attach(ring.segment());
  REQUIRE_FALSE(c);
  CHECK(c.error().code == Errc::wrong_kind);
  CHECK(Producer::attach_slots(ring.segment(), 8).error().code ==
        Errc::wrong_kind);
  CHECK(Consumer::attach_slots(ring.segment(), 2).error().code ==
        Errc::wrong_kind);
  // A refused attach took no role: the right size still gets it.
  auto ok = QueueWriter<std::uint32_t>::attach(ring.segment());
  CHECK(ok);
  // And attach_slots on a record ring is refused.
  ScopedRing rec({.kind = Kind::spsc, .capacity = 4096});
  CHECK(Producer::attach_slots(rec.segment(), 8).error().code ==
        Errc::wrong_kind);
  CHECK(Consumer::attach_slots(rec.segment(), 8).error().code ==
        Errc::wrong_kind);
}

TEST_CASE("slots: a view of a producer of another element size refuses") {
  ScopedRing ring(slots(4096, 4));
  auto p = Producer::attach_slots(ring.segment(), 4);
  REQUIRE(p);
  QueueWriter<std::uint64_t> w(*p);
  CHECK(w.try_push(1) == Status::too_large);
  CHECK(w.push(1, 1ms) == Status::too_large);
  QueueWriter<std::uint32_t> good(*p);
  CHECK(good.try_push(7) == Status::ok);
  // The record calls on a slots handle refuse and touch nothing.
  CHECK(p->max_record_size() == 0);
  CHECK(p->try_reserve(0).status == Status::too_large);
  CHECK(p->try_reserve(4).status == Status::too_large);
  CHECK(p->reserve(4, 1ms).status == Status::too_large);
  CHECK(p->reserve(4, 64, 1ms).status == Status::too_large);
  auto c = Consumer::attach_slots(ring.segment(), 4);
  REQUIRE(c);
  CHECK(c->max_record_size() == 0);
  CHECK(c->try_peek().status == Status::too_large);
  CHECK(c->peek(1ms).status == Status::too_large);
  QueueReader<std::uint32_t> r(*c);
  std::uint32_t v = 0;
  CHECK(r.try_pop(&v) == Status::ok);
  CHECK(v == 7);
  // And the slot calls on a record handle.
  ScopedRing rec({.kind = Kind::spsc, .capacity = 4096});
  auto rp = Producer::attach(rec.segment());
  REQUIRE(rp);
  Status why = Status::ok;
  CHECK(rp->try_claim_slot(&why) == nullptr);
  CHECK(why == Status::too_large);
  CHECK(rp->slot_size() == 0);
}

TEST_CASE("slots: empty, full, in order, and wrap-around many times") {
  ScopedRing ring(slots(256, 12));
  Segment& seg = ring.segment();
  const std::uint64_t n = seg.slot_count();
  REQUIRE(n == 21);
  auto w = writer<Triple>(seg);
  auto r = reader<Triple>(seg);
  Triple t{};
  CHECK(r.try_pop(&t) == Status::would_block);
  std::uint32_t next_in = 0;
  std::uint32_t next_out = 0;
  // Rounds of different fill levels so every slot index is the wrap point
  // at some time.
  for (int round = 0; round < 50; ++round) {
    const std::uint64_t k = 1 + (round * 7) % n;
    for (std::uint64_t i = 0; i < k; ++i, ++next_in) {
      REQUIRE(w.try_push({next_in, ~next_in, next_in * 3}) == Status::ok);
    }
    for (std::uint64_t i = 0; i < k; ++i, ++next_out) {
      REQUIRE(r.try_pop(&t) == Status::ok);
      REQUIRE(t.a == next_out);
      REQUIRE(t.b == ~next_out);
      REQUIRE(t.c == next_out * 3);
    }
    REQUIRE(r.try_pop(&t) == Status::would_block);
  }
  // Full after exactly n elements.
  for (std::uint64_t i = 0; i < n; ++i) {
    REQUIRE(w.try_push({next_in++, 0, 0}) == Status::ok);
  }
  CHECK(w.try_push({0, 0, 0}) == Status::would_block);
  CHECK(w.push({0, 0, 0}, 2ms) == Status::timed_out);
  CHECK(seg.info().used_bytes == n * 12);
  CHECK(r.consumer().size_guess() == n * 12);
  CHECK(seg.unread_records() == n);
  // One pop makes room for exactly one.
  REQUIRE(r.try_pop(&t) == Status::ok);
  CHECK(t.a == next_out++);
  CHECK(w.try_push({next_in++, 0, 0}) == Status::ok);
  CHECK(w.try_push({0, 0, 0}) == Status::would_block);
  for (std::uint64_t i = 0; i < n; ++i) {
    REQUIRE(r.try_pop(&t) == Status::ok);
    CHECK(t.a == next_out++);
  }
  CHECK(r.try_pop(&t) == Status::would_block);
  CHECK(r.pop(&t, 2ms) == Status::timed_out);
  // Positions count elements.
  CHECK(seg.info().tail == next_in);
}

TEST_CASE("slots: positions near 2^64 wrap like any other") {
  ScopedRing ring(slots(256, 8));
  testing::set_positions(ring.segment(), ~0ULL - 5);
  auto w = writer<std::uint64_t>(ring.segment());
  auto r = reader<std::uint64_t>(ring.segment());
  for (std::uint64_t i = 0; i < 100; ++i) {
    REQUIRE(w.try_push(i) == Status::ok);
    std::uint64_t v = 0;
    REQUIRE(r.try_pop(&v) == Status::ok);
    REQUIRE(v == i);
  }
}

TEST_CASE("slots: end of stream after drain, and a new stream follows") {
  ScopedRing ring(slots(4096, 8));
  auto r = reader<std::uint64_t>(ring.segment());
  std::uint64_t v = 0;
  // No producer yet: wait, like a FIFO.
  CHECK(r.try_pop(&v) == Status::would_block);
  {
    auto w = writer<std::uint64_t>(ring.segment());
    REQUIRE(w.try_push(1) == Status::ok);
    REQUIRE(w.try_push(2) == Status::ok);
    w.close();
    CHECK(w.try_push(3) == Status::closed);
    CHECK(w.push(3) == Status::closed);
  }
  REQUIRE(r.try_pop(&v) == Status::ok);
  CHECK(v == 1);
  REQUIRE(r.pop(&v, kHang) == Status::ok);
  CHECK(v == 2);
  CHECK(r.try_pop(&v) == Status::closed);
  CHECK(r.pop(&v, kHang) == Status::closed);
  auto w2 = writer<std::uint64_t>(ring.segment());
  REQUIRE(w2.try_push(9) == Status::ok);
  REQUIRE(r.try_pop(&v) == Status::ok);
  CHECK(v == 9);
  r.close();
  CHECK(r.try_pop(&v) == Status::closed);
}

TEST_CASE("slots: one producer: a second is refused while the first lives") {
  ScopedRing ring(slots(4096, 8));
  auto w = writer<std::uint64_t>(ring.segment());
  auto again = QueueWriter<std::uint64_t>::attach(ring.segment());
  REQUIRE_FALSE(again);
  CHECK(again.error().code == Errc::role_taken);
  auto r = reader<std::uint64_t>(ring.segment());
  auto r2 = QueueReader<std::uint64_t>::attach(ring.segment());
  REQUIRE_FALSE(r2);
  CHECK(r2.error().code == Errc::role_taken);
}

TEST_CASE("slots: a killed producer: elements delivered, then peer_dead, "
          "and a new producer continues") {
  ScopedRing ring(slots(4096, 8));
  Segment& seg = ring.segment();
  auto r = reader<std::uint64_t>(seg);
  testing::ChildGuard children;
  testing::Beacon pushed;
  constexpr std::uint64_t kCount = 300;  // more than the ring holds: wraps
  const pid_t pid = children.spawn([&] {
    auto w = QueueWriter<std::uint64_t>::attach(seg);
    if (!w) return 1;
    for (std::uint64_t i = 0; i < kCount; ++i) {
      if (w->push(i, kHang) != Status::ok) return 2;
    }
    pushed.signal();
    for (;;) std::this_thread::sleep_for(1s);
  });
  std::uint64_t v = 0;
  for (std::uint64_t i = 0; i < kCount; ++i) {
    REQUIRE(r.pop(&v, kHang) == Status::ok);
    REQUIRE(v == i);
  }
  REQUIRE(pushed.wait(kHang));
  ::kill(pid, SIGKILL);
  const auto st = testing::wait_child(pid, std::chrono::milliseconds(kHang));
  children.forget(pid);
  REQUIRE(st.signal == SIGKILL);
  // Blocking pop notices the death within about a sleep slice.
  CHECK(r.pop(&v, kHang) == Status::peer_dead);
  CHECK(seg.info().producers_died == 1);
  // A new producer takes the reaped slot and continues at the dead one's
  // tail.
  auto w = writer<std::uint64_t>(seg);
  REQUIRE(w.try_push(kCount) == Status::ok);
  REQUIRE(r.try_pop(&v) == Status::ok);
  CHECK(v == kCount);
}

TEST_CASE("slots: a killed consumer: its successor resumes at its last "
          "released element; a producer blocked on it gets peer_dead") {
  ScopedRing ring(slots(256, 8));
  Segment& seg = ring.segment();
  const std::uint64_t n = seg.slot_count();
  auto w = writer<std::uint64_t>(seg);
  for (std::uint64_t i = 0; i < n; ++i) REQUIRE(w.try_push(i) == Status::ok);
  testing::ChildGuard children;
  testing::Beacon popped;
  const pid_t pid = children.spawn([&] {
    auto r = QueueReader<std::uint64_t>::attach(seg);
    if (!r) return 1;
    std::uint64_t v = 0;
    for (int i = 0; i < 5; ++i) {
      if (r->pop(&v, kHang) != Status::ok || v != std::uint64_t(i)) return 2;
    }
    popped.signal();
    for (;;) std::this_thread::sleep_for(1s);
  });
  REQUIRE(popped.wait(kHang));
  for (std::uint64_t i = n; i < n + 5; ++i) {
    REQUIRE(w.push(i, kHang) == Status::ok);
  }
  ::kill(pid, SIGKILL);
  const auto st = testing::wait_child(pid, std::chrono::milliseconds(kHang));
  children.forget(pid);
  REQUIRE(st.signal == SIGKILL);
  // The ring is full and its consumer is dead.
  CHECK(w.push(0, kHang) == Status::peer_dead);
  auto r = reader<std::uint64_t>(seg);
  std::uint64_t v = 0;
  for (std::uint64_t i = 5; i < n + 5; ++i) {
    REQUIRE(r.try_pop(&v) == Status::ok);
    REQUIRE(v == i);
  }
  CHECK(r.try_pop(&v) == Status::would_block);
  CHECK(seg.info().consumers_seen == 2);
}

TEST_CASE("slots: blocking pop and push wake across threads") {
  ScopedRing ring(slots(256, 8));
  auto w = writer<std::uint64_t>(ring.segment());
  auto r = reader<std::uint64_t>(ring.segment());
  constexpr std::uint64_t kCount = 20000;
  std::thread producer([&] {
    for (std::uint64_t i = 0; i < kCount; ++i) {
      if (w.push(i, kHang) != Status::ok) return;
      // Now and then let the consumer fall asleep on an empty ring.
      if (i % 4096 == 0) std::this_thread::sleep_for(2ms);
    }
    w.close();
  });
  std::uint64_t v = 0;
  std::uint64_t got = 0;
  Status s;
  while ((s = r.pop(&v, kHang)) == Status::ok) {
    REQUIRE(v == got);
    ++got;
  }
  producer.join();
  CHECK(s == Status::closed);
  CHECK(got == kCount);
}

TEST_CASE("slots: wait_fd is readable when an element or end of stream is "
          "there") {
  ScopedRing ring(slots(4096, 8));
  auto r = reader<std::uint64_t>(ring.segment());
  auto fd = r.consumer().wait_fd();
  REQUIRE(fd);
  std::uint64_t v = 0;
  // Drain until would_block: that arms the fd.
  CHECK(r.try_pop(&v) == Status::would_block);
  auto readable = [&](int ms) {
    pollfd p{*fd, POLLIN, 0};
    return ::poll(&p, 1, ms) == 1;
  };
  CHECK_FALSE(readable(20));
  auto w = writer<std::uint64_t>(ring.segment());
  REQUIRE(w.try_push(42) == Status::ok);
  CHECK(readable(static_cast<int>(std::chrono::milliseconds(kHang).count())));
  REQUIRE(r.try_pop(&v) == Status::ok);
  CHECK(v == 42);
  CHECK(r.try_pop(&v) == Status::would_block);
  CHECK_FALSE(readable(20));
  w.close();
  CHECK(readable(static_cast<int>(std::chrono::milliseconds(kHang).count())));
  CHECK(r.try_pop(&v) == Status::closed);
}

TEST_CASE("Queue<T> on a record ring still works through records") {
  for (const Kind k : {Kind::spsc, Kind::mpsc}) {
    ScopedRing ring({.kind = k, .capacity = 4096});
    auto w = writer<std::uint64_t>(ring.segment());
    auto r = reader<std::uint64_t>(ring.segment());
    for (std::uint64_t i = 0; i < 1000; ++i) {
      REQUIRE(w.push(i, kHang) == Status::ok);
      std::uint64_t v = 0;
      REQUIRE(r.pop(&v, kHang) == Status::ok);
      REQUIRE(v == i);
    }
    w.close();
    std::uint64_t v = 0;
    CHECK(r.try_pop(&v) == Status::closed);
  }
}

TEST_CASE("slots: a corrupt tail is refused, never read") {
  ScopedRing ring(slots(256, 8));
  Segment& seg = ring.segment();
  auto r = reader<std::uint64_t>(seg);
  auto w = writer<std::uint64_t>(seg);
  REQUIRE(w.try_push(1) == Status::ok);
  std::uint64_t v = 0;
  REQUIRE(r.try_pop(&v) == Status::ok);
  // A peer scribbles a tail more than a ring ahead.
  shmring::detail::control(seg)->tail.store(1 + 10 * seg.slot_count());
  CHECK(r.try_pop(&v) == Status::corrupt);
}

TEST_CASE("slots: the C API refuses a slots ring at open, clearly") {
  const key_t key = testing::test_key(40);
  auto made = Segment::create(key, slots(4096, 8));
  REQUIRE(made);
  struct Remove {
    Segment& s;
    ~Remove() { (void)s.remove(); }
  } remove{*made};
  shmring_ring* ring = nullptr;
  CHECK(shmring_open(key, nullptr, &ring) == SHMRING_E_WRONG_KIND);
  CHECK(ring == nullptr);
  CHECK_THAT(std::string(shmring_last_error()),
             Catch::Contains("slots ring") && Catch::Contains("C API"));
}

}  // namespace
}  // namespace shmring
