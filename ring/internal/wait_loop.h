// The spin -> yield -> sleep policy of every blocking call (internal), on
// top of WaitPoint (wait.h): Producer::reserve() and Consumer::peek().
#pragma once

#include <sched.h>

#include <chrono>

#include "ring/deadline.h"
#include "ring/internal/segment_access.h"
#include "ring/internal/wait.h"
#include "ring/segment.h"
#include "ring/status.h"

namespace shmring::detail {

// The wait strategy comes from the Segment's validated snapshot, not from
// the (writable by any peer) header.
// A handle's data point joins the ring's wake-up handshake (wait.h) before
// the handle publishes or sleeps.
inline WaitPoint data_point(const Segment& seg) {
  return {&detail::control(seg)->data_ready, detail::control(seg)->data_sem,
          seg.wait_strategy(), &detail::control(seg)->wake, true};
}
inline WaitPoint space_point(const Segment& seg) {
  return {&detail::control(seg)->space_ready, detail::control(seg)->space_sem,
          seg.wait_strategy(), &detail::control(seg)->wake, false};
}

// The spin → yield → sleep loop shared by reserve() and peek().
// `attempt` returns a result whose status is would_block while the caller
// must keep waiting; `check` runs between sleeps (liveness, end of stream)
// and returns ok to keep waiting or the status to give up with.
template <class R, class Attempt, class Check>
R wait_loop(WaitPoint& point, std::chrono::nanoseconds timeout, Attempt attempt,
            Check check) {
  R r = attempt();
  if (r.status != Status::would_block) return r;
  auto give_up = [](Status s) {
    R out;
    out.status = s;
    return out;
  };
  // A bounded spin before the first clock read: data that arrives within it
  // costs no clock read and no syscall. A zero timeout skips it (a poll).
  if (timeout > std::chrono::nanoseconds::zero()) {
    for (unsigned i = 0; i < kSpinNoClock; ++i) {
      cpu_relax();
      r = attempt();
      if (r.status != Status::would_block) return r;
    }
  }
  // The timeout counts from here: the bounded spin above is not charged.
  const auto start = Clock::now();
  const auto deadline = Deadline::from(start, timeout);

  for (unsigned i = 1;; ++i) {
    cpu_relax();
    r = attempt();
    if (r.status != Status::would_block) return r;
    if ((i & 63) == 0) {
      const auto now = Clock::now();
      if (interrupt_requested()) return give_up(Status::interrupted);
      if (deadline.passed(now)) return give_up(Status::timed_out);
      if (now - start > kSpinFor) break;
    }
  }
  while (Clock::now() - start < kSpinFor + kYieldFor) {
    ::sched_yield();
    r = attempt();
    if (r.status != Status::would_block) return r;
  }

  // Liveness checks cost syscalls: at most once per slice (spin-only rings:
  // once per millisecond, they never sleep).
  const auto check_every =
      point.strategy() == WaitStrategy::spin
          ? std::chrono::nanoseconds(std::chrono::milliseconds(1))
          : std::chrono::nanoseconds(kSleepSlice);
  auto last_check = Clock::time_point{};
  for (;;) {
    const auto now = Clock::now();
    if (interrupt_requested()) return give_up(Status::interrupted);
    if (now - last_check >= check_every) {
      last_check = now;
      const Status s = check();
      if (s != Status::ok) return give_up(s);
    }
    if (deadline.passed(now)) return give_up(Status::timed_out);
    const std::uint32_t seq = point.announce();
    r = attempt();  // the re-check of the Dekker pair (see wait.h)
    if (r.status != Status::would_block) {
      point.retire();
      return r;
    }
    point.sleep(seq, deadline.left(now));  // false on EINTR: loop re-checks
    point.retire();
    r = attempt();
    if (r.status != Status::would_block) return r;
  }
}

}  // namespace shmring::detail
