// What a Segment tells about its ring without taking a role: the snapshot
// behind `shm-ring info`/`ls` (info()), the backlog named in messages
// (unread_records(), used_bytes()), whether a segment looks like a ring
// (looks_like_ring(), for listings) and whether it is marked for removal.
// The moving counters and record walks behind `shm-ring watch` (counters(),
// walk_records()) are here too. Every load here is a diagnostic snapshot:
// nothing is written and no record is read through it.
#include <sys/ipc.h>
#include <sys/shm.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "ring/internal/liveness.h"
#include "ring/internal/sysv.h"
#include "ring/segment.h"

namespace shmring {

bool Segment::removed() const { return shm_removed(shmid_); }

std::optional<std::uint64_t> Segment::unread_records() const {
  // A snapshot for messages; nothing is written.
  // acquire (both, each header): pair with WaitPoint::publish, reserve_mpsc.
  const std::uint64_t head = control_->head.load(std::memory_order_acquire);
  const std::uint64_t tail = control_->tail.load(std::memory_order_acquire);
  if (kind_ == Kind::slots) {
    // Positions count elements; there are no headers to walk.
    if (!layout::slot_positions_sane(head, tail, slot_count_)) {
      return std::nullopt;
    }
    return tail - head;
  }
  if (!layout::positions_sane(head, tail, capacity_)) return std::nullopt;
  std::uint64_t n = 0;
  std::uint64_t steps = 0;
  for (std::uint64_t pos = head; pos < tail; ++steps) {
    if (steps >= (1u << 24)) return std::nullopt;
    const std::uint64_t off = pos & (capacity_ - 1);
    const std::uint64_t word =
        std::atomic_ref<std::uint64_t>(
            *reinterpret_cast<std::uint64_t*>(data_ + off))
            .load(std::memory_order_acquire);
    const layout::Header h = layout::decode(word);
    if (h.span < layout::kHeaderSize || off + h.span > capacity_ ||
        pos + h.span > tail) {
      return std::nullopt;
    }
    if (!h.padding) ++n;
    pos += h.span;
  }
  return n;
}

std::uint64_t Segment::used_bytes() const {
  // relaxed: a display-only snapshot; no record is read through it.
  const std::uint64_t head = control_->head.load(std::memory_order_relaxed);
  const std::uint64_t tail = control_->tail.load(std::memory_order_relaxed);
  return tail > head && tail - head <= capacity_ ? tail - head : 0;
}

bool Segment::looks_like_ring(int shmid, std::uint64_t size) {
  if (size < layout::kDataOffset + layout::kMinCapacity) return false;
  void* p = ::shmat(shmid, nullptr, SHM_RDONLY);
  // shmat's failure value is (void*)-1; let attach_id say why.
  if (p == reinterpret_cast<void*>(-1))  // NOLINT(performance-no-int-to-ptr)
    return true;
  std::uint64_t magic = 0;
  std::memcpy(&magic, p, sizeof magic);
  ::shmdt(p);
  return magic == layout::kMagic;
}

SegmentInfo Segment::info() const {
  SegmentInfo i;
  const auto* cb = control_;
  i.key = key_;
  i.shmid = shmid_;
  i.kind = cb->kind;
  i.version = cb->version;
  i.capacity = cb->capacity;
  i.segment_size = cb->segment_size;
  i.wait = cb->wait_strategy;
  i.max_producers = cb->max_producers;
  i.slot_size = slot_size_;
  i.slot_count = slot_count_;
  i.hugepages = (cb->flags & layout::kFlagHugePages) != 0;
  // relaxed: a diagnostic snapshot.
  i.wake_mode = static_cast<layout::WakeMode>(
      cb->wake.mode.load(std::memory_order_relaxed));
  i.creator_pid = cb->creator_pid;
  // The creator's token was taken in the creator's PID namespace.
  i.creator_alive =
      cb->pid_namespace == 0 || cb->pid_namespace == pid_namespace_id()
          ? alive(cb->creator_token)
          : true;
  i.sem_id = sem_id_ >= 0 ? sem_id_ : cb->sem_id;
  i.sem_present = sem_id_ >= 0 && sem_count(sem_id_) == layout::kSemCount;
  // Held role semaphore = alive; pid tokens only if the set is gone.
  // relaxed (the stamps): a diagnostic snapshot.
  auto role_alive = [&](int num, ProcessToken t,
                        const std::atomic<std::uint64_t>& pid_ns) {
    const RoleState r = role_state(sem_id_, num);
    if (r == RoleState::unknown) {
      return alive(t, pid_ns.load(std::memory_order_relaxed));
    }
    return r == RoleState::held;
  };
  // relaxed (every load below): a diagnostic snapshot only.
  i.head = cb->head.load(std::memory_order_relaxed);
  i.tail = cb->tail.load(std::memory_order_relaxed);
  if (kind_ == Kind::slots) {
    // Positions count elements.
    i.used_bytes =
        i.tail - i.head <= slot_count_ ? (i.tail - i.head) * slot_size_ : 0;
  } else {
    i.used_bytes = i.tail - i.head <= i.capacity ? i.tail - i.head : 0;
  }
  const ProcessToken c = cb->consumer.owner.load(std::memory_order_relaxed);
  i.consumer_pid = token_pid(c);
  i.consumer_alive =
      c != 0 && role_alive(layout::consumer_sem(), c, cb->consumer.pid_ns);
  for (std::uint32_t s = 0; s < cb->max_producers && s < layout::kMaxProducers;
       ++s) {
    const ProcessToken t =
        cb->producers[s].owner.load(std::memory_order_relaxed);
    if (t != 0)
      i.producers.push_back(
          {static_cast<int>(s), token_pid(t),
           role_alive(layout::producer_sem(s), t, cb->producers[s].pid_ns)});
  }
  i.producers_seen = cb->producers_seen.load(std::memory_order_relaxed);
  i.producers_died = cb->producers_died.load(std::memory_order_relaxed);
  i.consumers_seen = cb->consumers_seen.load(std::memory_order_relaxed);
  i.records_reclaimed = cb->records_reclaimed.load(std::memory_order_relaxed);
  if (broadcast_ != nullptr) {
    i.max_consumers = max_consumers_;
    i.overrun = overrun_;
    for (std::uint32_t c = 0; c < max_consumers_ && c < layout::kMaxConsumers;
         ++c) {
      const auto& cur = broadcast_->cursors[c];
      // relaxed: a diagnostic snapshot, as above.
      const ProcessToken t = cur.owner.load(std::memory_order_relaxed);
      if (t <= 1) continue;  // free (closed, or its holder died)
      const std::uint64_t pos = cur.position.load(std::memory_order_relaxed);
      i.cursors.push_back({static_cast<int>(c), token_pid(t),
                           role_alive(layout::cursor_sem(c), t, cur.pid_ns),
                           pos, i.tail - pos <= i.capacity ? i.tail - pos : 0,
                           cur.lost.load(std::memory_order_relaxed)});
    }
    // The slowest registered consumer's backlog is what holds the ring.
    i.used_bytes = 0;
    for (const auto& cur : i.cursors) {
      i.used_bytes = std::max(i.used_bytes, cur.lag);
    }
  }
  struct shmid_ds ds {};
  if (::shmctl(shmid_, IPC_STAT, &ds) == 0) {
    i.mode = ds.shm_perm.mode & 0777;
    i.owner_uid = ds.shm_perm.uid;
    i.attach_count = ds.shm_nattch;
    i.marked_for_removal = (ds.shm_perm.mode & SHM_DEST) != 0;
  }
  return i;
}
RingCounters Segment::counters() const {
  RingCounters c;
  const auto* cb = control_;
  // relaxed (all of this function but the seqlock): a display snapshot only.
  c.head = cb->head.load(std::memory_order_relaxed);
  c.tail = cb->tail.load(std::memory_order_relaxed);
  c.consumer_waiting =
      cb->data_ready.waiters.load(std::memory_order_relaxed) != 0;
  c.producer_waiting =
      cb->space_ready.waiters.load(std::memory_order_relaxed) != 0;
  if (kind_ == Kind::slots) {
    c.sane = layout::slot_positions_sane(c.head, c.tail, slot_count_);
  } else if (broadcast_ == nullptr) {
    c.sane = layout::positions_sane(c.head, c.tail, capacity_);
  } else {
    c.sane = (c.tail & (layout::kRecordAlign - 1)) == 0;
  }
  if (broadcast_ == nullptr) return c;
  for (std::uint32_t i = 0; i < max_consumers_ && i < layout::kMaxConsumers;
       ++i) {
    const auto& cur = broadcast_->cursors[i];
    const ProcessToken t = cur.owner.load(std::memory_order_relaxed);
    if (t <= 1) continue;  // free (closed, or its holder died)
    c.cursors.push_back({static_cast<int>(i), token_pid(t),
                         cur.generation.load(std::memory_order_relaxed),
                         cur.position.load(std::memory_order_relaxed),
                         cur.lost.load(std::memory_order_relaxed)});
    const std::uint64_t p = c.cursors.back().position;
    c.sane = c.sane && (p & (layout::kRecordAlign - 1)) == 0 &&
             (overrun_ == Overrun::drop_slow || c.tail - p <= capacity_);
  }
  if (overrun_ != Overrun::drop_slow) return c;
  // The seqlock reader of the producer's snapshots (its writer is
  // Producer::write_snapshots, broadcast_lossy.cc); a few tries, then
  // published = false (a producer killed mid-write leaves it odd).
  const auto* bb = broadcast_;
  for (int i = 0; i < 4 && !c.published; ++i) {
    // acquire: pairs with the last store in Producer::write_snapshots.
    const std::uint64_t s1 = bb->snap_seq.load(std::memory_order_acquire);
    if ((s1 & 1) != 0) continue;
    // relaxed (all three): ordered by the acquire load and fence around them.
    c.published_pos = bb->start.load(std::memory_order_relaxed);
    c.published_payload = bb->start_payload.load(std::memory_order_relaxed);
    c.published_records = bb->start_records.load(std::memory_order_relaxed);
    // acquire fence: pairs with the release fence in write_snapshots().
    std::atomic_thread_fence(std::memory_order_acquire);
    // relaxed: after the fence; unchanged means no write overlapped.
    c.published = bb->snap_seq.load(std::memory_order_relaxed) == s1;
  }
  return c;
}

RecordWalk Segment::walk_records(std::uint64_t from,
                                 std::optional<std::uint64_t> to,
                                 std::uint64_t max_steps) const {
  RecordWalk w;
  w.from = from;
  w.end = from;
  if (kind_ == Kind::slots) return w;
  const auto* cb = control_;
  // acquire: pairs with Producer::publish (SPSC, broadcast), reserve_mpsc.
  const std::uint64_t tail = cb->tail.load(std::memory_order_acquire);
  bool bad = (from & (layout::kRecordAlign - 1)) != 0;
  // A reader more than a ring behind (a lapped drop-slow cursor) has no
  // intact header to start from: not intact, not corrupt.
  const bool lapped = tail - from > capacity_;
  std::uint64_t pos = from;
  for (std::uint64_t steps = 0;
       !bad && !lapped && pos != tail && steps < max_steps; ++steps) {
    if (to && pos == *to) break;
    const std::uint64_t off = pos & (capacity_ - 1);
    // acquire: pairs with Producer::commit_deferred_slow (MPSC) or the tail.
    const std::uint64_t word =
        std::atomic_ref<std::uint64_t>(
            *reinterpret_cast<std::uint64_t*>(data_ + off))
            .load(std::memory_order_acquire);
    const layout::Header h = layout::decode(word);
    if (kind_ == Kind::mpsc && (word == 0 || h.busy)) break;  // a claim
    if (h.busy || h.span < layout::kHeaderSize || off + h.span > capacity_ ||
        tail - pos < h.span) {
      bad = true;
      break;
    }
    if (!h.padding) {
      ++w.records;
      w.payload += h.length;
    }
    pos += h.span;
  }
  w.end = pos;
  w.reached_to = to && pos == *to;
  // Was any header read rewritten before now? Only once a reader released
  // its position can a producer rewrite it (overwrite it, or zero it on
  // MPSC); drop-slow producers announce each rewrite in tail_intent.
  // acquire fence: the header loads above happen before the loads below.
  std::atomic_thread_fence(std::memory_order_acquire);
  bool intact = !lapped;
  if (kind_ != Kind::broadcast) {
    // relaxed: ordered by the fence above.
    const std::uint64_t head = cb->head.load(std::memory_order_relaxed);
    intact = intact && from - head <= capacity_;  // head <= from
  } else if (overrun_ == Overrun::drop_slow) {
    // relaxed: ordered by the fence above.
    const std::uint64_t ti =
        broadcast_->tail_intent.load(std::memory_order_relaxed);
    intact = intact && ti - from <= capacity_;
  } else {
    // The producer overwrites `from` only once every registered cursor is
    // past it; with none registered it writes nothing.
    bool held = true;
    for (std::uint32_t i = 0; i < max_consumers_ && i < layout::kMaxConsumers;
         ++i) {
      const auto& cur = broadcast_->cursors[i];
      // relaxed: ordered by the fence above.
      if (cur.owner.load(std::memory_order_relaxed) <= 1) continue;
      held = false;
      if (from - cur.position.load(std::memory_order_relaxed) <= capacity_) {
        held = true;
        break;
      }
    }
    intact = intact && held;
  }
  w.intact = intact;
  w.corrupt = intact && bad;
  return w;
}

}  // namespace shmring
