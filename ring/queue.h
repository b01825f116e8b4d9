// QueueWriter<T> / QueueReader<T>: typed elements of a fixed-slot ring
// (Kind::slots, created with slot_size = sizeof(T)), for trivially
// copyable T. An element is a bare T in a slot: the data path is
// rigtorp/SPSCQueue's (the writer copies into slot[tail mod n] and stores
// tail with release; the reader copies out and stores head with release;
// each keeps a cached copy of the other's index and reloads it only when
// the ring looks full / empty), plus the ring's wake-up check (two relaxed
// loads). No record header, no out-of-line call per element. Roles,
// liveness, reaping of dead peers, end of stream (closed / peer_dead),
// blocking waits and wait_fd() are the record rings' own.
//
//   auto seg = Segment::create(key, {.kind = Kind::slots, .capacity = 1 << 20,
//                                    .slot_size = sizeof(Tick)});
//   auto w = QueueWriter<Tick>::attach(*seg);   // wrong_kind unless the
//   Status s = w->push(tick);                   // ring holds Ticks
//   auto r = QueueReader<Tick>::attach(*seg);
//   Popped<Tick> got = r->pop();                // got.value if ok
#pragma once

#include <type_traits>

#include "ring/internal/handles.h"  // SlotWriter, SlotReader: the fast paths
#include "ring/segment.h"
#include "ring/status.h"

namespace shmring {

// The result of a pop: a Status and the element (set only if ok: it is not
// zeroed first, a pop of a large T copies it once).
template <class T>
struct Popped {
  Status status = Status::would_block;
  T value;
  explicit operator bool() const { return status == Status::ok; }
};

template <class T>
class QueueWriter {
  static_assert(std::is_trivially_copyable_v<T>,
                "Queue<T> copies T through shared memory bytewise");

 public:
  // Takes the producer role of a slots ring of sizeof(T)-byte elements.
  // Errc::wrong_kind for another kind or element size; role_taken if a
  // live producer holds it.
  static Result<QueueWriter> attach(Segment& segment,
                                    ProducerOptions options = {}) {
    auto w = detail::SlotWriter::attach(segment, sizeof(T), options);
    if (!w) return w.error();
    return QueueWriter(std::move(w).value());
  }

  // Inline: a cached-head compare, a sizeof(T) copy and the release store
  // of tail (no RMW, no fence). would_block when full; closed, corrupt.
  [[nodiscard]] Status try_push(const T& v) {
    return w_.try_write(&v, sizeof(T));
  }

  // Blocks while the ring is full (spin, then sleep): ok, timed_out,
  // peer_dead (the reader is gone), interrupted, closed, corrupt.
  [[nodiscard]] Status push(const T& v, Timeout timeout = kForever) {
    for (;;) {
      const Status st = try_push(v);
      if (st != Status::would_block) return st;
      // ok once a slot is free: we are the only writer, so the next
      // try_push succeeds.
      const Status w = w_.wait(timeout);
      if (w != Status::ok) return w;
    }
  }

  // Detaches; the reader then sees end of stream once it has read all.
  void close() { w_.close(); }
  bool consumer_alive() const { return w_.consumer_alive(); }
  Segment& segment() const { return w_.segment(); }

 private:
  explicit QueueWriter(detail::SlotWriter&& w) : w_(std::move(w)) {}
  detail::SlotWriter w_;
};

template <class T>
class QueueReader {
  static_assert(std::is_trivially_copyable_v<T>,
                "Queue<T> copies T through shared memory bytewise");

 public:
  // Takes the consumer role of a slots ring of sizeof(T)-byte elements
  // (a dead reader's is taken over: reading resumes after its last
  // element). Errc::wrong_kind for another kind or element size.
  static Result<QueueReader> attach(Segment& segment) {
    auto r = detail::SlotReader::attach(segment, sizeof(T));
    if (!r) return r.error();
    return QueueReader(std::move(r).value());
  }

  // The next element, or why not: would_block (empty), closed / peer_dead
  // (end of stream), corrupt.
  [[nodiscard]] Popped<T> try_pop() {
    Popped<T> out;
    out.status = r_.try_read(&out.value, sizeof(T));
    return out;
  }

  // Blocks while the ring is empty (spin, then sleep); timed_out,
  // interrupted and the end-of-stream statuses as try_pop.
  [[nodiscard]] Popped<T> pop(Timeout timeout = kForever) {
    for (;;) {
      Popped<T> out = try_pop();
      if (out.status != Status::would_block) return out;
      // ok once an element is there (we are the only reader).
      out.status = r_.wait(timeout);
      if (out.status != Status::ok) return out;
    }
  }

  void close() { r_.close(); }
  // A file descriptor that polls readable when an element is there or the
  // stream ended (Consumer::wait_fd's rules).
  [[nodiscard]] Result<int> wait_fd() { return r_.wait_fd(); }
  // Elements not yet read, times sizeof(T): a guess.
  std::uint64_t size_guess() const { return r_.size_guess(); }
  Segment& segment() const { return r_.segment(); }

 private:
  explicit QueueReader(detail::SlotReader&& r) : r_(std::move(r)) {}
  detail::SlotReader r_;
};

}  // namespace shmring
