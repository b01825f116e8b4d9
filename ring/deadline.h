// When a timeout that started at a given moment runs out: the library's
// blocking calls and the tools measure every timeout with this one type.
#pragma once

#include <chrono>

namespace shmring {

using Timeout = std::chrono::nanoseconds;

class Deadline {
 public:
  using Clock = std::chrono::steady_clock;

  // A timeout of 100 years or more (kForever included), or one that would
  // overflow the clock, never passes.
  static Deadline after(Timeout t) { return from(Clock::now(), t); }
  static Deadline from(Clock::time_point now, Timeout t);

  bool forever() const { return forever_; }
  bool passed(Clock::time_point now) const { return !forever_ && now >= at_; }
  bool passed() const { return passed(Clock::now()); }
  // What is left, 0 once passed; Timeout::max() (kForever) if forever.
  Timeout left(Clock::time_point now) const;
  Timeout left() const { return left(Clock::now()); }

 private:
  Deadline(Clock::time_point at, bool forever) : at_(at), forever_(forever) {}
  Clock::time_point at_;
  bool forever_;
};

}  // namespace shmring
