// A peer that scribbles on the segment while we run: one deterministic test
// per hole the fuzzer found in ring/ (tests/hardening/corpus/regress-* hold
// the fuzzer's own inputs for the same bugs). The hostile peer writes
// through a second mapping, as another process would.
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "tests/support.h"

namespace shmring {
namespace {

using testing::as_bytes;
using testing::as_string;
using namespace std::chrono_literals;

constexpr ProcessToken kDeadToken = (std::uint64_t{0x3ffffff0} << 32) | 1;

TEST_CASE("hostile: capacity rewritten after attach does not resize our view") {
  // The attacher validated capacity 4096; a peer then claims 2^40. Handles
  // made afterwards must still use 4096, or their reservations and records
  // would lie far outside the mapping.
  testing::ScopedRing ring({.kind = Kind::spsc, .capacity = 4096});
  Segment mine = ring.attach_again();
  shmring::detail::control(ring.segment())->capacity =
      layout::kMaxCapacity;  // the peer
  CHECK(mine.capacity() == 4096);
  auto p = Producer::attach(mine);
  auto c = Consumer::attach(mine);
  REQUIRE(p);
  REQUIRE(c);
  CHECK(p->max_record_size() == layout::max_payload(4096));
  for (int i = 0; i < 200; ++i) {  // wraps the 4 KiB ring several times
    const std::string msg(100 + i % 50, static_cast<char>('a' + i % 26));
    auto r = p->try_reserve(msg.size());
    REQUIRE(r);
    REQUIRE(r.bytes.data() >= shmring::detail::ring_data(mine));
    REQUIRE(r.bytes.data() + r.bytes.size() <=
            shmring::detail::ring_data(mine) + 4096);
    std::memcpy(r.bytes.data(), msg.data(), msg.size());
    p->commit();
    auto got = c->try_peek();
    REQUIRE(got);
    CHECK(as_string(got.record.bytes()) == msg);
    c->release();
  }
}

TEST_CASE("hostile: max_producers rewritten past the slot table") {
  // Every slot held by a live process (us), and max_producers claims 1000:
  // attach must not walk past the 64-entry table into the ring.
  testing::ScopedRing ring({.kind = Kind::mpsc, .capacity = 4096});
  auto* cb = shmring::detail::control(ring.segment());
  // Every role held by a live producer (roles are the kernel's semaphores:
  // scribbled owner words would not do).
  std::vector<Producer> holders;
  for (std::size_t i = 0; i < layout::kMaxProducers; ++i) {
    auto h = Producer::attach(ring.segment());
    REQUIRE(h);
    holders.push_back(std::move(*h));
  }
  cb->max_producers = 1000;
  std::byte after_table[64];
  auto* table_end = reinterpret_cast<std::byte*>(cb) + sizeof(*cb);
  std::memcpy(after_table, table_end, sizeof after_table);
  auto p = Producer::attach(ring.segment());
  REQUIRE_FALSE(p);
  CHECK(p.error().code == Errc::too_many_producers);
  CHECK(std::memcmp(after_table, table_end, sizeof after_table) == 0);
  cb->max_producers = layout::kMaxProducers;
}

TEST_CASE("hostile: scribbled claim intents never stop a producer") {
  // Producers never read intents (only the consumer does, for 0 words):
  // any value a peer writes there leaves claiming alone.
  testing::ScopedRing ring({.kind = Kind::mpsc, .capacity = 4096});
  auto p = Producer::attach(ring.segment());
  REQUIRE(p);
  auto* cb = shmring::detail::control(ring.segment());
  for (auto& s : cb->producers) s.intent.store(cb->tail.load());
  CHECK(p->try_write(as_bytes("x")) == Status::ok);
  for (auto& s : cb->producers) s.intent.store(0);
  CHECK(p->try_write(as_bytes("y")) == Status::ok);
}

TEST_CASE("hostile: a scribbled MPSC tail is corrupt, never a wild write") {
  for (std::uint64_t bad : {std::uint64_t{~0ULL}, std::uint64_t{~0ULL - 4},
                            std::uint64_t{4093}, std::uint64_t{1} << 63}) {
    INFO("tail " << bad);
    testing::ScopedRing ring({.kind = Kind::mpsc, .capacity = 4096});
    auto p = Producer::attach(ring.segment());
    REQUIRE(p);
    REQUIRE(p->try_write(as_bytes("one")) == Status::ok);
    const std::uint64_t good =
        shmring::detail::control(ring.segment())->tail.load();
    shmring::detail::control(ring.segment())->tail.store(bad);
    CHECK(p->try_reserve(1000).status == Status::corrupt);
    CHECK(p->try_reserve(8).status == Status::corrupt);
    shmring::detail::control(ring.segment())->tail.store(good);
    CHECK(p->try_write(as_bytes("two")) == Status::ok);
  }
}

TEST_CASE("hostile: a rejected tail is not trusted by the next peek") {
  // MPSC: its consumer loads the tail at a 0 word (SPSC readers never load
  // it: ring_unit_test, "a ring holding values no correct peer writes").
  testing::ScopedRing ring({.kind = Kind::mpsc, .capacity = 1024});
  auto p = Producer::attach(ring.segment());
  auto c = Consumer::attach(ring.segment());
  REQUIRE(p);
  REQUIRE(c);
  REQUIRE(p->try_write(as_bytes("real")) == Status::ok);
  auto got = c->try_peek();
  REQUIRE(got);
  c->release();
  auto* cb = shmring::detail::control(ring.segment());
  const std::uint64_t good = cb->tail.load();
  for (std::uint64_t bad : {good + 5000, good + 4, good + 1024 + 8}) {
    INFO("tail " << bad);
    cb->tail.store(bad);
    // Once seen, refused every time: the consumer must not walk the ring
    // up to a tail it already rejected.
    for (int i = 0; i < 3; ++i) {
      CHECK(c->try_peek().status == Status::corrupt);
      CHECK(c->corrupt_offset() < 1024);
    }
  }
  cb->tail.store(good);
  CHECK(c->try_peek().status == Status::would_block);
  REQUIRE(p->try_write(as_bytes("again")) == Status::ok);
  got = c->try_peek();
  REQUIRE(got);
  CHECK(as_string(got.record.bytes()) == "again");
}

TEST_CASE("hostile: scribbled semaphores neither crash nor hang") {
  testing::ScopedRing ring(
      {.kind = Kind::spsc, .capacity = 4096, .wait = WaitStrategy::semaphore});
  auto p = Producer::attach(ring.segment());
  auto c = Consumer::attach(ring.segment());
  REQUIRE(p);
  REQUIRE(c);
  auto* cb = shmring::detail::control(ring.segment());
  SECTION(
      "a waiter count of 2^32-1 (once: ~2^31 posts, then EOVERFLOW "
      "thrown through the waker)") {
    cb->data_ready.waiters.store(~0u);
    cb->space_ready.waiters.store(~0u);
    REQUIRE(p->try_write(as_bytes("x")) == Status::ok);  // wakes data_ready
    auto got = c->try_peek();
    REQUIRE(got);
    c->release();  // wakes space_ready
    CHECK(c->peek(20ms).status == Status::timed_out);
  }
  SECTION("glibc's futex flag word overwritten (once: abort() in glibc)") {
    std::memset(cb->data_sem + 8, 0xff, 8);
    std::memset(cb->space_sem + 8, 0xff, 8);
    // Sleeps on the scribbled semaphore, then is woken by a post on it.
    CHECK(c->peek(20ms).status == Status::timed_out);
    REQUIRE(p->try_write(as_bytes("y")) == Status::ok);
    auto got = c->peek(1s);
    REQUIRE(got);
    CHECK(as_string(got.record.bytes()) == "y");
    c->release();
  }
  SECTION("the counter at its maximum (sem_post: EOVERFLOW)") {
    std::memset(cb->data_sem, 0xff, 4);  // value bits of glibc's counter
    cb->data_ready.waiters.store(1);
    REQUIRE(p->try_write(as_bytes("z")) == Status::ok);
    auto got = c->peek(1s);
    REQUIRE(got);
    CHECK(as_string(got.record.bytes()) == "z");
  }
}

TEST_CASE("hostile: slot and counter scribbles leave a usable ring") {
  testing::ScopedRing ring({.kind = Kind::spsc, .capacity = 4096});
  auto* cb = shmring::detail::control(ring.segment());
  // A dead token in the producer slot is reaped; a dead consumer's role is
  // taken over; lifecycle counters are statistics, not trusted.
  cb->producers[0].owner.store(kDeadToken);
  cb->consumer.owner.store(kDeadToken);
  cb->producers_attached.store(0x7fffffff);
  cb->producers_seen.store(0);
  auto p = Producer::attach(ring.segment());
  auto c = Consumer::attach(ring.segment());
  REQUIRE(p);
  REQUIRE(c);
  REQUIRE(p->try_write(as_bytes("fine")) == Status::ok);
  auto got = c->try_peek();
  REQUIRE(got);
  CHECK(as_string(got.record.bytes()) == "fine");
  c->release();
  p->close();
  CHECK(c->peek(2s).status == Status::closed);
}

}  // namespace
}  // namespace shmring
