// Boost.Interprocess message_queue as a shm-bench throughput peer.
#pragma once

#include <boost/interprocess/ipc/message_queue.hpp>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "bench/harness.h"
#include "bench/peer_common.h"

namespace bench {

// A named queue under /dev/shm (unique name, removed in the destructor).
// Both children open it by name after the fork. A 1-byte message ends the
// stream.
template <std::size_t S>
class MessageQueuePeer {
 public:
  explicit MessageQueuePeer(const Config& config)
      : name_(unique_name("shm-bench-mq")) {
    namespace bip = boost::interprocess;
    bip::message_queue::remove(name_.c_str());
    const std::size_t n =
        std::clamp<std::size_t>(config.ring_bytes / S, 16, 65536);
    bip::message_queue(bip::create_only, name_.c_str(), n, S);
  }
  ~MessageQueuePeer() {
    boost::interprocess::message_queue::remove(name_.c_str());
  }
  void produce(Child& child) {
    namespace bip = boost::interprocess;
    bip::message_queue q(bip::open_only, name_.c_str());
    alignas(64) Msg<S> src = source_record<S>();
    produce_loop<S>(child, [&](std::uint64_t seq) {
      set_seq(src, seq);
      q.send(&src, S, 0);
    });
    const char end = 0;
    q.send(&end, 1, 0);
  }
  void consume(Child& child) {
    namespace bip = boost::interprocess;
    bip::message_queue q(bip::open_only, name_.c_str());
    alignas(64) Msg<S> dst{};
    SeqCheck check;
    const auto t0 = child.ready_and_wait();
    for (;;) {
      bip::message_queue::size_type got = 0;
      unsigned prio = 0;
      q.receive(&dst, S, got, prio);
      if (got == 1) break;
      if (got != S) ++check.errors;
      keep(dst);  // the whole copy must happen, not just its first 8 bytes
      check(seq_of(&dst));
    }
    finish_consumer(child, t0, check, S);
  }
  void after_fork() {}

 private:
  std::string name_;
};

}  // namespace bench
