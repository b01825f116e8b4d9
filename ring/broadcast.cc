// Broadcast rings (Kind::broadcast): the consumer cursors. Taking and
// freeing a cursor, the producer's space rule (the minimum over registered
// cursors) and the reaping of dead consumers. The records themselves are
// SPSC's (ring.h's inline fast paths, Producer::reserve_spsc, try_peek):
// docs/design/broadcast.md has the protocol and its proof. Drop-slow
// mode (the producer that never waits) is broadcast_lossy.cc.
// The wake-up handshake: a seq_cst load below that is "the re-check" of
// space_ready is the waiter's half of the Dekker pair whose
// proof is written once, in docs/design/ordering.md#the-wake-up-handshake and
// WaitPoint::publish (ring/internal/wait.h); the comments here only say which
// pair.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>

#include "ring/broadcast.h"
#include "ring/internal/broadcast_state.h"
#include "ring/internal/liveness.h"
#include "ring/internal/roles.h"
#include "ring/internal/segment_access.h"
#include "ring/names.h"
#include "ring/ring.h"

namespace shmring {

using detail::RecordReader;

using detail::Clock;
using layout::BroadcastBlock;
using layout::ControlBlock;
using layout::Cursor;

namespace {

using detail::degraded;
using detail::kFreeClosed;
using detail::kFreeDied;
using detail::registered;
using detail::roles_gone;

// The cursor table's bound: the validated snapshot, never the live header.
std::uint32_t cursor_count(const Segment& seg) {
  return std::min<std::uint32_t>(seg.max_consumers(), layout::kMaxConsumers);
}

// True while the registration `t` of cursor `i` runs (roles.h).
bool cursor_alive(int semid, std::uint32_t i, const Cursor& cur,
                  ProcessToken t) {
  return detail::role_alive(semid, layout::cursor_sem(i), t, cur.pid_ns);
}

}  // namespace

// ---------------------------------------------------------------- consumer

Result<RecordReader> RecordReader::attach_cursor(Segment& segment,
                                                 ProcessToken me) {
  ControlBlock* cb = detail::control(segment);
  BroadcastBlock* bb = detail::broadcast_block(segment);
  const std::uint32_t n = cursor_count(segment);
  // A ring marked for removal whose set went with it: pid tokens decide
  // (the layout-v1 rule, as for the other roles).
  const bool by_token = degraded(segment);
  if (detail::sem_id(segment) < 0 && !by_token) return roles_gone(segment);
  for (std::uint32_t i = 0; i < n; ++i) {
    Cursor& cur = bb->cursors[i];
    if (by_token) {
      // seq_cst inside: as the CAS below.
      ProcessToken t = 0;
      if (!detail::take_slot_by_token(cur.owner, cur.pid_ns, me, &t)) continue;
      if (registered(t)) {
        // relaxed: statistics only.
        cb->consumers_died.fetch_add(1, std::memory_order_relaxed);
      }
    } else {
      int err = 0;
      if (!take_role(detail::sem_id(segment), layout::cursor_sem(i), &err)) {
        if (err == EIDRM || err == EINVAL) return roles_gone(segment);
        if (err != 0) {
          return Error{Errc::system,
                       std::string("cannot take a consumer cursor: ") +
                           std::strerror(err)};
        }
        continue;  // held by a live consumer
      }
      // The cursor is ours. A first, conservative position (a tail value
      // read now, never ahead of where we will start) before the owner
      // CAS publishes the registration.
      // acquire, relaxed: published by the owner CAS below; P0 of
      // docs/design/broadcast.md#taking-a-cursor-attach-and-joining-mid-stream
      cur.position.store(cb->tail.load(std::memory_order_acquire),
                         std::memory_order_relaxed);
      detail::stamp_slot(cur.pid_ns, me);
      // acquire: pairs with the owner CAS of the cursor's last holder.
      // seq_cst CAS: pairs with the fence in Producer::broadcast_min (ibid.);
      // a reaper may free a dead token meanwhile: the loop retries.
      ProcessToken was = cur.owner.load(std::memory_order_acquire);
      while (!cur.owner.compare_exchange_weak(
          was, me, std::memory_order_seq_cst, std::memory_order_acquire)) {
      }
      if (registered(was)) {
        // A dead consumer's registration, taken over. relaxed: statistics.
        cb->consumers_died.fetch_add(1, std::memory_order_relaxed);
      }
    }
    // relaxed: informational (`shm-ring info`); only the holder writes.
    cur.generation.fetch_add(1, std::memory_order_relaxed);
    cur.lost.store(0, std::memory_order_relaxed);
    // seq_cst: pairs with the load in Producer::broadcast_blocked_status.
    cb->consumers_seen.fetch_add(1, std::memory_order_seq_cst);
    return RecordReader(segment, me, static_cast<int>(i));
  }
  std::string pids;
  for (std::uint32_t i = 0; i < n; ++i) {
    // relaxed: only a pid for the message.
    const pid_t pid =
        by_token
            ? token_pid(bb->cursors[i].owner.load(std::memory_order_relaxed))
            : role_pid(detail::sem_id(segment), layout::cursor_sem(i));
    pids += (i == 0 ? "" : ", ") + std::to_string(pid);
  }
  return Error{Errc::role_taken,
               "all " + std::to_string(n) +
                   " consumer cursors of this broadcast ring are held by live "
                   "consumers (pids " +
                   pids + "); create it with a larger --max-consumers"};
}

// The constructor's part for a broadcast consumer: start at the tail as it
// is after our registration, and publish that as our position (it may be
// ahead of the conservative one attach stored, and so unblock the producer).
void RecordReader::join_cursor() {
  Cursor& cur = cursor_->bb->cursors[cursor_->index];
  head_word_ = &cur.position;
  // seq_cst: after the owner CAS in attach_cursor() (X in broadcast.md).
  head_ = read_ = cached_tail_ = cb_->tail.load(std::memory_order_seq_cst);
  if (lossy_) join_lossy();
  // release: pairs with the position load in Producer::broadcast_min;
  // WaitPoint::publish.
  space_ready_.publish(cur.position, head_);
}

void RecordReader::leave_cursor() {
  Cursor& cur = cursor_->bb->cursors[cursor_->index];
  ProcessToken mine = token_;
  // seq_cst: waker half of space_ready with Producer::broadcast_min's loads.
  // A CAS: a cursor that was reaped and taken over is not ours to free.
  cur.owner.compare_exchange_strong(
      mine, kFreeClosed, std::memory_order_seq_cst, std::memory_order_relaxed);
  // After the owner word: a reaper that still sees our token finds the
  // role held, so a clean close is never counted as a death.
  drop_role(sem_id_,
            layout::cursor_sem(static_cast<std::uint32_t>(cursor_->index)));
  space_ready_.wake();
}

Result<Subscriber> Subscriber::attach(Segment& segment) {
  if (segment.kind() != Kind::broadcast) {
    return Error{Errc::wrong_kind,
                 "ring " + hex_key(segment.key()) +
                     " is not a broadcast ring: a Subscriber reads broadcast "
                     "rings (use Consumer for spsc/mpsc, QueueReader<T> for "
                     "slots)"};
  }
  auto r = RecordReader::attach(segment);
  if (!r) return r.error();
  return Subscriber(std::move(r).value());
}

int RecordReader::cursor_index() const { return cursor_ ? cursor_->index : -1; }

std::uint64_t RecordReader::lost_bytes() const {
  return cursor_ ? cursor_->lost_bytes : 0;
}

std::uint64_t RecordReader::lost_records() const {
  return cursor_ ? cursor_->lost_records : 0;
}

// ---------------------------------------------------------------- producer

std::uint64_t Producer::broadcast_min() {
  BroadcastBlock* bb = fan_->bb;
  // seq_cst: pairs with RecordReader::attach_cursor's CAS; space_ready re-check
  // (docs/design/broadcast.md#taking-a-cursor-attach-and-joining-mid-stream)
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // A position below cached_head_ is only a joiner's conservative first
  // position (it starts at or after the old minimum, see above) or a
  // scribble; one above the tail, or misaligned, only a scribble: each
  // counts as cached_head_, so our positions stay sane whatever a peer
  // writes (it can stall us, never make us report corrupt or overrun).
  const std::uint64_t floor_lag = tail_ - cached_head_;
  std::uint64_t lag = 0;
  bool any = false;
  for (std::uint32_t i = 0; i < fan_->max_consumers; ++i) {
    const Cursor& cur = bb->cursors[i];
    // seq_cst: pairs with the owner CAS in RecordReader::attach_cursor.
    const ProcessToken t = cur.owner.load(std::memory_order_seq_cst);
    if (!registered(t)) continue;
    any = true;
    // seq_cst: space_ready re-check; pairs with RecordReader::release.
    const std::uint64_t p = cur.position.load(std::memory_order_seq_cst);
    // Misaligned: a scribble too; counts as the old minimum.
    const std::uint64_t l =
        (p & (layout::kRecordAlign - 1)) != 0 ? floor_lag : tail_ - p;
    lag = std::max(lag, std::min(l, floor_lag));
  }
  // No registered consumer: no space. Nobody could read what we write,
  // and a consumer that attaches starts at the tail anyway.
  const std::uint64_t m = any ? tail_ - lag : tail_ - capacity_;
  // relaxed: an informational low-water mark (`shm-ring info`).
  cb_->head.store(m, std::memory_order_relaxed);
  return m;
}

int Producer::reap_dead_consumers() {
  BroadcastBlock* bb = fan_->bb;
  int reaped = 0;
  for (std::uint32_t i = 0; i < fan_->max_consumers; ++i) {
    Cursor& cur = bb->cursors[i];
    // acquire: pairs with the consumer's owner CAS.
    ProcessToken t = cur.owner.load(std::memory_order_acquire);
    if (!registered(t) || cursor_alive(sem_id_, i, cur, t)) continue;
    // seq_cst: one of racing reapers (or a taker of the cursor) wins.
    if (!cur.owner.compare_exchange_strong(t, kFreeDied,
                                           std::memory_order_seq_cst)) {
      continue;
    }
    // relaxed: statistics only (`shm-ring info`).
    cb_->consumers_died.fetch_add(1, std::memory_order_relaxed);
    ++reaped;
  }
  return reaped;
}

void Producer::reap_dead_consumers_throttled() {
  // A producer that only polls try_reserve() on a full ring: look at the
  // clock every 256th time, reap at most once per sleep slice.
  if ((++fan_->full_polls & 255) != 1) return;
  const auto now = Clock::now();
  if (now - fan_->last_reap < detail::kSleepSlice) return;
  fan_->last_reap = now;
  reap_dead_consumers();
}

Status Producer::broadcast_blocked_status() {
  // Dead consumers first, whatever the options: a killed subscriber must
  // not hold the producer for longer than one slice.
  fan_->last_reap = Clock::now();
  reap_dead_consumers();
  BroadcastBlock* bb = fan_->bb;
  for (std::uint32_t i = 0; i < fan_->max_consumers; ++i) {
    // acquire: pairs with the consumer's owner CAS.
    if (registered(bb->cursors[i].owner.load(std::memory_order_acquire))) {
      return Status::ok;  // a live consumer holds the ring: wait for it
    }
  }
  if (options_.wait_for_consumer) return Status::ok;
  // acquire: pairs with the increment in RecordReader::attach_cursor.
  if (cb_->consumers_seen.load(std::memory_order_acquire) == 0) {
    return Status::ok;  // no consumer yet: wait for one, like a FIFO
  }
  return Status::peer_dead;
}

bool Producer::any_consumer_alive() const {
  BroadcastBlock* bb = fan_->bb;
  for (std::uint32_t i = 0; i < fan_->max_consumers; ++i) {
    // acquire: pairs with the consumer's owner CAS.
    const ProcessToken t = bb->cursors[i].owner.load(std::memory_order_acquire);
    if (cursor_alive(sem_id_, i, bb->cursors[i], t)) return true;
  }
  return false;
}

}  // namespace shmring
