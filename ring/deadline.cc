#include "ring/deadline.h"

namespace shmring {

Deadline Deadline::from(Clock::time_point now, Timeout t) {
  if (t >= std::chrono::hours(24 * 365 * 100) ||
      t > Clock::time_point::max() - now) {
    return {Clock::time_point::max(), true};
  }
  return {now + t, false};
}

Timeout Deadline::left(Clock::time_point now) const {
  if (forever_) return Timeout::max();
  return now >= at_ ? Timeout(0) : at_ - now;
}

}  // namespace shmring
