// The fixed-slot ring: the throughput limit of a minimal SPSC ring.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "bench/harness.h"
#include "bench/peer_common.h"

namespace bench {

// What a minimal SPSC ring of fixed S-byte slots reaches between two
// processes: cached opposite index, indices on their own 128-byte lines,
// one release store per record (a plain mov on x86), no headers, no
// lifecycle, no waiting. shmring does more per record (variable length,
// headers, end of stream, liveness, sleeping); this row is the ceiling.
template <std::size_t S>
class FixedRingPeer {
 public:
  static constexpr std::size_t kSlots = kQueueBytes / S;
  static_assert((kSlots & (kSlots - 1)) == 0);
  struct Shared {
    alignas(128) std::atomic<std::uint64_t> head{0};  // consumer writes
    alignas(128) std::atomic<std::uint64_t> tail{0};  // producer writes
    alignas(128) std::atomic<std::uint32_t> done{0};
    alignas(128) Msg<S> slots[kSlots]{};
  };

  explicit FixedRingPeer(const Config&) {}
  void produce(Child& child) {
    Shared& sh = *shared_;
    alignas(64) Msg<S> src = source_record<S>();
    std::uint64_t tail = 0, cached_head = 0;
    Backoff backoff;
    produce_loop<S>(child, [&](std::uint64_t seq) {
      if (tail - cached_head == kSlots) {
        // acquire: pairs with the consumer's release of head; its reads of
        // the slot happen before our overwrite.
        while ((cached_head = sh.head.load(std::memory_order_acquire)) ==
               tail - kSlots) {
          backoff.pause();
        }
      }
      set_seq(src, seq);
      std::memcpy(&sh.slots[tail & (kSlots - 1)], &src, S);
      // release: pairs with the consumer's acquire load of tail.
      sh.tail.store(++tail, std::memory_order_release);
    });
    // release: pairs with the consumer's acquire load of done.
    sh.done.store(1, std::memory_order_release);
  }
  void consume(Child& child) {
    Shared& sh = *shared_;
    alignas(64) Msg<S> dst{};
    SeqCheck check;
    std::uint64_t head = 0, cached_tail = 0;
    Backoff backoff;
    const auto t0 = child.ready_and_wait();
    for (;;) {
      if (head == cached_tail) {
        // acquire: pairs with the producer's release store of tail.
        cached_tail = sh.tail.load(std::memory_order_acquire);
        if (head == cached_tail) {
          // acquire: pairs with the release store of done, which follows
          // the last tail store; re-read tail after it.
          if (sh.done.load(std::memory_order_acquire) != 0) {
            cached_tail = sh.tail.load(std::memory_order_acquire);
            if (head == cached_tail) break;
          } else {
            backoff.pause();
            continue;
          }
        }
      }
      std::memcpy(&dst, &sh.slots[head & (kSlots - 1)], S);
      keep(dst);  // the whole copy must happen, not just its first 8 bytes
      check(seq_of(&dst));
      // release: pairs with the producer's acquire load of head.
      sh.head.store(++head, std::memory_order_release);
    }
    finish_consumer(child, t0, check, S);
  }
  void after_fork() {}

 private:
  SharedObject<Shared> shared_;
};

}  // namespace bench
