// The data paths: reserve/commit/abort on the producer side, peek/release
// on the consumer side, SPSC and MPSC side by side. The inline fast paths
// are in ring.h; the role protocol (attach, close, liveness, end of
// stream) is in roles.cc, the recovery of dead MPSC claims in reclaim.cc,
// the waiting policy in wait_loop.h. Ordering proofs: docs/design/mpsc.md#claim
// and docs/design/ordering.md#the-wake-up-handshake.
// The wake-up handshake: a seq_cst load below that is "the re-check" of
// data_ready or space_ready is the waiter's half of the Dekker pair whose
// proof is written once, in docs/design/ordering.md#the-wake-up-handshake and
// WaitPoint::publish (ring/internal/wait.h); the comments here only say which
// pair.
#include "ring/ring.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "ring/internal/broadcast_state.h"
#include "ring/internal/roles.h"
#include "ring/internal/segment_access.h"
#include "ring/internal/wait_fd.h"
#include "ring/internal/wait_loop.h"

namespace shmring {

using detail::RecordReader;

using detail::data_point;
using detail::space_point;
using detail::wait_loop;
using layout::ControlBlock;
using layout::Header;
using layout::header_at;

// ============================== Producer ==================================

Producer::Producer(Segment& segment, const Grant& grant,
                   ProducerOptions options)
    : ProducerRole(segment, grant, options),
      mask_(segment.capacity() - 1),
      capacity_(segment.capacity()),
      record_limit_(layout::max_payload(segment.capacity()) + 1),
      mpsc_(segment.kind() == Kind::mpsc) {
  // acquire: pairs with the head store in RecordReader::release; head first
  // (docs/design/ordering.md#a-new-handle-resumes).
  cached_head_ = cb_->head.load(std::memory_order_acquire);
  // acquire: pairs with the previous producer's tail store (Producer::publish)
  tail_ = published_ = cb_->tail.load(std::memory_order_acquire);
  const bool walked = !mpsc_ && resume_after_predecessor();
  if (segment.kind() == Kind::broadcast) {
    fan_ = std::make_unique<detail::FanOut>(
        detail::FanOut{.bb = detail::broadcast_block(segment),
                       .max_consumers = std::min<std::uint32_t>(
                           segment.max_consumers(), layout::kMaxConsumers),
                       .lossy = segment.overrun() == Overrun::drop_slow});
    // No cursor scanned yet: the ring counts as full until the first
    // rescan (broadcast_min) finds the registered subscribers.
    cached_head_ = tail_ - capacity_;
    if (fan_->lossy) {
      wake_on_tail_ = true;
      init_lossy();
    }
  }
  // SPSC: we are the only writer of tail, so a garbage pair is a peer's
  // scribble, refused by every reserve (corrupt). MPSC: other producers
  // move tail and the consumer head between our two loads, so the pair
  // proves nothing; reserve_mpsc() judges a consistent snapshot instead.
  broken_ = !mpsc_ && !layout::positions_sane(cached_head_, tail_, capacity_);
  // Readers bound a record's end by the tail (RecordReader::tail_bound_ok):
  // store the walked tail before our first batch could make that bound two
  // batches wide.
  // release: pairs with the tail load in RecordReader::tail_bound_holds.
  if (walked && !broken_) cb_->tail.store(tail_, std::memory_order_release);
}

// A predecessor killed between the release of a batch's first header and
// its tail store (publish()) left committed records past the tail: walk
// them to the 0 word every publish() leaves after its batch
// (docs/design/ordering.md#one-line-per-record). A word that is no record
// header ends the walk; the positions check in the constructor judges what
// is left.
bool Producer::resume_after_predecessor() {
  std::uint64_t walked = 0;
  // A misaligned (scribbled) tail is refused by the constructor's check.
  while ((tail_ & (layout::kRecordAlign - 1)) == 0) {
    const std::uint64_t off = tail_ & mask_;
    // acquire: pairs with the header store in the predecessor's publish().
    const std::uint64_t word =
        header_at(data_, off).load(std::memory_order_acquire);
    const Header h = layout::decode(word);
    if (word == 0 || h.busy || h.span < layout::kHeaderSize ||
        off + h.span > capacity_ || walked + h.span > capacity_) {
      break;
    }
    walked += h.span;
    tail_ += h.span;
  }
  published_ = tail_;
  return walked != 0;
}

Producer::Producer(Producer&&) noexcept = default;

Producer::~Producer() { close(); }

std::size_t Producer::max_record_size() const {
  return layout::max_payload(capacity_);
}

namespace {

// Bytes of padding record needed before a header at ring offset `off` so
// that the payload after it starts at a multiple of `align`.
constexpr std::uint64_t align_gap(std::uint64_t off, std::uint64_t align) {
  return (0 - (off + layout::kHeaderSize)) & (align - 1);
}
static_assert(align_gap(0, 64) == 56 && align_gap(56, 64) == 0);
static_assert(align_gap(64, 8) == 0 && align_gap(8, 16) == 0);

bool alignment_ok(std::size_t align) {
  return align != 0 && (align & (align - 1)) == 0 &&
         align <= Producer::kMaxAlign;
}

}  // namespace

Reservation Producer::try_reserve(std::size_t size, std::size_t align) {
  if (align <= layout::kRecordAlign && alignment_ok(align)) {
    return try_reserve(size);
  }
  return try_reserve_slow(size, align);
}

Reservation Producer::reserve(std::size_t size, std::size_t align,
                              Timeout timeout) {
  if (closed_) return {Status::closed, {}};
  if (!alignment_ok(align) ||
      size + std::max<std::size_t>(align, 8) - 8 > max_record_size()) {
    return {Status::too_large, {}};
  }
  return wait_loop<Reservation>(
      space_ready_, timeout, [&] { return try_reserve(size, align); },
      [&] { return blocked_status(); });
}

Reservation Producer::try_reserve_slow(std::size_t size, std::size_t align) {
  if (closed_) return {Status::closed, {}};
  if (!alignment_ok(align)) return {Status::too_large, {}};
  align = std::max<std::size_t>(align, layout::kRecordAlign);
  if (size + align - layout::kRecordAlign > max_record_size()) {
    return {Status::too_large, {}};
  }
  if (broken_) return {Status::corrupt, {}};
  if (reserved_) abort();  // one reservation at a time
  return mpsc_ ? reserve_mpsc(size, align) : reserve_spsc(size, align);
}

Reservation Producer::reserve_spsc(std::size_t size, std::size_t align) {
  const auto span = static_cast<std::uint32_t>(layout::span_for(size));
  const std::uint64_t off = tail_ & mask_;
  // An aligned record may need a padding record (`gap`) before it; one
  // that would straddle the end pads to the end and starts at offset 0.
  std::uint64_t gap = align_gap(off, align);
  std::uint64_t pad = 0;
  if (off + gap + span > capacity_) {
    pad = capacity_ - off;
    gap = align_gap(0, align);
  }
  // The record, its padding and the 0 word after it (publish()).
  const std::uint64_t need = pad + gap + span + layout::kHeaderSize;
  if (fan_ && fan_->lossy) {
    // drop-slow: never wait; announce the overwrite first (broadcast_lossy.cc).
    lossy_overwrite(tail_ + need);
  } else if (tail_ + need - cached_head_ > capacity_) {
    // seq_cst: space_ready re-check; pairs with RecordReader::release's store
    cached_head_ =
        fan_ ? broadcast_min() : cb_->head.load(std::memory_order_seq_cst);
    if (!layout::positions_sane(cached_head_, tail_, capacity_)) {
      broken_ = true;
      return {Status::corrupt, {}};
    }
    if (tail_ + need - cached_head_ > capacity_) {
      // Full: make deferred records visible, or the consumer could wait for
      // them while we wait for it.
      publish();
      if (fan_) reap_dead_consumers_throttled();  // try_reserve pollers
      return {Status::would_block, {}};
    }
  }
  if (pad != 0) {
    put_header(tail_, layout::padding_word(static_cast<std::uint32_t>(pad)));
    tail_ += pad;
  }
  if (gap != 0) {
    put_header(tail_, layout::padding_word(static_cast<std::uint32_t>(gap)));
    tail_ += gap;
  }
  reserved_pos_ = tail_;
  reserved_span_ = span;
  reserved_size_ = size;
  reserved_ = true;
  return {Status::ok,
          {data_ + (reserved_pos_ & mask_) + layout::kHeaderSize, size}};
}

namespace detail {
std::atomic<ClaimHook> claim_hook{nullptr};
}  // namespace detail

namespace {
// Withdraws a claim intent that did not lead to a claim; cheap if none.
void withdraw_intent(layout::Slot& slot) {
  // relaxed: only our own earlier store can be there.
  if (slot.intent.load(std::memory_order_relaxed) != layout::kNoIntent) {
    // release: pairs with the intent load in reclaim_unwritten_claim.
    slot.intent.store(layout::kNoIntent, std::memory_order_release);
  }
}

// Test-only fault injection between the steps of an MPSC claim.
inline void claim_step(detail::ClaimStep step) {
  // relaxed: a test hook, set before the producer runs.
  if (auto* hook = detail::claim_hook.load(std::memory_order_relaxed)) {
    hook(step);
  }
}
}  // namespace

// The MPSC claim (docs/design/mpsc.md#claim): publish the intent, CAS tail,
// write the headers. No lock: a producer stopped anywhere in here never
// keeps another from claiming; its CAS either happened (the claim is its
// own, recovered by the consumer if it dies) or did not (nothing is
// claimed). An aligned claim (align > 8) also covers a padding record (the
// gap) before the record, as reserve_spsc() lays it out.
Reservation Producer::reserve_mpsc(std::size_t size, std::size_t align) {
  const auto span = static_cast<std::uint32_t>(layout::span_for(size));
  auto& slot = cb_->producers[index_];
  // relaxed: only an expectation for the CAS below, which rereads it.
  std::uint64_t t = cb_->tail.load(std::memory_order_relaxed);
  std::uint64_t off = 0;
  std::uint64_t pad = 0;
  std::uint64_t gap = 0;
  for (;;) {
    off = t & mask_;
    gap = align_gap(off, align);
    pad = 0;
    if (off + gap + span > capacity_) {
      pad = capacity_ - off;
      gap = align_gap(0, align);
    }
    const std::uint64_t need = pad + gap + span;
    if (!layout::positions_sane(cached_head_, t, capacity_) ||
        t - cached_head_ + need > capacity_) {
      // seq_cst: space_ready re-check; pairs with RecordReader::release_mpsc
      cached_head_ = cb_->head.load(std::memory_order_seq_cst);
      if (!layout::positions_sane(cached_head_, t, capacity_)) {
        // Our tail may predate the head we just read. Only a pair with
        // tail unchanged around the head load is a snapshot of one
        // moment; insane then, the segment is corrupt.
        // seq_cst: ordered after the head load above.
        const std::uint64_t t2 = cb_->tail.load(std::memory_order_seq_cst);
        if (t2 != t) {
          t = t2;
          continue;
        }
        withdraw_intent(slot);
        return {Status::corrupt, {}};
      }
      if (t - cached_head_ + need > capacity_) {
        // A live producer waiting for space must not name a position: a
        // lost CAS's intent would hold the consumer at a dead claimer's 0
        // word while we wait for the consumer (found by tests/model).
        withdraw_intent(slot);
        return {Status::would_block, {}};
      }
    }
    claim_step(detail::ClaimStep::before_intent);
    // release: pairs with the intent load in reclaim_unwritten_claim.
    slot.intent.store(t, std::memory_order_release);
    claim_step(detail::ClaimStep::before_cas);
    // seq_cst: pairs with the tail load in RecordReader::try_peek_scan;
    // failure relaxed: another producer claimed, retry from its tail.
    if (cb_->tail.compare_exchange_weak(t, t + need, std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
      break;
    }
  }
  claim_step(detail::ClaimStep::after_cas);
  const std::uint64_t pos = t + pad + gap;
  // relaxed: published by the release stores below; busy until commit().
  header_at(data_, pos & mask_)
      .store(layout::encode_busy(span, owner_), std::memory_order_relaxed);
  if (gap != 0) {
    claim_step(detail::ClaimStep::after_busy_header);
    // release: pairs with the header load in RecordReader::try_peek_scan.
    header_at(data_, (t + pad) & mask_)
        .store(layout::padding_word(static_cast<std::uint32_t>(gap)),
               std::memory_order_release);
  }
  if (pad != 0) {
    if (gap == 0) claim_step(detail::ClaimStep::after_busy_header);
    // release: pairs with the header load in RecordReader::try_peek_scan.
    header_at(data_, off)
        .store(layout::padding_word(static_cast<std::uint32_t>(pad)),
               std::memory_order_release);
  }
  claim_step(detail::ClaimStep::claimed);
  // release: pairs with the intent load in reclaim_unwritten_claim.
  slot.intent.store(layout::kNoIntent, std::memory_order_release);
  reserved_pos_ = pos;
  reserved_span_ = span;
  reserved_size_ = size;
  reserved_ = true;
  return {Status::ok, {data_ + (pos & mask_) + layout::kHeaderSize, size}};
}

Reservation Producer::reserve(std::size_t size, Timeout timeout) {
  if (closed_) return {Status::closed, {}};
  if (size > max_record_size()) return {Status::too_large, {}};
  // Deferred records stay deferred unless the ring is full: try_reserve
  // publishes them before reporting would_block.
  return wait_loop<Reservation>(
      space_ready_, timeout, [&] { return try_reserve(size); },
      [&] { return blocked_status(); });
}

void Producer::commit_deferred_slow(std::size_t used, std::uint16_t type) {
  if (!reserved_) return;
  used = std::min(used, reserved_size_);
  type = static_cast<std::uint16_t>(type & layout::kMaxType);
  const auto span = static_cast<std::uint32_t>(layout::span_for(used));
  const std::uint64_t word =
      layout::encode(span, static_cast<std::uint32_t>(used), type, 0);
  reserved_ = false;
  if (!mpsc_) {
    put_header(reserved_pos_, word);
    tail_ = reserved_pos_ + span;
    return;
  }
  if (span < reserved_span_) {
    // relaxed: published by the release store of the header below.
    header_at(data_, (reserved_pos_ + span) & mask_)
        .store(layout::padding_word(reserved_span_ - span),
               std::memory_order_relaxed);
  }
  // release: pairs with the header load in RecordReader::try_peek(_scan);
  // WaitPoint::publish (docs/design/ordering.md#mpsc-commits-and-releases).
  data_ready_.publish(header_at(data_, reserved_pos_ & mask_), word);
}

void Producer::abort() {
  if (!reserved_) return;
  reserved_ = false;
  if (!mpsc_) {
    tail_ = reserved_pos_;  // nothing was published
    return;
  }
  // release: as in commit_deferred_slow (the consumer may wait on it).
  data_ready_.publish(header_at(data_, reserved_pos_ & mask_),
                      layout::padding_word(reserved_span_));
}

Status Producer::try_write(std::span<const std::byte> bytes,
                           std::uint16_t type) {
  auto r = try_reserve(bytes.size());
  if (!r) return r.status;
  if (!bytes.empty()) std::memcpy(r.bytes.data(), bytes.data(), bytes.size());
  commit(bytes.size(), type);
  return Status::ok;
}

Status Producer::write(std::span<const std::byte> bytes, Timeout timeout,
                       std::uint16_t type) {
  auto r = reserve(bytes.size(), timeout);
  if (!r) return r.status;
  if (!bytes.empty()) std::memcpy(r.bytes.data(), bytes.data(), bytes.size());
  commit(bytes.size(), type);
  return Status::ok;
}

// ============================== Consumer ==================================

RecordReader::RecordReader(Segment& segment, ProcessToken token, int cursor)
    : ConsumerRole(segment, token),
      mask_(segment.capacity() - 1),
      capacity_(segment.capacity()),
      max_span_(layout::max_span(segment.capacity())),
      mpsc_(segment.kind() == Kind::mpsc) {
  // acquire: pairs with the head store in RecordReader::release.
  // A misaligned (corrupt) head is caught by the checks in try_peek().
  head_ = read_ = cached_tail_ = cb_->head.load(std::memory_order_acquire);
  head_word_ = &cb_->head;
  slow_release_ = mpsc_;
  if (cursor >= 0) {  // broadcast: our own cursor, starting at the tail
    cursor_ = std::make_unique<detail::CursorState>(detail::CursorState{
        .bb = detail::broadcast_block(segment), .index = cursor});
    lossy_ = segment.overrun() == Overrun::drop_slow;
    slow_release_ = lossy_;
    join_cursor();
    return;
  }
  if (!mpsc_) return;
  // A predecessor that died inside release() left [head, release_to)
  // partly zeroed: it had finished with those records, so finish its job.
  // acquire: pairs with the release_to store in RecordReader::zero_released.
  const std::uint64_t to = cb_->release_to.load(std::memory_order_acquire);
  // acquire: pairs with the tail CAS in Producer::reserve_mpsc (our bound).
  const std::uint64_t t = cb_->tail.load(std::memory_order_acquire);
  if (to != head_ && (to & (layout::kRecordAlign - 1)) == 0 &&
      layout::positions_sane(head_, t, capacity_) && to - head_ <= t - head_) {
    read_ = to;
    release();
    cached_tail_ = read_;
  }
}

RecordReader::RecordReader(RecordReader&&) noexcept = default;

RecordReader::~RecordReader() { close(); }

std::size_t RecordReader::max_record_size() const {
  return layout::max_payload(capacity_);
}

std::uint64_t RecordReader::size_guess() const {
  // relaxed: a guess for progress displays.
  const std::uint64_t t = cb_->tail.load(std::memory_order_relaxed);
  return t - head_ <= capacity_ ? t - head_ : 0;
}

std::uint64_t RecordReader::next_header() const {
  // Everything peeked and nothing released (an MPSC ring can be full to
  // the byte): the word at read_ is our own oldest record's header.
  if (read_ - head_ == capacity_) return 0;
  // seq_cst: data_ready re-check; pairs with the header store in
  // Producer::publish or commit_deferred_slow (WaitPoint::publish).
  return header_at(data_, read_ & mask_).load(std::memory_order_seq_cst);
}

bool RecordReader::tail_bound_holds(std::uint64_t end) {
  if (tail_bound_ok(end)) return true;
  // acquire: pairs with the tail store in Producer::publish (or the tail
  // CAS in Producer::reserve_mpsc): a record whose header we acquired was
  // published after the tail store of the batch before it.
  cached_tail_ = cb_->tail.load(std::memory_order_acquire);
  return tail_bound_ok(end);
}

Peeked RecordReader::try_peek_scan() {
  if (closed_) return {Status::closed, {}};
  if (lossy_) return try_peek_lossy();              // broadcast_lossy.cc
  if ((read_ & (layout::kRecordAlign - 1)) != 0) {  // a scribbled head/tail
    corrupt_at_ = read_ & mask_;
    return {Status::corrupt, {}};
  }
  for (;;) {
    const std::uint64_t off = read_ & mask_;
    const std::uint64_t word = next_header();
    if (word == 0) {
      // Nothing committed here. MPSC: a claim whose header is not written
      // yet if the tail is past us (reclaimed if its claimer died).
      if (mpsc_) {
        // seq_cst: pairs with the tail CAS in Producer::reserve_mpsc.
        const std::uint64_t t = cb_->tail.load(std::memory_order_seq_cst);
        if (!layout::positions_sane(head_, t, capacity_) ||
            t - head_ < read_ - head_) {
          corrupt_at_ = off;
          return {Status::corrupt, {}};
        }
        cached_tail_ = t;
        if (t != read_) {
          if (reclaim_unwritten_claim(read_)) continue;
          return {Status::would_block, {}};
        }
      }
      const Status s = end_status();
      if (s == Status::ok) continue;  // committed meanwhile
      return {s, {}};
    }
    const Header h = layout::decode(word);
    // Every value from the segment is untrusted: bounds before use (a
    // record ends within the ring, and within a ring of our head).
    if (h.span < layout::kHeaderSize || off + h.span > capacity_ ||
        h.span > capacity_ - (read_ - head_) ||
        (!h.padding && h.span > layout::max_span(capacity_)) ||
        (h.busy && !mpsc_) || !tail_bound_holds(read_ + h.span)) {
      corrupt_at_ = off;
      return {Status::corrupt, {}};
    }
    if (h.busy) {
      if (reclaim_if_owner_dead(read_, word)) continue;
      return {Status::would_block, {}};
    }
    stalled_pos_ = ~0ULL;
    const bool nothing_outstanding = read_ == head_;
    read_ += h.span;
    if (h.padding) {
      // Give padding back at once when no record is held: a producer may be
      // waiting for exactly these bytes while we wait for it.
      if (nothing_outstanding) release();
      continue;
    }
    return {Status::ok, {data_ + off + layout::kHeaderSize, h.length, h.type}};
  }
}

Peeked RecordReader::peek(Timeout timeout) {
  if (closed_) return {Status::closed, {}};
  // Between sleeps, reap dead producers so end of stream (or peer_dead)
  // follows a kill -9 within about one slice.
  return wait_loop<Peeked>(
      data_ready_, timeout, [&] { return try_peek(); },
      [&] {
        reap_now();
        return Status::ok;
      });
}

PeekedBatch RecordReader::peek_batch(std::span<Record> out, Timeout timeout) {
  if (out.empty()) return {Status::ok, {}};
  Peeked first = peek(timeout);
  if (!first) return {first.status, {}};
  out[0] = first.record;
  const PeekedBatch more = try_peek_batch(out.subspan(1));
  return {Status::ok, out.first(1 + more.records.size())};
}

// The releases the inline release() (ring.h) does not do itself.
void RecordReader::release_slow() {
  if (lossy_) {
    // A record the producer tore is not delivered: intact() drops it.
    if (!intact_lossy()) return;
    head_ = read_;
    // release: pairs with the cursor load in Producer::broadcast_min;
    // WaitPoint::publish, as the inline release().
    space_ready_.publish(*head_word_, head_);
    return;
  }
  release_mpsc();
}

// MPSC release: zero, then publish.
void RecordReader::release_mpsc() {
  zero_released();
  head_ = read_;
  // release: pairs with the head load in Producer::reserve_mpsc;
  // WaitPoint::publish (docs/design/ordering.md#mpsc-commits-and-releases).
  space_ready_.publish(cb_->head, head_);
}

// MPSC: released space is zeroed so that a 0 word below tail always means
// "claimed, header not yet written". First record how far this release
// goes: a consumer that dies while zeroing leaves [head, release_to) to its
// successor, which finishes the zeroing (constructor) instead of reading
// half-zeroed records.
void RecordReader::zero_released() {
  // relaxed + fence: before any zero store; pairs with the RecordReader ctor
  // (docs/design/mpsc.md#the-consumer-zeroes-released-space).
  cb_->release_to.store(read_, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  const std::uint64_t off = head_ & mask_;
  const std::uint64_t n = read_ - head_;
  const std::uint64_t first = std::min(n, capacity_ - off);
  // Plain stores: the producers that next claim these bytes acquire them
  // through the head store in release_mpsc(), which follows.
  std::memset(data_ + off, 0, first);
  if (n > first) std::memset(data_, 0, n - first);
}

Status RecordReader::read(std::vector<std::byte>& out, Timeout timeout) {
  Peeked p = peek(timeout);
  if (!p) return p.status;
  out.assign(p.record.data, p.record.data + p.record.size);
  release();
  return Status::ok;
}

}  // namespace shmring
