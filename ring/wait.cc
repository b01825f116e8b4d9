#include "ring/internal/wait.h"

#include <linux/futex.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/sync/interprocess_semaphore.hpp>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>

namespace shmring {
namespace {

// Lock-free, hence async-signal-safe to store from a handler.
std::atomic<bool> g_interrupt{false};
static_assert(std::atomic<bool>::is_always_lock_free);

namespace bip = boost::interprocess;

// Boost's interprocess_semaphore is, on this platform, a POSIX sem_t and
// nothing else (ipcdetail::posix_semaphore, its only member); the segment
// holds one (layout.h, data_sem / space_sem). Its timed_wait() is
// sem_timedwait() on CLOCK_REALTIME, which a clock step stretches, so
// sleeps call sem_clockwait(CLOCK_MONOTONIC) on that sem_t instead.
#if defined(BOOST_INTERPROCESS_FORCE_GENERIC_EMULATION) || \
    !defined(BOOST_INTERPROCESS_POSIX_PROCESS_SHARED) ||   \
    !defined(BOOST_INTERPROCESS_POSIX_UNNAMED_SEMAPHORES)
#error "shmring needs Boost.Interprocess's POSIX unnamed semaphores"
#endif
#if !defined(__GLIBC__) || !__GLIBC_PREREQ(2, 30)
#error "shmring needs sem_clockwait (glibc 2.30 or later)"
#endif
static_assert(sizeof(bip::interprocess_semaphore) == sizeof(sem_t));
static_assert(alignof(bip::interprocess_semaphore) == alignof(sem_t));
static_assert(std::is_standard_layout_v<bip::interprocess_semaphore>);

sem_t* native(void* sem) { return static_cast<sem_t*>(sem); }

// The fallback semaphores live in the segment, where any peer can scribble.
// glibc's sem_t (64-bit) is a 64-bit counter followed by a futex "private"
// flag; a scribbled flag makes glibc abort() the process ("The futex
// facility returned an unexpected error code"), and no catch can stop that.
// So a semaphore is handed to glibc only if every byte after the counter
// still equals a freshly initialised one. (A peer that scribbles in the
// nanoseconds between this check and glibc's read can still win; the futex
// strategy has no such exposure. See docs/hardening.md.)
bool semaphore_intact(const void* sem) {
#if defined(__GLIBC__) && (defined(__x86_64__) || defined(__aarch64__))
  constexpr std::size_t kCounterBytes = 8;
  struct Reference {
    alignas(bip::interprocess_semaphore) unsigned char bytes[sizeof(
        bip::interprocess_semaphore)] = {};
    // Never destroyed: a glibc sem_t holds no resources.
    Reference() { new (bytes) bip::interprocess_semaphore(0); }
  };
  static const Reference ref;
  return std::memcmp(static_cast<const unsigned char*>(sem) + kCounterBytes,
                     ref.bytes + kCounterBytes,
                     sizeof ref.bytes - kCounterBytes) == 0;
#else
  (void)sem;
  return true;
#endif
}

// Sleeps `slice` without any shared state; false if a signal cut it short.
bool plain_sleep(std::chrono::nanoseconds slice) {
  struct timespec ts {};
  ts.tv_sec = static_cast<time_t>(slice.count() / 1000000000);
  ts.tv_nsec = static_cast<long>(slice.count() % 1000000000);
  return ::nanosleep(&ts, nullptr) == 0 || errno != EINTR;
}

// This process's membarrier state: -1 not yet known, 0 none, 1 registered.
// relaxed: a per-process cache of an idempotent syscall's answer; racing
// first callers both register, which is harmless.
std::atomic<int> g_membarrier{-1};

long membarrier_call(int cmd) { return ::syscall(SYS_membarrier, cmd, 0U, 0); }

int probe_membarrier(bool honour_env = true) {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): read-only use of the environment
  const char* env = std::getenv("SHMRING_NO_MEMBARRIER");
  if (honour_env && env != nullptr && env[0] != '\0' &&
      std::strcmp(env, "0") != 0) {
    return 0;
  }
  const long cmds = membarrier_call(MEMBARRIER_CMD_QUERY);
  if (cmds < 0 || (cmds & MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0 ||
      (cmds & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0) {
    return 0;
  }
  return membarrier_call(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0 ? 1 : 0;
}

// A forked child is a new mm: register it again (idempotent if the kernel
// kept the parent's registration). Async-signal-safe: one syscall.
void membarrier_atfork_child() {
  // relaxed (both): a per-process flag; nothing is published through it.
  if (g_membarrier.load(std::memory_order_relaxed) == 1 &&
      membarrier_call(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) != 0) {
    g_membarrier.store(0, std::memory_order_relaxed);
  }
}

}  // namespace

void interrupt() noexcept {
  // relaxed: a flag polled by waits; no data is published through it.
  g_interrupt.store(true, std::memory_order_relaxed);
}
void clear_interrupt() noexcept {
  // relaxed: as in interrupt().
  g_interrupt.store(false, std::memory_order_relaxed);
}
bool interrupt_requested() noexcept {
  // relaxed: as in interrupt().
  return g_interrupt.load(std::memory_order_relaxed);
}

namespace detail {

bool process_has_membarrier() {
  // relaxed (all): a per-process probe result; the CAS makes racers agree.
  int v = g_membarrier.load(std::memory_order_relaxed);
  if (v >= 0) return v == 1;
  static const bool atfork_installed =
      ::pthread_atfork(nullptr, nullptr, membarrier_atfork_child) == 0;
  (void)atfork_installed;
  int expected = -1;
  g_membarrier.compare_exchange_strong(expected, probe_membarrier(),
                                       std::memory_order_relaxed);
  return g_membarrier.load(std::memory_order_relaxed) == 1;
}

void set_membarrier_for_testing(bool enabled) {
  (void)process_has_membarrier();  // installs the fork handler
  // relaxed: as in process_has_membarrier().
  g_membarrier.store(enabled ? probe_membarrier(false) : 0,
                     std::memory_order_relaxed);
}

bool membarrier_global() {
  return membarrier_call(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0;
}

static bool acknowledge_fallback_once(std::atomic<std::uint32_t>* mode) {
  // Every light publication issued before this point (its wake_mode load
  // read `membarrier`) is ordered before the CAS below; every one after it
  // reads fallback_requested or fallback
  // (ordering.md#switching-a-ring-to-fallback-without-losing-a-wake-up).
  if (!membarrier_global()) return false;
  std::uint32_t expected =
      static_cast<std::uint32_t>(layout::WakeMode::fallback_requested);
  // acq_rel: pairs with the acquire load of the mode in WaitPoint::announce.
  mode->compare_exchange_strong(
      expected, static_cast<std::uint32_t>(layout::WakeMode::fallback),
      std::memory_order_acq_rel, std::memory_order_acquire);
  return true;
}

void acknowledge_fallback(std::atomic<std::uint32_t>* mode) {
  (void)acknowledge_fallback_once(mode);
}

void join_wake_protocol(layout::WakeControl* wake, bool light) {
  constexpr auto kMembarrier =
      static_cast<std::uint32_t>(layout::WakeMode::membarrier);
  constexpr auto kRequested =
      static_cast<std::uint32_t>(layout::WakeMode::fallback_requested);
  constexpr auto kFallback =
      static_cast<std::uint32_t>(layout::WakeMode::fallback);
  if (process_has_membarrier()) {
    // Our sleepers issue membarrier and our wakers are light or seq_cst:
    // correct against every peer, nothing to request.
    if (light) {
      // seq_cst: Dekker pair with a fallback joiner's request + load below.
      wake->light_joined.store(1, std::memory_order_seq_cst);
    }
    // seq_cst: the other half of that pair.
    if (wake->mode.load(std::memory_order_seq_cst) == kRequested) {
      acknowledge_fallback(&wake->mode);
    }
    return;
  }
  std::uint32_t expected = kMembarrier;
  // seq_cst: Dekker pair with a light joiner's store + mode load above.
  wake->mode.compare_exchange_strong(expected, kRequested,
                                     std::memory_order_seq_cst);
  // seq_cst: as the CAS.
  if (wake->mode.load(std::memory_order_seq_cst) != kRequested) return;
  // seq_cst: pairs with the light joiner's store above; 0: settle at once.
  if (wake->light_joined.load(std::memory_order_seq_cst) == 0) {
    expected = kRequested;
    // seq_cst: as the request CAS.
    wake->mode.compare_exchange_strong(expected, kFallback,
                                       std::memory_order_seq_cst);
  }
}

std::uint32_t WaitPoint::announce() {
  // acquire: pairs with the seq bump in WaitPoint::wake_slow.
  const std::uint32_t seq = word_->seq.load(std::memory_order_acquire);
  unacked_ = false;
  if (strategy_ == WaitStrategy::spin) return seq;  // never sleeps: no flag
  if (strategy_ == WaitStrategy::semaphore) {
    // seq_cst: sleeper half of the symmetric pair with WaitPoint::wake.
    // Counted: each registration gets one post.
    word_->waiters.fetch_add(1, std::memory_order_seq_cst);
  } else {
    // seq_cst: as above.
    // A flag, not a count: the waker clears it and wakes every sleeper, so a
    // sleeper never has to take it back.
    word_->waiters.store(1, std::memory_order_seq_cst);
  }
  // acquire: pairs with the CAS to `fallback` in acknowledge_fallback_once.
  const std::uint32_t mode = mode_->load(std::memory_order_acquire);
  constexpr auto kFallback =
      static_cast<std::uint32_t>(layout::WakeMode::fallback);
  constexpr auto kRequested =
      static_cast<std::uint32_t>(layout::WakeMode::fallback_requested);
  if (mode == kFallback) return seq;  // every waker is seq_cst: Dekker pair
  if (process_has_membarrier()) {
    // The heavy half of the asymmetric pair: a full barrier in every
    // running thread of every registered process, so a light waker either
    // published before it (the re-check sees it) or loads `waiters` after
    // it (sees our store). A pending fallback request is completed by the
    // same syscall.
    const bool ok = mode == kRequested ? acknowledge_fallback_once(mode_)
                                       : membarrier_global();
    unacked_ = !ok;
    return seq;
  }
  // No membarrier here and light wakers may still be in flight: our
  // seq_cst store cannot order them, so sleep in short slices until a
  // membarrier process acknowledges (or none exists to publish lightly).
  unacked_ = true;
  return seq;
}

void WaitPoint::publish_switched() {
  // The ring left membarrier mode after our release store of the index:
  // complete a pending request (we have membarrier), then order the store
  // before the waiters load with a fence, the symmetric pair.
  // relaxed: re-read; the acknowledgement itself orders what matters.
  if (mode_->load(std::memory_order_relaxed) ==
      static_cast<std::uint32_t>(layout::WakeMode::fallback_requested)) {
    acknowledge_fallback(mode_);
  }
  // seq_cst fence: symmetric waker; pairs with announce()'s store, re-check.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  wake();
}

void WaitPoint::before_strong_publish() {
  // relaxed: a hint; the acknowledgement itself orders what matters.
  if (process_has_membarrier() &&
      mode_->load(std::memory_order_relaxed) ==
          static_cast<std::uint32_t>(layout::WakeMode::fallback_requested)) {
    acknowledge_fallback(mode_);
  }
}

void WaitPoint::retire() {
  if (strategy_ != WaitStrategy::semaphore) return;  // the waker clears flags
  if (got_post_) {  // our sleep consumed the post for our registration
    got_post_ = false;
    return;
  }
  // A semaphore waker takes every registration at once (exchange in
  // wake_slow) and posts once for each; undo ours if one is still counted.
  // If the waker took ours, its post is pending (or about to be): consume
  // it now so it does not cost a later spurious wake-up. With several
  // sleepers this may undo another sleeper's registration instead; that
  // sleeper then notices the change at its next slice (kSleepSlice).
  // relaxed: a count; the posts carry no data.
  std::uint32_t n = word_->waiters.load(std::memory_order_relaxed);
  while (n != 0 && !word_->waiters.compare_exchange_weak(
                       n, n - 1, std::memory_order_relaxed)) {
  }
  if (n == 0 && semaphore_intact(sem_)) {
    try {
      (void)static_cast<boost::interprocess::interprocess_semaphore*>(sem_)
          ->try_wait();
    } catch (const boost::interprocess::interprocess_exception&) {
      // A scribbled semaphore: nothing to undo.
    }
  }
}

bool WaitPoint::sleep(std::uint32_t seq, std::chrono::nanoseconds max) {
  const auto slice = std::min<std::chrono::nanoseconds>(
      max, unacked_ ? std::chrono::nanoseconds(kUnackedSlice)
                    : std::chrono::nanoseconds(kSleepSlice));
  if (slice <= std::chrono::nanoseconds(0)) return true;
  if (strategy_ == WaitStrategy::semaphore) {
    // A scribbled semaphore: poll at the slice instead (callers re-check).
    if (!semaphore_intact(sem_)) return plain_sleep(slice);
    // A deadline on the monotonic clock: a wall clock stepped back cannot
    // stretch the slice (see native() above).
    struct timespec until {};
    ::clock_gettime(CLOCK_MONOTONIC, &until);
    const long long ns = until.tv_nsec + slice.count();
    until.tv_sec += static_cast<time_t>(ns / 1000000000);
    until.tv_nsec = static_cast<long>(ns % 1000000000);
    got_post_ = ::sem_clockwait(native(sem_), CLOCK_MONOTONIC, &until) == 0;
    if (got_post_ || errno == ETIMEDOUT) return true;
    if (errno == EINTR) return false;
    // A scribbled counter (EINVAL, EOVERFLOW): never crash over it.
    return plain_sleep(slice);
  }
  if (strategy_ == WaitStrategy::spin) {
    ::sched_yield();
    return true;
  }
  struct timespec ts {};
  ts.tv_sec = static_cast<time_t>(slice.count() / 1000000000);
  ts.tv_nsec = static_cast<long>(slice.count() % 1000000000);
  // Shared futex (no FUTEX_PRIVATE_FLAG): waker and sleeper are different
  // processes mapping the same physical page.
  const long r =
      ::syscall(SYS_futex, &word_->seq, FUTEX_WAIT, seq, &ts, nullptr, 0);
  if (r != 0 && errno == EINTR) return false;
  return true;  // woken, EAGAIN (seq moved: a wake raced us) or timeout
}

void WaitPoint::wake_slow() {
  // acq_rel: pairs with the waiters store in announce(); wakes on the edge.
  std::uint32_t n = word_->waiters.exchange(0, std::memory_order_acq_rel);
  if (n == 0) return;  // another waker took them
  // The count is in the segment: a corrupt one must not make us post four
  // billion times. No side has more sleepers than producers + 1 consumer.
  n = std::min<std::uint32_t>(n, layout::kMaxProducers + 1);
  // release: pairs with the acquire load of seq in WaitPoint::announce.
  word_->seq.fetch_add(1, std::memory_order_release);
  if (strategy_ == WaitStrategy::semaphore) {
    // Scribbled: sleepers still wake at their next slice (kSleepSlice).
    if (!semaphore_intact(sem_)) return;
    auto* sem = static_cast<boost::interprocess::interprocess_semaphore*>(sem_);
    try {
      for (std::uint32_t i = 0; i < n; ++i) sem->post();
    } catch (const boost::interprocess::interprocess_exception&) {
      // A scribbled semaphore (EOVERFLOW, EINVAL): sleepers still wake at
      // their next slice (kSleepSlice). Not worth a crash.
    }
    return;
  }
  if (strategy_ == WaitStrategy::futex) {
    ::syscall(SYS_futex, &word_->seq, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
  }
}

}  // namespace detail
}  // namespace shmring
