#include "ring/ring.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "ring/liveness.h"

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

// True while the producer named by an owner tag (slot + generation) still
// holds its slot and runs. A freed or re-claimed slot means the owner left.
bool owner_alive(const ControlBlock* cb, std::uint32_t tag) {
  const std::uint32_t slot = layout::tag_slot(tag);
  if (slot >= producer_slots(cb)) return false;
  const auto& s = cb->producers[slot];
  // acquire: pairs with the claim CAS / generation bump in Producer::attach.
  const ProcessToken t = s.owner.load(std::memory_order_acquire);
  const std::uint32_t g = s.generation.load(std::memory_order_acquire);
  if (layout::owner_tag(slot, g) != tag || t == 0) return false;
  return alive(t);
}

// True if any producer slot is held (by a live or a not yet reaped dead
// producer). seq_cst: pairs with the claim CAS in Producer::attach and the
// release CAS in Producer::close(); it is also the re-check half of the
// data_ready Dekker pair for a consumer sleeping until end of stream.
bool any_producer_registered(const ControlBlock* cb) {
  for (std::uint32_t i = 0; i < producer_slots(cb); ++i) {
    if (cb->producers[i].owner.load(std::memory_order_seq_cst) != 0) {
      return true;
    }
  }
  return false;
}

// Frees the slots of dead producers; returns how many. Shared by the consumer
// (so end of stream follows a producer's death) and by attaching producers
// (so the table never fills with ghosts).
int reap_dead_producers(ControlBlock* cb) {
  int reaped = 0;
  for (std::uint32_t i = 0; i < producer_slots(cb); ++i) {
    auto& s = cb->producers[i];
    // acquire: pairs with the claim CAS in Producer::attach.
    ProcessToken t = s.owner.load(std::memory_order_acquire);
    if (t == 0 || alive(t)) continue;
    // Before the slot is freed: no next producer can attach (and close,
    // writing `closed`) until it is, so `died` never overwrites a newer exit.
    // relaxed: read by the consumer after it sees the slot free (seq_cst).
    cb->last_exit.store(static_cast<std::uint32_t>(layout::LastExit::died),
                        std::memory_order_relaxed);
    // seq_cst: only one reaper wins a given registration; pairs with
    // any_producer_registered() in the consumer's end-of-stream check.
    if (!s.owner.compare_exchange_strong(t, 0, std::memory_order_seq_cst)) {
      continue;
    }
    // relaxed: statistics only.
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

// ============================== Producer ==================================

Result<Producer> Producer::attach(Segment& segment, ProducerOptions options) {
  ControlBlock* cb = segment.control();
  const ProcessToken me = self_token();
  if (me == 0) return Error{Errc::system, "cannot read /proc/self/stat"};
  for (int round = 0; round < 2; ++round) {
    for (std::uint32_t i = 0; i < producer_slots(cb); ++i) {
      auto& s = cb->producers[i];
      ProcessToken expected = 0;
      // acq_rel: claims the slot; pairs with the release in close() / the
      // reaper's CAS that freed it.
      if (!s.owner.compare_exchange_strong(expected, me,
                                           std::memory_order_acq_rel)) {
        continue;
      }
      // acq_rel: the new generation tags every record and lock word of this
      // registration; read by owner_alive().
      const std::uint32_t gen =
          s.generation.fetch_add(1, std::memory_order_acq_rel) + 1;
      // seq_cst: pairs with end_status()'s loads (a consumer that sees this
      // producer does not report end of stream).
      // relaxed: informational count (see layout.h).
      cb->producers_attached.fetch_add(1, std::memory_order_relaxed);
      // seq_cst: a consumer that sees no producers ever (0) keeps waiting
      // for one, like a FIFO reader; pairs with end_status().
      cb->producers_seen.fetch_add(1, std::memory_order_seq_cst);
      return Producer(segment, static_cast<int>(i), gen, me, options);
    }
    if (reap_dead_producers(cb) == 0) break;
  }
  if (cb->kind == Kind::spsc) {
    const ProcessToken t =
        cb->producers[0].owner.load(std::memory_order_acquire);
    return Error{Errc::role_taken,
                 "this SPSC ring already has a live producer (pid " +
                     std::to_string(token_pid(t)) +
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
      lock_word_(std::uint64_t{owner_} + 1),
      token_(token),
      mpsc_(segment.kind() == Kind::mpsc),
      options_(options),
      data_ready_(data_point(segment)),
      space_ready_(space_point(segment)) {
  // acquire: pairs with the previous producer's tail store / the
  // consumer's head store; an SPSC producer continues where the last one
  // (closed or dead) published.
  tail_ = published_ = cb_->tail.load(std::memory_order_acquire);
  cached_head_ = cb_->head.load(std::memory_order_acquire);
  max_payload_ = layout::max_payload(capacity_);
  // A peer-written garbage position is refused by every reserve (corrupt).
  broken_ = !layout::positions_sane(cached_head_, tail_, capacity_);
}

Producer::Producer(Producer&& o) noexcept
    : segment_(o.segment_),
      cb_(o.cb_),
      data_(o.data_),
      mask_(o.mask_),
      capacity_(o.capacity_),
      max_payload_(o.max_payload_),
      slot_(o.slot_),
      owner_(o.owner_),
      lock_word_(o.lock_word_),
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
  return alive(cb_->consumer.owner.load(std::memory_order_acquire));
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

bool Producer::lock_claim() {
  unsigned spins = 0;
  auto last_check = Clock::time_point{};
  auto first_wait = Clock::time_point{};
  for (;;) {
    // relaxed: test before test-and-set, keeps the line shared while held.
    std::uint64_t held = cb_->claim_lock.load(std::memory_order_relaxed);
    if (held == 0) {
      // acquire: pairs with the release in unlock_claim(); the previous
      // holder's tail store is visible.
      if (cb_->claim_lock.compare_exchange_weak(held, lock_word_,
                                                std::memory_order_acquire,
                                                std::memory_order_relaxed)) {
        stuck_word_ = 0;
        return true;
      }
      continue;
    }
    if (held == stuck_word_ && held != lock_word_) {
      // The same holder we already waited a whole slice for: do not wait
      // another one per attempt (a blocking reserve() would overshoot its
      // timeout by many slices). Break it if it died meanwhile.
      if (held > 0xffffffffULL + 1 ||
          !owner_alive(cb_, static_cast<std::uint32_t>(held - 1))) {
        // acq_rel: we take over the lock from the dead holder.
        cb_->claim_lock.compare_exchange_strong(held, 0,
                                                std::memory_order_acq_rel);
        continue;
      }
      return false;
    }
    if (++spins < 128) {
      detail::cpu_relax();
      continue;
    }
    // The holder is slow (preempted, stopped) or dead: stop burning the
    // other core, stay interruptible, and look at the holder now and then.
    ::sched_yield();
    if (interrupt_requested()) return false;
    const auto now = Clock::now();
    if (last_check == Clock::time_point{}) {
      last_check = now;
      first_wait = now;
    }
    // Only this handle writes its own lock word and it holds no lock here:
    // the word is a peer's scribble (or our own leftover). Break it.
    if (held == lock_word_) {
      // acq_rel: as breaking a dead holder's lock below.
      cb_->claim_lock.compare_exchange_strong(held, 0,
                                              std::memory_order_acq_rel);
      continue;
    }
    // A live holder that keeps the lock (stopped, or a hostile peer) must
    // not hang a try_reserve(): give up after a sleep slice; reserve() then
    // waits and retries within its own timeout.
    if (now - first_wait >= detail::kSleepSlice) {
      stuck_word_ = held;
      return false;
    }
    if (now - last_check >= std::chrono::milliseconds(5)) {
      last_check = now;
      // A producer killed inside the few instructions it holds the lock
      // would block every producer forever: break its lock. What it did
      // before dying is consistent (see docs/design.md, claim lock).
      if (held > 0xffffffffULL + 1 ||
          !owner_alive(cb_, static_cast<std::uint32_t>(held - 1))) {
        // acq_rel: we take over the lock from the dead holder; the loop
        // then acquires it normally.
        cb_->claim_lock.compare_exchange_strong(held, 0,
                                                std::memory_order_acq_rel);
      }
    }
  }
}

void Producer::unlock_claim() {
  // release: pairs with the acquire CAS in lock_claim().
  cb_->claim_lock.store(0, std::memory_order_release);
}

Reservation Producer::reserve_mpsc(std::size_t size) {
  const auto span = static_cast<std::uint32_t>(layout::span_for(size));
  {
    // Full without taking the lock? Spinning producers then leave the lock
    // (and its line) to the one that can proceed. relaxed: a hint only;
    // the locked path below decides.
    // Insane positions (a scribbled tail) go on to the locked path, which
    // reports them as corrupt rather than as a ring that is forever full.
    const std::uint64_t t = cb_->tail.load(std::memory_order_relaxed);
    if (layout::positions_sane(cached_head_, t, capacity_) &&
        t + 2 * span - cached_head_ > capacity_) {
      // seq_cst: as the reload below (space_ready Dekker re-check).
      cached_head_ = cb_->head.load(std::memory_order_seq_cst);
      if (layout::positions_sane(cached_head_, t, capacity_) &&
          t + span - cached_head_ > capacity_) {
        return {Status::would_block, {}};
      }
    }
  }
  if (!lock_claim()) {
    return {interrupt_requested() ? Status::interrupted : Status::would_block,
            {}};
  }
  // acquire: pairs with the previous holder's tail store (seq_cst). The
  // lock's acquire orders it too, except after a dead holder's lock was
  // broken.
  const std::uint64_t t = cb_->tail.load(std::memory_order_acquire);
  const std::uint64_t off = t & mask_;
  const std::uint64_t pad = off + span > capacity_ ? capacity_ - off : 0;
  const std::uint64_t need = pad + span;
  // tail is shared: a peer may have scribbled it. Check it against the
  // cached head before we write at it (a misaligned or wrapped tail would
  // put the padding header past the ring's end), not only after a reload.
  if (!layout::positions_sane(cached_head_, t, capacity_) ||
      t + need - cached_head_ > capacity_) {
    // seq_cst: pairs with the consumer's head store in release() (acquire
    // for the data; seq_cst for the space_ready Dekker re-check).
    cached_head_ = cb_->head.load(std::memory_order_seq_cst);
    if (!layout::positions_sane(cached_head_, t, capacity_)) {
      unlock_claim();
      return {Status::corrupt, {}};
    }
    if (t + need - cached_head_ > capacity_) {
      unlock_claim();
      return {Status::would_block, {}};
    }
  }
  if (pad != 0) {
    // relaxed: published by the tail store below.
    header_at(data_, off)
        .store(layout::padding_word(static_cast<std::uint32_t>(pad)),
               std::memory_order_relaxed);
  }
  const std::uint64_t pos = t + pad;
  // relaxed: published by the tail store below. Busy until commit().
  header_at(data_, pos & mask_)
      .store(layout::encode_busy(span, owner_), std::memory_order_relaxed);
  // seq_cst: release pairs with the consumer's acquire load of tail in
  // try_peek() (headers above are visible); seq_cst keeps the data_ready
  // Dekker argument intact when the consumer's re-check reads tail.
  cb_->tail.store(t + need, std::memory_order_seq_cst);
  unlock_claim();
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
  if (c != 0 && alive(c)) return Status::ok;
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
  // seq_cst: release pairs with the consumer's acquire load of this header
  // in try_peek(); seq_cst is the waker half of the data_ready Dekker pair.
  header_at(data_, reserved_pos_ & mask_)
      .store(word, std::memory_order_seq_cst);
  data_ready_.wake();
}


void Producer::abort() {
  if (!reserved_) return;
  reserved_ = false;
  if (!mpsc_) {
    tail_ = reserved_pos_;  // nothing was published
    return;
  }
  // seq_cst: as in commit(); the consumer may be waiting on this record.
  header_at(data_, reserved_pos_ & mask_)
      .store(layout::padding_word(reserved_span_), std::memory_order_seq_cst);
  data_ready_.wake();
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
  // store: if a reaper freed (and someone re-claimed) our slot, it is not
  // ours to clear.
  if (cb_->producers[slot_].owner.compare_exchange_strong(
          mine, 0, std::memory_order_seq_cst)) {
    // relaxed: informational count.
    cb_->producers_attached.fetch_sub(1, std::memory_order_relaxed);
  }
  data_ready_.wake();
}

// ============================== Consumer ==================================

Result<Consumer> Consumer::attach(Segment& segment) {
  ControlBlock* cb = segment.control();
  const ProcessToken me = self_token();
  if (me == 0) return Error{Errc::system, "cannot read /proc/self/stat"};
  for (;;) {
    ProcessToken held = 0;
    // acq_rel: claims the role; pairs with close()'s release / a previous
    // consumer's head stores (read below).
    if (cb->consumer.owner.compare_exchange_strong(held, me,
                                                   std::memory_order_acq_rel)) {
      break;
    }
    if (alive(held)) {
      return Error{Errc::role_taken,
                   "this ring already has a live consumer (pid " +
                       std::to_string(token_pid(held)) + ")"};
    }
    // The previous consumer died: take over its role and its position.
    if (cb->consumer.owner.compare_exchange_strong(held, me,
                                                   std::memory_order_acq_rel)) {
      // relaxed: statistics only.
      cb->consumers_died.fetch_add(1, std::memory_order_relaxed);
      break;
    }
  }
  // seq_cst: producers blocked on a full ring read it in blocked_status().
  cb->consumers_seen.fetch_add(1, std::memory_order_seq_cst);
  return Consumer(segment, me);
}

Consumer::Consumer(Segment& segment, ProcessToken token)
    : segment_(&segment),
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
}

Consumer::Consumer(Consumer&& o) noexcept
    : segment_(o.segment_),
      cb_(o.cb_),
      data_(o.data_),
      mask_(o.mask_),
      capacity_(o.capacity_),
      max_span_(o.max_span_),
      mpsc_(o.mpsc_),
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
      closed_(o.closed_) {
  o.closed_ = true;
}

Consumer::~Consumer() { close(); }

std::size_t Consumer::max_record_size() const {
  return layout::max_payload(capacity_);
}

std::uint64_t Consumer::size_guess() const {
  // relaxed: a guess for progress displays.
  const std::uint64_t t = cb_->tail.load(std::memory_order_relaxed);
  return t > head_ ? t - head_ : 0;
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
  if (!layout::positions_sane(head_, t, capacity_) || t < read_) {
    corrupt_at_ = read_ & mask_;
    return Status::corrupt;
  }
  cached_tail_ = t;
  if (cached_tail_ != read_) return Status::ok;  // more to read
  // relaxed: written before the slot was freed, which we saw (seq_cst).
  if (!mpsc_ && cb_->last_exit.load(std::memory_order_relaxed) ==
                    static_cast<std::uint32_t>(layout::LastExit::died)) {
    return Status::peer_dead;
  }
  return Status::closed;
}

bool Consumer::reclaim_if_owner_dead(std::uint64_t pos, std::uint64_t word) {
  const auto now = Clock::now();
  if (stalled_pos_ != pos) {
    stalled_pos_ = pos;
    stalled_since_ = now;
    return false;
  }
  // Liveness costs a few syscalls: look at most every 10 ms per stall.
  if (now - stalled_since_ < std::chrono::milliseconds(10)) return false;
  stalled_since_ = now;
  const Header h = layout::decode(word);
  if (owner_alive(cb_, h.owner)) return false;  // slow, not dead
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

Peeked Consumer::try_peek_slow() {
  if (closed_) return {Status::closed, {}};
  for (;;) {
    if (read_ == cached_tail_) {
      // seq_cst: acquire pairs with the producers' tail store (every byte
      // before it is written); seq_cst makes this the re-check of the
      // data_ready Dekker pair when called from wait_loop.
      // Validated before it is cached: a rejected tail must not be trusted
      // by the next call either.
      const std::uint64_t t = cb_->tail.load(std::memory_order_seq_cst);
      if (!layout::positions_sane(head_, t, capacity_) || t < read_) {
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
    // acquire: pairs with the producer's seq_cst (release) store of this
    // header in commit() (MPSC); in SPSC the tail load already ordered it.
    // seq_cst: when the consumer sleeps on a busy record this load is the
    // re-check half of the data_ready Dekker pair (free on x86).
    const std::uint64_t word =
        header_at(data_, off).load(std::memory_order_seq_cst);
    const Header h = layout::decode(word);
    // Every value from the segment is untrusted: bounds before use.
    if (h.span < layout::kHeaderSize || off + h.span > capacity_ ||
        read_ + h.span > cached_tail_ ||
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
  shmring::reap_dead_producers(cb_);
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
  // Unreleased records stay in the ring for the next consumer.
  ProcessToken mine = token_;
  // release: pairs with the next consumer's claim CAS in attach(). A CAS:
  // if our role was taken over, it is not ours to clear.
  cb_->consumer.owner.compare_exchange_strong(
      mine, 0, std::memory_order_release, std::memory_order_relaxed);
  space_ready_.wake();  // producers blocked on a full ring re-check
}

}  // namespace shmring
