// The SPSC ring between real processes: forked producers and consumers on
// one segment, each attaching after the fork (a Producer or Consumer must
// never be inherited across fork). Checks delivery of every record in order
// and intact with each wait strategy, that a blocked consumer sleeps, and
// what each side sees when the other is killed -9 or restarted.
//
// Children report through exit codes (and a shared block); the parent holds
// every assertion.
#include <signal.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "tests/support.h"

namespace shmring {
namespace {

using namespace std::chrono_literals;
using testing::ChildGuard;
using testing::SharedBlock;
using Clock = std::chrono::steady_clock;

using testing::mix64;

// Record `seq`: a length from the sequence number, the sequence number in
// its first 8 bytes (when there is room), a checksum-like pattern of the
// sequence number after that, and its low bits as the type. A lost,
// repeated, reordered or torn record fails check_record().
struct Format {
  std::size_t min_len = 0;
  std::size_t max_len = 1024;
  std::size_t length(std::uint64_t seq) const {
    return min_len + mix64(seq) % (max_len - min_len + 1);
  }
};

std::uint16_t type_of(std::uint64_t seq) {
  return static_cast<std::uint16_t>(seq & layout::kMaxType);
}

bool check_record(const Record& r, std::uint64_t seq, const Format& f) {
  if (r.size != f.length(seq) || r.type != type_of(seq)) return false;
  return testing::check_seq_record(r.bytes(), seq);
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             Clock::now().time_since_epoch())
      .count();
}

// What children tell the parent. Lock-free atomics in a MAP_SHARED page.
// Accesses are relaxed where they carry nothing else: results read after
// the child that wrote them was reaped (waitpid orders them) or by a child
// forked after that, and progress counters that are only polled. The
// `ready` handshakes are release/acquire (what one side did before it,
// such as attaching, is done when the other goes on), as are the counters
// whose comments say so.
struct Shared {
  std::atomic<std::uint64_t> committed{0};  // producer: records committed
  std::atomic<std::uint64_t> peeked{0};     // consumer: seq+1 of the last
                                            // record verified
  std::atomic<std::uint64_t> released{0};   // consumer: records released
  std::atomic<std::uint64_t> duplicates{0};
  std::atomic<int> status{-1};           // a Status, as int
  std::atomic<std::int64_t> done_ns{0};  // steady clock, system-wide
  std::atomic<std::int64_t> cpu_ns{0};
  std::atomic<std::int64_t> wall_ns{0};
  std::atomic<std::int64_t> sleeps{0};  // voluntary context switches
  std::atomic<int> ready{0};
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

Segment attach_or_die(int shmid) {
  auto seg = Segment::attach_id(shmid, Kind::spsc);
  if (!seg) {
    std::fprintf(stderr, "child: attach_id: %s\n", seg.error().message.c_str());
    ::_exit(2);
  }
  return std::move(seg).value();
}

// Producer child: `n` records, blocking reserve; commit_deferred for some
// (published by the next commit or by close). Exit 0 when all are written.
int produce(int shmid, std::uint64_t n, Format f, Shared* sh,
            ProducerOptions options = {}, bool defer = true) {
  Segment seg = attach_or_die(shmid);
  auto p = Producer::attach(seg, options);
  if (!p) {
    std::fprintf(stderr, "producer: %s\n", p.error().message.c_str());
    return 3;
  }
  for (std::uint64_t seq = 0; seq < n; ++seq) {
    const std::size_t len = f.length(seq);
    Reservation r = p->reserve(len, 60s);
    if (!r) {
      sh->status.store(static_cast<int>(r.status), std::memory_order_relaxed);
      sh->done_ns.store(now_ns(), std::memory_order_relaxed);
      std::fprintf(stderr, "producer: reserve of record %llu: %s\n",
                   static_cast<unsigned long long>(seq), to_string(r.status));
      return 10;
    }
    testing::fill_seq_record(r.bytes, seq);
    if (defer && seq % 5 == 3 && seq + 1 < n) {
      p->commit_deferred(len, type_of(seq));
    } else {
      p->commit(len, type_of(seq));
      // Stored after commit(), so it never claims an unpublished record.
      // release: pairs with the parent's load (a progress counter only).
      sh->committed.store(seq + 1, std::memory_order_release);
    }
  }
  p->close();
  sh->status.store(static_cast<int>(Status::ok), std::memory_order_relaxed);
  return 0;
}

// Consumer child: expects records `first`.. in order until end of stream
// (or until `n` records if n != 0, then exits without closing). Exit 0 if
// every record was right and the stream ended with `want_end`.
int consume(int shmid, Format f, Shared* sh, Status want_end,
            std::uint64_t expect_total) {
  Segment seg = attach_or_die(shmid);
  auto c = Consumer::attach(seg);
  if (!c) {
    std::fprintf(stderr, "consumer: %s\n", c.error().message.c_str());
    return 3;
  }
  std::uint64_t expected = 0;
  std::vector<Record> batch(32);
  for (std::uint64_t round = 0;; ++round) {
    std::size_t n = 0;
    Status s;
    if (round % 3 == 0) {
      Peeked one = c->peek(60s);
      s = one.status;
      if (one) {
        batch[0] = one.record;
        n = 1;
      }
    } else {
      const PeekedBatch pb = c->peek_batch(batch, 60s);
      s = pb.status;
      n = pb.records.size();
    }
    if (s != Status::ok) {
      sh->status.store(static_cast<int>(s), std::memory_order_relaxed);
      sh->done_ns.store(now_ns(), std::memory_order_relaxed);
      if (s != want_end) {
        std::fprintf(stderr, "consumer: after %llu records: %s (wanted %s)\n",
                     static_cast<unsigned long long>(expected), to_string(s),
                     to_string(want_end));
        return 20;
      }
      if (expect_total != 0 && expected != expect_total) {
        std::fprintf(stderr, "consumer: %llu records, wanted %llu\n",
                     static_cast<unsigned long long>(expected),
                     static_cast<unsigned long long>(expect_total));
        return 21;
      }
      return 0;
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (!check_record(batch[i], expected, f)) {
        std::fprintf(stderr,
                     "consumer: record %llu wrong (size %u, type %u, seq "
                     "field %llu)\n",
                     static_cast<unsigned long long>(expected), batch[i].size,
                     batch[i].type,
                     static_cast<unsigned long long>(
                         testing::seq_stamp(batch[i].bytes())));
        return 22;
      }
      ++expected;
      sh->peeked.store(expected, std::memory_order_release);
    }
    c->release();
  }
}

struct Transfer {
  WaitStrategy wait;
  std::uint64_t records;
  std::uint64_t capacity;
};

void transfer(const Transfer& t) {
  CAPTURE(static_cast<int>(t.wait), t.records, t.capacity);
  const int before = testing::own_segment_count();
  {
    testing::ScopedRing ring({.capacity = t.capacity, .wait = t.wait});
    const int id = ring.segment().id();
    SharedBlock<Shared> sh;
    ChildGuard children;
    const Format f;
    const auto t0 = Clock::now();
    const pid_t c = children.spawn(
        [&] { return consume(id, f, &*sh, Status::closed, t.records); });
    const pid_t p =
        children.spawn([&] { return produce(id, t.records, f, &*sh); });
    const auto ps = children.wait(p, 240s);
    const auto cs = children.wait(c, 60s);
    const double secs =
        std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("transfer: wait=%d %llu records through %llu bytes in %.2f s\n",
                static_cast<int>(t.wait),
                static_cast<unsigned long long>(t.records),
                static_cast<unsigned long long>(t.capacity), secs);
    INFO("producer " << ps.describe() << ", consumer " << cs.describe()
                     << ", consumer verified "
                     << sh->peeked.load(std::memory_order_relaxed));
    REQUIRE(ps.exited);
    REQUIRE(ps.code == 0);
    REQUIRE(cs.exited);
    REQUIRE(cs.code == 0);
    CHECK(sh->peeked.load(std::memory_order_relaxed) == t.records);
  }
  CHECK(testing::own_segment_count() == before);
}

TEST_CASE("1,000,000 records between processes, futex waits") {
  transfer({WaitStrategy::futex, 1000000, 64ULL * 1024});
}

TEST_CASE("1,000,000 records between processes, semaphore waits") {
  transfer({WaitStrategy::semaphore, 1000000, 64ULL * 1024});
}

TEST_CASE("records between processes, spin waits, tiny ring") {
  transfer({WaitStrategy::spin, 100000, 4096});
}

TEST_CASE("records between processes, futex waits, tiny ring") {
  transfer({WaitStrategy::futex, 200000, 4096});
}

// ---- A consumer blocked on an empty ring sleeps.

// CPU time over wall time of a consumer blocked in peek() for ~300 ms,
// measured inside the child with CLOCK_PROCESS_CPUTIME_ID.
// `*sleeps`: the voluntary context switches of the consumer's thread
// meanwhile (the times it blocked in the kernel; RUSAGE_THREAD, so a
// sanitizer's background thread does not count).
double blocked_cpu_ratio(WaitStrategy wait, long* sleeps = nullptr) {
  testing::ScopedRing ring({.capacity = 4096, .wait = wait});
  const int id = ring.segment().id();
  SharedBlock<Shared> sh;
  ChildGuard children;
  const pid_t c = children.spawn([&] {
    Segment seg = attach_or_die(id);
    auto con = Consumer::attach(seg);
    if (!con) return 3;
    // Measure only once the producer is attached: before that the consumer
    // waits for a first producer, which sleeps whatever the strategy.
    // acquire: pairs with the parent's release store after attaching.
    while (sh->ready.load(std::memory_order_acquire) == 0) ::usleep(1000);
    timespec c0{};
    timespec c1{};
    rusage u0{};
    rusage u1{};
    ::getrusage(RUSAGE_THREAD, &u0);
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    const auto w0 = Clock::now();
    Peeked r = con->peek(300ms);
    const auto w1 = Clock::now();
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    ::getrusage(RUSAGE_THREAD, &u1);
    sh->sleeps.store(u1.ru_nvcsw - u0.ru_nvcsw, std::memory_order_relaxed);
    sh->status.store(static_cast<int>(r.status), std::memory_order_relaxed);
    sh->cpu_ns.store(
        (c1.tv_sec - c0.tv_sec) * 1000000000LL + (c1.tv_nsec - c0.tv_nsec),
        std::memory_order_relaxed);
    sh->wall_ns.store(
        std::chrono::duration_cast<std::chrono::nanoseconds>(w1 - w0).count(),
        std::memory_order_relaxed);
    return 0;
  });
  // A producer that is attached (so the ring is not at end of stream) but
  // writes nothing. Attached after the fork: never inherited.
  auto p = Producer::attach(ring.segment());
  REQUIRE(p);
  // release: the child starts measuring only after this.
  sh->ready.store(1, std::memory_order_release);
  const auto st = children.wait(c, 60s);
  REQUIRE(st.exited);
  REQUIRE(st.code == 0);
  REQUIRE(sh->status.load(std::memory_order_relaxed) ==
          static_cast<int>(Status::timed_out));
  const double wall =
      static_cast<double>(sh->wall_ns.load(std::memory_order_relaxed));
  REQUIRE(wall >= 300e6);
  const double ratio =
      static_cast<double>(sh->cpu_ns.load(std::memory_order_relaxed)) / wall;
  std::printf(
      "blocked consumer, wait=%d: cpu %.3f ms over %.1f ms wall (%.1f%%), "
      "%lld voluntary context switches\n",
      static_cast<int>(wait),
      static_cast<double>(sh->cpu_ns.load(std::memory_order_relaxed)) / 1e6,
      wall / 1e6, 100 * ratio,
      static_cast<long long>(sh->sleeps.load(std::memory_order_relaxed)));
  if (sleeps != nullptr)
    *sleeps = static_cast<long>(sh->sleeps.load(std::memory_order_relaxed));
  return ratio;
}

TEST_CASE("a consumer blocked on an empty ring sleeps (futex)") {
  // A spinning consumer would burn ~100% of a CPU; a sleeping one wakes
  // every kSleepSlice for a few microseconds.
  CHECK(blocked_cpu_ratio(WaitStrategy::futex) < 0.2);
}

TEST_CASE("a consumer blocked on an empty ring sleeps (semaphore)") {
  CHECK(blocked_cpu_ratio(WaitStrategy::semaphore) < 0.2);
}

TEST_CASE("spin waits never sleep in the kernel; futex waits do") {
  // A spinning consumer stays runnable: it never blocks, so it makes no
  // voluntary context switch (its sched_yield() keeps it runnable; how much
  // CPU it then gets depends on the machine's load, so CPU time is no
  // test). A futex sleeper blocks about once per kSleepSlice (~6 times in
  // 300 ms).
  long sleeping = 0;
  long spinning = 0;
  (void)blocked_cpu_ratio(WaitStrategy::futex, &sleeping);
  (void)blocked_cpu_ratio(WaitStrategy::spin, &spinning);
  CHECK(sleeping >= 2);
  CHECK(spinning == 0);
}

TEST_CASE(
    "a consumer blocked forever uses no CPU until woken (futex and "
    "semaphore, measured from outside)") {
  const WaitStrategy wait =
      GENERATE(WaitStrategy::futex, WaitStrategy::semaphore);
  CAPTURE(static_cast<int>(wait));
  testing::ScopedRing ring({.capacity = 4096, .wait = wait});
  const int id = ring.segment().id();
  SharedBlock<Shared> sh;
  ChildGuard children;
  const pid_t c = children.spawn([&] {
    Segment seg = attach_or_die(id);
    auto con = Consumer::attach(seg);
    if (!con) return 3;
    sh->ready.store(1, std::memory_order_release);
    Peeked r = con->peek();  // forever
    if (!r || testing::as_string(r.record.bytes()) != "wake up") return 4;
    return 0;
  });
  auto p = Producer::attach(ring.segment());
  REQUIRE(p);
  const auto deadline = Clock::now() + 30s;
  while (sh->ready.load(std::memory_order_acquire) == 0 &&
         Clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  REQUIRE(sh->ready.load(std::memory_order_acquire) == 1);
  std::this_thread::sleep_for(20ms);  // past the spin and yield phases
  const auto cpu0 = testing::process_cpu_time(c);
  const auto w0 = Clock::now();
  std::this_thread::sleep_for(400ms);
  const auto cpu1 = testing::process_cpu_time(c);
  const auto wall = Clock::now() - w0;
  REQUIRE(cpu0.count() >= 0);
  REQUIRE(cpu1.count() >= 0);
  const double ratio = std::chrono::duration<double>(cpu1 - cpu0).count() /
                       std::chrono::duration<double>(wall).count();
  std::printf("consumer blocked forever, wait=%d: %.1f%% CPU (clock ticks)\n",
              static_cast<int>(wait), 100 * ratio);
  CHECK(ratio < 0.2);
  // It was really blocked in peek: a record wakes it and it exits 0.
  REQUIRE(p->try_write(testing::as_bytes("wake up")) == Status::ok);
  const auto st = children.wait(c, 30s);
  INFO(st.describe());
  CHECK(st.exited);
  CHECK(st.code == 0);
}

// ---- Death of a peer.

TEST_CASE(
    "producer killed -9 mid-stream: consumer gets every committed "
    "record, then peer_dead") {
  const WaitStrategy wait =
      GENERATE(WaitStrategy::futex, WaitStrategy::semaphore);
  const int round = GENERATE(0, 1, 2);
  CAPTURE(static_cast<int>(wait), round);
  const int before = testing::own_segment_count();
  {
    testing::ScopedRing ring({.capacity = 64ULL * 1024, .wait = wait});
    const int id = ring.segment().id();
    SharedBlock<Shared> sh;
    SharedBlock<Shared> ps;  // the producer's counters
    ChildGuard children;
    const Format f;
    const pid_t c = children.spawn(
        [&] { return consume(id, f, &*sh, Status::peer_dead, 0); });
    // No deferred commits: `committed` then counts exactly what was
    // published (or one less, if killed between commit and the store).
    const pid_t p = children.spawn(
        [&] { return produce(id, 1ULL << 40, f, &*ps, {}, /*defer=*/false); });
    std::mt19937 rng(static_cast<unsigned>(round * 7 + static_cast<int>(wait)));
    const std::uint64_t kill_at = 20000 + rng() % 100000;
    const auto deadline = Clock::now() + 120s;
    // acquire: pairs with produce()'s release store.
    while (ps->committed.load(std::memory_order_acquire) < kill_at &&
           Clock::now() < deadline) {
      std::this_thread::sleep_for(100us);
    }
    REQUIRE(ps->committed.load(std::memory_order_acquire) >= kill_at);
    ::kill(p, SIGKILL);
    const auto killed = now_ns();
    const auto pst = children.wait(p, 30s);  // reaped: it runs no more
    REQUIRE(pst.signal == SIGKILL);
    const std::uint64_t committed =
        ps->committed.load(std::memory_order_acquire);
    const auto cst = children.wait(c, 60s);
    INFO("consumer " << cst.describe() << ", verified "
                     << sh->peeked.load(std::memory_order_relaxed) << " of "
                     << committed << " committed");
    REQUIRE(cst.exited);
    REQUIRE(cst.code == 0);  // every record verified, then peer_dead
    CHECK(sh->status.load(std::memory_order_relaxed) ==
          static_cast<int>(Status::peer_dead));
    // Nothing committed is lost; at most the one record committed just
    // before the kill, but not yet counted, is extra.
    CHECK(sh->peeked.load(std::memory_order_relaxed) >= committed);
    CHECK(sh->peeked.load(std::memory_order_relaxed) <= committed + 1);
    const double after =
        static_cast<double>(sh->done_ns.load(std::memory_order_relaxed) -
                            killed) /
        1e9;
    std::printf(
        "producer killed after %llu records: consumer saw peer_dead "
        "%.3f s later\n",
        static_cast<unsigned long long>(committed), after);
    CHECK(after < 10.0);  // bounded: liveness is checked every sleep slice
  }
  CHECK(testing::own_segment_count() == before);
}

// A producer child writing until it blocks on the full ring, then reporting
// how its blocking reserve ended.
int fill_and_block(int id, Shared* sh, ProducerOptions options) {
  Segment seg = attach_or_die(id);
  auto p = Producer::attach(seg, options);
  if (!p) return 3;
  std::vector<std::byte> rec(100, std::byte{7});
  for (std::uint64_t i = 0;; ++i) {
    const Status s = p->write(rec, 60s);
    if (s != Status::ok) {
      sh->status.store(static_cast<int>(s), std::memory_order_relaxed);
      sh->done_ns.store(now_ns(), std::memory_order_relaxed);
      return s == Status::peer_dead ? 0 : 10;
    }
    sh->committed.store(i + 1, std::memory_order_relaxed);
  }
}

// Waits until `counter` stops moving for `quiet` (the writer is blocked).
bool wait_until_stalled(const std::atomic<std::uint64_t>& counter,
                        std::chrono::milliseconds quiet) {
  const auto deadline = Clock::now() + 60s;
  std::uint64_t last = counter.load(std::memory_order_relaxed);
  auto since = Clock::now();
  while (Clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
    const std::uint64_t now = counter.load(std::memory_order_relaxed);
    if (now != last) {
      last = now;
      since = Clock::now();
    } else if (now > 0 && Clock::now() - since >= quiet) {
      return true;
    }
  }
  return false;
}

TEST_CASE(
    "consumer killed -9: a producer blocked on the full ring gets "
    "peer_dead") {
  const WaitStrategy wait =
      GENERATE(WaitStrategy::futex, WaitStrategy::semaphore);
  const bool graceful = GENERATE(false, true);
  CAPTURE(static_cast<int>(wait), graceful);
  const int before = testing::own_segment_count();
  {
    testing::ScopedRing ring({.capacity = 4096, .wait = wait});
    const int id = ring.segment().id();
    SharedBlock<Shared> cs;
    SharedBlock<Shared> ps;
    ChildGuard children;
    // A consumer that attaches and reads nothing until told to leave.
    const pid_t c = children.spawn([&] {
      Segment seg = attach_or_die(id);
      auto con = Consumer::attach(seg);
      if (!con) return 3;
      cs->ready.store(1, std::memory_order_release);
      while (cs->ready.load(std::memory_order_acquire) != 2) ::usleep(1000);
      return 0;  // graceful: the destructor closes (detaches)
    });
    while (cs->ready.load(std::memory_order_acquire) == 0) {
      std::this_thread::sleep_for(1ms);
    }
    const pid_t p =
        children.spawn([&] { return fill_and_block(id, &*ps, {}); });
    REQUIRE(wait_until_stalled(ps->committed, 200ms));
    // Still blocked while the consumer lives.
    CHECK(ps->status.load(std::memory_order_relaxed) == -1);
    std::int64_t gone;
    if (graceful) {
      gone = now_ns();
      cs->ready.store(2, std::memory_order_release);
      const auto st = children.wait(c, 30s);
      REQUIRE(st.exited);
    } else {
      ::kill(c, SIGKILL);
      gone = now_ns();
    }
    const auto pst = children.wait(p, 30s);
    INFO("producer " << pst.describe() << ", status "
                     << ps->status.load(std::memory_order_relaxed));
    REQUIRE(pst.exited);
    CHECK(pst.code == 0);
    CHECK(ps->status.load(std::memory_order_relaxed) ==
          static_cast<int>(Status::peer_dead));
    const double after =
        static_cast<double>(ps->done_ns.load(std::memory_order_relaxed) -
                            gone) /
        1e9;
    std::printf("consumer %s: producer saw peer_dead %.3f s later\n",
                graceful ? "detached" : "killed", after);
    CHECK(after < 10.0);
  }
  CHECK(testing::own_segment_count() == before);
}

TEST_CASE("consumer killed and restarted: nothing committed is lost") {
  // At-least-once: records the dead consumer peeked but had not released
  // come again; every other record exactly once, in order.
  const WaitStrategy wait =
      GENERATE(WaitStrategy::futex, WaitStrategy::semaphore);
  CAPTURE(static_cast<int>(wait));
  const int before = testing::own_segment_count();
  {
    testing::ScopedRing ring({.capacity = 16ULL * 1024, .wait = wait});
    const int id = ring.segment().id();
    const std::uint64_t total = 200000;
    const Format f{.min_len = 8, .max_len = 600};
    SharedBlock<Shared> ps;
    SharedBlock<Shared> cs;  // peeked/released survive each consumer
    ChildGuard children;
    // The producer keeps waiting while no consumer is attached.
    const pid_t p = children.spawn([&] {
      return produce(id, total, f, &*ps, {.wait_for_consumer = true});
    });

    // One consumer incarnation: checks where it resumes, then reads on.
    auto consumer = [&](bool to_the_end) {
      Segment seg = attach_or_die(id);
      auto c = Consumer::attach(seg);
      if (!c) {
        std::fprintf(stderr, "consumer: %s\n", c.error().message.c_str());
        return 3;
      }
      // The previous incarnation is dead: these are final.
      const std::uint64_t released =
          cs->released.load(std::memory_order_relaxed);
      const std::uint64_t peeked = cs->peeked.load(std::memory_order_relaxed);
      std::uint64_t expected = ~0ULL;
      // At most 8 records (8 * 616 bytes) are held while peek_batch waits
      // for more: the producer always has room to go on.
      std::vector<Record> batch(8);
      for (std::uint64_t round = 1;; ++round) {
        const PeekedBatch pb = c->peek_batch(batch, 60s);
        const Status s = pb.status;
        const std::size_t n = pb.records.size();
        if (s == Status::closed && !to_the_end) {
          // Got to the end before the parent's kill: wait for it, so the
          // parent always sees a kill.
          for (;;) ::pause();
        }
        if (s == Status::closed &&
            (expected == total ||
             (expected == ~0ULL && released == total && peeked == total))) {
          return 0;  // (the second case: an earlier incarnation read all)
        }
        if (s != Status::ok) {
          std::fprintf(stderr, "consumer: %s at %llu\n", to_string(s),
                       static_cast<unsigned long long>(expected));
          return 20;
        }
        for (std::size_t i = 0; i < n; ++i) {
          const std::uint64_t seq = testing::seq_stamp(batch[i].bytes());
          if (expected == ~0ULL) {
            // Resume point: not before the last recorded release, not
            // after the last record verified (that would be a loss).
            if (seq < released || seq > peeked) {
              std::fprintf(stderr,
                           "consumer: resumed at %llu, outside [%llu, %llu]\n",
                           static_cast<unsigned long long>(seq),
                           static_cast<unsigned long long>(released),
                           static_cast<unsigned long long>(peeked));
              return 30;
            }
            cs->duplicates.fetch_add(peeked - seq, std::memory_order_relaxed);
            expected = seq;
          }
          if (seq != expected || !check_record(batch[i], seq, f)) {
            std::fprintf(stderr, "consumer: record %llu wrong (seq %llu)\n",
                         static_cast<unsigned long long>(expected),
                         static_cast<unsigned long long>(seq));
            return 31;
          }
          ++expected;
          cs->peeked.store(
              std::max(cs->peeked.load(std::memory_order_relaxed), expected),
              std::memory_order_relaxed);
        }
        // Release every other batch: a kill then often leaves peeked,
        // unreleased records behind.
        if (round % 2 == 0 || expected >= total) {
          c->release();
          cs->released.store(expected, std::memory_order_relaxed);
        }
      }
    };

    std::mt19937 rng(static_cast<unsigned>(wait));
    const int incarnations = 6;
    for (int k = 0; k < incarnations; ++k) {
      const std::uint64_t target = cs->peeked.load(std::memory_order_relaxed) +
                                   1 + rng() % (total / (incarnations + 2));
      const pid_t c = children.spawn([&] { return consumer(false); });
      const auto deadline = Clock::now() + 60s;
      while (cs->peeked.load(std::memory_order_relaxed) < target &&
             Clock::now() < deadline) {
        std::this_thread::sleep_for(100us);
      }
      ::kill(c, SIGKILL);
      const auto st = children.wait(c, 30s);
      INFO("incarnation " << k << ": " << st.describe());
      // Killed while reading (or, if it failed a check, exited non-zero).
      REQUIRE(st.signal == SIGKILL);
    }
    const pid_t last = children.spawn([&] { return consumer(true); });
    const auto lst = children.wait(last, 240s);
    const auto pst = children.wait(p, 60s);
    INFO("last consumer " << lst.describe() << ", producer " << pst.describe());
    REQUIRE(lst.exited);
    CHECK(lst.code == 0);
    REQUIRE(pst.exited);
    CHECK(pst.code == 0);
    CHECK(cs->peeked.load(std::memory_order_relaxed) == total);
    std::printf(
        "consumer restarts: %llu records delivered twice (peeked, "
        "unreleased at a kill)\n",
        static_cast<unsigned long long>(
            cs->duplicates.load(std::memory_order_relaxed)));
  }
  CHECK(testing::own_segment_count() == before);
}

}  // namespace
}  // namespace shmring
