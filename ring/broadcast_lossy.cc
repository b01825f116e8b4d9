// Broadcast rings in drop-slow mode (Overrun::drop_slow): the producer
// that never waits, its overwrite announcement and snapshots, and the
// consumer that detects being lapped and resumes. The cursors and the
// waiting mode are broadcast.cc's;
// docs/design/broadcast.md#drop-slow-the-producer-never-waits "drop-slow", has
// the protocol and its proof. The wake-up handshake: a seq_cst load below that
// is "the re-check" of data_ready is the waiter's half of the Dekker pair whose
// proof is written once, in docs/design/ordering.md#the-wake-up-handshake and
// WaitPoint::publish (ring/internal/wait.h); the comments here only say which
// pair.
#include <atomic>
#include <cstdint>

#include "ring/internal/broadcast_state.h"
#include "ring/internal/roles.h"
#include "ring/ring.h"

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
// as the difference to its own cumulative counts
// (docs/design/broadcast.md#exact-loss).

namespace shmring {

using detail::RecordReader;

using detail::kFreeDied;
using layout::BroadcastBlock;

namespace {

using detail::Snapshot;

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
    // acquire: pairs with the final release store of Producer::write_snapshots
    const std::uint64_t s1 = bb->snap_seq.load(std::memory_order_acquire);
    if ((s1 & 1) != 0) {
      detail::cpu_relax();
      continue;
    }
    load_fields(bb, out);
    // acquire fence: pairs with the release fence in write_snapshots().
    std::atomic_thread_fence(std::memory_order_acquire);
    // relaxed: after the fence; unchanged means no write overlapped the loads.
    if (bb->snap_seq.load(std::memory_order_relaxed) == s1) return true;
  }
  return false;
}

bool aligned(std::uint64_t pos) {
  return (pos & (layout::kRecordAlign - 1)) == 0;
}

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
  BroadcastBlock* bb = fan_->bb;
  // relaxed: only this producer writes it.
  // A value that is not a multiple of 4 was left by a predecessor that died
  // while writing: we finish its turn.
  std::uint64_t s = bb->snap_seq.load(std::memory_order_relaxed);
  s = (s + 3) & ~std::uint64_t{3};
  // relaxed: odd, published to readers by the fence below.
  bb->snap_seq.store(s + 1, std::memory_order_relaxed);
  // release fence: pairs with the acquire fence in read_snapshots().
  std::atomic_thread_fence(std::memory_order_release);
  // relaxed (all six): published by the release store of snap_seq below.
  bb->oldest.store(fan_->oldest.pos, std::memory_order_relaxed);
  bb->oldest_payload.store(fan_->oldest.payload, std::memory_order_relaxed);
  bb->oldest_records.store(fan_->oldest.records, std::memory_order_relaxed);
  // signal fences (compiler only): no other thread; kill-consistent order
  // (docs/design/broadcast.md#a-killed-snapshot-writer).
  std::atomic_signal_fence(std::memory_order_seq_cst);
  // relaxed: still odd for readers; only a successor reads which.
  bb->snap_seq.store(s + 3, std::memory_order_relaxed);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  // relaxed (all three): published by the release store of snap_seq below.
  bb->start.store(fan_->counted.pos, std::memory_order_relaxed);
  bb->start_payload.store(fan_->counted.payload, std::memory_order_relaxed);
  bb->start_records.store(fan_->counted.records, std::memory_order_relaxed);
  // release: pairs with the reader's acquire load of snap_seq.
  bb->snap_seq.store(s + 4, std::memory_order_release);
}

// Adds the records in [counted, pos) to the cumulative counts. They are
// ours (or our predecessor's, at attach): headers are checked all the same,
// and a walk that meets a bad one gives up at pos (the counts stay what
// they were: consumers' loss figures are then off by what it skipped).
void Producer::count_to(std::uint64_t pos) {
  while (fan_->counted.pos != pos) {
    const std::uint64_t off = fan_->counted.pos & mask_;
    // relaxed: our own store, or our predecessor's (acquired at our attach).
    const layout::Header h =
        layout::decode(std::atomic_ref<std::uint64_t>(
                           *reinterpret_cast<std::uint64_t*>(data_ + off))
                           .load(std::memory_order_relaxed));
    if (h.span < layout::kHeaderSize || off + h.span > capacity_ ||
        h.span > pos - fan_->counted.pos || h.busy) {
      fan_->counted.pos = pos;
      return;
    }
    if (!h.padding) {
      fan_->counted.payload += h.length;
      ++fan_->counted.records;
    }
    fan_->counted.pos += h.span;
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
  BroadcastBlock* bb = fan_->bb;
  Snapshots s;
  // acquire: pairs with the predecessor's write_snapshots (or role handover).
  const std::uint64_t seq = bb->snap_seq.load(std::memory_order_acquire);
  load_fields(bb, &s);
  if ((seq & 3) == 1) s.oldest = s.start;
  if ((seq & 3) == 3) s.start = s.oldest;
  fan_->counted.pos = tail_;
  fan_->counted.payload = s.start.payload;
  fan_->counted.records = s.start.records;
  if (aligned(s.start.pos) && tail_ - s.start.pos <= capacity_) {
    fan_->counted.pos = s.start.pos;
    count_to(tail_);
  }
  // acquire: pairs with the predecessor's intent store in lossy_overwrite.
  // Bytes up to it may have been written (a record it trimmed or aborted,
  // or never committed), so ours continues from it. A value more than a
  // ring past our tail is no predecessor's: a scribble, ignored.
  const std::uint64_t ti = bb->tail_intent.load(std::memory_order_acquire);
  fan_->intent = ahead(tail_, ti) && ti - tail_ <= capacity_ ? ti : tail_;
  fan_->oldest = fan_->counted;
  if (aligned(s.oldest.pos) && tail_ - s.oldest.pos <= capacity_ &&
      !ahead(fan_->counted.pos, s.oldest.pos)) {
    fan_->oldest = s.oldest;
  }
  if ((seq & 3) == 3) {
    // The torn start snapshot is made whole (ours) before our write moves
    // snap_seq to 4n + 1, which vouches for it: killed in between, we
    // leave 4n + 3 and a whole oldest snapshot, as our predecessor did.
    // relaxed (all three): we hold the role; read by our successor only.
    bb->start.store(fan_->counted.pos, std::memory_order_relaxed);
    bb->start_payload.store(fan_->counted.payload, std::memory_order_relaxed);
    bb->start_records.store(fan_->counted.records, std::memory_order_relaxed);
    // signal fence: compiler order only, as in write_snapshots().
    std::atomic_signal_fence(std::memory_order_seq_cst);
  }
  write_snapshots();
}

void Producer::lossy_overwrite(std::uint64_t end) {
  // The intent never goes down: a reservation trimmed by commit() or
  // dropped by abort() may have had all its bytes written, so the span it
  // announced stays announced (a lower intent would vouch for records
  // those bytes tore).
  if (ahead(fan_->intent, end)) fan_->intent = end;
  // Records committed with commit_deferred() that this write would
  // overwrite are published first: consumers see them (or are lapped).
  if (fan_->intent - published_ > capacity_) publish();
  count_to(published_);
  // The records whose bytes [fan_->intent - capacity, ...) we are about to
  // reuse or have reused: walk past them; the first one we keep is the
  // oldest intact record.
  while (fan_->intent - fan_->oldest.pos > capacity_) {
    const std::uint64_t off = fan_->oldest.pos & mask_;
    // relaxed: our own (or our predecessor's) header, as in count_to().
    const layout::Header h =
        layout::decode(std::atomic_ref<std::uint64_t>(
                           *reinterpret_cast<std::uint64_t*>(data_ + off))
                           .load(std::memory_order_relaxed));
    if (h.span < layout::kHeaderSize || off + h.span > capacity_ ||
        h.span > published_ - fan_->oldest.pos || h.busy) {
      // Unreadable: the oldest we can vouch for is what we published.
      fan_->oldest = fan_->counted;
      break;
    }
    if (!h.padding) {
      fan_->oldest.payload += h.length;
      ++fan_->oldest.records;
    }
    fan_->oldest.pos += h.span;
  }
  // The snapshots first, then the intent.
  write_snapshots();
  // release: pairs with the acquire load in init_lossy (a successor).
  fan_->bb->tail_intent.store(fan_->intent, std::memory_order_release);
  // release fence: pairs with the acquire fence in RecordReader::intact_lossy
  // (docs/design/broadcast.md#never-a-torn-record).
  std::atomic_thread_fence(std::memory_order_release);
  // The inline fast path must keep coming here: stay "full".
  cached_head_ = end - capacity_;
}

void Producer::close_lossy() {
  count_to(published_);
  write_snapshots();
}

// ---------------------------------------------------------------- consumer

Peeked RecordReader::resync() {
  Snapshots s;
  if (!read_snapshots(cursor_->bb, &s, 64) || !ahead(read_, s.oldest.pos) ||
      !aligned(s.oldest.pos)) {
    // The producer is mid-update, or its snapshot is older than the lap we
    // saw: look again at the next peek.
    cached_tail_ = read_;
    return {Status::would_block, {}};
  }
  // Exact: both counts are the producer's cumulative ones. Counts below
  // our own (a producer that could not continue its predecessor's, or a
  // peer's scribble) say nothing about the loss: it is unknown, and
  // counted as none rather than as a wrapped difference.
  const std::uint64_t lost_payload =
      s.oldest.payload - cursor_->payload_before_read;
  const std::uint64_t lost_records =
      s.oldest.records - cursor_->records_before_read;
  if (lost_payload < (1ULL << 63) && lost_records < (1ULL << 63)) {
    cursor_->lost_bytes += lost_payload;
    cursor_->lost_records += lost_records;
  }
  head_ = read_ = cursor_->valid = cursor_->lossy_tail = cached_tail_ =
      s.oldest.pos;
  cursor_->payload_before_read = cursor_->payload_at_valid = s.oldest.payload;
  cursor_->records_before_read = cursor_->records_at_valid = s.oldest.records;
  layout::Cursor& cur = cursor_->bb->cursors[cursor_->index];
  // relaxed: informational (`shm-ring info`).
  cur.lost.store(cursor_->lost_bytes, std::memory_order_relaxed);
  // release: informational here (the producer does not wait for it);
  // WaitPoint::publish, as RecordReader::release.
  space_ready_.publish(*head_word_, head_);
  return {Status::overrun, {}};
}

// drop-slow: start at the producer's start snapshot (a published record
// boundary with the counts before it), so that lost_bytes() is exact; it
// may lie a few records (those since the producer's last reserve) before
// the tail we read. Without a usable snapshot: at the tail, counts from 0.
void RecordReader::join_lossy() {
  Snapshots s;
  if (read_snapshots(cursor_->bb, &s, 64) && aligned(s.start.pos) &&
      !ahead(read_, s.start.pos)) {
    head_ = read_ = cached_tail_ = s.start.pos;
    cursor_->payload_before_read = cursor_->payload_at_valid = s.start.payload;
    cursor_->records_before_read = cursor_->records_at_valid = s.start.records;
  }
  cursor_->lossy_tail = cursor_->valid = read_;
}

bool RecordReader::intact_lossy() {
  if (read_ == cursor_->valid) return true;
  // acquire fence: pairs with the release fence in Producer::lossy_overwrite.
  std::atomic_thread_fence(std::memory_order_acquire);
  // relaxed: ordered by the fence above.
  const std::uint64_t ti =
      cursor_->bb->tail_intent.load(std::memory_order_relaxed);
  // The producer overwrites in position order, so the first record not
  // yet vouched for is the first it would have torn.
  if (!ahead(cursor_->valid, ti) || ti - cursor_->valid <= capacity_) {
    cursor_->valid = read_;
    cursor_->payload_at_valid = cursor_->payload_before_read;
    cursor_->records_at_valid = cursor_->records_before_read;
    return true;
  }
  // Torn: drop what was peeked since; what was vouched for is released.
  // The next peek finds the lap and counts the dropped records as lost.
  read_ = cursor_->valid;
  cursor_->lossy_tail = cached_tail_ = read_;
  cursor_->payload_before_read = cursor_->payload_at_valid;
  cursor_->records_before_read = cursor_->records_at_valid;
  if (head_ != read_) {
    head_ = read_;
    // As release(): WaitPoint::publish of our position.
    space_ready_.publish(*head_word_, head_);
  }
  return false;
}

Status RecordReader::lossy_end_status() {
  // As end_status() (roles.cc), without its index checks: here the tail
  // may legitimately be more than a ring ahead of head_.
  if (const Status s = producers_gone(); s != Status::ok) return s;
  // seq_cst: pairs with the slot-freeing CAS in ProducerRole::leave.
  if (cb_->tail.load(std::memory_order_seq_cst) != read_) return Status::ok;
  // seq_cst: as in ConsumerRole::how_stream_ended.
  if (cb_->producers[0].owner.load(std::memory_order_seq_cst) == kFreeDied) {
    return Status::peer_dead;
  }
  return Status::closed;
}

Peeked RecordReader::try_peek_lossy() {
  BroadcastBlock* bb = cursor_->bb;
  for (;;) {
    if (read_ == cursor_->lossy_tail) {
      // seq_cst: data_ready re-check; pairs with Producer::publish.
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
        // relaxed: ordered by the tail load above (the intent precedes tail).
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
      cursor_->lossy_tail = t;
    }
    const std::uint64_t off = read_ & mask_;
    // relaxed: published by the tail store we acquired; checked by the intent.
    const std::uint64_t word =
        std::atomic_ref<std::uint64_t>(
            *reinterpret_cast<std::uint64_t*>(data_ + off))
            .load(std::memory_order_relaxed);
    // acquire fence, then the intent (relaxed): as in intact_lossy().
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
        h.span > cursor_->lossy_tail - read_ || h.busy ||
        (!h.padding && h.span > max_span_)) {
      corrupt_at_ = off;
      return {Status::corrupt, {}};
    }
    const bool nothing_outstanding = read_ == head_;
    read_ += h.span;
    if (h.padding) {
      if (nothing_outstanding) {
        head_ = cursor_->valid = read_;
        // As release(): WaitPoint::publish of our position.
        space_ready_.publish(*head_word_, head_);
      }
      continue;
    }
    cursor_->payload_before_read += h.length;
    ++cursor_->records_before_read;
    // The inline fast path must not deliver without these checks.
    cached_tail_ = read_;
    return {Status::ok, {data_ + off + layout::kHeaderSize, h.length, h.type}};
  }
}

}  // namespace shmring
