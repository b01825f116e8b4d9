#include "ring/ring.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>

#include "ring/liveness.h"
#include "ring/wait_fd.h"

namespace shmring {

using detail::Clock;
using layout::ControlBlock;
using layout::Header;

namespace {

// Record headers are read and written as atomics: in MPSC rings the consumer
// reads a header while its producer may be committing it.
std::atomic_ref<std::uint64_t> header_at(std::byte* data, std::uint64_t off) {
  return std::atomic_ref<std::uint64_t>(
      *reinterpret_cast<std::uint64_t*>(data + off));
}

// The wait strategy comes from the Segment's validated snapshot, not from
// the (writable by any peer) header.
// A handle's data point joins the ring's wake-up handshake (wait.h) before
// the handle publishes or sleeps.
detail::WaitPoint data_point(const Segment& seg) {
  return {&seg.control()->data_ready, seg.control()->data_sem,
          seg.wait_strategy(), &seg.control()->wake, true};
}
detail::WaitPoint space_point(const Segment& seg) {
  return {&seg.control()->space_ready, seg.control()->space_sem,
          seg.wait_strategy(), &seg.control()->wake, false};
}

// max_producers bounds loops over the slot table; a peer may have rewritten
// it since attach validated it, so never trust it past the table's end.
std::uint32_t producer_slots(const ControlBlock* cb) {
  return std::min<std::uint32_t>(cb->max_producers, layout::kMaxProducers);
}

// Owner-word values that are not a ProcessToken (a token's pid half is
// never 0): the slot is free and its last holder closed / died.
constexpr ProcessToken kFreeClosed = 0;
constexpr ProcessToken kFreeDied = 1;
bool registered(ProcessToken t) { return t > kFreeDied; }

// True while the registration `t` in role semaphore `num` runs: the role
// semaphore is held (the kernel drops it when the holder's process exits).
// Only if the ring's set is gone (removed by hand, or the ring removed
// while attached) do pid tokens decide instead (liveness.h).
bool role_alive(int semid, int num, ProcessToken t) {
  if (!registered(t)) return false;
  switch (role_state(semid, num)) {
    case RoleState::held:
      return true;
    case RoleState::free:
      return false;
    case RoleState::unknown:
      break;
  }
  return alive(t);
}

// True while the producer named by an owner tag (slot + generation) still
// holds its slot and runs. A freed or re-claimed slot means the owner left.
bool owner_alive(const ControlBlock* cb, int semid, std::uint32_t tag) {
  const std::uint32_t slot = layout::tag_slot(tag);
  if (slot >= producer_slots(cb)) return false;
  const auto& s = cb->producers[slot];
  // acquire: pairs with the claim CAS / generation bump in Producer::attach.
  const ProcessToken t = s.owner.load(std::memory_order_acquire);
  const std::uint32_t g = s.generation.load(std::memory_order_acquire);
  if (layout::owner_tag(slot, g) != tag) return false;
  return role_alive(semid, layout::producer_sem(slot), t);
}

// True if any producer slot is held (by a live or a not yet reaped dead
// producer). seq_cst: pairs with the claim CAS in Producer::attach and the
// release CAS in Producer::close(); it is also the re-check half of the
// data_ready Dekker pair for a consumer sleeping until end of stream.
bool any_producer_registered(const ControlBlock* cb) {
  for (std::uint32_t i = 0; i < producer_slots(cb); ++i) {
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
    // acquire: pairs with the claim CAS in Producer::attach.
    ProcessToken t = s.owner.load(std::memory_order_acquire);
    if (!registered(t) || role_alive(semid, layout::producer_sem(i), t)) {
      continue;
    }
    // seq_cst: pairs with any_producer_registered() in the consumer's
    // end-of-stream check.
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

// The spin → yield → sleep loop shared by reserve() and peek().
// `attempt` returns a result whose status is would_block while the caller
// must keep waiting; `check` runs between sleeps (liveness, end of stream)
// and returns ok to keep waiting or the status to give up with.
template <class R, class Attempt, class Check>
R wait_loop(detail::WaitPoint& point, Timeout timeout, Attempt attempt,
            Check check) {
  R r = attempt();
  if (r.status != Status::would_block) return r;
  auto give_up = [](Status s) {
    R out;
    out.status = s;
    return out;
  };
  // A bounded spin before the first clock read: data that arrives within it
  // costs no clock read and no syscall. A zero timeout skips it (a poll).
  if (timeout > Timeout::zero()) {
    for (unsigned i = 0; i < detail::kSpinNoClock; ++i) {
      detail::cpu_relax();
      r = attempt();
      if (r.status != Status::would_block) return r;
    }
  }
  // The timeout counts from here: the bounded spin above is not charged.
  const auto start = Clock::now();
  const auto deadline = detail::Deadline::from(start, timeout);

  for (unsigned i = 1;; ++i) {
    detail::cpu_relax();
    r = attempt();
    if (r.status != Status::would_block) return r;
    if ((i & 63) == 0) {
      const auto now = Clock::now();
      if (interrupt_requested()) return give_up(Status::interrupted);
      if (deadline.passed(now)) return give_up(Status::timed_out);
      if (now - start > detail::kSpinFor) break;
    }
  }
  while (Clock::now() - start < detail::kSpinFor + detail::kYieldFor) {
    ::sched_yield();
    r = attempt();
    if (r.status != Status::would_block) return r;
  }

  // Liveness checks cost syscalls: at most once per slice (spin-only rings:
  // once per millisecond, they never sleep).
  const auto check_every =
      point.strategy() == WaitStrategy::spin
          ? std::chrono::nanoseconds(std::chrono::milliseconds(1))
          : std::chrono::nanoseconds(detail::kSleepSlice);
  auto last_check = Clock::time_point{};
  for (;;) {
    const auto now = Clock::now();
    if (interrupt_requested()) return give_up(Status::interrupted);
    if (now - last_check >= check_every) {
      last_check = now;
      const Status s = check();
      if (s != Status::ok) return give_up(s);
    }
    if (deadline.passed(now)) return give_up(Status::timed_out);
    const std::uint32_t seq = point.announce();
    r = attempt();  // the re-check of the Dekker pair (see wait.h)
    if (r.status != Status::would_block) {
      point.retire();
      return r;
    }
    point.sleep(seq, deadline.left(now));  // false on EINTR: loop re-checks
    point.retire();
    r = attempt();
    if (r.status != Status::would_block) return r;
  }
}

}  // namespace

int detail::reap_dead_producers(Segment& segment) {
  return shmring::reap_dead_producers(segment.control(), segment.sem_id());
}

// ============================== Producer ==================================

namespace {

Error roles_gone(const Segment& seg) {
  return Error{Errc::removed,
               "the ring's role semaphore set (semid " +
                   std::to_string(seg.control()->sem_id) +
                   ") is gone (ipcrm by hand, or the ring was removed): "
                   "shmring cannot tell live peers from dead ones without "
                   "it; remove the ring (`shm-ring rm`) and create it again"};
}

// Takes over a slot whose role semaphore we now hold: its owner word is
// free or names a dead registration not yet reaped. Returns what was there.
ProcessToken take_slot(std::atomic<ProcessToken>& owner, ProcessToken me) {
  // acquire: pairs with the release CAS of the slot's last holder.
  ProcessToken cur = owner.load(std::memory_order_acquire);
  // seq_cst: pairs with any_producer_registered() (a consumer that sees
  // this registration does not report end of stream). A reaper may free a
  // dead token meanwhile (the CAS then retries from its value).
  while (!owner.compare_exchange_weak(cur, me, std::memory_order_seq_cst,
                                      std::memory_order_acquire)) {
  }
  return cur;
}

// Degraded registration, only for a ring marked for removal whose set went
// with it (Segment::remove() while the ring is still used, as tests and
// shm-bench do with private rings): pid tokens decide, as in layout v1.
// False if a live process holds the slot.
bool take_slot_by_token(std::atomic<ProcessToken>& owner, ProcessToken me,
                        ProcessToken* was) {
  // acquire: pairs with the release CAS of the slot's last holder.
  ProcessToken cur = owner.load(std::memory_order_acquire);
  for (;;) {
    if (registered(cur) && alive(cur)) return false;
    // seq_cst: as in take_slot().
    if (owner.compare_exchange_weak(cur, me, std::memory_order_seq_cst,
                                    std::memory_order_acquire)) {
      *was = cur;
      return true;
    }
  }
}

// True if roles are taken by pid token (see take_slot_by_token).
bool degraded(const Segment& seg) { return seg.sem_id() < 0 && seg.removed(); }

}  // namespace

Result<Producer> Producer::attach(Segment& segment, ProducerOptions options) {
  ControlBlock* cb = segment.control();
  const ProcessToken me = self_token();
  if (me == 0) return Error{Errc::system, "cannot read /proc/self/stat"};
  const bool by_token = degraded(segment);
  if (segment.sem_id() < 0 && !by_token) return roles_gone(segment);
  for (std::uint32_t i = 0; i < producer_slots(cb); ++i) {
    auto& s = cb->producers[i];
    ProcessToken was = 0;
    if (by_token) {
      if (!take_slot_by_token(s.owner, me, &was)) continue;
    } else {
      int err = 0;
      if (!take_role(segment.sem_id(), layout::producer_sem(i), &err)) {
        if (err != 0) {
          if (err == EIDRM || err == EINVAL) return roles_gone(segment);
          return Error{Errc::system,
                       std::string("cannot take a producer role: ") +
                           std::strerror(err)};
        }
        continue;  // held by a live producer
      }
      was = take_slot(s.owner, me);
    }
    if (registered(was)) {
      // We reaped a dead holder ourselves. relaxed: statistics only.
      cb->producers_died.fetch_add(1, std::memory_order_relaxed);
      cb->producers_attached.fetch_sub(1, std::memory_order_relaxed);
    }
    // release: a consumer that reads the new generation (acquire) sees no
    // stale claim intent of the slot's previous owner (see
    // Consumer::reclaim_unwritten_claim).
    s.intent.store(layout::kNoIntent, std::memory_order_release);
    // acq_rel: the new generation tags every busy header of this
    // registration; read by owner_alive().
    const std::uint32_t gen =
        s.generation.fetch_add(1, std::memory_order_acq_rel) + 1;
    // relaxed: informational count (see layout.h).
    cb->producers_attached.fetch_add(1, std::memory_order_relaxed);
    // seq_cst: a consumer that sees no producers ever (0) keeps waiting
    // for one, like a FIFO reader; pairs with end_status().
    cb->producers_seen.fetch_add(1, std::memory_order_seq_cst);
    return Producer(segment, static_cast<int>(i), gen, me, options);
  }
  if (cb->kind == Kind::spsc) {
    const pid_t pid =
        by_token ? token_pid(cb->producers[0].owner.load(
                       std::memory_order_acquire))
                 : role_pid(segment.sem_id(), layout::producer_sem(0));
    return Error{Errc::role_taken,
                 "this SPSC ring already has a live producer (pid " +
                     std::to_string(pid) +
                     "); use an MPSC ring for several producers"};
  }
  return Error{Errc::too_many_producers,
               "all " + std::to_string(cb->max_producers) +
                   " producer slots are held by live processes"};
}

Producer::Producer(Segment& segment, int slot, std::uint32_t generation,
                   ProcessToken token, ProducerOptions options)
    : segment_(&segment),
      cb_(segment.control()),
      data_(segment.data()),
      mask_(segment.capacity() - 1),
      capacity_(segment.capacity()),
      slot_(slot),
      owner_(layout::owner_tag(static_cast<std::uint32_t>(slot), generation)),
      token_(token),
      mpsc_(segment.kind() == Kind::mpsc),
      options_(options),
      data_ready_(data_point(segment)),
      space_ready_(space_point(segment)) {
  mapping_ = segment.mapping_ref();
  sem_id_ = segment.sem_id();
  // acquire: pairs with the consumer's head store (head first: it only
  // grows towards tail, so the pair below is a consistent one for SPSC).
  cached_head_ = cb_->head.load(std::memory_order_acquire);
  // acquire: pairs with the previous producer's tail store; an SPSC
  // producer continues where the last one (closed or dead) published.
  tail_ = published_ = cb_->tail.load(std::memory_order_acquire);
  max_payload_ = layout::max_payload(capacity_);
  // SPSC: we are the only writer of tail, so a garbage pair is a peer's
  // scribble, refused by every reserve (corrupt). MPSC: other producers
  // move tail and the consumer head between our two loads, so the pair
  // proves nothing; reserve_mpsc() judges a consistent snapshot instead.
  broken_ = !mpsc_ && !layout::positions_sane(cached_head_, tail_, capacity_);
}

Producer::Producer(Producer&& o) noexcept
    : segment_(o.segment_),
      mapping_(o.mapping_),
      cb_(o.cb_),
      data_(o.data_),
      mask_(o.mask_),
      capacity_(o.capacity_),
      max_payload_(o.max_payload_),
      slot_(o.slot_),
      owner_(o.owner_),
      sem_id_(o.sem_id_),
      token_(o.token_),
      mpsc_(o.mpsc_),
      options_(o.options_),
      data_ready_(o.data_ready_),
      space_ready_(o.space_ready_),
      tail_(o.tail_),
      published_(o.published_),
      cached_head_(o.cached_head_),
      reserved_pos_(o.reserved_pos_),
      reserved_span_(o.reserved_span_),
      reserved_size_(o.reserved_size_),
      reserved_(o.reserved_),
      closed_(o.closed_),
      broken_(o.broken_) {
  o.closed_ = true;
  o.reserved_ = false;
}

Producer::~Producer() { close(); }

std::size_t Producer::max_record_size() const {
  return layout::max_payload(capacity_);
}

bool Producer::consumer_alive() const {
  // acquire: pairs with the consumer's claim CAS in Consumer::attach.
  return role_alive(sem_id_, layout::consumer_sem(),
                    cb_->consumer.owner.load(std::memory_order_acquire));
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
      size + std::max<std::size_t>(align, 8) - 8 > max_record_size() ||
      (mpsc_ && align > layout::kRecordAlign)) {
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
  if (size + align - layout::kRecordAlign > max_record_size() ||
      (mpsc_ && align > layout::kRecordAlign)) {
    return {Status::too_large, {}};
  }
  if (broken_) return {Status::corrupt, {}};
  if (reserved_) abort();  // one reservation at a time
  return mpsc_ ? reserve_mpsc(size) : reserve_spsc(size, align);
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
  const std::uint64_t need = pad + gap + span;
  if (tail_ + need - cached_head_ > capacity_) {
    // seq_cst (acquire suffices for data): pairs with the consumer's head
    // store in release(), so its reads of the space happen before our
    // writes; seq_cst also makes this the re-check of the space_ready
    // Dekker pair when called from wait_loop.
    cached_head_ = cb_->head.load(std::memory_order_seq_cst);
    if (!layout::positions_sane(cached_head_, tail_, capacity_)) {
      broken_ = true;
      return {Status::corrupt, {}};
    }
    if (tail_ + need - cached_head_ > capacity_) {
      // Full: make deferred records visible, or the consumer could wait for
      // them while we wait for it.
      publish();
      return {Status::would_block, {}};
    }
  }
  if (pad != 0) {
    // relaxed: published by the tail store in publish().
    header_at(data_, off)
        .store(layout::padding_word(static_cast<std::uint32_t>(pad)),
               std::memory_order_relaxed);
    tail_ += pad;
  }
  if (gap != 0) {
    // relaxed: published by the tail store in publish().
    header_at(data_, tail_ & mask_)
        .store(layout::padding_word(static_cast<std::uint32_t>(gap)),
               std::memory_order_relaxed);
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
// Withdraws a claim intent that did not lead to a claim (release: as the
// intent stores in reserve_mpsc). Cheap when there is none.
void withdraw_intent(layout::Slot& slot) {
  // relaxed: only our own earlier store can be there.
  if (slot.intent.load(std::memory_order_relaxed) != layout::kNoIntent) {
    slot.intent.store(layout::kNoIntent, std::memory_order_release);
  }
}

// Test-only fault injection between the steps of an MPSC claim.
inline void claim_step(detail::ClaimStep step) {
  // relaxed: set by a test before the producer runs.
  if (auto* hook = detail::claim_hook.load(std::memory_order_relaxed)) {
    hook(step);
  }
}
}  // namespace

// The MPSC claim (docs/design.md, section 4): publish the intent, CAS tail,
// write the headers. No lock: a producer stopped anywhere in here never
// keeps another from claiming; its CAS either happened (the claim is its
// own, recovered by the consumer if it dies) or did not (nothing is
// claimed).
Reservation Producer::reserve_mpsc(std::size_t size) {
  const auto span = static_cast<std::uint32_t>(layout::span_for(size));
  auto& slot = cb_->producers[slot_];
  // relaxed: only an expectation for the CAS below, which rereads it.
  std::uint64_t t = cb_->tail.load(std::memory_order_relaxed);
  std::uint64_t off = 0;
  std::uint64_t pad = 0;
  for (;;) {
    off = t & mask_;
    pad = off + span > capacity_ ? capacity_ - off : 0;
    const std::uint64_t need = pad + span;
    if (!layout::positions_sane(cached_head_, t, capacity_) ||
        t - cached_head_ + need > capacity_) {
      // seq_cst: acquire pairs with the consumer's head store in
      // release_mpsc() (release, WaitPoint::publish: its reads and zeroing
      // of the space happen before our writes); seq_cst for the
      // space_ready re-check of the handshake (wait.h).
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
    // release: a consumer that reads a later intent of ours (acquire) also
    // sees the headers of this claim's predecessor; the CAS below (release)
    // publishes this intent to every consumer that sees the new tail.
    slot.intent.store(t, std::memory_order_release);
    claim_step(detail::ClaimStep::before_cas);
    // seq_cst: release publishes the intent to the consumer's acquire load
    // of tail; seq_cst keeps the data_ready Dekker argument (an empty-ring
    // re-check reads tail). Failure: another producer claimed; retry from
    // its tail (relaxed: only an expectation).
    if (cb_->tail.compare_exchange_weak(t, t + need, std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
      break;
    }
  }
  claim_step(detail::ClaimStep::after_cas);
  const std::uint64_t pos = t + pad;
  // relaxed: the consumer that finds it reads it with acquire and needs
  // nothing else from it; ordered before the padding store (release) and
  // before our next intent (release). Busy until commit().
  header_at(data_, pos & mask_)
      .store(layout::encode_busy(span, owner_), std::memory_order_relaxed);
  if (pad != 0) {
    claim_step(detail::ClaimStep::after_busy_header);
    // release: a consumer that skips this padding (acquire) finds the busy
    // header at offset 0, not a 0 word it would take for a dead claim.
    header_at(data_, off)
        .store(layout::padding_word(static_cast<std::uint32_t>(pad)),
               std::memory_order_release);
  }
  claim_step(detail::ClaimStep::claimed);
  // release: the headers above happen before it; a consumer that reads
  // kNoIntent (acquire) and re-reads the word sees them.
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

Status Producer::blocked_status() {
  if (options_.wait_for_consumer) return Status::ok;
  // acquire: pairs with Consumer::attach's claim and Consumer::close().
  const ProcessToken c = cb_->consumer.owner.load(std::memory_order_acquire);
  if (cb_->consumers_seen.load(std::memory_order_acquire) == 0) {
    return Status::ok;  // no consumer yet: wait for one, like a FIFO
  }
  if (role_alive(sem_id_, layout::consumer_sem(), c)) return Status::ok;
  return Status::peer_dead;
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
    // relaxed: published by the tail store in publish().
    header_at(data_, reserved_pos_ & mask_)
        .store(word, std::memory_order_relaxed);
    tail_ = reserved_pos_ + span;
    return;
  }
  if (span < reserved_span_) {
    // relaxed: published by the header store below, which the consumer
    // acquires before it reads on.
    header_at(data_, (reserved_pos_ + span) & mask_)
        .store(layout::padding_word(reserved_span_ - span),
               std::memory_order_relaxed);
  }
  // The commit store of this header (release: pairs with the consumer's
  // acquire / seq_cst loads of it in try_peek(), so the payload and the
  // padding above are visible) and the data_ready wake check: the
  // handshake is WaitPoint::publish's, with the header in the place of
  // SPSC's tail (wait.h, docs/design.md section 5).
  data_ready_.publish(header_at(data_, reserved_pos_ & mask_), word);
}


void Producer::abort() {
  if (!reserved_) return;
  reserved_ = false;
  if (!mpsc_) {
    tail_ = reserved_pos_;  // nothing was published
    return;
  }
  // As in commit(): the consumer may be waiting on this record, so the
  // padding header is published through the handshake (release store +
  // wake check, WaitPoint::publish).
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

void Producer::close() {
  if (closed_) return;
  closed_ = true;
  // A handle inherited through fork() belongs to the parent: the child
  // must neither publish nor free the parent's registration.
  if (self_token() != token_) return;
  abort();
  flush();
  // relaxed: read by the consumer after it sees the slot free (seq_cst).
  cb_->last_exit.store(static_cast<std::uint32_t>(layout::LastExit::closed),
                       std::memory_order_relaxed);
  ProcessToken mine = token_;
  // seq_cst: our last publish happens before this; pairs with
  // any_producer_registered() in end_status(), and is the waker half of the
  // Dekker pair for a consumer sleeping until end of stream. A CAS, not a
  // store: if our slot was freed and re-claimed (only possible once the
  // ring's semaphore set is gone), it is not ours to clear.
  if (cb_->producers[slot_].owner.compare_exchange_strong(
          mine, kFreeClosed, std::memory_order_seq_cst)) {
    // relaxed: informational count.
    cb_->producers_attached.fetch_sub(1, std::memory_order_relaxed);
  }
  // After the owner word: a reaper that sees our token still finds the
  // role held, so a clean close is never counted as a death.
  drop_role(sem_id_, layout::producer_sem(slot_));
  data_ready_.wake();
}

// ============================== Consumer ==================================

Result<Consumer> Consumer::attach(Segment& segment) {
  ControlBlock* cb = segment.control();
  const ProcessToken me = self_token();
  if (me == 0) return Error{Errc::system, "cannot read /proc/self/stat"};
  if (degraded(segment)) {
    ProcessToken was = 0;
    if (!take_slot_by_token(cb->consumer.owner, me, &was)) {
      return Error{Errc::role_taken,
                   "this ring already has a live consumer (pid " +
                       std::to_string(token_pid(cb->consumer.owner.load(
                           std::memory_order_acquire))) +
                       ")"};
    }
    // relaxed: statistics only.
    if (registered(was)) cb->consumers_died.fetch_add(1, std::memory_order_relaxed);
    // seq_cst: as below.
    cb->consumers_seen.fetch_add(1, std::memory_order_seq_cst);
    return Consumer(segment, me);
  }
  if (segment.sem_id() < 0) return roles_gone(segment);
  int err = 0;
  if (!take_role(segment.sem_id(), layout::consumer_sem(), &err)) {
    if (err == EIDRM || err == EINVAL) return roles_gone(segment);
    if (err != 0) {
      return Error{Errc::system, std::string("cannot take the consumer role: ") +
                                     std::strerror(err)};
    }
    return Error{Errc::role_taken,
                 "this ring already has a live consumer (pid " +
                     std::to_string(
                         role_pid(segment.sem_id(), layout::consumer_sem())) +
                     ")"};
  }
  // The role is ours; a token still in the slot is a dead consumer's: take
  // over its role and its position.
  if (registered(take_slot(cb->consumer.owner, me))) {
    // relaxed: statistics only.
    cb->consumers_died.fetch_add(1, std::memory_order_relaxed);
  }
  // seq_cst: producers blocked on a full ring read it in blocked_status().
  cb->consumers_seen.fetch_add(1, std::memory_order_seq_cst);
  return Consumer(segment, me);
}

Consumer::Consumer(Segment& segment, ProcessToken token)
    : segment_(&segment),
      mapping_(segment.mapping_ref()),
      cb_(segment.control()),
      data_(segment.data()),
      mask_(segment.capacity() - 1),
      capacity_(segment.capacity()),
      mpsc_(segment.kind() == Kind::mpsc),
      token_(token),
      data_ready_(data_point(segment)),
      space_ready_(space_point(segment)) {
  // acquire: pairs with the previous consumer's release of head: resume
  // exactly where it last released. A misaligned (corrupt) head is caught
  // by the position checks in try_peek().
  head_ = read_ = cached_tail_ = cb_->head.load(std::memory_order_acquire);
  max_span_ = layout::max_span(capacity_);
  sem_id_ = segment.sem_id();
  if (!mpsc_) return;
  // A predecessor that died inside release() left [head, release_to)
  // partly zeroed: it had finished with those records, so finish its job.
  // acquire: pairs with its release_to store (and tail: our bound).
  const std::uint64_t to = cb_->release_to.load(std::memory_order_acquire);
  const std::uint64_t t = cb_->tail.load(std::memory_order_acquire);
  if (to != head_ && (to & (layout::kRecordAlign - 1)) == 0 &&
      layout::positions_sane(head_, t, capacity_) && to - head_ <= t - head_) {
    read_ = to;
    release();
    cached_tail_ = read_;
  }
}

Consumer::Consumer(Consumer&& o) noexcept
    : segment_(o.segment_),
      mapping_(o.mapping_),
      cb_(o.cb_),
      data_(o.data_),
      mask_(o.mask_),
      capacity_(o.capacity_),
      max_span_(o.max_span_),
      mpsc_(o.mpsc_),
      sem_id_(o.sem_id_),
      token_(o.token_),
      data_ready_(o.data_ready_),
      space_ready_(o.space_ready_),
      head_(o.head_),
      read_(o.read_),
      cached_tail_(o.cached_tail_),
      stalled_pos_(o.stalled_pos_),
      stalled_since_(o.stalled_since_),
      last_reap_(o.last_reap_),
      corrupt_at_(o.corrupt_at_),
      closed_(o.closed_),
      wait_fd_(std::move(o.wait_fd_)) {
  o.closed_ = true;
}

Consumer::~Consumer() { close(); }

std::size_t Consumer::max_record_size() const {
  return layout::max_payload(capacity_);
}

std::uint64_t Consumer::size_guess() const {
  // relaxed: a guess for progress displays.
  const std::uint64_t t = cb_->tail.load(std::memory_order_relaxed);
  return t - head_ <= capacity_ ? t - head_ : 0;
}

Status Consumer::end_status() {
  // seq_cst: pairs with Producer::attach's increment; also part of the
  // re-check of the data_ready Dekker pair for end of stream.
  if (cb_->producers_seen.load(std::memory_order_seq_cst) == 0) {
    return Status::would_block;  // no producer yet: wait, like a FIFO
  }
  if (any_producer_registered(cb_)) {
    // Drained with producers registered: some may be dead. Reap at most
    // once per slice so a polling consumer (try_peek only) also reaches end
    // of stream after a kill -9.
    reap_dead_producers();
    if (any_producer_registered(cb_)) return Status::would_block;
  }
  // Every producer has left; their last tail stores happen before their
  // slot was freed (seq_cst CAS), so this load sees the final tail.
  // Validated before it is cached (see try_peek()).
  const std::uint64_t t = cb_->tail.load(std::memory_order_seq_cst);
  if (!layout::positions_sane(head_, t, capacity_) ||
      t - head_ < read_ - head_) {
    corrupt_at_ = read_ & mask_;
    return Status::corrupt;
  }
  cached_tail_ = t;
  if (cached_tail_ != read_) return Status::ok;  // more to read
  // The SPSC slot says how its last holder left, in the same CAS that
  // freed it (seq_cst, read above by any_producer_registered()).
  if (!mpsc_ && cb_->producers[0].owner.load(std::memory_order_seq_cst) ==
                    kFreeDied) {
    return Status::peer_dead;
  }
  return Status::closed;
}

bool Consumer::stalled_long_enough(std::uint64_t pos) {
  const auto now = Clock::now();
  if (stalled_pos_ != pos) {
    stalled_pos_ = pos;
    stalled_since_ = now;
    return false;
  }
  // Liveness costs a syscall per slot: look at most every 10 ms per stall.
  if (now - stalled_since_ < std::chrono::milliseconds(10)) return false;
  stalled_since_ = now;
  return true;
}

bool Consumer::reclaim_if_owner_dead(std::uint64_t pos, std::uint64_t word) {
  if (!stalled_long_enough(pos)) return false;
  const Header h = layout::decode(word);
  if (owner_alive(cb_, sem_id_, h.owner)) return false;  // slow, not dead
  std::uint64_t expected = word;
  // acq_rel: only the dead owner could have changed the header, and it
  // cannot; the CAS just guards against a corrupt peer.
  if (header_at(data_, pos & mask_)
          .compare_exchange_strong(expected, layout::padding_word(h.span),
                                   std::memory_order_acq_rel)) {
    // relaxed: statistics only.
    cb_->records_reclaimed.fetch_add(1, std::memory_order_relaxed);
  }
  stalled_pos_ = ~0ULL;
  return true;
}

// A 0 word at `pos` below tail: a claim whose claimer has not written its
// header yet (the consumer zeroes all space it releases, so nothing else
// below tail reads 0). Its claimer published `pos` as its intent before
// the CAS that moved tail past `pos`, and changes it only after writing the
// header. So: while a live registration's intent names `pos`, wait; else
// the claimer died between its CAS and its header store, having written
// nothing, and its claim is a run of 0 words up to the next claim (which
// has a header, or an intent naming its start) or tail: turn the run into
// one padding record. See docs/design.md, section 4, for the proof.
bool Consumer::reclaim_unwritten_claim(std::uint64_t pos) {
  if (!stalled_long_enough(pos)) return false;
  // The run never crosses the end of the ring or tail.
  std::uint64_t end = pos + (capacity_ - (pos & mask_));
  if (cached_tail_ - pos < end - pos) end = cached_tail_;
  const ControlBlock* cb = cb_;
  for (std::uint32_t i = 0; i < producer_slots(cb); ++i) {
    const auto& s = cb->producers[i];
    // acquire (all four): pair with the release stores of the intent and
    // the generation bump in Producer::attach, and with the intent stores
    // in reserve_mpsc(); the tail load that revealed `pos` (seq_cst) came
    // first, so the claimer's intent (published by its CAS) is visible.
    const std::uint32_t g1 = s.generation.load(std::memory_order_acquire);
    const std::uint64_t p = s.intent.load(std::memory_order_acquire);
    const ProcessToken o = s.owner.load(std::memory_order_acquire);
    if (p == pos) {
      const bool live = role_alive(sem_id_, layout::producer_sem(i), o);
      const std::uint32_t g2 = s.generation.load(std::memory_order_acquire);
      if (live || g1 != g2) return false;  // may be the claimer: wait
      continue;
    }
    // Another claim starts at p: the run stops there.
    if (p != layout::kNoIntent && layout::in_window(pos, p, end)) end = p;
  }
  // seq_cst: re-read after the intents; a claimer that moved its intent on
  // wrote this header first (release/acquire through the intent).
  if (header_at(data_, pos & mask_).load(std::memory_order_seq_cst) != 0) {
    stalled_pos_ = ~0ULL;
    return true;  // written meanwhile: read it normally
  }
  for (std::uint64_t q = pos + layout::kHeaderSize; q != end;
       q += layout::kHeaderSize) {
    // acquire: a non-zero word is the next claim's header.
    if (header_at(data_, q & mask_).load(std::memory_order_acquire) != 0) {
      end = q;
      break;
    }
  }
  const std::uint64_t run = std::min<std::uint64_t>(end - pos, 0xfffffff8ULL);
  std::uint64_t expected = 0;
  // acq_rel: the dead claimer can no longer write here; the CAS guards
  // against a corrupt peer.
  if (header_at(data_, pos & mask_)
          .compare_exchange_strong(
              expected, layout::padding_word(static_cast<std::uint32_t>(run)),
              std::memory_order_acq_rel)) {
    // relaxed: statistics only.
    cb_->records_reclaimed.fetch_add(1, std::memory_order_relaxed);
  }
  stalled_pos_ = ~0ULL;
  return true;
}

Peeked Consumer::try_peek_scan() {
  if (closed_) return {Status::closed, {}};
  for (;;) {
    if (read_ == cached_tail_) {
      // seq_cst: acquire pairs with the producers' tail store (every byte
      // before it is written); seq_cst makes this the re-check of the
      // data_ready Dekker pair when called from wait_loop.
      // Validated before it is cached: a rejected tail must not be trusted
      // by the next call either.
      const std::uint64_t t = cb_->tail.load(std::memory_order_seq_cst);
      if (!layout::positions_sane(head_, t, capacity_) ||
          t - head_ < read_ - head_) {
        corrupt_at_ = read_ & mask_;
        return {Status::corrupt, {}};
      }
      cached_tail_ = t;
      if (read_ == cached_tail_) {
        const Status s = end_status();
        if (s != Status::ok) return {s, {}};
      }
    }
    const std::uint64_t off = read_ & mask_;
    // acquire: pairs with the producer's commit store of this header
    // (release, or seq_cst in fallback mode: WaitPoint::publish) in
    // commit()/abort() (MPSC); in SPSC the tail load already ordered it.
    // seq_cst: when the consumer sleeps on a busy record this load is the
    // re-check half of the data_ready handshake (free on x86).
    const std::uint64_t word =
        header_at(data_, off).load(std::memory_order_seq_cst);
    if (word == 0 && mpsc_) {
      if (reclaim_unwritten_claim(read_)) continue;
      return {Status::would_block, {}};
    }
    const Header h = layout::decode(word);
    // Every value from the segment is untrusted: bounds before use
    // (positions modulo 2^64: cached_tail_ - read_ is what is left).
    if (h.span < layout::kHeaderSize || off + h.span > capacity_ ||
        h.span > cached_tail_ - read_ ||
        (!h.padding && h.span > layout::max_span(capacity_)) ||
        (h.busy && !mpsc_)) {
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

void Consumer::reap_dead_producers() {
  // A polling consumer calls this on every empty try_peek(): look at the
  // clock (25-65 ns on a VM) only every 256th time. Blocking peeks reap
  // once per sleep slice through reap_dead_producers_now().
  if ((++empty_polls_ & 255) != 1) return;
  reap_dead_producers_now();
}

void Consumer::reap_dead_producers_now() {
  const auto now = Clock::now();
  if (now - last_reap_ < detail::kSleepSlice) return;
  last_reap_ = now;
  shmring::reap_dead_producers(cb_, sem_id_);
}

Peeked Consumer::peek(Timeout timeout) {
  if (closed_) return {Status::closed, {}};
  // Between sleeps, reap dead producers so end of stream (or peer_dead)
  // follows a kill -9 within about one slice.
  return wait_loop<Peeked>(
      data_ready_, timeout, [&] { return try_peek(); },
      [&] {
        reap_dead_producers_now();
        return Status::ok;
      });
}

Status Consumer::peek_batch(std::span<Record> out, std::size_t* count,
                            Timeout timeout) {
  *count = 0;
  if (out.empty()) return Status::ok;
  Peeked first = peek(timeout);
  if (!first) return first.status;
  out[0] = first.record;
  std::size_t more = 0;
  (void)try_peek_batch(out.subspan(1), &more);
  *count = 1 + more;
  return Status::ok;
}

// MPSC release (the SPSC one is inline in ring.h): zero, then publish.
void Consumer::release_mpsc() {
  zero_released();
  head_ = read_;
  // Release store of head after the zeroing (pairs with the producers'
  // acquire (seq_cst) reload of head in reserve_mpsc(): our reads of the
  // records and the zero stores happen before their claims and overwrites)
  // and the space_ready wake check; the handshake is WaitPoint::publish's
  // (wait.h, docs/design.md section 5).
  space_ready_.publish(cb_->head, head_);
}

// MPSC: released space is zeroed so that a 0 word below tail always means
// "claimed, header not yet written". First record how far this release
// goes: a consumer that dies while zeroing leaves [head, release_to) to its
// successor, which finishes the zeroing (constructor) instead of reading
// half-zeroed records.
void Consumer::zero_released() {
  // relaxed + seq_cst fence: the store is ordered before the zeroing below
  // for a successor that reads it after our death (the fence keeps the
  // hardware from making any zero store visible first).
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

Status Consumer::read(std::vector<std::byte>& out, Timeout timeout) {
  Peeked p = peek(timeout);
  if (!p) return p.status;
  out.assign(p.record.data, p.record.data + p.record.size);
  release();
  return Status::ok;
}

void Consumer::close() {
  if (closed_) return;
  closed_ = true;
  if (self_token() != token_) return;  // inherited through fork(): not ours
  if (wait_fd_) wait_fd_->stop();
  // Unreleased records stay in the ring for the next consumer.
  ProcessToken mine = token_;
  // release: pairs with the next consumer's claim CAS in attach(). A CAS:
  // if our role was taken over, it is not ours to clear.
  cb_->consumer.owner.compare_exchange_strong(
      mine, kFreeClosed, std::memory_order_release, std::memory_order_relaxed);
  drop_role(sem_id_, layout::consumer_sem());
  // Producers blocked on a full ring notice a departed consumer in their
  // between-sleeps check (blocked_status()), within one slice; this wakes
  // them early. No Dekker pair is needed: nothing they re-check changed.
  space_ready_.wake();
}

}  // namespace shmring
