// The engine behind the public handles (not API): the producer and
// consumer roles every kind shares, the record reader that Consumer and
// Subscriber expose, and the slot handles QueueWriter<T>/QueueReader<T>
// own. Each kind's own state lives in its own type: the broadcast
// producer's in FanOut, a subscriber's cursor and loss accounting in
// CursorState (both ring/internal/broadcast_state.h), a fixed-slot ring's
// positions in SlotWriter/SlotReader. The public headers include this one
// for the inline fast paths only.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "ring/deadline.h"
#include "ring/internal/layout.h"
#include "ring/internal/liveness.h"
#include "ring/internal/wait.h"
#include "ring/record.h"
#include "ring/segment.h"
#include "ring/status.h"

namespace shmring {

class StreamReader;  // ring/stream.h

namespace detail {

class WaitFd;  // ring/internal/wait_fd.h

// A handle's "closed" flag. A move leaves the source closed, so the
// handles' moves are defaulted and a moved-from handle's destructor does
// nothing.
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

// ---------------------------------------------------------------- producer

// The producer role on any ring (ring/roles.cc): a slot of the producer
// table held through its role semaphore, liveness of the consumer side,
// and the close that ends the stream when it is the last.
class ProducerRole {
 public:
  // This producer's index in the ring's producer table (0 on one-producer
  // kinds).
  int producer_index() const { return index_; }
  // Valid while the Segment object lives; the handle itself (and its
  // close()) stays safe after the Segment is destroyed.
  Segment& segment() const { return *segment_; }
  // How many times a consumer has taken this ring's consumer role since
  // the ring was created (sticky): a change since an earlier call means a
  // consumer came meanwhile, even one that has left again.
  std::uint32_t consumers_seen() const;

 protected:
  struct Grant {
    int index;
    std::uint32_t generation;
    ProcessToken token;
  };
  // Takes a free (or a dead holder's) producer slot.
  static Result<Grant> take(Segment& segment);
  ProducerRole(Segment& segment, const Grant& grant, ProducerOptions options);
  ProducerRole(ProducerRole&&) noexcept = default;

  // False in a child that inherited the handle through fork(): the
  // registration is the parent's.
  bool owns_registration() const;
  // Frees the slot (the last producer's close ends the stream) and wakes
  // the consumer.
  void leave();
  // The consumer role (spsc, mpsc, slots): alive, and what a producer
  // blocked on a full ring should do (ok: keep waiting).
  bool consumer_role_alive() const;
  Status consumer_role_status() const;

  Segment* segment_;  // only for segment(): may be gone (see there)
  std::shared_ptr<const void> mapping_;  // outlives a destroyed Segment
  layout::ControlBlock* cb_;
  std::byte* data_;
  int index_;
  std::uint32_t owner_;  // owner tag written into MPSC busy headers
  int sem_id_;           // the ring's role semaphores
  ProcessToken token_;   // our registration in the slot
  ProducerOptions options_;
  WaitPoint data_ready_;
  WaitPoint space_ready_;
  ClosedFlag closed_;
  bool broken_ = false;  // positions in the segment are corrupt
};

// ---------------------------------------------------------------- consumer

// The consumer role (ring/roles.cc): the consumer semaphore (or a
// broadcast cursor's), end of stream, reaping of dead producers and the
// wait fd.
class ConsumerRole {
 public:
  // A file descriptor for poll/epoll/select (ring/internal/wait_fd.h):
  // readable when data is available or the stream ended; level-triggered:
  // it stays readable until a try call has found nothing (would_block), so
  // drain with the try call until would_block on each wake-up. It may be
  // readable spuriously, never stuck. Owned by the handle: valid until it
  // is destroyed; after close() it stays readable. Needs
  // WaitStrategy::futex (else Errc::invalid_argument). One helper thread
  // per handle.
  [[nodiscard]] Result<int> wait_fd();
  Segment& segment() const { return *segment_; }
  // Where a corrupt result was detected (ring offset), for messages.
  std::uint64_t corrupt_offset() const { return corrupt_at_; }

 protected:
  // Takes the consumer role of an spsc, mpsc or slots ring.
  static Result<ProcessToken> take(Segment& segment);
  ConsumerRole(Segment& segment, ProcessToken token);
  ConsumerRole(ConsumerRole&&) noexcept;
  ~ConsumerRole();

  // would_block while a producer may still publish, ok once every one has
  // left (reaping dead ones at most once per slice); removed if none ever
  // came and nothing_can_come().
  Status producers_gone();
  // True if the ring was removed (IPC_RMID: `shm-ring rm`, systemd
  // RemoveIPC), no live producer is attached and no other process maps it
  // (shm_orphaned): a removed ring can no longer be attached, so no other
  // process can bring a producer (one taken through a Segment of this
  // process still could). Looks at most once per kRemovedCheck (false in
  // between): one IPC_STAT, on the empty path only.
  bool nothing_can_come();
  // closed or peer_dead, once producers_gone() said ok and all is read.
  Status how_stream_ended();
  void poll_reap();  // reap dead producers, at most once per slice
  void reap_now();
  // Marks the handle closed and stops the wait fd; false if the
  // registration is not ours (inherited through fork()).
  bool begin_close();
  // Frees the consumer role and wakes producers.
  void leave();
  // `scan` found nothing (would_block) and the wait fd may be readable:
  // announce, scan again, and arm the fd if still nothing (wait_fd.h).
  template <class Scan>
  auto scan_and_arm(Scan scan) -> decltype(scan());
  // StreamReader, at an end of stream it does not report (between
  // streams): the wait fd stays readable at an end of stream, so announce,
  // re-check `waiting()`, and clear and arm the fd if it still holds.
  // False if `waiting()` turned false (wait_fd.h).
  template <class Waiting>
  bool arm_while(Waiting waiting);
  friend class shmring::StreamReader;

  Segment* segment_;  // only for segment(): may be gone (see there)
  std::shared_ptr<const void> mapping_;  // outlives a destroyed Segment
  layout::ControlBlock* cb_;
  std::byte* data_;
  int sem_id_;
  int shm_id_;          // the segment's, for nothing_can_come()
  ProcessToken token_;  // our claim on the role
  bool one_producer_;   // every kind but mpsc
  WaitPoint data_ready_;
  WaitPoint space_ready_;
  ClosedFlag closed_;
  std::unique_ptr<WaitFd> wait_fd_;  // wait_fd(), created lazily
  Clock::time_point last_reap_{};
  Clock::time_point next_removed_check_{};  // the first look is at once
  std::uint32_t empty_polls_ = 0;
  std::uint64_t corrupt_at_ = 0;
};

struct CursorState;  // broadcast_state.h: a subscriber's cursor and losses

// Reads records (spsc, mpsc, broadcast): peek/release, batches, copies.
// Consumer and Subscriber are this plus their kind's own calls.
class RecordReader : public ConsumerRole {
 public:
  // The next record after those already peeked. closed: every producer has
  // closed and the ring is drained (a new producer may start a new stream:
  // keep calling to follow). peer_dead: drained and the (only) producer
  // died. removed: no producer ever came and the ring was removed
  // (nothing_can_come()).
  [[nodiscard]] inline Peeked try_peek();
  [[nodiscard]] Peeked peek(Timeout timeout = kForever);
  // Up to out.size() records: ok with at least one, else why not.
  [[nodiscard]] inline PeekedBatch try_peek_batch(std::span<Record> out);
  [[nodiscard]] PeekedBatch peek_batch(std::span<Record> out,
                                       Timeout timeout = kForever);
  // Returns every peeked record's space to the producer. Invalidates them.
  inline void release();
  // Copying helper: peek + copy + release.
  [[nodiscard]] Status read(std::vector<std::byte>& out,
                            Timeout timeout = kForever);
  void close();
  // Bytes committed or claimed but not yet released: a guess while
  // producers run.
  std::uint64_t size_guess() const;
  std::size_t max_record_size() const;

  RecordReader(RecordReader&&) noexcept;
  ~RecordReader();

 protected:
  // Takes the consumer role (spsc, mpsc) or a free cursor (broadcast).
  static Result<RecordReader> attach(Segment& segment);
  RecordReader(Segment& segment, ProcessToken token, int cursor = -1);

  // Broadcast rings (ring/broadcast.cc, ring/broadcast_lossy.cc).
  int cursor_index() const;
  bool intact_lossy();
  std::uint64_t lost_bytes() const;
  std::uint64_t lost_records() const;
  bool lossy_ = false;  // Overrun::drop_slow: the producer may lap us

 private:
  static Result<RecordReader> attach_cursor(Segment& segment, ProcessToken me);
  void join_cursor();
  void leave_cursor();
  Peeked try_peek_slow();  // try_peek_scan() + the wait fd's arming
  Peeked try_peek_scan();
  // The word at read_ (seq_cst), 0 if nothing can be there.
  std::uint64_t next_header() const;
  // Every published record ends less than a ring before the tail and at
  // most capacity - 8 bytes after it
  // (docs/design/ordering.md#bounding-records-by-a-tail-loaded-once-a-lap):
  // true if one ending at `end` may be published as far as cached_tail_ tells.
  // One unsigned compare: `end - tail + capacity` in [1, 2 * capacity - 8].
  bool tail_bound_ok(std::uint64_t end) const {
    return end - cached_tail_ + capacity_ - 1 <
           2 * capacity_ - layout::kHeaderSize;
  }
  // The same, reloading the tail first if cached_tail_ is too old.
  bool tail_bound_holds(std::uint64_t end);
  Status end_status();
  bool stalled_long_enough(std::uint64_t pos);
  bool reclaim_if_owner_dead(std::uint64_t pos, std::uint64_t word);
  bool reclaim_unwritten_claim(std::uint64_t pos);
  void release_slow();  // MPSC or drop-slow: out of line
  void release_mpsc();
  void zero_released();
  Peeked try_peek_lossy();
  Status lossy_end_status();
  Peeked resync();
  void join_lossy();

  std::uint64_t mask_;
  std::uint64_t capacity_;
  std::uint64_t max_span_;
  bool mpsc_;
  std::uint64_t head_ = 0;  // released position (published)
  std::uint64_t read_ = 0;  // after the last peeked record
  // The producers' tail as last loaded. Drop-slow subscribers read up to
  // it; the other readers follow headers to a 0 word and load the tail
  // only at a 0 word (MPSC) or when a record ends farther past it than any
  // published record can (tail_bound_ok: once a ring at most).
  std::uint64_t cached_tail_ = 0;
  std::uint64_t stalled_pos_ = ~0ULL;
  Clock::time_point stalled_since_{};
  // Where release() publishes head_: ControlBlock::head, or on a
  // broadcast ring this subscriber's cursor position.
  std::atomic<std::uint64_t>* head_word_ = nullptr;
  bool slow_release_ = false;            // mpsc_ or lossy_
  std::unique_ptr<CursorState> cursor_;  // broadcast rings only
};

// ------------------------------------------------------------ fixed slots

// A fixed-slot ring's elements as one handle walks them: the slot of its
// next element, moved on without a division.
struct SlotCursor {
  std::byte* at;     // the slot of the handle's next element
  std::byte* begin;  // the data ring
  std::byte* end;    // begin + count * size
  std::uint64_t count;
  std::uint32_t size;
  // One division per attach: the slot of element `pos`.
  void seek(std::uint64_t pos) { at = begin + (pos % count) * size; }
  // The slot after `slot`; `n` is `size` (a constant in QueueWriter<T>).
  std::byte* after(std::byte* slot, std::size_t n) const {
    slot += n;
    return slot == end ? begin : slot;
  }
  void advance() { at = after(at, size); }
};

// A slot found by the fast paths: ok with `at`, else why not.
struct SlotRef {
  Status status = Status::would_block;
  std::byte* at = nullptr;
};

// The producer of a fixed-slot ring (ring/slots.cc): rigtorp/SPSCQueue's
// data path (a compare against a cached copy of the consumer's index, a
// copy by the caller, a release store of ours) plus the wake check.
class SlotWriter : public ProducerRole {
 public:
  static Result<SlotWriter> attach(Segment& segment, std::size_t element_size,
                                   ProducerOptions options);
  SlotWriter(SlotWriter&&) noexcept = default;
  ~SlotWriter() { close(); }

  // The free slot for the next element (element_size() bytes: write it,
  // then publish()): would_block (full), closed or corrupt otherwise.
  inline SlotRef try_claim();
  // Publishes the claimed slot: tail + 1 and the wake check. Only after a
  // successful try_claim().
  inline void publish();
  // try_claim(), a copy of `n` = element_size() bytes from `src` into the
  // slot, publish(): what QueueWriter<T>::try_push inlines, with sizeof(T)
  // for `n`. The positions are read before the copy (which may alias
  // anything), so none is reloaded after it.
  inline Status try_write(const void* src, std::size_t n);
  // Blocks (spin, then sleep) until a slot is free: ok, then try_claim()
  // succeeds; timed_out, peer_dead, interrupted, closed or corrupt.
  [[nodiscard]] Status wait(Timeout timeout);
  void close();
  bool consumer_alive() const { return consumer_role_alive(); }
  std::size_t element_size() const { return slots_.size; }

 private:
  SlotWriter(Segment& segment, const Grant& grant, ProducerOptions options);
  SlotRef claim_slow();
  // tail_ = tail, the slot of element tail next, then tail's release store
  // through the wake check (into `index`: cb_->tail, read before a copy).
  inline void commit(std::uint64_t tail, std::byte* next,
                     std::atomic<std::uint64_t>& index);

  std::uint64_t tail_;         // elements published
  std::uint64_t cached_head_;  // consumer's position as last seen
  SlotCursor slots_;           // at: the slot of element tail_
  // slots_.count while the fast path may claim; 0 when closed or corrupt
  // (the fast path's only bound).
  std::uint64_t room_ = 0;
};

// The consumer of a fixed-slot ring (ring/slots.cc).
class SlotReader : public ConsumerRole {
 public:
  static Result<SlotReader> attach(Segment& segment, std::size_t element_size);
  SlotReader(SlotReader&&) noexcept = default;
  ~SlotReader() { close(); }

  // The next element (element_size() bytes, valid until release()):
  // would_block (empty), closed / peer_dead (end of stream), corrupt.
  // Arms wait_fd() when it finds nothing.
  inline SlotRef try_get();
  // Frees the element: head + 1 and the wake check.
  inline void release();
  // try_get(), a copy of `n` = element_size() bytes out of the slot into
  // `dst`, release(): what QueueReader<T>::try_pop inlines, with sizeof(T)
  // for `n`. `dst` is written only if ok.
  inline Status try_read(void* dst, std::size_t n);
  // Blocks (spin, then sleep) until an element is there: ok, then
  // try_get() succeeds; else closed, peer_dead, timed_out, ...
  [[nodiscard]] Status wait(Timeout timeout);
  void close();
  // Elements not yet released, times their size: a guess.
  std::uint64_t size_guess() const;
  std::size_t element_size() const { return slots_.size; }

 private:
  SlotReader(Segment& segment, ProcessToken token);
  SlotRef get_slow();
  SlotRef scan();
  // head_ = head, the slot of element head next, then head's release store
  // through the wake check (into `index`: cb_->head, read before a copy).
  inline void commit(std::uint64_t head, std::byte* next,
                     std::atomic<std::uint64_t>& index);

  std::uint64_t head_;  // next element to read (= released)
  std::uint64_t tail_;  // producer's tail as last seen; = head_ once closed
  SlotCursor slots_;    // at: the slot of element head_
  // slots_.count while open; 0 once closed (the fast path's reload bound).
  std::uint64_t room_ = 0;
};

// Test-only fault injection: the steps of an MPSC claim
// (docs/design/mpsc.md). A test sets claim_hook (before its producer runs)
// to stop or kill the process at one of them; null otherwise (one relaxed
// load and a branch per step).
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

// ---- Inline fast paths. The common case of each call is a few
// instructions on private state plus plain loads/stores into the ring;
// every other case (wrap, full, MPSC, errors) goes out of line.

inline Peeked RecordReader::try_peek() {
  // An aligned read_ (a scribbled head or tail is not) keeps the header
  // load aligned and inside the ring; the slow path says corrupt.
  if (!closed_ && (read_ & (layout::kRecordAlign - 1)) == 0) {
    const std::uint64_t off = read_ & mask_;
    // acquire: pairs with the header store in Producer::publish (SPSC,
    // broadcast) or commit_deferred_slow (MPSC).
    const std::uint64_t word =
        layout::header_at(data_, off).load(std::memory_order_acquire);
    const layout::Header h = layout::decode(word);
    // Where a record may end: the ring a producer may have filled past our
    // released position; a drop-slow subscriber reads up to the tail.
    const std::uint64_t room =
        lossy_ ? cached_tail_ - read_ : capacity_ - (read_ - head_);
    // The same bounds as the slow path; anything unusual goes there (a 0
    // word, nothing committed yet, fails the first; a record past the
    // tail as last loaded, tail_bound_ok, reloads it).
    if ((word & (layout::kBusy | layout::kPadding)) == 0 &&
        h.span >= layout::kHeaderSize && h.span <= max_span_ &&
        off + h.span <= capacity_ && h.span <= room &&
        tail_bound_ok(read_ + h.span)) {
      read_ += h.span;
      return {Status::ok,
              {data_ + off + layout::kHeaderSize, h.length, h.type}};
    }
  }
  return try_peek_slow();
}

inline PeekedBatch RecordReader::try_peek_batch(std::span<Record> out) {
  std::size_t n = 0;
  while (n < out.size()) {
    Peeked p = try_peek();
    if (!p) {
      if (n > 0) break;
      return {p.status, {}};
    }
    out[n++] = p.record;
  }
  return {Status::ok, out.first(n)};
}

inline void RecordReader::release() {
  if (read_ == head_) return;
  if (slow_release_) {
    release_slow();  // MPSC zeroes the released space first
    return;
  }
  head_ = read_;
  // release: pairs with the head (or cursor) load in
  // Producer::reserve_spsc / Producer::broadcast_min; WaitPoint::publish.
  space_ready_.publish(*head_word_, head_);
}

inline SlotRef SlotWriter::try_claim() {
  // room_ is 0 unless this is an open, sane producer.
  if (tail_ - cached_head_ < room_) return {Status::ok, slots_.at};
  // Full as last seen: reload head here, inline, as rigtorp's push does.
  // acquire: pairs with the head store in SlotReader::release.
  const std::uint64_t head = cb_->head.load(std::memory_order_acquire);
  // Below room_: a free slot, and a sane pair (tail - head <= count).
  if (tail_ - head < room_) {
    cached_head_ = head;
    return {Status::ok, slots_.at};
  }
  return claim_slow();  // full, closed or corrupt
}

inline void SlotWriter::commit(std::uint64_t tail, std::byte* next,
                               std::atomic<std::uint64_t>& index) {
  tail_ = tail;
  slots_.at = next;
  // release: pairs with the tail loads in SlotReader::try_get and scan.
  data_ready_.publish(index, tail);
}

inline void SlotWriter::publish() {
  commit(tail_ + 1, slots_.after(slots_.at, slots_.size), cb_->tail);
}

inline Status SlotWriter::try_write(const void* src, std::size_t n) {
  const SlotRef s = try_claim();
  if (s.status != Status::ok) return s.status;
  const std::uint64_t tail = tail_ + 1;
  std::byte* const next = slots_.after(s.at, n);
  std::atomic<std::uint64_t>& index = cb_->tail;
  std::memcpy(s.at, src, n);
  commit(tail, next, index);
  return Status::ok;
}

inline SlotRef SlotReader::try_get() {
  // tail_ == head_ after close().
  if (tail_ != head_) return {Status::ok, slots_.at};
  // Empty as last seen: reload tail here, inline, as rigtorp's pop does.
  // acquire: pairs with the tail store in SlotWriter::publish.
  const std::uint64_t tail = cb_->tail.load(std::memory_order_acquire);
  // 1 .. room_ elements ahead: an element, a sane pair, an open handle.
  if (tail - head_ - 1 < room_) {
    tail_ = tail;
    return {Status::ok, slots_.at};
  }
  return get_slow();  // empty, end of stream, closed or corrupt
}

inline void SlotReader::commit(std::uint64_t head, std::byte* next,
                               std::atomic<std::uint64_t>& index) {
  head_ = head;
  slots_.at = next;
  // release: pairs with the head loads in SlotWriter::try_claim and claim_slow.
  space_ready_.publish(index, head);
}

inline void SlotReader::release() {
  commit(head_ + 1, slots_.after(slots_.at, slots_.size), cb_->head);
}

inline Status SlotReader::try_read(void* dst, std::size_t n) {
  const SlotRef s = try_get();
  if (s.status != Status::ok) return s.status;
  const std::uint64_t head = head_ + 1;
  std::byte* const next = slots_.after(s.at, n);
  std::atomic<std::uint64_t>& index = cb_->head;
  std::memcpy(dst, s.at, n);
  commit(head, next, index);
  return Status::ok;
}

}  // namespace detail
}  // namespace shmring
