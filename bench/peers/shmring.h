// shmring as a shm-bench throughput peer: batched, per-record
// commit()/release(), and Queue<T> on a slots ring.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/harness.h"
#include "bench/peer_common.h"
#include "bench/private_ring.h"
#include "ring/shmring.h"

namespace bench {

enum class RingVariant {
  batched,     // try_reserve + commit_deferred, flush every N; peek_batch +
               // one release per batch
  per_record,  // reserve + commit() each; peek + release() each
  queue,       // Queue<T> on a slots ring of S-byte elements:
               // QueueWriter::try_push / QueueReader::try_pop
};

template <std::size_t S, RingVariant V>
shmring::RingOptions ring_options_for(const Config& config) {
  shmring::RingOptions o{.capacity = config.ring_bytes};
  if constexpr (V == RingVariant::queue) {
    o.kind = shmring::Kind::slots;  // the fixed-slot kind behind Queue<T>
    o.slot_size = sizeof(Msg<S>);
  }
  return o;
}

template <class Handle>
Handle or_throw(shmring::Result<Handle> r, const char* what) {
  if (!r)
    throw std::runtime_error(std::string(what) + ": " + r.error().message);
  return std::move(r).value();
}

template <std::size_t S, RingVariant V>
class ShmringPeer {
 public:
  explicit ShmringPeer(const Config& config)
      : ring_(ring_options_for<S, V>(config)),
        batch_(std::max<std::size_t>(1, config.batch)),
        // Publish at least every 1/16 of the ring so big records stream.
        flush_every_(
            std::clamp<std::size_t>(config.ring_bytes / 16 / S, 1, batch_)) {}

  void produce(Child& child) {
    alignas(64) Msg<S> src = source_record<S>();
    if constexpr (V == RingVariant::queue) {
      auto w = or_throw(shmring::QueueWriter<Msg<S>>::attach(ring_.segment()),
                        "QueueWriter::attach");
      produce_loop<S>(child, [&](std::uint64_t seq) {
        set_seq(src, seq);
        if (w.try_push(src) != shmring::Status::ok) {
          check_status(w.push(src), "push");
        }
      });
      w.close();
    } else {
      shmring::Producer p = attach_producer(ring_.segment());
      std::size_t pending = 0;
      produce_loop<S>(child, [&](std::uint64_t seq) {
        auto r = p.try_reserve(S);
        if (!r) {
          r = p.reserve(S);  // flushes, then spins / sleeps
          check_status(r.status, "reserve");
        }
        set_seq(src, seq);
        std::memcpy(r.bytes.data(), &src, S);
        if constexpr (V == RingVariant::batched) {
          p.commit_deferred(S);
          if (++pending == flush_every_) {
            p.flush();
            pending = 0;
          }
        } else {
          p.commit();
        }
      });
      p.close();
    }
  }

  void consume(Child& child) {
    alignas(64) Msg<S> dst{};
    SeqCheck check;
    if constexpr (V == RingVariant::queue) {
      auto r = or_throw(shmring::QueueReader<Msg<S>>::attach(ring_.segment()),
                        "QueueReader::attach");
      const auto t0 = child.ready_and_wait();
      for (;;) {
        shmring::Popped<Msg<S>> p = r.try_pop();
        if (p.status == shmring::Status::would_block) p = r.pop();
        if (p.status == shmring::Status::closed) break;
        check_status(p.status, "pop");
        keep(p.value);  // the whole copy must happen, not its first 8 bytes
        check(seq_of(&p.value));
      }
      finish_consumer(child, t0, check, S);
      r.close();
      return;
    }
    shmring::Consumer c = attach_consumer(ring_.segment());
    if constexpr (V == RingVariant::batched) {
      std::vector<shmring::Record> recs(batch_);
      const auto t0 = child.ready_and_wait();
      for (;;) {
        std::size_t n = 0;
        if (!next_batch(c, recs, &n)) break;
        for (std::size_t i = 0; i < n; ++i) {
          if (recs[i].size != S) ++check.errors;
          std::memcpy(&dst, recs[i].data, S);
          keep(dst);  // the whole copy must happen, not just its first 8 bytes
          check(seq_of(&dst));
        }
        c.release();
      }
      finish_consumer(child, t0, check, S);
    } else {
      const auto t0 = child.ready_and_wait();
      for (;;) {
        shmring::Peeked pk = c.try_peek();
        if (pk.status == shmring::Status::would_block) pk = c.peek();
        if (pk.status == shmring::Status::closed) break;
        check_status(pk.status, "peek");
        if (pk.record.size != S) ++check.errors;
        std::memcpy(&dst, pk.record.data, S);
        keep(dst);  // the whole copy must happen, not just its first 8 bytes
        check(seq_of(&dst));
        c.release();
      }
      finish_consumer(child, t0, check, S);
    }
    c.close();
  }
  void after_fork() {}

 private:
  PrivateRing ring_;
  std::size_t batch_;
  std::size_t flush_every_;
};

}  // namespace bench
