// Producer and Consumer: records of any size on spsc and mpsc rings (the
// Producer also writes broadcast rings; their readers are Subscribers,
// ring/broadcast.h). Fixed-size elements: QueueWriter<T>/QueueReader<T>
// (ring/queue.h).
//
// Ordering guarantee: every byte a producer writes into a reservation before
// commit() is visible to the consumer that peeks that record; records of one
// producer are delivered in commit order (SPSC: in reserve order).
//
// Zero-copy use:
//
//   auto r = producer.reserve(n);             // blocks while the ring is full
//   if (r) { fill(r.bytes); producer.commit(used); }
//
//   auto p = consumer.peek();                 // blocks while it is empty
//   if (p) { use(p.record.bytes()); consumer.release(); }
//
// A handle is used by one thread at a time. An SPSC ring admits one live
// producer and one live consumer; an MPSC ring up to max_producers producers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "ring/deadline.h"
#include "ring/internal/handles.h"  // the engine and inline fast paths
#include "ring/segment.h"
#include "ring/status.h"

namespace shmring {

namespace detail {
struct FanOut;  // internal/broadcast_state.h: a broadcast producer's state
}  // namespace detail

class Producer : public detail::ProducerRole {
 public:
  // Registers this process in the ring's producer table (spsc, mpsc,
  // broadcast). Errc::role_taken if a one-producer ring already has a live
  // producer (dead ones are reaped), Errc::too_many_producers if every MPSC
  // slot is held; Errc::wrong_kind on a slots ring (QueueWriter<T>).
  static Result<Producer> attach(Segment& segment,
                                 ProducerOptions options = {});

  Producer(Producer&&) noexcept;
  Producer& operator=(Producer&&) = delete;
  ~Producer();

  // Reserves room for a record of `size` bytes; the span is writable until
  // commit() or abort(). One reservation at a time.
  [[nodiscard]] inline Reservation try_reserve(std::size_t size);
  [[nodiscard]] Reservation reserve(std::size_t size,
                                    Timeout timeout = kForever);
  // The same with the payload's address a multiple of `align` (a power of
  // two up to kMaxAlign; the ring's data starts page-aligned, so the
  // alignment is real in every process). A padding record of up to
  // align - 8 bytes may come first, so size + align - 8 must fit
  // max_record_size(); too_large if it cannot or `align` is not a power of
  // two <= 64.
  static constexpr std::size_t kMaxAlign = 64;
  [[nodiscard]] Reservation try_reserve(std::size_t size, std::size_t align);
  [[nodiscard]] Reservation reserve(std::size_t size, std::size_t align,
                                    Timeout timeout = kForever);

  // Publishes the reservation, trimmed to `used` (<= reserved) bytes.
  inline void commit(std::size_t used, std::uint16_t type = 0);
  void commit() { commit(reserved_size_); }
  // Like commit() but the record becomes visible only at the next flush(),
  // commit(), or when a reserve finds the ring full: one publication (and
  // one wake check) for a batch. On an MPSC ring it is commit().
  inline void commit_deferred(std::size_t used, std::uint16_t type = 0);
  void flush() {
    if (!mpsc_) publish();
  }
  // Drops the reservation; nothing is delivered.
  void abort();

  // Copying helpers: reserve + memcpy + commit.
  [[nodiscard]] Status try_write(std::span<const std::byte> bytes,
                                 std::uint16_t type = 0);
  [[nodiscard]] Status write(std::span<const std::byte> bytes,
                             Timeout timeout = kForever,
                             std::uint16_t type = 0);

  // Detaches: flushes, aborts an open reservation, frees the producer slot.
  // When the last producer closes, the consumers see end of stream.
  void close();

  std::size_t max_record_size() const;
  // A consumer (broadcast: any subscriber) holds the ring and runs.
  bool consumer_alive() const;

 private:
  Producer(Segment& segment, const Grant& grant, ProducerOptions options);
  Reservation try_reserve_slow(std::size_t size, std::size_t align = 8);
  void commit_deferred_slow(std::size_t used, std::uint16_t type);
  Reservation reserve_spsc(std::size_t size, std::size_t align);
  Reservation reserve_mpsc(std::size_t size, std::size_t align);
  inline void publish();
  // SPSC and broadcast: a header at `pos` of the batch being built.
  inline void put_header(std::uint64_t pos, std::uint64_t word);
  bool resume_after_predecessor();  // true if it walked any record
  Status blocked_status();
  // Broadcast rings (ring/broadcast.cc): the minimum registered cursor (the
  // space rule), reaping dead subscribers, the full-ring check.
  std::uint64_t broadcast_min();
  int reap_dead_consumers();
  void reap_dead_consumers_throttled();
  Status broadcast_blocked_status();
  bool any_consumer_alive() const;
  // Overrun::drop_slow (ring/broadcast_lossy.cc): announce the overwrite of
  // [.., end) (tail_intent, the oldest/start snapshots) before writing.
  void init_lossy();
  void lossy_overwrite(std::uint64_t end);
  void count_to(std::uint64_t pos);
  void write_snapshots();
  void close_lossy();

  std::uint64_t mask_;
  std::uint64_t capacity_;
  // One past the largest payload the record fast path takes.
  std::uint64_t record_limit_;
  bool mpsc_;
  // SPSC and broadcast: the next record's position; the batch not yet
  // published is [published_, tail_). The header at published_ is held in
  // first_word_ (memory keeps its 0 until publish()).
  std::uint64_t tail_ = 0;
  std::uint64_t published_ = 0;
  std::uint64_t first_word_ = 0;
  bool wake_on_tail_ = false;      // drop-slow broadcast: readers sleep on tail
  std::uint64_t cached_head_ = 0;  // consumer position as last seen
                                   // (broadcast: the minimum cursor)
  std::uint64_t reserved_pos_ = 0;
  std::uint32_t reserved_span_ = 0;
  std::size_t reserved_size_ = 0;
  bool reserved_ = false;
  std::unique_ptr<detail::FanOut> fan_;  // broadcast rings only
};

// Reads the records of an spsc or mpsc ring: try_peek / peek, batches,
// release, read, wait_fd, close (detail::RecordReader, which Subscriber
// shares, ring/internal/handles.h).
class Consumer : public detail::RecordReader {
 public:
  // Takes the consumer role. Errc::role_taken if a live consumer holds it;
  // a dead one's role is taken over and reading resumes at its last
  // released position (records it peeked but did not release come again).
  // Errc::wrong_kind on a slots ring (QueueReader<T>) or a broadcast ring
  // (Subscriber).
  static Result<Consumer> attach(Segment& segment);

  Consumer(Consumer&&) noexcept = default;
  Consumer& operator=(Consumer&&) = delete;

 private:
  explicit Consumer(RecordReader&& r) : RecordReader(std::move(r)) {}
};

// ---- Inline fast paths. The common case of each call is a few
// instructions on private state plus plain loads/stores into the ring; every
// other case (wrap, full, MPSC, errors) goes to the out-of-line slow path.

inline Reservation Producer::try_reserve(std::size_t size) {
  if (!mpsc_ && !reserved_ && !closed_ && !broken_ && size < record_limit_) {
    const std::uint64_t span = layout::span_for(size);
    const std::uint64_t off = tail_ & mask_;
    // The record and the 0 word after it (publish()) must fit.
    if (off + span <= capacity_ &&
        tail_ + span + layout::kHeaderSize - cached_head_ <= capacity_) {
      reserved_pos_ = tail_;
      reserved_span_ = static_cast<std::uint32_t>(span);
      reserved_size_ = size;
      reserved_ = true;
      return {Status::ok, {data_ + off + layout::kHeaderSize, size}};
    }
  }
  return try_reserve_slow(size);
}

inline void Producer::put_header(std::uint64_t pos, std::uint64_t word) {
  if (pos == published_) {
    first_word_ = word;  // stored last, by publish()
    return;
  }
  // relaxed: published by the release store of the first header in publish().
  layout::header_at(data_, pos & mask_).store(word, std::memory_order_relaxed);
}

inline void Producer::commit_deferred(std::size_t used, std::uint16_t type) {
  if (!mpsc_ && reserved_ && used <= reserved_size_) {
    const auto span = static_cast<std::uint32_t>(layout::span_for(used));
    put_header(reserved_pos_,
               layout::encode(span, static_cast<std::uint32_t>(used), type, 0));
    tail_ = reserved_pos_ + span;
    reserved_ = false;
    return;
  }
  commit_deferred_slow(used, type);
}

// SPSC and broadcast (docs/design/ordering.md#one-line-per-record): the
// word after the batch becomes 0, then the batch's first header is stored
// with release, so a reader polling headers sees the whole batch or none
// of it and stops at the 0; the tail follows for new producers, drop-slow
// subscribers and introspection.
inline void Producer::publish() {
  if (tail_ == published_) return;
  const std::uint64_t first = published_;
  published_ = tail_;
  // relaxed: ordered before the release store of the first header below.
  layout::header_at(data_, tail_ & mask_).store(0, std::memory_order_relaxed);
  if (!wake_on_tail_) {
    // release: pairs with the header load in RecordReader::try_peek(_scan);
    // WaitPoint::publish.
    data_ready_.publish(layout::header_at(data_, first & mask_), first_word_);
    // release: pairs with the tail load in the Producer ctor (a successor),
    // join_cursor; introspection.
    cb_->tail.store(tail_, std::memory_order_release);
    return;
  }
  // drop-slow subscribers read up to the tail and sleep on it.
  // release: pairs with the header load in RecordReader::try_peek_lossy.
  layout::header_at(data_, first & mask_)
      .store(first_word_, std::memory_order_release);
  // release: pairs with the tail load in RecordReader::try_peek_lossy;
  // WaitPoint::publish.
  data_ready_.publish(cb_->tail, tail_);
}

inline void Producer::commit(std::size_t used, std::uint16_t type) {
  commit_deferred(used, type);
  if (!mpsc_) publish();
}

}  // namespace shmring
