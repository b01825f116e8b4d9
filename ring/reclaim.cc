// Recovering MPSC claims whose producer died (docs/design/mpsc.md#reading):
// a busy header whose owner is gone becomes padding; a 0 word (claimed,
// header never written) whose claimer is gone becomes one padding record up
// to the next claim. Both only after the consumer has been stalled at the
// position for a while, so a live but slow producer costs no syscalls.
#include <algorithm>
#include <atomic>

#include "ring/internal/roles.h"
#include "ring/ring.h"

namespace shmring {

using detail::RecordReader;

using detail::Clock;
using detail::owner_alive;
using detail::producer_slots;
using detail::role_alive;
using layout::ControlBlock;
using layout::Header;
using layout::header_at;

bool RecordReader::stalled_long_enough(std::uint64_t pos) {
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

bool RecordReader::reclaim_if_owner_dead(std::uint64_t pos,
                                         std::uint64_t word) {
  if (!stalled_long_enough(pos)) return false;
  const Header h = layout::decode(word);
  if (owner_alive(cb_, sem_id_, h.owner)) return false;  // slow, not dead
  std::uint64_t expected = word;
  // acq_rel: the dead owner cannot race us; the CAS guards against scribbles.
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
// one padding record. Proof: docs/design/mpsc.md#proof-sketch.
bool RecordReader::reclaim_unwritten_claim(std::uint64_t pos) {
  if (!stalled_long_enough(pos)) return false;
  // The run never crosses the end of the ring or tail.
  std::uint64_t end = pos + (capacity_ - (pos & mask_));
  if (cached_tail_ - pos < end - pos) end = cached_tail_;
  const ControlBlock* cb = cb_;
  for (std::uint32_t i = 0; i < producer_slots(cb); ++i) {
    const auto& s = cb->producers[i];
    // acquire (all four): pair with ProducerRole::take and reserve_mpsc.
    const std::uint32_t g1 = s.generation.load(std::memory_order_acquire);
    const std::uint64_t p = s.intent.load(std::memory_order_acquire);
    const ProcessToken o = s.owner.load(std::memory_order_acquire);
    if (p == pos) {
      const bool live =
          role_alive(sem_id_, layout::producer_sem(i), o, s.pid_ns);
      const std::uint32_t g2 = s.generation.load(std::memory_order_acquire);
      if (live || g1 != g2) return false;  // may be the claimer: wait
      continue;
    }
    // Another claim starts at p: the run stops there.
    if (p != layout::kNoIntent && layout::in_window(pos, p, end)) end = p;
  }
  // seq_cst: after the intents; pairs with the headers in reserve_mpsc.
  if (header_at(data_, pos & mask_).load(std::memory_order_seq_cst) != 0) {
    stalled_pos_ = ~0ULL;
    return true;  // written meanwhile: read it normally
  }
  for (std::uint64_t q = pos + layout::kHeaderSize; q != end;
       q += layout::kHeaderSize) {
    // acquire: pairs with the header stores in Producer::reserve_mpsc.
    if (header_at(data_, q & mask_).load(std::memory_order_acquire) != 0) {
      end = q;
      break;
    }
  }
  const std::uint64_t run = std::min<std::uint64_t>(end - pos, 0xfffffff8ULL);
  std::uint64_t expected = 0;
  // acq_rel: the dead claimer cannot race us; the CAS guards against scribbles.
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

}  // namespace shmring
