// The fixed-slot kind between processes: a forked producer and the parent
// consumer (and the other way round) move a checked sequence through a
// small ring that wraps thousands of times, under each wait strategy and
// in each wake-up handshake mix, and end of stream arrives.
#include <sys/wait.h>

#include <cstdint>
#include <tuple>

#include "tests/support.h"

namespace shmring {
namespace {

using namespace std::chrono_literals;
using testing::Handshake;

constexpr auto kHang = 60s;

// 16-byte element: a sequence number and a check word derived from it.
struct Element {
  std::uint64_t seq;
  std::uint64_t check;
};
constexpr std::uint64_t check_of(std::uint64_t s) {
  return (s * 0x9e3779b97f4a7c15ULL) ^ 0x5107'5107'5107'5107ULL;
}

#if defined(SHMRING_TSAN)
constexpr std::uint64_t kCount = 20000;
#else
constexpr std::uint64_t kCount = 400000;
#endif

// The producer side, in whichever process runs it: 0 on success.
int produce(Segment& seg) {
  auto w = QueueWriter<Element>::attach(seg);
  if (!w) return 10;
  for (std::uint64_t s = 0; s < kCount; ++s) {
    if (w->push({s, check_of(s)}, kHang) != Status::ok) return 11;
  }
  w->close();
  return 0;
}

// The consumer side: 0 if every element arrived once, in order, then
// end of stream.
int consume(Segment& seg) {
  auto r = QueueReader<Element>::attach(seg);
  if (!r) return 20;
  for (std::uint64_t s = 0; s < kCount; ++s) {
    const Popped<Element> e = r->pop(kHang);
    if (e.status != Status::ok) return 21;
    if (e.value.seq != s || e.value.check != check_of(s)) return 22;
  }
  if (r->pop(kHang).status != Status::closed) return 23;
  return 0;
}

TEST_CASE("slots between processes: every element once, in order, then "
          "closed") {
  const auto [wait, producer_child] = GENERATE(
      std::make_tuple(WaitStrategy::futex, true),
      std::make_tuple(WaitStrategy::futex, false),
      std::make_tuple(WaitStrategy::spin, true),
      std::make_tuple(WaitStrategy::semaphore, false));
  const Handshake hs = GENERATE(Handshake::membarrier, Handshake::fallback,
                                Handshake::child_fallback,
                                Handshake::parent_fallback);
  INFO("wait " << static_cast<int>(wait) << ", producer in "
               << (producer_child ? "child" : "parent") << ", handshake "
               << testing::to_string(hs));
  // fallback: neither process has membarrier; the mixes: one of them.
  const bool parent_mb =
      hs == Handshake::membarrier || hs == Handshake::child_fallback;
  const bool child_mb =
      hs == Handshake::membarrier || hs == Handshake::parent_fallback;
  testing::MembarrierScope scope(parent_mb);
  RingOptions o;
  o.kind = Kind::slots;
  o.capacity = 4096;  // 256 elements: wraps ~1500 times
  o.slot_size = sizeof(Element);
  o.wait = wait;
  auto made = Segment::create(testing::test_key(1), o);
  REQUIRE(made);
  Segment seg = std::move(made).value();
  struct Remove {
    Segment& s;
    ~Remove() { (void)s.remove(); }
  } remove{seg};

  testing::ChildGuard children;
  const pid_t pid = children.spawn([&] {
    detail::set_membarrier_for_testing(child_mb);
    auto mine = Segment::attach(seg.key());
    if (!mine) return 30;
    return producer_child ? produce(*mine) : consume(*mine);
  });
  const int here = producer_child ? consume(seg) : produce(seg);
  const auto st = testing::wait_child(pid, std::chrono::milliseconds(kHang));
  children.forget(pid);
  CHECK(here == 0);
  CHECK(st.exited);
  CHECK(st.code == 0);
  // A process without membarrier moved the ring out of membarrier mode
  // (whether the request was acknowledged depends on who joined first).
  const auto mode =
      static_cast<layout::WakeMode>(shmring::detail::control(seg)->wake.mode.load());
  if (hs == Handshake::membarrier || hs == Handshake::fallback) {
    CHECK(mode == testing::settled_mode(hs));
  } else {
    CHECK(mode != layout::WakeMode::membarrier);
  }
}

}  // namespace
}  // namespace shmring
