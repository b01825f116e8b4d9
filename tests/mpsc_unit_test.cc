// Deterministic MPSC ring behaviour: several producers in one thread, so
// every interleaving below is chosen by the test, not by the scheduler.
// Control-block words are read relaxed: what a check looks for was written
// by this thread, by a thread it joined, or by a child it has reaped.
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/support.h"

namespace shmring {
namespace {

using testing::as_bytes;
using testing::as_string;
using testing::ScopedRing;

// Ring offset of a reservation's record header.
std::uint64_t header_offset(Segment& seg, const Reservation& r) {
  return static_cast<std::uint64_t>(r.bytes.data() - shmring::detail::ring_data(seg)) -
         layout::kHeaderSize;
}

layout::Header header_at(Segment& seg, std::uint64_t off) {
  // acquire: the test reads headers the library wrote in this thread; the
  // atomic access just mirrors how the consumer reads them.
  return layout::decode(std::atomic_ref<std::uint64_t>(
                            *reinterpret_cast<std::uint64_t*>(shmring::detail::ring_data(seg) + off))
                            .load(std::memory_order_acquire));
}

void fill(const Reservation& r, const std::string& text) {
  REQUIRE(r.bytes.size() >= text.size());
  std::memcpy(r.bytes.data(), text.data(), text.size());
}

using testing::attach_consumer;
using testing::attach_producer;

const char* status_name(Status s) {
  switch (s) {
    case Status::ok:
      return "ok";
    case Status::would_block:
      return "would_block";
    case Status::timed_out:
      return "timed_out";
    case Status::too_large:
      return "too_large";
    case Status::closed:
      return "closed";
    case Status::peer_dead:
      return "peer_dead";
    case Status::interrupted:
      return "interrupted";
    case Status::corrupt:
      return "corrupt";
    case Status::overrun:
      return "overrun";
    case Status::removed:
      return "removed";
  }
  return "?";
}

// The next record's text, or the status as "<status>".
std::string next(Consumer& c) {
  auto p = c.try_peek();
  if (!p) return std::string("<") + status_name(p.status) + ">";
  std::string s = as_string(p.record.bytes());
  c.release();
  return s;
}

TEST_CASE("mpsc: each producer gets its own slot, threads of one process too") {
  ScopedRing ring({.kind = Kind::mpsc, .capacity = 4096});
  Producer a = attach_producer(ring.segment());
  // b attaches on another thread of this process (no Catch2 macros there).
  std::optional<Producer> b;
  std::string b_error;
  std::thread t([&] {
    auto r = Producer::attach(ring.segment());
    if (r) b.emplace(std::move(r).value()); else b_error = r.error().message;
  });
  t.join();
  INFO(b_error);
  REQUIRE(b);
  CHECK(a.producer_index() != b->producer_index());
  auto* cb = shmring::detail::control(ring.segment());
  CHECK(cb->producers_attached.load(std::memory_order_relaxed) == 2);
  CHECK(cb->producers[a.producer_index()].owner.load(
            std::memory_order_relaxed) == self_token());
  CHECK(cb->producers[b->producer_index()].owner.load(
            std::memory_order_relaxed) == self_token());
}

TEST_CASE("mpsc: out-of-order commits are delivered in claim order") {
  ScopedRing ring({.kind = Kind::mpsc, .capacity = 4096});
  Producer a = attach_producer(ring.segment());
  Producer b = attach_producer(ring.segment());
  Consumer c = attach_consumer(ring.segment());

  auto ra = a.try_reserve(5);
  REQUIRE(ra);
  auto rb = b.try_reserve(5);
  REQUIRE(rb);
  // Claim order is a, b: a's header precedes b's.
  CHECK(header_offset(ring.segment(), rb) ==
        header_offset(ring.segment(), ra) + layout::span_for(5));
  CHECK(header_at(ring.segment(), header_offset(ring.segment(), ra)).busy);
  fill(ra, "first");
  fill(rb, "secnd");

  b.commit();
  // b is committed but a, claimed before it, is still busy: the consumer
  // must stop at a (and not skip ahead, which would reorder records).
  CHECK(next(c) == "<would_block>");
  CHECK(next(c) == "<would_block>");
  CHECK(shmring::detail::control(ring.segment())->records_reclaimed.load(
            std::memory_order_relaxed) == 0);

  a.commit();
  CHECK(next(c) == "first");
  CHECK(next(c) == "secnd");
  CHECK(next(c) == "<would_block>");
}

TEST_CASE("mpsc: a producer's records are in order among interleaved ones") {
  ScopedRing ring({.kind = Kind::mpsc, .capacity = 4096});
  Producer a = attach_producer(ring.segment());
  Producer b = attach_producer(ring.segment());
  Producer d = attach_producer(ring.segment());
  Consumer c = attach_consumer(ring.segment());
  // Claim order a1 b1 d1, commits d1 a1 b1; then a2 d2 b2 committed b2 a2 d2.
  auto a1 = a.try_reserve(2);
  auto b1 = b.try_reserve(2);
  auto d1 = d.try_reserve(2);
  REQUIRE((a1 && b1 && d1));
  fill(a1, "a1");
  fill(b1, "b1");
  fill(d1, "d1");
  d.commit();
  a.commit();
  CHECK(next(c) == "a1");
  CHECK(next(c) == "<would_block>");  // b1 busy, d1 behind it
  b.commit();
  auto a2 = a.try_reserve(2);
  auto d2 = d.try_reserve(2);
  auto b2 = b.try_reserve(2);
  REQUIRE((a2 && d2 && b2));
  fill(a2, "a2");
  fill(d2, "d2");
  fill(b2, "b2");
  b.commit();
  a.commit();
  d.commit();
  std::vector<std::string> got(6);
  for (auto& s : got) s = next(c);
  CHECK(got == std::vector<std::string>{"b1", "d1", "a2", "d2", "b2",
                                        "<would_block>"});
}

TEST_CASE("mpsc: abort turns the record into padding, others flow past it") {
  ScopedRing ring({.kind = Kind::mpsc, .capacity = 4096});
  Producer a = attach_producer(ring.segment());
  Producer b = attach_producer(ring.segment());
  Consumer c = attach_consumer(ring.segment());
  auto ra = a.try_reserve(40);
  auto rb = b.try_reserve(3);
  REQUIRE((ra && rb));
  const auto off_a = header_offset(ring.segment(), ra);
  fill(ra, "never delivered");
  fill(rb, "yes");
  b.commit();
  CHECK(next(c) == "<would_block>");
  a.abort();
  const layout::Header h = header_at(ring.segment(), off_a);
  CHECK(h.padding);
  CHECK_FALSE(h.busy);
  CHECK(h.span == layout::span_for(40));
  CHECK(next(c) == "yes");
  CHECK(next(c) == "<would_block>");
  // An aborted record is not a reclaimed one.
  CHECK(shmring::detail::control(ring.segment())->records_reclaimed.load(
            std::memory_order_relaxed) == 0);
  // The producer is usable after an abort.
  REQUIRE(a.try_write(as_bytes("again")) == Status::ok);
  CHECK(next(c) == "again");
}

TEST_CASE("mpsc: a trimmed commit leaves padding after the record") {
  ScopedRing ring({.kind = Kind::mpsc, .capacity = 4096});
  Producer a = attach_producer(ring.segment());
  Producer b = attach_producer(ring.segment());
  Consumer c = attach_consumer(ring.segment());
  auto ra = a.try_reserve(100);
  auto rb = b.try_reserve(4);
  REQUIRE((ra && rb));
  const auto off_a = header_offset(ring.segment(), ra);
  fill(ra, "short");
  fill(rb, "next");
  a.commit(5, /*type=*/7);
  b.commit();
  const layout::Header h = header_at(ring.segment(), off_a);
  CHECK(h.span == layout::span_for(5));
  CHECK(h.length == 5);
  CHECK(h.type == 7);
  const layout::Header pad = header_at(ring.segment(), off_a + h.span);
  CHECK(pad.padding);
  CHECK(pad.span == layout::span_for(100) - layout::span_for(5));
  auto p = c.try_peek();
  REQUIRE(p);
  CHECK(as_string(p.record.bytes()) == "short");
  CHECK(p.record.type == 7);
  c.release();
  CHECK(next(c) == "next");
  CHECK(next(c) == "<would_block>");
}

TEST_CASE("mpsc: commit trimmed by less than the alignment slack") {
  ScopedRing ring({.kind = Kind::mpsc, .capacity = 4096});
  Producer a = attach_producer(ring.segment());
  Consumer c = attach_consumer(ring.segment());
  // 13 and 9 bytes have the same span: no padding, only a shorter length.
  auto ra = a.try_reserve(13);
  REQUIRE(ra);
  fill(ra, "123456789");
  a.commit(9);
  CHECK(next(c) == "123456789");
  REQUIRE(a.try_write(as_bytes("x")) == Status::ok);
  CHECK(next(c) == "x");
}

// Records of several producers straddling the wrap point, at every 8-byte
// offset of a small ring, committed in reverse claim order.
TEST_CASE("mpsc: wrap padding with several producers at every offset") {
  constexpr std::uint64_t kCap = 512;
  const std::vector<std::size_t> sizes = {1, 37, 16, 100, 0, 63};
  for (std::uint64_t start = 0; start < kCap; start += 8) {
    CAPTURE(start);
    ScopedRing ring({.kind = Kind::mpsc, .capacity = kCap});
    // A ring that has carried a few laps: positions are not offsets.
    testing::set_positions(ring.segment(), 3 * kCap + start);
    std::vector<Producer> ps;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      ps.push_back(attach_producer(ring.segment()));
    }
    Consumer c = attach_consumer(ring.segment());
    // Two passes so the second one wraps for every start offset.
    for (int pass = 0; pass < 2; ++pass) {
      std::vector<Reservation> rs;
      for (std::size_t i = 0; i < ps.size(); ++i) {
        auto r = ps[i].try_reserve(sizes[i]);
        REQUIRE(r);
        const auto off = header_offset(ring.segment(), r);
        // A record never straddles the end of the ring.
        REQUIRE(off + layout::span_for(sizes[i]) <= kCap);
        testing::fill_payload(r.bytes, static_cast<std::uint32_t>(i), pass);
        rs.push_back(r);
      }
      for (std::size_t i = ps.size(); i-- > 0;) ps[i].commit();
      for (std::size_t i = 0; i < ps.size(); ++i) {
        auto p = c.try_peek();
        REQUIRE(p);
        CHECK(p.record.size == sizes[i]);
        CHECK(testing::check_payload(p.record.bytes(),
                                     static_cast<std::uint32_t>(i), pass));
        c.release();
      }
      CHECK(c.try_peek().status == Status::would_block);
    }
  }
}

TEST_CASE("mpsc: full ring, then space comes back after release") {
  constexpr std::uint64_t kCap = 256;
  ScopedRing ring({.kind = Kind::mpsc, .capacity = kCap});
  Producer a = attach_producer(ring.segment());
  Producer b = attach_producer(ring.segment());
  Consumer c = attach_consumer(ring.segment());
  // 8 records of 32 bytes fill 256 bytes exactly.
  int written = 0;
  for (; written < 100; ++written) {
    Producer& p = written % 2 ? b : a;
    const std::string s(24, static_cast<char>('a' + written));
    if (p.try_write(as_bytes(s)) != Status::ok) break;
  }
  CHECK(written == 8);
  CHECK(b.try_reserve(1).status == Status::would_block);
  CHECK(a.reserve(1, std::chrono::milliseconds(20)).status ==
        Status::timed_out);
  CHECK(next(c) == std::string(24, 'a'));
  REQUIRE(b.try_write(as_bytes(std::string(24, 'z'))) == Status::ok);
  for (int i = 1; i < 8; ++i) {
    CHECK(next(c) == std::string(24, static_cast<char>('a' + i)));
  }
  CHECK(next(c) == std::string(24, 'z'));
}

TEST_CASE("mpsc: too_large is the same for every producer") {
  ScopedRing ring({.kind = Kind::mpsc, .capacity = 1024});
  Producer a = attach_producer(ring.segment());
  Producer b = attach_producer(ring.segment());
  Consumer c = attach_consumer(ring.segment());
  CHECK(a.max_record_size() == layout::max_payload(1024));
  CHECK(a.try_reserve(a.max_record_size() + 1).status == Status::too_large);
  CHECK(b.reserve(b.max_record_size() + 1).status == Status::too_large);
  CHECK(b.try_write(std::vector<std::byte>(1 << 20)) == Status::too_large);
  // The largest record fits on an empty ring.
  auto r = a.try_reserve(a.max_record_size());
  REQUIRE(r);
  a.commit();
  auto p = c.try_peek();
  REQUIRE(p);
  CHECK(p.record.size == a.max_record_size());
}

TEST_CASE("mpsc: the producer table fills up, and a closed slot is reused") {
  ScopedRing ring({.kind = Kind::mpsc, .capacity = 4096});
  std::vector<Producer> ps;
  for (std::size_t i = 0; i < layout::kMaxProducers; ++i) {
    ps.push_back(attach_producer(ring.segment()));
  }
  auto extra = Producer::attach(ring.segment());
  REQUIRE_FALSE(extra);
  CHECK(extra.error().code == Errc::too_many_producers);
  CHECK(extra.error().message.find("producer slots") != std::string::npos);
  const int freed = ps[17].producer_index();
  ps[17].close();
  auto again = Producer::attach(ring.segment());
  REQUIRE(again);
  CHECK(again->producer_index() == freed);
  // A new registration of the slot has a new generation, so its records
  // never look like the old owner's.
  CHECK(shmring::detail::control(ring.segment())->producers[freed].generation.load(
            std::memory_order_relaxed) == 2);
}

TEST_CASE("mpsc: max_producers limits the table") {
  ScopedRing ring({.kind = Kind::mpsc, .capacity = 4096, .max_producers = 3});
  Producer a = attach_producer(ring.segment());
  Producer b = attach_producer(ring.segment());
  Producer d = attach_producer(ring.segment());
  auto e = Producer::attach(ring.segment());
  REQUIRE_FALSE(e);
  CHECK(e.error().code == Errc::too_many_producers);
}

TEST_CASE("mpsc: ghost slots of dead processes are reaped on attach") {
  const int segments_before = testing::own_segment_count();
  {
    ScopedRing ring({.kind = Kind::mpsc, .capacity = 4096, .max_producers = 2});
    Segment& seg = ring.segment();
    testing::ChildGuard children;
    // Two processes register and vanish without close(): their slots hold
    // tokens of dead processes.
    for (int i = 0; i < 2; ++i) {
      const pid_t pid = children.spawn([&seg] {
        auto p = Producer::attach(seg);
        if (!p) return 1;
        if (p->try_write(as_bytes("from a ghost")) != Status::ok) return 2;
        ::_exit(0);  // no destructor: the slot stays registered
      });
      const auto st = children.wait(pid, std::chrono::seconds(30));
      REQUIRE(st.exited);
      REQUIRE(st.code == 0);
    }
    auto* cb = shmring::detail::control(seg);
    // The kernel freed the first ghost's role semaphore when it exited, so
    // the second took over its slot at once (counting one death).
    CHECK(cb->producers_died.load(std::memory_order_relaxed) == 1);
    CHECK(cb->producers_attached.load(std::memory_order_relaxed) == 1);
    // The table holds a ghost; attaching takes its slot over.
    Producer a = attach_producer(seg);
    Producer b = attach_producer(seg);
    CHECK(cb->producers_died.load(std::memory_order_relaxed) == 2);
    CHECK(cb->producers_attached.load(std::memory_order_relaxed) == 2);
    auto third = Producer::attach(seg);
    REQUIRE_FALSE(third);
    CHECK(third.error().code == Errc::too_many_producers);
    // What the ghosts committed is still delivered.
    Consumer c = attach_consumer(seg);
    CHECK(next(c) == "from a ghost");
    CHECK(next(c) == "from a ghost");
    CHECK(next(c) == "<would_block>");
  }
  CHECK(testing::own_segment_count() == segments_before);
}

TEST_CASE("mpsc: end of stream only after every producer closed") {
  ScopedRing ring({.kind = Kind::mpsc, .capacity = 4096});
  Consumer c = attach_consumer(ring.segment());
  // No producer has ever attached: waiting, not end of stream.
  CHECK(next(c) == "<would_block>");
  Producer a = attach_producer(ring.segment());
  Producer b = attach_producer(ring.segment());
  REQUIRE(a.try_write(as_bytes("a")) == Status::ok);
  REQUIRE(b.try_write(as_bytes("b")) == Status::ok);
  a.close();
  CHECK(next(c) == "a");
  CHECK(next(c) == "b");
  CHECK(next(c) == "<would_block>");  // b is still attached
  auto r = b.try_reserve(4);
  REQUIRE(r);
  fill(r, "last");
  // close() with an open reservation aborts it; nothing half-written
  // is delivered, and the stream ends.
  b.close();
  CHECK(next(c) == "<closed>");
  CHECK(c.peek(std::chrono::seconds(10)).status == Status::closed);
  CHECK(shmring::detail::control(ring.segment())->producers_attached.load(
            std::memory_order_relaxed) == 0);
  // A closed producer cannot write.
  CHECK(a.try_write(as_bytes("x")) == Status::closed);
  // A new producer starts a new stream that the same consumer follows.
  Producer d = attach_producer(ring.segment());
  REQUIRE(d.try_write(as_bytes("again")) == Status::ok);
  CHECK(next(c) == "again");
  CHECK(next(c) == "<would_block>");
}

TEST_CASE("mpsc: end of stream when the last producer died") {
  ScopedRing ring({.kind = Kind::mpsc, .capacity = 4096});
  Segment& seg = ring.segment();
  Consumer c = attach_consumer(seg);
  Producer a = attach_producer(seg);
  REQUIRE(a.try_write(as_bytes("alive")) == Status::ok);
  testing::ChildGuard children;
  const pid_t pid = children.spawn([&seg] {
    auto p = Producer::attach(seg);
    if (!p) return 1;
    if (p->try_write(as_bytes("dead")) != Status::ok) return 2;
    ::_exit(0);
  });
  const auto st = children.wait(pid, std::chrono::seconds(30));
  REQUIRE(st.exited);
  REQUIRE(st.code == 0);
  a.close();
  CHECK(next(c) == "alive");
  CHECK(next(c) == "dead");
  // The dead producer is still registered until someone reaps it; a drained
  // try_peek does (rate-limited) and then reports end of stream.
  CHECK(c.peek(std::chrono::seconds(30)).status == Status::closed);
  CHECK(shmring::detail::control(seg)->producers_died.load(std::memory_order_relaxed) == 1);
  // MPSC reports a producer's death as end of stream, not peer_dead: the
  // other producers' data was complete.
}

}  // namespace
}  // namespace shmring
