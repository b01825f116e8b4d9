// Boost.Lockfree spsc_queue as a shm-bench throughput peer (processes and
// threads).
#pragma once

#include <boost/lockfree/spsc_queue.hpp>
#include <cstddef>
#include <new>

#include "bench/harness.h"
#include "bench/peer_common.h"

namespace bench {

// spsc_queue<Msg<S>, capacity<N>> keeps its storage and both indices inline
// (no heap pointer), so placement new into a MAP_SHARED mapping made before
// the fork gives both processes the same queue. Boost does not promise
// that it is process-shared; it works because the compile-time-sized
// ring is a plain struct of atomics and bytes (checked: the consumer
// verifies every sequence number). In threads mode the same object is
// used by two threads of one process, as Boost intends.
template <std::size_t S>
class LockfreePeer {
 public:
  static constexpr std::size_t kCapacity = kQueueBytes / S;
  using Queue =
      boost::lockfree::spsc_queue<Msg<S>, boost::lockfree::capacity<kCapacity>>;
  struct Shared {
    Queue queue;
    alignas(128) std::atomic<std::uint32_t> done{0};
  };

  explicit LockfreePeer(const Config&) {}
  void produce(Child& child) {
    produce_then_done<S>(child, shared_->done, [&](const Msg<S>& m) {
      return shared_->queue.push(m);
    });
  }
  void consume(Child& child) {
    consume_until_done<S>(child, shared_->done,
                          [&](Msg<S>& m) { return shared_->queue.pop(m); });
  }
  void after_fork() {}

 private:
  SharedObject<Shared> shared_;
};

}  // namespace bench
