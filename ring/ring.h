// Producer and Consumer handles on a ring in a Segment.
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

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "ring/deadline.h"
#include "ring/internal/layout.h"
#include "ring/internal/liveness.h"
#include "ring/segment.h"
#include "ring/status.h"
#include "ring/internal/wait.h"

namespace shmring {

namespace detail {
class WaitFd;  // ring/internal/wait_fd.h
}  // namespace detail

namespace detail {
// Test-only fault injection: the steps of an MPSC claim (docs/design.md,
// section 4). A test sets claim_hook (before its producer runs) to stop or
// kill the process at one of them; null otherwise (one relaxed load and a
// branch per step).
enum class ClaimStep : int {
  before_intent = 0,      // space checked, nothing published
  before_cas = 1,         // intent published, tail not moved
  after_cas = 2,          // claimed, no header written (the 0 word)
  after_busy_header = 3,  // wrapping or aligned claim: busy header, no
                          // padding yet
  claimed = 4,            // headers written, reservation returned next
};
inline constexpr int kClaimSteps = 5;
using ClaimHook = void (*)(ClaimStep);
extern std::atomic<ClaimHook> claim_hook;

// A handle's "closed" flag. A move leaves the source closed, so the
// handles' moves are defaulted (no hand-copied field lists) and a
// moved-from handle's destructor does nothing.
class ClosedFlag {
 public:
  ClosedFlag() = default;
  ClosedFlag(ClosedFlag&& o) noexcept
      : closed_(std::exchange(o.closed_, true)) {}
  ClosedFlag& operator=(bool closed) {
    closed_ = closed;
    return *this;
  }
  operator bool() const { return closed_; }

 private:
  bool closed_ = false;
};
}  // namespace detail
inline constexpr Timeout kForever = Timeout::max();

// A committed record, valid until the consumer's next release().
struct Record {
  const std::byte* data = nullptr;
  std::uint32_t size = 0;
  std::uint16_t type = 0;
  std::span<const std::byte> bytes() const { return {data, size}; }
};

struct Reservation {
  Status status = Status::would_block;
  std::span<std::byte> bytes;  // exactly the size asked for
  explicit operator bool() const { return status == Status::ok; }
};

struct Peeked {
  Status status = Status::would_block;
  Record record;
  explicit operator bool() const { return status == Status::ok; }
};

struct ProducerOptions {
  // On a full ring whose consumer is gone (detached or dead), keep waiting
  // for a new consumer instead of returning Status::peer_dead.
  bool wait_for_consumer = false;
};

class Producer {
 public:
  // Registers this process in the ring's producer table. Errc::role_taken
  // if an SPSC ring already has a live producer; dead ones are reaped.
  // Errc::wrong_kind on a slots ring (it holds elements, not records: use
  // QueueWriter<T>, ring/queue.h, or attach_slots()).
  static Result<Producer> attach(Segment& segment,
                                 ProducerOptions options = {});
  // The producer role on a fixed-slot ring (Kind::slots) whose element size
  // is `element_size`; Errc::wrong_kind for another size or kind. The same
  // roles, liveness and end of stream as attach(); the data calls are the
  // slot ones below (the record calls return too_large).
  static Result<Producer> attach_slots(Segment& segment,
                                       std::size_t element_size,
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
  // alignment is real in every process). The producer puts a padding
  // record of up to align - 8 bytes before the record when needed, so the
  // record must fit max_record_size() with that slack: size + align - 8.
  // too_large if it cannot, or if `align` is not a power of two <= 64.
  // MPSC rings too: the claim then covers the padding record.
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
  // When the last producer closes, the consumer sees end of stream.
  void close();

  // ---- Fixed-slot rings (attach_slots; QueueWriter<T> is the typed use).
  // The free slot for the next element (slot_size() bytes, write it, then
  // publish_slot()), or nullptr with `*why` saying why: would_block (full),
  // closed, corrupt, too_large (not a slots producer). Inline: a compare
  // against the cached head; the head is reloaded only when full.
  [[nodiscard]] inline std::byte* try_claim_slot(Status* why);
  // Publishes the claimed slot: tail + 1 (release store) and the wake check
  // (WaitPoint::publish). Only after a successful try_claim_slot().
  inline void publish_slot();
  // Blocks (spin, then sleep) until a slot is free: ok, then
  // try_claim_slot() succeeds. timed_out, peer_dead, interrupted, closed,
  // corrupt as reserve().
  [[nodiscard]] Status wait_slot(Timeout timeout = kForever);
  // The element size of a slots producer; 0 for a record producer.
  std::size_t slot_size() const { return slot_size_; }

  // The largest record; 0 on a slots producer (it takes no records).
  std::size_t max_record_size() const;
  int slot() const { return slot_; }
  // Valid while the Segment object lives; the handle itself (and its
  // close()) stays safe after the Segment is destroyed.
  Segment& segment() const { return *segment_; }
  bool consumer_alive() const;
  // How many times a consumer has taken this ring's consumer role since
  // the ring was created (sticky): a change since an earlier call means a
  // consumer came meanwhile, even one that has left again (ring/stream.cc).
  std::uint32_t consumers_seen() const;

 private:
  Producer(Segment& segment, int slot, std::uint32_t generation,
           ProcessToken token, ProducerOptions options);
  Reservation try_reserve_slow(std::size_t size, std::size_t align = 8);
  void commit_deferred_slow(std::size_t used, std::uint16_t type);
  Reservation reserve_spsc(std::size_t size, std::size_t align);
  Reservation reserve_mpsc(std::size_t size, std::size_t align);
  inline void publish();
  Status blocked_status();
  static Result<Producer> attach_role(Segment& segment,
                                      ProducerOptions options);
  void init_slots(const Segment& segment);  // slots.cc
  std::byte* claim_slot_slow(Status* why);  // slots.cc
  // Broadcast rings (broadcast.cc): the minimum registered cursor (the
  // space rule), reaping dead consumers, the full-ring check.
  std::uint64_t broadcast_min();
  int reap_dead_consumers();
  void reap_dead_consumers_throttled();
  Status broadcast_blocked_status();
  bool any_consumer_alive() const;
  // Overrun::drop_slow (broadcast_lossy.cc): announce the overwrite of
  // [.., end) (tail_intent, the oldest/start snapshots) before writing.
  void init_lossy();
  void lossy_overwrite(std::uint64_t end);
  void count_to(std::uint64_t pos);
  void write_snapshots();
  void close_lossy();

  Segment* segment_;  // only for segment(): may be gone (see there)
  std::shared_ptr<const void> mapping_;  // outlives a destroyed Segment
  layout::ControlBlock* cb_;
  layout::BroadcastBlock* bb_;  // broadcast rings; null on other kinds
  std::byte* data_;
  std::uint64_t mask_;
  std::uint64_t capacity_;
  // One past the largest payload the record fast path takes; 0 on a slots
  // producer, so its record calls always reach the slow path (too_large).
  std::uint64_t record_limit_ = 0;
  int slot_;
  std::uint32_t owner_;  // owner tag written into MPSC busy headers
  int sem_id_ = -1;      // the ring's role semaphores (Segment::sem_id)
  ProcessToken token_;   // our registration in the slot
  bool mpsc_;
  ProducerOptions options_;
  detail::WaitPoint data_ready_;
  detail::WaitPoint space_ready_;

  std::uint64_t tail_ = 0;         // SPSC: local claim position
  std::uint64_t published_ = 0;    // SPSC: last tail made visible
  std::uint64_t cached_head_ = 0;  // consumer position as last seen
  std::uint64_t reserved_pos_ = 0;
  std::uint32_t reserved_span_ = 0;
  std::size_t reserved_size_ = 0;
  bool reserved_ = false;
  detail::ClosedFlag closed_;
  bool broken_ = false;  // positions in the segment are corrupt

  // Kind::slots: tail_ and cached_head_ count elements.
  std::byte* slot_at_ = nullptr;    // the slot of element tail_
  std::byte* slots_end_ = nullptr;  // data_ + slot_count * slot_size
  std::uint64_t slot_count_ = 0;
  // slot_count_ while the fast path may claim; 0 when closed, corrupt, or
  // not a slots producer (the fast path's only bound).
  std::uint64_t slot_room_ = 0;
  std::uint32_t slot_size_ = 0;
  // Broadcast rings: cached_head_ is the minimum registered cursor as last
  // scanned (docs/design.md section 11).
  bool broadcast_ = false;
  std::uint32_t max_consumers_ = 0;  // cursors to scan (validated snapshot)
  std::uint32_t full_polls_ = 0;
  detail::Clock::time_point last_reap_{};
  // Overrun::drop_slow: the producer never waits. Payload bytes and
  // records committed before counted_ (a published record boundary) and
  // before oldest_ (the first record not yet overwritten).
  bool lossy_ = false;
  std::uint64_t counted_ = 0;
  std::uint64_t counted_payload_ = 0;
  std::uint64_t counted_records_ = 0;
  std::uint64_t oldest_ = 0;
  std::uint64_t oldest_payload_ = 0;
  std::uint64_t oldest_records_ = 0;
  // The highest tail intent announced on this ring (ours, or at attach a
  // predecessor's that fits our tail): what we store never goes below it.
  std::uint64_t intent_ = 0;
};

class Consumer {
 public:
  // Takes the consumer role. Errc::role_taken if a live consumer holds it;
  // a dead one's role is taken over and reading resumes at its last
  // released position (records it peeked but did not release come again).
  // Errc::wrong_kind on a slots ring (use QueueReader<T> or attach_slots()).
  static Result<Consumer> attach(Segment& segment);
  // The consumer role on a fixed-slot ring (Kind::slots) whose element size
  // is `element_size`; Errc::wrong_kind for another size or kind. The same
  // roles, takeover, end of stream and wait_fd() as attach(); the data
  // calls are the slot ones below (the record calls return too_large).
  static Result<Consumer> attach_slots(Segment& segment,
                                       std::size_t element_size);

  Consumer(Consumer&&) noexcept;
  Consumer& operator=(Consumer&&) = delete;
  ~Consumer();

  // The next record after those already peeked. closed: every producer has
  // closed and the ring is drained (a new producer may start a new stream:
  // keep calling to follow). peer_dead (SPSC): drained and the producer died.
  [[nodiscard]] inline Peeked try_peek();
  [[nodiscard]] Peeked peek(Timeout timeout = kForever);

  // Up to out.size() records; `*count` says how many. ok if at least one.
  [[nodiscard]] inline Status try_peek_batch(std::span<Record> out,
                                             std::size_t* count);
  [[nodiscard]] Status peek_batch(std::span<Record> out, std::size_t* count,
                                  Timeout timeout = kForever);

  // Returns every peeked record's space to producers. Invalidates them.
  inline void release();

  // Copying helper: peek + copy + release.
  [[nodiscard]] Status read(std::vector<std::byte>& out,
                            Timeout timeout = kForever);

  // ---- Fixed-slot rings (attach_slots; QueueReader<T> is the typed use).
  // The next element (slot_size() bytes, valid until release_slot()), or
  // nullptr with `*why`: would_block (empty), closed / peer_dead (end of
  // stream, as try_peek()), corrupt, too_large (not a slots consumer).
  // Inline: a compare against the cached tail; the tail is reloaded only
  // when empty. Arms wait_fd() when it finds nothing, as try_peek() does.
  [[nodiscard]] inline const std::byte* try_slot(Status* why);
  // Frees the element: head + 1 (release store) and the wake check.
  inline void release_slot();
  // Blocks (spin, then sleep) until an element is there: ok, then
  // try_slot() succeeds; else closed, peer_dead, timed_out, ... as peek().
  [[nodiscard]] Status wait_slot(Timeout timeout = kForever);
  // The element size of a slots consumer; 0 for a record consumer.
  std::size_t slot_size() const { return slot_size_; }

  void close();

  // A file descriptor for poll/epoll/select (ring/internal/wait_fd.h): readable when
  // a record is available or the stream ended; level-triggered: it stays
  // readable until try_peek()/peek() has found nothing (would_block), so
  // drain with try_peek() until would_block on each wake-up. It may be
  // readable spuriously (e.g. right after this call; docs/design.md,
  // section 10), never stuck. Owned by the consumer: valid until it is
  // destroyed; after close() it stays readable. Needs WaitStrategy::futex
  // (else Errc::invalid_argument). One helper thread per consumer.
  [[nodiscard]] Result<int> wait_fd();

  // Bytes committed or claimed but not yet released (slots: elements
  // times their size): a guess while producers run.
  std::uint64_t size_guess() const;
  std::size_t max_record_size() const;
  Segment& segment() const { return *segment_; }

  // Where a corrupt result was detected (ring offset), for messages.
  std::uint64_t corrupt_offset() const { return corrupt_at_; }

  // Broadcast rings: the cursor this consumer holds (0..max_consumers-1);
  // -1 on other kinds.
  int cursor() const { return cursor_; }

  // Overrun::drop_slow broadcast rings: the producer never waits, so it may
  // overwrite records this consumer holds or has not read yet.
  //  - A peek that finds this consumer lapped returns Status::overrun (no
  //    record) and moves on to the oldest intact record; lost_bytes() and
  //    lost_records() then count exactly what it never delivered (payload
  //    bytes and records the producer committed).
  //  - A peeked record may be overwritten while it is read: call intact()
  //    after reading the records peeked since the last intact() (or
  //    release()) and before using what was read. true: they were intact
  //    while read, and count as delivered. false: some were torn; they are
  //    dropped (counted as lost at the next peek, which returns overrun).
  //    release() checks records intact() has not vouched for, so a torn
  //    record is never counted as delivered.
  // On every other ring intact() is true and the counters stay 0.
  [[nodiscard]] bool intact() { return !lossy_ || intact_lossy(); }
  std::uint64_t lost_bytes() const { return lost_bytes_; }
  std::uint64_t lost_records() const { return lost_records_; }

 private:
  static Result<Consumer> attach_role(Segment& segment);
  Consumer(Segment& segment, ProcessToken token, int cursor = -1);
  // Broadcast rings (broadcast.cc): take a free cursor; start at the tail;
  // free the cursor.
  static Result<Consumer> attach_broadcast(Segment& segment, ProcessToken me);
  void join_cursor();
  void leave_cursor();
  Peeked try_peek_slow();  // wait_fd.cc: try_peek_scan() + the fd's arming
  Peeked try_peek_scan();
  Status end_status();
  Status producers_gone();     // roles.cc: would_block while one may publish
  Status how_stream_ended();   // roles.cc: closed or peer_dead
  void init_slots(const Segment& segment);      // slots.cc
  const std::byte* slot_slow(Status* why);      // slots.cc (+ wait_fd arming)
  const std::byte* slot_scan(Status* why);      // slots.cc
  bool stalled_long_enough(std::uint64_t pos);
  bool reclaim_if_owner_dead(std::uint64_t pos, std::uint64_t word);
  bool reclaim_unwritten_claim(std::uint64_t pos);
  void release_mpsc();
  void release_slow();  // MPSC or drop-slow: out of line
  // Overrun::drop_slow (broadcast_lossy.cc).
  Peeked try_peek_lossy();
  bool intact_lossy();
  Status lossy_end_status();
  Peeked resync();
  void join_lossy();
  void zero_released();
  void poll_reap();  // reap dead producers, at most once per slice
  void reap_now();

  Segment* segment_;  // only for segment(): may be gone (see there)
  std::shared_ptr<const void> mapping_;  // outlives a destroyed Segment
  layout::ControlBlock* cb_;
  layout::BroadcastBlock* bb_;  // broadcast rings; null on other kinds
  std::byte* data_;
  std::uint64_t mask_;
  std::uint64_t capacity_;
  std::uint64_t max_span_ = 0;
  bool mpsc_;
  int sem_id_ = -1;     // the ring's role semaphores (Segment::sem_id)
  ProcessToken token_;  // our claim on the consumer role
  detail::WaitPoint data_ready_;
  detail::WaitPoint space_ready_;

  std::uint64_t head_ = 0;         // released position (published)
  std::uint64_t read_ = 0;         // after the last peeked record
  std::uint64_t cached_tail_ = 0;  // producers' tail as last seen
  std::uint64_t stalled_pos_ = ~0ULL;
  detail::Clock::time_point stalled_since_{};
  detail::Clock::time_point last_reap_{};
  std::uint64_t corrupt_at_ = 0;
  std::uint32_t empty_polls_ = 0;
  detail::ClosedFlag closed_;
  std::unique_ptr<detail::WaitFd> wait_fd_;  // wait_fd(), created lazily

  // Kind::slots: element positions, apart from the record ones above so
  // the record fast paths never run on them (read_ == cached_tail_ stays
  // true) and the slot fast path never runs on a record consumer.
  std::uint64_t slot_head_ = 0;  // next element to read (= released)
  std::uint64_t slot_tail_ = 0;  // producer's tail as last seen; set to
                                 // slot_head_ at close()
  const std::byte* slot_at_ = nullptr;  // the slot of element slot_head_
  const std::byte* slots_end_ = nullptr;
  std::uint64_t slot_count_ = 0;
  std::uint32_t slot_size_ = 0;
  // Where release() publishes head_: ControlBlock::head, or on a broadcast
  // ring this consumer's cursor position.
  std::atomic<std::uint64_t>* head_word_ = nullptr;
  int cursor_ = -1;
  bool slow_release_ = false;  // mpsc_ or lossy_
  // Overrun::drop_slow: the producers' tail as last seen (cached_tail_
  // stays at read_ so the inline fast path always defers to the slow one),
  // the end of the records intact() has vouched for (valid_, between head_
  // and read_), payload bytes and records committed before read_ and
  // before valid_.
  bool lossy_ = false;
  std::uint64_t lossy_tail_ = 0;
  std::uint64_t valid_ = 0;
  std::uint64_t payload_before_read_ = 0;
  std::uint64_t records_before_read_ = 0;
  std::uint64_t payload_at_valid_ = 0;
  std::uint64_t records_at_valid_ = 0;
  std::uint64_t lost_bytes_ = 0;
  std::uint64_t lost_records_ = 0;
};

// ---- Inline fast paths. The common case of each call is a few
// instructions on private state plus plain loads/stores into the ring; every
// other case (wrap, full, MPSC, errors) goes to the out-of-line slow path.

inline Reservation Producer::try_reserve(std::size_t size) {
  if (!mpsc_ && !reserved_ && !closed_ && !broken_ && size < record_limit_) {
    const std::uint64_t span = layout::span_for(size);
    const std::uint64_t off = tail_ & mask_;
    if (off + span <= capacity_ && tail_ + span - cached_head_ <= capacity_) {
      reserved_pos_ = tail_;
      reserved_span_ = static_cast<std::uint32_t>(span);
      reserved_size_ = size;
      reserved_ = true;
      return {Status::ok, {data_ + off + layout::kHeaderSize, size}};
    }
  }
  return try_reserve_slow(size);
}

inline void Producer::commit_deferred(std::size_t used, std::uint16_t type) {
  if (!mpsc_ && reserved_ && used <= reserved_size_) {
    const auto span = static_cast<std::uint32_t>(layout::span_for(used));
    // relaxed: published by the tail store in publish() (release), which
    // the consumer acquires before it reads this header.
    std::atomic_ref<std::uint64_t>(
        *reinterpret_cast<std::uint64_t*>(data_ + (reserved_pos_ & mask_)))
        .store(layout::encode(span, static_cast<std::uint32_t>(used), type, 0),
               std::memory_order_relaxed);
    tail_ = reserved_pos_ + span;
    reserved_ = false;
    return;
  }
  commit_deferred_slow(used, type);
}

inline void Producer::publish() {
  if (tail_ == published_) return;
  published_ = tail_;
  // Release store of tail (pairs with the consumer's acquire (seq_cst)
  // load in try_peek_slow(): record bytes and headers are visible) and the
  // wake check;
  // the handshake's ordering is WaitPoint::publish's (wait.h).
  data_ready_.publish(cb_->tail, tail_);
}

inline void Producer::commit(std::size_t used, std::uint16_t type) {
  commit_deferred(used, type);
  if (!mpsc_) publish();
}

inline void Consumer::release() {
  if (read_ == head_) return;
  if (slow_release_) {
    release_slow();  // MPSC zeroes the released space first (ring.cc)
    return;
  }
  head_ = read_;
  // Release store of head, or of our cursor on a broadcast ring (pairs
  // with the producer's acquire (seq_cst) reload of head in reserve_spsc(),
  // or its cursor rescan in broadcast_min(): our reads of the records
  // happen before its overwrites) and the space_ready wake check
  // (WaitPoint::publish, wait.h).
  space_ready_.publish(*head_word_, head_);
}

inline Peeked Consumer::try_peek() {
  if (read_ != cached_tail_ && !closed_) {
    const std::uint64_t off = read_ & mask_;
    // acquire: pairs with the tail store (SPSC) or the commit store of this
    // header (MPSC), both WaitPoint::publish. A busy header goes to the
    // slow path, whose seq_cst load is the handshake's re-check.
    const std::uint64_t word =
        std::atomic_ref<std::uint64_t>(
            *reinterpret_cast<std::uint64_t*>(data_ + off))
            .load(std::memory_order_acquire);
    const layout::Header h = layout::decode(word);
    // The same bounds as the slow path; anything unusual goes there.
    if ((word & (layout::kBusy | layout::kPadding)) == 0 &&
        h.span >= layout::kHeaderSize && h.span <= max_span_ &&
        off + h.span <= capacity_ && h.span <= cached_tail_ - read_) {
      read_ += h.span;
      return {Status::ok,
              {data_ + off + layout::kHeaderSize, h.length, h.type}};
    }
  }
  return try_peek_slow();
}

inline Status Consumer::try_peek_batch(std::span<Record> out,
                                       std::size_t* count) {
  *count = 0;
  while (*count < out.size()) {
    Peeked p = try_peek();
    if (!p) return *count > 0 ? Status::ok : p.status;
    out[(*count)++] = p.record;
  }
  return Status::ok;
}

// ---- Fixed-slot fast paths (rigtorp/SPSCQueue's: an index compare
// against a cached copy of the peer's index, a copy done by the caller, a
// release store of our index). Ordering: docs/design.md, section 12.

inline std::byte* Producer::try_claim_slot(Status* why) {
  // slot_room_ is 0 unless this is an open, sane slots producer.
  if (tail_ - cached_head_ < slot_room_) return slot_at_;
  return claim_slot_slow(why);
}

inline void Producer::publish_slot() {
  ++tail_;
  slot_at_ += slot_size_;
  if (slot_at_ == slots_end_) slot_at_ = data_;
  // Release store of tail (pairs with the consumer's acquire (seq_cst)
  // reload in slot_scan(): the element's bytes are visible) and the wake
  // check; the handshake is WaitPoint::publish's (wait.h).
  data_ready_.publish(cb_->tail, tail_);
}

inline const std::byte* Consumer::try_slot(Status* why) {
  // slot_tail_ == slot_head_ on a record consumer and after close().
  if (slot_tail_ != slot_head_) return slot_at_;
  return slot_slow(why);
}

inline void Consumer::release_slot() {
  ++slot_head_;
  slot_at_ += slot_size_;
  if (slot_at_ == slots_end_) slot_at_ = data_;
  // Release store of head (pairs with the producer's acquire (seq_cst)
  // reload in claim_slot_slow(): our copy out of the slot happens before
  // its overwrite) and the space_ready wake check (WaitPoint::publish).
  space_ready_.publish(cb_->head, slot_head_);
}

}  // namespace shmring
