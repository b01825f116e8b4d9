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
// ByteQueueWriter / ByteQueueReader (below) are the same for an element
// size known only at run time (the ring's), as bytes: for bindings.
//
//   auto seg = Segment::create(key, {.kind = Kind::slots, .capacity = 1 << 20,
//                                    .slot_size = sizeof(Tick)});
//   auto w = QueueWriter<Tick>::attach(*seg);   // wrong_kind unless the
//   Status s = w->push(tick);                   // ring holds Ticks
//   auto r = QueueReader<Tick>::attach(*seg);
//   Popped<Tick> got = r->pop();                // got.value if ok
#pragma once

#include <cstddef>
#include <span>
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

namespace detail {

// The element copy and the blocking loops, once for QueueWriter<T> /
// QueueReader<T> (size = sizeof(T), a constant the inlined copy folds in)
// and ByteQueueWriter / ByteQueueReader (the ring's element size).
inline Status try_push_element(SlotWriter& w, const void* v, std::size_t size) {
  return w.try_write(v, size);
}

inline Status push_element(SlotWriter& w, const void* v, std::size_t size,
                           Timeout timeout) {
  for (;;) {
    const Status st = try_push_element(w, v, size);
    if (st != Status::would_block) return st;
    // ok once a slot is free: we are the only writer, so the next
    // try_push_element succeeds.
    const Status ws = w.wait(timeout);
    if (ws != Status::ok) return ws;
  }
}

inline Status try_pop_element(SlotReader& r, void* out, std::size_t size) {
  return r.try_read(out, size);
}

inline Status pop_element(SlotReader& r, void* out, std::size_t size,
                          Timeout timeout) {
  for (;;) {
    const Status st = try_pop_element(r, out, size);
    if (st != Status::would_block) return st;
    // ok once an element is there (we are the only reader).
    const Status ws = r.wait(timeout);
    if (ws != Status::ok) return ws;
  }
}

}  // namespace detail

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
    return detail::try_push_element(w_, &v, sizeof(T));
  }

  // Blocks while the ring is full (spin, then sleep): ok, timed_out,
  // peer_dead (the reader is gone), interrupted, closed, corrupt.
  [[nodiscard]] Status push(const T& v, Timeout timeout = kForever) {
    return detail::push_element(w_, &v, sizeof(T), timeout);
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
  // (end of stream), corrupt; removed (no writer ever came and the ring
  // was removed: none can come).
  [[nodiscard]] Popped<T> try_pop() {
    Popped<T> out;
    out.status = detail::try_pop_element(r_, &out.value, sizeof(T));
    return out;
  }

  // Blocks while the ring is empty (spin, then sleep); timed_out,
  // interrupted and the end-of-stream statuses as try_pop.
  [[nodiscard]] Popped<T> pop(Timeout timeout = kForever) {
    Popped<T> out;
    out.status = detail::pop_element(r_, &out.value, sizeof(T), timeout);
    return out;
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

// QueueWriter<T> / QueueReader<T> for elements whose size is known at run
// time: the ring's element size, as bytes (for other languages' bindings:
// the C API). The same data path; the copy's size is not a constant.
class ByteQueueWriter {
 public:
  // Takes the producer role of a slots ring, of whatever element size it
  // holds. Errc::wrong_kind for another kind; role_taken as QueueWriter.
  static Result<ByteQueueWriter> attach(Segment& segment,
                                        ProducerOptions options = {}) {
    auto w = detail::SlotWriter::attach(segment, segment.slot_size(), options);
    if (!w) return w.error();
    return ByteQueueWriter(std::move(w).value());
  }

  // QueueWriter's try_push and push; `element` holds exactly
  // element_size() bytes (too_large otherwise: a slot holds no other size).
  [[nodiscard]] Status try_push(std::span<const std::byte> element) {
    if (element.size() != w_.element_size()) return Status::too_large;
    return detail::try_push_element(w_, element.data(), element.size());
  }
  [[nodiscard]] Status push(std::span<const std::byte> element,
                            Timeout timeout = kForever) {
    if (element.size() != w_.element_size()) return Status::too_large;
    return detail::push_element(w_, element.data(), element.size(), timeout);
  }

  void close() { w_.close(); }
  bool consumer_alive() const { return w_.consumer_alive(); }
  std::size_t element_size() const { return w_.element_size(); }
  Segment& segment() const { return w_.segment(); }

 private:
  explicit ByteQueueWriter(detail::SlotWriter&& w) : w_(std::move(w)) {}
  detail::SlotWriter w_;
};

class ByteQueueReader {
 public:
  // Takes the consumer role of a slots ring, of whatever element size it
  // holds. Errc::wrong_kind for another kind; role_taken as QueueReader.
  static Result<ByteQueueReader> attach(Segment& segment) {
    auto r = detail::SlotReader::attach(segment, segment.slot_size());
    if (!r) return r.error();
    return ByteQueueReader(std::move(r).value());
  }

  // QueueReader's try_pop and pop, into `out` (element_size() bytes, set
  // only if ok; too_large if `out` holds another size).
  [[nodiscard]] Status try_pop(std::span<std::byte> out) {
    if (out.size() != r_.element_size()) return Status::too_large;
    return detail::try_pop_element(r_, out.data(), out.size());
  }
  [[nodiscard]] Status pop(std::span<std::byte> out,
                           Timeout timeout = kForever) {
    if (out.size() != r_.element_size()) return Status::too_large;
    return detail::pop_element(r_, out.data(), out.size(), timeout);
  }

  void close() { r_.close(); }
  // QueueReader::wait_fd.
  [[nodiscard]] Result<int> wait_fd() { return r_.wait_fd(); }
  std::uint64_t size_guess() const { return r_.size_guess(); }
  std::size_t element_size() const { return r_.element_size(); }
  Segment& segment() const { return r_.segment(); }

 private:
  explicit ByteQueueReader(detail::SlotReader&& r) : r_(std::move(r)) {}
  detail::SlotReader r_;
};

}  // namespace shmring
