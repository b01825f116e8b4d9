#include "ring/internal/wait_fd.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <string>
#include <system_error>

#include "ring/internal/roles.h"
#include "ring/internal/sysv.h"
#include "ring/ring.h"
#include "ring/segment.h"

namespace shmring {
namespace detail {

Result<WaitFd*> WaitFd::create(layout::ControlBlock* cb, int sem_id, int shm_id,
                               WaitStrategy strategy,
                               std::shared_ptr<const void> mapping) {
  if (strategy != WaitStrategy::futex) {
    return Error{Errc::invalid_argument,
                 "wait_fd() needs a ring created with the futex wait "
                 "strategy (this one uses semaphore or spin)"};
  }
  const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) {
    return Error{Errc::system, std::string("eventfd: ") + std::strerror(errno)};
  }
  try {
    return new WaitFd(cb, sem_id, shm_id, strategy, std::move(mapping), fd);
  } catch (const std::system_error& e) {  // thread creation
    ::close(fd);
    return Error{Errc::system, std::string("wait_fd thread: ") + e.what()};
  }
}

WaitFd::WaitFd(layout::ControlBlock* cb, int sem_id, int shm_id,
               WaitStrategy strategy, std::shared_ptr<const void> mapping,
               int fd)
    : mapping_(std::move(mapping)),
      cb_(cb),
      sem_id_(sem_id),
      shm_id_(shm_id),
      fd_(fd),
      // join = false: the consumer's own data WaitPoint joined the ring's
      // wake-up handshake for this process already.
      point_(&cb->data_ready, cb->data_sem, strategy, &cb->wake, false),
      owner_pid_(::getpid()) {
  // Starts readable: the consumer's first try_peek() arms the helper. (One
  // possibly spurious wake-up instead of peeking without consuming.)
  const std::uint64_t one = 1;
  (void)!::write(fd_, &one, sizeof one);
  thread_ = std::thread([this] { run(); });
}

WaitFd::~WaitFd() {
  if (::getpid() != owner_pid_) {
    // A copy inherited through fork(): the helper thread lives only in the
    // parent. Never join (or destroy) a thread this process does not have.
    (void)new std::thread(std::move(thread_));
  } else {
    stop();
  }
  ::close(fd_);
}

void WaitFd::arm(std::uint32_t seq) {
  {
    // Under mu_, like fire(): the fd is never readable while the state says
    // armed, so a drained consumer cannot leave it readable for good.
    std::lock_guard<std::mutex> lk(mu_);
    std::uint64_t drained = 0;
    // Non-blocking: EAGAIN when it was already clear.
    (void)!::read(fd_, &drained, sizeof drained);
    armed_seq_ = seq;
    // relaxed: mu_ orders it for the helper; a stale kFired re-arms once more.
    state_.store(kArmed, std::memory_order_relaxed);
  }
  cv_.notify_one();
}

void WaitFd::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lk(mu_);
    // seq_cst: Dekker pair with announce() + stop_ load in WaitFd::run.
    stop_.store(true, std::memory_order_seq_cst);
  }
  cv_.notify_all();
  // Bumps seq only if someone announced: a spurious wake-up for any other
  // sleeper on this word, which every sleeper tolerates (it re-checks).
  point_.wake();
  thread_.join();
  const std::uint64_t one = 1;  // try_peek() answers closed from now on
  (void)!::write(fd_, &one, sizeof one);
}

void WaitFd::fire() {
  std::lock_guard<std::mutex> lk(mu_);
  // release: pairs with the acquire in WaitFd::needs_arm; before the write
  // (docs/design/wait.md#choice-an-eventfd-fed-by-a-helper-thread).
  state_.store(kFired, std::memory_order_release);
  const std::uint64_t one = 1;
  (void)!::write(fd_, &one, sizeof one);
}

void WaitFd::run() {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    cv_.wait(lk, [&] {
      // relaxed: both written under mu_, which we hold.
      return stop_.load(std::memory_order_relaxed) ||
             state_.load(std::memory_order_relaxed) == kArmed;
    });
    // relaxed: under mu_, as above.
    if (stop_.load(std::memory_order_relaxed)) return;
    const std::uint32_t armed = armed_seq_;
    lk.unlock();
    auto last_reap = Clock::now();
    auto next_removed_check = last_reap;
    for (;;) {
      // Keeps the waiter flag set while we sleep on the consumer's behalf.
      const std::uint32_t seq = point_.announce();
      // seq_cst: the other half of WaitFd::stop's Dekker pair.
      if (stop_.load(std::memory_order_seq_cst)) return;
      if (seq != armed) break;  // something changed since the re-check
      point_.sleep(armed, kSleepSlice);
      // A producer killed with SIGKILL never wakes anyone: free its slot,
      // so the consumer's next try_peek() reports end of stream.
      const auto now = Clock::now();
      if (now - last_reap >= kSleepSlice) {
        last_reap = now;
        if (reap_dead_producers(cb_, sem_id_) > 0) break;
      }
      // A removal wakes nobody either: once the ring is removed with no
      // producer attached and no other process maps it (none can attach
      // it now), fire once, so that the reader says so
      // (ConsumerRole::nothing_can_come).
      // relaxed: only this thread writes it.
      if (!removal_seen_.load(std::memory_order_relaxed) &&
          now >= next_removed_check) {
        next_removed_check = now + kRemovedCheck;
        if (shm_orphaned(shm_id_) && !any_producer_registered(cb_)) {
          // release: pairs with the acquire load in removal_seen().
          removal_seen_.store(true, std::memory_order_release);
          break;
        }
      }
    }
    fire();
    lk.lock();
  }
}

Result<int> ConsumerRole::wait_fd() {
  if (closed_) {
    return Error{Errc::invalid_argument, "wait_fd(): the handle is closed"};
  }
  if (!wait_fd_) {
    auto w =
        WaitFd::create(cb_, sem_id_, shm_id_, data_ready_.strategy(), mapping_);
    if (!w) return w.error();
    wait_fd_.reset(*w);
  }
  return wait_fd_->fd();
}

Peeked RecordReader::try_peek_slow() {
  return scan_and_arm([&] { return try_peek_scan(); });
}

}  // namespace detail
}  // namespace shmring
