// moodycamel::ReaderWriterQueue as a shm-bench throughput peer (threads).
#pragma once

#include <readerwriterqueue/readerwriterqueue.h>
#include <cstddef>
#include <memory>

#include "bench/harness.h"
#include "bench/peer_common.h"

namespace bench {

// ReaderWriterQueue<Msg<S>> sized to the same byte budget; try_enqueue
// never allocates (a full queue says no), so it is a bounded SPSC queue
// like the others. Threads only: its blocks live on the heap.
template <std::size_t S>
class RwqPeer {
 public:
  using Queue = moodycamel::ReaderWriterQueue<Msg<S>>;
  explicit RwqPeer(const Config&)
      : queue_(std::make_unique<Queue>(kQueueBytes / S)) {}
  void produce(Child& child) {
    produce_then_done<S>(
        child, done_, [&](const Msg<S>& m) { return queue_->try_enqueue(m); });
  }
  void consume(Child& child) {
    consume_until_done<S>(child, done_,
                          [&](Msg<S>& m) { return queue_->try_dequeue(m); });
  }
  void after_fork() {}

 private:
  std::unique_ptr<Queue> queue_;
  alignas(128) std::atomic<std::uint32_t> done_{0};
};

}  // namespace bench
