// The wake-up handshake's per-ring state machine (layout::WakeMode, wait.h,
// docs/design/ordering.md#the-wake-up-handshake), deterministically: who
// raises a ring to fallback_requested, who settles it, and that the SPSC
// and MPSC fast paths make no system call in either mode. The lost-wake-up
// stress runs in both modes and mixed live in wait_test.cc.
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <optional>
#include <span>

#include "ring/queue.h"
#include "tests/support.h"

namespace shmring {
namespace {

using namespace std::chrono_literals;
using layout::WakeMode;
using testing::MembarrierScope;

WakeMode mode_of(Segment& s) {
  return static_cast<WakeMode>(shmring::detail::control(s)->wake.mode.load());
}
bool light_joined(Segment& s) {
  return shmring::detail::control(s)->wake.light_joined.load() != 0;
}

TEST_CASE("a fresh ring is in membarrier mode until a handle joins") {
  testing::ScopedRing ring({.capacity = 4096});
  CHECK(mode_of(ring.segment()) == WakeMode::membarrier);
  CHECK_FALSE(light_joined(ring.segment()));
  // Attaching a Segment (shm-ring info does) joins nothing.
  {
    MembarrierScope off(false);
    Segment again = ring.attach_again();
    CHECK(mode_of(again) == WakeMode::membarrier);
  }
}

TEST_CASE("handles of membarrier processes keep the ring in membarrier mode") {
  if (!detail::process_has_membarrier()) {
    testing::environment_skip(
        "this kernel (or a seccomp profile) refuses "
        "MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED; every ring runs in "
        "fallback mode here");
    return;
  }
  testing::ScopedRing ring({.capacity = 4096});
  auto p = Producer::attach(ring.segment());
  auto c = Consumer::attach(ring.segment());
  REQUIRE(p);
  REQUIRE(c);
  CHECK(light_joined(ring.segment()) == detail::kLightWakeBuild);
  // No process here lacks membarrier: nothing requested a fallback.
  REQUIRE(p->write(testing::as_bytes("x")) == Status::ok);
  REQUIRE(c->peek(1s));
  c->release();
  CHECK(mode_of(ring.segment()) == WakeMode::membarrier);
}

TEST_CASE("without any light process the fallback settles at once") {
  testing::ScopedRing ring({.capacity = 4096});
  MembarrierScope off(false);
  auto p = Producer::attach(ring.segment());
  REQUIRE(p);
  CHECK(mode_of(ring.segment()) == WakeMode::fallback);
  CHECK_FALSE(light_joined(ring.segment()));
}

TEST_CASE(
    "a fallback joiner after a light one waits for a membarrier "
    "process to acknowledge") {
  if (!detail::process_has_membarrier() || !detail::kLightWakeBuild) {
    testing::environment_skip(
        detail::kLightWakeBuild
            ? "needs membarrier (this kernel refuses it)"
            : "needs light wakers, which a TSan build (SHMRING_TSAN) has "
              "none of");
    return;
  }
  const bool by_publish = GENERATE(true, false);
  CAPTURE(by_publish);
  testing::ScopedRing ring({.capacity = 4096});
  auto p = Producer::attach(ring.segment());  // light: joins first
  REQUIRE(p);
  REQUIRE(light_joined(ring.segment()));
  std::optional<Consumer> c;
  {
    MembarrierScope off(false);
    Segment again = ring.attach_again();
    auto got = Consumer::attach(again);
    REQUIRE(got);
    // The consumer's segment must outlive it: keep it in this scope only
    // long enough to see the request, then continue through the original
    // mapping (same memory).
    CHECK(mode_of(again) == WakeMode::fallback_requested);
    got->close();
  }
  REQUIRE(mode_of(ring.segment()) == WakeMode::fallback_requested);
  if (by_publish) {
    // The light producer's next publication sees the request after its
    // release store and completes it (membarrier, then fallback).
    REQUIRE(p->write(testing::as_bytes("x")) == Status::ok);
  } else {
    // A membarrier process that sleeps completes it too: a consumer with
    // membarrier blocks on an empty ring.
    auto light_c = Consumer::attach(ring.segment());
    REQUIRE(light_c);
    Peeked none = light_c->peek(150ms);  // spins, yields, then sleeps
    (void)none;
  }
  CHECK(mode_of(ring.segment()) == WakeMode::fallback);
}

#if !defined(SHMRING_TSAN)
// Not under TSan: its runtime makes system calls of its own and keeps a
// background thread, so a strict-seccomp child cannot even exit cleanly.

// Runs `body` in a child under SECCOMP_MODE_STRICT: any system call other
// than read, write, exit and sigreturn kills it with SIGKILL.
int run_without_syscalls(const std::function<int()>& body) {
  testing::ChildGuard children;
  const pid_t pid = children.spawn([&] {
    if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT) != 0) return 90;
    const int rc = body();
    ::syscall(SYS_exit, rc);  // exit_group is not allowed in strict mode
    return rc;
  });
  const auto st = testing::wait_child(pid, 30s);
  children.forget(pid);
  INFO(st.describe());
  if (!st.exited) return -1;
  return st.code;
}

TEST_CASE("the no-syscall harness catches a system call") {
  CHECK(run_without_syscalls([] { return 0; }) == 0);
  CHECK(run_without_syscalls([] {
          (void)::syscall(SYS_getppid);
          return 0;
        }) == -1);  // SIGKILL
}

TEST_CASE("SPSC and MPSC fast paths make no system call, in either handshake") {
  const bool membarrier = GENERATE(true, false);
  // MPSC: the claim CAS, the header commit through the handshake and the
  // zeroing release; commit_deferred/flush are commit/no-op there.
  const Kind kind = GENERATE(Kind::spsc, Kind::mpsc);
  CAPTURE(membarrier, static_cast<int>(kind));
  const int before = testing::own_segment_count();
  MembarrierScope mode(membarrier && detail::process_has_membarrier());
  {
    testing::ScopedRing ring({.kind = kind, .capacity = 1 << 16});
    auto p = Producer::attach(ring.segment());
    auto c = Consumer::attach(ring.segment());
    REQUIRE(p);
    REQUIRE(c);
    // Each round: a few records that fit, then drain them, so no call ever
    // finds the ring full or empty (those paths may reap or sleep).
    const int rc = run_without_syscalls([&] {
      std::uint64_t next = 0, want = 0;
      // The copying helpers: one 8-byte record each, read back in place.
      auto write_next = [&](bool blocking) {
        const std::uint64_t v = next++;
        const auto bytes = std::as_bytes(std::span(&v, 1));
        return blocking ? p->write(bytes, 1s) : p->try_write(bytes);
      };
      auto read_want = [&](bool blocking) {
        const Peeked got = blocking ? c->peek(1s) : c->try_peek();
        if (!got || got.record.size != 8) return false;
        std::uint64_t v = 0;
        std::memcpy(&v, got.record.data, 8);
        c->release();
        return v == want++;
      };
      for (int round = 0; round < 2000; ++round) {
        auto r = p->try_reserve(24);
        if (!r) return 1;
        std::memset(r.bytes.data(), 7, 24);
        p->commit(24);
        auto r2 = p->reserve(8, 1s);  // blocking, space available
        if (!r2) return 2;
        p->commit_deferred(8);
        p->flush();
        if (write_next(false) != Status::ok) return 3;
        if (write_next(true) != Status::ok) return 4;
        Peeked a = c->try_peek();
        Peeked b = c->peek(1s);  // blocking, data there
        if (!a || !b || a.record.size != 24 || b.record.size != 8) return 5;
        c->release();
        if (!read_want(false)) return 6;
        if (!read_want(true)) return 7;
      }
      return 0;
    });
    CHECK(rc == 0);
  }  // handles and ring gone: the segment must be too
  CHECK(testing::own_segment_count() == before);
}

TEST_CASE("slots fast paths (Queue<T> push/pop) make no system call, in "
          "either handshake") {
  const bool membarrier = GENERATE(true, false);
  CAPTURE(membarrier);
  const int before = testing::own_segment_count();
  MembarrierScope mode(membarrier && detail::process_has_membarrier());
  {
    testing::ScopedRing ring({.kind = Kind::slots,
                              .capacity = 1 << 12,
                              .slot_size = sizeof(std::uint64_t)});
    auto qw = QueueWriter<std::uint64_t>::attach(ring.segment());
    auto qr = QueueReader<std::uint64_t>::attach(ring.segment());
    REQUIRE(qw);
    REQUIRE(qr);
    // 512 slots; rounds of 3 elements wrap the ring many times, and no
    // call finds it full or empty (those paths may reap or sleep) except
    // the cached-index reloads, which are plain loads.
    const int rc = run_without_syscalls([&] {
      std::uint64_t next = 0, want = 0;
      for (int round = 0; round < 5000; ++round) {
        if (qw->try_push(next++) != Status::ok) return 1;
        if (qw->push(next++, 1s) != Status::ok) return 2;
        if (qw->try_push(next++) != Status::ok) return 3;
        Popped<std::uint64_t> v = qr->try_pop();
        if (v.status != Status::ok || v.value != want++) return 4;
        v = qr->pop(1s);
        if (v.status != Status::ok || v.value != want++) return 5;
        v = qr->try_pop();
        if (v.status != Status::ok || v.value != want++) return 6;
      }
      return 0;
    });
    CHECK(rc == 0);
  }  // handles and ring gone: the segment must be too
  CHECK(testing::own_segment_count() == before);
}
#endif  // !SHMRING_TSAN

}  // namespace
}  // namespace shmring
