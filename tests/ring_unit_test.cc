// Unit tests of the SPSC Producer/Consumer API in one process: result
// codes, end of stream, a departed consumer, handle lifetimes, the copying
// and typed helpers, and refusal of a corrupt ring. Wrap-around has its own
// file (wrap_test.cc); waiting has wait_test.cc.
//
// Control-block words are read and scribbled relaxed: one thread holds
// both handles, so program order is all the ordering a check needs.
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support.h"

namespace shmring {
namespace {

using namespace std::chrono_literals;
using testing::as_bytes;
using testing::as_string;
using testing::attach_consumer;
using testing::attach_producer;

TEST_CASE("spsc smoke: write then read") {
  testing::ScopedRing ring({.kind = Kind::spsc, .capacity = 4096});
  Producer p = attach_producer(ring.segment());
  Consumer c = attach_consumer(ring.segment());
  REQUIRE(p.try_write(as_bytes("hello")) == Status::ok);
  auto got = c.try_peek();
  REQUIRE(got);
  CHECK(as_string(got.record.bytes()) == "hello");
  c.release();
  CHECK(c.try_peek().status == Status::would_block);
  p.close();
  CHECK(c.try_peek().status == Status::closed);
}

TEST_CASE("every status and error code has its own message") {
  std::set<std::string> seen;
  for (const Status s : {Status::ok, Status::would_block, Status::timed_out,
                         Status::too_large, Status::closed, Status::peer_dead,
                         Status::interrupted, Status::corrupt}) {
    const std::string m = to_string(s);
    CHECK_FALSE(m.empty());
    CHECK(seen.insert(m).second);
  }
  seen.clear();
  for (const Errc e :
       {Errc::not_found, Errc::exists, Errc::permission_denied,
        Errc::invalid_argument, Errc::not_shmring, Errc::version_mismatch,
        Errc::wrong_kind, Errc::size_mismatch, Errc::not_ready,
        Errc::role_taken, Errc::too_many_producers, Errc::removed, Errc::limit,
        Errc::system}) {
    const std::string m = to_string(e);
    CHECK_FALSE(m.empty());
    CHECK(seen.insert(m).second);
  }
}

TEST_CASE("peeks return successive records until release") {
  testing::ScopedRing ring({.capacity = 4096});
  Producer p = attach_producer(ring.segment());
  Consumer c = attach_consumer(ring.segment());
  for (const char* s : {"a", "bb", "ccc"}) {
    REQUIRE(p.try_write(as_bytes(s)) == Status::ok);
  }
  const auto head0 =
      shmring::detail::control(ring.segment())->head.load(std::memory_order_relaxed);
  auto a = c.try_peek();
  auto b = c.try_peek();
  REQUIRE(a);
  REQUIRE(b);
  CHECK(as_string(a.record.bytes()) == "a");
  CHECK(as_string(b.record.bytes()) == "bb");
  // Peeked records stay valid and unreleased until release().
  CHECK(shmring::detail::control(ring.segment())->head.load(std::memory_order_relaxed) ==
        head0);
  CHECK(as_string(a.record.bytes()) == "a");
  CHECK(c.size_guess() > 0);
  c.release();
  CHECK(shmring::detail::control(ring.segment())->head.load(std::memory_order_relaxed) > head0);
  auto d = c.try_peek();
  REQUIRE(d);
  CHECK(as_string(d.record.bytes()) == "ccc");
  c.release();
  CHECK(c.size_guess() == 0);
  CHECK(c.try_peek().status == Status::would_block);
}

TEST_CASE("write/read copying helpers") {
  testing::ScopedRing ring({.capacity = 4096});
  Producer p = attach_producer(ring.segment());
  Consumer c = attach_consumer(ring.segment());
  REQUIRE(p.write(as_bytes("first"), 1s, 5) == Status::ok);
  REQUIRE(p.write(as_bytes("")) == Status::ok);
  std::vector<std::byte> out;
  REQUIRE(c.read(out, 1s) == Status::ok);
  CHECK(as_string(out) == "first");
  out.assign(3, std::byte{1});
  REQUIRE(c.read(out) == Status::ok);
  CHECK(out.empty());
  CHECK(c.read(out, 1ms) == Status::timed_out);
  p.close();
  CHECK(c.read(out) == Status::closed);
}

TEST_CASE("end of stream follows the last producer's close, after its data") {
  testing::ScopedRing ring({.capacity = 4096});
  Consumer c = attach_consumer(ring.segment());
  // No producer yet: an empty ring is not the end of a stream.
  CHECK(c.try_peek().status == Status::would_block);
  CHECK(c.peek(5ms).status == Status::timed_out);
  {
    Producer p = attach_producer(ring.segment());
    REQUIRE(p.try_write(as_bytes("x")) == Status::ok);
    REQUIRE(p.try_write(as_bytes("y")) == Status::ok);
    // The destructor closes.
  }
  auto x = c.peek(1s);
  REQUIRE(x);
  CHECK(as_string(x.record.bytes()) == "x");
  auto y = c.peek(1s);
  REQUIRE(y);
  CHECK(as_string(y.record.bytes()) == "y");
  c.release();
  // A blocking peek returns closed at once, not after its timeout.
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(c.peek(30s).status == Status::closed);
  CHECK(std::chrono::steady_clock::now() - t0 < 10s);
  CHECK(c.try_peek().status == Status::closed);
  std::vector<Record> batch(4);
  const PeekedBatch none = c.try_peek_batch(batch);
  CHECK(none.status == Status::closed);
  CHECK(none.records.empty());

  SECTION("a new producer starts a new stream the consumer follows") {
    Producer p = attach_producer(ring.segment());
    CHECK(c.try_peek().status == Status::would_block);
    REQUIRE(p.try_write(as_bytes("z")) == Status::ok);
    auto z = c.try_peek();
    REQUIRE(z);
    CHECK(as_string(z.record.bytes()) == "z");
    c.release();
    p.close();
    CHECK(c.try_peek().status == Status::closed);
  }
}

TEST_CASE("closed handles refuse work") {
  testing::ScopedRing ring({.capacity = 4096});
  Producer p = attach_producer(ring.segment());
  Consumer c = attach_consumer(ring.segment());
  p.close();
  p.close();  // idempotent
  CHECK(p.try_reserve(1).status == Status::closed);
  CHECK(p.reserve(1, 1s).status == Status::closed);
  CHECK(p.try_write(as_bytes("x")) == Status::closed);
  c.close();
  CHECK(c.try_peek().status == Status::closed);
  CHECK(c.peek(1s).status == Status::closed);
  CHECK(ring.segment().info().producers_seen == 1);
  CHECK(ring.segment().info().producers.empty());
  CHECK(ring.segment().info().consumer_pid == 0);
}

TEST_CASE("closing a producer aborts its open reservation") {
  testing::ScopedRing ring({.capacity = 4096});
  Producer p = attach_producer(ring.segment());
  Consumer c = attach_consumer(ring.segment());
  REQUIRE(p.try_write(as_bytes("kept")) == Status::ok);
  auto r = p.try_reserve(10);
  REQUIRE(r);
  std::memset(r.bytes.data(), 'j', 10);
  p.close();
  auto got = c.try_peek();
  REQUIRE(got);
  CHECK(as_string(got.record.bytes()) == "kept");
  CHECK(c.try_peek().status == Status::closed);
}

TEST_CASE("a second reservation drops the first") {
  testing::ScopedRing ring({.capacity = 4096});
  Producer p = attach_producer(ring.segment());
  Consumer c = attach_consumer(ring.segment());
  auto r1 = p.try_reserve(10);
  REQUIRE(r1);
  auto r2 = p.try_reserve(3);
  REQUIRE(r2);
  CHECK(r2.bytes.data() == r1.bytes.data());  // the same space, reused
  std::memcpy(r2.bytes.data(), "two", 3);
  p.commit();  // commits the reserved size, 3
  auto got = c.try_peek();
  REQUIRE(got);
  CHECK(as_string(got.record.bytes()) == "two");
  CHECK(c.try_peek().status == Status::would_block);
  // commit/abort without a reservation do nothing.
  p.commit(5);
  p.abort();
  p.flush();
  CHECK(c.try_peek().status == Status::would_block);
}

TEST_CASE("a producer on a full ring whose consumer left gets peer_dead") {
  testing::ScopedRing ring({.capacity = 256});
  Producer p = attach_producer(ring.segment());
  std::string rec(100, 'r');
  SECTION("no consumer ever attached: wait, like a FIFO writer") {
    while (p.try_write(as_bytes(rec)) == Status::ok) {
    }
    CHECK(p.write(as_bytes(rec), 20ms) == Status::timed_out);
    CHECK_FALSE(p.consumer_alive());
  }
  SECTION("the consumer detached") {
    {
      Consumer c = attach_consumer(ring.segment());
      CHECK(p.consumer_alive());
    }
    CHECK_FALSE(p.consumer_alive());
    while (p.try_write(as_bytes(rec)) == Status::ok) {
    }
    // try_* reports only the fullness; the blocking call says why.
    CHECK(p.try_write(as_bytes(rec)) == Status::would_block);
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(p.write(as_bytes(rec), 30s) == Status::peer_dead);
    CHECK(std::chrono::steady_clock::now() - t0 < 10s);
    CHECK(p.reserve(100, 30s).status == Status::peer_dead);
    // A new consumer takes the records left behind, and space returns.
    Consumer c2 = attach_consumer(ring.segment());
    auto got = c2.try_peek();
    REQUIRE(got);
    CHECK(got.record.size == 100);
    while (c2.try_peek()) {
    }
    c2.release();
    CHECK(p.write(as_bytes(rec), 1s) == Status::ok);
  }
}

TEST_CASE("wait_for_consumer keeps a producer waiting for a new consumer") {
  testing::ScopedRing ring({.capacity = 256});
  Producer p = attach_producer(ring.segment(), {.wait_for_consumer = true});
  { Consumer c = attach_consumer(ring.segment()); }
  std::string rec(100, 'r');
  while (p.try_write(as_bytes(rec)) == Status::ok) {
  }
  // The consumer is gone and the ring full: it waits (not peer_dead) ...
  CHECK(p.write(as_bytes(rec), 30ms) == Status::timed_out);
  // ... until a new consumer attaches and makes room: the blocked write then
  // goes through (a generous 30 s liveness bound).
  Status blocked = Status::timed_out;
  std::thread writer([&] { blocked = p.write(as_bytes(rec), 30s); });
  Consumer c2 = attach_consumer(ring.segment());
  auto got = c2.peek(30s);
  REQUIRE(got);
  CHECK(got.record.size == rec.size());
  while (c2.try_peek()) {
  }
  c2.release();  // room for the blocked write
  writer.join();
  CHECK(blocked == Status::ok);
}

TEST_CASE("moved handles keep the role; the moved-from one is inert") {
  testing::ScopedRing ring({.capacity = 4096});
  Producer p = attach_producer(ring.segment());
  Consumer c = attach_consumer(ring.segment());
  std::optional<Producer> p2;
  std::optional<Consumer> c2;
  {
    Producer moved_p(std::move(p));
    Consumer moved_c(std::move(c));
    p2.emplace(std::move(moved_p));
    c2.emplace(std::move(moved_c));
    // moved_p and moved_c are destroyed here: they must not close the roles.
  }
  CHECK(Producer::attach(ring.segment()).error().code == Errc::role_taken);
  CHECK(Consumer::attach(ring.segment()).error().code == Errc::role_taken);
  REQUIRE(p2->try_write(as_bytes("moved")) == Status::ok);
  auto got = c2->try_peek();
  REQUIRE(got);
  CHECK(as_string(got.record.bytes()) == "moved");
  // The original (moved-from) handles refuse work instead of corrupting.
  CHECK(p.try_reserve(1).status == Status::closed);
  CHECK(c.try_peek().status == Status::closed);
}

TEST_CASE("Queue<T> moves trivially copyable values") {
  struct Point {
    std::int64_t x;
    double y;
    char tag;
  };
  testing::ScopedRing ring(
      {.kind = Kind::slots, .capacity = 4096, .slot_size = sizeof(Point)});
  auto w = QueueWriter<Point>::attach(ring.segment());
  REQUIRE(w);
  auto r = QueueReader<Point>::attach(ring.segment());
  REQUIRE(r);
  int pushed = 0;
  while (w->try_push({pushed, pushed * 0.5, 'q'}) == Status::ok) ++pushed;
  CHECK(pushed == 4096 / static_cast<int>(sizeof(Point)));
  for (int i = 0; i < pushed; ++i) {
    const Popped<Point> v = r->pop(1s);
    REQUIRE(v.status == Status::ok);
    CHECK(v.value.x == i);
    CHECK(v.value.y == i * 0.5);
    CHECK(v.value.tag == 'q');
  }
  CHECK(r->try_pop().status == Status::would_block);
  REQUIRE(w->push({7, 0, 'z'}, 1s) == Status::ok);
  const Popped<Point> v = r->try_pop();
  REQUIRE(v.status == Status::ok);
  CHECK(v.value.x == 7);
  // Elements of another size are refused at attach.
  auto other = QueueReader<std::int64_t>::attach(ring.segment());
  REQUIRE_FALSE(other);
  CHECK(other.error().code == Errc::wrong_kind);
}

TEST_CASE("a ring holding values no correct peer writes is corrupt") {
  testing::ScopedRing ring({.capacity = 4096});
  auto* cb = shmring::detail::control(ring.segment());
  Producer p = attach_producer(ring.segment());
  Consumer c = attach_consumer(ring.segment());
  REQUIRE(p.try_write(as_bytes("good")) == Status::ok);
  auto* header = reinterpret_cast<std::uint64_t*>(shmring::detail::ring_data(ring.segment()));

  // Readers find records by their headers; the tail is read by a producer
  // that attaches (and by shm-ring info), which refuses an impossible one.
  const auto next_producer_refuses = [&] {
    p.close();
    auto p2 = Producer::attach(ring.segment());
    REQUIRE(p2);
    CHECK(p2->try_write(as_bytes("x")) == Status::corrupt);
  };
  SECTION("tail beyond a full ring") {
    cb->tail.store(cb->head.load(std::memory_order_relaxed) + 4096 + 8,
                   std::memory_order_relaxed);
    auto got = c.try_peek();
    REQUIRE(got);
    CHECK(got.record.size == 4);
    CHECK(c.try_peek().status == Status::would_block);
    next_producer_refuses();
  }
  // The tail store of the last publish() never happened (a producer
  // killed in it): the records past the tail are committed, and the next
  // producer walks them.
  const auto tail_store_lost = [&](bool consumed) {
    REQUIRE(p.try_write(as_bytes("second")) == Status::ok);
    if (consumed) {
      REQUIRE(c.try_peek());
      REQUIRE(c.try_peek());
      c.release();
    }
    p.close();
    cb->tail.store(0, std::memory_order_relaxed);
    auto p2 = Producer::attach(ring.segment());
    REQUIRE(p2);
    REQUIRE(p2->try_write(as_bytes("third")) == Status::ok);
    CHECK(cb->tail.load(std::memory_order_relaxed) == 16 + 16 + 16);
    std::vector<std::string> got;
    while (auto r = c.try_peek()) {
      got.emplace_back(reinterpret_cast<const char*>(r.record.data),
                       r.record.size);
    }
    return got;
  };
  SECTION("a tail behind the last publication, records unread") {
    CHECK(tail_store_lost(false) ==
          std::vector<std::string>{"good", "second", "third"});
  }
  SECTION("a tail behind the last publication, records read") {
    CHECK(tail_store_lost(true) == std::vector<std::string>{"third"});
  }
  SECTION("a tail behind the last publication, then as long a batch") {
    // Records end within capacity - 8 of the tail: the walking producer
    // stores the tail it found before its own batch could double that.
    const std::string big(p.max_record_size(), 'd');  // half the ring
    REQUIRE(p.try_write(as_bytes(big)) == Status::ok);
    REQUIRE(c.try_peek());
    REQUIRE(c.try_peek());
    c.release();
    p.close();
    cb->tail.store(16, std::memory_order_relaxed);  // big's tail store lost
    auto p2 = Producer::attach(ring.segment());
    REQUIRE(p2);
    const std::uint64_t tail = cb->tail.load(std::memory_order_relaxed);
    REQUIRE(p2->try_write(as_bytes(big)) == Status::ok);
    // Read as if between p2's header store and its tail store.
    cb->tail.store(tail, std::memory_order_relaxed);
    const Peeked r = c.try_peek();
    REQUIRE(r.status == Status::ok);
    CHECK(r.record.size == big.size());
  }
  SECTION("a header chain that leads around the ring for ever") {
    // Released records stay in an SPSC ring: a 0 word forged back into
    // the first one's header makes every lap look committed.
    c.close();
    auto c2 = Consumer::attach(ring.segment());
    REQUIRE(c2);
    const std::string rec(504, 'r');  // span 512: 7 and "good" fit
    const auto drain = [&] {
      while (c2->try_peek()) {
      }
      c2->release();
    };
    drain();
    while (p.try_write(as_bytes(rec)) == Status::ok) {
    }
    drain();
    while (p.try_write(as_bytes(rec)) == Status::ok) {
    }
    drain();  // the last publish() stored 0 over an earlier lap's header
    const std::uint64_t tail = cb->tail.load(std::memory_order_relaxed);
    auto* word = header + (tail & 4095) / 8;
    REQUIRE(*word == 0);
    *word = layout::encode(512, 504, 0, 0);
    int delivered = 0;
    Peeked r;
    while ((r = c2->try_peek()) && delivered < 100) {
      ++delivered;
      c2->release();
    }
    CHECK(r.status == Status::corrupt);
    CHECK(delivered <= 4096 / 512);
  }
  SECTION("a zero span") {
    *header = std::uint64_t{5} << 35;  // type 5, span 0: not a 0 word
    CHECK(c.try_peek().status == Status::corrupt);
    CHECK(c.corrupt_offset() == 0);
  }
  SECTION("a busy record in an SPSC ring") {
    *header |= layout::kBusy;
    CHECK(c.try_peek().status == Status::corrupt);
  }
  SECTION("a span past the published tail") {
    // Without reading the tail the consumer cannot tell this from a record
    // (a peer that writes the segment can forge any record); the producer,
    // whose tail it then releases past, can.
    *header = layout::encode(64, 56, 0, 0);
    REQUIRE(c.try_peek());
    c.release();
    // The next records start at 16; the consumer, at 64, meets payload.
    const std::string rec(1000, 'b');
    while (p.try_write(as_bytes(rec)) == Status::ok) {
    }
    CHECK(c.try_peek().status == Status::corrupt);
  }
  SECTION("a record larger than the ring allows") {
    cb->tail.store(cb->head.load(std::memory_order_relaxed) + 4096,
                   std::memory_order_relaxed);
    *header = layout::encode(4096, 4088, 0, 0);
    CHECK(c.try_peek().status == Status::corrupt);
  }
  SECTION("head ahead of the producer") {
    cb->head.store(cb->tail.load(std::memory_order_relaxed) + 4096,
                   std::memory_order_relaxed);
    // The producer trusts its cached head until the ring looks full; then it
    // reloads head and must refuse the impossible value.
    const std::string rec(1000, 'b');
    Status s = Status::ok;
    for (int i = 0; i < 10 && s == Status::ok; ++i)
      s = p.try_write(as_bytes(rec));
    CHECK(s == Status::corrupt);
  }
}

}  // namespace
}  // namespace shmring
