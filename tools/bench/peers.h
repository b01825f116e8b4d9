// The mechanisms shm-bench moves records through, one class each, all with
// the same shape so the throughput scenario treats them alike:
//
//   Peer(config)          in the parent, before fork: create the channel
//   produce(child)        in child 0: send records 0, 1, 2 ... until stop,
//                         then signal end of stream
//   consume(child)        in child 1: receive until end of stream, checking
//                         that sequence numbers arrive in order
//   after_fork()          in the parent: drop its own ends (so EOF works)
//   ~Peer()               in the parent: remove what was created
//
// Producer and consumer buffers are 64-byte aligned for every peer: on AMD
// Zen (FSRM) glibc's memcpy uses `rep movsb` above ~2 KiB, which is several
// times slower into a destination that is not 64-byte aligned, so leaving
// the stack's alignment to chance would decide the bulk rows.
//
// Every peer does the same work per record: the producer copies S bytes
// from its own buffer into the channel (sequence number in the first 8),
// the consumer gets S bytes into its hands and checks the sequence number.
// For shmring that is reserve + memcpy + commit and peek + memcpy + release:
// the same two copies a pipe or socket makes in the kernel.
#pragma once

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/interprocess/ipc/message_queue.hpp>
#include <boost/lockfree/spsc_queue.hpp>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "ring/shmring.h"
#include "tools/bench/harness.h"

namespace bench {

// Byte budget of the peers whose capacity is a compile-time constant
// (Boost.Lockfree spsc_queue<T, capacity<N>>, the fixed-slot ring).
inline constexpr std::size_t kQueueBytes = 1 << 20;

// A record of S bytes; its first 8 bytes carry the sequence number.
template <std::size_t S>
struct alignas(8) Msg {
  static_assert(S >= 8 && S % 8 == 0);
  std::byte b[S];
};

template <std::size_t S>
inline void set_seq(Msg<S>& m, std::uint64_t seq) {
  std::memcpy(m.b, &seq, 8);
}
inline std::uint64_t seq_of(const void* p) {
  std::uint64_t s;
  std::memcpy(&s, p, 8);
  return s;
}

template <std::size_t S>
inline Msg<S> source_record() {
  Msg<S> m{};
  for (std::size_t i = 0; i < S; ++i) m.b[i] = static_cast<std::byte>(i * 7);
  return m;
}

// Sequence numbers must arrive as 0, 1, 2 ...
struct SeqCheck {
  std::uint64_t expected = 0;
  std::uint64_t errors = 0;
  void operator()(std::uint64_t seq) {
    errors += seq != expected ? 1 : 0;
    expected = seq + 1;
  }
};

// How many records between two looks at the stop flag.
template <std::size_t S>
inline constexpr int kCheckEvery = S >= 4096 ? 8 : 256;

// Producer skeleton: send(seq) until the parent says stop.
template <std::size_t S, class Send>
void produce_loop(Child& child, Send&& send) {
  const auto t0 = child.ready_and_wait();
  std::uint64_t seq = 0;
  // At least one round even if stop came first (a loaded machine may start
  // us late): every row then moves something.
  do {
    for (int i = 0; i < kCheckEvery<S>; ++i) send(seq++);
  } while (!child.stop_requested());
  child.result().count = seq;
  child.result().ns = (Clock::now() - t0).count();
}

inline void finish_consumer(Child& child, Clock::time_point t0,
                            const SeqCheck& check, std::size_t size) {
  auto& r = child.result();
  r.ns = (Clock::now() - t0).count();
  r.count = check.expected;
  r.bytes = check.expected * size;
  r.errors = check.errors;
}

// The two sides of a peer whose queue has no blocking call and no end of
// stream of its own (Boost.Lockfree, ReaderWriterQueue): the producer spins
// (Backoff) while the queue is full and raises `done` after its last push;
// the consumer pops until it sees `done` and one more pop finds nothing.
// `try_push(const Msg<S>&)` / `try_pop(Msg<S>&)` return false when full /
// empty.
template <std::size_t S, class TryPush>
void produce_then_done(Child& child, std::atomic<std::uint32_t>& done,
                       TryPush&& try_push) {
  alignas(64) Msg<S> src = source_record<S>();
  Backoff backoff;
  produce_loop<S>(child, [&](std::uint64_t seq) {
    set_seq(src, seq);
    while (!try_push(src)) backoff.pause();
  });
  // release: pairs with consume_until_done's acquire load; every push
  // before it is visible once done is.
  done.store(1, std::memory_order_release);
}

template <std::size_t S, class TryPop>
void consume_until_done(Child& child, const std::atomic<std::uint32_t>& done,
                        TryPop&& try_pop) {
  alignas(64) Msg<S> dst{};
  SeqCheck check;
  Backoff backoff;
  const auto t0 = child.ready_and_wait();
  for (;;) {
    if (try_pop(dst)) {
      keep(dst);  // the whole copy must happen, not just its first 8 bytes
      check(seq_of(&dst));
      continue;
    }
    // acquire: pairs with produce_then_done's release store of done; the
    // pop after it sees every push.
    if (done.load(std::memory_order_acquire) != 0) {
      if (try_pop(dst)) {
        keep(dst);
        check(seq_of(&dst));
        continue;
      }
      break;
    }
    backoff.pause();
  }
  finish_consumer(child, t0, check, S);
}

// ============================================================ stream fds

inline void write_all(int fd, const void* p, std::size_t n) {
  const auto* c = static_cast<const char*>(p);
  while (n > 0) {
    const ssize_t w = ::write(fd, c, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(errno_text("write"));
    }
    c += w;
    n -= static_cast<std::size_t>(w);
  }
}

// Reads a byte stream in large chunks and checks each whole record in it.
template <std::size_t S>
void consume_stream(int fd, Child& child) {
  const std::size_t cap = std::max<std::size_t>(65536, 2 * S);
  std::vector<std::byte> buf(cap);
  std::size_t have = 0;
  SeqCheck check;
  const auto t0 = child.ready_and_wait();
  for (;;) {
    const ssize_t n = ::read(fd, buf.data() + have, cap - have);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(errno_text("read"));
    }
    if (n == 0) break;
    have += static_cast<std::size_t>(n);
    std::size_t off = 0;
    for (; off + S <= have; off += S) check(seq_of(buf.data() + off));
    if (off < have) std::memmove(buf.data(), buf.data() + off, have - off);
    have -= off;
  }
  finish_consumer(child, t0, check, S);
}

// Two fds: [0] read end, [1] write end.
class FdPair {
 public:
  FdPair() = default;
  ~FdPair() { close_all(); }
  void close_all() {
    for (int& f : fd) {
      if (f >= 0) ::close(f);
      f = -1;
    }
  }
  int fd[2] = {-1, -1};
};

// pipe(2), one write(2) per record; the reader reads 64 KiB at a time
// (the kindest reader a byte stream allows). Default 64 KiB pipe buffer.
template <std::size_t S>
class PipePeer {
 public:
  explicit PipePeer(const Config&) {
    if (::pipe(p_.fd) != 0) throw std::runtime_error(errno_text("pipe"));
  }
  void produce(Child& child) {
    ::close(p_.fd[0]);
    alignas(64) Msg<S> src = source_record<S>();
    produce_loop<S>(child, [&](std::uint64_t seq) {
      set_seq(src, seq);
      write_all(p_.fd[1], &src, S);
    });
    ::close(p_.fd[1]);
  }
  void consume(Child& child) {
    ::close(p_.fd[1]);
    consume_stream<S>(p_.fd[0], child);
  }
  void after_fork() { p_.close_all(); }

 private:
  FdPair p_;
};

// AF_UNIX socketpair: SOCK_STREAM reads like a pipe; SOCK_SEQPACKET keeps
// boundaries, so the reader takes one recv(2) per record.
template <std::size_t S, int Type>
class UnixPeer {
 public:
  explicit UnixPeer(const Config&) {
    if (::socketpair(AF_UNIX, Type, 0, p_.fd) != 0) {
      throw std::runtime_error(errno_text("socketpair"));
    }
  }
  void produce(Child& child) {
    ::close(p_.fd[0]);
    alignas(64) Msg<S> src = source_record<S>();
    produce_loop<S>(child, [&](std::uint64_t seq) {
      set_seq(src, seq);
      if constexpr (Type == SOCK_SEQPACKET) {
        for (;;) {
          const ssize_t w = ::send(p_.fd[1], &src, S, 0);
          if (w == static_cast<ssize_t>(S)) break;
          if (w < 0 && errno == EINTR) continue;
          throw std::runtime_error(errno_text("send"));
        }
      } else {
        write_all(p_.fd[1], &src, S);
      }
    });
    ::shutdown(p_.fd[1], SHUT_WR);
    ::close(p_.fd[1]);
  }
  void consume(Child& child) {
    ::close(p_.fd[1]);
    if constexpr (Type == SOCK_SEQPACKET) {
      alignas(64) Msg<S> dst{};
      SeqCheck check;
      const auto t0 = child.ready_and_wait();
      for (;;) {
        const ssize_t n = ::recv(p_.fd[0], &dst, S, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw std::runtime_error(errno_text("recv"));
        if (n == 0) break;  // the producer shut down
        if (n != static_cast<ssize_t>(S)) ++check.errors;
        keep(dst);  // the whole copy must happen, not just its first 8 bytes
        check(seq_of(&dst));
      }
      finish_consumer(child, t0, check, S);
    } else {
      consume_stream<S>(p_.fd[0], child);
    }
  }
  void after_fork() { p_.close_all(); }

 private:
  FdPair p_;
};

// ============================================ Boost.Interprocess message_queue

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

// ================================================== Boost.Lockfree spsc_queue

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
    produce_then_done<S>(child, shared_->done,
                         [&](const Msg<S>& m) { return shared_->queue.push(m); });
  }
  void consume(Child& child) {
    consume_until_done<S>(child, shared_->done,
                          [&](Msg<S>& m) { return shared_->queue.pop(m); });
  }
  void after_fork() {}

 private:
  SharedObject<Shared> shared_;
};

// ============================================ the fixed-slot "limit" ring

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

// ================================================================ shmring

// A private SysV segment, marked for removal at once: the mapping stays
// valid in this process and in the forked children (fork inherits SysV
// attachments), and the segment disappears with the last of them even if
// shm-bench is killed. Children attach Producer / Consumer after the fork.
class PrivateRing {
 public:
  explicit PrivateRing(const shmring::RingOptions& options) {
    auto s = shmring::Segment::create_private(options);
    if (!s) throw std::runtime_error("create_private: " + s.error().message);
    segment_.emplace(std::move(s).value());
    auto r = segment_->remove();
    if (!r) throw std::runtime_error("remove: " + r.error().message);
  }
  shmring::Segment& segment() { return *segment_; }

 private:
  std::optional<shmring::Segment> segment_;
};

inline shmring::Producer attach_producer(shmring::Segment& s) {
  auto p = shmring::Producer::attach(s);
  if (!p) throw std::runtime_error("Producer::attach: " + p.error().message);
  return std::move(p).value();
}
inline shmring::Consumer attach_consumer(shmring::Segment& s) {
  auto c = shmring::Consumer::attach(s);
  if (!c) throw std::runtime_error("Consumer::attach: " + c.error().message);
  return std::move(c).value();
}

inline void check_status(shmring::Status s, const char* what) {
  if (s != shmring::Status::ok) {
    throw std::runtime_error(std::string(what) + ": " + shmring::to_string(s));
  }
}

// The next batch of records for `recs`: whatever is there, else waits for
// some (the consumer's default wait). False at end of stream; throws on
// any other error.
inline bool next_batch(shmring::Consumer& c, std::vector<shmring::Record>& recs,
                       std::size_t* n) {
  *n = 0;
  shmring::Status s = c.try_peek_batch(recs, n);
  if (s == shmring::Status::would_block) s = c.peek_batch(recs, n);
  if (s == shmring::Status::closed) return false;
  check_status(s, "peek_batch");
  return true;
}

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
  if (!r) throw std::runtime_error(std::string(what) + ": " + r.error().message);
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
        shmring::Status s = r.try_pop(&dst);
        if (s == shmring::Status::would_block) s = r.pop(&dst);
        if (s == shmring::Status::closed) break;
        check_status(s, "pop");
        keep(dst);  // the whole copy must happen, not just its first 8 bytes
        check(seq_of(&dst));
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
