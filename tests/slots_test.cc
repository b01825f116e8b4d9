// The fixed-slot kind (Kind::slots) in one process and with forked
// peers: creation and validation, wrap-around, full and empty, the element
// size check at attach, end of stream, dead peers (producer and consumer),
// blocking waits, wait_fd, the slot handles under QueueWriter/QueueReader,
// and QueueWriter/QueueReader refused on record rings.
#include <poll.h>
#include <sys/wait.h>

#include <array>
#include <cstdint>
#include <span>
#include <thread>

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
  CHECK_FALSE(validate(slots(4096, 0)));
  CHECK_FALSE(validate(slots(4096, 2049)));
  CHECK(validate(slots(4096, 2048)));
  RingOptions rec;
  rec.slot_size = 8;  // a record ring has no element size
  CHECK_FALSE(validate(rec));
  RingOptions many = slots(4096, 8);
  many.max_producers = 2;  // one producer, like spsc
  CHECK_FALSE(validate(many));

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
  CHECK_THAT(w.error().message, Catch::Contains("4-byte elements") &&
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
  CHECK(detail::SlotWriter::attach(ring.segment(), 8, {}).error().code ==
        Errc::wrong_kind);
  CHECK(detail::SlotReader::attach(ring.segment(), 2).error().code ==
        Errc::wrong_kind);
  // A refused attach took no role: the right size still gets it.
  auto ok = QueueWriter<std::uint32_t>::attach(ring.segment());
  CHECK(ok);
  auto ok_reader = QueueReader<std::uint32_t>::attach(ring.segment());
  CHECK(ok_reader);
  // And the slot handles on a record ring are refused.
  ScopedRing rec({.kind = Kind::spsc, .capacity = 4096});
  CHECK(detail::SlotWriter::attach(rec.segment(), 8, {}).error().code ==
        Errc::wrong_kind);
  CHECK(detail::SlotReader::attach(rec.segment(), 8).error().code ==
        Errc::wrong_kind);
}

TEST_CASE("slots: the slot handles: claim, publish, get, release, full") {
  ScopedRing ring(slots(256, 4));
  Segment& seg = ring.segment();
  const std::uint64_t n = seg.slot_count();
  REQUIRE(n == 64);
  auto w = detail::SlotWriter::attach(seg, 4, {});
  REQUIRE(w);
  CHECK(w->element_size() == 4);
  auto r = detail::SlotReader::attach(seg, 4);
  REQUIRE(r);
  CHECK(r->element_size() == 4);
  CHECK(r->try_get().status == Status::would_block);
  // Claiming without publishing hands out the same slot again.
  const detail::SlotRef first = w->try_claim();
  REQUIRE(first.status == Status::ok);
  CHECK(w->try_claim().at == first.at);
  CHECK(r->try_get().status == Status::would_block);
  for (std::uint32_t i = 0; i < n; ++i) {
    const detail::SlotRef s = w->try_claim();
    REQUIRE(s.status == Status::ok);
    std::memcpy(s.at, &i, 4);
    w->publish();
  }
  CHECK(w->try_claim().status == Status::would_block);
  CHECK(w->wait(1ms) == Status::timed_out);
  CHECK(r->size_guess() == n * 4);
  for (std::uint32_t i = 0; i < n; ++i) {
    const detail::SlotRef s = r->try_get();
    REQUIRE(s.status == Status::ok);
    // Not released: the same element again.
    CHECK(r->try_get().at == s.at);
    std::uint32_t v = ~0u;
    std::memcpy(&v, s.at, 4);
    REQUIRE(v == i);
    r->release();
    // One release makes room for exactly one.
    if (i == 0) {
      CHECK(w->wait(1ms) == Status::ok);
      REQUIRE(w->try_claim().status == Status::ok);
    }
  }
  CHECK(r->try_get().status == Status::would_block);
  CHECK(r->wait(1ms) == Status::timed_out);
  w->close();
  CHECK(w->try_claim().status == Status::closed);
  CHECK(r->try_get().status == Status::closed);
  CHECK(r->wait(1ms) == Status::closed);
}

TEST_CASE("slots: empty, full, in order, and wrap-around many times") {
  ScopedRing ring(slots(256, 12));
  Segment& seg = ring.segment();
  const std::uint64_t n = seg.slot_count();
  REQUIRE(n == 21);
  auto w = writer<Triple>(seg);
  auto r = reader<Triple>(seg);
  CHECK(r.try_pop().status == Status::would_block);
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
      const Popped<Triple> t = r.try_pop();
      REQUIRE(t.status == Status::ok);
      REQUIRE(t.value.a == next_out);
      REQUIRE(t.value.b == ~next_out);
      REQUIRE(t.value.c == next_out * 3);
    }
    REQUIRE(r.try_pop().status == Status::would_block);
  }
  // Full after exactly n elements.
  for (std::uint64_t i = 0; i < n; ++i) {
    REQUIRE(w.try_push({next_in++, 0, 0}) == Status::ok);
  }
  CHECK(w.try_push({0, 0, 0}) == Status::would_block);
  CHECK(w.push({0, 0, 0}, 2ms) == Status::timed_out);
  CHECK(seg.info().used_bytes == n * 12);
  CHECK(r.size_guess() == n * 12);
  CHECK(seg.unread_records() == n);
  // One pop makes room for exactly one.
  Popped<Triple> t = r.try_pop();
  REQUIRE(t.status == Status::ok);
  CHECK(t.value.a == next_out++);
  CHECK(w.try_push({next_in++, 0, 0}) == Status::ok);
  CHECK(w.try_push({0, 0, 0}) == Status::would_block);
  for (std::uint64_t i = 0; i < n; ++i) {
    t = r.try_pop();
    REQUIRE(t.status == Status::ok);
    CHECK(t.value.a == next_out++);
  }
  CHECK(r.try_pop().status == Status::would_block);
  CHECK(r.pop(2ms).status == Status::timed_out);
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
    const Popped<std::uint64_t> v = r.try_pop();
    REQUIRE(v.status == Status::ok);
    REQUIRE(v.value == i);
  }
}

TEST_CASE("slots: end of stream after drain, and a new stream follows") {
  ScopedRing ring(slots(4096, 8));
  auto r = reader<std::uint64_t>(ring.segment());
  // No producer yet: wait, like a FIFO.
  CHECK(r.try_pop().status == Status::would_block);
  {
    auto w = writer<std::uint64_t>(ring.segment());
    REQUIRE(w.try_push(1) == Status::ok);
    REQUIRE(w.try_push(2) == Status::ok);
    w.close();
    CHECK(w.try_push(3) == Status::closed);
    CHECK(w.push(3) == Status::closed);
  }
  Popped<std::uint64_t> v = r.try_pop();
  REQUIRE(v.status == Status::ok);
  CHECK(v.value == 1);
  v = r.pop(kHang);
  REQUIRE(v.status == Status::ok);
  CHECK(v.value == 2);
  CHECK(r.try_pop().status == Status::closed);
  CHECK(r.pop(kHang).status == Status::closed);
  auto w2 = writer<std::uint64_t>(ring.segment());
  REQUIRE(w2.try_push(9) == Status::ok);
  v = r.try_pop();
  REQUIRE(v.status == Status::ok);
  CHECK(v.value == 9);
  r.close();
  CHECK(r.try_pop().status == Status::closed);
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

TEST_CASE(
    "slots: a killed producer: elements delivered, then peer_dead, "
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
  for (std::uint64_t i = 0; i < kCount; ++i) {
    const Popped<std::uint64_t> v = r.pop(kHang);
    REQUIRE(v.status == Status::ok);
    REQUIRE(v.value == i);
  }
  REQUIRE(pushed.wait(kHang));
  ::kill(pid, SIGKILL);
  const auto st = testing::wait_child(pid, std::chrono::milliseconds(kHang));
  children.forget(pid);
  REQUIRE(st.signal == SIGKILL);
  // Blocking pop notices the death within about a sleep slice.
  CHECK(r.pop(kHang).status == Status::peer_dead);
  CHECK(seg.info().producers_died == 1);
  // A new producer takes the reaped slot and continues at the dead one's
  // tail.
  auto w = writer<std::uint64_t>(seg);
  REQUIRE(w.try_push(kCount) == Status::ok);
  const Popped<std::uint64_t> v = r.try_pop();
  REQUIRE(v.status == Status::ok);
  CHECK(v.value == kCount);
}

TEST_CASE(
    "slots: a killed consumer: its successor resumes at its last "
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
    for (int i = 0; i < 5; ++i) {
      const Popped<std::uint64_t> v = r->pop(kHang);
      if (v.status != Status::ok || v.value != std::uint64_t(i)) return 2;
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
  for (std::uint64_t i = 5; i < n + 5; ++i) {
    const Popped<std::uint64_t> v = r.try_pop();
    REQUIRE(v.status == Status::ok);
    REQUIRE(v.value == i);
  }
  CHECK(r.try_pop().status == Status::would_block);
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
  std::uint64_t got = 0;
  Popped<std::uint64_t> v;
  while ((v = r.pop(kHang)).status == Status::ok) {
    REQUIRE(v.value == got);
    ++got;
  }
  producer.join();
  CHECK(v.status == Status::closed);
  CHECK(got == kCount);
}

TEST_CASE(
    "slots: wait_fd is readable when an element or end of stream is "
    "there") {
  ScopedRing ring(slots(4096, 8));
  auto r = reader<std::uint64_t>(ring.segment());
  auto fd = r.wait_fd();
  REQUIRE(fd);
  // Drain until would_block: that arms the fd.
  CHECK(r.try_pop().status == Status::would_block);
  auto readable = [&](int ms) {
    pollfd p{*fd, POLLIN, 0};
    return ::poll(&p, 1, ms) == 1;
  };
  CHECK_FALSE(readable(20));
  auto w = writer<std::uint64_t>(ring.segment());
  REQUIRE(w.try_push(42) == Status::ok);
  CHECK(readable(static_cast<int>(std::chrono::milliseconds(kHang).count())));
  const Popped<std::uint64_t> v = r.try_pop();
  REQUIRE(v.status == Status::ok);
  CHECK(v.value == 42);
  CHECK(r.try_pop().status == Status::would_block);
  CHECK_FALSE(readable(20));
  w.close();
  CHECK(readable(static_cast<int>(std::chrono::milliseconds(kHang).count())));
  CHECK(r.try_pop().status == Status::closed);
}

TEST_CASE("slots: QueueWriter and QueueReader refuse record rings") {
  for (const Kind k : {Kind::spsc, Kind::mpsc, Kind::broadcast}) {
    CAPTURE(kind_name(k));
    ScopedRing ring({.kind = k, .capacity = 4096});
    auto w = QueueWriter<std::uint64_t>::attach(ring.segment());
    REQUIRE_FALSE(w);
    CHECK(w.error().code == Errc::wrong_kind);
    auto r = QueueReader<std::uint64_t>::attach(ring.segment());
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::wrong_kind);
    // A refused attach took no role: the ring's own handles still get it.
    CHECK(Producer::attach(ring.segment()));
    if (k == Kind::broadcast) {
      CHECK(Subscriber::attach(ring.segment()));
    } else {
      CHECK(Consumer::attach(ring.segment()));
    }
  }
}

TEST_CASE("slots: a corrupt tail is refused, never read") {
  ScopedRing ring(slots(256, 8));
  Segment& seg = ring.segment();
  auto r = reader<std::uint64_t>(seg);
  auto w = writer<std::uint64_t>(seg);
  REQUIRE(w.try_push(1) == Status::ok);
  REQUIRE(r.try_pop().status == Status::ok);
  // A peer scribbles a tail more than a ring ahead.
  shmring::detail::control(seg)->tail.store(1 + 10 * seg.slot_count());
  CHECK(r.try_pop().status == Status::corrupt);
}

TEST_CASE("slots: ByteQueueWriter/Reader take the ring's element size") {
  ScopedRing ring(slots(4096, 12));
  Segment& seg = ring.segment();
  auto w = ByteQueueWriter::attach(seg);
  REQUIRE(w);
  CHECK(w->element_size() == 12);
  // Elements pushed as bytes are QueueReader<T>'s T, and back.
  struct Twelve {
    std::uint32_t a, b, c;
  };
  static_assert(sizeof(Twelve) == 12);
  const Twelve t{1, 2, 3};
  const auto bytes = std::as_bytes(std::span(&t, 1));
  REQUIRE(w->try_push(bytes) == Status::ok);
  REQUIRE(w->push(bytes, std::chrono::seconds(1)) == Status::ok);
  // A slot holds exactly element_size() bytes.
  std::array<std::byte, 13> big{};
  CHECK(w->try_push(big) == Status::too_large);
  CHECK(w->push(std::span(big).first(11)) == Status::too_large);
  {
    auto typed = reader<Twelve>(seg);
    const Popped<Twelve> got = typed.try_pop();
    REQUIRE(got);
    CHECK((got.value.a == 1 && got.value.b == 2 && got.value.c == 3));
    typed.close();
  }
  auto r = ByteQueueReader::attach(seg);
  REQUIRE(r);
  Twelve out{};
  const auto into = std::as_writable_bytes(std::span(&out, 1));
  CHECK(r->try_pop(std::span(big).first(11)) == Status::too_large);
  REQUIRE(r->pop(into, std::chrono::seconds(1)) == Status::ok);
  CHECK((out.a == 1 && out.b == 2 && out.c == 3));
  CHECK(r->try_pop(into) == Status::would_block);
  CHECK(r->pop(into, std::chrono::milliseconds(1)) == Status::timed_out);
  w->close();
  CHECK(r->pop(into, std::chrono::seconds(1)) == Status::closed);
  // Only slots rings.
  testing::ScopedRing spsc({.kind = Kind::spsc, .capacity = 4096});
  auto no = ByteQueueWriter::attach(spsc.segment());
  REQUIRE_FALSE(no);
  CHECK(no.error().code == Errc::wrong_kind);
  auto no_reader = ByteQueueReader::attach(spsc.segment());
  REQUIRE_FALSE(no_reader);
  CHECK(no_reader.error().code == Errc::wrong_kind);
}

TEST_CASE("slots: a corrupt head is refused by a writer that saw it full") {
  ScopedRing ring(slots(256, 8));
  Segment& seg = ring.segment();
  auto w = writer<std::uint64_t>(seg);
  const std::uint64_t n = seg.slot_count();
  for (std::uint64_t i = 0; i < n; ++i) REQUIRE(w.try_push(i) == Status::ok);
  REQUIRE(w.try_push(0) == Status::would_block);
  // A peer scribbles a head ahead of the tail: "free" by any count, but no
  // correct ring has it.
  shmring::detail::control(seg)->head.store(n + 3);
  CHECK(w.try_push(0) == Status::corrupt);
  CHECK(w.push(0, 1ms) == Status::corrupt);
}

TEST_CASE("slots: a closed reader reads nothing, though elements wait") {
  ScopedRing ring(slots(256, 8));
  Segment& seg = ring.segment();
  auto w = writer<std::uint64_t>(seg);
  auto r = reader<std::uint64_t>(seg);
  REQUIRE(w.try_push(1) == Status::ok);
  REQUIRE(r.try_pop().status == Status::ok);
  // The reader's copy of tail now says empty; elements arrive after it.
  REQUIRE(w.try_push(2) == Status::ok);
  REQUIRE(w.try_push(3) == Status::ok);
  r.close();
  CHECK(r.try_pop().status == Status::closed);
  CHECK(r.pop(1ms).status == Status::closed);
  // They stay for the next reader.
  auto r2 = reader<std::uint64_t>(seg);
  const Popped<std::uint64_t> v = r2.try_pop();
  REQUIRE(v.status == Status::ok);
  CHECK(v.value == 2);
}

}  // namespace
}  // namespace shmring
