// What a ring is: its kind, how its waiters sleep, and (broadcast rings)
// what the producer does when the slowest consumer would be overwritten.
// Fixed when the ring is created (RingOptions, ring/segment.h).
#pragma once

#include <cstdint>

namespace shmring {

// Which handles a ring takes
// (docs/design.md#ring-kinds-and-when-to-pick-which):
//   spsc, mpsc  records of any size: Producer, Consumer (ring/ring.h);
//   slots       fixed-size elements: QueueWriter<T>, QueueReader<T>
//               (ring/queue.h);
//   broadcast   records every consumer sees: Producer, Subscriber
//               (ring/broadcast.h).
enum class Kind : std::uint32_t {
  spsc = 1,
  mpsc = 2,
  slots = 3,
  broadcast = 4
};

// Broadcast rings: wait for the slowest live subscriber, or never wait and
// let a lapped subscriber skip what it lost (Subscriber::lost_bytes()).
enum class Overrun : std::uint32_t { wait = 0, drop_slow = 1 };

// How a blocked call sleeps once it has spun: a futex on the ring's wait
// word, a SysV-shared POSIX semaphore, or not at all.
enum class WaitStrategy : std::uint32_t { futex = 1, semaphore = 2, spin = 3 };

}  // namespace shmring
