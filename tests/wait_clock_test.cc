// Semaphore-mode sleeps (WaitStrategy::semaphore) follow the monotonic
// clock: a wall clock stepped backwards while a sleep is in progress must
// not stretch it. The host's clock is never touched: this binary
// interposes gettimeofday(), the wall clock Boost.DateTime reads
// (microsec_clock::universal_time), and reports it an hour ahead of the
// kernel's CLOCK_REALTIME. A deadline computed from that clock and handed
// to a CLOCK_REALTIME wait (sem_timedwait) lies an hour after the kernel's
// "now", exactly as if the clock had been stepped back an hour just after
// the deadline was computed. (Time namespaces do not virtualize
// CLOCK_REALTIME, so they cannot do this.)
//
// Each wait runs in a forked child, so a sleep stretched to an hour fails
// the test at the parent's bound instead of hanging it.
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>

#include "tests/support.h"

namespace {

// Seconds added to the wall clock this binary's gettimeofday() reports.
std::atomic<long> g_wall_offset{0};

}  // namespace

// Replaces glibc's for this binary (and the libraries it loads): the kernel's
// CLOCK_REALTIME plus g_wall_offset. Read directly from the kernel, so the
// sanitizers' interceptors play no part.
extern "C" __attribute__((visibility("default"), used)) int gettimeofday(
    struct timeval* tv, void* /*tz*/) noexcept {
  struct timespec ts {};
  if (::syscall(SYS_clock_gettime, CLOCK_REALTIME, &ts) != 0) return -1;
  // relaxed: set before the fork that starts the child reading it.
  tv->tv_sec = ts.tv_sec + g_wall_offset.load(std::memory_order_relaxed);
  tv->tv_usec = ts.tv_nsec / 1000;
  return 0;
}

namespace shmring {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using testing::ChildGuard;
using testing::ScopedRing;

constexpr long kStep = 3600;  // the wall clock an hour ahead of the kernel's
constexpr auto kTimeout = milliseconds(100);
// A sleep that follows the wall clock takes an hour; one that does not
// returns at kTimeout plus scheduling noise.
constexpr auto kBound = milliseconds(1000);

TEST_CASE("wall clock: this binary's gettimeofday is an hour ahead") {
  g_wall_offset.store(kStep, std::memory_order_relaxed);  // relaxed: 1 thread
  struct timeval tv {};
  REQUIRE(::gettimeofday(&tv, nullptr) == 0);
  struct timespec real {};
  REQUIRE(::clock_gettime(CLOCK_REALTIME, &real) == 0);
  g_wall_offset.store(0, std::memory_order_relaxed);
  CHECK(tv.tv_sec - real.tv_sec >= kStep - 1);
  CHECK(tv.tv_sec - real.tv_sec <= kStep + 1);
}

// In a child: `body` (a wait of kTimeout on a semaphore-mode ring) with the
// wall clock an hour ahead; exits 0 if it returned `want` within kBound.
// The child uses no Catch2 macro (corrupt: an attach was refused).
void expect_monotonic_wait(const char* what,
                           const std::function<Status()>& body, Status want) {
  INFO(what);
  ChildGuard children;
  const pid_t pid = children.spawn([&] {
    // relaxed: this child's only thread.
    g_wall_offset.store(kStep, std::memory_order_relaxed);
    const auto start = Clock::now();
    const Status s = body();
    const auto took = Clock::now() - start;
    const long ms = static_cast<long>(
        std::chrono::duration_cast<milliseconds>(took).count());
    std::fprintf(stderr, "%s: %s after %ld ms\n", what, to_string(s), ms);
    if (s != want) return 2;
    return took < kBound ? 0 : 3;
  });
  // Bounded at twice kBound plus the child's set-up: a wall-clock sleep
  // would last an hour.
  const auto st = children.wait(pid, kBound * 2 + std::chrono::seconds(3));
  INFO(st.describe());
  CHECK_FALSE(st.timed_out);
  CHECK((st.exited && st.code == 0));
}

TEST_CASE("semaphore waits time out by the monotonic clock") {
  SECTION("a consumer waiting for data") {
    ScopedRing ring({.kind = Kind::mpsc,
                     .capacity = 4096,
                     .wait = WaitStrategy::semaphore});
    Segment& seg = ring.segment();
    expect_monotonic_wait(
        "consumer peek on an empty ring",
        [&] {
          auto p = Producer::attach(seg);  // registered: no end of stream
          auto c = Consumer::attach(seg);
          if (!p || !c) return Status::corrupt;
          return c->peek(kTimeout).status;
        },
        Status::timed_out);
  }
  SECTION("a producer waiting for space") {
    ScopedRing ring({.kind = Kind::spsc,
                     .capacity = 4096,
                     .wait = WaitStrategy::semaphore});
    Segment& seg = ring.segment();
    expect_monotonic_wait(
        "producer reserve on a full ring",
        [&] {
          auto c = Consumer::attach(seg);  // alive: no peer_dead
          auto p = Producer::attach(seg);
          if (!p || !c) return Status::corrupt;
          const std::size_t big = p->max_record_size();
          while (p->try_reserve(big)) p->commit();
          return p->reserve(big, kTimeout).status;
        },
        Status::timed_out);
  }
}

}  // namespace
}  // namespace shmring
