// A file descriptor for event loops: Consumer::wait_fd() (see ring.h).
//
// The fd is an eventfd. A helper thread, started on the first wait_fd()
// call, sleeps on the ring's data futex (WaitPoint) and makes the eventfd
// readable when a producer publishes, aborts, closes, or dies. The consumer
// clears it itself: when its try_peek() finds nothing (would_block), it
// reads the eventfd empty and hands the helper a fresh futex snapshot. So
// the fd is level-triggered: it stays readable from the moment there is
// something to do until the consumer has read what is there, and at end of
// stream it stays readable (try_peek() keeps returning closed).
//
// Handshake (the Dekker pair of wait.h, with the consumer as the sleeper
// that announces and the helper as the one who sleeps on its behalf):
//
//   consumer, try_peek() found nothing:
//     s = announce() ; re-check the ring ; if still empty: clear fd, arm(s)
//   helper, armed with s:
//     loop { announce() ; if seq != s: fire ; futex_wait(seq, s) }
//   producer: publish (seq_cst) ; wake(): waiters != 0 -> ++seq, futex_wake
//
// A publish after the consumer's re-check comes after its announce, so the
// producer sees the waiter flag (or a waker before it already bumped seq):
// seq moves past s and the helper fires. Costs: nothing while idle but one
// futex wait per 50 ms slice (a reaper of dead producers); per batch the
// consumer makes two syscalls (eventfd read, helper wake-up) and the
// producer one futex wake. Only rings with WaitStrategy::futex support it.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

#include "ring/internal/handles.h"
#include "ring/internal/wait.h"
#include "ring/status.h"

namespace shmring {

namespace detail {

class WaitFd {
 public:
  // The eventfd and the helper thread for the ring whose control block is
  // `cb` (role semaphores `sem_id`, segment `shm_id`, mapped as long as
  // `mapping` is held: the helper keeps its own reference, so it never
  // depends on the Segment object). The helper also fires once when the
  // segment is removed and no producer is attached (checked every
  // kRemovedCheck). Errc::invalid_argument unless the ring waits with
  // futexes, Errc::system if eventfd/thread creation fails.
  static Result<WaitFd*> create(layout::ControlBlock* cb, int sem_id,
                                int shm_id, WaitStrategy strategy,
                                std::shared_ptr<const void> mapping);
  ~WaitFd();
  WaitFd(const WaitFd&) = delete;
  WaitFd& operator=(const WaitFd&) = delete;

  int fd() const { return fd_; }

  // Consumer thread, after try_peek() found nothing: true if the helper is
  // not watching yet (the fd may be readable), i.e. arm() is due.
  bool needs_arm() const {
    // acquire: pairs with the helper's release store of kFired.
    return state_.load(std::memory_order_acquire) != kArmed;
  }
  // The announce that must precede the consumer's re-check.
  std::uint32_t announce() { return point_.announce(); }
  // Consumer thread: the re-check after announce() found nothing too.
  void arm(std::uint32_t seq);
  // True once the helper saw the segment removed with no producer
  // attached (and fired for it).
  bool removal_seen() const {
    // acquire: pairs with the helper's release store in run().
    return removal_seen_.load(std::memory_order_acquire);
  }
  // Consumer thread: the consumer closed. Stops the helper; the fd stays
  // readable (try_peek() returns closed from now on).
  void stop();

 private:
  WaitFd(layout::ControlBlock* cb, int sem_id, int shm_id,
         WaitStrategy strategy, std::shared_ptr<const void> mapping, int fd);
  void run();
  void fire();

  static constexpr std::uint32_t kFired = 0;  // fd readable, helper idle
  static constexpr std::uint32_t kArmed = 1;  // fd clear, helper watching

  std::shared_ptr<const void> mapping_;  // keeps cb_ mapped
  layout::ControlBlock* cb_;
  int sem_id_;
  int shm_id_;
  std::atomic<bool> removal_seen_{false};
  int fd_;
  WaitPoint point_;  // the helper's own view of the data wait word
  std::atomic<std::uint32_t> state_{kFired};
  std::atomic<bool> stop_{false};
  std::uint32_t armed_seq_ = 0;  // guarded by mu_
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread thread_;
  pid_t owner_pid_;  // fork(): the thread exists only in this process
};

// Nothing to read and the fd may be readable: clear it and let the helper
// watch. announce() first, then the re-check (see WaitFd::announce).
template <class Scan>
auto ConsumerRole::scan_and_arm(Scan scan) -> decltype(scan()) {
  auto r = scan();
  if (r.status != Status::would_block || !wait_fd_ || !wait_fd_->needs_arm()) {
    return r;
  }
  const std::uint32_t seq = wait_fd_->announce();
  r = scan();
  if (r.status == Status::would_block) wait_fd_->arm(seq);
  return r;
}

// The snapshot is taken before the re-check: a producer that attaches after
// it (unseen by `waiting()`) wakes the data word when it first publishes or
// closes, which moves seq past the snapshot, so the helper fires. An attach
// alone wakes nobody; it gives nothing to read either.
template <class Waiting>
bool ConsumerRole::arm_while(Waiting waiting) {
  if (!wait_fd_ || !wait_fd_->needs_arm()) return true;
  const std::uint32_t seq = wait_fd_->announce();
  if (!waiting()) return false;
  wait_fd_->arm(seq);
  return true;
}

}  // namespace detail
}  // namespace shmring
