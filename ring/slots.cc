// The fixed-slot kind (Kind::slots): attach, and the slow paths behind the
// inline slot fast paths in ring.h (a full or empty ring, end of stream,
// corruption, waiting). Roles, liveness, reaping and end of stream are the
// record rings' own (roles.cc): a slots ring is an SPSC ring whose data
// ring is an array of elements. Ordering: docs/design.md, section 12.
// The wake-up handshake: a seq_cst load below that is "the re-check" of
// data_ready or space_ready is the waiter's half of the Dekker pair whose
// proof is written once, in docs/design.md section 5 and
// WaitPoint::publish (ring/internal/wait.h); the comments here only say which pair.
#include <string>

#include "ring/names.h"
#include "ring/ring.h"
#include "ring/internal/roles.h"
#include "ring/internal/wait_fd.h"
#include "ring/internal/wait_loop.h"

namespace shmring {

using detail::wait_loop;

namespace {

// One try of a slot fast path as wait_loop's result: only its status
// (ok when it gave a slot, else why not).
template <class R, class Try>
R attempt(Try try_once) {
  R out;
  Status why = Status::ok;
  out.status = try_once(&why) != nullptr ? Status::ok : why;
  return out;
}

// Errc::wrong_kind unless `seg` is a slots ring of `element_size` bytes.
std::optional<Error> check_slots(const Segment& seg, std::size_t element_size,
                                 const char* role) {
  if (seg.kind() != Kind::slots) {
    return Error{Errc::wrong_kind,
                 std::string("ring ") + hex_key(seg.key()) +
                     " is a record ring (" +
                     (seg.kind() == Kind::mpsc ? "mpsc" : "spsc") +
                     "), not a slots ring: attach the " + role +
                     " with attach(), or use QueueWriter/QueueReader<T>, "
                     "which take either"};
  }
  if (seg.slot_size() != element_size) {
    return Error{Errc::wrong_kind,
                 "ring " + hex_key(seg.key()) + " holds " +
                     std::to_string(seg.slot_size()) +
                     "-byte elements, but the " + role + " asked for " +
                     std::to_string(element_size) + "-byte elements"};
  }
  return std::nullopt;
}

}  // namespace

Error detail::records_on_slots(const Segment& seg) {
  return Error{Errc::wrong_kind,
               "ring " + hex_key(seg.key()) + " is a slots ring (fixed " +
                   std::to_string(seg.slot_size()) +
                   "-byte elements, no records): use QueueWriter<T> / "
                   "QueueReader<T> (ring/queue.h) with sizeof(T) = " +
                   std::to_string(seg.slot_size()) +
                   ", or a spsc/mpsc ring for records"};
}

// ============================== Producer ==================================

Result<Producer> Producer::attach_slots(Segment& segment,
                                        std::size_t element_size,
                                        ProducerOptions options) {
  if (auto e = check_slots(segment, element_size, "producer")) return *e;
  return attach_role(segment, options);
}

void Producer::init_slots(const Segment& segment) {
  // The Segment's validated copies (a peer may rewrite the header).
  slot_size_ = segment.slot_size();
  slot_count_ = segment.slot_count();
  slots_end_ = data_ + slot_count_ * slot_size_;
  record_limit_ = 0;  // the record fast path never runs
  // tail_ and cached_head_ were loaded by the constructor (acquire), as
  // element positions; a pair no correct ring has is a peer's scribble.
  broken_ = !layout::slot_positions_sane(cached_head_, tail_, slot_count_);
  slot_room_ = broken_ ? 0 : slot_count_;
  // One division per attach: where the previous producer stopped.
  slot_at_ = data_ + (tail_ % slot_count_) * slot_size_;
}

std::byte* Producer::claim_slot_slow(Status* why) {
  if (closed_) {
    *why = Status::closed;
    return nullptr;
  }
  if (slot_size_ == 0) {  // a record producer: no slots
    *why = Status::too_large;
    return nullptr;
  }
  if (broken_) {
    *why = Status::corrupt;
    return nullptr;
  }
  // seq_cst (acquire suffices for data): pairs with the consumer's head
  // store in release_slot(), so its copies out of the slots happen before
  // our overwrites; seq_cst also makes this the re-check of the space_ready
  // handshake when called from wait_slot() (wait.h).
  cached_head_ = cb_->head.load(std::memory_order_seq_cst);
  if (!layout::slot_positions_sane(cached_head_, tail_, slot_count_)) {
    broken_ = true;
    slot_room_ = 0;
    *why = Status::corrupt;
    return nullptr;
  }
  if (tail_ - cached_head_ < slot_count_) return slot_at_;
  *why = Status::would_block;  // full
  return nullptr;
}

Status Producer::wait_slot(Timeout timeout) {
  if (closed_) return Status::closed;
  // Reservation only for its status field (wait_loop's result type).
  const Reservation r = wait_loop<Reservation>(
      space_ready_, timeout,
      [&] {
        return attempt<Reservation>(
            [&](Status* w) { return try_claim_slot(w); });
      },
      [&] { return blocked_status(); });
  return r.status;
}

// ============================== Consumer ==================================

Result<Consumer> Consumer::attach_slots(Segment& segment,
                                        std::size_t element_size) {
  if (auto e = check_slots(segment, element_size, "consumer")) return *e;
  return attach_role(segment);
}

void Consumer::init_slots(const Segment& segment) {
  slot_size_ = segment.slot_size();
  slot_count_ = segment.slot_count();
  slots_end_ = data_ + slot_count_ * slot_size_;
  // The constructor loaded head (acquire: pairs with the previous
  // consumer's release of it): resume exactly after its last element.
  slot_head_ = slot_tail_ = head_;
  slot_at_ = data_ + (slot_head_ % slot_count_) * slot_size_;
}

const std::byte* Consumer::slot_scan(Status* why) {
  if (closed_) {
    *why = Status::closed;
    return nullptr;
  }
  if (slot_size_ == 0) {  // a record consumer: no slots
    *why = Status::too_large;
    return nullptr;
  }
  for (int pass = 0; pass < 2; ++pass) {
    // seq_cst: acquire pairs with the producer's tail store in
    // publish_slot() (the element's bytes are visible); seq_cst makes this
    // the re-check of the data_ready handshake from wait_slot() (wait.h).
    // Validated before it is cached.
    const std::uint64_t t = cb_->tail.load(std::memory_order_seq_cst);
    if (!layout::slot_positions_sane(slot_head_, t, slot_count_)) {
      corrupt_at_ = slot_at_ - data_;
      *why = Status::corrupt;
      return nullptr;
    }
    slot_tail_ = t;
    if (t != slot_head_) return slot_at_;
    if (pass == 1) break;
    // Empty: has the stream ended? would_block while a producer may still
    // publish; once every producer has left, their last tail stores came
    // before their slot was freed (seq_cst CAS), so the second load above
    // sees the final tail.
    const Status s = producers_gone();
    if (s != Status::ok) {
      *why = s;
      return nullptr;
    }
  }
  *why = how_stream_ended();
  return nullptr;
}

const std::byte* Consumer::slot_slow(Status* why) {
  const std::byte* s = slot_scan(why);
  if (s != nullptr || *why != Status::would_block || !wait_fd_ ||
      !wait_fd_->needs_arm()) {
    return s;
  }
  // As try_peek_slow() (wait_fd.cc): nothing to read and the fd may be
  // readable: announce, re-check, then clear the fd and let the helper
  // watch.
  const std::uint32_t seq = wait_fd_->announce();
  s = slot_scan(why);
  if (s == nullptr && *why == Status::would_block) wait_fd_->arm(seq);
  return s;
}

Status Consumer::wait_slot(Timeout timeout) {
  if (closed_) return Status::closed;
  // Between sleeps, reap dead producers so end of stream (peer_dead)
  // follows a kill -9 within about one slice, as peek() does.
  const Peeked p = wait_loop<Peeked>(
      data_ready_, timeout,
      [&] { return attempt<Peeked>([&](Status* w) { return try_slot(w); }); },
      [&] {
        reap_now();
        return Status::ok;
      });
  return p.status;
}

}  // namespace shmring
