// Sleeping and waking across processes.
//
// Guarantee: a waker that changes the ring and then calls wake() (or
// publishes through publish()) never leaves a sleeper asleep that could have
// seen the change; a sleeper that has seen no change sleeps without burning
// CPU. Two handshakes, chosen per ring by ControlBlock::wake.mode (see
// layout.h and docs/design/ordering.md#the-wake-up-handshake):
//
// Asymmetric (every attacher registered membarrier): the waker pays nothing
//   sleeper: s = seq ; waiters = 1 ; membarrier(GLOBAL_EXPEDITED) ;
//            re-check the ring ; futex_wait(&seq, s)
//   waker:   index.store(release) ; compiler barrier ;
//            if (wake_mode.load(relaxed) != membarrier) fence + seq_cst load
//            else if (waiters.load(relaxed) != 0) wake_slow()
// membarrier makes every running thread of every registered process execute
// a full barrier, so the waker's store and load act as if a fence separated
// them exactly when a sleeper needs it.
//
// Symmetric (fallback, TSan builds; also every wake() after a seq_cst store):
//   sleeper: s = seq ; waiters = 1 (seq_cst) ; re-check (seq_cst) ; sleep
//   waker:   index.store(seq_cst) ; if (waiters.load(seq_cst) != 0) ...
// the Dekker pair in the single total order of seq_cst operations.
//
// In both, wake_slow() clears the flag with an exchange (only the first
// waker after an announcement pays for the syscall), bumps seq and wakes.
//
// Never std::atomic::wait/notify: libstdc++ uses FUTEX_PRIVATE_FLAG, which
// cannot wake another process.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "ring/internal/layout.h"
#include "ring/status.h"

namespace shmring {

namespace detail {

// ---- membarrier, once per process.
//
// True if this process registered MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED
// (at the first call; later calls return the cached answer). False if the
// kernel or a seccomp profile refuses it, if SHMRING_NO_MEMBARRIER=1 is set
// in the environment at the first call, or after
// set_membarrier_for_testing(false).
bool process_has_membarrier();
// Test hook: false makes this process behave as if membarrier were
// unavailable (what SHMRING_NO_MEMBARRIER=1 does); true probes and registers
// again, ignoring the environment. Affects only segments and handles
// created or attached afterwards.
void set_membarrier_for_testing(bool enabled);
// membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED); false if it failed.
bool membarrier_global();
// Every Producer/Consumer handle joins before it publishes or sleeps: a
// process with membarrier says whether it may publish lightly (`light`:
// light_joined) and completes a pending request; one without raises the
// ring to fallback_requested, and settles it at once (fallback) if no light
// process ever joined.
void join_wake_protocol(layout::WakeControl* wake, bool light);
// Completes a fallback request (see WakeMode); cold, costs a syscall.
void acknowledge_fallback(std::atomic<std::uint32_t>* mode);

// True if wakers of this process may use the light path at all: it has
// membarrier and is not a TSan build (TSan does not model membarrier, so
// under SHMRING_TSAN every waker takes the seq_cst path and TSan checks a
// program that is correct in the C++ memory model alone).
#if defined(SHMRING_TSAN)
inline constexpr bool kLightWakeBuild = false;
#else
inline constexpr bool kLightWakeBuild = true;
#endif

using Clock = std::chrono::steady_clock;

// Longest single sleep: waits wake this often to check peers' liveness,
// timeouts and interrupts, so a dead peer is noticed within ~one slice.
inline constexpr std::chrono::milliseconds kSleepSlice{50};

// How often a reader with nothing to read looks whether its ring was
// removed (one IPC_STAT; ConsumerRole::nothing_can_come, the wait fd).
inline constexpr std::chrono::milliseconds kRemovedCheck{250};

// A sleeper that cannot trust light wakers yet (WakeMode::fallback_requested
// in a process without membarrier) sleeps at most this long per slice.
inline constexpr std::chrono::milliseconds kUnackedSlice{1};

// How long a waiter spins, then yields, before it sleeps. Waking a sleeper
// on another CPU costs tens of microseconds here, so a short spin pays.
// The first kSpinNoClock spins read no clock at all: data that arrives
// within them costs neither a clock read nor a syscall.
inline constexpr unsigned kSpinNoClock = 256;
inline constexpr std::chrono::microseconds kSpinFor{20};
inline constexpr std::chrono::microseconds kYieldFor{50};

// One side's sleeping place: a WaitWord in the control block plus the
// semaphore fallback next to it, and the ring's WakeMode.
class WaitPoint {
 public:
  // `join`: this handle's first WaitPoint joins the ring's handshake.
  WaitPoint(layout::WaitWord* word, void* semaphore, WaitStrategy strategy,
            layout::WakeControl* wake, bool join)
      : word_(word),
        sem_(semaphore),
        mode_(&wake->mode),
        strategy_(strategy),
        light_(kLightWakeBuild && process_has_membarrier()) {
    if (join) join_wake_protocol(wake, light_);
  }

  WaitStrategy strategy() const { return strategy_; }

  // Sleeper side: announce(); re-check the condition; sleep(); retire().
  std::uint32_t announce();
  // Sleeps at most `max` (and at most kSleepSlice) or until woken; returns
  // false if a signal interrupted it.
  bool sleep(std::uint32_t seq, std::chrono::nanoseconds max);
  void retire();

  // Waker side: stores `value` into `index` (head or tail, or an MPSC
  // record header: release, so it publishes everything written before) and
  // wakes a sleeper if one announced. `Index` is std::atomic<std::uint64_t>
  // or std::atomic_ref<std::uint64_t>. Asymmetric mode: the store, a
  // compiler barrier and two relaxed loads (wake_mode, waiters); no locked
  // instruction, no fence, no syscall unless someone announced. Otherwise
  // the seq_cst pair, or a fence once the ring left membarrier mode.
  template <class Index>
  void publish(Index&& index, std::uint64_t value) {
    if (light_) {
      // release: pairs with the peer's acquire (seq_cst) load of `index`.
      index.store(value, std::memory_order_release);
      // signal fence: compiler only; a sleeper's membarrier orders the CPU.
      std::atomic_signal_fence(std::memory_order_seq_cst);
      // relaxed: W2, after the store on purpose
      // (ordering.md#switching-a-ring-to-fallback-without-losing-a-wake-up).
      if (mode_->load(std::memory_order_relaxed) != 0) [[unlikely]] {
        publish_switched();
        return;
      }
      // relaxed: waker half of the asymmetric pair with announce()+membarrier
      if (word_->waiters.load(std::memory_order_relaxed) != 0) [[unlikely]] {
        wake_slow();
      }
      return;
    }
    before_strong_publish();
    // seq_cst: waker half of the symmetric Dekker pair with announce().
    index.store(value, std::memory_order_seq_cst);
    wake();
  }

  // Waker side, after publishing a change with a seq_cst store or RMW
  // (Producer::close's CAS on its slot). No syscall unless someone
  // announced.
  void wake() {
    // seq_cst: the Dekker pair with announce()'s store (see top).
    if (word_->waiters.load(std::memory_order_seq_cst) != 0) wake_slow();
  }

 private:
  // A process with membarrier completes a pending fallback request before
  // a seq_cst publication (cold: one relaxed load otherwise).
  void before_strong_publish();
  void publish_switched();
  void wake_slow();
  layout::WaitWord* word_;
  void* sem_;
  std::atomic<std::uint32_t>* mode_;
  WaitStrategy strategy_;
  bool light_;             // this process may use the light waker path
  bool got_post_ = false;  // semaphore: the last sleep consumed a post
  bool unacked_ = false;   // the last announce() could not order light
                           // wakers: sleep in kUnackedSlice slices
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
