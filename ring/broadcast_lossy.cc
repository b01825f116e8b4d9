// Broadcast rings in drop-slow mode (Overrun::drop_slow): the producer
// that never waits, its overwrite announcement and snapshots, and the
// consumer that detects being lapped and resumes. The cursors and the
// waiting mode are broadcast.cc's; docs/design.md, section 11,
// "drop-slow", has the protocol and its proof.
// The wake-up handshake: a seq_cst load below that is "the re-check" of
// data_ready is the waiter's half of the Dekker pair whose proof is
// written once, in docs/design.md section 5 and WaitPoint::publish
// (ring/internal/wait.h); the comments here only say which pair.
#include <atomic>
#include <cstdint>

#include "ring/ring.h"
#include "ring/internal/roles.h"

// ================================================= Overrun::drop_slow
//
// The producer never waits. Before it writes [t, end) it stores
// tail_intent = end (agrona's tail intent): every byte at position p <
// end - capacity is then about to be overwritten. A record at p is intact
// while tail_intent - p <= capacity; the consumer reads a record, then
// (acquire fence) tail_intent, and drops what it read if the record may
// have been torn. A lapped consumer resumes at the oldest record not yet
// overwritten, which the producer tracks by walking its own old headers
// as it overwrites them, and publishes with the cumulative payload bytes
// and records committed before it: the consumer counts its loss exactly
// as the difference to its own cumulative counts (docs/design.md section
// 11, "drop-slow").

namespace shmring {

using detail::kFreeDied;
using layout::BroadcastBlock;

namespace {

struct Snapshot {
  std::uint64_t pos = 0;
  std::uint64_t payload = 0;
  std::uint64_t records = 0;
};

struct Snapshots {
  Snapshot oldest;
  Snapshot start;
};

// The six fields; relaxed (all six): ordered by what the caller does
// around them (the seqlock's fences, or holding the producer role).
void load_fields(const BroadcastBlock* bb, Snapshots* out) {
  out->oldest = {bb->oldest.load(std::memory_order_relaxed),
                 bb->oldest_payload.load(std::memory_order_relaxed),
                 bb->oldest_records.load(std::memory_order_relaxed)};
  out->start = {bb->start.load(std::memory_order_relaxed),
                bb->start_payload.load(std::memory_order_relaxed),
                bb->start_records.load(std::memory_order_relaxed)};
}

// The seqlock reader: false if the producer was writing (odd, or changed
// during the read) `tries` times in a row (a producer killed mid-write
// leaves it odd until the next one fixes it).
bool read_snapshots(const BroadcastBlock* bb, Snapshots* out, int tries) {
  for (int i = 0; i < tries; ++i) {
    // acquire: pairs with the writer's final release store of snap_seq;
    // the fields below are at least that write's.
    const std::uint64_t s1 = bb->snap_seq.load(std::memory_order_acquire);
    if ((s1 & 1) != 0) {
      detail::cpu_relax();
      continue;
    }
    load_fields(bb, out);
    // acquire fence: the field loads above happen before the re-read; if
    // it is unchanged no write overlapped them (pairs with the writer's
    // release fence after its odd store).
    std::atomic_thread_fence(std::memory_order_acquire);
    if (bb->snap_seq.load(std::memory_order_relaxed) == s1) return true;
  }
  return false;
}

bool aligned(std::uint64_t pos) { return (pos & (layout::kRecordAlign - 1)) == 0; }

// True if `pos` is in (from, from + 2^63): ahead of `from`, modulo 2^64.
bool ahead(std::uint64_t from, std::uint64_t pos) {
  return pos != from && pos - from < (1ULL << 63);
}

}  // namespace

// The seqlock writer: snap_seq is a multiple of 4 between writes, 4n + 1
// while the oldest snapshot is written, 4n + 3 while the start snapshot
// is, 4n + 4 after. Readers only need "odd: writing"; the two odd values
// tell a successor which snapshot a writer killed here left complete
// (init_lossy).
void Producer::write_snapshots() {
  BroadcastBlock* bb = bb_;
  // relaxed: only this producer writes it; a value that is not a multiple
  // of 4 was left by a predecessor that died while writing: we finish its
  // turn.
  std::uint64_t s = bb->snap_seq.load(std::memory_order_relaxed);
  s = (s + 3) & ~std::uint64_t{3};
  // relaxed: odd, published to readers by the fence below.
  bb->snap_seq.store(s + 1, std::memory_order_relaxed);
  // release fence: a reader that sees any field below also sees the odd
  // value (pairs with the reader's acquire fence before its re-read).
  std::atomic_thread_fence(std::memory_order_release);
  // relaxed (all six): published by the release store of snap_seq below.
  bb->oldest.store(oldest_, std::memory_order_relaxed);
  bb->oldest_payload.store(oldest_payload_, std::memory_order_relaxed);
  bb->oldest_records.store(oldest_records_, std::memory_order_relaxed);
  // Signal fences (compiler only, no instruction): the stores stay in
  // this program order, and a kill stops the thread between two
  // instructions, so a killed writer leaves every store before that point
  // in the segment and none after it: at 4n + 3, the oldest snapshot is
  // complete.
  std::atomic_signal_fence(std::memory_order_seq_cst);
  // relaxed: still odd for readers; only a successor reads which.
  bb->snap_seq.store(s + 3, std::memory_order_relaxed);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  bb->start.store(counted_, std::memory_order_relaxed);
  bb->start_payload.store(counted_payload_, std::memory_order_relaxed);
  bb->start_records.store(counted_records_, std::memory_order_relaxed);
  // release: pairs with the reader's acquire load of snap_seq.
  bb->snap_seq.store(s + 4, std::memory_order_release);
}

// Adds the records in [counted_, pos) to the cumulative counts. They are
// ours (or our predecessor's, at attach): headers are checked all the same,
// and a walk that meets a bad one gives up at pos (the counts stay what
// they were: consumers' loss figures are then off by what it skipped).
void Producer::count_to(std::uint64_t pos) {
  while (counted_ != pos) {
    const std::uint64_t off = counted_ & mask_;
    // relaxed: our own earlier store (or our predecessor's, published by
    // its tail store, which our attach acquired).
    const layout::Header h = layout::decode(
        std::atomic_ref<std::uint64_t>(
            *reinterpret_cast<std::uint64_t*>(data_ + off))
            .load(std::memory_order_relaxed));
    if (h.span < layout::kHeaderSize || off + h.span > capacity_ ||
        h.span > pos - counted_ || h.busy) {
      counted_ = pos;
      return;
    }
    if (!h.padding) {
      counted_payload_ += h.length;
      ++counted_records_;
    }
    counted_ += h.span;
  }
}

void Producer::init_lossy() {
  // Continue a predecessor's counts and its oldest record if they fit our
  // tail; else start afresh here (a new ring: everything 0). We hold the
  // producer role: nobody else writes the snapshots, and an odd snap_seq
  // is a predecessor killed while writing them, which will never finish.
  // Its value says which snapshot is whole: 4n + 1, the start snapshot
  // (the previous write's; the oldest one is torn), 4n + 3, the oldest
  // (this write's; the start one is torn). Either is a record boundary
  // within a ring of our tail with the counts before it, and serves as
  // both.
  BroadcastBlock* bb = bb_;
  Snapshots s;
  // acquire: pairs with the predecessor's release store of snap_seq (a
  // dead one's stores are ordered before our attach by the role hand-over).
  const std::uint64_t seq = bb->snap_seq.load(std::memory_order_acquire);
  load_fields(bb, &s);
  if ((seq & 3) == 1) s.oldest = s.start;
  if ((seq & 3) == 3) s.start = s.oldest;
  counted_ = tail_;
  counted_payload_ = s.start.payload;
  counted_records_ = s.start.records;
  if (aligned(s.start.pos) && tail_ - s.start.pos <= capacity_) {
    counted_ = s.start.pos;
    count_to(tail_);
  }
  // acquire: pairs with the predecessor's release store of the intent.
  // Bytes up to it may have been written (a record it trimmed or aborted,
  // or never committed), so ours continues from it. A value more than a
  // ring past our tail is no predecessor's: a scribble, ignored.
  const std::uint64_t ti = bb->tail_intent.load(std::memory_order_acquire);
  intent_ = ahead(tail_, ti) && ti - tail_ <= capacity_ ? ti : tail_;
  oldest_ = counted_;
  oldest_payload_ = counted_payload_;
  oldest_records_ = counted_records_;
  if (aligned(s.oldest.pos) && tail_ - s.oldest.pos <= capacity_ &&
      !ahead(counted_, s.oldest.pos)) {
    oldest_ = s.oldest.pos;
    oldest_payload_ = s.oldest.payload;
    oldest_records_ = s.oldest.records;
  }
  if ((seq & 3) == 3) {
    // The torn start snapshot is made whole (ours) before our write moves
    // snap_seq to 4n + 1, which vouches for it: killed in between, we
    // leave 4n + 3 and a whole oldest snapshot, as our predecessor did.
    // relaxed (all three): we hold the role; read by our successor only.
    bb->start.store(counted_, std::memory_order_relaxed);
    bb->start_payload.store(counted_payload_, std::memory_order_relaxed);
    bb->start_records.store(counted_records_, std::memory_order_relaxed);
    // Compiler order only, as in write_snapshots().
    std::atomic_signal_fence(std::memory_order_seq_cst);
  }
  write_snapshots();
}

void Producer::lossy_overwrite(std::uint64_t end) {
  // The intent never goes down: a reservation trimmed by commit() or
  // dropped by abort() may have had all its bytes written, so the span it
  // announced stays announced (a lower intent would vouch for records
  // those bytes tore).
  if (ahead(intent_, end)) intent_ = end;
  // Records committed with commit_deferred() that this write would
  // overwrite are published first: consumers see them (or are lapped).
  if (intent_ - published_ > capacity_) publish();
  count_to(published_);
  // The records whose bytes [intent_ - capacity, ...) we are about to
  // reuse or have reused: walk past them; the first one we keep is the
  // oldest intact record.
  while (intent_ - oldest_ > capacity_) {
    const std::uint64_t off = oldest_ & mask_;
    // relaxed: our own (or our predecessor's) header, as in count_to().
    const layout::Header h = layout::decode(
        std::atomic_ref<std::uint64_t>(
            *reinterpret_cast<std::uint64_t*>(data_ + off))
            .load(std::memory_order_relaxed));
    if (h.span < layout::kHeaderSize || off + h.span > capacity_ ||
        h.span > published_ - oldest_ || h.busy) {
      // Unreadable: the oldest we can vouch for is what we published.
      oldest_ = counted_;
      oldest_payload_ = counted_payload_;
      oldest_records_ = counted_records_;
      break;
    }
    if (!h.padding) {
      oldest_payload_ += h.length;
      ++oldest_records_;
    }
    oldest_ += h.span;
  }
  // The snapshots first, then the intent (release): a consumer that sees
  // this intent (acquire) finds an oldest record this write spares.
  write_snapshots();
  bb_->tail_intent.store(intent_, std::memory_order_release);
  // release fence: the intent is ordered before the record and header
  // stores that follow (they overwrite bytes a consumer may be reading; it
  // reads them, then, after an acquire fence, the intent: a seqlock's
  // reader side, which discards what it read if the intent moved past it).
  std::atomic_thread_fence(std::memory_order_release);
  // The inline fast path must keep coming here: stay "full".
  cached_head_ = end - capacity_;
}

void Producer::close_lossy() {
  count_to(published_);
  write_snapshots();
}

// ---------------------------------------------------------------- consumer

Peeked Consumer::resync() {
  Snapshots s;
  if (!read_snapshots(bb_, &s, 64) ||
      !ahead(read_, s.oldest.pos) || !aligned(s.oldest.pos)) {
    // The producer is mid-update, or its snapshot is older than the lap we
    // saw: look again at the next peek.
    cached_tail_ = read_;
    return {Status::would_block, {}};
  }
  // Exact: both counts are the producer's cumulative ones. Counts below
  // our own (a producer that could not continue its predecessor's, or a
  // peer's scribble) say nothing about the loss: it is unknown, and
  // counted as none rather than as a wrapped difference.
  const std::uint64_t lost_payload = s.oldest.payload - payload_before_read_;
  const std::uint64_t lost_records = s.oldest.records - records_before_read_;
  if (lost_payload < (1ULL << 63) && lost_records < (1ULL << 63)) {
    lost_bytes_ += lost_payload;
    lost_records_ += lost_records;
  }
  head_ = read_ = valid_ = lossy_tail_ = cached_tail_ = s.oldest.pos;
  payload_before_read_ = payload_at_valid_ = s.oldest.payload;
  records_before_read_ = records_at_valid_ = s.oldest.records;
  layout::Cursor& cur = bb_->cursors[cursor_];
  // relaxed: informational (`shm-ring info`).
  cur.lost.store(lost_bytes_, std::memory_order_relaxed);
  // Our position (informational on a drop-slow ring: the producer does
  // not wait for it): WaitPoint::publish, as release().
  space_ready_.publish(*head_word_, head_);
  return {Status::overrun, {}};
}

// drop-slow: start at the producer's start snapshot (a published record
// boundary with the counts before it), so that lost_bytes() is exact; it
// may lie a few records (those since the producer's last reserve) before
// the tail we read. Without a usable snapshot: at the tail, counts from 0.
void Consumer::join_lossy() {
  Snapshots s;
  if (read_snapshots(bb_, &s, 64) && aligned(s.start.pos) &&
      !ahead(read_, s.start.pos)) {
    head_ = read_ = cached_tail_ = s.start.pos;
    payload_before_read_ = payload_at_valid_ = s.start.payload;
    records_before_read_ = records_at_valid_ = s.start.records;
  }
  lossy_tail_ = valid_ = read_;
}

bool Consumer::intact_lossy() {
  if (read_ == valid_) return true;
  // acquire fence: our reads of the records happen before the intent load
  // (pairs with the producer's release fence after its intent store: if we
  // read any byte it wrote after that, we see its intent or a later one).
  std::atomic_thread_fence(std::memory_order_acquire);
  const std::uint64_t ti =
      bb_->tail_intent.load(std::memory_order_relaxed);
  // The producer overwrites in position order, so the first record not
  // yet vouched for is the first it would have torn.
  if (!ahead(valid_, ti) || ti - valid_ <= capacity_) {
    valid_ = read_;
    payload_at_valid_ = payload_before_read_;
    records_at_valid_ = records_before_read_;
    return true;
  }
  // Torn: drop what was peeked since; what was vouched for is released.
  // The next peek finds the lap and counts the dropped records as lost.
  read_ = valid_;
  lossy_tail_ = cached_tail_ = read_;
  payload_before_read_ = payload_at_valid_;
  records_before_read_ = records_at_valid_;
  if (head_ != read_) {
    head_ = read_;
    // As release(): WaitPoint::publish of our position.
    space_ready_.publish(*head_word_, head_);
  }
  return false;
}

Status Consumer::lossy_end_status() {
  // As end_status() (roles.cc), without its index checks: here the tail
  // may legitimately be more than a ring ahead of head_.
  // seq_cst: pairs with Producer::attach's increment.
  if (cb_->producers_seen.load(std::memory_order_seq_cst) == 0) {
    return Status::would_block;
  }
  if (detail::any_producer_registered(cb_)) {
    poll_reap();
    if (detail::any_producer_registered(cb_)) return Status::would_block;
  }
  // seq_cst: the producers' last tail store happens before their slot was
  // freed (seq_cst CAS, read above).
  if (cb_->tail.load(std::memory_order_seq_cst) != read_) return Status::ok;
  if (cb_->producers[0].owner.load(std::memory_order_seq_cst) == kFreeDied) {
    return Status::peer_dead;
  }
  return Status::closed;
}

Peeked Consumer::try_peek_lossy() {
  BroadcastBlock* bb = bb_;
  for (;;) {
    if (read_ == lossy_tail_) {
      // seq_cst: acquire pairs with the producer's tail store; seq_cst for
      // the data_ready re-check when called from wait_loop.
      const std::uint64_t t = cb_->tail.load(std::memory_order_seq_cst);
      if (!aligned(t)) {
        corrupt_at_ = read_ & mask_;
        return {Status::corrupt, {}};
      }
      if (t == read_) {
        const Status s = lossy_end_status();
        if (s != Status::ok) return {s, {}};
        continue;
      }
      if (!ahead(read_, t)) {
        corrupt_at_ = read_ & mask_;
        return {Status::corrupt, {}};
      }
      if (t - read_ > capacity_) {
        // More than a ring ahead: only a lap explains it, and then the
        // intent, stored before that tail, is more than a ring ahead too.
        // Never a walk towards it (a peer's padding records could make
        // that 2^60 passes): a resync to the oldest record, or corrupt.
        // relaxed: the tail load above (acquire) follows the producer's
        // intent store for that tail (its release store of tail is after).
        const std::uint64_t ti =
            bb->tail_intent.load(std::memory_order_relaxed);
        if (!ahead(read_, ti) || ti - read_ <= capacity_) {
          corrupt_at_ = read_ & mask_;
          return {Status::corrupt, {}};
        }
        cached_tail_ = read_;
        // Holding records: they are torn too; intact() drops them first.
        if (read_ != head_) return {Status::overrun, {}};
        return resync();
      }
      // At most a ring to walk: every pass below advances read_ by at
      // least a header towards it.
      lossy_tail_ = t;
    }
    const std::uint64_t off = read_ & mask_;
    // relaxed: validated by the intent below (the producer's header store
    // is published by its tail store, which we acquired).
    const std::uint64_t word =
        std::atomic_ref<std::uint64_t>(
            *reinterpret_cast<std::uint64_t*>(data_ + off))
            .load(std::memory_order_relaxed);
    // acquire fence, then the intent: as in intact().
    std::atomic_thread_fence(std::memory_order_acquire);
    const std::uint64_t ti = bb->tail_intent.load(std::memory_order_relaxed);
    if (ahead(read_, ti) && ti - read_ > capacity_) {
      cached_tail_ = read_;
      // Holding records: they are torn too; intact() drops them first.
      if (read_ != head_) return {Status::overrun, {}};
      return resync();
    }
    const layout::Header h = layout::decode(word);
    if (h.span < layout::kHeaderSize || off + h.span > capacity_ ||
        h.span > lossy_tail_ - read_ || h.busy ||
        (!h.padding && h.span > max_span_)) {
      corrupt_at_ = off;
      return {Status::corrupt, {}};
    }
    const bool nothing_outstanding = read_ == head_;
    read_ += h.span;
    if (h.padding) {
      if (nothing_outstanding) {
        head_ = valid_ = read_;
        // As release(): WaitPoint::publish of our position.
        space_ready_.publish(*head_word_, head_);
      }
      continue;
    }
    payload_before_read_ += h.length;
    ++records_before_read_;
    // The inline fast path must not deliver without these checks.
    cached_tail_ = read_;
    return {Status::ok, {data_ + off + layout::kHeaderSize, h.length, h.type}};
  }
}

}  // namespace shmring
