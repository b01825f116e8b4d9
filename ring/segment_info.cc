// What a Segment tells about its ring without taking a role: the snapshot
// behind `shm-ring info`/`ls` (info()), the backlog named in messages
// (unread_records(), used_bytes()), whether a segment looks like a ring
// (looks_like_ring(), for listings) and whether it is marked for removal.
// Every load here is a diagnostic snapshot: nothing is written and no
// record is read through it.
#include <sys/ipc.h>
#include <sys/shm.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "ring/liveness.h"
#include "ring/segment.h"
#include "ring/sysv.h"

namespace shmring {

bool Segment::removed() const {
  struct shmid_ds ds {};
  if (::shmctl(shmid_, IPC_STAT, &ds) != 0) return true;
  return (ds.shm_perm.mode & SHM_DEST) != 0;
}

std::optional<std::uint64_t> Segment::unread_records() const {
  // acquire on both positions and on each header: pairs with the
  // consumer's head store and the producers' tail (SPSC) or header commit
  // (MPSC) stores, so every header before `tail` is the one its producer
  // wrote. Nothing is written: a snapshot for messages.
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
  // relaxed: a diagnostic snapshot, no data is read through these.
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

}  // namespace shmring
