// Waiting: no lost wake-ups, timeouts, interrupt() and signals.
//
// A lost wake-up cannot hang these rings forever: every sleeper wakes at
// least once per kSleepSlice (50 ms) to check liveness. So a lost wake-up
// shows as a ~50 ms stall, not a hang, and the tests below look for stalls:
// a ping-pong of 100,000 round trips where every peek must succeed (a
// generous per-peek timeout turns a real hang into a failure) and few round
// trips may take longer than most of a slice, and a cross-process test that
// publishes exactly when the peer sleeps (or is about to) and requires the
// peer to wake promptly in nearly every round. Bounds are on counts of slow
// rounds, never on absolute latencies of single events.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support.h"

namespace shmring {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::ChildGuard;
using testing::SharedBlock;
using testing::Handshake;

// relaxed: read once the peers are done (joined or reaped).
layout::WakeMode mode_of(Segment& s) {
  return static_cast<layout::WakeMode>(
      shmring::detail::control(s)->wake.mode.load(std::memory_order_relaxed));
}

// The parent's ends of the two rings (producer on ab, consumer on ba) for
// handshake `hs`. child_fallback: the parent (with membarrier) attaches
// before it forks, so the child's request must be acknowledged by a
// membarrier process. parent_fallback: the parent attaches after the child
// joined with membarrier, re-attaching without it, which raises the rings
// to fallback_requested while the child runs.
struct ParentEnds {
  std::optional<testing::MembarrierScope> scope;
  std::optional<Segment> again_ab, again_ba;
  std::optional<Producer> out;
  std::optional<Consumer> in;
  void attach(Handshake hs, testing::ScopedRing& ab, testing::ScopedRing& ba) {
    Segment* a = &ab.segment();
    Segment* b = &ba.segment();
    if (hs == Handshake::parent_fallback) {
      // The child's handles joined first (light_joined; a TSan build has
      // no light wakers, then its role slots say so), so no self-ack.
      auto joined = [](Segment* s, bool consumer) {
        // relaxed: polled until set; nothing else is read through it.
        auto* cb = shmring::detail::control(*s);
        if (detail::kLightWakeBuild) {
          return cb->wake.light_joined.load(std::memory_order_relaxed) != 0;
        }
        return (consumer
                    ? cb->consumer.owner.load(std::memory_order_relaxed)
                    : cb->producers[0].owner.load(std::memory_order_relaxed)) !=
               0;
      };
      const auto deadline = Clock::now() + 10s;
      while (!(joined(a, true) && joined(b, false)) &&
             Clock::now() < deadline) {
        std::this_thread::sleep_for(1ms);
      }
      std::this_thread::sleep_for(5ms);  // past the handles' constructors
      scope.emplace(false);
      again_ab.emplace(ab.attach_again());
      again_ba.emplace(ba.attach_again());
      a = &*again_ab;
      b = &*again_ba;
    }
    auto p = Producer::attach(*a);
    if (p) out.emplace(std::move(p).value());
    auto c = Consumer::attach(*b);
    if (c) in.emplace(std::move(c).value());
  }
};

// Clears the process-wide interrupt flag when a test ends, pass or fail.
struct InterruptReset {
  InterruptReset() { clear_interrupt(); }
  ~InterruptReset() { clear_interrupt(); }
};

struct Pair {
  std::optional<Producer> p;
  std::optional<Consumer> c;
};

// Both ends of `segment` in this process.
Pair ends(Segment& segment) {
  Pair out;
  auto p = Producer::attach(segment);
  REQUIRE(p);
  out.p.emplace(std::move(p).value());
  auto c = Consumer::attach(segment);
  REQUIRE(c);
  out.c.emplace(std::move(c).value());
  return out;
}

std::span<const std::byte> as_span(const std::uint64_t& v) {
  return std::as_bytes(std::span<const std::uint64_t, 1>(&v, 1));
}

std::uint64_t value_of(const Record& r) {
  std::uint64_t v = ~0ULL;
  if (r.size == 8) std::memcpy(&v, r.data, 8);
  return v;
}

// ---- Ping-pong.

// Every handshake mix runs (wait.h), so under TSan (~5x slower here) and
// ASan (~10x for a process round trip) the round counts are divided to
// stay inside the test's time budget.
#if defined(SHMRING_TSAN) || defined(__SANITIZE_ADDRESS__)
constexpr std::uint64_t kRoundsDivisor = 4;
#else
constexpr std::uint64_t kRoundsDivisor = 1;
#endif

// A lost wake-up costs a whole sleep slice (kSleepSlice, 50 ms): the waiter
// notices only when its slice ends. The checks below look at the median of
// the rounds where the peer really slept, against half a slice: a generous
// liveness bound (a normal wake-up takes microseconds; scheduling noise on a
// loaded machine delays some rounds, never most of them by 25 ms), which
// lost wake-ups in most such rounds would break.
constexpr auto kLostWakeup = std::chrono::duration<double, std::milli>(
    std::chrono::milliseconds(detail::kSleepSlice) / 2);

double median_ms(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct PingPongResult {
  std::uint64_t rounds = 0;
  std::vector<double> sleeping_ms;  // round trips where the responder slept
  double seconds = 0;
  std::string error;
};

// One side of the ping-pong. `first` sends first. Every 16th round the
// responder pauses 300 us before answering so the other side gets past its
// spin and yield phases into a real sleep.
std::string ping_pong_side(Producer& out, Consumer& in, std::uint64_t rounds,
                           bool first, PingPongResult* result) {
  std::vector<double> sleeping_ms;
  const auto t0 = Clock::now();
  for (std::uint64_t i = 0; i < rounds; ++i) {
    const auto r0 = Clock::now();
    if (first) {
      if (out.write(as_span(i), 10s) != Status::ok) return "write failed";
    }
    Peeked got = in.peek(10s);
    if (!got) {
      return "round " + std::to_string(i) + ": peek " + to_string(got.status);
    }
    if (value_of(got.record) != i) {
      return "round " + std::to_string(i) + ": got " +
             std::to_string(value_of(got.record));
    }
    in.release();
    if (!first) {
      if (i % 16 == 15) std::this_thread::sleep_for(300us);
      if (out.write(as_span(i), 10s) != Status::ok) return "write failed";
    }
    if (first && i % 16 == 15) {
      sleeping_ms.push_back(
          std::chrono::duration<double, std::milli>(Clock::now() - r0).count());
    }
  }
  if (result != nullptr) {
    result->rounds = rounds;
    result->sleeping_ms = std::move(sleeping_ms);
    result->seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  }
  return "";
}

void check_ping_pong(const PingPongResult& r, const char* what,
                     WaitStrategy wait, Handshake hs) {
  const double median = median_ms(r.sleeping_ms);
  std::printf(
      "ping-pong %s wait=%d handshake=%s: %llu round trips in %.2f s "
      "(%.1f us each); median %.3f ms over %zu rounds where the peer slept\n",
      what, static_cast<int>(wait), testing::to_string(hs),
      static_cast<unsigned long long>(r.rounds),
      r.seconds, r.seconds / static_cast<double>(r.rounds) * 1e6, median,
      r.sleeping_ms.size());
  INFO(r.error);
  REQUIRE(r.error.empty());
  REQUIRE(!r.sleeping_ms.empty());
  // Every 16th round the responder pauses 300 us, so this side sleeps for
  // real: if those wake-ups were lost, their median would be ~50 ms.
  CHECK(median < kLostWakeup.count());
}

TEST_CASE("ping-pong between threads: 20,000 round trips, no lost wake-up") {
  // Fewer rounds than between processes (below): two threads of one
  // process ping-pong several times slower on a loaded machine, and the
  // cross-process run is the stronger test (shared futex).
  const WaitStrategy wait =
      GENERATE(WaitStrategy::futex, WaitStrategy::semaphore);
  const Handshake hs = GENERATE(Handshake::membarrier, Handshake::fallback);
  CAPTURE(static_cast<int>(wait), testing::to_string(hs));
  testing::MembarrierScope mb(hs == Handshake::membarrier);
  const std::uint64_t rounds = 20000 / kRoundsDivisor;
  testing::ScopedRing ab({.capacity = 4096, .wait = wait});
  testing::ScopedRing ba({.capacity = 4096, .wait = wait});
  Pair a = ends(ab.segment());
  Pair b = ends(ba.segment());
  PingPongResult result;
  std::string other_error;
  std::thread responder([&] {
    other_error = ping_pong_side(*b.p, *a.c, rounds, false, nullptr);
  });
  result.error = ping_pong_side(*a.p, *b.c, rounds, true, &result);
  if (!result.error.empty()) interrupt();  // unblock the responder
  responder.join();
  clear_interrupt();
  if (result.error.empty()) result.error = other_error;
  check_ping_pong(result, "threads", wait, hs);
  CHECK(mode_of(ab.segment()) == testing::settled_mode(hs));
  CHECK(mode_of(ba.segment()) == testing::settled_mode(hs));
}

TEST_CASE(
    "ping-pong between processes: 100,000 round trips (SPSC), 20,000 "
    "(MPSC), no lost wake-up") {
  // Across processes the futex must be a shared one (no
  // FUTEX_PRIVATE_FLAG): a private futex would never wake the peer, and
  // every round that sleeps would stall a whole slice. MPSC rings publish
  // a commit through the header word instead of tail, and release through
  // the zeroing path (docs/design/ordering.md#mpsc-commits-and-releases).
  const WaitStrategy wait =
      GENERATE(WaitStrategy::futex, WaitStrategy::semaphore);
  const Handshake hs =
      GENERATE(Handshake::membarrier, Handshake::fallback,
               Handshake::child_fallback, Handshake::parent_fallback);
  const Kind kind = GENERATE(Kind::spsc, Kind::mpsc);
  CAPTURE(static_cast<int>(wait), testing::to_string(hs),
          static_cast<int>(kind));
  const std::uint64_t rounds =
      (kind == Kind::spsc ? 100000 : 20000) / kRoundsDivisor;
  const int before = testing::own_segment_count();
  {
    testing::MembarrierScope mb(hs != Handshake::fallback);
    testing::ScopedRing ab({.kind = kind, .capacity = 4096, .wait = wait});
    testing::ScopedRing ba({.kind = kind, .capacity = 4096, .wait = wait});
    const int ab_id = ab.segment().id();
    const int ba_id = ba.segment().id();
    ParentEnds mine;
    if (hs != Handshake::parent_fallback) mine.attach(hs, ab, ba);
    ChildGuard children;
    const pid_t child = children.spawn([&] {
      if (testing::child_lacks_membarrier(hs)) {
        detail::set_membarrier_for_testing(false);
      }
      auto sa = Segment::attach_id(ab_id);
      auto sb = Segment::attach_id(ba_id);
      if (!sa || !sb) return 2;
      auto in = Consumer::attach(*sa);
      auto out = Producer::attach(*sb);
      if (!in || !out) return 3;
      const std::string err = ping_pong_side(*out, *in, rounds, false, nullptr);
      if (!err.empty()) {
        std::fprintf(stderr, "responder: %s\n", err.c_str());
        return 4;
      }
      return 0;
    });
    if (hs == Handshake::parent_fallback) mine.attach(hs, ab, ba);
    REQUIRE(mine.out);
    REQUIRE(mine.in);
    auto& out = mine.out;
    auto& in = mine.in;
    PingPongResult result;
    result.error = ping_pong_side(*out, *in, rounds, true, &result);
    const auto st = children.wait(child, result.error.empty() ? 60s : 1s);
    if (result.error.empty() && !(st.exited && st.code == 0)) {
      result.error = "responder " + st.describe();
    }
    check_ping_pong(result,
                    kind == Kind::spsc ? "processes spsc" : "processes mpsc",
                    wait, hs);
    CHECK(mode_of(ab.segment()) == testing::settled_mode(hs));
    CHECK(mode_of(ba.segment()) == testing::settled_mode(hs));
  }
  CHECK(testing::own_segment_count() == before);
}

// ---- Publishing exactly when the peer sleeps.

char process_state(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');
  return close == std::string::npos || close + 2 >= text.size()
             ? '?'
             : text[close + 2];
}

TEST_CASE(
    "a peer that announced its sleep is woken at once, not at the "
    "end of its slice") {
  // Round kinds: (a) publish as soon as the peer has announced itself
  // (waiters flag set), which lands in the window between its announce and
  // its futex/semaphore wait: the Dekker re-check or the seq bump must
  // catch it; (b) publish once the peer is asleep in the kernel (state S).
  // Either way the peer must wake promptly; a lost wake-up costs ~50 ms.
  const WaitStrategy wait =
      GENERATE(WaitStrategy::futex, WaitStrategy::semaphore);
  const Handshake hs =
      GENERATE(Handshake::membarrier, Handshake::fallback,
               Handshake::child_fallback, Handshake::parent_fallback);
  const Kind ring_kind = GENERATE(Kind::spsc, Kind::mpsc);
  CAPTURE(static_cast<int>(wait), testing::to_string(hs),
          static_cast<int>(ring_kind));
  const int rounds = 200;
  const int before = testing::own_segment_count();
  {
    testing::MembarrierScope mb(hs != Handshake::fallback);
    testing::ScopedRing ab(
        {.kind = ring_kind, .capacity = 4096, .wait = wait});
    testing::ScopedRing ba(
        {.kind = ring_kind, .capacity = 4096, .wait = wait});
    const int ab_id = ab.segment().id();
    const int ba_id = ba.segment().id();
    ParentEnds mine;
    if (hs != Handshake::parent_fallback) mine.attach(hs, ab, ba);
    ChildGuard children;
    const pid_t child = children.spawn([&] {
      if (testing::child_lacks_membarrier(hs)) {
        detail::set_membarrier_for_testing(false);
      }
      auto sa = Segment::attach_id(ab_id);
      auto sb = Segment::attach_id(ba_id);
      if (!sa || !sb) return 2;
      auto in = Consumer::attach(*sa);
      auto out = Producer::attach(*sb);
      if (!in || !out) return 3;
      for (std::uint64_t i = 0; i < static_cast<std::uint64_t>(rounds); ++i) {
        Peeked got = in->peek(10s);
        if (!got || value_of(got.record) != i) return 4;
        in->release();
        if (out->write(as_span(i), 10s) != Status::ok) return 5;
      }
      return 0;
    });
    if (hs == Handshake::parent_fallback) mine.attach(hs, ab, ba);
    REQUIRE(mine.out);
    REQUIRE(mine.in);
    auto& out = mine.out;
    auto& in = mine.in;
    auto& waiters = shmring::detail::control(ab.segment())->data_ready.waiters;
    int count[2] = {0, 0};
    std::vector<double> lat[2];
    for (int i = 0; i < rounds; ++i) {
      const int kind = i % 2;
      // Wait for the peer to announce (and for kind 1, to be asleep: state
      // S seen twice, 1 ms apart).
      const auto deadline = Clock::now() + 10s;
      int asleep = 0;
      while (Clock::now() < deadline) {
        // relaxed: a hint polled until set; /proc says if it sleeps.
        if (waiters.load(std::memory_order_relaxed) != 0) {
          if (kind == 0) break;
          asleep = process_state(child) == 'S' ? asleep + 1 : 0;
          if (asleep >= 2) break;
          std::this_thread::sleep_for(1ms);
        } else {
          std::this_thread::sleep_for(20us);
        }
      }
      REQUIRE(Clock::now() < deadline);
      const auto t0 = Clock::now();
      REQUIRE(out->write(as_span(static_cast<std::uint64_t>(i)), 10s) ==
              Status::ok);
      Peeked got = in->peek(10s);
      REQUIRE(got);
      REQUIRE(value_of(got.record) == static_cast<std::uint64_t>(i));
      in->release();
      const auto took = Clock::now() - t0;
      ++count[kind];
      lat[kind].push_back(
          std::chrono::duration<double, std::milli>(took).count());
    }
    const auto st = children.wait(child, 30s);
    INFO("responder " << st.describe());
    REQUIRE(st.exited);
    REQUIRE(st.code == 0);
    for (int kind = 0; kind < 2; ++kind) {
      std::sort(lat[kind].begin(), lat[kind].end());
      std::printf(
          "wake-up, %s, wait=%d, handshake=%s, %s: %d rounds, median "
          "%.3f ms, max %.3f ms\n",
          ring_kind == Kind::spsc ? "spsc" : "mpsc", static_cast<int>(wait),
          testing::to_string(hs),
          kind == 0 ? "publish at announce" : "publish while asleep",
          count[kind], lat[kind][lat[kind].size() / 2], lat[kind].back());
      // A lost wake-up in this path would make (nearly) every round take a
      // slice: the median would be ~50 ms.
      CHECK(lat[kind][lat[kind].size() / 2] < kLostWakeup.count());
    }
    CHECK(mode_of(ab.segment()) == testing::settled_mode(hs));
    CHECK(mode_of(ba.segment()) == testing::settled_mode(hs));
  }
  CHECK(testing::own_segment_count() == before);
}

// Waits (bounded: 10 s) until thread `tid` of this process is inside its
// blocking call: for futex/semaphore waits, it announced a sleep on
// `waiters` and is blocked in the kernel (state S); for spin waits (which
// never sleep), it has used 2 clock ticks of CPU, which only the wait loop
// takes.
void wait_until_blocked(const std::atomic<pid_t>& tid,
                        const std::atomic<std::uint32_t>& waiters,
                        WaitStrategy wait = WaitStrategy::futex) {
  const auto deadline = Clock::now() + 10s;
  for (;;) {
    // relaxed: both polled until set; /proc says whether it is blocked.
    const pid_t t = tid.load(std::memory_order_relaxed);
    if (t != 0 && (wait == WaitStrategy::spin ||
                   waiters.load(std::memory_order_relaxed) != 0)) {
      std::ifstream in("/proc/self/task/" + std::to_string(t) + "/stat");
      std::string text((std::istreambuf_iterator<char>(in)),
                       std::istreambuf_iterator<char>());
      const auto close = text.rfind(')');
      if (close != std::string::npos && close + 2 < text.size()) {
        if (wait != WaitStrategy::spin && text[close + 2] == 'S') return;
        if (wait == WaitStrategy::spin) {
          // After comm: state is field 3; utime 14, stime 15.
          std::istringstream fields(text.substr(close + 2));
          std::string f;
          unsigned long long ticks = 0;
          for (int i = 3; i <= 15 && fields >> f; ++i) {
            if (i == 14 || i == 15) ticks += std::stoull(f);
          }
          if (ticks >= 2) return;
        }
      }
    }
    REQUIRE(Clock::now() < deadline);
    std::this_thread::sleep_for(1ms);
  }
}

// ---- Timeouts.

TEST_CASE("timeouts return timed_out after at least the requested time") {
  const WaitStrategy wait = GENERATE(
      WaitStrategy::futex, WaitStrategy::semaphore, WaitStrategy::spin);
  CAPTURE(static_cast<int>(wait));
  testing::ScopedRing ring({.capacity = 256, .wait = wait});
  Pair e = ends(ring.segment());
  for (const auto t : {0ms, 1ms, 20ms, 120ms}) {
    CAPTURE(t.count());
    auto t0 = Clock::now();
    CHECK(e.c->peek(t).status == Status::timed_out);
    auto took = Clock::now() - t0;
    CHECK(took >= t);
    CHECK(took < t + 5s);

    std::vector<Record> batch(4);
    t0 = Clock::now();
    const PeekedBatch none = e.c->peek_batch(batch, t);
    CHECK(none.status == Status::timed_out);
    CHECK(none.records.empty());
    CHECK(Clock::now() - t0 >= t);

    std::vector<std::byte> buf;
    t0 = Clock::now();
    CHECK(e.c->read(buf, t) == Status::timed_out);
    CHECK(Clock::now() - t0 >= t);
  }
  // A full ring, a live consumer (this process) that does not read.
  const std::vector<std::byte> rec(100);
  while (e.p->try_write(rec) == Status::ok) {
  }
  for (const auto t : {0ms, 1ms, 20ms, 120ms}) {
    CAPTURE(t.count());
    auto t0 = Clock::now();
    CHECK(e.p->reserve(100, t).status == Status::timed_out);
    auto took = Clock::now() - t0;
    CHECK(took >= t);
    CHECK(took < t + 5s);
    t0 = Clock::now();
    CHECK(e.p->write(rec, t) == Status::timed_out);
    CHECK(Clock::now() - t0 >= t);
  }
  // With data (or room) a zero timeout is a try: ok. Two records freed:
  // the next one may need padding to the end and its 0 word after it.
  CHECK(e.c->peek(0ms).status == Status::ok);
  CHECK(e.c->peek(0ms).status == Status::ok);
  e.c->release();
  CHECK(e.p->reserve(100, 0ms).status == Status::ok);
}

TEST_CASE("a blocking peek returns the record written while it waits") {
  const WaitStrategy wait = GENERATE(
      WaitStrategy::futex, WaitStrategy::semaphore, WaitStrategy::spin);
  CAPTURE(static_cast<int>(wait));
  testing::ScopedRing ring({.capacity = 256, .wait = wait});
  Pair e = ends(ring.segment());
  std::thread writer([&] {
    std::this_thread::sleep_for(100ms);
    (void)e.p->write(as_span(42), 10s);
  });
  Peeked got = e.c->peek(30s);
  writer.join();
  REQUIRE(got);
  CHECK(value_of(got.record) == 42);
}

// ---- interrupt().

TEST_CASE("interrupt() ends blocking calls with interrupted") {
  const WaitStrategy wait = GENERATE(
      WaitStrategy::futex, WaitStrategy::semaphore, WaitStrategy::spin);
  CAPTURE(static_cast<int>(wait));
  InterruptReset reset;
  testing::ScopedRing ring({.capacity = 256, .wait = wait});
  Pair e = ends(ring.segment());

  SECTION("requested before the call: an empty ring returns interrupted") {
    interrupt();
    CHECK(interrupt_requested());
    const auto t0 = Clock::now();
    CHECK(e.c->peek().status == Status::interrupted);
    CHECK(Clock::now() - t0 < 5s);
    // Data wins over a pending interrupt: a try succeeds.
    REQUIRE(e.p->try_write(as_span(1)) == Status::ok);
    CHECK(e.c->peek().status == Status::ok);
    clear_interrupt();
    CHECK_FALSE(interrupt_requested());
    CHECK(e.c->peek(10ms).status == Status::timed_out);
  }
  SECTION("from another thread while the consumer waits (asleep or spinning)") {
    Status s = Status::ok;
    std::atomic<pid_t> tid{0};
    std::thread waiter([&] {
      tid.store(static_cast<pid_t>(::syscall(SYS_gettid)),
                std::memory_order_relaxed);  // polled by wait_until_blocked
      s = e.c->peek().status;
    });
    // Really inside peek() (not about to call it, where the sticky flag
    // alone would make it return interrupted).
    wait_until_blocked(tid, shmring::detail::control(ring.segment())->data_ready.waiters,
                       wait);
    const auto t0 = Clock::now();
    interrupt();
    waiter.join();
    const auto took = Clock::now() - t0;
    CHECK(s == Status::interrupted);
    CHECK(took < 5s);
    std::printf("interrupt, wait=%d: peek returned after %.3f ms\n",
                static_cast<int>(wait),
                std::chrono::duration<double, std::milli>(took).count());
  }
  SECTION("from another thread while the producer waits for room") {
    const std::vector<std::byte> rec(100);
    while (e.p->try_write(rec) == Status::ok) {
    }
    Status s = Status::ok;
    std::atomic<pid_t> tid{0};
    std::thread waiter([&] {
      tid.store(static_cast<pid_t>(::syscall(SYS_gettid)),
                std::memory_order_relaxed);  // polled by wait_until_blocked
      s = e.p->write(rec);
    });
    // Really inside write(), as above for peek().
    wait_until_blocked(tid, shmring::detail::control(ring.segment())->space_ready.waiters,
                       wait);
    interrupt();
    waiter.join();
    CHECK(s == Status::interrupted);
  }
}

// ---- Signals.

void on_sigusr1(int) { shmring::interrupt(); }

// Installs on_sigusr1 for SIGUSR1 without SA_RESTART; restores on exit.
class SignalHandler {
 public:
  SignalHandler() {
    struct sigaction sa {};
    sa.sa_handler = on_sigusr1;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: blocking syscalls return EINTR
    REQUIRE(::sigaction(SIGUSR1, &sa, &old_) == 0);
  }
  ~SignalHandler() { ::sigaction(SIGUSR1, &old_, nullptr); }

 private:
  struct sigaction old_ {};
};

TEST_CASE("SIGUSR1 whose handler calls interrupt() ends a blocked peek") {
  const WaitStrategy wait =
      GENERATE(WaitStrategy::futex, WaitStrategy::semaphore);
  CAPTURE(static_cast<int>(wait));
  InterruptReset reset;
  SignalHandler handler;
  testing::ScopedRing ring({.capacity = 256, .wait = wait});
  Pair e = ends(ring.segment());
  std::atomic<pid_t> tid{0};
  Status s = Status::ok;
  std::thread waiter([&] {
    tid.store(static_cast<pid_t>(::syscall(SYS_gettid)),
              std::memory_order_relaxed);  // polled by wait_until_blocked
    s = e.c->peek().status;  // forever
  });
  // Asleep in the futex / semaphore, so the signal interrupts the sleep
  // (EINTR) rather than landing before peek() and leaving the sticky flag.
  wait_until_blocked(tid, shmring::detail::control(ring.segment())->data_ready.waiters);
  const auto t0 = Clock::now();
  REQUIRE(::pthread_kill(waiter.native_handle(), SIGUSR1) == 0);
  waiter.join();
  const auto took = Clock::now() - t0;
  CHECK(s == Status::interrupted);
  CHECK(took < 5s);
  std::printf("signal to thread, wait=%d: peek returned after %.3f ms\n",
              static_cast<int>(wait),
              std::chrono::duration<double, std::milli>(took).count());
}

TEST_CASE("SIGUSR1 ends a peek blocked in another process") {
  const WaitStrategy wait =
      GENERATE(WaitStrategy::futex, WaitStrategy::semaphore);
  CAPTURE(static_cast<int>(wait));
  const int before = testing::own_segment_count();
  {
    testing::ScopedRing ring({.capacity = 256, .wait = wait});
    const int id = ring.segment().id();
    SharedBlock<std::atomic<int>> ready;
    ChildGuard children;
    const pid_t child = children.spawn([&] {
      clear_interrupt();
      struct sigaction sa {};
      sa.sa_handler = on_sigusr1;
      sigemptyset(&sa.sa_mask);
      sa.sa_flags = 0;
      if (::sigaction(SIGUSR1, &sa, nullptr) != 0) return 2;
      auto seg = Segment::attach_id(id);
      if (!seg) return 3;
      auto c = Consumer::attach(*seg);
      if (!c) return 4;
      ready->store(1);
      const Status s = c->peek().status;  // forever
      return s == Status::interrupted ? 0 : 10 + static_cast<int>(s);
    });
    // A producer attached (no end of stream), writing nothing.
    auto p = Producer::attach(ring.segment());
    REQUIRE(p);
    const auto deadline = Clock::now() + 10s;
    while (Clock::now() < deadline &&
           (ready->load() == 0 || process_state(child) != 'S')) {
      std::this_thread::sleep_for(1ms);
    }
    REQUIRE(process_state(child) == 'S');
    const auto t0 = Clock::now();
    REQUIRE(::kill(child, SIGUSR1) == 0);
    const auto st = children.wait(child, 30s);
    const auto took = Clock::now() - t0;
    INFO(st.describe());
    REQUIRE(st.exited);
    CHECK(st.code == 0);
    CHECK(took < 5s);
    std::printf("signal to process, wait=%d: exited %.3f ms later\n",
                static_cast<int>(wait),
                std::chrono::duration<double, std::milli>(took).count());
  }
  CHECK(testing::own_segment_count() == before);
}

}  // namespace
}  // namespace shmring
