// The role protocol: attach and close for both sides, liveness of role
// holders, reaping of dead producers, and the end-of-stream decision that
// depends on them (roles.h; docs/design/liveness.md,
// docs/design/crash-tables.md). The wake-up handshake: a seq_cst load below
// that is "the re-check" of data_ready (end of stream) is the waiter's half of
// the Dekker pair whose proof is written once, in
// docs/design/ordering.md#the-wake-up-handshake and WaitPoint::publish
// (ring/internal/wait.h); the comments here only say which pair.
#include "ring/internal/roles.h"

#include <cerrno>
#include <cstring>
#include <string>

#include "ring/internal/broadcast_state.h"
#include "ring/internal/segment_access.h"
#include "ring/internal/sysv.h"
#include "ring/internal/wait_fd.h"
#include "ring/internal/wait_loop.h"
#include "ring/names.h"
#include "ring/ring.h"

namespace shmring {

using layout::ControlBlock;

namespace detail {

// True while the registration `t` in role semaphore `num` runs: the role
// semaphore is held (the kernel drops it when the holder's process exits).
// Only if the ring's set is gone (removed by hand, or the ring removed
// while attached) do pid tokens decide instead, and only tokens of our own
// PID namespace (liveness.h, alive(t, stamp)).
bool role_alive(int semid, int num, ProcessToken t,
                const std::atomic<std::uint64_t>& pid_ns) {
  if (!registered(t)) return false;
  switch (role_state(semid, num)) {
    case RoleState::held:
      return true;
    case RoleState::free:
      return false;
    case RoleState::unknown:
      break;
  }
  // A later registrant's stamp names another token: alive() says "alive".
  // relaxed: ordered by the acquire load of `t`; pairs with stamp_slot().
  return alive(t, pid_ns.load(std::memory_order_relaxed));
}

// True while the producer named by an owner tag (slot + generation) still
// holds its slot and runs. A freed or re-claimed slot means the owner left.
bool owner_alive(const ControlBlock* cb, int semid, std::uint32_t tag) {
  const std::uint32_t slot = layout::tag_slot(tag);
  if (slot >= producer_slots(cb)) return false;
  const auto& s = cb->producers[slot];
  // acquire (both): pair with the owner CAS, generation bump in take().
  const ProcessToken t = s.owner.load(std::memory_order_acquire);
  const std::uint32_t g = s.generation.load(std::memory_order_acquire);
  if (layout::owner_tag(slot, g) != tag) return false;
  return role_alive(semid, layout::producer_sem(slot), t, s.pid_ns);
}

// True if any producer slot is held (by a live or a not yet reaped dead
// producer).
bool any_producer_registered(const ControlBlock* cb) {
  for (std::uint32_t i = 0; i < producer_slots(cb); ++i) {
    // seq_cst: end-of-stream re-check; pairs with take_slot(), leave()
    if (registered(cb->producers[i].owner.load(std::memory_order_seq_cst))) {
      return true;
    }
  }
  return false;
}

// Frees the slots of dead producers; returns how many. Shared by the consumer
// (so end of stream follows a producer's death) and by attaching producers.
// Racing reapers: one CAS wins a given registration; only the winner
// writes anything, and the slot records "died" in the same CAS that frees
// it, so a slot freed by a clean close is never reported as a death.
int reap_dead_producers(ControlBlock* cb, int semid) {
  int reaped = 0;
  for (std::uint32_t i = 0; i < producer_slots(cb); ++i) {
    auto& s = cb->producers[i];
    // acquire: pairs with the owner CAS in take_slot.
    ProcessToken t = s.owner.load(std::memory_order_acquire);
    if (!registered(t) ||
        role_alive(semid, layout::producer_sem(i), t, s.pid_ns)) {
      continue;
    }
    // seq_cst: pairs with the load in any_producer_registered.
    if (!s.owner.compare_exchange_strong(t, kFreeDied,
                                         std::memory_order_seq_cst)) {
      continue;
    }
    // relaxed: statistics only (`shm-ring info`).
    cb->last_exit.store(static_cast<std::uint32_t>(layout::LastExit::died),
                        std::memory_order_relaxed);
    cb->producers_died.fetch_add(1, std::memory_order_relaxed);
    cb->producers_attached.fetch_sub(1, std::memory_order_relaxed);
    ++reaped;
  }
  return reaped;
}

Error roles_gone(const Segment& seg) {
  return Error{Errc::removed,
               "the ring's role semaphore set (semid " +
                   std::to_string(detail::control(seg)->sem_id) +
                   ") is gone (ipcrm by hand, or the ring was removed): "
                   "shmring cannot tell live peers from dead ones without "
                   "it; remove the ring (`shm-ring rm`) and create it again"};
}

// A Segment mapped read-only (Segment::attach_read_only) is for looking.
Error read_only_role(const Segment& seg, const char* role) {
  return Error{Errc::permission_denied,
               std::string("ring ") + hex_key(seg.key()) +
                   " is attached read-only: no " + role +
                   " role can be taken through it"};
}

// Takes over a slot whose role semaphore we now hold: its owner word is
// free or names a dead registration not yet reaped. Returns what was there.
ProcessToken take_slot(std::atomic<ProcessToken>& owner, ProcessToken me) {
  // acquire: pairs with the release CAS of the slot's last holder.
  ProcessToken cur = owner.load(std::memory_order_acquire);
  // seq_cst: pairs with the load in any_producer_registered; failure acquire.
  // A reaper may free a dead token meanwhile (the CAS retries from its value).
  while (!owner.compare_exchange_weak(cur, me, std::memory_order_seq_cst,
                                      std::memory_order_acquire)) {
  }
  return cur;
}

void stamp_slot(std::atomic<std::uint64_t>& pid_ns, ProcessToken me) {
  // relaxed: the owner CAS that follows publishes it; pairs with role_alive().
  pid_ns.store(ns_stamp(me), std::memory_order_relaxed);
}

// Degraded registration, only for a ring marked for removal whose set went
// with it (Segment::remove() while the ring is still used, as tests and
// shm-bench do with private rings): pid tokens decide, as in layout v1,
// each judged only in its own PID namespace (alive(t, stamp)).
// False if a live process holds the slot.
bool take_slot_by_token(std::atomic<ProcessToken>& owner,
                        std::atomic<std::uint64_t>& pid_ns, ProcessToken me,
                        ProcessToken* was) {
  // acquire: pairs with the release CAS of the slot's last holder.
  ProcessToken cur = owner.load(std::memory_order_acquire);
  for (;;) {
    // relaxed: as in role_alive().
    if (registered(cur) && alive(cur, pid_ns.load(std::memory_order_relaxed))) {
      return false;
    }
    // Our stamp goes in before the CAS, so whoever sees our token sees a
    // stamp of it. A racing registrant may overwrite it (or we theirs):
    // a stamp of another token only ever makes its holder count as alive.
    stamp_slot(pid_ns, me);
    // seq_cst: as in take_slot(). Strong: a spurious failure would find
    // our own stamp next to the old token and call it alive.
    if (owner.compare_exchange_strong(cur, me, std::memory_order_seq_cst,
                                      std::memory_order_acquire)) {
      stamp_slot(pid_ns, me);  // ours again, if a loser's landed meanwhile
      *was = cur;
      return true;
    }
  }
}

}  // namespace detail

using namespace detail;  // the role helpers above

// ============================== producer role ==============================

Result<Producer> Producer::attach(Segment& segment, ProducerOptions options) {
  if (segment.kind() == Kind::slots) return detail::records_on_slots(segment);
  auto g = take(segment);
  if (!g) return g.error();
  return Producer(segment, *g, options);
}

// The role protocol proper, shared by Producer and SlotWriter.
Result<ProducerRole::Grant> ProducerRole::take(Segment& segment) {
  if (segment.read_only()) return read_only_role(segment, "producer");
  ControlBlock* cb = detail::control(segment);
  const ProcessToken me = self_token();
  if (me == 0) return Error{Errc::system, "cannot read /proc/self/stat"};
  const bool by_token = degraded(segment);
  if (detail::sem_id(segment) < 0 && !by_token) return roles_gone(segment);
  for (std::uint32_t i = 0; i < producer_slots(cb); ++i) {
    auto& s = cb->producers[i];
    ProcessToken was = 0;
    if (by_token) {
      if (!take_slot_by_token(s.owner, s.pid_ns, me, &was)) continue;
    } else {
      int err = 0;
      if (!take_role(detail::sem_id(segment), layout::producer_sem(i), &err)) {
        if (err != 0) {
          if (err == EIDRM || err == EINVAL) return roles_gone(segment);
          return Error{Errc::system,
                       std::string("cannot take a producer role: ") +
                           std::strerror(err)};
        }
        continue;  // held by a live producer
      }
      stamp_slot(s.pid_ns, me);
      was = take_slot(s.owner, me);
    }
    if (registered(was)) {
      // We reaped a dead holder ourselves. relaxed: statistics only.
      cb->producers_died.fetch_add(1, std::memory_order_relaxed);
      cb->producers_attached.fetch_sub(1, std::memory_order_relaxed);
    }
    // release: pairs with the loads in RecordReader::reclaim_unwritten_claim.
    s.intent.store(layout::kNoIntent, std::memory_order_release);
    // acq_rel: pairs with the generation loads in owner_alive() and reclaim.
    const std::uint32_t gen =
        s.generation.fetch_add(1, std::memory_order_acq_rel) + 1;
    // relaxed: informational count (see layout.h).
    cb->producers_attached.fetch_add(1, std::memory_order_relaxed);
    // seq_cst: pairs with the load in ConsumerRole::producers_gone.
    cb->producers_seen.fetch_add(1, std::memory_order_seq_cst);
    return Grant{static_cast<int>(i), gen, me};
  }
  if (segment.kind() != Kind::mpsc) {
    // acquire: pairs with the owner CAS in take_slot_by_token; pid only.
    const pid_t pid =
        by_token
            ? token_pid(cb->producers[0].owner.load(std::memory_order_acquire))
            : role_pid(detail::sem_id(segment), layout::producer_sem(0));
    const char* kind = segment.kind() == Kind::slots       ? "slots"
                       : segment.kind() == Kind::broadcast ? "broadcast"
                                                           : "SPSC";
    return Error{Errc::role_taken,
                 std::string("this ") + kind +
                     " ring already has a live producer (pid " +
                     std::to_string(pid) +
                     "); use an MPSC ring for several producers"};
  }
  return Error{Errc::too_many_producers,
               "all " + std::to_string(cb->max_producers) +
                   " producer slots are held by live processes"};
}

ProducerRole::ProducerRole(Segment& segment, const Grant& grant,
                           ProducerOptions options)
    : segment_(&segment),
      mapping_(detail::mapping_ref(segment)),
      cb_(detail::control(segment)),
      data_(detail::ring_data(segment)),
      index_(grant.index),
      owner_(layout::owner_tag(static_cast<std::uint32_t>(grant.index),
                               grant.generation)),
      sem_id_(detail::sem_id(segment)),
      token_(grant.token),
      options_(options),
      data_ready_(data_point(segment)),
      space_ready_(space_point(segment)) {}

bool ProducerRole::owns_registration() const { return self_token() == token_; }

std::uint32_t ProducerRole::consumers_seen() const {
  // acquire: pairs with the increment in ConsumerRole::take.
  return cb_->consumers_seen.load(std::memory_order_acquire);
}

bool ProducerRole::consumer_role_alive() const {
  // acquire: pairs with the owner CAS in ConsumerRole::take.
  return role_alive(sem_id_, layout::consumer_sem(),
                    cb_->consumer.owner.load(std::memory_order_acquire),
                    cb_->consumer.pid_ns);
}

Status ProducerRole::consumer_role_status() const {
  if (options_.wait_for_consumer) return Status::ok;
  // acquire: pairs with the owner CASes in ConsumerRole::take and leave.
  const ProcessToken c = cb_->consumer.owner.load(std::memory_order_acquire);
  // acquire: pairs with the increment in ConsumerRole::take.
  if (cb_->consumers_seen.load(std::memory_order_acquire) == 0) {
    return Status::ok;  // no consumer yet: wait for one, like a FIFO
  }
  if (role_alive(sem_id_, layout::consumer_sem(), c, cb_->consumer.pid_ns)) {
    return Status::ok;
  }
  return Status::peer_dead;
}

void ProducerRole::leave() {
  // relaxed: read by the consumer after it sees the slot free (seq_cst).
  cb_->last_exit.store(static_cast<std::uint32_t>(layout::LastExit::closed),
                       std::memory_order_relaxed);
  ProcessToken mine = token_;
  // seq_cst: pairs with the load in any_producer_registered (end of stream).
  // A CAS: a slot freed and re-claimed meanwhile (only once the semaphore set
  // is gone) is not ours.
  if (cb_->producers[index_].owner.compare_exchange_strong(
          mine, kFreeClosed, std::memory_order_seq_cst)) {
    // relaxed: informational count.
    cb_->producers_attached.fetch_sub(1, std::memory_order_relaxed);
  }
  // After the owner word: a reaper that sees our token still finds the
  // role held, so a clean close is never counted as a death.
  drop_role(sem_id_, layout::producer_sem(index_));
  data_ready_.wake();
}

bool Producer::consumer_alive() const {
  return fan_ ? any_consumer_alive() : consumer_role_alive();
}

Status Producer::blocked_status() {
  return fan_ ? broadcast_blocked_status() : consumer_role_status();
}

void Producer::close() {
  if (closed_) return;
  closed_ = true;
  // A handle inherited through fork() belongs to the parent: the child
  // must neither publish nor free the parent's registration.
  if (!owns_registration()) return;
  abort();
  flush();
  if (fan_ && fan_->lossy) close_lossy();  // the start snapshot at our tail
  leave();
}

// ============================== consumer role ==============================

Result<ProcessToken> ConsumerRole::take(Segment& segment) {
  if (segment.read_only()) return read_only_role(segment, "consumer");
  ControlBlock* cb = detail::control(segment);
  const ProcessToken me = self_token();
  if (me == 0) return Error{Errc::system, "cannot read /proc/self/stat"};
  if (degraded(segment)) {
    ProcessToken was = 0;
    if (!take_slot_by_token(cb->consumer.owner, cb->consumer.pid_ns, me,
                            &was)) {
      // acquire: pairs with the holder's owner CAS; the pid is for the message.
      return Error{Errc::role_taken,
                   "this ring already has a live consumer (pid " +
                       std::to_string(token_pid(cb->consumer.owner.load(
                           std::memory_order_acquire))) +
                       ")"};
    }
    // relaxed: statistics only.
    if (registered(was))
      cb->consumers_died.fetch_add(1, std::memory_order_relaxed);
    // seq_cst: pairs with consumer_role_status(), StreamReader::attach.
    cb->consumers_seen.fetch_add(1, std::memory_order_seq_cst);
    return me;
  }
  if (detail::sem_id(segment) < 0) return roles_gone(segment);
  int err = 0;
  if (!take_role(detail::sem_id(segment), layout::consumer_sem(), &err)) {
    if (err == EIDRM || err == EINVAL) return roles_gone(segment);
    if (err != 0) {
      return Error{
          Errc::system,
          std::string("cannot take the consumer role: ") + std::strerror(err)};
    }
    return Error{Errc::role_taken,
                 "this ring already has a live consumer (pid " +
                     std::to_string(role_pid(detail::sem_id(segment),
                                             layout::consumer_sem())) +
                     ")"};
  }
  // The role is ours; a token still in the slot is a dead consumer's: take
  // over its role and its position.
  stamp_slot(cb->consumer.pid_ns, me);
  if (registered(take_slot(cb->consumer.owner, me))) {
    // relaxed: statistics only.
    cb->consumers_died.fetch_add(1, std::memory_order_relaxed);
  }
  // seq_cst: pairs with consumer_role_status(), StreamReader::attach.
  cb->consumers_seen.fetch_add(1, std::memory_order_seq_cst);
  return me;
}

ConsumerRole::ConsumerRole(Segment& segment, ProcessToken token)
    : segment_(&segment),
      mapping_(detail::mapping_ref(segment)),
      cb_(detail::control(segment)),
      data_(detail::ring_data(segment)),
      sem_id_(detail::sem_id(segment)),
      shm_id_(segment.id()),
      token_(token),
      one_producer_(segment.kind() != Kind::mpsc),
      data_ready_(data_point(segment)),
      space_ready_(space_point(segment)) {}

ConsumerRole::ConsumerRole(ConsumerRole&&) noexcept = default;
ConsumerRole::~ConsumerRole() = default;

Status ConsumerRole::producers_gone() {
  // seq_cst: end-of-stream re-check; pairs with ProducerRole::take.
  if (cb_->producers_seen.load(std::memory_order_seq_cst) == 0) {
    // No producer yet: wait, like a FIFO, unless none can come.
    if (!nothing_can_come()) return Status::would_block;
    // One may have come (and gone) before the removal was seen: its
    // records come first. seq_cst: as the load above.
    if (cb_->producers_seen.load(std::memory_order_seq_cst) == 0) {
      return Status::removed;
    }
  }
  if (any_producer_registered(cb_)) {
    // Drained with producers registered: some may be dead. Reap at most
    // once per slice so a polling consumer (try calls only) also reaches
    // end of stream after a kill -9.
    poll_reap();
    if (any_producer_registered(cb_)) return Status::would_block;
  }
  return Status::ok;
}

bool ConsumerRole::nothing_can_come() {
  const auto now = Clock::now();
  // The wait fd's helper fired for a removal: look now, not at the next
  // check, so the wake-up it gave finds the answer.
  if (now < next_removed_check_ && !(wait_fd_ && wait_fd_->removal_seen())) {
    return false;
  }
  next_removed_check_ = now + kRemovedCheck;
  if (!shm_orphaned(shm_id_)) return false;
  reap_dead_producers(cb_, sem_id_);
  return !any_producer_registered(cb_);
}

Status ConsumerRole::how_stream_ended() {
  // A one-producer ring's slot says how its last holder left, in the same
  // CAS that freed it.
  // seq_cst: pairs with the CAS in ProducerRole::leave / reap_dead_producers.
  if (one_producer_ &&
      cb_->producers[0].owner.load(std::memory_order_seq_cst) == kFreeDied) {
    return Status::peer_dead;
  }
  return Status::closed;
}

Status RecordReader::end_status() {
  if (const Status s = producers_gone(); s != Status::ok) return s;
  // Every producer has left: what each committed before it left is in
  // the ring. seq_cst (next_header, and the tail below): pair with the
  // slot-freeing CAS in ProducerRole::leave (or the reaper's).
  if (next_header() != 0) return Status::ok;  // more to read
  if (mpsc_) {
    // A claim below the tail with no header: its dead claimer's, reclaimed
    // by the caller (reclaim_unwritten_claim).
    const std::uint64_t t = cb_->tail.load(std::memory_order_seq_cst);
    if (!layout::positions_sane(head_, t, capacity_) ||
        t - head_ < read_ - head_) {
      corrupt_at_ = read_ & mask_;
      return Status::corrupt;
    }
    cached_tail_ = t;
    if (t != read_) return Status::ok;
  }
  return how_stream_ended();
}

void ConsumerRole::poll_reap() {
  // A polling consumer calls this on every empty try call: look at the
  // clock (25-65 ns on a VM) only every 256th time. Blocking calls reap
  // once per sleep slice through reap_now().
  if ((++empty_polls_ & 255) != 1) return;
  reap_now();
}

void ConsumerRole::reap_now() {
  const auto now = Clock::now();
  if (now - last_reap_ < detail::kSleepSlice) return;
  last_reap_ = now;
  reap_dead_producers(cb_, sem_id_);
}

bool ConsumerRole::begin_close() {
  if (closed_) return false;
  closed_ = true;
  if (self_token() != token_) return false;  // inherited through fork()
  if (wait_fd_) wait_fd_->stop();
  return true;
}

void ConsumerRole::leave() {
  // Unreleased records stay in the ring for the next consumer.
  ProcessToken mine = token_;
  // release: pairs with the owner CAS in the next ConsumerRole::take. A
  // CAS: if our role was taken over, it is not ours to clear.
  cb_->consumer.owner.compare_exchange_strong(
      mine, kFreeClosed, std::memory_order_release, std::memory_order_relaxed);
  drop_role(sem_id_, layout::consumer_sem());
  // Producers blocked on a full ring notice a departed consumer in their
  // between-sleeps check within one slice; this wakes them early. No
  // Dekker pair is needed: nothing they re-check changed.
  space_ready_.wake();
}

// ============================== record readers =============================

Result<RecordReader> RecordReader::attach(Segment& segment) {
  if (segment.kind() != Kind::broadcast) {
    auto t = ConsumerRole::take(segment);
    if (!t) return t.error();
    return RecordReader(segment, *t);
  }
  if (segment.read_only()) return read_only_role(segment, "subscriber");
  const ProcessToken me = self_token();
  if (me == 0) return Error{Errc::system, "cannot read /proc/self/stat"};
  return attach_cursor(segment, me);
}

Result<Consumer> Consumer::attach(Segment& segment) {
  if (segment.kind() == Kind::slots) return detail::records_on_slots(segment);
  if (segment.kind() == Kind::broadcast) {
    return Error{Errc::wrong_kind,
                 "ring " + hex_key(segment.key()) +
                     " is a broadcast ring: attach a Subscriber "
                     "(ring/broadcast.h), which holds a cursor of its own"};
  }
  auto r = RecordReader::attach(segment);
  if (!r) return r.error();
  return Consumer(std::move(r).value());
}

void RecordReader::close() {
  if (!begin_close()) return;
  if (cursor_) {  // broadcast: free our cursor (broadcast.cc)
    leave_cursor();
    return;
  }
  leave();
}

}  // namespace shmring
