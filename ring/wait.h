// Sleeping and waking across processes.
//
// Guarantee: a waker that changes the ring and then calls wake() never leaves
// a sleeper asleep that could have seen the change; a sleeper that has seen
// no change sleeps without burning CPU. The proof is the Dekker pair below
// (both sides use seq_cst operations):
//
//   sleeper: s = seq ; waiters = 1 ; re-check the ring ; futex_wait(&seq, s)
//   waker:   publish change ; if (waiters != 0 && exchange(waiters, 0)) {
//                                ++seq ; futex_wake(&seq, all) }
//
// In the single total order of seq_cst operations either the waker's load
// comes after the sleeper's store (it sees a waiter, bumps seq and wakes, so
// futex_wait returns at once or is woken), or the sleeper's re-check comes
// after the publish (it sees the change and does not sleep). The exchange
// makes only the first waker after a sleeper announced pay for a syscall.
//
// Never std::atomic::wait/notify: libstdc++ uses FUTEX_PRIVATE_FLAG, which
// cannot wake another process.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "ring/layout.h"

namespace shmring {

// Asks every blocking call in this process to return Status::interrupted.
// Async-signal-safe: call it from a SIGINT/SIGTERM handler. A wait in another
// thread notices within one sleep slice (kSleepSlice) or at once on EINTR.
void interrupt() noexcept;
void clear_interrupt() noexcept;
bool interrupt_requested() noexcept;

namespace detail {

using Clock = std::chrono::steady_clock;

// Longest single sleep: waits wake this often to check peers' liveness,
// timeouts and interrupts, so a dead peer is noticed within ~one slice.
inline constexpr std::chrono::milliseconds kSleepSlice{50};

// How long a waiter spins, then yields, before it sleeps. Waking a sleeper
// on another CPU costs tens of microseconds here, so a short spin pays.
inline constexpr std::chrono::microseconds kSpinFor{20};
inline constexpr std::chrono::microseconds kYieldFor{50};

struct Deadline {
  Clock::time_point at;
  bool forever = false;
  static Deadline after(std::chrono::nanoseconds t);
  static Deadline from(Clock::time_point now, std::chrono::nanoseconds t);
  bool passed(Clock::time_point now) const { return !forever && now >= at; }
  std::chrono::nanoseconds left(Clock::time_point now) const;
};

// One side's sleeping place: a WaitWord in the control block plus the
// semaphore fallback next to it.
class WaitPoint {
 public:
  WaitPoint(layout::WaitWord* word, void* semaphore, WaitStrategy strategy)
      : word_(word), sem_(semaphore), strategy_(strategy) {}

  WaitStrategy strategy() const { return strategy_; }

  // Sleeper side: announce(); re-check the condition; sleep(); retire().
  std::uint32_t announce();
  // Sleeps at most `max` (and at most kSleepSlice) or until woken; returns
  // false if a signal interrupted it.
  bool sleep(std::uint32_t seq, std::chrono::nanoseconds max);
  void retire();

  // Waker side, after publishing a change with a seq_cst store. No syscall
  // unless someone announced.
  void wake() {
    // seq_cst: the Dekker pair with announce()'s fetch_add (see top).
    if (word_->waiters.load(std::memory_order_seq_cst) != 0) wake_slow();
  }

 private:
  void wake_slow();
  layout::WaitWord* word_;
  void* sem_;
  WaitStrategy strategy_;
  bool got_post_ = false;  // semaphore: the last sleep consumed a post
};

// A CPU-friendly pause for spin loops.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace detail
}  // namespace shmring
