// The lock-free MPSC claim (docs/design/mpsc.md#claim) and what surrounds
// it: a producer stopped (SIGSTOP) or killed (kill -9) at every step of
// a claim, through the test hook detail::claim_hook; modular positions;
// handle/Segment lifetimes; reaper races; exec; the crash table.
//
// Control-block words are written and read relaxed: a test writes them in
// the thread whose handles read them next (or before it forks the child
// that does), and reads counters that this thread's consumer or producer
// updated, that a child it has reaped since updated, or that nobody did.
#include <signal.h>
#include <sys/sem.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <thread>

#include "tests/support.h"

namespace shmring {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using testing::as_bytes;
using testing::as_string;
using testing::attach_consumer;
using testing::attach_producer;
using testing::Beacon;
using testing::ChildGuard;
using testing::kHang;
using testing::kReclaimBound;
using testing::next_record;
using testing::park_until_killed;
using testing::ScopedRing;
using testing::spawn_producer;

constexpr std::uint64_t kCap = 4096;

// Moves the (idle) ring to `offset` bytes before its end, so that a child's
// 40-byte record (span 48) wraps: padding, then the record at offset 0.
void move_tail_near_end(Segment& seg, std::uint64_t offset_from_end) {
  testing::set_positions(seg, 7 * kCap + (kCap - offset_from_end));
}

// Child side of a hold: the step to stop at, how (stop or die), and the
// beacon announcing it. Globals: a hook is a plain function pointer.
std::atomic<int> g_step{-1};
std::atomic<bool> g_sigstop{false};
Beacon* g_beacon = nullptr;

void hold_hook(detail::ClaimStep step) {
  // relaxed: the child is single-threaded.
  if (g_step.load(std::memory_order_relaxed) != static_cast<int>(step)) return;
  g_step.store(-1, std::memory_order_relaxed);
  if (g_sigstop.load(std::memory_order_relaxed)) {
    ::raise(SIGSTOP);  // the parent continues us with SIGCONT
    return;
  }
  g_beacon->signal();
  ::_exit(park_until_killed());
}

// A child that claims one 40-byte record, held at `step` by hold_hook.
pid_t spawn_held_producer(ChildGuard& children, Segment& seg, Beacon& beacon,
                          int step, bool sigstop) {
  return spawn_producer(children, seg, [&beacon, step, sigstop](Producer& p) {
    g_beacon = &beacon;
    g_sigstop.store(sigstop, std::memory_order_relaxed);
    g_step.store(step, std::memory_order_relaxed);
    detail::claim_hook.store(&hold_hook, std::memory_order_relaxed);
    const std::string rec = "child record, forty bytes long, exactly!";
    auto r = p.reserve(rec.size(), kHang);
    if (!r) return 2;
    std::memcpy(r.bytes.data(), rec.data(), rec.size());
    p.commit();
    p.close();
    return 0;
  });
}

bool wait_stopped(pid_t pid) {
  int st = 0;
  return ::waitpid(pid, &st, WUNTRACED) == pid && WIFSTOPPED(st);
}

// A claim "holds" the consumer from this step on (its tail CAS is done).
bool claimed_at(int step) {
  return step >= static_cast<int>(detail::ClaimStep::after_cas);
}

// Runs check(step, seg, c, children, pid) for every step a claim can be
// held at, wrapping or not (only a wrapping claim has after_busy_header),
// each on a new MPSC ring with this thread's consumer `c` and a producer
// child `pid` held at that step: stopped by SIGSTOP if `sigstop`, else
// waiting at its beacon to be killed.
template <class Check>
void for_each_held_claim(bool sigstop, Check check) {
  for (int step = 0; step < detail::kClaimSteps; ++step) {
    for (bool wrap : {false, true}) {
      if (step == static_cast<int>(detail::ClaimStep::after_busy_header) &&
          !wrap) {
        continue;
      }
      CAPTURE(step, wrap);
      ScopedRing ring({.kind = Kind::mpsc, .capacity = kCap});
      Segment& seg = ring.segment();
      if (wrap) move_tail_near_end(seg, 16);
      Consumer c = attach_consumer(seg);
      Beacon beacon;
      ChildGuard children;
      const pid_t pid =
          spawn_held_producer(children, seg, beacon, step, sigstop);
      REQUIRE((sigstop ? wait_stopped(pid) : beacon.wait(kHang)));
      check(step, seg, c, children, pid);
    }
  }
}

TEST_CASE("claim: a producer stopped at any step never stops another") {
  for_each_held_claim(true, [](int step, Segment& seg, Consumer& c,
                               ChildGuard& children, pid_t pid) {
    // While it is stopped, another producer claims until the ring is
    // full; each try_write answers at once (no lock to wait for).
    Producer mine = attach_producer(seg);
    int written = 0;
    for (;; ++written) {
      const std::string rec = "r" + std::to_string(written);
      const Status s = mine.try_write(as_bytes(rec));
      if (s == Status::would_block) break;
      REQUIRE(s == Status::ok);
      if (!claimed_at(step)) {
        REQUIRE(next_record(c) == rec);  // nothing holds the consumer
        if (written > 1000) break;
      }
    }
    if (claimed_at(step)) {
      // The ring filled up behind the stopped claim (in order: the
      // consumer waits for it), minus that claim and the wrap padding.
      CHECK(written * 16 + 64 >= static_cast<int>(kCap));
      CHECK(c.peek(milliseconds(100)).status == Status::timed_out);
      CHECK(seg.info().records_reclaimed == 0);  // alive
    } else {
      CHECK(written > 1000);
    }
    REQUIRE(::kill(pid, SIGCONT) == 0);
    if (claimed_at(step)) {
      CHECK(next_record(c, kHang) ==
            "child record, forty bytes long, exactly!");
      for (int i = 0; i < written; ++i) {
        REQUIRE(next_record(c, kHang) == "r" + std::to_string(i));
      }
    } else {
      CHECK(next_record(c, kHang) ==
            "child record, forty bytes long, exactly!");
    }
    const auto st = children.wait(pid);
    REQUIRE(st.exited);
    CHECK(st.code == 0);
    CHECK(seg.info().records_reclaimed == 0);
  });
}

TEST_CASE("claim: a producer killed at any step is recovered") {
  for_each_held_claim(false, [](int step, Segment& seg, Consumer& c,
                                ChildGuard& children, pid_t pid) {
    Producer mine = attach_producer(seg);
    for (int i = 0; i < 3; ++i) {
      REQUIRE(mine.try_write(as_bytes("after " + std::to_string(i))) ==
              Status::ok);
    }
    children.kill_and_reap(pid);
    const auto dead_at = Clock::now();
    // The dead claim is skipped, nothing of it delivered, nothing lost.
    CHECK(next_record(c, kHang) == "after 0");
    const auto stuck = Clock::now() - dead_at;
    CHECK(stuck < kReclaimBound);
    CHECK(next_record(c, kHang) == "after 1");
    CHECK(next_record(c, kHang) == "after 2");
    mine.close();
    CHECK(next_record(c, kHang) == "<closed (end of stream)>");
    const auto reclaimed = seg.info().records_reclaimed;
    if (claimed_at(step)) {
      CHECK(reclaimed >= 1);
    } else {
      CHECK(reclaimed == 0);
    }
    // And the space is reusable: a full lap of records goes through.
    Producer again = attach_producer(seg);
    for (int i = 0; i < 300; ++i) {
      const std::string rec = "lap " + std::to_string(i);
      REQUIRE(again.write(as_bytes(rec), kHang) == Status::ok);
      REQUIRE(next_record(c, kHang) == rec);
    }
  });
}

// ---- A producer constructed while others move tail and the consumer
// head must not judge the ring corrupt (a transiently insane pair).
TEST_CASE("claim: a transiently insane pair at attach is not corrupt") {
  ScopedRing ring({.kind = Kind::mpsc, .capacity = kCap});
  Segment& seg = ring.segment();
  // What the constructor could load: a tail older than the head it read
  // next (both moved by others in between).
  shmring::detail::control(seg)->tail.store(4096, std::memory_order_relaxed);
  shmring::detail::control(seg)->head.store(8192, std::memory_order_relaxed);
  Producer p = attach_producer(seg);
  // The ring is healthy again (others went on): reserve must work.
  shmring::detail::control(seg)->tail.store(8192, std::memory_order_relaxed);
  CHECK(p.try_write(as_bytes("fine")) == Status::ok);
  Consumer c = attach_consumer(seg);
  CHECK(next_record(c) == "fine");
}

TEST_CASE("claim: attaching under traffic never yields corrupt") {
  ScopedRing ring({.kind = Kind::mpsc, .capacity = kCap});
  Segment& seg = ring.segment();
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::thread consumer([&] {
    Consumer c = attach_consumer(seg);
    // relaxed: a flag polled in a loop.
    while (!stop.load(std::memory_order_relaxed)) {
      auto p = c.peek(milliseconds(10));
      if (p) c.release();
      if (p.status == Status::corrupt)
        bad.fetch_add(1, std::memory_order_relaxed);
    }
  });
  std::thread writer([&] {
    Producer p = attach_producer(seg);
    while (!stop.load(std::memory_order_relaxed)) {
      const Status s = p.write(as_bytes("traffic"), milliseconds(10));
      if (s == Status::corrupt) bad.fetch_add(1, std::memory_order_relaxed);
    }
  });
  for (int i = 0; i < 2000; ++i) {
    Producer p = attach_producer(seg);
    const Status s = p.write(as_bytes("x"), milliseconds(100));
    if (s == Status::corrupt) bad.fetch_add(1, std::memory_order_relaxed);
  }
  stop.store(true, std::memory_order_relaxed);
  writer.join();
  consumer.join();
  CHECK(bad.load(std::memory_order_relaxed) == 0);  // after join()
}

// ---- Positions are compared modulo 2^64.
TEST_CASE("claim: positions wrap past 2^64 on both ring kinds") {
  for (Kind kind : {Kind::spsc, Kind::mpsc}) {
    CAPTURE(static_cast<int>(kind));
    ScopedRing ring({.kind = kind, .capacity = 256});
    Segment& seg = ring.segment();
    testing::set_positions(seg, (~std::uint64_t{0} - 255) & ~std::uint64_t{7});
    Producer p = attach_producer(seg);
    Consumer c = attach_consumer(seg);
    for (int i = 0; i < 200; ++i) {
      const std::string rec = "wrap " + std::to_string(i);
      REQUIRE(p.try_write(as_bytes(rec)) == Status::ok);
      REQUIRE(next_record(c) == rec);
    }
    CHECK(shmring::detail::control(seg)->tail.load(std::memory_order_relaxed) <
          4096);  // really went past 2^64
    CHECK(next_record(c) == "<would block>");
  }
}

// ---- Racing reapers: a loser's late "died" must not overwrite a clean
// close; the slot says how its holder left in the CAS that freed it.
TEST_CASE("claim: a clean SPSC close is closed even after a stale 'died'") {
  ScopedRing ring({.kind = Kind::spsc, .capacity = kCap});
  Segment& seg = ring.segment();
  Consumer c = attach_consumer(seg);
  ChildGuard children;
  const pid_t pid = spawn_producer(children, seg, [](Producer&) -> int {
    ::_exit(0);  // dies registered
  });
  const auto st = children.wait(pid);
  REQUIRE(st.exited);
  REQUIRE(st.code == 0);
  CHECK(c.peek(kHang).status == Status::peer_dead);
  {
    Producer p = attach_producer(seg);
    REQUIRE(p.try_write(as_bytes("clean")) == Status::ok);
  }  // closed
  // What a losing reaper wrote late in the old protocol.
  shmring::detail::control(seg)->last_exit.store(
      static_cast<std::uint32_t>(layout::LastExit::died),
      std::memory_order_relaxed);
  CHECK(next_record(c, kHang) == "clean");
  CHECK(c.peek(kHang).status == Status::closed);
}

TEST_CASE("claim: attach ignores a scribbled owner word of a free role") {
  // The role semaphore decides: a free role is taken whatever the slot
  // word says (the old "role taken (pid 0)" race).
  ScopedRing ring({.kind = Kind::spsc, .capacity = kCap});
  Segment& seg = ring.segment();
  shmring::detail::control(seg)->producers[0].owner.store(self_token(),
                                          std::memory_order_relaxed);
  auto p = Producer::attach(seg);
  REQUIRE(p);
  auto q = Producer::attach(seg);
  REQUIRE_FALSE(q);
  CHECK(q.error().code == Errc::role_taken);
  CHECK(q.error().message.find("pid " + std::to_string(::getpid())) !=
        std::string::npos);
}

// ---- exec() without close keeps the role until that process exits, then
// it is reaped (docs/design/liveness.md#liveness-the-kernel-guarantees).
TEST_CASE("claim: a producer that exec()s holds its role until it exits") {
  ScopedRing ring({.kind = Kind::mpsc, .capacity = kCap});
  Segment& seg = ring.segment();
  Consumer c = attach_consumer(seg);
  ChildGuard children;
  Beacon attached;
  const pid_t pid = spawn_producer(children, seg, [&attached](Producer& p) {
    if (p.try_write(as_bytes("before exec")) != Status::ok) return 2;
    attached.signal();
    ::execl("/bin/sleep", "sleep", "0.6", static_cast<char*>(nullptr));
    return 3;
  });
  REQUIRE(attached.wait(kHang));
  CHECK(next_record(c, kHang) == "before exec");
  // The exec'ed image runs: the registration is alive, no end of stream.
  CHECK(c.peek(milliseconds(300)).status == Status::timed_out);
  CHECK(seg.info().producers_died == 0);
  const auto st = children.wait(pid);
  REQUIRE(st.exited);
  // Exited without close: reaped within a slice or so.
  CHECK(c.peek(kHang).status == Status::closed);
  CHECK(seg.info().producers_died == 1);
}

// ---- The crash table (docs/design/crash-tables.md): records an SPSC
// producer committed with commit_deferred() and had not published when it
// died are lost (the documented behaviour); everything it flushed is
// delivered.
TEST_CASE("claim: a dead SPSC producer's unflushed deferred records") {
  ScopedRing ring({.kind = Kind::spsc, .capacity = kCap});
  Segment& seg = ring.segment();
  Consumer c = attach_consumer(seg);
  ChildGuard children;
  Beacon ready;
  const pid_t pid = spawn_producer(children, seg, [&ready](Producer& p) {
    for (const char* s : {"a", "b"}) {
      auto r = p.try_reserve(1);
      if (!r) return 2;
      r.bytes[0] = static_cast<std::byte>(s[0]);
      p.commit_deferred(1);
    }
    p.flush();
    for (const char* s : {"c", "d"}) {
      auto r = p.try_reserve(1);
      if (!r) return 3;
      r.bytes[0] = static_cast<std::byte>(s[0]);
      p.commit_deferred(1);  // never flushed
    }
    ready.signal();
    // _exit, not return: the producer's close() would flush them.
    ::_exit(park_until_killed());
  });
  REQUIRE(ready.wait(kHang));
  children.kill_and_reap(pid);
  CHECK(next_record(c, kHang) == "a");
  CHECK(next_record(c, kHang) == "b");
  CHECK(c.peek(kHang).status == Status::peer_dead);
}

}  // namespace
}  // namespace shmring

namespace shmring {
namespace {

bool sem_set_exists(int semid) {
  struct semid_ds ds {};
  return ::semctl(semid, 0, IPC_STAT, &ds) == 0;
}

TEST_CASE("roles: the semaphore set lives and dies with its ring") {
  int semid = -1;
  {
    ScopedRing ring({.kind = Kind::mpsc, .capacity = kCap});
    Segment& seg = ring.segment();
    semid = shmring::detail::sem_id(seg);
    REQUIRE(semid >= 0);
    CHECK(seg.info().sem_present);
    CHECK(seg.info().sem_id == semid);
    // Peers killed with -9 while holding roles leave nothing held.
    ChildGuard children;
    Beacon up;
    const pid_t pid = children.spawn([&seg, &up] {
      auto c = Consumer::attach(seg);
      auto p = Producer::attach(seg);
      if (!c || !p) return 1;
      up.signal();
      return park_until_killed();
    });
    REQUIRE(up.wait(kHang));
    CHECK(::semctl(semid, layout::consumer_sem(), GETVAL) == 1);
    CHECK(::semctl(semid, layout::consumer_sem(), GETPID) == pid);
    children.kill_and_reap(pid);
    for (int i = 0; i < layout::kSemCount; ++i) {
      CHECK(::semctl(semid, i, GETVAL) == 0);
    }
    CHECK(seg.info().producers.size() == 1);
    CHECK_FALSE(seg.info().producers[0].alive);
    CHECK_FALSE(seg.info().consumer_alive);
  }
  CHECK_FALSE(sem_set_exists(semid));  // removed with the ring
}

TEST_CASE("roles: a keyed ring's set has the ring's key and mode") {
  const key_t key = testing::test_key(1);  // this process's key block
  auto seg = Segment::create(
      key, {.kind = Kind::spsc, .capacity = kCap, .mode = 0640});
  REQUIRE(seg);
  struct semid_ds ds {};
  REQUIRE(::semctl(shmring::detail::sem_id(*seg), 0, IPC_STAT, &ds) == 0);
  CHECK(ds.sem_perm.__key == key);
  CHECK((ds.sem_perm.mode & 0777) == 0640);
  CHECK(ds.sem_nsems == static_cast<unsigned long>(layout::kSemCount));
  const int semid = shmring::detail::sem_id(*seg);
  REQUIRE(Segment::remove(key));
  CHECK_FALSE(sem_set_exists(semid));
}

}  // namespace
}  // namespace shmring
