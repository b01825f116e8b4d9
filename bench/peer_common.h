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
//
// This header holds what every peer shares (the record, the sequence
// check, the producer and consumer skeletons, byte-stream helpers); each
// peer is one header under bench/peers/.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/harness.h"

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

}  // namespace bench
