// Lifetimes on an MPSC ring: who may die where, and what the others see.
// Every kill happens at a point the child announced through a Beacon, so
// the interesting windows (between reserve and commit, between peek and
// release) are hit every run rather than by luck.
//
// Control-block words are read relaxed: every update a test here checks
// for was made by this thread (the consumer's reclaim or reap inside
// peek(), a producer's reap inside attach) before the read, or by a child
// this thread reaped since, or never.
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "tests/support.h"

namespace shmring {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using testing::attach_consumer;
using testing::attach_producer;
using testing::Beacon;
using testing::ChildGuard;
using testing::kHang;
using testing::kReclaimBound;
using testing::park_until_killed;
using testing::ScopedRing;
using testing::spawn_producer;

double ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// A record: 8-byte sequence number, then fill_payload bytes.
constexpr std::uint32_t kPayload = 40;

void write_seq(std::span<std::byte> out, std::uint32_t producer,
               std::uint64_t seq) {
  std::memcpy(out.data(), &seq, sizeof seq);
  testing::fill_payload(out.subspan(sizeof seq), producer, seq);
}

// The sequence number of a well-formed record of `producer`, or -1.
std::int64_t read_seq(const Record& r, std::uint32_t producer) {
  if (r.size != kPayload) return -1;
  std::uint64_t seq;
  std::memcpy(&seq, r.data, sizeof seq);
  if (!testing::check_payload(r.bytes().subspan(sizeof seq), producer, seq)) {
    return -1;
  }
  return static_cast<std::int64_t>(seq);
}

void expect_clean_exit(ChildGuard& children, pid_t pid) {
  const auto st = children.wait(pid);
  INFO("child " << st.describe());
  REQUIRE(st.exited);
  REQUIRE(st.code == 0);
}

// A record of `seq` from producer 9 (the test's own producer).
Status write_after(Producer& p, std::uint64_t seq) {
  std::byte buf[kPayload];
  write_seq(buf, 9, seq);
  return p.write(buf, kHang);
}

// A producer child (producer 1) that commits records 0..committed-1, then
// reserves record `committed`, writes half of it, announces that on
// `reserved` and waits to be killed. Its slot goes to `*slot` if given.
pid_t spawn_producer_dying_in_reserve(
    ChildGuard& children, Segment& seg, Beacon& reserved, int committed,
    testing::SharedBlock<std::atomic<int>>* slot = nullptr) {
  return spawn_producer(children, seg,
                        [&reserved, committed, slot](Producer& p) {
                          // relaxed: published to the parent by the Beacon's
                          // pipe write.
                          if (slot != nullptr)
                            (*slot)->store(p.producer_index(),
                                           std::memory_order_relaxed);
                          std::byte buf[kPayload];
                          for (int seq = 0; seq < committed; ++seq) {
                            write_seq(buf, 1, seq);
                            if (p.write(buf, kHang) != Status::ok) return 2;
                          }
                          auto r = p.reserve(kPayload, kHang);
                          if (!r) return 3;
                          write_seq(buf, 1, committed);
                          std::memcpy(r.bytes.data(), buf, kPayload / 2);
                          reserved.signal();
                          return park_until_killed();
                        });
}

// The owner of the busy record ahead of the consumer just died: the next
// record (`seq` of producer 9) must come within kReclaimBound, and the
// busy record is counted as reclaimed.
void expect_reclaimed_in_time(Consumer& c, Segment& seg, std::int64_t seq) {
  const auto dead_at = Clock::now();
  auto p = c.peek(kHang);
  const auto stuck = Clock::now() - dead_at;
  REQUIRE(p);
  CHECK(read_seq(p.record, 9) == seq);
  c.release();
  INFO("stuck on the dead owner's record for " << ms(stuck) << " ms");
  CHECK(stuck < kReclaimBound);
  CHECK(seg.info().records_reclaimed == 1);
}

TEST_CASE("lifetime: a slow but live producer is never reclaimed") {
  ScopedRing ring({.kind = Kind::mpsc, .capacity = 4096});
  Segment& seg = ring.segment();
  Consumer c = attach_consumer(seg);
  Beacon reserved;
  ChildGuard children;
  // 3x the reclaim bound's target: the consumer checks the owner's
  // liveness every 10 ms of the stall, i.e. ~150 times.
  constexpr auto kSlow = milliseconds(1500);
  const pid_t pid = spawn_producer(children, seg, [&](Producer& p) {
    auto r = p.reserve(kPayload, kHang);
    if (!r) return 2;
    std::byte buf[kPayload];
    write_seq(buf, 1, 0);
    std::memcpy(r.bytes.data(), buf, kPayload / 2);  // half written
    reserved.signal();
    std::this_thread::sleep_for(kSlow);
    std::memcpy(r.bytes.data() + kPayload / 2, buf + kPayload / 2,
                kPayload - kPayload / 2);
    p.commit();
    p.close();
    return 0;
  });
  REQUIRE(reserved.wait(kHang));
  const auto start = Clock::now();
  // Records committed behind the busy one wait for it.
  Producer mine = attach_producer(seg);
  REQUIRE(write_after(mine, 0) == Status::ok);
  REQUIRE(write_after(mine, 1) == Status::ok);

  auto first = c.peek(kHang);
  const auto waited = Clock::now() - start;
  REQUIRE(first);
  CHECK(read_seq(first.record, 1) == 0);  // intact: both halves
  c.release();
  // The consumer really did wait for the producer, not skip it (the
  // margin is this process's wake-up latency after the beacon).
  CHECK(waited >= kSlow / 3);
  CHECK(seg.info().records_reclaimed == 0);
  for (std::int64_t seq = 0; seq < 2; ++seq) {
    auto p = c.peek(kHang);
    REQUIRE(p);
    CHECK(read_seq(p.record, 9) == seq);
    c.release();
  }
  expect_clean_exit(children, pid);
  mine.close();
  CHECK(c.peek(kHang).status == Status::closed);
  CHECK(seg.info().producers_died == 0);
}

TEST_CASE("lifetime: a dead producer's busy record is reclaimed quickly") {
  const int segments_before = testing::own_segment_count();
  {
    ScopedRing ring({.kind = Kind::mpsc, .capacity = 1 << 16});
    Segment& seg = ring.segment();
    Consumer c = attach_consumer(seg);
    Beacon reserved;
    ChildGuard children;
    constexpr int kCommitted = 100;
    const pid_t pid =
        spawn_producer_dying_in_reserve(children, seg, reserved, kCommitted);
    REQUIRE(reserved.wait(kHang));
    Producer mine = attach_producer(seg);
    for (int seq = 0; seq < 3; ++seq) {
      REQUIRE(write_after(mine, seq) == Status::ok);
    }
    // Everything the child committed comes first...
    for (std::int64_t seq = 0; seq < kCommitted; ++seq) {
      auto p = c.peek(kHang);
      REQUIRE(p);
      REQUIRE(read_seq(p.record, 1) == seq);
      c.release();
    }
    // ...then the consumer is stuck on its busy record while it lives.
    CHECK(c.peek(milliseconds(100)).status == Status::timed_out);
    CHECK(seg.info().records_reclaimed == 0);

    children.kill_and_reap(pid);
    expect_reclaimed_in_time(c, seg, 0);
    for (std::int64_t seq = 1; seq < 3; ++seq) {
      auto q = c.peek(kHang);
      REQUIRE(q);
      CHECK(read_seq(q.record, 9) == seq);
      c.release();
    }
    // The half-written record is never delivered, and the dead producer
    // does not hold the stream open.
    mine.close();
    CHECK(c.peek(kHang).status == Status::closed);
    CHECK(seg.info().producers_died == 1);
    CHECK(shmring::detail::control(seg)->producers_attached.load(std::memory_order_relaxed) ==
          0);
  }
  CHECK(testing::own_segment_count() == segments_before);
}

TEST_CASE(
    "lifetime: a slot re-claimed by a new producer frees the old "
    "owner's record") {
  // One slot only: the new producer must reap the dead one and take its
  // slot, so the busy record's slot index names a live process. Only the
  // generation tells them apart.
  ScopedRing ring({.kind = Kind::mpsc, .capacity = 4096, .max_producers = 1});
  Segment& seg = ring.segment();
  Consumer c = attach_consumer(seg);
  Beacon reserved;
  ChildGuard children;
  const pid_t pid = spawn_producer_dying_in_reserve(children, seg, reserved, 0);
  REQUIRE(reserved.wait(kHang));
  children.kill_and_reap(pid);
  Producer mine = attach_producer(seg);
  CHECK(mine.producer_index() == 0);
  CHECK(shmring::detail::control(seg)->producers[0].generation.load(
            std::memory_order_relaxed) == 2);
  REQUIRE(write_after(mine, 0) == Status::ok);
  auto p = c.peek(kHang);
  REQUIRE(p);
  CHECK(read_seq(p.record, 9) == 0);
  CHECK(seg.info().records_reclaimed == 1);
}

TEST_CASE("lifetime: pid reuse cannot make a dead owner look alive") {
  // Liveness is the role semaphore the kernel released when the owner
  // died: a slot whose token names a live process (what a recycled pid
  // looks like: here, the test process's own token) is still dead.
  const ProcessToken me = self_token();
  REQUIRE(me != 0);

  SECTION("a dead producer's slot naming a live pid is dead") {
    ScopedRing ring({.kind = Kind::mpsc, .capacity = 4096});
    Segment& seg = ring.segment();
    Consumer c = attach_consumer(seg);
    Beacon reserved;
    ChildGuard children;
    testing::SharedBlock<std::atomic<int>> child_slot;
    const pid_t pid = spawn_producer_dying_in_reserve(children, seg, reserved,
                                                      0, &child_slot);
    REQUIRE(reserved.wait(kHang));
    Producer mine = attach_producer(seg);
    REQUIRE(write_after(mine, 0) == Status::ok);
    // The owner is alive: its record holds the consumer back.
    CHECK(c.peek(milliseconds(100)).status == Status::timed_out);
    CHECK(seg.info().records_reclaimed == 0);

    children.kill_and_reap(pid);
    const int slot = child_slot->load(std::memory_order_relaxed);
    shmring::detail::control(seg)->producers[slot].owner.store(me, std::memory_order_relaxed);
    expect_reclaimed_in_time(c, seg, 0);
    // And the ghost registration is reaped.
    mine.close();
    CHECK(c.peek(kHang).status == Status::closed);
    CHECK(shmring::detail::control(seg)->producers[slot].owner.load(
              std::memory_order_relaxed) <= 1);
    CHECK(seg.info().producers_died == 1);
  }

  SECTION("a dead consumer's slot naming a live pid is taken over") {
    ScopedRing ring({.kind = Kind::mpsc, .capacity = 4096});
    Segment& seg = ring.segment();
    {
      Consumer first = attach_consumer(seg);
      auto second = Consumer::attach(seg);
      REQUIRE_FALSE(second);
      CHECK(second.error().code == Errc::role_taken);
    }
    Beacon attached;
    ChildGuard children;
    const pid_t pid = children.spawn([&] {
      auto c = Consumer::attach(seg);
      if (!c) return 1;
      attached.signal();
      return park_until_killed();
    });
    REQUIRE(attached.wait(kHang));
    CHECK_FALSE(Consumer::attach(seg));  // the child holds it
    children.kill_and_reap(pid);
    shmring::detail::control(seg)->consumer.owner.store(me, std::memory_order_relaxed);
    Consumer c = attach_consumer(seg);
    CHECK(shmring::detail::control(seg)->consumers_died.load(std::memory_order_relaxed) == 1);
    CHECK(shmring::detail::control(seg)->consumer.owner.load(std::memory_order_relaxed) == me);
  }
}

TEST_CASE("lifetime: a producer whose main thread exited is alive") {
  // The kernel releases a role semaphore when the process exits, not when
  // its main thread does: pthread_exit() in main leaves a live producer.
  ScopedRing ring({.kind = Kind::mpsc, .capacity = 1 << 16});
  Segment& seg = ring.segment();
  Consumer c = attach_consumer(seg);
  ChildGuard children;
  constexpr int kRecords = 200;
  const pid_t pid = spawn_producer(children, seg, [&](Producer& attached) {
    std::thread([p = std::move(attached)]() mutable {
      std::this_thread::sleep_for(milliseconds(300));  // leader is a zombie
      std::byte buf[kPayload];
      for (int seq = 0; seq < kRecords; ++seq) {
        write_seq(buf, 1, seq);
        if (p.write(buf, kHang) != Status::ok) ::_exit(2);
      }
      p.close();
      ::_exit(0);
    }).detach();
    // The main thread alone exits (no unwinding, no exit_group): what
    // pthread_exit() in main does.
    ::syscall(SYS_exit, 0);
    return 0;
  });
  for (int seq = 0; seq < kRecords; ++seq) {
    auto p = c.peek(kHang);
    REQUIRE(p);
    REQUIRE(read_seq(p.record, 1) == seq);
    c.release();
  }
  CHECK(c.peek(kHang).status == Status::closed);
  CHECK(seg.info().producers_died == 0);
  CHECK(seg.info().records_reclaimed == 0);
  expect_clean_exit(children, pid);
}

// Writes records 0..4 (producer 9) through `mine`, then starts a consumer
// child that releases `released` of them and peeks `held` more without
// releasing them; returns once the child holds them, waiting to be killed.
pid_t spawn_consumer_holding(ChildGuard& children, Segment& seg, Producer& mine,
                             int released, int held) {
  for (int seq = 0; seq < 5; ++seq) {
    REQUIRE(write_after(mine, seq) == Status::ok);
  }
  Beacon beacon;
  const pid_t pid = children.spawn([&seg, &beacon, released, held] {
    auto c = Consumer::attach(seg);
    if (!c) return 1;
    for (int i = 0; i < released; ++i) {
      auto p = c->peek(kHang);
      if (!p || read_seq(p.record, 9) != i) return 2;
      c->release();
    }
    for (int i = 0; i < held; ++i) {
      auto p = c->peek(kHang);
      if (!p || read_seq(p.record, 9) != released + i) return 3;
    }
    beacon.signal();
    return park_until_killed();
  });
  REQUIRE(beacon.wait(kHang));
  return pid;
}

TEST_CASE("lifetime: a producer blocked on a dead consumer gets peer_dead") {
  ScopedRing ring({.kind = Kind::mpsc, .capacity = 1024});
  Segment& seg = ring.segment();
  Producer mine = attach_producer(seg);
  ChildGuard children;
  const pid_t pid = spawn_consumer_holding(children, seg, mine, 3, 2);
  CHECK(mine.consumer_alive());
  children.kill_and_reap(pid);
  CHECK_FALSE(mine.consumer_alive());

  // Fill the ring; then a blocking reserve must not wait forever.
  std::uint64_t seq = 5;
  std::byte buf[kPayload];
  for (;; ++seq) {
    write_seq(buf, 9, seq);
    const Status s = mine.try_write(buf);
    if (s == Status::would_block) break;
    REQUIRE(s == Status::ok);
  }
  CHECK(mine.reserve(kPayload, kHang).status == Status::peer_dead);
  CHECK(mine.write(buf, kHang) == Status::peer_dead);

  // A new consumer resumes at the last released record: the two the dead
  // one peeked come again (at-least-once), nothing is lost.
  Consumer c = attach_consumer(seg);
  CHECK(shmring::detail::control(seg)->consumers_died.load(std::memory_order_relaxed) == 1);
  CHECK(mine.consumer_alive());
  for (std::uint64_t want = 3; want < seq; ++want) {
    auto p = c.peek(kHang);
    REQUIRE(p);
    REQUIRE(read_seq(p.record, 9) == static_cast<std::int64_t>(want));
    c.release();
  }
  CHECK(c.try_peek().status == Status::would_block);
  // And the producer goes on.
  REQUIRE(write_after(mine, seq) == Status::ok);
  auto p = c.peek(kHang);
  REQUIRE(p);
  CHECK(read_seq(p.record, 9) == static_cast<std::int64_t>(seq));
  c.release();

  // A consumer that detached (rather than died) is gone just the same.
  c.close();
  CHECK_FALSE(mine.consumer_alive());
  for (++seq;; ++seq) {
    write_seq(buf, 9, seq);
    const Status s = mine.try_write(buf);
    if (s == Status::would_block) break;
    REQUIRE(s == Status::ok);
  }
  CHECK(mine.reserve(kPayload, kHang).status == Status::peer_dead);
}

TEST_CASE("lifetime: wait_for_consumer waits for the next consumer") {
  ScopedRing ring({.kind = Kind::mpsc, .capacity = 1024});
  Segment& seg = ring.segment();
  Producer mine =
      attach_producer(seg, ProducerOptions{.wait_for_consumer = true});
  ChildGuard children;
  const pid_t pid = spawn_consumer_holding(children, seg, mine, 3, 2);
  children.kill_and_reap(pid);

  // Far more than the ring holds: the writer must block, then go on.
  constexpr std::uint64_t kTotal = 200;
  std::atomic<std::uint64_t> written{5};
  std::atomic<int> bad_status{-1};
  std::thread writer([&] {
    for (std::uint64_t seq = 5; seq < kTotal; ++seq) {
      const Status s = write_after(mine, seq);
      if (s != Status::ok) {
        // relaxed: read after join().
        bad_status.store(static_cast<int>(s), std::memory_order_relaxed);
        return;
      }
      // relaxed: a progress counter; the main thread only compares values.
      written.store(seq + 1, std::memory_order_relaxed);
    }
  });
  // Wait until the writer stops making progress: it is blocked on the full
  // ring, not failing (a peer_dead would end the thread).
  std::uint64_t seen = 0;
  for (int stable = 0; stable < 3;) {
    std::this_thread::sleep_for(milliseconds(150));
    const std::uint64_t now = written.load(std::memory_order_relaxed);
    stable = now == seen ? stable + 1 : 0;
    seen = now;
  }
  CHECK(seen < kTotal);
  CHECK(bad_status.load(std::memory_order_relaxed) == -1);

  Consumer c = attach_consumer(seg);
  for (std::uint64_t want = 3; want < kTotal; ++want) {
    auto p = c.peek(kHang);
    REQUIRE(p);
    REQUIRE(read_seq(p.record, 9) == static_cast<std::int64_t>(want));
    c.release();
  }
  writer.join();
  CHECK(bad_status.load(std::memory_order_relaxed) == -1);
  CHECK(written.load(std::memory_order_relaxed) == kTotal);
}

}  // namespace
}  // namespace shmring
